//! Issue 10 items 4, 5 and 8 through the binary: folders that will hold secrets (`--out`,
//! `--outbox`, `--log`) must be ours and private, archive text never reaches a terminal or a
//! CSV with its control characters, and a limit that stops the audit of part of a message is
//! reported instead of passing the gate. Fixtures: `fixtures/hardening/` (see its README).

use crate::util::{fixture, json_lines, leakaudit, run, s, stderr, stdout, text};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

fn shared_dir(p: &Path) {
    std::fs::create_dir(p).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o1777)).unwrap();
}

/// A store with the remediation fixture's accounts and a plan for its archive.
struct Plan {
    dir: tempfile::TempDir,
    db: PathBuf,
    plan: PathBuf,
}

fn plan() -> Plan {
    let dir = tempfile::tempdir().unwrap();
    let rem = |f: &str| fixture("remediation").join(f);
    let db = dir.path().join("accounts.db");
    let o = run(&[
        "accounts",
        "import",
        s(&rem("accounts.csv")),
        "--db",
        s(&db),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let affected = dir.path().join("affected.json");
    let o = run(&[
        "affected",
        s(&rem("archive.mbox")),
        "--accounts",
        s(&db),
        "--format",
        "json",
        "-o",
        s(&affected),
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let plan = dir.path().join("plan.json");
    let o = run(&[
        "remediate",
        "plan",
        "--affected",
        s(&affected),
        "--db",
        s(&db),
        "--out",
        s(&plan),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    Plan { dir, db, plan }
}

fn apply(p: &Plan, outbox: &Path, log: &Path) -> Output {
    leakaudit()
        .args([
            "remediate",
            "apply",
            "--plan",
            s(&p.plan),
            "--db",
            s(&p.db),
            "--outbox",
            s(outbox),
            "--log",
            s(log),
            "--reset-base-url",
            "https://shop.example/reset",
            "--from",
            "Security <security@shop.example>",
        ])
        .output()
        .unwrap()
}

/// Nothing was reset: the store has no done action (the refusal came before any change).
fn nothing_done(p: &Plan) {
    let o = run(&["remediate", "status", "--db", s(&p.db)]);
    let out = stdout(&o);
    for line in out
        .lines()
        .filter(|l| l.starts_with("  ") && !l.contains("planned"))
    {
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols.get(2), Some(&"0"), "an action was done: {out}");
    }
}

#[test]
fn shared_1777_folder_as_out_or_outbox_is_refused_and_keeps_its_mode() {
    let p = plan();
    let shared = p.dir.path().join("shared");
    shared_dir(&shared);
    let o = run(&[
        "incident",
        s(&fixture("demo/outbound.mbox")),
        "--accounts",
        s(&fixture("demo/accounts.csv")),
        "--out",
        s(&shared),
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("others can write"), "{}", text(&o));
    assert_eq!(mode(&shared), 0o1777, "--out chmodded a shared folder");
    assert_eq!(std::fs::read_dir(&shared).unwrap().count(), 0);

    let o = apply(&p, &shared, &p.dir.path().join("audit.jsonl"));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("others can write"), "{}", text(&o));
    assert_eq!(mode(&shared), 0o1777, "--outbox chmodded a shared folder");
    assert_eq!(std::fs::read_dir(&shared).unwrap().count(), 0);
    nothing_done(&p);
}

#[test]
fn foreign_owned_0777_outbox_with_planted_symlink_is_refused() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: chowning a folder to `nobody` needs root");
        return;
    }
    let p = plan();
    let outbox = p.dir.path().join("outbox");
    let attacker = p.dir.path().join("attacker");
    for d in [&outbox, &attacker] {
        std::fs::create_dir(d).unwrap();
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    std::os::unix::fs::symlink(&attacker, outbox.join("staged")).unwrap();
    let nobody = 65534;
    std::os::unix::fs::chown(&outbox, Some(nobody), Some(nobody)).unwrap();
    let o = apply(&p, &outbox, &p.dir.path().join("audit.jsonl"));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("owned by uid {nobody}")),
        "{}",
        text(&o)
    );
    assert_eq!(
        std::fs::read_dir(&attacker).unwrap().count(),
        0,
        "a message was written through the planted link"
    );
    let meta = std::fs::symlink_metadata(&outbox).unwrap();
    assert_eq!(
        (meta.uid(), mode(&outbox)),
        (nobody, 0o777),
        "outbox changed"
    );
    nothing_done(&p);
}

#[test]
fn symlink_planted_in_outbox_staged_new_is_refused() {
    let p = plan();
    let outbox = p.dir.path().join("outbox");
    let elsewhere = p.dir.path().join("elsewhere");
    std::fs::create_dir_all(outbox.join("staged")).unwrap();
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, outbox.join("staged/new")).unwrap();
    let o = apply(&p, &outbox, &p.dir.path().join("audit.jsonl"));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("symbolic link"), "{}", text(&o));
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    nothing_done(&p);
}

#[test]
fn symlinked_log_is_refused_and_its_target_untouched() {
    let p = plan();
    let victim = p.dir.path().join("victim.txt");
    std::fs::write(&victim, "keep me\n").unwrap();
    let log = p.dir.path().join("audit.jsonl");
    std::os::unix::fs::symlink(&victim, &log).unwrap();
    let o = apply(&p, &p.dir.path().join("outbox"), &log);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("symbolic link"), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me\n");
    nothing_done(&p);
}

/// `\x1b]0;pwned\x07` (window title) and `\x1b[2J` (clear screen) in the Subject,
/// Message-ID, From, To and the file name.
const ESC_NAME: &str = "m-\x1b]0;pwned\x07-\x1b[2J.eml";

fn assert_no_raw_escape(what: &str, bytes: &[u8]) {
    assert!(
        !bytes.iter().any(|b| *b == 0x1b || *b == 0x07),
        "raw ESC/BEL in {what}: {:?}",
        String::from_utf8_lossy(bytes)
    );
}

#[test]
fn terminal_escapes_in_archive_text_never_reach_a_terminal_or_csv_regression() {
    let dir = tempfile::tempdir().unwrap();
    let mail = dir.path().join(ESC_NAME);
    std::fs::copy(fixture("hardening/terminal-escapes.eml"), &mail).unwrap();
    let m = s(&mail);
    let accounts = fixture("hardening/terminal-escapes-accounts.csv");
    let out = dir.path().join("out");
    let runs: Vec<(&str, Vec<&str>)> = vec![
        ("scan", vec!["scan", m]),
        ("check", vec!["check", m]),
        (
            "check --format junit",
            vec!["check", m, "--format", "junit"],
        ),
        (
            "check --format sarif",
            vec!["check", m, "--format", "sarif"],
        ),
        ("check --format json", vec!["check", m, "--format", "json"]),
        ("affected", vec!["affected", m]),
        (
            "incident",
            vec!["incident", m, "--accounts", s(&accounts), "--out", s(&out)],
        ),
    ];
    for (what, args) in &runs {
        let o = run(args);
        assert!(
            matches!(o.status.code(), Some(0..=2)),
            "{what}: {}",
            text(&o)
        );
        assert_no_raw_escape(&format!("{what} stdout"), &o.stdout);
        assert_no_raw_escape(&format!("{what} stderr"), &o.stderr);
        // The escaped form is shown, so the value is still recognisable.
        assert!(
            text(&o).contains("\\x1b]0;pwned\\x07") || *what == "scan",
            "{what}: {}",
            text(&o)
        );
    }
    for f in [
        "campaigns.csv",
        "affected.csv",
        "breach-record.md",
        "summary.json",
    ] {
        assert_no_raw_escape(f, &std::fs::read(out.join(f)).unwrap());
    }
    let campaigns = std::fs::read_to_string(out.join("campaigns.csv")).unwrap();
    assert!(
        campaigns.contains("Your order \\x1b]0;pwned\\x07 is ready"),
        "{campaigns}"
    );
    // The scan's records are JSON: the values are there, escaped by JSON itself.
    let o = run(&["scan", m]);
    let recs = json_lines(&o.stdout);
    assert_eq!(
        recs[0]["subject"],
        "Your order \x1b]0;pwned\x07 is ready \x1b[2J"
    );
}

fn limits(name: &str) -> String {
    s(&fixture("hardening/limits").join(name)).to_string()
}

#[test]
fn aws_key_at_depth_9_or_in_part_71_passed_the_gate_as_ok_regression() {
    for (name, limit) in [
        ("aws-key-at-mime-depth-9.eml", "mime-depth"),
        ("aws-key-in-part-71.eml", "mime-parts"),
    ] {
        let path = limits(name);
        let o = run(&["check", &path]);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", text(&o));
        assert!(!stdout(&o).contains("ok:"), "{name}: {}", stdout(&o));
        let err = stderr(&o);
        assert!(
            err.contains(&format!("{path}: error[not-fully-audited]")) && err.contains(limit),
            "{name}: {err}"
        );
        let o = run(&["check", &path, "--format", "json", "--quiet"]);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", text(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["summary"]["errors"], 1, "{name}: {v}");

        // The scan runs no content rule but says which messages `check` cannot see whole.
        let dir = tempfile::tempdir().unwrap();
        let problems = dir.path().join("problems.jsonl");
        let o = run(&["scan", &path, "--problems", s(&problems)]);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", text(&o));
        assert!(stderr(&o).contains("not fully audited"), "{}", stderr(&o));
        let p = json_lines(&std::fs::read(&problems).unwrap());
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0]["kind"], "not-fully-audited");
        assert_eq!(p[0]["location"]["path"], path.as_str());
        assert!(p[0]["reason"].as_str().unwrap().contains(limit), "{p:?}");
    }
    // Just inside the limits the same key is found and nothing is reported.
    for name in ["aws-key-at-mime-depth-8.eml", "aws-key-in-part-60.eml"] {
        let o = run(&["check", &limits(name)]);
        assert_eq!(o.status.code(), Some(1), "{name}: {}", text(&o));
        assert!(stdout(&o).contains("[aws-access-key]"), "{}", stdout(&o));
        assert!(!stderr(&o).contains("not-fully-audited"), "{}", stderr(&o));
    }
}

fn incident(accounts: &Path, out: &Path) {
    let o = run(&[
        "incident",
        s(&fixture("demo/outbound.mbox")),
        "--accounts",
        s(accounts),
        "--out",
        s(out),
        "--quiet",
    ]);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", text(&o));
}

/// The `<td>` texts of each row of the report table `data-table="NAME"`.
fn html_rows(html: &str, name: &str) -> Vec<Vec<String>> {
    let start = html.find(&format!(r#"data-table="{name}""#)).unwrap();
    let table = &html[start..start + html[start..].find("</table>").unwrap()];
    table
        .split("<tr>")
        .skip(2)
        .map(|row| {
            row.split("<td")
                .skip(1)
                .map(|c| {
                    let c = &c[c.find('>').unwrap() + 1..];
                    c[..c.find("</td>").unwrap()].to_string()
                })
                .collect()
        })
        .collect()
}

#[test]
fn audience_167_in_the_table_vs_max_audience_166_in_campaigns_csv_regression() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    incident(&fixture("demo/accounts.csv"), &out);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let top = summary["top_messages"].as_array().unwrap();
    assert!(!top.is_empty());
    // campaigns.csv: message_id -> max_audience.
    let csv = std::fs::read_to_string(out.join("campaigns.csv")).unwrap();
    // The subject is the last column: the first eight never hold a comma in the demo.
    let by_id: std::collections::HashMap<String, u64> = csv
        .lines()
        .skip(1)
        .map(|l| {
            let r: Vec<&str> = l.splitn(9, ',').collect();
            (r[3].to_string(), r[7].parse().unwrap())
        })
        .collect();
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let rows = html_rows(&html, "messages");
    assert_eq!(rows.len(), top.len());
    let mut compared = 0;
    for (m, row) in top.iter().zip(&rows) {
        let audience = m["audience"].as_u64().unwrap();
        // One definition: other parties who saw an exposed address, i.e. parties - 1.
        assert!(audience < m["audience_parties"].as_u64().unwrap(), "{m}");
        assert_eq!(
            row[4].replace(',', ""),
            audience.to_string(),
            "table vs summary.json: {m}"
        );
        if let Some(csv_audience) = m["message_id"].as_str().and_then(|id| by_id.get(id)) {
            assert_eq!(
                *csv_audience, audience,
                "campaigns.csv vs summary.json: {m}"
            );
            compared += 1;
        }
    }
    assert!(compared > 0, "no top message found in campaigns.csv");
    for c in summary["campaigns"].as_array().unwrap() {
        let max = top
            .iter()
            .filter(|m| m["campaign"] == c["id"])
            .map(|m| m["audience"].as_u64().unwrap())
            .max();
        if let Some(max) = max {
            assert!(c["max_audience"].as_u64().unwrap() >= max, "{c}");
        }
    }
}

#[test]
fn breach_record_lists_failed_login_monitoring_only_with_failed_login_data() {
    let dir = tempfile::tempdir().unwrap();
    let with = dir.path().join("with");
    incident(&fixture("demo/accounts.csv"), &with);
    // The same accounts without the failed_logins columns.
    let csv = std::fs::read_to_string(fixture("demo/accounts.csv")).unwrap();
    let stripped: String = csv
        .lines()
        .map(|l| l.splitn(6, ',').take(5).collect::<Vec<_>>().join(",") + "\n")
        .collect();
    let accounts = dir.path().join("accounts-no-failed-logins.csv");
    std::fs::write(&accounts, stripped).unwrap();
    let without = dir.path().join("without");
    incident(&accounts, &without);
    let measure = "Monitoring of failed logins";
    let rec = |d: &Path| std::fs::read_to_string(d.join("breach-record.md")).unwrap();
    assert!(rec(&with).contains(measure));
    assert!(!rec(&without).contains(measure), "{}", rec(&without));
}
