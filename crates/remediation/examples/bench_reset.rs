//! Benchmark: accounts reset per second by `apply`, beside the argon2id cost alone (the bound).
//!
//! ```sh
//! cargo run --release -p leakaudit-remediation --example bench_reset -- [--accounts 10000] [--sample 2000] [--batch 32]
//! ```
//!
//! Builds a fresh store of N accounts (all exposed, no 2FA, balance > 0, so every one gets a
//! forced reset and a notification) under `bench-data/remediation/`, then:
//! 1. argon2id alone: `--sample` token hashes (half before, half after the apply) (OWASP minimum m=19456 KiB, t=2, p=1) in
//!    parallel on every core: the upper bound on resets per second;
//! 2. the real `apply` of the plan: hashing in parallel + per account a durable outbox
//!    message, one store transaction, two fsynced audit entries;
//! 3. `release`: every staged message through the outbox gate again, then moved.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use leakaudit_policy::{Engine, RulePack};
use leakaudit_remediation::affected::AffectedRow;
use leakaudit_remediation::apply::{apply, ApplyOptions, DEFAULT_BATCH};
use leakaudit_remediation::outbox::{release, Outbox, OutboxGate, ReleaseOutcome, Sender};
use leakaudit_remediation::store::{AccountRecord, AccountStore};
use leakaudit_remediation::{
    build_plan, token, Argon2Settings, MatchMode, RemediationPolicy, SqliteStore,
};
use leakaudit_scanner::Org;
use rayon::prelude::*;
use std::path::PathBuf;
use std::time::Instant;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Process CPU time (user + system) in seconds, from /proc (Linux; clock ticks of 1/100 s).
/// Wall-clock rates swing with other load on a shared machine; CPU time per hash and per
/// reset compare the two fairly.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // After the command name: state is field 3 (index 0 here); utime 14, stime 15.
    let ticks = |i: usize| {
        f.get(i - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(14) + ticks(15)) / 100.0
}

fn bound(
    sample: usize,
    settings: &Argon2Settings,
) -> Result<(f64, f64), Box<dyn std::error::Error>> {
    let (t, c) = (Instant::now(), cpu_secs());
    (0..sample)
        .into_par_iter()
        .try_for_each(|_| token::issue(settings).map(|_| ()))?;
    Ok((t.elapsed().as_secs_f64(), cpu_secs() - c))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n = arg("--accounts", 10_000);
    let sample = arg("--sample", 2_000).min(n).max(1);
    let batch = arg("--batch", DEFAULT_BATCH);
    let threads = rayon::current_num_threads();
    let dir = PathBuf::from("bench-data/remediation");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let settings = Argon2Settings::OWASP_MIN;

    // 1. The bound: argon2id alone, all cores; measured before and after the apply, half the
    // sample each time, so a change in the machine's other load shows up.
    let half = (sample / 2).max(1);
    let (w1, c1) = bound(half, &settings)?;

    // 2. A store of N accounts, the affected rows, the plan.
    let t = Instant::now();
    let mut store = SqliteStore::open(&dir.join("accounts.db"))?;
    let locales = ["en", "de", "fr", "es", "ru", "ja"];
    let records: Vec<AccountRecord> = (0..n)
        .map(|i| AccountRecord {
            id: format!("acc-{i:06}"),
            email: format!("user{i}@gmail.com"),
            has_2fa: false,
            balance: 1.0 + i as f64,
            locale: locales[i % locales.len()].into(),
            failed_logins: Some(0),
            failed_logins_since: None,
        })
        .collect();
    store.import(&records)?;
    for i in 0..n {
        store.add_session(&format!("acc-{i:06}"), &format!("s-{i}"), 1)?;
    }
    let rows: Vec<AffectedRow> = (0..n)
        .map(|i| AffectedRow {
            address: format!("user{i}@gmail.com"),
            account_ids: vec![],
            messages: 1,
            audience: 999,
            first_exposed: Some("2026-03-02T09:00:00Z".into()),
            last_exposed: Some("2026-03-02T09:00:00Z".into()),
            rule_ids: vec!["recipient-exposure".into()],
            fields: vec!["To".into()],
            message_ids: vec!["m@shop.example".into()],
        })
        .collect();
    let mut list = leakaudit_remediation::AffectedList::new(rows);
    leakaudit_remediation::affected::match_list(&mut list, &store, MatchMode::Canonical)?;
    let plan = build_plan(&list, &store, &RemediationPolicy::builtin())?;
    let setup_secs = t.elapsed().as_secs_f64();

    // 3. The real apply.
    let engine = Engine::new(
        RulePack::builtin(),
        Org::with_defaults(),
        &Default::default(),
    );
    let opts = ApplyOptions::new(
        dir.join("outbox"),
        dir.join("audit.jsonl"),
        "https://shop.example/reset",
        Sender::new("Security <security@shop.example>")?,
        OutboxGate::new(&engine),
    )
    .with_argon2(settings)
    .with_batch(batch);
    let (t, c) = (Instant::now(), cpu_secs());
    let report = apply(&plan, &mut store, &opts, &mut |_| {})?;
    let apply_secs = t.elapsed().as_secs_f64();
    let apply_cpu = cpu_secs() - c;
    assert!(report.complete && report.resets == n, "{report:?}");
    let reset_rate = n as f64 / apply_secs;
    let (w2, c2) = bound(half, &settings)?;

    // 4. Release: every staged message through the gate and the store checks again, then moved.
    let (t, c) = (Instant::now(), cpu_secs());
    let released = release(&Outbox::new(&dir.join("outbox")), &mut store, &opts.gate)?;
    let release_secs = t.elapsed().as_secs_f64();
    let release_cpu = cpu_secs() - c;
    assert!(
        matches!(released, ReleaseOutcome::Released { count, .. } if count == n),
        "{released:?}"
    );
    let hash_secs = w1 + w2;
    let hash_cpu = c1 + c2;
    let sample = 2 * half;
    let hash_rate = sample as f64 / hash_secs;

    println!(
        "remediation apply benchmark ({threads} threads, batch {batch}, argon2id m=19456 KiB t=2 p=1)"
    );
    println!(
        "  argon2id alone (the bound): {sample} hashes in {hash_secs:.2} s = {hash_rate:.1} hashes/s ({:.1} ms per hash per core)",
        1000.0 * hash_secs * threads as f64 / sample as f64
    );
    println!("  setup ({n} accounts, sessions, plan): {setup_secs:.2} s");
    println!(
        "  apply: {n} accounts reset + notified in {apply_secs:.2} s = {reset_rate:.1} resets/s = {:.0}% of the argon2id bound",
        100.0 * reset_rate / hash_rate
    );
    println!(
        "  argon2id alone before / after the apply: {:.1} / {:.1} hashes/s (other load on the machine)",
        half as f64 / w1,
        half as f64 / w2
    );
    println!(
        "  CPU time: {:.1} ms per argon2id hash, {:.1} ms per reset (hash + message + transaction + log) = {:.0}% of the CPU bound",
        1000.0 * hash_cpu / sample as f64,
        1000.0 * apply_cpu / n as f64,
        100.0 * (hash_cpu / sample as f64) / (apply_cpu / n as f64)
    );
    println!(
        "  release: {n} messages re-checked by the gate ({} rules) and moved in {release_secs:.2} s, {:.2} ms CPU per message",
        engine.rules().len(),
        1000.0 * release_cpu / n as f64
    );
    Ok(())
}
