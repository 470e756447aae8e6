//! Counts `address-list-in-content` findings over real archives and lists each one, to
//! measure the rule's precision on ordinary mail (issue 8):
//!
//! ```text
//! cargo run -p leakaudit-policy --example content_findings -- \
//!     --internal-domain enron.com --sent ../shared/corpora/enron-sent
//! cargo run -p leakaudit-policy --example content_findings -- ../shared/corpora/spamassassin
//! ```
//! Prints one line per finding (path, where the addresses are, redacted sample) and the
//! totals. `--quoted` also prints how many addresses the quoted regions of each flagged
//! message hold.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use leakaudit_policy::quoted::quoted_addresses;
use leakaudit_policy::{Engine, OrgConfig, RulePack};
use leakaudit_scanner::scan::{Event, ScanOptions, Scanner};
use leakaudit_scanner::ArchiveKind;
use std::collections::BTreeMap;

const RULE: &str = "address-list-in-content";

fn main() {
    let mut cfg = OrgConfig::default();
    let mut inputs = Vec::new();
    let mut show_quoted = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--internal-domain" => match args.next() {
                Some(d) => cfg.internal_domains.push(d),
                None => usage(),
            },
            "--sent" => cfg.archive_kind = ArchiveKind::Sent,
            "--quoted" => show_quoted = true,
            _ if a.starts_with("--") => usage(),
            _ => inputs.push(a),
        }
    }
    if inputs.is_empty() {
        usage();
    }
    let engine = Engine::new(RulePack::builtin(), cfg.org(), &BTreeMap::new());
    let scanner = Scanner::new(ScanOptions::default());
    let mut hits = 0usize;
    let stats = scanner.scan(
        &inputs,
        |m| {
            let found: Vec<String> = engine
                .evaluate(m)
                .findings
                .into_iter()
                .filter(|f| f.rule_id == RULE)
                .map(|f| format!("{} | {}", f.message, f.evidence))
                .collect();
            let quoted = if show_quoted && !found.is_empty() {
                quoted_addresses(m).len()
            } else {
                0
            };
            (found, quoted)
        },
        |ev| {
            if let Event::Message {
                location,
                item: (found, quoted),
                ..
            } = ev
            {
                for f in found {
                    hits += 1;
                    if show_quoted {
                        println!("{location}: {f} [{quoted} quoted addresses]");
                    } else {
                        println!("{location}: {f}");
                    }
                }
            }
        },
    );
    println!(
        "{RULE}: {hits} findings in {} messages ({} files, {} malformed)",
        stats.messages, stats.files, stats.malformed
    );
}

fn usage() -> ! {
    eprintln!("usage: content_findings [--internal-domain D]... [--sent] [--quoted] PATH...");
    std::process::exit(2)
}
