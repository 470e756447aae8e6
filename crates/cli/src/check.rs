//! `leakaudit check`: the CI gate. Evaluates every rule on archives or rendered fixture mails
//! and exits 1 when a finding at or above `--fail-on` remains after the baseline, 0 when none
//! does, 2 on an error (bad rules or config, unreadable input, a message that could not be
//! audited; outputs are still written for the rest).
//!
//! Every decision is the library's (`leakaudit_policy::audit`): the [`Auditor`] (rules,
//! organisation, `fail_on`, default high) and the [`Gate`] (minimum messages, not fully
//! audited is an error, the baseline, the outcome). This file turns flags into them, runs the
//! scan and prints.

use crate::args::{OrgArgs, ReadArgs, RulesArgs, TriageArgs, UiArgs};
use crate::config::RunConfig;
use crate::evaluate::Triage;
use crate::problems::Problems;
use crate::progress::Progress;
use anyhow::Context;
use leakaudit_policy::baseline::Baseline;
use leakaudit_policy::report::{self, MessageReport, Summary};
use leakaudit_policy::triage::Profile;
use leakaudit_policy::{junit, sarif, Gate, Severity};
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
    /// Fail when a finding at or above this severity remains (check: exit 1; guard: the
    /// message is refused) [default: the config's `fail_on`, else high].
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
    let auditor = run.auditor(args.fail_on)?;
    let engine = auditor.engine();
    let fail_on = auditor.fail_on();
    let gate = Gate {
        fail_on,
        min_messages: args.min_messages,
        // A broken baseline is an error before any work is done.
        baseline: args.baseline.as_deref().map(Baseline::load).transpose()?,
        write_baseline: args.write_baseline.is_some(),
    };

    let scanner = run.scanner();
    let triage = Triage::resolve(&run, &args.triage, Profile::Gate)?;
    let progress = Progress::for_inputs("check", &args.paths, args.ui.quiet);
    let mut problems = Problems::new(args.ui.problems.as_deref(), args.ui.quiet, &progress)?.gate();
    let keep_clean = args.format == OutputFormat::Junit;
    let mut reports: Vec<MessageReport> = Vec::new();
    let (stats, history) = triage.evaluate(
        &scanner,
        engine,
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
    let read_nothing = crate::problems::ensure_read(&stats, &args.paths)
        .err()
        .map(|e| e.to_string());
    for e in gate.count_errors(stats.messages, read_nothing) {
        eprintln!("error: {e}");
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
    let settled = gate.settle(&mut reports);
    let suppressed = settled.suppressed;
    if !settled.unmatched.is_empty() {
        let n = settled.unmatched.len();
        eprintln!(
            "baseline: {n} entr{} matched no finding (fixed, or the baseline is stale):",
            if n == 1 { "y" } else { "ies" }
        );
        for e in &settled.unmatched {
            eprintln!(
                "  {} {} ({})",
                crate::term::clean(&e.fingerprint[..16.min(e.fingerprint.len())]),
                crate::term::clean(&e.rule_id),
                crate::term::clean(&e.location.to_string())
            );
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
    if stats.had_errors() {
        errors = errors.max(1);
    }
    Ok(gate.outcome(errors, &reports).exit_code())
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
