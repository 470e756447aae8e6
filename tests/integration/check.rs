//! `leakaudit check` through the binary: exit codes, baseline, every output format, the
//! configuration file, fingerprints that survive reformatting, and snapshots of the human and
//! SARIF reports on `fixtures/check/`.

use crate::util::{fixture, leakaudit, normalise, repo_root, stderr, stdout};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

/// Runs `leakaudit check ARGS` from the repository root (relative paths in outputs).
fn check(args: &[&str]) -> Output {
    leakaudit()
        .current_dir(repo_root())
        .arg("check")
        .args(args)
        .output()
        .unwrap()
}

fn check_in(dir: &Path, args: &[&str]) -> Output {
    leakaudit()
        .current_dir(dir)
        .arg("check")
        .args(args)
        .output()
        .unwrap()
}

fn json_findings(o: &Output) -> Vec<Value> {
    let v: Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)));
    v["findings"].as_array().unwrap().clone()
}

#[test]
fn exit_codes_follow_fail_on() {
    let leak = check(&["-q", "fixtures/check/01-two-strangers.eml"]);
    assert_eq!(leak.status.code(), Some(1), "{}", stderr(&leak));
    let clean = check(&["-q", "fixtures/check/04-support-thread.eml"]);
    assert_eq!(
        clean.status.code(),
        Some(0),
        "{}{}",
        stdout(&clean),
        stderr(&clean)
    );
    assert!(stdout(&clean).contains("ok: nothing at or above `high`"));
    // A high finding does not fail a critical gate; a critical one does.
    let high = check(&[
        "-q",
        "--fail-on",
        "critical",
        "fixtures/check/01-two-strangers.eml",
    ]);
    assert_eq!(high.status.code(), Some(0));
    let crit = check(&[
        "-q",
        "--fail-on",
        "critical",
        "fixtures/check/03-stripe-key.eml",
    ]);
    assert_eq!(crit.status.code(), Some(1));
}

#[test]
fn unreadable_input_is_exit_2_after_the_rest() {
    let o = check(&[
        "-q",
        "--format",
        "json",
        "fixtures/check/01-two-strangers.eml",
        "no/such/file.eml",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("no/such/file.eml"));
    // The readable file was still audited.
    assert_eq!(json_findings(&o).len(), 1);
}

#[test]
fn bad_rules_are_exit_2_with_every_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.toml"),
        "[[rule]]\nid = \"x\"\nkind = \"content-regex\"\nseverity = \"high\"\nsummary = \"s\"\ndescription = \"d\"\nhint = \"h\"\nregex = \"(\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("b.toml"), "[[rule]]\nidd = 1\n").unwrap();
    let o = check(&["--rules", dir.path().to_str().unwrap(), "fixtures/check"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("a.toml:8:9: regex does not compile"), "{e}");
    assert!(e.contains("b.toml:2:1: unknown key `idd`"), "{e}");
}

#[test]
fn every_format_renders_and_no_secret_leaks() {
    let paths = ["fixtures/check"];
    for fmt in ["human", "json", "jsonl", "sarif", "junit"] {
        let mut args = vec!["-q", "--format", fmt];
        args.extend(paths);
        let o = check(&args);
        assert_eq!(o.status.code(), Some(1), "{fmt}: {}", stderr(&o));
        let out = stdout(&o);
        for secret in [
            "sk_live_4eC39HqLyjWDarjtT1zdp7dcXw",
            "Zk3q9PmX2vL8rT4wN6yB1cD7fH5jK0sQ",
        ] {
            assert!(!out.contains(secret), "{fmt} shows a secret");
        }
        match fmt {
            "json" => {
                let f = json_findings(&o);
                let rules: Vec<&str> = f.iter().map(|f| f["rule_id"].as_str().unwrap()).collect();
                assert_eq!(
                    rules,
                    [
                        "recipient-exposure",
                        "password-reset-link",
                        "stripe-secret-key"
                    ]
                );
            }
            "jsonl" => {
                let lines: Vec<Value> = out
                    .lines()
                    .map(|l| serde_json::from_str(l).unwrap())
                    .collect();
                assert_eq!(lines.len(), 3);
                assert!(lines
                    .iter()
                    .all(|l| l["fingerprint"].as_str().unwrap().len() == 64));
            }
            "junit" => {
                assert!(out.starts_with("<?xml"));
                assert_eq!(
                    out.matches("<testcase ").count(),
                    4,
                    "one test case per message"
                );
                assert_eq!(out.matches("<failure ").count(), 3);
                assert!(out.contains("tests=\"4\" failures=\"3\""));
            }
            _ => {}
        }
    }
}

#[test]
fn output_file_is_written_atomically_0600() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.sarif");
    let o = check(&[
        "-q",
        "--format",
        "sarif",
        "-o",
        out.to_str().unwrap(),
        "fixtures/check",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(v["version"], "2.1.0");
    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(o.stdout.is_empty());
}

#[test]
fn baseline_suppresses_known_findings_and_reports_stale_entries() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("baseline.json");
    let base_s = base.to_str().unwrap();
    let w = check(&["-q", "--write-baseline", base_s, "fixtures/check"]);
    assert_eq!(
        w.status.code(),
        Some(0),
        "writing a baseline accepts what is there"
    );
    let b: Value = serde_json::from_slice(&std::fs::read(&base).unwrap()).unwrap();
    assert_eq!(b["findings"].as_array().unwrap().len(), 3);
    // Nothing in clear in the baseline: fingerprints, rule ids and locations only.
    let text = std::fs::read_to_string(&base).unwrap();
    assert!(!text.contains("gmail") && !text.contains("sk_live"));

    let o = check(&["--baseline", base_s, "fixtures/check"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("3 suppressed by the baseline"));

    // Checking only part of the archive: the other entries are reported as unmatched.
    let o = check(&["--baseline", base_s, "fixtures/check/01-two-strangers.eml"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("baseline: 2 entries matched no finding"),
        "{}",
        stderr(&o)
    );

    // A new finding is not in the baseline.
    let o = check(&[
        "-q",
        "--baseline",
        base_s,
        "fixtures/check",
        "fixtures/rules/github-token/leak-pat.eml",
    ]);
    assert_eq!(o.status.code(), Some(1));

    std::fs::write(
        &base,
        "{\"version\": 1, \"findings\": [ {\"fingerprint\": 3} ]}",
    )
    .unwrap();
    let o = check(&["--baseline", base_s, "fixtures/check"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("baseline.json:1:"), "{}", stderr(&o));
}

#[test]
fn fingerprints_survive_reformatting() {
    // The same messages as loose .eml files with CRLF line ends and inside one mbox.
    let dir = tempfile::tempdir().unwrap();
    let mut mbox = Vec::new();
    for name in ["01-two-strangers.eml", "03-stripe-key.eml"] {
        let raw = std::fs::read(fixture("check").join(name)).unwrap();
        let crlf = String::from_utf8(raw.clone())
            .unwrap()
            .replace('\n', "\r\n");
        std::fs::write(dir.path().join(name), crlf).unwrap();
        mbox.extend_from_slice(b"From sender@shop.example Tue Mar  3 10:00:00 2026\n");
        mbox.extend_from_slice(&raw);
        mbox.extend_from_slice(b"\n");
    }
    std::fs::create_dir(dir.path().join("mbox")).unwrap();
    std::fs::write(dir.path().join("mbox/archive.mbox"), mbox).unwrap();
    let fps = |p: &str| -> Vec<String> {
        let o = check(&["-q", "--format", "json", p]);
        let mut v: Vec<String> = json_findings(&o)
            .iter()
            .map(|f| f["fingerprint"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    let original = {
        let o = check(&[
            "-q",
            "--format",
            "json",
            "fixtures/check/01-two-strangers.eml",
            "fixtures/check/03-stripe-key.eml",
        ]);
        let mut v: Vec<String> = json_findings(&o)
            .iter()
            .map(|f| f["fingerprint"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(original.len(), 2);
    let crlf_dir = dir.path().to_str().unwrap().to_string();
    let mut crlf = fps(&format!("{crlf_dir}/01-two-strangers.eml"));
    crlf.extend(fps(&format!("{crlf_dir}/03-stripe-key.eml")));
    crlf.sort();
    assert_eq!(crlf, original, "CRLF copies");
    assert_eq!(
        fps(&format!("{crlf_dir}/mbox/archive.mbox")),
        original,
        "inside an mbox"
    );
}

#[test]
fn config_file_sets_the_organisation_and_rejects_unknown_keys() {
    let dir = tempfile::tempdir().unwrap();
    let eml = fixture("rules/recipient-exposure/ok-configured-internal-domain.eml");
    let eml = eml.to_str().unwrap();
    // Without configuration the group's other domain is a stranger.
    let o = check_in(dir.path(), &["-q", eml]);
    assert_eq!(o.status.code(), Some(1));
    std::fs::write(
        dir.path().join("leakaudit.toml"),
        "internal_domains = [\"shop-group.example\"]\n",
    )
    .unwrap();
    let o = check_in(dir.path(), &["-q", eml]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    // The command line adds to it as well.
    std::fs::remove_file(dir.path().join("leakaudit.toml")).unwrap();
    let o = check_in(
        dir.path(),
        &["-q", "--internal-domain", "shop-group.example", eml],
    );
    assert_eq!(o.status.code(), Some(0));

    std::fs::write(
        dir.path().join("leakaudit.toml"),
        "archive_kind = \"sent\"\ninternal_domain = [\"x.example\"]\n",
    )
    .unwrap();
    let o = check_in(dir.path(), &["-q", eml]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("leakaudit.toml:2:1: unknown field `internal_domain`"),
        "{}",
        stderr(&o)
    );

    // Severity overrides and fail_on from the file; an override for an unknown rule is an error.
    let cfg = dir.path().join("other.toml");
    std::fs::write(
        &cfg,
        "fail_on = \"critical\"\n[severity_overrides]\nrecipient-exposure = \"critical\"\n",
    )
    .unwrap();
    let o = check_in(
        dir.path(),
        &[
            "-q",
            "--config",
            cfg.to_str().unwrap(),
            "--format",
            "json",
            eml,
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(json_findings(&o)[0]["severity"], "critical");
    std::fs::write(&cfg, "[severity_overrides]\nno-such-rule = \"low\"\n").unwrap();
    let o = check_in(dir.path(), &["-q", "--config", cfg.to_str().unwrap(), eml]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no-such-rule"));
}

#[test]
fn sent_archive_kind_silences_bcc_rule() {
    let eml = "fixtures/rules/bcc-header-leak/leak-bcc-kept-in-journal.eml";
    let o = check(&[
        "-q",
        "--format",
        "json",
        "--archive-kind",
        "transmitted",
        eml,
    ]);
    let rules: Vec<String> = json_findings(&o)
        .iter()
        .map(|f| f["rule_id"].as_str().unwrap().to_string())
        .collect();
    assert!(rules.contains(&"bcc-header-leak".to_string()));
    let o = check(&["-q", "--format", "json", "--archive-kind", "sent", eml]);
    assert_eq!(o.status.code(), Some(0));
    assert!(json_findings(&o).is_empty());
}

#[test]
fn rules_replace_mode_uses_only_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("only.toml"),
        "[[rule]]\nid = \"internal-codename\"\nkind = \"content-regex\"\nseverity = \"medium\"\nsummary = \"Project codename\"\ndescription = \"d\"\nhint = \"h\"\nkeywords = [\"bluebird\"]\nregex = '(?i)bluebird'\n",
    )
    .unwrap();
    let d = dir.path().to_str().unwrap();
    let o = check(&[
        "-q",
        "--rules",
        d,
        "--rules-mode",
        "replace",
        "fixtures/check",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "no built-in rule runs: {}",
        stdout(&o)
    );
    let o = check(&["-q", "--rules", d, "fixtures/check"]);
    assert_eq!(o.status.code(), Some(1), "extend keeps the built-in rules");
}

#[test]
fn snapshot_human_report() {
    let o = check(&["fixtures/check"]);
    insta::assert_snapshot!("check_human", normalise(&stdout(&o)));
}

#[test]
fn snapshot_sarif_report() {
    let o = check(&["-q", "--format", "sarif", "fixtures/check"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    insta::assert_snapshot!(
        "check_sarif",
        normalise(&serde_json::to_string_pretty(&v).unwrap())
    );
}

#[test]
fn gate_passed_on_nothing_regression() {
    // An empty folder, an empty .eml, an HTML error page saved as .eml and a missing path all
    // used to exit 0 (or 2) with "ok: nothing at or above high".
    let dir = tempfile::tempdir().unwrap();
    let empty_dir = dir.path().join("rendered");
    std::fs::create_dir(&empty_dir).unwrap();
    let empty_eml = dir.path().join("empty.eml");
    std::fs::write(&empty_eml, b"").unwrap();
    let html = dir.path().join("welcome.eml");
    std::fs::write(
        &html,
        b"<!DOCTYPE html>\n<html><body><h1>502 Bad Gateway</h1></body></html>\n",
    )
    .unwrap();
    let missing = dir.path().join("missing.eml");
    for p in [&empty_dir, &empty_eml, &html, &missing] {
        let o = check(&[p.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{}: {}", p.display(), stderr(&o));
        assert!(
            !stdout(&o).contains("ok:"),
            "{}: {}",
            p.display(),
            stdout(&o)
        );
        assert!(stdout(&o).contains("ERROR"), "{}", stdout(&o));
    }
    // Beside a good message, the broken one still fails the run.
    let o = check(&[
        "fixtures/check/04-support-thread.eml",
        empty_eml.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn min_messages_guards_against_a_short_render() {
    let o = check(&[
        "fixtures/check/04-support-thread.eml",
        "--min-messages",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = check(&["fixtures/check/", "--min-messages", "10"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("fewer than --min-messages 10"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn junit_name_changed_when_a_test_failed_regression() {
    let names = |fail_on: &str| -> Vec<String> {
        let o = check(&["fixtures/check/", "--format", "junit", "--fail-on", fail_on]);
        let xml = stdout(&o);
        xml.lines()
            .filter_map(|l| l.split("name=\"").nth(1))
            .filter(|l| l.contains("fixtures/check/"))
            .map(|l| l.split('"').next().unwrap().to_string())
            .collect()
    };
    let failing = names("info");
    let passing = names("critical");
    assert_eq!(failing.len(), 4, "{failing:?}");
    assert_eq!(failing, passing);
}

#[test]
fn write_baseline_claimed_suppressions_regression() {
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path().join("baseline.json");
    let o = check(&["fixtures/check/", "--write-baseline", b.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = format!("{}{}", stdout(&o), stderr(&o));
    assert!(!out.contains("suppressed by the baseline"), "{out}");
    assert!(out.contains("baseline entr"), "{out}");
}

/// One rendering of an outbound template, as a renderer produces it: fresh Message-ID, Date,
/// MIME boundary and tracking token each run.
fn render_template(mid: &str, date: &str, boundary: &str, token: &str) -> String {
    format!(
        "Message-ID: <{mid}>\nDate: {date}\nFrom: Shop News <news@shop.example>\n\
         To: alice@gmail.com, Bob Miller <bob@example.org>\nSubject: Your order is ready\n\
         MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=\"{boundary}\"\n\n\
         --{boundary}\nContent-Type: text/plain; charset=utf-8\n\n\
         Hello both, your orders are ready:\n\
         https://shop.example/orders?utm_source=newsletter&utm_campaign=c{token}&t={token}\n\
         --{boundary}\nContent-Type: text/html; charset=utf-8\n\n\
         <p>Hello both, <a href=\"https://shop.example/orders?t={token}\">your orders</a></p>\n\
         --{boundary}--\n"
    )
}

#[test]
fn baseline_goes_stale_on_rerender_regression() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (dir.path().join("first"), dir.path().join("second"));
    std::fs::create_dir_all(&first).unwrap();
    std::fs::create_dir_all(&second).unwrap();
    std::fs::write(
        first.join("order.eml"),
        render_template(
            "20260303100100.1a2b3c@render.shop.example",
            "Tue, 03 Mar 2026 10:01:00 +0000",
            "----=_Part_0_1789456123.1709459260",
            "q8Zr2LkP0xYw7NvA",
        ),
    )
    .unwrap();
    std::fs::write(
        second.join("order.eml"),
        render_template(
            "20260304111500.9f8e7d@render.shop.example",
            "Wed, 04 Mar 2026 11:15:00 +0100",
            "----=_Part_7_554433221.1709550900",
            "M3nB5vC7xZ9aS1dF",
        ),
    )
    .unwrap();
    let base = dir.path().join("baseline.json");
    let base_s = base.to_str().unwrap();
    let w = check_in(dir.path(), &["-q", "--write-baseline", base_s, "first"]);
    assert_eq!(w.status.code(), Some(0), "{}", stderr(&w));
    let written = std::fs::read_to_string(&base).unwrap();
    assert!(written.contains("recipient-exposure"), "{written}");
    // Without the baseline the re-rendering fails the gate; with it, it passes.
    let bare = check_in(dir.path(), &["-q", "second"]);
    assert_eq!(bare.status.code(), Some(1), "{}", stderr(&bare));
    let o = check_in(dir.path(), &["--baseline", base_s, "second"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(!stderr(&o).contains("matched no finding"), "{}", stderr(&o));
}

#[test]
fn sarif_absolute_uris_and_mbox_without_line_regression() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::create_dir_all(root.join("mail")).unwrap();
    let clean = "From dev@shop.example Tue Mar  3 10:00:00 2026\nFrom: Dev <dev@shop.example>\n\
                 To: contractor@agency.example\nSubject: hello\n\nnothing here\n\n";
    let leak = "From dev@shop.example Tue Mar  3 10:32:00 2026\nFrom: Dev <dev@shop.example>\n\
                To: contractor@agency.example\nSubject: payments\n\nsee below\n\
                STRIPE_KEY=sk_live_4eC39HqLyjWDarjtT1zdp7dcXw\n";
    let mbox = format!("{clean}{leak}");
    std::fs::write(root.join("mail/out.mbox"), &mbox).unwrap();
    let evidence_line = mbox.lines().position(|l| l.contains("sk_live_")).unwrap() as u64 + 1;
    let abs = root.join("mail/out.mbox");
    let o = check_in(&root, &["-q", "--format", "sarif", abs.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let log: Value = serde_json::from_slice(&o.stdout).unwrap();
    let run = &log["runs"][0];
    let want_root = format!("file://{}/", root.display());
    assert_eq!(
        run["originalUriBaseIds"]["%SRCROOT%"]["uri"],
        want_root.as_str()
    );
    let loc = &run["results"][0]["locations"][0]["physicalLocation"];
    assert_eq!(loc["artifactLocation"]["uri"], "mail/out.mbox");
    assert_eq!(loc["artifactLocation"]["uriBaseId"], "%SRCROOT%");
    assert_eq!(loc["region"]["byteOffset"], clean.len() as u64);
    assert_eq!(loc["region"]["startLine"], evidence_line);

    // `--sarif-root` from elsewhere: relative to that root; outside it, absolute, no base.
    let o = check_in(
        dir.path(),
        &[
            "-q",
            "--format",
            "sarif",
            "--sarif-root",
            "mail",
            "mail/out.mbox",
        ],
    );
    let log: Value = serde_json::from_slice(&o.stdout).unwrap();
    let art = &log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"];
    assert_eq!(art["uri"], "out.mbox");
    let other = tempfile::tempdir().unwrap();
    let o = check_in(
        other.path(),
        &["-q", "--format", "sarif", abs.to_str().unwrap()],
    );
    let log: Value = serde_json::from_slice(&o.stdout).unwrap();
    let art = &log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"];
    assert!(art.get("uriBaseId").is_none(), "{art}");
    assert!(
        art["uri"].as_str().unwrap().ends_with("mail/out.mbox"),
        "{art}"
    );
}

/// Issue 27: a rendered template with `Bcc:` naming two customers passed the gate, because a
/// file without Received headers was taken for a sender's copy.
#[test]
fn gate_fails_a_rendered_bcc_header_naming_two_customers() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("statement.eml");
    std::fs::write(
        &bad,
        "From: Shop <news@shop.example>\nTo: undisclosed-recipients:;\n\
         Bcc: jane@gmail.com, tom@yahoo.com\nSubject: Your statement\n\
         Message-ID: <r1@shop.example>\n\nHello\n",
    )
    .unwrap();
    let good = dir.path().join("one.eml");
    std::fs::write(
        &good,
        "From: Shop <news@shop.example>\nTo: undisclosed-recipients:;\n\
         Bcc: jane@gmail.com\nSubject: Your statement\nMessage-ID: <r2@shop.example>\n\nHello\n",
    )
    .unwrap();
    let o = check(&["-q", "--format", "json", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let f = json_findings(&o);
    let bcc = f
        .iter()
        .find(|f| f["rule_id"] == "bcc-header-leak")
        .unwrap_or_else(|| panic!("{f:?}"));
    assert!(
        bcc["message"].as_str().unwrap().contains("outbound mail"),
        "{bcc}"
    );
    assert!(
        !bcc.to_string().contains("jane@gmail.com"),
        "redacted: {bcc}"
    );
    let o = check(&["-q", good.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    // Checking a Sent folder is still possible, explicitly.
    let o = check(&["-q", "--archive-kind", "sent", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    // The audit profile keeps deciding per message: a sender's copy.
    let o = check(&["-q", "--profile", "audit", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

/// Issue 30: each rule fixture and each file of `fixtures/check`, audited from its bytes
/// through the library (`Auditor::verdict`, what the SMTP guard and the Python package call),
/// gets what `leakaudit check` says of that file: the same findings (rule ids, severities,
/// fingerprints, evidence, every field but the location) and the same outcome against the
/// same `fail_on`, a message not fully audited included.
#[test]
fn the_library_verdict_on_bytes_is_checks_verdict_on_the_file() {
    use leakaudit_policy::audit::{Auditor, Outcome};
    use std::collections::BTreeMap;
    let dir = tempfile::tempdir().unwrap();
    let problems = dir.path().join("problems.jsonl");
    let o = check(&[
        "-q",
        "--format",
        "json",
        "--problems",
        problems.to_str().unwrap(),
        "fixtures/rules",
        "fixtures/check",
    ]);
    assert!(o.status.code().is_some_and(|c| c > 0), "{}", stderr(&o));
    let mut by_file: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for mut f in json_findings(&o) {
        let path = f["location"]["path"].as_str().unwrap().to_string();
        f.as_object_mut().unwrap().remove("location");
        by_file.entry(path).or_default().push(f);
    }
    let mut errors: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in std::fs::read_to_string(&problems).unwrap().lines() {
        let p: Value = serde_json::from_str(line).unwrap();
        if p["level"] == "error" {
            let path = p["location"]["path"].as_str().unwrap().to_string();
            errors.entry(path).or_default().push(line.to_string());
        }
    }

    let auditor = Auditor::builtin(&Default::default()).unwrap();
    let files = crate::util::verdict_fixtures();
    assert!(files.len() > 50, "{}", files.len());
    let (mut leaking, mut clean) = (0, 0);
    for path in &files {
        let rel = path
            .strip_prefix(repo_root())
            .unwrap()
            .display()
            .to_string();
        let v = auditor.verdict(&std::fs::read(path).unwrap());
        let mine: Vec<Value> = v
            .findings
            .iter()
            .map(|f| {
                let mut f = serde_json::to_value(f).unwrap();
                f.as_object_mut().unwrap().remove("location");
                f
            })
            .collect();
        let theirs = by_file.remove(&rel).unwrap_or_default();
        assert_eq!(mine, theirs, "{rel}");
        let check_outcome = if errors.contains_key(&rel) {
            Outcome::Error
        } else if theirs.iter().any(|f| {
            let s: leakaudit_policy::Severity =
                serde_json::from_value(f["severity"].clone()).unwrap();
            s >= auditor.fail_on()
        }) {
            Outcome::Violation
        } else {
            Outcome::Clean
        };
        assert_eq!(v.outcome(), check_outcome, "{rel}: {:?}", errors.get(&rel));
        match v.outcome() {
            Outcome::Violation => leaking += 1,
            Outcome::Clean => clean += 1,
            Outcome::Error => {}
        }
    }
    assert!(
        by_file.is_empty(),
        "check found files the walk did not: {by_file:?}"
    );
    assert!(
        leaking > 10 && clean > 10,
        "{leaking} leaking, {clean} clean"
    );
}
