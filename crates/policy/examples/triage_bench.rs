//! Cost of the triage beside the header scan, on the same archive and parallel pipeline
//! (best of 5 runs each, wall and CPU time, page cache warm):
//!
//! ```text
//! cargo run --release -p leakaudit-policy --example triage_bench -- ARCHIVE...
//! ```
//! 1. scan: headers + exposure model (what `leakaudit scan` does);
//! 2. scan + history: the same single pass also feeding `HistoryBuilder::observe_analysed`;
//! 3. then `triage::assess` of the exposing messages kept by that pass (audit profile; what
//!    `Engine::retriage` adds to their header findings).
//!
//! Target (issue 8): (1) / (2 + 3) >= 0.8.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use leakaudit_policy::triage::{self, HistoryBuilder, HistoryOptions, Profile, TriageContext};
use leakaudit_policy::{Engine, OrgConfig, RulePack};
use leakaudit_scanner::exposure::analyse;
use leakaudit_scanner::scan::{Event, ScanOptions, Scanner};
use leakaudit_scanner::{Envelope, Exposure};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// CPU time of the process (user + system), from /proc (Linux): on a machine shared with
/// other jobs, wall time varies 2x between runs, CPU time much less.
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, r)| r)
        .split_whitespace()
        .collect();
    // After the command: field 3 (state) is index 0; utime and stime are fields 14 and 15,
    // in clock ticks (100 Hz on Linux).
    let field = |i: usize| {
        after
            .get(i - 3)
            .and_then(|x| x.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let ticks = field(14) + field(15);
    Duration::from_millis(ticks * 10)
}

/// Best of 5 runs: (wall, cpu).
fn best<F: FnMut()>(mut f: F) -> (Duration, Duration) {
    let runs: Vec<(Duration, Duration)> = (0..5)
        .map(|_| {
            let (t, c) = (Instant::now(), cpu());
            f();
            (t.elapsed(), cpu().saturating_sub(c))
        })
        .collect();
    (
        runs.iter().map(|r| r.0).min().expect("runs"),
        runs.iter().map(|r| r.1).min().expect("runs"),
    )
}

fn main() {
    let inputs: Vec<String> = std::env::args().skip(1).collect();
    let org = OrgConfig::default().org();
    let scanner = Scanner::new(ScanOptions::default());
    let mut messages = 0u64;
    let scan = best(|| {
        messages = 0;
        scanner.scan(
            &inputs,
            |m| analyse(&m.envelope, &org).exposes(),
            |ev| {
                if let Event::Message { .. } = ev {
                    messages += 1;
                }
            },
        );
    });
    let engine = Engine::new(RulePack::builtin(), org.clone(), &BTreeMap::new());
    let mut exposing = 0;
    let mut assess = Duration::ZERO;
    let mut merge = Duration::ZERO;
    let triage = best(|| {
        let builder = HistoryBuilder::new(HistoryOptions::default());
        let mut kept: Vec<(Envelope, Exposure)> = Vec::new();
        scanner.scan(
            &inputs,
            |m| {
                let x = analyse(&m.envelope, &org);
                builder.observe_analysed(&m.envelope, &org, &x);
                // Only exposing messages go to pass 2.
                x.exposes().then(|| (m.envelope.clone(), x))
            },
            |ev| {
                if let Event::Message { item: Some(k), .. } = ev {
                    kept.push(k);
                }
            },
        );
        let t_assess = Instant::now();
        let history = builder.finish();
        merge = t_assess.elapsed();
        let ctx = TriageContext {
            profile: Profile::Audit,
            history: Some(&history),
            ..TriageContext::default()
        };
        exposing = kept.len();
        let t = engine.thresholds();
        for (env, x) in &kept {
            std::hint::black_box(triage::assess(env, x, &org, &[], &ctx, t));
        }
        assess = t_assess.elapsed();
    });
    println!(
        "{messages} messages, {exposing} exposing: scan {:.2?} wall / {:.2?} cpu, scan + history + triage {:.2?} wall / {:.2?} cpu (last merge {merge:.2?}, + assess {assess:.2?}); speed kept: {:.2} wall, {:.2} cpu",
        scan.0,
        scan.1,
        triage.0,
        triage.1,
        scan.0.as_secs_f64() / triage.0.as_secs_f64(),
        scan.1.as_secs_f64() / triage.1.as_secs_f64()
    );
}
