//! Header forms through the binary: `leakaudit scan FIXTURE --output -` on every fixture under
//! `fixtures/headers/`, checking the JSON Lines record (exposed addresses in canonical form,
//! their fields, audience) and the exit code. The library-level checks of the same fixtures
//! are in `crates/scanner/tests/header_forms.rs`.

use crate::util::{fixture, json_lines, leakaudit, stderr};
use std::process::Output;

fn scan(name: &str, extra: &[&str]) -> Output {
    let path = fixture("headers").join(name);
    leakaudit()
        .arg("scan")
        .arg(&path)
        .args(["--output", "-", "--quiet"])
        .args(extra)
        .output()
        .unwrap()
}

/// (address, fields joined with '+', audience, in_group) of the one record `name` produces.
fn exposed(name: &str, extra: &[&str]) -> Vec<(String, String, u64, bool)> {
    let o = scan(name, extra);
    assert_eq!(o.status.code(), Some(1), "{name}: {}", stderr(&o));
    let recs = json_lines(&o.stdout);
    assert_eq!(recs.len(), 1, "{name}: {recs:?}");
    recs[0]["exposed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let fields: Vec<&str> = e["fields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap())
                .collect();
            (
                e["address"].as_str().unwrap().to_owned(),
                fields.join("+"),
                e["audience"].as_u64().unwrap(),
                e["in_group"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

fn all(addrs: &[&str], field: &str, audience: u64) -> Vec<(String, String, u64, bool)> {
    addrs
        .iter()
        .map(|a| (a.to_string(), field.to_owned(), audience, false))
        .collect()
}

#[test]
fn folded_headers_lf_and_crlf() {
    let want = all(
        &["alice@gmail.com", "bob@yahoo.com", "carol@acme.example"],
        "To",
        2,
    );
    assert_eq!(exposed("folded-lf.eml", &[]), want);
    assert_eq!(exposed("folded-crlf.eml", &[]), want);
    let o = scan("folded-crlf.eml", &[]);
    let r = &json_lines(&o.stdout)[0];
    assert_eq!(r["message_id"], "folded-crlf@shop.example");
    assert_eq!(r["subject"], "Your order has shipped");
    assert_eq!(r["from"], "support@shop.example");
}

#[test]
fn repeated_cc_lines_both_count() {
    let mut want = all(&["alice@gmail.com"], "To", 3);
    want.extend(all(
        &["bob@yahoo.com", "carol@acme.example", "dave@hotmail.com"],
        "Cc",
        3,
    ));
    assert_eq!(exposed("repeated-cc.eml", &[]), want);
}

#[test]
fn encoded_word_names_and_subject() {
    assert_eq!(
        exposed("encoded-word-name.eml", &[]),
        all(&["asa@gmail.com", "francois@free.fr"], "To", 1)
    );
    let r = &json_lines(&scan("encoded-word-name.eml", &[]).stdout)[0];
    assert_eq!(r["subject"], "Ihre Bestellung – versandt");
}

#[test]
fn encoded_words_with_commas_do_not_split() {
    assert_eq!(
        exposed("encoded-word-comma.eml", &[]),
        all(&["john@gmail.com", "jane@yahoo.com", "max@web.de"], "To", 2)
    );
}

#[test]
fn quoted_names_with_commas_and_at() {
    // jane@yahoo.com appears only inside a quoted display name: not a recipient.
    assert_eq!(
        exposed("quoted-name-comma-at.eml", &[]),
        all(
            &["john@gmail.com", "jane@outlook.com", "max@web.de"],
            "To",
            2
        )
    );
}

#[test]
fn comments_and_bare_addresses() {
    assert_eq!(
        exposed("comments.eml", &[]),
        all(
            &["alice@gmail.com", "bob@yahoo.com", "carol@acme.example"],
            "To",
            2
        )
    );
    assert_eq!(
        exposed("bare-addresses.eml", &[]),
        all(
            &[
                "alice@gmail.com",
                "bob@yahoo.com",
                "carol@acme.example",
                "dave@hotmail.com"
            ],
            "To",
            3
        )
    );
}

#[test]
fn raw_utf8_addresses_in_canonical_form() {
    assert_eq!(
        exposed("utf8-raw.eml", &[]),
        all(
            &[
                "josé@xn--exmple-cua.com",
                "李雷@xn--fsqu00a.xn--fiqs8s",
                "zoe@gmail.com"
            ],
            "To",
            2
        )
    );
}

#[test]
fn undisclosed_recipients_depends_on_archive_kind() {
    // The fixture keeps its Bcc header: in a transmitted copy that is the leak itself.
    assert_eq!(
        exposed("group-undisclosed.eml", &["--archive-kind", "transmitted"]),
        all(
            &["alice@gmail.com", "bob@yahoo.com", "carol@acme.example"],
            "Bcc",
            2
        )
    );
    // In the sender's Sent folder it is the proper way to send a newsletter.
    let o = scan("group-undisclosed.eml", &["--archive-kind", "sent"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
}

#[test]
fn named_group_members_are_exposed() {
    let got = exposed("group-members.eml", &[]);
    let want = vec![
        ("alice@gmail.com".to_owned(), "To".to_owned(), 3, true),
        ("bob@yahoo.com".to_owned(), "To".to_owned(), 3, true),
        ("other@acme.example".to_owned(), "To".to_owned(), 3, false),
        ("carol@web.de".to_owned(), "Cc".to_owned(), 3, true),
    ];
    assert_eq!(got, want);
}

#[test]
fn idn_twins_and_case_are_one_address() {
    assert_eq!(
        exposed("idn-twins.eml", &[]),
        vec![
            (
                "bob@xn--exmple-cua.com".to_owned(),
                "To+Cc".to_owned(),
                1,
                false
            ),
            (
                "other@xn--bcher-kva.de".to_owned(),
                "To".to_owned(),
                1,
                false
            ),
        ]
    );
    assert_eq!(
        exposed("mixed-case-domain.eml", &[]),
        all(&["alice@gmail.com", "bob@yahoo.com"], "To", 1)
    );
}

#[test]
fn resent_fields_and_bcc_by_archive_kind() {
    let want = vec![
        (
            "alice@gmail.com".to_owned(),
            "Resent-To".to_owned(),
            2,
            false,
        ),
        ("bob@yahoo.com".to_owned(), "Resent-Cc".to_owned(), 2, false),
        (
            "carol@acme.example".to_owned(),
            "Resent-Bcc".to_owned(),
            2,
            false,
        ),
    ];
    assert_eq!(
        exposed("resent.eml", &["--archive-kind", "transmitted"]),
        want
    );
    // Sent: the Resent-Bcc recipient is no longer visible, but still saw the others.
    assert_eq!(
        exposed("resent.eml", &["--archive-kind", "sent"]),
        want[..2].to_vec()
    );
}

#[test]
fn internal_domain_option_removes_a_party() {
    assert_eq!(
        exposed("folded-lf.eml", &["--internal-domain", "ACME.example"]),
        all(&["alice@gmail.com", "bob@yahoo.com"], "To", 1)
    );
}

#[test]
fn bad_encodings_and_addresses_are_warnings_the_rest_is_audited() {
    assert_eq!(
        exposed("invalid-encoding.eml", &[]),
        all(&["alice@gmail.com", "mueller@web.de"], "To", 1)
    );
    assert_eq!(
        exposed("no-domain.eml", &[]),
        all(&["alice@gmail.com", "bob@yahoo.com"], "To", 1)
    );
}

#[test]
fn single_recipient_forms_expose_nobody() {
    for name in ["no-blank-line.eml", "mbox-from-line.eml"] {
        let o = scan(name, &[]);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
        assert!(o.stdout.is_empty(), "{name}");
    }
}

#[test]
fn malformed_messages_exit_2_with_location_and_reason() {
    // Forced to read them as messages, the header parser reports why they are not.
    for (name, reason) in [
        (
            "malformed-no-header.eml",
            "no header block: the first line is not a header field",
        ),
        (
            "malformed-binary.eml",
            "no header block: binary data where the first header field should be",
        ),
    ] {
        let o = scan(name, &["--format", "eml"]);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains(&format!("{name}: error[malformed]: {reason}")),
            "{name}: {err}"
        );
        // Detected by content, the same files are reported as not mail and skipped.
        let o = leakaudit()
            .arg("scan")
            .arg(fixture("headers").join(name))
            .output()
            .unwrap();
        assert!(stderr(&o).contains("not mail"), "{name}: {}", stderr(&o));
    }
}

#[test]
fn malformed_message_inside_an_mbox_is_reported_and_the_rest_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.mbox");
    let mbox = "From a@b Mon Jan  1 00:00:00 2026\nTo: x@gmail.com\n\nbody\n\n\
                From a@b Mon Jan  1 00:00:00 2026\nHello, no header here\n\n\
                From a@b Mon Jan  1 00:00:00 2026\nTo: y@gmail.com, Z@Yahoo.com\n\nb\n";
    std::fs::write(&path, mbox).unwrap();
    let o = leakaudit()
        .arg("scan")
        .arg(&path)
        .args(["--output", "-", "--quiet"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("mixed.mbox@57: error[malformed]: no header block: the first line is not a header field"),
        "{err}"
    );
    let recs = json_lines(&o.stdout);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["exposed"][1]["address"], "z@yahoo.com");
}

#[test]
fn whole_fixture_folder_is_scanned_and_bad_files_do_not_stop_it() {
    let dir = fixture("headers");
    let o = leakaudit()
        .arg("scan")
        .arg(&dir)
        .args(["--output", "-", "--archive-kind", "transmitted"])
        .output()
        .unwrap();
    // The malformed fixtures are detected as not mail (errors: nothing in them was audited);
    // the rest is read and exposes all the same, and the exit code says there were errors.
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("not mail: 3"), "{}", stderr(&o));
    let recs = json_lines(&o.stdout);
    // Every fixture that exposes someone produced its record despite the malformed ones.
    let exposing = [
        "folded-lf",
        "folded-crlf",
        "repeated-cc",
        "encoded-word-name",
        "encoded-word-comma",
        "quoted-name",
        "comments",
        "bare",
        "utf8-raw",
        "group-undisclosed",
        "group-members",
        "idn-twins",
        "mixed-case",
        "resent",
        "invalid-encoding",
        "no-domain",
    ];
    assert_eq!(recs.len(), exposing.len(), "{recs:?}");
    for id in exposing {
        assert!(
            recs.iter()
                .any(|r| r["message_id"].as_str() == Some(&format!("{id}@shop.example"))),
            "{id} missing"
        );
    }
}

#[test]
fn twenty_thousand_address_header_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("batch.eml");
    let list: Vec<String> = (0..20_000)
        .map(|i| format!("=?utf-8?q?Kunde,_Nr_{i}?= <kunde{i}@gmail.com>"))
        .collect();
    let msg = format!(
        "From: promo@shop.example\nTo: {}\nSubject: batch\nMessage-ID: <batch@shop.example>\n\nbody\n",
        list.join(", ")
    );
    std::fs::write(&path, msg).unwrap();
    let o = leakaudit()
        .arg("scan")
        .arg(&path)
        .args(["--output", "-", "--quiet"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let recs = json_lines(&o.stdout);
    let exposed = recs[0]["exposed"].as_array().unwrap();
    assert_eq!(exposed.len(), 20_000);
    assert!(exposed.iter().all(|e| e["audience"] == 19_999));
    assert_eq!(exposed[12_345]["address"], "kunde12345@gmail.com");
}
