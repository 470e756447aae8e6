//! `leakaudit check`: the CI gate. Evaluates every rule on archives or rendered fixture mails
//! and exits 1 when a finding at or above `--fail-on` remains after the baseline, 0 when none
//! does, 2 on an error (bad rules or config, unreadable input, a message that could not be
//! audited; outputs are still written for the rest). OWNER: policy helper.
//!
//! Default `--fail-on high`: any real exposure of strangers (high) or secret (critical)
//! fails the build, medium/low/info findings are reported without failing it.

use crate::config::{load_engine, load_org};
use crate::progress::Progress;
use crate::scan::{ArchiveKindArg, FormatArg};
use crate::{EXIT_CLEAN, EXIT_ERROR, EXIT_VIOLATION};
use anyhow::Context;
use leakaudit_policy::baseline::Baseline;
use leakaudit_policy::report::{self, MessageReport, Summary};
use leakaudit_policy::{junit, sarif, Finding, RulesMode, Severity};
use leakaudit_scanner::scan::{Event, ScanOptions, Scanner};
use leakaudit_scanner::{Format, Message, ProblemLevel};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Human,
    Json,
    Jsonl,
    Sarif,
    Junit,
}

#[derive(clap::Args)]
pub struct Args {
    /// mbox files, Maildirs, .eml files or folders of them; `-` reads standard input.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
    /// Fail (exit 1) when a finding at or above this severity remains [default: the
    /// config's `fail_on`, else high].
    #[arg(long, value_name = "SEVERITY")]
    pub fail_on: Option<Severity>,
    /// Folder of rule files (replaces or extends the built-in pack, see --rules-mode).
    #[arg(long, value_name = "DIR")]
    pub rules: Option<PathBuf>,
    /// How --rules combines with the built-in pack [default: extend].
    #[arg(long, value_name = "MODE")]
    pub rules_mode: Option<RulesMode>,
    /// Organisation settings [default: ./leakaudit.toml when present].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Suppress the findings listed in this baseline (by fingerprint).
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Write every current finding to this baseline file (the run then passes: all findings
    /// are known).
    #[arg(long, value_name = "FILE")]
    pub write_baseline: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: OutputFormat,
    /// Write the report to FILE (atomically, mode 0600); `-` = standard output.
    #[arg(long, short, value_name = "FILE", default_value = "-")]
    pub output: PathBuf,
    /// Where the archive comes from: decides whether a Bcc header is itself a leak
    /// [default: the config's, else transmitted].
    #[arg(long, value_enum)]
    pub archive_kind: Option<ArchiveKindArg>,
    /// A domain of the organisation (repeatable); the From domain is always internal.
    #[arg(long = "internal-domain", value_name = "DOMAIN")]
    pub internal_domains: Vec<String>,
    /// Read every file as this format instead of detecting it from the content.
    #[arg(long, value_enum)]
    pub input_format: Option<FormatArg>,
    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// No progress bar and no summary on stderr; errors are still printed.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let (cfg, org) = load_org(
        args.config.as_deref(),
        &args.internal_domains,
        args.archive_kind.map(Into::into),
    )?;
    let engine = load_engine(&cfg, org, args.rules.as_deref(), args.rules_mode)?;
    let fail_on = args.fail_on.or(cfg.fail_on).unwrap_or(Severity::High);
    // A broken baseline is an error before any work is done.
    let baseline = match &args.baseline {
        Some(p) => Some(Baseline::load(p).map_err(|e| anyhow::anyhow!("{e}"))?),
        None => None,
    };

    let scanner = Scanner::new(ScanOptions {
        format: args.input_format.map(Format::from),
        threads: args.threads,
        ..ScanOptions::default()
    });
    let progress = Progress::for_inputs("check", &args.paths, args.quiet);
    let keep_clean = args.format == OutputFormat::Junit;
    let mut reports: Vec<MessageReport> = Vec::new();
    let mut errors = 0usize;
    let process = |msg: &Message<'_>| -> Vec<Finding> { engine.evaluate(msg).findings };
    let on_event = |ev: Event<Vec<Finding>>| match ev {
        Event::Message { location, item, .. } => {
            if !item.is_empty() || keep_clean {
                let first = item.first();
                reports.push(MessageReport {
                    location,
                    message_id: first.and_then(|f| f.message_id.clone()),
                    subject: first.and_then(|f| f.subject.clone()),
                    findings: item,
                });
            }
        }
        Event::Problem(p) => {
            if p.level == ProblemLevel::Error {
                errors += 1;
                progress.println(&format!("error: {p}"));
            } else if !args.quiet {
                progress.println(&format!("warning: {p}"));
            }
        }
        Event::Progress { bytes, messages } => progress.update(bytes, messages),
    };
    let stats = scanner.scan(&args.paths, process, on_event);
    progress.finish();

    if let Some(path) = &args.write_baseline {
        let b = Baseline::from_findings(reports.iter().flat_map(|r| &r.findings));
        leakaudit_scanner::io::write_bytes_atomic(path, b.to_json().as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        if !args.quiet {
            eprintln!(
                "wrote {} baseline entr{} to {}",
                b.findings.len(),
                if b.findings.len() == 1 { "y" } else { "ies" },
                path.display()
            );
        }
    }
    let mut suppressed = 0;
    if args.write_baseline.is_some() {
        // Everything found is now known: the gate passes (errors still count).
        suppressed = reports.iter().map(|r| r.findings.len()).sum();
        for r in &mut reports {
            r.findings.clear();
        }
    } else if let Some(b) = &baseline {
        let outcome = b.apply(&mut reports);
        suppressed = outcome.suppressed;
        if !outcome.unmatched.is_empty() {
            eprintln!(
                "baseline: {} entr{} matched no finding (fixed, or the baseline is stale):",
                outcome.unmatched.len(),
                if outcome.unmatched.len() == 1 {
                    "y"
                } else {
                    "ies"
                }
            );
            for e in &outcome.unmatched {
                eprintln!(
                    "  {} {} ({})",
                    &e.fingerprint[..16.min(e.fingerprint.len())],
                    e.rule_id,
                    e.location
                );
            }
        }
    }
    if !keep_clean {
        reports.retain(|r| !r.findings.is_empty());
    }
    let summary = Summary::new(&reports, stats.messages, suppressed, errors, fail_on);

    let rendered = match args.format {
        OutputFormat::Human => report::human(&reports, &summary),
        OutputFormat::Json => pretty(&report::json(&reports, &summary)),
        OutputFormat::Jsonl => report::jsonl(&reports),
        OutputFormat::Sarif => pretty(&sarif::render(
            engine.rules(),
            &reports,
            env!("CARGO_PKG_VERSION"),
        )),
        OutputFormat::Junit => junit::render(&reports, fail_on),
    };
    write_output(&args.output, &rendered)?;
    if !args.quiet && (args.format != OutputFormat::Human || args.output != Path::new("-")) {
        eprintln!(
            "{} finding{} ({} at or above {}) in {} messages; {} suppressed by the baseline",
            summary.findings,
            if summary.findings == 1 { "" } else { "s" },
            summary.failing,
            fail_on,
            summary.messages,
            summary.suppressed
        );
    }
    Ok(if stats.had_errors() || errors > 0 {
        EXIT_ERROR
    } else if summary.failing > 0 {
        EXIT_VIOLATION
    } else {
        EXIT_CLEAN
    })
}

fn pretty(v: &serde_json::Value) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("JSON values serialise");
    s.push('\n');
    s
}

fn write_output(path: &Path, text: &str) -> anyhow::Result<()> {
    if path == Path::new("-") {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.flush()?;
        Ok(())
    } else {
        leakaudit_scanner::io::write_bytes_atomic(path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))
    }
}
