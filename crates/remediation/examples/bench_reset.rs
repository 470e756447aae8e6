//! Benchmark: accounts reset per second by `apply`, beside the argon2id cost alone (the bound).
//!
//! ```sh
//! cargo run --release -p leakaudit-remediation --example bench_reset -- [--accounts 10000] [--sample 2000]
//! ```
//!
//! Builds a fresh store of N accounts (all exposed, no 2FA, balance > 0, so every one gets a
//! forced reset and a notification) under `bench-data/remediation/`, then:
//! 1. argon2id alone: `--sample` token hashes (OWASP minimum m=19456 KiB, t=2, p=1) in
//!    parallel on every core: the upper bound on resets per second;
//! 2. the real `apply` of the plan: hashing in parallel + per account a durable outbox
//!    message, one store transaction, two fsynced audit entries.

use leakaudit_remediation::affected::AffectedRow;
use leakaudit_remediation::apply::{apply, ApplyOptions};
use leakaudit_remediation::outbox::Sender;
use leakaudit_remediation::store::{AccountRecord, AccountStore};
use leakaudit_remediation::{
    build_plan, token, Argon2Settings, MatchMode, RemediationPolicy, SqliteStore,
};
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

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n = arg("--accounts", 10_000);
    let sample = arg("--sample", 2_000).min(n).max(1);
    let threads = rayon::current_num_threads();
    let dir = PathBuf::from("bench-data/remediation");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let settings = Argon2Settings::OWASP_MIN;

    // 1. The bound: argon2id alone, all cores.
    let t = Instant::now();
    (0..sample)
        .into_par_iter()
        .try_for_each(|_| token::issue(&settings).map(|_| ()))?;
    let hash_secs = t.elapsed().as_secs_f64();
    let hash_rate = sample as f64 / hash_secs;

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
    let plan = build_plan(
        &rows,
        &store,
        &RemediationPolicy::builtin(),
        MatchMode::Canonical,
    )?;
    let setup_secs = t.elapsed().as_secs_f64();

    // 3. The real apply.
    let opts = ApplyOptions {
        outbox: dir.join("outbox"),
        log: dir.join("audit.jsonl"),
        token_ttl_secs: 86_400,
        argon2: settings,
        reset_base_url: "https://shop.example/reset".into(),
        sender: Sender::new("Security <security@shop.example>")?,
        batch: 64,
        extra_check: None,
    };
    let t = Instant::now();
    let report = apply(&plan, &mut store, &opts, &mut |_| {})?;
    let apply_secs = t.elapsed().as_secs_f64();
    assert!(report.complete && report.resets == n, "{report:?}");
    let reset_rate = n as f64 / apply_secs;

    println!("remediation apply benchmark ({threads} threads, argon2id m=19456 KiB t=2 p=1)");
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
        "  per reset beyond hashing: {:.2} ms (outbox fsync, store transaction, 2 audit fsyncs)",
        1000.0 * (apply_secs - n as f64 / hash_rate).max(0.0) / n as f64
    );
    Ok(())
}
