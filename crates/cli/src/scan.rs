//! `leakaudit scan PATH...`: list every message that exposes recipients to each other.
//!
//! Findings go out as JSON Lines (one record per exposing message) to `--output` (atomically,
//! mode 0600) or stdout; the summary and problems go to stderr. Exit code: 2 when any input or
//! message could not be audited (after scanning the rest), else 1 when a message exposes
//! someone, else 0.

use crate::args::{FormatArg, OrgArgs, ReadArgs, RulesArgs, TriageArgs, UiArgs};
use crate::config::RunConfig;
use crate::evaluate::Triage;
use crate::problems::Problems;
use crate::progress::Progress;
use crate::{EXIT_CLEAN, EXIT_ERROR, EXIT_VIOLATION};
use anyhow::Context;
use leakaudit_policy::archive::ArchiveAudit;
use leakaudit_policy::records::RecordSink;
use leakaudit_policy::triage::{Profile, Thresholds};
use leakaudit_scanner::exposure::Org;
use leakaudit_scanner::scan::{ScanStats, Scanner};
use leakaudit_scanner::{Address, ExposureRecord, Location, Problem};
// foldhash (randomly seeded per run), not SipHash: this set takes every exposed address on
// the serial emit path, where SipHash was ~2.5% of the scan's CPU time.
use foldhash::HashSet;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// mbox files (plain, gzip or zstd), Maildirs, .eml files or folders of them; `-` reads
    /// standard input.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
    /// Write the records (JSON Lines, one per exposing message) to FILE instead of standard
    /// output; `-` = stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub read: ReadArgs,
    /// Deprecated spelling of --input-format.
    #[arg(long = "format", value_enum, hide = true)]
    pub format_deprecated: Option<FormatArg>,
    #[command(flatten)]
    pub org: OrgArgs,
    #[command(flatten)]
    pub ui: UiArgs,
    #[command(flatten)]
    pub rules: RulesArgs,
    #[command(flatten)]
    pub triage: TriageArgs,
}

/// Runs `f` with a writer to `path`: stdout for `None` or `-`, else a temporary file renamed
/// into place (mode 0600) when `f` succeeds.
pub fn with_output<R>(
    path: Option<&Path>,
    f: impl FnOnce(&mut dyn Write) -> anyhow::Result<R>,
) -> anyhow::Result<R> {
    match path {
        None => {
            let stdout = io::stdout();
            let mut w = BufWriter::new(stdout.lock());
            let r = f(&mut w)?;
            w.flush().context("writing to standard output")?;
            Ok(r)
        }
        Some(p) if p == Path::new("-") => with_output(None, f),
        Some(p) => {
            let mut result = None;
            let mut failure = None;
            leakaudit_scanner::io::write_atomic(p, |w| match f(w) {
                Ok(r) => {
                    result = Some(r);
                    Ok(())
                }
                Err(e) => {
                    failure = Some(e);
                    Err(io::Error::other("aborted"))
                }
            })
            .map_err(|e| match failure.take() {
                Some(f) => f,
                None => anyhow::Error::new(e),
            })
            .with_context(|| format!("writing {}", p.display()))?;
            result.context("output was not produced")
        }
    }
}

/// Totals the command prints besides the scan's own.
#[derive(Default)]
struct Tally {
    exposing: u64,
    /// Shares the records' address strings (no copy per address). Filled only for the
    /// summary: under `--quiet` nothing reads it (hashing every exposed address was ~1/5 of
    /// the serial end of an audit, issue 34).
    addresses: Option<HashSet<Address>>,
    /// Messages the content rules' decoding limits would keep `check` from seeing whole.
    not_fully_audited: u64,
    /// Journal reports whose original was audited with its envelope.
    journal_reports: u64,
}

pub fn run(mut args: Args) -> anyhow::Result<u8> {
    args.read
        .take_deprecated_format(args.format_deprecated.take());
    let run = RunConfig::resolve(&args.org, &args.rules, &args.read)?;
    let triage = Triage::resolve(&run, &args.triage, Profile::Audit)?;
    // The exposure rule's `[rule.triage]` thresholds come from the configured pack.
    let thresholds = run.thresholds()?;
    let scanner = run.scanner();
    let started = Instant::now();
    let progress = Progress::for_inputs("scan", &args.paths, args.ui.quiet);
    let mut problems = Problems::new(args.ui.problems.as_deref(), args.ui.quiet, &progress)?;
    let output = crate::config::file_or_stdout(args.output.as_deref());
    // The earlier history is read before the output is opened: a file this build refuses (an
    // older version's) is the error, not "writing" an output that never was.
    let audit = triage.archive_audit(None)?;

    let (stats, tally) = with_output(output, |out| {
        scan_into(
            &scanner,
            &args.paths,
            audit,
            &triage,
            &run.org,
            &thresholds,
            &progress,
            &mut problems,
            !args.ui.quiet,
            out,
        )
    })?;
    progress.finish();
    problems.finish()?;

    // Nothing read: the error below, not a summary of zeros that reads as clean.
    if !args.ui.quiet && stats.messages > 0 {
        print_summary(&stats, &tally, started.elapsed().as_secs_f64());
    }
    // The process exits right after this: freeing every distinct address one by one was
    // ~60 ms of serial time at the end of a 1 GB scan, for nothing.
    std::mem::forget(tally.addresses);
    crate::problems::ensure_read(&stats, &args.paths)?;
    Ok(if stats.had_errors() {
        EXIT_ERROR
    } else if tally.exposing > 0 {
        EXIT_VIOLATION
    } else {
        EXIT_CLEAN
    })
}

/// Where the records go: the output, the totals, the problems.
struct Records<'p, 'q> {
    tally: Tally,
    problems: &'p mut Problems<'q>,
    progress: &'p Progress,
    out: BufWriter<&'p mut dyn Write>,
    write_error: Option<io::Error>,
}

impl Records<'_, '_> {
    /// Counts `record` and writes it with `write` (the first write error is kept; nothing is
    /// written after it).
    fn write(
        &mut self,
        record: &ExposureRecord,
        write: impl FnOnce(&mut BufWriter<&mut dyn Write>) -> io::Result<()>,
    ) {
        self.tally.exposing += 1;
        if let Some(set) = &mut self.tally.addresses {
            set.extend(record.exposed.iter().map(|e| e.address.clone()));
        }
        if self.write_error.is_none() {
            if let Err(e) = write(&mut self.out) {
                self.write_error = Some(e);
            }
        }
    }
}

impl RecordSink for Records<'_, '_> {
    fn seen(&mut self, location: &Location, not_fully_audited: Option<&str>, journal: bool) {
        self.tally.journal_reports += u64::from(journal);
        if let Some(why) = not_fully_audited {
            self.tally.not_fully_audited += 1;
            self.problems
                .report(&leakaudit_policy::audit::not_fully_audited(location, why));
        }
    }

    fn record(&mut self, record: ExposureRecord) {
        self.write(&record, |out| record.write_json_line(out));
    }

    fn record_line(&mut self, record: ExposureRecord, line: Vec<u8>) {
        self.write(&record, |out| out.write_all(&line));
    }

    fn problem(&mut self, p: &Problem) {
        self.problems.report(p);
    }

    fn progress(&mut self, bytes: u64, messages: u64) {
        self.progress.update(bytes, messages);
    }
}

/// The library's exposure records of `paths` (`leakaudit_policy::records`) written to `out`.
#[allow(clippy::too_many_arguments)]
fn scan_into(
    scanner: &Scanner,
    paths: &[String],
    audit: ArchiveAudit<'_>,
    triage: &Triage,
    org: &Org,
    thresholds: &Thresholds,
    progress: &Progress,
    problems: &mut Problems<'_>,
    summary: bool,
    out: &mut dyn Write,
) -> anyhow::Result<(ScanStats, Tally)> {
    // Records are serialised straight into the buffer: a 1,000,000-address record is ~90 MB
    // of JSON, which a line string would hold whole.
    let mut records = Records {
        tally: Tally {
            addresses: summary.then(HashSet::default),
            ..Tally::default()
        },
        problems,
        progress,
        out: BufWriter::with_capacity(1 << 16, out),
        write_error: None,
    };
    let (stats, history) = audit.records(scanner, paths, org, thresholds, &mut records);
    triage.save_history(history.as_ref())?;
    let Records {
        tally,
        mut out,
        mut write_error,
        ..
    } = records;
    if write_error.is_none() {
        write_error = out.flush().err();
    }
    if let Some(e) = write_error {
        return Err(anyhow::Error::new(e).context("writing the records"));
    }
    Ok((stats, tally))
}

fn print_summary(stats: &ScanStats, tally: &Tally, secs: f64) {
    let secs = secs.max(1e-6);
    let mb = stats.bytes as f64 / 1e6;
    let by_format: Vec<String> = stats
        .by_format
        .iter()
        .map(|(f, n)| format!("{} {n}", f.as_str()))
        .collect();
    eprintln!(
        "scanned {} files, {:.1} MB in {:.2} s ({:.1} MB/s, {:.0} messages/s)",
        stats.files,
        mb,
        secs,
        mb / secs,
        stats.messages as f64 / secs
    );
    eprintln!(
        "messages read: {}{}",
        stats.messages,
        if by_format.is_empty() {
            String::new()
        } else {
            format!(" ({})", by_format.join(", "))
        }
    );
    if tally.journal_reports > 0 {
        eprintln!(
            "journal reports: {} (the original inside each audited, with the report's envelope recipients)",
            tally.journal_reports
        );
    }
    eprintln!(
        "malformed: {}, unreadable: {}, not mail: {}, truncated: {}, warnings: {}",
        stats.malformed, stats.unreadable, stats.not_mail, stats.truncated, stats.warnings
    );
    eprintln!("messages that expose recipients: {}", tally.exposing);
    let distinct = tally.addresses.as_ref().map_or(0, HashSet::len);
    eprintln!("addresses exposed (distinct): {distinct}");
    if tally.not_fully_audited > 0 {
        eprintln!(
            "not fully audited (a MIME decoding limit was reached, see the problems): {}",
            tally.not_fully_audited
        );
    }
}
