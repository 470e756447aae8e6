//! Counts `seed-phrase` findings over archives, to compare the rule's false positives before
//! and after a change (issue 8):
//!
//! ```text
//! cargo run -p leakaudit-policy --example seed_phrase_count -- ../shared/corpora/
//! ```
//! Prints the messages scanned, the findings, and each finding's location and evidence.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use leakaudit_policy::{Engine, OrgConfig, RulePack};
use leakaudit_scanner::scan::{Event, ScanOptions, Scanner};
use std::collections::BTreeMap;

fn main() {
    let inputs: Vec<String> = std::env::args().skip(1).collect();
    if inputs.is_empty() {
        eprintln!("usage: seed_phrase_count ARCHIVE...");
        std::process::exit(2);
    }
    let mut pack = RulePack::builtin();
    pack.rules.retain(|r| r.info.kind == "seed-phrase");
    let engine = Engine::new(pack, OrgConfig::default().org(), &BTreeMap::new());
    let scanner = Scanner::new(ScanOptions::default());
    let (mut messages, mut hits) = (0u64, 0u64);
    scanner.scan(
        &inputs,
        |msg| engine.evaluate(msg).findings,
        |ev| {
            if let Event::Message { item, .. } = ev {
                messages += 1;
                for f in item {
                    hits += 1;
                    println!("{} {}", f.location, f.evidence);
                }
            }
        },
    );
    println!("{messages} messages, {hits} seed-phrase findings");
}
