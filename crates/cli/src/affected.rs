//! `leakaudit affected`: one row per exposed address, from archives (scanned and evaluated
//! here) and/or saved findings (`check --format jsonl`), optionally matched to accounts and
//! pseudonymised. Output files are written atomically with mode 0600.

use crate::args::{MatchArgs, OrgArgs, ReadArgs, RulesArgs, SelectArgs, TriageArgs, UiArgs};
use crate::config::RunConfig;
use crate::evaluate::Triage;
use crate::problems::Problems;
use crate::progress::Progress;
use crate::{EXIT_CLEAN, EXIT_ERROR, EXIT_VIOLATION};
use anyhow::Context;
use leakaudit_policy::triage::Profile;
use leakaudit_policy::Severity;
use leakaudit_remediation::affected::Matcher;
use leakaudit_remediation::affected::{
    self, AffectedAccumulator, AffectedFormat, SawOthers, Selection,
};
use leakaudit_remediation::{store, AffectedRow};
use leakaudit_scanner::scan::ScanStats;
use std::io::Write;
use std::path::PathBuf;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum OutFormat {
    Csv,
    Json,
}

/// Where exposures come from, shared by `affected` and `remediate plan`.
#[derive(clap::Args, Clone)]
pub struct Source {
    /// Archives to scan: mbox (plain, gzip, zstd), Maildirs, .eml files or folders; `-` = stdin.
    #[arg(value_name = "PATH")]
    pub paths: Vec<String>,
    /// Saved findings (JSON Lines of `check --format jsonl`, or `scan` records); repeatable.
    #[arg(long, value_name = "FILE.jsonl")]
    pub findings: Vec<PathBuf>,
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
    #[command(flatten)]
    pub select: SelectArgs,
}

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub source: Source,
    /// Account store (SQLite file) to match addresses to account ids.
    #[arg(long, value_name = "DB")]
    pub accounts: Option<PathBuf>,
    #[command(flatten)]
    pub matching: MatchArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "csv")]
    pub format: OutFormat,
    /// Output file (mode 0600, written atomically); standard output when absent or `-`.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Replace addresses with HMAC-SHA256(KEY, address). Prefer the key file or the env var:
    /// arguments are visible to other local users.
    #[arg(long, value_name = "KEY", conflicts_with_all = ["pseudonymise_key_file", "pseudonymise_env"])]
    pub pseudonymise: Option<String>,
    /// Read the pseudonymisation key from FILE (trailing newline ignored).
    #[arg(long, value_name = "FILE", conflicts_with = "pseudonymise_env")]
    pub pseudonymise_key_file: Option<PathBuf>,
    /// Read the pseudonymisation key from $LEAKAUDIT_PSEUDONYM_KEY.
    #[arg(long)]
    pub pseudonymise_env: bool,
    /// Also write who received an exposing message without being shown in it (a journal's
    /// Bcc, expanded-list and forwarded recipients: they saw the exposed addresses) to FILE
    /// (CSV, mode 0600, addresses in clear).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["pseudonymise", "pseudonymise_key_file", "pseudonymise_env"])]
    pub saw_others: Option<PathBuf>,
}

/// What reading the sources produced.
pub struct Collected {
    pub acc: AffectedAccumulator,
    pub stats: Option<ScanStats>,
    /// Error-level problems while scanning (the exit code becomes 2).
    pub errors: u64,
    /// The threshold findings had to reach to count.
    pub min_severity: Severity,
    /// Exposed addresses left out: every finding that exposed them ranked below the threshold.
    pub below_only: usize,
    /// Who saw exposed addresses without being shown (journal envelopes).
    pub saw: SawOthers,
}

impl Collected {
    /// One line for stderr saying what the threshold left out, if anything.
    pub fn below_note(&self) -> Option<String> {
        (self.below_only > 0).then(|| {
            format!(
                "{} exposed address(es) left out: ranked below --min-severity {} (reply-all on existing threads, known groups, the sender's own addresses...); lower it to include them",
                self.below_only, self.min_severity
            )
        })
    }
}

/// Scans the archives with the policy engine (ranked under the profile) and reads the findings
/// files into one accumulator, keeping findings at or above `--min-severity`. Problems are
/// printed on stderr; the scan goes on.
pub fn collect(src: &Source) -> anyhow::Result<Collected> {
    anyhow::ensure!(
        !src.paths.is_empty() || !src.findings.is_empty(),
        "give archives to scan and/or --findings FILE"
    );
    let run = RunConfig::resolve(&src.org, &src.rules, &src.read)?;
    let min = src
        .select
        .min_severity
        .or(run.cfg.min_severity)
        .unwrap_or(Severity::Medium);
    let mut sel = Selection::new(min);
    for f in &src.findings {
        // Saved findings carry the severity they were ranked with.
        sel.acc.add_jsonl_file(f)?;
    }
    let mut errors = 0;
    let mut stats = None;
    if !src.paths.is_empty() {
        let engine = run.engine()?;
        let triage = Triage::resolve(&run, &src.triage, Profile::Audit)?;
        let scanner = run.scanner();
        let progress = Progress::for_inputs("scan", &src.paths, src.ui.quiet);
        let mut problems = Problems::new(src.ui.problems.as_deref(), src.ui.quiet, &progress)?;
        let (s, _) = triage.evaluate(
            &scanner,
            &engine,
            &src.paths,
            &progress,
            &mut problems,
            None,
            |_, _| (),
            |m| sel.add(&m.location, &m.eval),
        )?;
        progress.finish();
        errors = problems.errors;
        problems.finish()?;
        crate::problems::ensure_read(&s, &src.paths)?;
        stats = Some(s);
    }
    Ok(Collected {
        below_only: sel.below_only(),
        acc: sel.acc,
        stats,
        errors,
        min_severity: min,
        saw: sel.saw,
    })
}

/// The pseudonymisation key from the arguments, if one was asked for.
fn pseudonym_key(args: &Args) -> anyhow::Result<Option<Vec<u8>>> {
    let key = if let Some(k) = &args.pseudonymise {
        Some(k.as_bytes().to_vec())
    } else if let Some(f) = &args.pseudonymise_key_file {
        let mut k = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
        while k.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            k.pop();
        }
        Some(k)
    } else if args.pseudonymise_env {
        Some(
            std::env::var("LEAKAUDIT_PSEUDONYM_KEY")
                .context("--pseudonymise-env: LEAKAUDIT_PSEUDONYM_KEY is not set")?
                .into_bytes(),
        )
    } else {
        None
    };
    if let Some(k) = &key {
        anyhow::ensure!(
            k.len() >= 16,
            "the pseudonymisation key must be at least 16 bytes"
        );
    }
    Ok(key)
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let key = pseudonym_key(&args)?;
    let collected = collect(&args.source)?;
    let format = match args.format {
        OutFormat::Csv => AffectedFormat::Csv,
        OutFormat::Json => AffectedFormat::Json,
    };
    let store = args.accounts.as_deref().map(store::open).transpose()?;
    let mut matcher = match &store {
        Some(s) => Some(Matcher::new(&**s, args.matching.mode())?),
        None => None,
    };
    let mut meta = matcher.as_ref().map(|m| m.meta.clone()).unwrap_or_default();
    // Pseudonymised lists are sorted by pseudonym, so they are built whole; a clear list is
    // streamed row by row (a million-address list is never held twice).
    let rows: Box<dyn Iterator<Item = AffectedRow>> = match &key {
        Some(k) => {
            let mut rows: Vec<AffectedRow> = match matcher.as_mut() {
                Some(m) => m.match_iter(collected.acc.rows_iter()).collect(),
                None => collected.acc.rows_iter().collect(),
            };
            affected::pseudonymise(&mut rows, k);
            meta.pseudonymised = true;
            Box::new(rows.into_iter())
        }
        None => match matcher.as_mut() {
            Some(m) => Box::new(m.match_iter(collected.acc.rows_iter())),
            None => Box::new(collected.acc.rows_iter()),
        },
    };
    let written = match crate::config::file_or_stdout(args.output.as_deref()) {
        Some(p) => affected::write_file(p, format, &meta, rows)?,
        None => {
            let stdout = std::io::stdout();
            let mut w = std::io::BufWriter::new(stdout.lock());
            let n = match format {
                AffectedFormat::Csv => affected::write_csv(&mut w, &meta, rows)?,
                AffectedFormat::Json => affected::write_json(&mut w, &meta, rows)?,
            };
            w.flush()?;
            n
        }
    };
    let mut line = format!("{written} exposed address(es)");
    if let Some(m) = matcher {
        line.push_str(&format!(", {} matched to accounts", m.matched));
        if let Some(hint) = crate::term::fold_hint_note(m.finish()?) {
            eprintln!("{hint}");
        }
    }
    if let Some(note) = collected.below_note() {
        eprintln!("{note}");
    }
    match &args.saw_others {
        Some(p) => {
            let n = collected.saw.write_csv(p)?;
            eprintln!(
                "{n} recipient(s) saw exposed addresses without being shown: {}",
                crate::term::clean(&p.display().to_string())
            );
        }
        None if !collected.saw.is_empty() => eprintln!(
            "{} recipient(s) saw exposed addresses without being shown (journal envelopes): list them with --saw-others FILE",
            collected.saw.len()
        ),
        None => {}
    }
    if !args.source.ui.quiet {
        if let Some(s) = &collected.stats {
            line.push_str(&format!(", {} message(s) scanned", s.messages));
        }
        eprintln!("{line}");
    }
    Ok(if collected.errors > 0 {
        EXIT_ERROR
    } else if written == 0 {
        EXIT_CLEAN
    } else {
        EXIT_VIOLATION
    })
}
