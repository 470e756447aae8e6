//! `leakaudit affected` through the binary: from an archive and from saved findings, account
//! matching, CSV and JSON, pseudonymisation, 0600 output. Fixtures: `fixtures/remediation/`.

use crate::util::{fixture, leakaudit, run};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

fn rem(rel: &str) -> String {
    fixture("remediation")
        .join(rel)
        .to_string_lossy()
        .into_owned()
}

fn ok(o: &Output) {
    assert!(
        o.status.code().is_some_and(|c| c <= 1),
        "status {:?}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn import(db: &Path) {
    let o = run(&[
        "accounts",
        "import",
        &rem("accounts.csv"),
        "--db",
        db.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn from_archive_with_accounts_csv() {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("accounts.db");
    import(&db);
    let out = d.path().join("affected.csv");
    let o = run(&[
        "affected",
        &rem("archive.mbox"),
        "--accounts",
        db.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(1), "exposures found is a violation");
    assert_eq!(mode(&out), 0o600);
    let text = std::fs::read_to_string(&out).unwrap();
    // A matched list says which store and mode it was matched with (one matching decision).
    let (meta, text) = text.split_once('\n').unwrap();
    assert!(
        meta.starts_with("# leakaudit-affected/1 store_id=")
            && meta.ends_with(" match_mode=canonical"),
        "{meta}"
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "address,account_id,messages,audience,first_exposed,last_exposed,rule_ids,fields,message_ids"
    );
    // 14 exposed addresses; nobody from the support thread, the Bcc newsletter or the order.
    assert_eq!(lines.len(), 15, "{text}");
    assert!(!text.contains("carol@") && !text.contains("quiet@") && !text.contains("dave@"));
    // The address written `Anna.Schmidt@Web.DE` is canonical and matched. The reminder
    // shows Anna and Bob to each other again: under the audit profile they already were
    // recipients together (known group, low), so the default list (medium and up) counts the
    // first batch only; the person is listed either way.
    assert!(
        lines.contains(&"anna.schmidt@web.de,acc-1001,1,7,2026-03-02T09:00:00Z,2026-03-02T09:00:00Z,recipient-exposure,To,spring-sale-1@shop.example"),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("frank.mueller@gmx.de,,1,7,")),
        "no account"
    );
    assert!(lines
        .iter()
        .any(|l| l.starts_with("olga.ivanova@yandex.ru,acc-1012,1,5,") && l.contains(",Cc,")));
    // Sorted by address: deterministic.
    let mut sorted = lines[1..].to_vec();
    sorted.sort();
    assert_eq!(sorted, lines[1..].to_vec());
}

#[test]
fn from_findings_jsonl_counts_messages_and_parties() {
    let o = run(&[
        "affected",
        "--findings",
        &rem("findings.jsonl"),
        "--format",
        "json",
    ]);
    ok(&o);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["schema"], "leakaudit-affected/1");
    assert_eq!(v["total"], 4);
    let rows = v["rows"].as_array().unwrap();
    let a = &rows[0];
    assert_eq!(a["address"], "a@gmail.com");
    // m1 counted once although two rules fired on it; A@GMAIL.com in m2 is the same address.
    assert_eq!(a["messages"], 2);
    // b@gmail.com and the corp.example party.
    assert_eq!(a["audience"], 2);
    assert_eq!(a["first_exposed"], "2026-03-02T09:00:00Z");
    assert_eq!(a["last_exposed"], "2026-03-03T09:00:00Z");
    assert_eq!(
        a["rule_ids"],
        serde_json::json!(["bcc-header-leak", "recipient-exposure"])
    );
    assert_eq!(
        a["message_ids"],
        serde_json::json!(["m1@x.example", "m2@x.example"])
    );
    // Colleagues at one company: their own party is not their audience.
    let c = rows
        .iter()
        .find(|r| r["address"] == "c@corp.example")
        .unwrap();
    assert_eq!(c["audience"], 1);
}

#[test]
fn bad_findings_line_is_reported_with_its_line() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("f.jsonl");
    let good = std::fs::read_to_string(rem("findings.jsonl")).unwrap();
    std::fs::write(&f, format!("{}{{\"rule_id\": 3}}\n", good)).unwrap();
    let o = run(&["affected", "--findings", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("f.jsonl:5:"), "{err}");
}

#[test]
fn pseudonymised_output_is_keyed_and_stable() {
    let d = tempfile::tempdir().unwrap();
    let keyfile = d.path().join("key");
    std::fs::write(&keyfile, "0123456789abcdef-secret\n").unwrap();
    let a = d.path().join("a.json");
    let b = d.path().join("b.json");
    let c = d.path().join("c.json");
    let f = rem("findings.jsonl");
    ok(&run(&[
        "affected",
        "--findings",
        &f,
        "--format",
        "json",
        "-o",
        a.to_str().unwrap(),
        "--pseudonymise-key-file",
        keyfile.to_str().unwrap(),
    ]));
    let o = leakaudit()
        .args([
            "affected",
            "--findings",
            &f,
            "--format",
            "json",
            "-o",
            b.to_str().unwrap(),
            "--pseudonymise-env",
        ])
        .env("LEAKAUDIT_PSEUDONYM_KEY", "0123456789abcdef-secret")
        .output()
        .unwrap();
    ok(&o);
    ok(&run(&[
        "affected",
        "--findings",
        &f,
        "--format",
        "json",
        "-o",
        c.to_str().unwrap(),
        "--pseudonymise",
        "another-key-of-16+bytes",
    ]));
    let ta = std::fs::read_to_string(&a).unwrap();
    let tb = std::fs::read_to_string(&b).unwrap();
    let tc = std::fs::read_to_string(&c).unwrap();
    assert_eq!(ta, tb, "same key (file or env): same pseudonyms");
    assert_ne!(ta, tc, "another key: other pseudonyms");
    for t in [&ta, &tc] {
        assert!(
            !t.contains("gmail.com") && !t.contains("corp.example"),
            "{t}"
        );
        assert!(t.contains("\"pseudonymised\": true"));
        assert!(t.contains("hmac-sha256:"));
    }
    assert_eq!(mode(&a), 0o600);
    // Planning from a pseudonymised list is refused: it would match nobody.
    let db = d.path().join("acc.db");
    import(&db);
    let o = run(&[
        "remediate",
        "plan",
        "--affected",
        a.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
        "--out",
        d.path().join("p.json").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("pseudonymised"));
    // A short key is refused.
    let o = run(&["affected", "--findings", &f, "--pseudonymise", "short"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn accounts_import_is_all_or_nothing() {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("accounts.db");
    let o = run(&[
        "accounts",
        "import",
        &rem("accounts-bad.csv"),
        "--db",
        db.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    for line in [3, 4, 5, 6] {
        assert!(
            err.contains(&format!("accounts-bad.csv:{line}:")),
            "line {line}: {err}"
        );
    }
    assert!(
        !err.contains("accounts-bad.csv:2:") && !err.contains("accounts-bad.csv:7:"),
        "{err}"
    );
    assert!(err.contains("nothing imported"));
    assert!(
        !db.exists(),
        "no half import, and no empty store left behind"
    );
    import(&db);
    assert_eq!(mode(&db), 0o600, "the store is created 0600");
    let o = run(&["accounts", "info", "--db", db.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("accounts 15"));
}

#[test]
fn saved_check_findings_give_the_same_list_as_the_archive() {
    let d = tempfile::tempdir().unwrap();
    let findings = d.path().join("findings.jsonl");
    let o = run(&["check", &rem("archive.mbox"), "--format", "jsonl"]);
    assert!(
        o.status.code() == Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::write(&findings, &o.stdout).unwrap();
    let from_findings = run(&[
        "affected",
        "--findings",
        findings.to_str().unwrap(),
        "--quiet",
    ]);
    // Same engine, same profile (check's gate) on both sides: the same list.
    let from_archive = run(&[
        "affected",
        &rem("archive.mbox"),
        "--quiet",
        "--profile",
        "gate",
    ]);
    ok(&from_findings);
    assert!(!from_findings.stdout.is_empty());
    assert_eq!(from_findings.stdout, from_archive.stdout);
    // `scan` records are read too (no party lists: the per-message audience is used).
    let scan_out = d.path().join("scan.jsonl");
    ok(&run(&[
        "scan",
        &rem("archive.mbox"),
        "-o",
        scan_out.to_str().unwrap(),
        "--quiet",
    ]));
    let from_scan = run(&[
        "affected",
        "--findings",
        scan_out.to_str().unwrap(),
        "--quiet",
    ]);
    let text = String::from_utf8_lossy(&from_scan.stdout);
    assert_eq!(text.lines().count(), 15, "{text}");
    assert!(text.contains("anna.schmidt@web.de,,2,7,"), "{text}");
}

#[test]
fn min_severity_low_counts_the_repeated_exposure() {
    let o = run(&[
        "affected",
        &rem("archive.mbox"),
        "--quiet",
        "--min-severity",
        "low",
    ]);
    ok(&o);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("anna.schmidt@web.de,,2,7,")
                && l.ends_with("spring-sale-1@shop.example;spring-reminder@shop.example")),
        "{text}"
    );
}
