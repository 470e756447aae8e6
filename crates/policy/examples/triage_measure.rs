//! Triage on a real archive: the history pass, then every message under the audit profile;
//! prints exposure findings by severity and by signal, and each finding at high or above.
//!
//! ```text
//! cargo run -p leakaudit-policy --example triage_measure -- \
//!     --sent --internal-domain enron.com ../shared/corpora/enron-sent/
//! ```
//! Options: `--sent` / `--transmitted` (default auto), `--internal-domain D` (repeatable),
//! `--gate` (today's profile, for comparison), `--list SEVERITY` (print findings at or above).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use leakaudit_policy::triage::{HistoryBuilder, HistoryOptions, Profile, TriageContext};
use leakaudit_policy::{Engine, OrgConfig, RulePack, Severity};
use leakaudit_scanner::scan::{Event, ScanOptions, Scanner};
use leakaudit_scanner::ArchiveKind;
use std::collections::BTreeMap;
use std::time::Instant;

const EXPOSURE_RULES: [&str; 3] = [
    "recipient-exposure",
    "bcc-header-leak",
    "group-members-visible",
];

fn main() {
    let mut cfg = OrgConfig::default();
    let mut inputs = Vec::new();
    let mut profile = Profile::Audit;
    let mut list = Severity::High;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--sent" => cfg.archive_kind = ArchiveKind::Sent,
            "--transmitted" => cfg.archive_kind = ArchiveKind::Transmitted,
            "--gate" => profile = Profile::Gate,
            "--internal-domain" => cfg.internal_domains.push(args.next().expect("domain")),
            "--list" => list = args.next().expect("severity").parse().expect("severity"),
            _ => inputs.push(a),
        }
    }
    let org = cfg.org();
    let scanner = Scanner::new(ScanOptions::default());

    let t = Instant::now();
    let builder = HistoryBuilder::new(HistoryOptions::default());
    scanner.scan(
        &inputs,
        |m| builder.observe(&m.envelope, &org),
        |_: Event<()>| {},
    );
    let history = builder.finish();
    let pass1 = t.elapsed();

    let engine = Engine::new(RulePack::builtin(), org.clone(), &BTreeMap::new());
    let ctx = TriageContext {
        profile,
        history: Some(&history),
        ..TriageContext::default()
    };
    let t = Instant::now();
    let mut messages = 0u64;
    let mut flagged_messages: BTreeMap<Severity, u64> = BTreeMap::new();
    let mut by_signal: BTreeMap<String, u64> = BTreeMap::new();
    let mut listed = Vec::new();
    scanner.scan(
        &inputs,
        |m| engine.evaluate_with(m, &ctx).findings,
        |ev| {
            if let Event::Message { item, .. } = ev {
                messages += 1;
                let exp: Vec<_> = item
                    .into_iter()
                    .filter(|f| EXPOSURE_RULES.contains(&f.rule_id.as_str()))
                    .collect();
                if let Some(worst) = exp.iter().map(|f| f.severity).max() {
                    *flagged_messages.entry(worst).or_default() += 1;
                }
                for f in exp.iter().filter(|f| f.rule_id == "recipient-exposure") {
                    for s in &f.signals {
                        *by_signal.entry(s.code().to_owned()).or_default() += 1;
                    }
                    if f.severity >= list {
                        listed.push(format!(
                            "{} {} [{}] {} | {}",
                            f.severity,
                            f.location,
                            f.subject.as_deref().unwrap_or(""),
                            f.signals
                                .iter()
                                .map(|s| s.code())
                                .collect::<Vec<_>>()
                                .join(","),
                            f.reasons.join("; ")
                        ));
                    }
                }
            }
        },
    );
    let pass2 = t.elapsed();
    println!("messages: {messages}  profile: {profile}  history pass: {pass1:.2?}  triage pass: {pass2:.2?}");
    println!(
        "history: {} pairs ({} dropped), suggested internal domains: {:?}",
        history.pairs(),
        history.dropped_pairs(),
        history.suggested_internal_domains()
    );
    println!("messages by worst exposure severity:");
    let mut high = 0;
    for (s, n) in flagged_messages.iter().rev() {
        println!("  {s:>8}: {n}");
        if *s >= Severity::High {
            high += n;
        }
    }
    println!(
        "  high or above: {high} of {messages} = {:.2}%",
        100.0 * high as f64 / messages.max(1) as f64
    );
    println!("recipient-exposure findings by signal:");
    for (s, n) in &by_signal {
        println!("  {s:>16}: {n}");
    }
    if !listed.is_empty() {
        println!("findings at {list} or above:");
        for l in listed {
            println!("  {l}");
        }
    }
}
