//! Issue 34: a speed pass must not change a byte of what the scan and the gate say. The outputs
//! on the benchmark generator's archive and on the shared corpora of real mail are pinned: one
//! line per record (its message, severity, size and a digest of its bytes), so that a change
//! names the record it touched, and a digest of the audit's history, which holds the parties of
//! every message read (not only the exposing ones).

use crate::util::{leakaudit, shared_or_skip};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::Command;

// The generator `bench/run.sh` uses, so the test reads the bytes the benchmark measures.
#[path = "../../crates/scanner/examples/gen_bench/generate.rs"]
mod generate;

fn digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One line per output line: its message (file and index, else the line number), the
/// severity when it has one, its length and digest; then the whole output's digest.
/// `per_line` false: the digest only (the gate's records are the audit's without triage).
fn fingerprint(name: &str, out: &[u8], per_line: bool) -> String {
    let mut s = String::new();
    let mut n = 0;
    for (i, line) in out.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        n += 1;
        let v: serde_json::Value = serde_json::from_slice(line)
            .unwrap_or_else(|e| panic!("{name}: line {} is not JSON: {e}", i + 1));
        let at = match (
            v["location"]["path"].as_str(),
            v["location"]["index"].as_u64(),
        ) {
            (Some(path), Some(m)) => format!("{path} #{m}"),
            (Some(path), None) => path.to_string(),
            _ => format!("line {}", i + 1),
        };
        let severity = v["triage"]["severity"]
            .as_str()
            .or(v["severity"].as_str())
            .unwrap_or("-");
        if per_line {
            s += &format!("  {at} {severity} {} bytes {}\n", line.len(), digest(line));
        }
    }
    format!(
        "{name}: {n} lines, {} bytes, {}\n{s}",
        out.len(),
        digest(out)
    )
}

/// The audit (with its history, two threads), the gate (one thread) and the rules' JSON Lines
/// on `archive`, run in `dir` so that the records name it by a relative path.
fn outputs(dir: &Path, archive: &str) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let file = |f: &str| tmp.path().join(f);
    let run = |cmd: &mut Command| {
        let o = cmd.current_dir(dir).arg(archive).output().unwrap();
        // 0 clean, 1 exposures; 2 is an error, which none of these archives holds.
        assert!(
            matches!(o.status.code(), Some(0 | 1)),
            "{cmd:?}: {o:?}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        o
    };
    let (audit, gate, history, problems) = (
        file("audit.jsonl"),
        file("gate.jsonl"),
        file("history"),
        file("problems.jsonl"),
    );
    run(leakaudit()
        .args(["scan", "--quiet", "--threads", "2", "--output"])
        .arg(&audit)
        .arg("--history")
        .arg(&history));
    run(leakaudit()
        .args([
            "scan",
            "--quiet",
            "--threads",
            "1",
            "--profile",
            "gate",
            "--output",
        ])
        .arg(&gate)
        .arg("--problems")
        .arg(&problems));
    let check = run(leakaudit().args(["check", "--format", "jsonl"]));
    let read = |p: &Path| std::fs::read(p).unwrap();
    format!(
        "history: {}\ncheck: {}\n{}{}{}{}",
        digest(&read(&history)),
        String::from_utf8_lossy(&check.stderr).trim(),
        fingerprint("audit", &read(&audit), true),
        fingerprint("gate", &read(&gate), false),
        fingerprint("problems", &read(&problems), true),
        fingerprint("check", &check.stdout, true),
    )
}

#[test]
fn records_of_the_generated_benchmark_archive_are_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let mut mbox = Vec::new();
    // 24 MB: ~5,000 messages of every kind the generator writes, 64 of them exposing.
    let (messages, bytes) = generate::generate(24_000_000, &mut mbox).unwrap();
    std::fs::write(dir.path().join("bench.mbox"), &mbox).unwrap();
    let pinned = format!(
        "archive: {messages} messages, {bytes} bytes, {}\n{}",
        digest(&mbox),
        outputs(dir.path(), "bench.mbox")
    );
    insta::assert_snapshot!("records_generated", pinned);
}

#[test]
fn records_of_the_shared_corpora_are_pinned() {
    for corpus in ["spamassassin", "enron-sent"] {
        let Some(root) = shared_or_skip(&format!("corpora/{corpus}")) else {
            return;
        };
        insta::assert_snapshot!(format!("records_{corpus}"), outputs(&root, "."));
    }
}
