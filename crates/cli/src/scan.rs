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
use leakaudit_policy::archive::{AuditSink, Observer, Step};
use leakaudit_policy::content;
use leakaudit_policy::triage::{self, Profile, Thresholds, TriageContext};
use leakaudit_scanner::exposure::{self, Org};
use leakaudit_scanner::scan::{ScanStats, Scanner};
use leakaudit_scanner::{Address, Envelope, Location, Problem, RecordTriage};
use leakaudit_scanner::{ExposureRecord, Message};
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
    /// Shares the records' address strings (no copy per address).
    addresses: HashSet<Address>,
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
    let thresholds = run.engine()?.thresholds().clone();
    // The gate reads a rendered file as what will be sent, as `check` does.
    let org = leakaudit_scanner::Org {
        archive_kind: triage.profile.archive_kind(run.org.archive_kind),
        ..run.org.clone()
    };
    let scanner = run.scanner();
    let started = Instant::now();
    let progress = Progress::for_inputs("scan", &args.paths, args.ui.quiet);
    let mut problems = Problems::new(args.ui.problems.as_deref(), args.ui.quiet, &progress)?;
    let output = crate::config::file_or_stdout(args.output.as_deref());

    let (stats, tally) = with_output(output, |out| {
        let ranking = Ranking {
            triage: &triage,
            thresholds: &thresholds,
        };
        scan_into(
            &scanner,
            &args.paths,
            &org,
            &ranking,
            &progress,
            &mut problems,
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

/// How the records are ranked: the profile and the exposure rule's thresholds.
struct Ranking<'a> {
    triage: &'a Triage,
    thresholds: &'a Thresholds,
}

impl Ranking<'_> {
    /// The gate's ranking: by size only.
    fn gate(&self, parties: usize) -> RecordTriage {
        let critical = parties >= self.thresholds.critical_parties;
        RecordTriage {
            profile: Profile::Gate.to_string(),
            severity: if critical { "critical" } else { "high" }.into(),
            signals: Vec::new(),
            reasons: vec![format!(
                "gate profile: any exposure is a bug ({parties} external parties{})",
                if critical { ", mass exposure" } else { "" }
            )],
        }
    }
}

/// An exposing message, held until the history is complete under the audit profile.
struct Held {
    record: ExposureRecord,
    envelope: Envelope,
    exposure: leakaudit_scanner::Exposure,
    quoted: Vec<Address>,
}

/// What the workers make of one message: the exposing message, why `check` would not see all
/// of it (a decoding limit), whether it came from a journal report.
type Item = (Option<Held>, Option<String>, bool);

/// Several journal reports of one message (Exchange splits a large envelope over reports)
/// become one record: the envelopes' union, analysed again. Only exposing reports are held,
/// and that is enough: a report that exposes nothing adds no party (the original's headers
/// are the same in every report; see ARCHITECTURE.md "Journal reports").
fn merge_journal_reports(held: &mut Vec<(Location, Item)>, org: &Org) {
    let mut first: std::collections::HashMap<String, usize> = Default::default();
    let mut merged_into = vec![None; held.len()];
    for i in 0..held.len() {
        let Some(h) = &held[i].1 .0 else { continue };
        if h.envelope.envelope_recipients.is_empty() {
            continue;
        }
        let Some(id) = h.record.message_id.clone() else {
            continue;
        };
        match first.entry(id) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(i);
            }
            std::collections::hash_map::Entry::Occupied(o) => {
                let j = *o.get();
                let more = held[i]
                    .1
                     .0
                    .as_mut()
                    .map(|h| std::mem::take(&mut h.envelope.envelope_recipients))
                    .unwrap_or_default();
                if let Some(target) = held[j].1 .0.as_mut() {
                    leakaudit_scanner::add_envelope_recipients(
                        &mut target.envelope.envelope_recipients,
                        more,
                    );
                }
                merged_into[i] = Some(j);
            }
        }
    }
    let targets: std::collections::BTreeSet<usize> =
        merged_into.iter().flatten().copied().collect();
    for j in targets {
        if let Some(h) = held[j].1 .0.as_mut() {
            h.exposure = exposure::analyse(&h.envelope, org);
            h.record.audience_size = h.exposure.audience_parties.len();
            h.record.visible_parties = h.exposure.visible_parties;
            h.record.saw_others = h.exposure.saw_others.clone();
        }
    }
    let mut i = 0;
    held.retain(|_| {
        i += 1;
        merged_into[i - 1].is_none()
    });
}

/// Where the records go: the output, the totals, the problems.
struct Records<'a, 'p, 'q> {
    ranking: &'a Ranking<'a>,
    org: &'a Org,
    audit: bool,
    tally: Tally,
    problems: &'p mut Problems<'q>,
    progress: &'p Progress,
    out: BufWriter<&'p mut dyn Write>,
    write_error: Option<io::Error>,
}

impl Records<'_, '_, '_> {
    fn emit(&mut self, mut record: ExposureRecord) {
        self.tally.exposing += 1;
        self.tally
            .addresses
            .extend(record.exposed.iter().map(|e| e.address.clone()));
        if record.triage.is_none() {
            record.triage = Some(self.ranking.gate(record.audience_size));
        }
        if self.write_error.is_none() {
            let written = serde_json::to_writer(&mut self.out, &record)
                .map_err(io::Error::from)
                .and_then(|()| self.out.write_all(b"\n"));
            if let Err(e) = written {
                self.write_error = Some(e);
            }
        }
    }
}

impl AuditSink<Item> for Records<'_, '_, '_> {
    fn seen(&mut self, location: &Location, item: &Item) {
        let (_, cut, journal) = item;
        self.tally.journal_reports += u64::from(*journal);
        if let Some(why) = cut {
            self.tally.not_fully_audited += 1;
            self.problems
                .report(&crate::evaluate::not_fully_audited(location, why));
        }
    }

    fn held(&mut self, held: &mut Vec<(Location, Item)>) {
        merge_journal_reports(held, self.org);
    }

    fn message(&mut self, _location: Location, item: Item) {
        let Some(h) = item.0 else { return };
        if self.audit {
            let Held {
                mut record,
                exposure,
                ..
            } = h;
            record.exposed = exposure.exposed;
            self.emit(record);
        } else {
            self.emit(h.record);
        }
    }

    fn problem(&mut self, p: &Problem) {
        self.problems.report(p);
    }

    fn progress(&mut self, bytes: u64, messages: u64) {
        self.progress.update(bytes, messages);
    }
}

fn scan_into(
    scanner: &Scanner,
    paths: &[String],
    org: &Org,
    ranking: &Ranking<'_>,
    progress: &Progress,
    problems: &mut Problems<'_>,
    out: &mut dyn Write,
) -> anyhow::Result<(ScanStats, Tally)> {
    let audit = ranking.triage.profile == Profile::Audit;
    // Runs on the worker threads: the exposure model (and the history) in parallel.
    let limits = content::Limits::default();
    let process = |msg: &mut Message<'_>, obs: &Observer<'_>| -> Step<Item> {
        // The content rules' decoding limits: `check` would not see all of this message.
        let hit = content::limits_hit(&msg.raw, &limits);
        let cut = hit.any().then(|| hit.describe(&limits));
        let journal = !msg.envelope.envelope_recipients.is_empty();
        let mut exp = exposure::analyse(&msg.envelope, org);
        obs.observe(&msg.envelope, org, &exp);
        if !exp.exposes() {
            return Step {
                item: (None, cut, journal),
                hold: false,
            };
        }
        // One list of exposed addresses per message, not two: the record takes it now (gate)
        // or once the ranking, which reads it from the exposure, is done (audit).
        let exposed = std::mem::take(&mut exp.exposed);
        let mut record = ExposureRecord::new(msg, &exp);
        if audit {
            exp.exposed = exposed;
        } else {
            record.exposed = exposed;
        }
        let quoted = if audit {
            leakaudit_policy::quoted::quoted_addresses(msg)
        } else {
            Vec::new()
        };
        let held = Held {
            record,
            // Taken for the ranking, not copied; nothing reads the message after this.
            envelope: if audit {
                msg.take_envelope()
            } else {
                Envelope::default()
            },
            quoted,
            exposure: exp,
        };
        Step {
            item: (Some(held), cut, journal),
            hold: true,
        }
    };
    let rank = |item: &mut Item, ctx: &TriageContext<'_>| {
        let Some(h) = &mut item.0 else { return };
        let a = triage::assess(
            &h.envelope,
            &h.exposure,
            org,
            &h.quoted,
            ctx,
            ranking.thresholds,
        );
        h.record.triage = Some(RecordTriage {
            profile: Profile::Audit.to_string(),
            severity: a.severity.to_string(),
            signals: a.signals.iter().map(|s| s.code().to_string()).collect(),
            reasons: a.reasons,
        });
    };
    // Records are serialised straight into the buffer: a 1,000,000-address record is ~90 MB
    // of JSON, which a line string would hold whole.
    let mut records = Records {
        ranking,
        org,
        audit,
        tally: Tally::default(),
        problems,
        progress,
        out: BufWriter::with_capacity(1 << 16, out),
        write_error: None,
    };
    let (stats, history) =
        ranking
            .triage
            .archive_audit(None)?
            .run(scanner, paths, process, rank, &mut records);
    ranking.triage.save_history(history.as_ref())?;
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
    eprintln!("addresses exposed (distinct): {}", tally.addresses.len());
    if tally.not_fully_audited > 0 {
        eprintln!(
            "not fully audited (a MIME decoding limit was reached, see the problems): {}",
            tally.not_fully_audited
        );
    }
}
