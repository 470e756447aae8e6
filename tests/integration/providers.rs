//! Issue 33: email-provider event logs read as mail, with the envelope. Fixtures by provider
//! (`fixtures/providers/<provider>/`: a leak, a correct Bcc mailing, a broken log), and the
//! demo's mass mail rendered as provider events (`scripts/provider_log.py`, from the
//! provider's documented layout) giving the same incident as the mbox.

use crate::util::{fixture, leakaudit, repo_root, s, stderr, stdout};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn python() -> Option<PathBuf> {
    let ok = Command::new("python3").arg("--version").output().is_ok();
    assert!(
        ok || std::env::var_os("CI").is_none(),
        "python3 is missing under CI"
    );
    ok.then(|| PathBuf::from("python3"))
}

/// `scripts/provider_log.py PROVIDER MBOX ARGS...` into `out`.
fn provider_log(provider: &str, mbox: &Path, args: &[&str], out: &Path) -> bool {
    let Some(py) = python() else { return false };
    let o = Command::new(py)
        .arg(repo_root().join("scripts/provider_log.py"))
        .arg(provider)
        .arg(mbox)
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::write(out, &o.stdout).unwrap();
    true
}

fn check_json(path: &Path) -> (Option<i32>, Value, String) {
    let o = leakaudit()
        .args(["check", "--format", "json"])
        .arg(path)
        .output()
        .unwrap();
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap_or(Value::Null);
    (o.status.code(), v, stderr(&o))
}

fn rule_ids(v: &Value) -> BTreeSet<String> {
    v.to_string()
        .split("\"rule_id\":\"")
        .skip(1)
        .filter_map(|r| r.split('"').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn ses_fixtures_a_leak_a_correct_bcc_mailing_and_a_broken_log() {
    let dir = fixture("providers/ses");
    let (code, v, err) = check_json(&dir.join("leak.jsonl"));
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(
        rule_ids(&v),
        BTreeSet::from(["recipient-exposure".to_string()])
    );
    // Six events of one message: one message.
    assert!(v.to_string().contains("\"messages\":1"), "{v}");

    let (code, v, err) = check_json(&dir.join("sns-notification.json"));
    assert_eq!(code, Some(1), "an SNS notification: {err}");
    assert_eq!(
        rule_ids(&v),
        BTreeSet::from(["recipient-exposure".to_string()])
    );

    let (code, v, err) = check_json(&dir.join("bcc-done-right.jsonl"));
    assert_eq!(code, Some(0), "{err}");
    assert!(rule_ids(&v).is_empty(), "{v}");
    assert!(v.to_string().contains("\"messages\":6"), "{v}");

    // Broken lines are errors with file, line and reason; the rest is read.
    let (code, v, err) = check_json(&dir.join("broken.jsonl"));
    assert_eq!(code, Some(2), "{err}");
    let name = "broken.jsonl";
    for (line, what) in [
        (2, "error[malformed]: not JSON"),
        (3, "error[malformed]: SES event without headers"),
        (5, "error[truncated]: the log ends inside an event"),
    ] {
        assert!(err.contains(&format!("{name}:{line}: {what}")), "{err}");
    }
    assert_eq!(
        rule_ids(&v),
        BTreeSet::from(["recipient-exposure".to_string()])
    );
    assert!(v.to_string().contains("\"messages\":2"), "{v}");

    // Forced on what is not an SES log, every line says so.
    let o = leakaudit()
        .args(["scan", "--input-format", "ses", "--quiet"])
        .arg(fixture("demo/outbound.mbox"))
        .args(["-o", "/dev/null"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("outbound.mbox:1: error[malformed]: not JSON"));
}

#[test]
fn mailgun_fixtures_a_leak_a_page_a_correct_bcc_mailing_and_a_broken_log() {
    let dir = fixture("providers/mailgun");
    for leak in ["leak.jsonl", "leak-page.json"] {
        let (code, v, err) = check_json(&dir.join(leak));
        assert_eq!(code, Some(1), "{leak}: {err}");
        assert_eq!(
            rule_ids(&v),
            BTreeSet::from(["recipient-exposure".to_string()])
        );
        // Ten events (accepted and delivered, five recipients) of one message: one message.
        assert!(v.to_string().contains("\"messages\":1"), "{leak}: {v}");
    }
    let (code, v, err) = check_json(&dir.join("bcc-done-right.jsonl"));
    assert_eq!(code, Some(0), "{err}");
    assert!(rule_ids(&v).is_empty(), "{v}");
    assert!(v.to_string().contains("\"messages\":6"), "{v}");

    let (code, v, err) = check_json(&dir.join("broken.jsonl"));
    assert_eq!(code, Some(2), "{err}");
    for (line, what) in [
        (2, "error[malformed]: not JSON"),
        (
            3,
            "error[malformed]: Mailgun event without `message.headers`",
        ),
        (5, "error[truncated]: the log ends inside an event"),
    ] {
        assert!(
            err.contains(&format!("broken.jsonl:{line}: {what}")),
            "{err}"
        );
    }
    assert_eq!(
        rule_ids(&v),
        BTreeSet::from(["recipient-exposure".to_string()])
    );
}

#[test]
fn postmark_fixtures_a_leak_a_search_page_a_correct_bcc_mailing_and_a_broken_log() {
    let dir = fixture("providers/postmark");
    let exposure = BTreeSet::from(["recipient-exposure".to_string()]);
    for leak in ["leak.jsonl", "leak-search-page.json"] {
        let (code, v, err) = check_json(&dir.join(leak));
        assert_eq!(code, Some(1), "{leak}: {err}");
        assert_eq!(rule_ids(&v), exposure);
        assert!(v.to_string().contains("\"messages\":1"), "{leak}: {v}");
    }
    let (code, v, err) = check_json(&dir.join("bcc-done-right.jsonl"));
    assert_eq!(code, Some(0), "{err}");
    assert!(rule_ids(&v).is_empty(), "{v}");
    assert!(v.to_string().contains("\"messages\":6"), "{v}");

    let (code, v, err) = check_json(&dir.join("broken.jsonl"));
    assert_eq!(code, Some(2), "{err}");
    let expected = [
        (2, "error[malformed]: not JSON"),
        (
            3,
            "error[malformed]: Postmark message without `From`, `To` or `Cc`",
        ),
        (5, "error[truncated]: the log ends inside an event"),
    ];
    for (line, what) in expected {
        let wanted = format!("broken.jsonl:{line}: {what}");
        assert!(err.contains(&wanted), "{err}");
    }
    assert_eq!(rule_ids(&v), exposure);
}

/// What must not change between the mbox and its provider log: exposed addresses, campaigns
/// (chunks and addresses of each), and the accounts reset.
fn incident_facts(archive: &Path, out: &Path) -> (BTreeSet<String>, Vec<String>, BTreeSet<String>) {
    let o = leakaudit()
        .arg("incident")
        .arg(archive)
        .arg("--accounts")
        .arg(fixture("demo/accounts.csv"))
        .arg("--out")
        .arg(out)
        .args(["--quiet", "--show-addresses"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let csv = std::fs::read_to_string(out.join("affected.csv")).unwrap();
    let addresses: BTreeSet<String> = csv
        .lines()
        .filter(|l| !l.starts_with('#'))
        .skip(1)
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect();
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let campaigns: Vec<String> = summary["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{} {} chunks {} addresses {} exposures",
                c["sender"], c["chunks"], c["addresses_exposed"], c["address_exposures"]
            )
        })
        .collect();
    let plan: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("plan.json")).unwrap()).unwrap();
    let resets: BTreeSet<String> = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "force-password-reset")
        .map(|a| a["account"].as_str().unwrap().to_string())
        .collect();
    (addresses, campaigns, resets)
}

#[test]
fn the_demo_as_mailgun_events_gives_the_same_incident_as_the_mbox() {
    let dir = tempfile::tempdir().unwrap();
    let mbox = fixture("demo/outbound.mbox");
    let events = dir.path().join("mailgun-events.jsonl");
    let pages = dir.path().join("mailgun-pages.jsonl");
    if !provider_log("mailgun", &mbox, &["--deliveries"], &events)
        || !provider_log("mailgun", &mbox, &["--pages"], &pages)
    {
        return;
    }
    let from_mbox = incident_facts(&mbox, &dir.path().join("mbox"));
    for (name, log) in [("events", &events), ("pages", &pages)] {
        let from_log = incident_facts(log, &dir.path().join(name));
        assert_eq!(from_log.0, from_mbox.0, "{name}: exposed addresses");
        assert_eq!(from_log.1, from_mbox.1, "{name}: campaigns");
        assert_eq!(from_log.2, from_mbox.2, "{name}: accounts reset");
    }
}

#[test]
fn the_demo_as_postmark_messages_gives_the_same_incident_as_the_mbox() {
    let dir = tempfile::tempdir().unwrap();
    let mbox = fixture("demo/outbound.mbox");
    let records = dir.path().join("postmark.jsonl");
    let pages = dir.path().join("postmark-pages.jsonl");
    if !provider_log("postmark", &mbox, &[], &records)
        || !provider_log("postmark", &mbox, &["--pages"], &pages)
    {
        return;
    }
    let from_mbox = incident_facts(&mbox, &dir.path().join("mbox"));
    for (name, log) in [("records", &records), ("pages", &pages)] {
        let from_log = incident_facts(log, &dir.path().join(name));
        assert_eq!(from_log.0, from_mbox.0, "{name}: exposed addresses");
        assert_eq!(from_log.1, from_mbox.1, "{name}: campaigns");
        assert_eq!(from_log.2, from_mbox.2, "{name}: accounts reset");
    }
}

#[test]
fn the_demo_as_ses_events_gives_the_same_incident_as_the_mbox() {
    let dir = tempfile::tempdir().unwrap();
    let mbox = fixture("demo/outbound.mbox");
    let events = dir.path().join("ses-events.jsonl");
    let sns = dir.path().join("ses-sns.jsonl");
    if !provider_log("ses", &mbox, &["--deliveries"], &events)
        || !provider_log("ses", &mbox, &["--sns"], &sns)
    {
        return;
    }
    let from_mbox = incident_facts(&mbox, &dir.path().join("mbox"));
    assert_eq!(from_mbox.0.len(), 799);
    assert!(!from_mbox.1.is_empty() && !from_mbox.2.is_empty());
    for (name, log) in [("firehose", &events), ("sns", &sns)] {
        let from_log = incident_facts(log, &dir.path().join(name));
        assert_eq!(from_log.0, from_mbox.0, "{name}: exposed addresses");
        assert_eq!(from_log.1, from_mbox.1, "{name}: campaigns");
        assert_eq!(from_log.2, from_mbox.2, "{name}: accounts reset");
    }
    // Each message once, however many events it has.
    let o = leakaudit()
        .args(["scan", "--quiet", "-o"])
        .arg(dir.path().join("records.jsonl"))
        .arg(s(&events))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
    let records = std::fs::read_to_string(dir.path().join("records.jsonl")).unwrap();
    assert_eq!(
        records.lines().count(),
        9,
        "the 9 exposing messages, once each"
    );
}
