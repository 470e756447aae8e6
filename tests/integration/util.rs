//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root (tests run with the cli crate as the working directory).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// `fixtures/...` inside the repository.
pub fn fixture(rel: &str) -> PathBuf {
    repo_root().join("fixtures").join(rel)
}

/// `fixtures/remediation/...` as a command-line argument (the remediation fixture set).
pub fn rem(rel: &str) -> String {
    fixture("remediation")
        .join(rel)
        .to_string_lossy()
        .into_owned()
}

/// `../shared/...` beside the repository root (read-only test data).
pub fn shared(rel: &str) -> PathBuf {
    repo_root().join("../shared").join(rel)
}

/// A `leakaudit` command ready to run, with a clean working directory.
pub fn leakaudit() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_leakaudit"));
    cmd.env_remove("RUST_LOG");
    cmd
}

/// Runs `leakaudit ARGS...` to completion.
pub fn run(args: &[&str]) -> std::process::Output {
    leakaudit().args(args).output().unwrap()
}

/// Standard output as text.
pub fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every line of `out` parsed as JSON (JSON Lines output).
/// A path as a command-line argument (test paths are UTF-8).
pub fn s(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

/// stdout then stderr, for assertion messages and searches over both.
pub fn text(o: &std::process::Output) -> String {
    format!("{}{}", stdout(o), stderr(o))
}

pub fn json_lines(out: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

/// `../shared/REL` when it is there. Missing under CI (`CI` set) is a failure: CI has it, and
/// a test that silently skips there proves nothing; elsewhere (a fresh clone) the test says
/// it skipped and goes on.
pub fn shared_or_skip(rel: &str) -> Option<PathBuf> {
    let p = shared(rel);
    if p.exists() {
        return Some(p);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must have {} (see ../shared/README.md)",
        p.display()
    );
    eprintln!("skipped: {} is not present (a fresh clone)", p.display());
    None
}

/// Every rule fixture and every file of `fixtures/check`, sorted: what the library, `check`
/// and the guard must agree on.
pub fn verdict_fixtures() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![fixture("rules"), fixture("check")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

/// Output text as snapshots keep it: the checkout's path and the version replaced.
pub fn normalise(s: &str) -> String {
    s.replace(&repo_root().display().to_string(), "[REPO]")
        .replace(env!("CARGO_PKG_VERSION"), "[VERSION]")
}

/// The addresses of an `incident` folder's `affected.csv` (its first column, comment and
/// header lines skipped).
pub fn affected_addresses(out: &Path) -> std::collections::BTreeSet<String> {
    std::fs::read_to_string(out.join("affected.csv"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .skip(1)
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect()
}

/// The accounts an `incident` folder's `plan.json` resets.
pub fn planned_resets(out: &Path) -> std::collections::BTreeSet<String> {
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("plan.json")).unwrap()).unwrap();
    plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "force-password-reset")
        .map(|a| a["account"].as_str().unwrap().to_string())
        .collect()
}
