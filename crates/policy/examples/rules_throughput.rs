//! Throughput of the policy engine beside header-only scanning, on the same archive and the
//! same parallel pipeline (run with `--release`):
//!
//! ```text
//! cargo run --release -p leakaudit-scanner --example gen_bench -- 256 bench-data/bench-256mb.mbox
//! cargo run --release -p leakaudit-policy --example rules_throughput -- bench-data/bench-256mb.mbox
//! ```
//! Pass 1: headers and the exposure model only (what `leakaudit scan` does).
//! Pass 2: every default rule, content rules included (what `leakaudit check` does).
//! Each pass runs three times and the fastest run counts, so the page cache is warm for both.
//! Target (issue 3): pass 2 no worse than half the speed of pass 1.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use leakaudit_policy::{Engine, OrgConfig, RulePack};
use leakaudit_scanner::exposure::analyse;
use leakaudit_scanner::scan::{Event, ScanOptions, Scanner};
use std::collections::BTreeMap;
use std::time::Instant;

fn main() {
    let inputs: Vec<String> = std::env::args().skip(1).collect();
    if inputs.is_empty() {
        eprintln!("usage: rules_throughput ARCHIVE...");
        std::process::exit(2);
    }
    let org = OrgConfig::default().org();
    // `RULES=DIR` measures another pack instead (e.g. to see one rule's cost).
    let pack = match std::env::var_os("RULES") {
        Some(d) => RulePack::load_dir(std::path::Path::new(&d)).unwrap_or_else(|e| {
            eprintln!("{e:?}");
            std::process::exit(2)
        }),
        None => RulePack::builtin(),
    };
    let engine = Engine::new(pack, org.clone(), &BTreeMap::new());
    // `THREADS=1` gives steadier figures on a busy machine.
    let threads = std::env::var("THREADS").ok().and_then(|t| t.parse().ok());
    let scanner = Scanner::new(ScanOptions {
        threads,
        ..ScanOptions::default()
    });

    let best = |label: &str, f: &dyn Fn() -> (u64, u64, usize)| {
        let mut fastest = f64::MAX;
        let mut last = (0, 0, 0);
        for _ in 0..3 {
            let t = Instant::now();
            last = f();
            fastest = fastest.min(t.elapsed().as_secs_f64());
        }
        let (bytes, msgs, hits) = last;
        let mbs = bytes as f64 / 1e6 / fastest;
        println!(
            "{label:<34} {:>8.1} MB/s {:>10.0} msg/s  ({msgs} messages, {hits} flagged, {:.2} s)",
            mbs,
            msgs as f64 / fastest,
            fastest
        );
        mbs
    };
    let header = best("headers + exposure (scan)", &|| {
        let mut flagged = 0usize;
        let stats = scanner.scan(
            &inputs,
            |m| analyse(&m.envelope, &org).exposes(),
            |ev| {
                if let Event::Message { item: true, .. } = ev {
                    flagged += 1;
                }
            },
        );
        (stats.bytes, stats.messages, flagged)
    });
    let full = best("all default rules (check)", &|| {
        let mut flagged = 0usize;
        let stats = scanner.scan(
            &inputs,
            |m| engine.evaluate(m).findings.len(),
            |ev| {
                if let Event::Message { item, .. } = ev {
                    if item > 0 {
                        flagged += 1;
                    }
                }
            },
        );
        (stats.bytes, stats.messages, flagged)
    });
    println!(
        "content rules on: {:.0}% of header-only speed (target: at least 50%)",
        100.0 * full / header
    );
}
