//! Exchange envelope journal reports (issue 28): the original inside each report is audited,
//! with the report's envelope recipients as audience; a broken report is an error; a mailbox
//! mixing reports and ordinary messages is read right. Fixtures: `fixtures/readers/journal/`.

use crate::util::{affected_addresses, fixture, json_lines, leakaudit, planned_resets, stderr};
use std::process::Output;

fn scan(name: &str, extra: &[&str]) -> Output {
    leakaudit()
        .arg("scan")
        .arg(fixture("readers/journal").join(name))
        .args(["--output", "-", "-q"])
        .args(extra)
        .output()
        .unwrap()
}

/// (message id, [(exposed address, audience)]) of every record.
fn records(o: &Output) -> Vec<(String, Vec<(String, u64)>)> {
    json_lines(&o.stdout)
        .iter()
        .map(|r| {
            (
                r["message_id"].as_str().unwrap().to_string(),
                r["exposed"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| {
                        (
                            e["address"].as_str().unwrap().to_string(),
                            e["audience"].as_u64().unwrap(),
                        )
                    })
                    .collect(),
            )
        })
        .collect()
}

fn pairs(v: &[(&str, u64)]) -> Vec<(String, u64)> {
    v.iter().map(|(a, n)| (a.to_string(), *n)).collect()
}

#[test]
fn the_original_inside_a_report_is_audited_with_its_envelope() {
    // Regression: the reports were read as messages from the journaling agent to the journal
    // mailbox, and a leak read as clean.
    let o = scan("leak.eml", &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(
        records(&o),
        [(
            "leak@shop.example".to_string(),
            pairs(&[
                ("ann@gmail.com", 2),
                ("bob@yahoo.com", 2),
                ("carl@example.org", 2)
            ])
        )]
    );
    // A correct Bcc mailing: the envelope lists everyone, the original shows nobody.
    let o = scan("bcc-mailing.eml", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(records(&o).is_empty());
    // An expanded distribution list: its members received it without being shown.
    let o = scan("expanded-list.eml", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The To/Cc list was seen by a Bcc recipient and a forwarded-to recipient as well.
    let o = scan("forwarded.eml", &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(
        records(&o),
        [(
            "fwd@shop.example".to_string(),
            pairs(&[("ann@gmail.com", 3), ("bob@yahoo.com", 3)])
        )]
    );
    // Who saw them without being shown: the Bcc and the forwarded-to recipients.
    let saw: Vec<String> = json_lines(&o.stdout)[0]["saw_others"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    assert_eq!(saw, ["gina@icloud.com", "hal@aol.com"]);
    // Newer versions write the envelope as text/html.
    let o = scan("html-envelope.eml", &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(records(&o)[0].0, "html@shop.example");
}

#[test]
fn a_report_without_its_original_is_an_error_never_clean() {
    let o = scan("broken-no-original.eml", &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(
            "broken-no-original.eml: error[malformed]: journal report has no attached original (message/rfc822)"
        ),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_mailbox_of_reports_and_ordinary_messages_is_read_right() {
    let o = scan("journal.mbox", &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    // The summary says the journal was recognised (`-q` hides it: run without).
    let loud = leakaudit()
        .arg("scan")
        .arg(fixture("readers/journal/journal.mbox"))
        .args(["--output", "-"])
        .output()
        .unwrap();
    assert!(
        stderr(&loud).contains(
            "messages read: 4 (mbox 4)\njournal reports: 3 (the original inside each audited"
        ),
        "{}",
        stderr(&loud)
    );
    // Two reports of one message (each lists part of its envelope) are one record with the
    // union of their envelopes; a clean Bcc mailing; a plain message that exposes.
    assert_eq!(
        records(&o),
        [
            (
                "split@shop.example".to_string(),
                pairs(&[("ann@gmail.com", 2), ("bob@yahoo.com", 2)])
            ),
            (
                "plain@shop.example".to_string(),
                pairs(&[("nia@gmail.com", 1), ("oli@yahoo.com", 1)])
            ),
        ]
    );
    let split = &json_lines(&o.stdout)[0];
    assert_eq!(split["audience_size"], 3);
    assert_eq!(split["saw_others"][0], "max@web.de");
    // Forced, every message must be a report: the plain one is an error, the rest is read.
    let o = scan("journal.mbox", &["--input-format", "journal"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(
            "journal.mbox@2848: error[malformed]: journal report is not a MIME multipart message"
        ),
        "{}",
        stderr(&o)
    );
    assert_eq!(records(&o).len(), 1, "the two reports, merged");
}

#[test]
fn a_correct_bcc_mailing_with_40_envelope_recipients_passes_gate_and_audit() {
    // The envelope says who received the message, not what anyone saw: under the gate (which
    // reads Bcc headers as transmitted) the report's Bcc lines must not count as visible, and
    // the report's list is not the original's content.
    let dir = tempfile::tempdir().unwrap();
    let lines: String = (0..40)
        .map(|n| format!("Bcc: customer{n}@gmail.com\n"))
        .collect();
    let report = format!(
        "From: journal@shop.example\nTo: journal@shop.example\nSubject: Offer\nX-MS-Journal-Report:\n\
         MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\n\
         Sender: news@shop.example\nSubject: Offer\n{lines}\n--b\nContent-Type: message/rfc822\n\n\
         From: news@shop.example\nTo: undisclosed-recipients:;\nSubject: Offer\nMessage-ID: <o@shop.example>\n\nHello\n\n--b--\n"
    );
    let path = dir.path().join("report.eml");
    std::fs::write(&path, report).unwrap();
    for profile in ["gate", "audit"] {
        let o = leakaudit()
            .args(["check", "-q", "--profile", profile])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{profile}: {}",
            crate::util::stdout(&o)
        );
    }
}

/// The demo's mbox as a journal mailbox (every message that names its recipients wrapped in a
/// report by `journal::render_mbox`, the same bytes as `examples/to_journal.rs`) gives the
/// same incident as the mbox itself: exposing messages, campaigns, exposed addresses, resets.
/// The mailer also Bcc'd a deliverability-monitoring seed address at a third party on its bulk
/// sends, as mass mailers do: the journal's envelope is the only trace of it, and it saw every
/// chunk's list.
#[test]
fn the_demo_as_a_journal_mailbox_gives_the_same_incident() {
    use serde_json::Value;
    let dir = tempfile::tempdir().unwrap();
    let mbox = std::fs::read(fixture("demo/outbound.mbox")).unwrap();
    let journal = dir.path().join("journal.mbox");
    std::fs::write(
        &journal,
        leakaudit_scanner::read::journal::render_mbox(&mbox, &[SEED]),
    )
    .unwrap();
    const SEED: &str = "seed-4711@inbox-monitor.example";
    let run = |input: &std::path::Path, out: &str| {
        let out = dir.path().join(out);
        let o = leakaudit()
            .arg("incident")
            .arg(input)
            .arg("--accounts")
            .arg(fixture("demo/accounts.csv"))
            .arg("--out")
            .arg(&out)
            .args(["--detected-at", "2019-11-04T08:30:00Z", "--quiet"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        let read = |f: &str| std::fs::read_to_string(out.join(f)).unwrap();
        let summary: Value = serde_json::from_str(&read("summary.json")).unwrap();
        let affected = affected_addresses(&out);
        let resets = planned_resets(&out);
        let saw = std::fs::read_to_string(out.join("saw-others.csv")).ok();
        (summary, affected, resets, saw)
    };
    let (plain, plain_affected, plain_resets, plain_saw) =
        run(&fixture("demo/outbound.mbox"), "plain");
    let (jr, jr_affected, jr_resets, jr_saw) = run(&journal, "journal");
    for k in [
        "messages_scanned",
        "exposing_messages",
        "campaigns",
        "single_messages",
        "addresses_exposed",
        "accounts_affected",
        "resets_planned",
    ] {
        assert_eq!(plain["headline"][k], jr["headline"][k], "{k}");
    }
    assert_eq!(jr["headline"]["exposing_messages"], 9);
    assert_eq!(jr["campaigns"][0]["chunks"], 8);
    assert_eq!(plain_affected.len(), 799);
    assert_eq!(plain_affected, jr_affected);
    assert_eq!(plain_resets.len(), 204);
    assert_eq!(plain_resets, jr_resets);
    assert_eq!(plain_saw, None, "a plain mbox has no envelope");
    let saw = jr_saw.expect("saw-others.csv");
    let rows: Vec<Vec<&str>> = saw
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 1, "{saw}");
    assert_eq!(rows[0][0], SEED);
    assert_eq!(rows[0][1], "8", "the seed received the 8 chunks: {saw}");
    assert!(
        !jr_affected.contains(SEED),
        "it saw others; it was not exposed"
    );
}

/// The Bcc and forwarded-to recipients of a leaking message saw the To/Cc list without being
/// shown: `incident` lists them apart (`saw-others.csv`), never as exposed data subjects.
#[test]
fn incident_lists_who_saw_others_apart_from_the_affected() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = leakaudit()
        .arg("incident")
        .arg(fixture("readers/journal/forwarded.eml"))
        .arg("--accounts")
        .arg(fixture("demo/accounts.csv"))
        .arg("--out")
        .arg(&out)
        .args([
            "--detected-at",
            "2019-11-04T08:30:00Z",
            "--min-severity",
            "low",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("2 recipient(s) saw exposed addresses without being shown"),
        "{}",
        stderr(&o)
    );
    let saw = std::fs::read_to_string(out.join("saw-others.csv")).unwrap();
    let addresses: Vec<&str> = saw
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next())
        .collect();
    assert_eq!(addresses, ["gina@icloud.com", "hal@aol.com"]);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(out.join("saw-others.csv"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let affected = std::fs::read_to_string(out.join("affected.csv")).unwrap();
    assert!(affected.contains("ann@gmail.com") && affected.contains("bob@yahoo.com"));
    assert!(!affected.contains("gina@icloud.com") && !affected.contains("hal@aol.com"));
}

#[test]
fn affected_writes_who_saw_others_on_request_and_says_so_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let saw = dir.path().join("saw.csv");
    let run = |extra: &[&str]| {
        leakaudit()
            .arg("affected")
            .arg(fixture("readers/journal/forwarded.eml"))
            .args(["--min-severity", "low", "-o"])
            .arg(dir.path().join("affected.csv"))
            .args(extra)
            .output()
            .unwrap()
    };
    let o = run(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("2 recipient(s) saw exposed addresses without being shown (journal envelopes): list them with --saw-others FILE"),
        "{}",
        stderr(&o)
    );
    let o = run(&["--saw-others", saw.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let text = std::fs::read_to_string(&saw).unwrap();
    assert!(text.starts_with("address,messages,first_received,last_received,message_ids\n"));
    assert!(
        text.contains("gina@icloud.com,1,") && text.contains("hal@aol.com,1,"),
        "{text}"
    );
    // Never beside a pseudonymised list: it holds addresses in clear.
    let o = run(&["--saw-others", saw.to_str().unwrap(), "--pseudonymise-env"]);
    assert_eq!(o.status.code(), Some(2));
}
