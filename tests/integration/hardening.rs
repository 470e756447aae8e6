//! Issue 10 hardening through the binary: inputs that were misread (MH annotations, quoted
//! local parts), CSV outputs a spreadsheet would run, accounts CSVs that must be refused.

use crate::util::{fixture, json_lines, leakaudit, stderr};

fn readers(rel: &str) -> String {
    fixture("readers").join(rel).to_string_lossy().into_owned()
}

#[test]
fn mh_annotated_files_before_the_from_line_are_read_as_mail() {
    let dir = readers("mh-annotated");
    let o = leakaudit().args(["scan", &dir]).output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(!err.contains("not-mail"), "{err}");
    assert!(err.contains("messages read: 2 (mbox 2)"), "{err}");
    let recs = json_lines(&o.stdout);
    assert_eq!(recs.len(), 2, "{recs:?}");
    for r in &recs {
        assert_eq!(r["format"], "mbox");
        let path = r["location"]["path"].as_str().unwrap();
        let data = std::fs::read(path).unwrap();
        let off = r["location"]["offset"].as_u64().unwrap() as usize;
        assert!(
            data[off..].starts_with(b"From shop@shop.example "),
            "{path}"
        );
        assert_eq!(r["exposed"].as_array().unwrap().len(), 2, "{r}");
    }
    assert_eq!(recs[0]["message_id"], "mh-forwarded@shop.example");
    assert_eq!(recs[1]["message_id"], "mh-replied@shop.example");
    assert_eq!(recs[1]["subject"], "Your order (replied)");
}

fn hard(rel: &str) -> String {
    fixture("hardening")
        .join(rel)
        .to_string_lossy()
        .into_owned()
}

fn ok(o: &std::process::Output, codes: &[i32]) {
    assert!(
        o.status.code().is_some_and(|c| codes.contains(&c)),
        "status {:?}\nstderr: {}",
        o.status,
        stderr(o)
    );
}

#[test]
fn quoted_local_parts_are_matched_and_formula_addresses_defused_in_affected_csv() {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("accounts.db");
    let db_s = db.to_str().unwrap();
    ok(
        &leakaudit()
            .args([
                "accounts",
                "import",
                &hard("quoted-and-formula-accounts.csv"),
            ])
            .args(["--db", db_s])
            .output()
            .unwrap(),
        &[0],
    );
    let out = d.path().join("affected.csv");
    let o = leakaudit()
        .args(["affected", &hard("quoted-and-formula-recipients.mbox")])
        .args(["--accounts", db_s, "-o", out.to_str().unwrap(), "--quiet"])
        .output()
        .unwrap();
    ok(&o, &[1]);
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().skip(2).collect();
    // address, account as written (defused, CSV-quoted) in the file, sorted by address.
    let starts = [
        "\"\"\"@sum(1)\"\"@hotmail.com\",,1,",
        "\"\"\"john doe\"\"@gmail.com\",acc-john,1,",
        "'-1@outlook.com,acc-minus,1,",
        "'=1+2@gmail.com,acc-formula,1,",
        "j.smith@yahoo.com,acc-smith,1,",
    ];
    assert_eq!(lines.len(), starts.len(), "{text}");
    for (line, start) in lines.iter().zip(starts) {
        assert!(line.starts_with(start), "{line:?} should start {start:?}");
        // No cell of this fixture holds a comma inside quotes: a plain split is exact.
        for cell in line.split(',') {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "live formula cell {cell:?} in {line:?}"
            );
        }
    }
    // The list reads back exactly: the plan resets the four matched accounts.
    let plan = d.path().join("plan.json");
    let o = leakaudit()
        .args(["remediate", "plan", "--affected", out.to_str().unwrap()])
        .args(["--db", db_s, "--out", plan.to_str().unwrap()])
        .output()
        .unwrap();
    ok(&o, &[0]);
    let plan = std::fs::read_to_string(&plan).unwrap();
    for acc in ["acc-john", "acc-smith", "acc-formula", "acc-minus"] {
        assert!(plan.contains(&format!("\"{acc}\"")), "{acc} not in {plan}");
    }
}

#[test]
fn accounts_import_refuses_negative_balance_control_ids_and_emails_held_by_another_id() {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("accounts.db");
    let db_s = db.to_str().unwrap();
    let csv = d.path().join("more.csv");
    let import = |body: &str| {
        std::fs::write(&csv, format!("id,email,has_2fa,balance,locale\n{body}")).unwrap();
        leakaudit()
            .args(["accounts", "import", csv.to_str().unwrap(), "--db", db_s])
            .output()
            .unwrap()
    };
    ok(&import("a1,alice@x.example,true,1,en\n"), &[0]);
    let o = import(
        "b1,bob@x.example,true,-5,en\n\"c\u{1b}]0;pwned\u{7}\",c@x.example,true,1,en\nd1,ALICE@x.example,true,1,en\n",
    );
    ok(&o, &[2]);
    let err = stderr(&o);
    assert!(
        err.contains("more.csv:2:") && err.contains("negative"),
        "{err}"
    );
    assert!(
        err.contains("more.csv:3:") && err.contains("control character"),
        "{err}"
    );
    assert!(!err.contains('\u{1b}'), "the id is shown escaped: {err}");
    // The store check runs once the rows themselves are valid.
    let o = import("d1,ALICE@x.example,true,1,en\n");
    ok(&o, &[2]);
    let err = stderr(&o);
    assert!(
        err.contains("more.csv:2:") && err.contains("already belongs to account `a1`"),
        "{err}"
    );
}
