//! `leakaudit check`: the CI gate. Evaluates every rule on archives or rendered fixture mails
//! and exits 1 when a finding at or above `--fail-on` remains after the baseline, 0 when none
//! does, 2 on an error (bad rules or config, unreadable input, a message that could not be
//! audited; outputs are still written for the rest).
//!
//! Default `--fail-on high`: any real exposure of strangers (high) or secret (critical)
//! fails the build, medium/low/info findings are reported without failing it.

use crate::args::{OrgArgs, ReadArgs, RulesArgs, TriageArgs, UiArgs};
use crate::config::RunConfig;
use crate::evaluate::Triage;
use crate::problems::Problems;
use crate::progress::Progress;
use crate::{EXIT_CLEAN, EXIT_ERROR, EXIT_VIOLATION};
use anyhow::Context;
use leakaudit_policy::baseline::Baseline;
use leakaudit_policy::report::{self, MessageReport, Summary};
use leakaudit_policy::triage::Profile;
use leakaudit_policy::{junit, sarif, Severity};
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
    /// Exit 2 unless at least N messages were audited (a renderer that produced nothing
    /// must not pass the gate).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub min_messages: u64,
    /// SARIF: inputs under this folder get repository-relative URIs (`uriBaseId`
    /// `%SRCROOT%`); default: the working directory.
    #[arg(long, value_name = "DIR")]
    pub sarif_root: Option<PathBuf>,
    /// Write the report to FILE (atomically, mode 0600); `-` = standard output.
    #[arg(long, short, value_name = "FILE", default_value = "-")]
    pub output: PathBuf,
    #[command(flatten)]
    pub read: ReadArgs,
    #[command(flatten)]
    pub org: OrgArgs,
    #[command(flatten)]
    pub rules: RulesArgs,
    #[command(flatten)]
    pub ui: UiArgs,
    #[command(flatten)]
    pub triage: TriageArgs,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let run = RunConfig::resolve(&args.org, &args.rules, &args.read)?;
    let engine = run.engine()?;
    let fail_on = args.fail_on.or(run.cfg.fail_on).unwrap_or(Severity::High);
    // A broken baseline is an error before any work is done.
    let baseline = args.baseline.as_deref().map(Baseline::load).transpose()?;

    let scanner = run.scanner();
    let triage = Triage::resolve(&run, &args.triage, Profile::Gate)?;
    let progress = Progress::for_inputs("check", &args.paths, args.ui.quiet);
    let mut problems = Problems::new(args.ui.problems.as_deref(), args.ui.quiet, &progress)?.gate();
    let keep_clean = args.format == OutputFormat::Junit;
    let mut reports: Vec<MessageReport> = Vec::new();
    let (stats, history) = triage.evaluate(
        &scanner,
        &engine,
        &args.paths,
        &progress,
        &mut problems,
        None,
        |_, _| (),
        |m| {
            let item = m.eval.findings;
            if !item.is_empty() || keep_clean {
                let first = item.first();
                reports.push(MessageReport {
                    location: m.location,
                    message_id: first.and_then(|f| f.message_id.clone()),
                    subject: first.and_then(|f| f.subject.clone()),
                    findings: item,
                });
            }
        },
    )?;
    progress.finish();
    if !args.ui.quiet {
        let domains = crate::evaluate::suggested_domains(history.as_ref(), engine.org());
        if let Some(note) = crate::evaluate::suggestion_note(&domains) {
            eprintln!("{note}");
        }
    }
    let mut errors = problems.errors as usize;
    problems.finish()?;
    if args.min_messages > 0 {
        if let Err(e) = crate::problems::ensure_read(&stats, &args.paths) {
            eprintln!("error: {e}");
            errors += 1;
        }
    }
    if stats.messages > 0 && stats.messages < args.min_messages {
        eprintln!(
            "error: {} message(s) audited, fewer than --min-messages {}",
            stats.messages, args.min_messages
        );
        errors += 1;
    }

    if let Some(path) = &args.write_baseline {
        let b = Baseline::from_findings(reports.iter().flat_map(|r| &r.findings));
        leakaudit_scanner::io::write_bytes_atomic(path, b.to_json().as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        if !args.ui.quiet {
            eprintln!(
                "wrote {} baseline entr{} to {}",
                b.findings.len(),
                if b.findings.len() == 1 { "y" } else { "ies" },
                crate::term::clean(&path.display().to_string())
            );
        }
    }
    let mut suppressed = 0;
    if args.write_baseline.is_some() {
        // Everything found is now known: the gate passes (errors still count). Nothing was
        // suppressed by a baseline: the findings are the baseline.
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
                    crate::term::clean(&e.fingerprint[..16.min(e.fingerprint.len())]),
                    crate::term::clean(&e.rule_id),
                    crate::term::clean(&e.location.to_string())
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
        OutputFormat::Sarif => {
            let cwd = std::env::current_dir()?;
            let opts = sarif::SarifOptions {
                src_root: Some(args.sarif_root.clone().unwrap_or_else(|| cwd.clone())),
                cwd,
            };
            pretty(&sarif::render_with(
                engine.rules(),
                &reports,
                env!("CARGO_PKG_VERSION"),
                &opts,
            ))
        }
        OutputFormat::Junit => junit::render(&reports, fail_on),
    };
    write_output(&args.output, &rendered)?;
    if !args.ui.quiet && (args.format != OutputFormat::Human || args.output != Path::new("-")) {
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
