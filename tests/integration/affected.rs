//! `leakaudit affected` through the binary: from an archive and from saved findings, account
//! matching, CSV and JSON, pseudonymisation, 0600 output. Fixtures: `fixtures/remediation/`.

use crate::util::{fixture, leakaudit, rem, run, s};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

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

/// An mbox of three messages: a header leak (12 customers visible in To), a list mailed to
/// a partner in the body and in a base64 CSV attachment, and a reply whose only addresses are
/// in the quoted original. Returns (mbox, header addresses, body addresses, CSV addresses,
/// quoted addresses).
type Journal = (String, Vec<String>, Vec<String>, Vec<String>, Vec<String>);

fn content_journal() -> Journal {
    use base64::Engine as _;
    let list = |p: &str, d: &str| -> Vec<String> {
        (0..12).map(|i| format!("{p}{i}@{d}")).collect::<Vec<_>>()
    };
    let (head, body, csv, quoted) = (
        list("h", "gmail.com"),
        list("b", "yahoo.com"),
        list("c", "hotmail.com"),
        list("q", "gmx.net"),
    );
    let csv_text: String = std::iter::once("name,email\n".to_string())
        .chain(
            csv.iter()
                .enumerate()
                .map(|(i, a)| format!("Client {i},{a}\n")),
        )
        .collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(csv_text);
    let mut m = String::new();
    m += &format!(
        "From shop@shop.example Fri Nov  1 09:00:00 2019\nFrom: shop@shop.example\nTo: {}\nSubject: Important: changes to your account\nDate: Fri, 01 Nov 2019 09:00:00 +0000\nMessage-ID: <head@shop.example>\n\nHello.\n\n",
        head.join(", ")
    );
    m += &format!(
        "From ana@shop.example Fri Nov  1 10:00:00 2019\nFrom: ana@shop.example\nTo: dave@agency.example\nSubject: the lists\nDate: Fri, 01 Nov 2019 10:00:00 +0000\nMessage-ID: <lists@shop.example>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=XX\n\n--XX\nContent-Type: text/plain\n\nThe ones who complained:\n{}\n--XX\nContent-Type: text/csv; name=\"clients.csv\"\nContent-Disposition: attachment; filename=\"clients.csv\"\nContent-Transfer-Encoding: base64\n\n{b64}\n--XX--\n\n",
        body.join("\n")
    );
    let q: String = quoted.iter().map(|a| format!("> {a}\n")).collect();
    m += &format!(
        "From ana@shop.example Fri Nov  1 11:00:00 2019\nFrom: ana@shop.example\nTo: dave@agency.example\nSubject: Re: who?\nDate: Fri, 01 Nov 2019 11:00:00 +0000\nMessage-ID: <reply@shop.example>\n\nThanks, noted.\n\nOn Fri, 1 Nov 2019 at 10:30, Dave <dave@agency.example> wrote:\n> Who was on the list?\n{q}\n"
    );
    (m, head, body, csv, quoted)
}

#[test]
fn content_exposures_are_listed_with_their_source_and_planned() {
    let d = tempfile::tempdir().unwrap();
    let (mbox, head, body, csv, quoted) = content_journal();
    let archive = d.path().join("journal.mbox");
    std::fs::write(&archive, mbox).unwrap();
    // Accounts: every 3rd exposed address has none; of the rest, even positions have 2FA off
    // and a balance (a reset), odd ones 2FA on. A quoted address has an account too: it
    // must not be planned.
    let exposed: Vec<&String> = head.iter().chain(&body).chain(&csv).collect();
    let mut accounts = String::from("id,email,has_2fa,balance,locale\n");
    let mut resets = std::collections::BTreeSet::new();
    let mut unmatched = std::collections::BTreeSet::new();
    for (i, a) in exposed.iter().enumerate() {
        if i % 3 == 2 {
            unmatched.insert(a.to_string());
            continue;
        }
        let reset = i % 2 == 0;
        accounts += &format!(
            "A{i},{a},{},{},en\n",
            !reset,
            if reset { "5.00" } else { "0" }
        );
        if reset {
            resets.insert(format!("force-password-reset:A{i}"));
        }
    }
    accounts += &format!("Q0,{},false,9.00,en\n", quoted[0]);
    let accounts_csv = d.path().join("accounts.csv");
    std::fs::write(&accounts_csv, accounts).unwrap();
    let out = d.path().join("out");
    let o = run(&[
        "incident",
        archive.to_str().unwrap(),
        "--accounts",
        accounts_csv.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", crate::util::text(&o));

    // The list: every exposed address once, with where it was exposed.
    let list = std::fs::read_to_string(out.join("affected.csv")).unwrap();
    let mut fields = std::collections::BTreeMap::new();
    for line in list.lines().filter(|l| !l.starts_with('#')).skip(1) {
        let cols: Vec<&str> = line.split(',').collect();
        fields.insert(cols[0].to_string(), cols[7].to_string());
    }
    for (set, want) in [
        (&head, "To"),
        (&body, "body"),
        (&csv, "attachment:clients.csv"),
    ] {
        for a in set {
            assert_eq!(fields.get(a).map(String::as_str), Some(want), "{a}");
        }
    }
    for a in &quoted {
        assert!(!fields.contains_key(a), "quoted {a} is not affected");
    }
    assert_eq!(fields.len(), exposed.len(), "{fields:?}");

    // The plan: resets exactly for the exposed accounts without 2FA and with a balance;
    // a notice for every exposed address without an account.
    let plan: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("plan.json")).unwrap()).unwrap();
    let planned: std::collections::BTreeSet<String> = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .filter(|id| id.starts_with("force-password-reset:"))
        .collect();
    assert_eq!(planned, resets);
    let noticed: std::collections::BTreeSet<String> = plan["notices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["address"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(noticed, unmatched);

    // Saved `check` findings carry the source: the list from them says the same.
    let o = run(&["check", s(&archive), "--format", "jsonl"]);
    assert_eq!(o.status.code(), Some(1), "{}", crate::util::text(&o));
    let findings = d.path().join("findings.jsonl");
    std::fs::write(&findings, &o.stdout).unwrap();
    let from_findings = run(&["affected", "--findings", s(&findings), "--quiet"]);
    let from_archive = run(&["affected", s(&archive), "--quiet", "--profile", "gate"]);
    ok(&from_findings);
    assert_eq!(
        crate::util::stdout(&from_findings),
        crate::util::stdout(&from_archive)
    );
    let text = crate::util::stdout(&from_findings);
    assert!(text.contains(",attachment:clients.csv,"), "{text}");
    assert!(text.contains(",body,"), "{text}");
}

#[test]
fn left_out_count_excludes_addresses_another_message_lists() {
    // quoted-original-clean exposes q3@gmail.com and q4@hotmail.com only below the default
    // --min-severity; a customer mail that exposes q3 at high severity lists it, so only q4
    // is left out.
    let d = tempfile::tempdir().unwrap();
    let flagged = std::fs::read_to_string(fixture("triage/customers-flagged.eml"))
        .unwrap()
        .replace(
            "To: cust1@gmail.com, cust2@gmail.com",
            "To: cust1@gmail.com, cust2@gmail.com, q3@gmail.com, zed@gmail.com",
        );
    let eml = d.path().join("flagged.eml");
    std::fs::write(&eml, flagged).unwrap();
    let quoted = fixture("triage/quoted-original-clean.eml");
    let left_out = |paths: &[&str]| -> String {
        let mut args = vec!["affected", "-o", "/dev/null"];
        args.extend_from_slice(paths);
        let o = run(&args);
        ok(&o);
        crate::util::stderr(&o)
    };
    let q = quoted.to_str().unwrap();
    assert!(left_out(&[q]).contains("2 exposed address(es) left out"));
    let both = left_out(&[q, eml.to_str().unwrap()]);
    assert!(both.contains("1 exposed address(es) left out"), "{both}");
}

#[test]
fn every_matching_command_prints_the_fold_hint() {
    let d = tempfile::tempdir().unwrap();
    let mbox = d.path().join("a.mbox");
    std::fs::write(
        &mbox,
        "From shop@shop.example Fri Nov  1 09:00:00 2019\nFrom: shop@shop.example\nTo: J.Doe+shop@gmail.com, kim@yahoo.com\nSubject: hi\nDate: Fri, 01 Nov 2019 09:00:00 +0000\nMessage-ID: <f@shop.example>\n\nHello.\n",
    )
    .unwrap();
    let csv = d.path().join("accounts.csv");
    std::fs::write(
        &csv,
        "id,email,has_2fa,balance,locale\nA1,jdoe@gmail.com,false,1.00,en\n",
    )
    .unwrap();
    let db = d.path().join("a.db");
    let o = run(&["accounts", "import", s(&csv), "--db", s(&db)]);
    assert_eq!(o.status.code(), Some(0), "{}", crate::util::text(&o));
    let hint = "1 unmatched address(es) would match an account with --provider-folding";
    let affected = |extra: &[&str]| {
        let mut args = vec![
            "affected",
            s(&mbox),
            "--accounts",
            s(&db),
            "-o",
            "/dev/null",
        ];
        args.extend_from_slice(extra);
        let o = run(&args);
        ok(&o);
        crate::util::stderr(&o)
    };
    assert!(affected(&[]).contains(hint), "{}", affected(&[]));
    let folded = affected(&["--provider-folding"]);
    assert!(!folded.contains("would match"), "{folded}");
    assert!(folded.contains("1 matched"), "{folded}");
    let out = d.path().join("out");
    let o = run(&["incident", s(&mbox), "--accounts", s(&db), "--out", s(&out)]);
    assert_eq!(o.status.code(), Some(1), "{}", crate::util::text(&o));
    assert!(
        crate::util::stderr(&o).contains(hint),
        "{}",
        crate::util::text(&o)
    );
}
