//! `leakaudit scan PATH...`: list every message that exposes recipients to each other.
//!
//! Findings go out as JSON Lines (one record per exposing message) to `--output` (atomically,
//! mode 0600) or stdout; the summary and problems go to stderr. Exit code: 2 when any input or
//! message could not be audited (after scanning the rest), else 1 when a message exposes
//! someone, else 0.

use crate::progress::Progress;
use crate::{EXIT_CLEAN, EXIT_ERROR, EXIT_VIOLATION};
use anyhow::Context;
use leakaudit_scanner::exposure::{self, ArchiveKind, Org};
use leakaudit_scanner::scan::{Event, ScanOptions, ScanStats, Scanner};
use leakaudit_scanner::{Format, Message, Problem, ProblemLevel};
// foldhash (randomly seeded per run), not SipHash: this set takes every exposed address on
// the serial emit path, where SipHash was ~2.5% of the scan's CPU time.
use foldhash::HashSet;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Problems printed on stderr before "N more" (all go to `--problems`).
const SHOWN_ERRORS: usize = 20;
const SHOWN_WARNINGS: usize = 10;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum FormatArg {
    Mbox,
    Maildir,
    Eml,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::Mbox => Format::Mbox,
            FormatArg::Maildir => Format::Maildir,
            FormatArg::Eml => Format::Eml,
        }
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ArchiveKindArg {
    /// What recipients received (MTA journal, provider export): a Bcc header is a leak.
    Transmitted,
    /// The sender's "Sent" folder: a Bcc header is normal.
    Sent,
}

impl From<ArchiveKindArg> for ArchiveKind {
    fn from(k: ArchiveKindArg) -> ArchiveKind {
        match k {
            ArchiveKindArg::Transmitted => ArchiveKind::Transmitted,
            ArchiveKindArg::Sent => ArchiveKind::Sent,
        }
    }
}

#[derive(clap::Args)]
pub struct Args {
    /// mbox files (plain, gzip or zstd), Maildirs, .eml files or folders of them; `-` reads
    /// standard input.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
    /// Write the findings (JSON Lines) to FILE instead of standard output; `-` = stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Write every problem (JSON Lines) to FILE.
    #[arg(long, value_name = "FILE")]
    pub problems: Option<PathBuf>,
    /// Read every file as this format instead of detecting it from the content.
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// Where the archive comes from: decides whether a Bcc header is itself a leak
    /// [default: the config's `archive_kind`, else transmitted].
    #[arg(long, value_enum)]
    pub archive_kind: Option<ArchiveKindArg>,
    /// Organisation settings (default: ./leakaudit.toml when present).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A domain of the organisation (repeatable), besides the config's; the From domain is
    /// internal too.
    #[arg(long = "internal-domain", value_name = "DOMAIN")]
    pub internal_domains: Vec<String>,
    /// No progress bar, no summary; error-level problems are still printed.
    #[arg(long, short)]
    pub quiet: bool,
    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

/// What a worker hands back for an exposing message: the JSON line and the addresses.
struct Exposing {
    line: String,
    addresses: Vec<String>,
}

/// `secs` since the epoch as RFC 3339 UTC (`2024-01-02T03:04:05Z`); `None` out of range.
pub fn rfc3339(secs: i64) -> Option<String> {
    chrono::DateTime::from_timestamp(secs, 0).map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// Runs `f` with a writer to `path`: stdout for `None` or `-`, else a temporary file renamed
/// into place (mode 0600) when `f` succeeds.
fn with_output<R>(
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
    addresses: HashSet<String>,
    errors_shown: usize,
    warnings_shown: usize,
    errors_hidden: u64,
    warnings_hidden: u64,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let (_, org) = crate::config::load_org(
        args.config.as_deref(),
        &args.internal_domains,
        args.archive_kind.map(Into::into),
    )?;
    let opts = ScanOptions {
        format: args.format.map(Format::from),
        threads: args.threads,
        ..ScanOptions::default()
    };
    let scanner = Scanner::new(opts);
    let started = Instant::now();
    let progress = Progress::for_inputs("scan", &args.paths, args.quiet);
    let output = match args.output.as_deref() {
        Some(p) if p == Path::new("-") => None,
        other => other,
    };
    let problems_path = args.problems.clone();

    let (stats, tally) = with_output(output, |out| {
        with_problems(problems_path.as_deref(), |problems_out| {
            scan_into(&scanner, &args, &org, &progress, out, problems_out)
        })
    })?;
    progress.finish();

    if !args.quiet {
        print_summary(&stats, &tally, started.elapsed().as_secs_f64());
    }
    if tally.errors_hidden + tally.warnings_hidden > 0 && (!args.quiet || tally.errors_hidden > 0) {
        let hint = match &args.problems {
            Some(p) => format!("all are in {}", p.display()),
            None => "use --problems FILE to list them all".into(),
        };
        eprintln!(
            "... {} more errors and {} more warnings not shown ({hint})",
            tally.errors_hidden, tally.warnings_hidden
        );
    }
    // The process exits right after this: freeing every distinct address one by one was
    // ~60 ms of serial time at the end of a 1 GB scan, for nothing.
    std::mem::forget(tally.addresses);
    Ok(if stats.had_errors() {
        EXIT_ERROR
    } else if tally.exposing > 0 {
        EXIT_VIOLATION
    } else {
        EXIT_CLEAN
    })
}

fn with_problems<R>(
    path: Option<&Path>,
    f: impl FnOnce(&mut dyn Write) -> anyhow::Result<R>,
) -> anyhow::Result<R> {
    match path {
        Some(p) => with_output(Some(p), f),
        None => f(&mut io::sink()),
    }
}

fn scan_into(
    scanner: &Scanner,
    args: &Args,
    org: &Org,
    progress: &Progress,
    out: &mut dyn Write,
    problems_out: &mut dyn Write,
) -> anyhow::Result<(ScanStats, Tally)> {
    let mut tally = Tally::default();
    let mut write_error: Option<io::Error> = None;
    // Runs on the worker threads: the exposure model and the JSON line are built in parallel.
    let process = |msg: &Message<'_>| -> Option<Exposing> {
        let exp = exposure::analyse(&msg.envelope, org);
        if !exp.exposes() {
            return None;
        }
        let env = &msg.envelope;
        // One record per exposing message; field names are part of the output contract.
        let record = serde_json::json!({
            "location": &msg.location,
            "format": msg.format,
            "message_id": env.message_id,
            "date": env.date.and_then(rfc3339),
            "date_raw": env.date_raw,
            "from": env.from.first().map(|m| m.address.as_str()),
            "subject": env.subject,
            "exposed": &exp.exposed,
            // Distinct external parties among all recipients (the possible audience).
            "audience_size": exp.audience_parties.len(),
            // Distinct external parties among the visible recipients.
            "visible_parties": exp.visible_parties,
        });
        let line = record.to_string();
        Some(Exposing {
            line,
            addresses: exp.exposed.iter().map(|e| e.address.to_string()).collect(),
        })
    };
    let on_event = |ev: Event<Option<Exposing>>| match ev {
        Event::Message { item, .. } => {
            if let Some(x) = item {
                tally.exposing += 1;
                tally.addresses.extend(x.addresses);
                if write_error.is_none() {
                    if let Err(e) = writeln!(out, "{}", x.line) {
                        write_error = Some(e);
                    }
                }
            }
        }
        Event::Problem(p) => {
            if write_error.is_none() {
                let line = serde_json::to_string(&p).unwrap_or_default();
                if let Err(e) = writeln!(problems_out, "{line}") {
                    write_error = Some(e);
                }
            }
            show_problem(&p, args.quiet, progress, &mut tally);
        }
        Event::Progress { bytes, messages } => progress.update(bytes, messages),
    };
    let stats = scanner.scan(&args.paths, process, on_event);
    if let Some(e) = write_error {
        return Err(anyhow::Error::new(e).context("writing the findings"));
    }
    Ok((stats, tally))
}

fn show_problem(p: &Problem, quiet: bool, progress: &Progress, tally: &mut Tally) {
    match p.level {
        ProblemLevel::Error if tally.errors_shown < SHOWN_ERRORS => {
            tally.errors_shown += 1;
            progress.println(&format!("{p}"));
        }
        ProblemLevel::Error => tally.errors_hidden += 1,
        ProblemLevel::Warning if !quiet && tally.warnings_shown < SHOWN_WARNINGS => {
            tally.warnings_shown += 1;
            progress.println(&format!("{p}"));
        }
        ProblemLevel::Warning => tally.warnings_hidden += 1,
    }
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
    eprintln!(
        "malformed: {}, unreadable: {}, not mail: {}, truncated: {}, warnings: {}",
        stats.malformed, stats.unreadable, stats.not_mail, stats.truncated, stats.warnings
    );
    eprintln!("messages that expose recipients: {}", tally.exposing);
    eprintln!("addresses exposed (distinct): {}", tally.addresses.len());
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400).unwrap(), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_709_251_199).unwrap(), "2024-02-29T23:59:59Z");
        assert_eq!(rfc3339(-1).unwrap(), "1969-12-31T23:59:59Z");
    }
}
