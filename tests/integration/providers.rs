//! Issue 33: email-provider event logs read as mail, with the envelope. Fixtures by provider
//! (`fixtures/providers/<provider>/`: a leak, a correct Bcc mailing, a broken log), and the
//! demo's mass mail rendered as provider events (`scripts/provider_log.py`, from the
//! provider's documented layout) giving the same incident as the mbox.

use crate::util::{
    affected_addresses, fixture, leakaudit, planned_resets, repo_root, s, stderr, stdout,
};
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

/// A provider's fixtures: each leak file is one message that `recipient-exposure` fails; the
/// correct Bcc mailing is six clean messages; the broken log reports lines 2, 3 and 5 (`why`:
/// the line-3 reason) with file, line and reason, and still reads its two good records.
fn check_fixtures(provider: &str, leaks: &[&str], why: &str) {
    let dir = fixture(&format!("providers/{provider}"));
    let exposure = BTreeSet::from(["recipient-exposure".to_string()]);
    for leak in leaks {
        let (code, v, err) = check_json(&dir.join(leak));
        assert_eq!(code, Some(1), "{provider} {leak}: {err}");
        assert_eq!(rule_ids(&v), exposure, "{provider} {leak}");
        // All the events of one message: one message.
        assert!(
            v.to_string().contains("\"messages\":1"),
            "{provider} {leak}: {v}"
        );
    }
    let (code, v, err) = check_json(&dir.join("bcc-done-right.jsonl"));
    assert_eq!(code, Some(0), "{provider}: {err}");
    assert!(rule_ids(&v).is_empty(), "{provider}: {v}");
    assert!(v.to_string().contains("\"messages\":6"), "{provider}: {v}");

    let (code, v, err) = check_json(&dir.join("broken.jsonl"));
    assert_eq!(code, Some(2), "{provider}: {err}");
    let expected = [
        (2, "error[malformed]: not JSON".to_string()),
        (3, format!("error[malformed]: {why}")),
        (
            5,
            "error[truncated]: the log ends inside an event".to_string(),
        ),
    ];
    for (line, what) in expected {
        let wanted = format!("broken.jsonl:{line}: {what}");
        assert!(err.contains(&wanted), "{provider}: {err}");
    }
    assert_eq!(rule_ids(&v), exposure, "{provider}");
    assert!(v.to_string().contains("\"messages\":2"), "{provider}: {v}");
}

#[test]
fn ses_fixtures_a_leak_a_correct_bcc_mailing_and_a_broken_log() {
    check_fixtures(
        "ses",
        &["leak.jsonl", "sns-notification.json"],
        "SES event without headers",
    );
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
    check_fixtures(
        "mailgun",
        &["leak.jsonl", "leak-page.json"],
        "Mailgun event without `message.headers`",
    );
}

#[test]
fn postmark_fixtures_a_leak_a_search_page_a_correct_bcc_mailing_and_a_broken_log() {
    check_fixtures(
        "postmark",
        &["leak.jsonl", "leak-search-page.json"],
        "Postmark message without `From`, `To` or `Cc`",
    );
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
    let addresses = affected_addresses(out);
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
    (addresses, campaigns, planned_resets(out))
}

/// The demo rendered by `scripts/provider_log.py PROVIDER` with each of `variants` (its
/// arguments) gives the same exposed addresses, campaigns and resets as the mbox. `None` when
/// python3 is missing (outside CI); else the first variant's log.
fn assert_same_incident(provider: &str, variants: &[&[&str]], dir: &Path) -> Option<PathBuf> {
    let mbox = fixture("demo/outbound.mbox");
    let mut logs = Vec::new();
    for (i, args) in variants.iter().enumerate() {
        let log = dir.join(format!("{provider}-{i}.jsonl"));
        if !provider_log(provider, &mbox, args, &log) {
            return None;
        }
        logs.push(log);
    }
    let from_mbox = incident_facts(&mbox, &dir.join(format!("{provider}-mbox")));
    assert_eq!(from_mbox.0.len(), 799);
    assert!(!from_mbox.1.is_empty() && !from_mbox.2.is_empty());
    for (log, args) in logs.iter().zip(variants) {
        let from_log = incident_facts(log, &log.with_extension("out"));
        assert_eq!(
            from_log.0, from_mbox.0,
            "{provider} {args:?}: exposed addresses"
        );
        assert_eq!(from_log.1, from_mbox.1, "{provider} {args:?}: campaigns");
        assert_eq!(
            from_log.2, from_mbox.2,
            "{provider} {args:?}: accounts reset"
        );
    }
    logs.into_iter().next()
}

#[test]
fn the_demo_as_mailgun_events_gives_the_same_incident_as_the_mbox() {
    let dir = tempfile::tempdir().unwrap();
    assert_same_incident("mailgun", &[&["--deliveries"], &["--pages"]], dir.path());
}

#[test]
fn the_demo_as_postmark_messages_gives_the_same_incident_as_the_mbox() {
    let dir = tempfile::tempdir().unwrap();
    assert_same_incident("postmark", &[&[], &["--pages"]], dir.path());
}

#[test]
fn the_demo_as_ses_events_gives_the_same_incident_as_the_mbox() {
    let dir = tempfile::tempdir().unwrap();
    let Some(events) = assert_same_incident("ses", &[&["--deliveries"], &["--sns"]], dir.path())
    else {
        return;
    };
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
