//! Cost of the triage beside the header scan, on the same archive and parallel pipeline
//! (best of 3 runs each, page cache warm):
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

use leakaudit_policy::triage::{self, HistoryBuilder, HistoryOptions, Profile, TriageContext};
use leakaudit_policy::{Engine, OrgConfig, RulePack};
use leakaudit_scanner::exposure::analyse;
use leakaudit_scanner::scan::{Event, ScanOptions, Scanner};
use leakaudit_scanner::{Envelope, Exposure};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn best<F: FnMut()>(mut f: F) -> Duration {
    (0..3)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .expect("3 runs")
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
        let history = builder.finish();
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
    });
    println!(
        "{messages} messages, {exposing} exposing: scan {scan:.2?}, scan + history + triage {triage:.2?}, ratio {:.2}",
        scan.as_secs_f64() / triage.as_secs_f64()
    );
}
