//! `leakaudit rules validate|test|list` through the binary.

use crate::util::{leakaudit, repo_root, stdout};
use std::process::Output;

fn rules(args: &[&str]) -> Output {
    leakaudit()
        .current_dir(repo_root())
        .arg("rules")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn default_pack_passes_its_fixtures() {
    let o = rules(&["test"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    // Every shipped rule is in the table with leaking and clean fixtures and no mismatch.
    let list = stdout(&rules(&["list"]));
    let ids: Vec<&str> = list
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert!(ids.len() >= 10, "{list}");
    for id in ids {
        let row = out
            .lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .unwrap_or_else(|| panic!("no row for {id}: {out}"));
        let cols: Vec<&str> = row.split_whitespace().collect();
        // rule TP FP FN TN leaking clean status
        assert_eq!(cols[2], "0", "false positives for {id}: {row}");
        assert_eq!(cols[3], "0", "false negatives for {id}: {row}");
        assert!(
            cols[5].parse::<usize>().unwrap() >= 1 && cols[6].parse::<usize>().unwrap() >= 1,
            "{row}"
        );
        assert_eq!(cols[7], "ok");
    }
}

#[test]
fn a_wrong_expectation_fails_the_test_run() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("fixtures/recipient-exposure");
    std::fs::create_dir_all(&f).unwrap();
    let leak = std::fs::read_to_string(
        repo_root().join("fixtures/rules/recipient-exposure/leak-two-strangers.eml"),
    )
    .unwrap();
    // Claims to be clean but leaks: a false positive for the rule.
    std::fs::write(
        f.join("wrong.eml"),
        leak.replace(
            "X-Leakaudit-Expect: recipient-exposure",
            "X-Leakaudit-Expect: ok",
        ),
    )
    .unwrap();
    let o = leakaudit()
        .current_dir(dir.path())
        .args(["rules", "test", "--fixtures", "fixtures"])
        .output()
        .unwrap();
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("FAIL") && out.contains("wrong.eml: expected ok, fired recipient-exposure"),
        "{out}"
    );
    // Rules without fixtures are problems too.
    assert!(
        out.contains("problem: rule `seed-phrase` has no leaking fixture"),
        "{out}"
    );
}

#[test]
fn validate_reports_every_error_of_every_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("one.toml"),
        r#"[[rule]]
id = "Bad Id"
kind = "content-regex"
severity = "severe"
summary = "s"
description = "d"
hint = "h"
regex = "[unclosed"
keywords = ["ab"]

[[rule]]
id = "two"
kind = "bcc-header-leak"
severity = "low"
summary = "s"
description = "d"
hint = "h"
colour = "red"
[rule.allow]
subjects = ["(broken"]
senders_typo = []
"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("two.toml"), "[[rule]\nid = 1\n").unwrap();
    std::fs::write(dir.path().join("remediation.toml"), "not = 'a rule file'\n").unwrap();
    let o = rules(&["validate", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    for want in [
        "one.toml:2:6: rule id `Bad Id`",
        "one.toml:4:12: unknown severity `severe`",
        "one.toml:8:9: regex does not compile",
        "one.toml:9:13: a keyword must be at least 3 characters",
        "one.toml:18:1: unknown key `colour`",
        "one.toml:21:1: unknown key `senders_typo`",
        "two.toml:1:",
    ] {
        assert!(
            lines.iter().any(|l| l.contains(want)),
            "missing {want:?} in:\n{out}"
        );
    }
    assert!(
        !out.contains("remediation.toml"),
        "the remediation policy is not a rule file"
    );
}

#[test]
fn validate_accepts_the_shipped_rules_folder() {
    let o = rules(&["validate", "rules"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("rules ok"));
}

const AWS_LOW: &str = r#"[[rule]]
id = "aws-access-key"
kind = "content-regex"
severity = "low"
summary = "AWS key, downgraded"
description = "d"
hint = "h"
regex = 'AKIA[0-9A-Z]{16}'
keywords = ["AKIA"]
"#;

#[test]
fn custom_rule_silently_replaces_builtin_regression() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mine.toml");
    std::fs::write(&file, AWS_LOW).unwrap();
    let d = dir.path().to_str().unwrap();
    let o = rules(&["validate", d]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains("mine.toml:2:6: rule id `aws-access-key` is a built-in rule"),
        "{out}"
    );
    assert!(!out.contains("rule ok"), "{out}");
    // `check` in extend mode refuses the pack instead of downgrading AWS keys.
    let c = leakaudit()
        .current_dir(repo_root())
        .args([
            "check",
            "-q",
            "--rules",
            d,
            "fixtures/check/04-support-thread.eml",
        ])
        .output()
        .unwrap();
    assert_eq!(c.status.code(), Some(2), "{}", crate::util::stderr(&c));

    std::fs::write(&file, AWS_LOW.replace("kind =", "override = true\nkind =")).unwrap();
    let o = rules(&["validate", d]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("override: `aws-access-key` replaces the built-in rule"),
        "{out}"
    );
    assert!(
        out.contains("1 rule ok (1 overriding a built-in rule)"),
        "{out}"
    );
    let l = stdout(&rules(&["list", d]));
    assert!(l.contains("(overrides built-in)"), "{l}");
    // In replace mode there is nothing to override.
    std::fs::write(&file, AWS_LOW).unwrap();
    let o = rules(&["validate", "--rules-mode", "replace", d]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn rules_test_from_a_user_repo_regression() {
    let repo = tempfile::tempdir().unwrap();
    let rules_dir = repo.path().join("mail-rules");
    let fx = rules_dir.join("fixtures").join("acme-api-key");
    std::fs::create_dir_all(&fx).unwrap();
    std::fs::write(
        rules_dir.join("acme.toml"),
        r#"[[rule]]
id = "acme-api-key"
kind = "content-regex"
severity = "high"
summary = "Acme API key"
description = "An Acme API key in an outgoing mail."
hint = "Revoke the key."
regex = 'acme_(?P<keep>live)_[0-9a-f]{24}'
keywords = ["acme_live_"]
"#,
    )
    .unwrap();
    std::fs::write(
        fx.join("leak-key.eml"),
        "X-Leakaudit-Expect: acme-api-key\nFrom: dev@shop.example\nTo: x@partner.example\n\
         Subject: key\n\nuse acme_live_0123456789abcdef01234567 please\n",
    )
    .unwrap();
    std::fs::write(
        fx.join("ok-docs.eml"),
        "X-Leakaudit-Expect: clean\nFrom: dev@shop.example\nTo: x@partner.example\n\
         Subject: docs\n\nkeys look like acme_live_<hex>\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        leakaudit()
            .current_dir(repo.path())
            .arg("rules")
            .args(args)
            .output()
            .unwrap()
    };
    let o = run(&["test", "mail-rules"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("2 fixtures, 0 failed, 0 problems"), "{out}");
    // The built-in pack's fixtures are not in this repository: skipped, said so, not failed.
    let o = run(&["test"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("skipped"), "{out}");
    // The help documents the expectation header and both spellings of "no finding".
    let h = stdout(&run(&["test", "--help"]));
    assert!(
        h.contains("X-Leakaudit-Expect") && h.contains("clean"),
        "{h}"
    );
}
