//! The shared option groups: one name and one meaning on every command, old spellings still
//! accepted with a note, one problem printer.

use crate::util::{fixture, json_lines, run, s, stderr};

#[test]
fn deprecated_format_spelling_still_reads_input_with_a_note() {
    let mbox = fixture("readers/mboxrd.mbox");
    let o = run(&["scan", "--format", "mbox", s(&mbox)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("--format is deprecated, use --input-format"),
        "{err}"
    );
    assert!(err.contains("messages read: 2 (mbox 2)"), "{err}");
}

#[test]
fn affected_ignored_rules_regression() {
    // `affected` used to evaluate with the built-in pack whatever --rules said.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("only.toml"),
        r#"[[rule]]
id = "only-aws"
kind = "content-regex"
severity = "critical"
summary = "AWS key"
description = "AWS key"
hint = "rotate"
keywords = ["AKIA"]
regex = '(?P<keep>AKIA)[0-9A-Z]{16}'
"#,
    )
    .unwrap();
    let archive = fixture("remediation/archive.mbox");
    let with_builtin = run(&["affected", s(&archive), "-q"]);
    assert_eq!(
        with_builtin.status.code(),
        Some(1),
        "{}",
        stderr(&with_builtin)
    );
    let replaced = run(&[
        "affected",
        s(&archive),
        "-q",
        "--rules",
        s(dir.path()),
        "--rules-mode",
        "replace",
    ]);
    assert_eq!(replaced.status.code(), Some(0), "{}", stderr(&replaced));
    let rows = String::from_utf8_lossy(&replaced.stdout).lines().count();
    assert!(
        rows <= 1,
        "only the CSV header is expected, got {rows} lines"
    );
}

#[test]
fn every_scanning_command_writes_problems_the_same_way() {
    let bad = fixture("readers/malformed.mbox");
    let dir = tempfile::tempdir().unwrap();
    for cmd in ["scan", "check", "affected"] {
        let problems = dir.path().join(format!("{cmd}-problems.jsonl"));
        let o = run(&[cmd, s(&bad), "--problems", s(&problems)]);
        assert_eq!(o.status.code(), Some(2), "{cmd}: {}", stderr(&o));
        let lines = json_lines(&std::fs::read(&problems).unwrap());
        let malformed: Vec<_> = lines.iter().filter(|p| p["kind"] == "malformed").collect();
        assert!(!malformed.is_empty(), "{cmd}: {lines:?}");
        assert!(
            stderr(&o).contains("error[malformed]"),
            "{cmd}: stderr must use the JSON code: {}",
            stderr(&o)
        );
    }
}

#[test]
fn fold_provider_addresses_is_an_alias_of_provider_folding() {
    let archive = fixture("remediation/archive.mbox");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let o = run(&[
        "accounts",
        "import",
        s(&fixture("remediation/accounts.csv")),
        "--db",
        s(&db),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let new = run(&[
        "affected",
        s(&archive),
        "--accounts",
        s(&db),
        "--provider-folding",
        "-q",
    ]);
    let old = run(&[
        "affected",
        s(&archive),
        "--accounts",
        s(&db),
        "--fold-provider-addresses",
        "-q",
    ]);
    assert_eq!(new.stdout, old.stdout);
    assert!(stderr(&old).contains("--fold-provider-addresses is deprecated"));
    assert!(!stderr(&new).contains("deprecated"));
}
