//! What `leakaudit incident` shows on the terminal: a spinner per short stage, the scan's
//! progress bar and problems, the apply's progress bar (the library's [`Observer`] events),
//! and the summary printed after the run.

use crate::apply_progress::ApplyProgress;
use crate::problems::Problems;
use crate::progress::Progress;
use crate::term::clean;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use leakaudit_incident::{IncidentOutcome, Observer, Stage};
use leakaudit_remediation::apply::PlanRecord;
use leakaudit_remediation::import::ImportReport;
use leakaudit_remediation::{ApplyEvent, ApplyReport};
use leakaudit_scanner::Problem;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

/// Failed accounts printed on stderr after an apply.
const SHOWN_FAILURES: usize = 20;

/// A spinner for one short stage (only on a terminal, not with --quiet).
struct Spinner {
    bar: Option<ProgressBar>,
}

impl Spinner {
    fn start(name: &str, quiet: bool) -> Spinner {
        if quiet || !std::io::stderr().is_terminal() {
            return Spinner { bar: None };
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{prefix:>8} [{elapsed_precise}] {spinner} {msg}")
        {
            bar.set_style(style);
        }
        bar.set_prefix(name.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        Spinner { bar: Some(bar) }
    }
    fn message(&self, msg: String) {
        if let Some(b) = &self.bar {
            b.set_message(msg);
        }
    }
    fn finish(self) {
        if let Some(b) = self.bar {
            b.finish_and_clear();
        }
    }
}

/// What the terminal shows of a run: a spinner per short stage, the scan's progress bar and
/// problems, the apply's progress bar.
pub struct Shown<'p> {
    quiet: bool,
    spinner: Option<Spinner>,
    problems: Option<Problems<'p>>,
    progress: Option<&'p Progress>,
    apply: Option<ApplyProgress>,
}

impl<'p> Shown<'p> {
    pub fn new(quiet: bool) -> Shown<'p> {
        Shown {
            quiet,
            spinner: None,
            problems: None,
            progress: None,
            apply: None,
        }
    }

    /// From the scan on: its progress bar and problems.
    pub fn scanning(self, problems: Problems<'p>, progress: &'p Progress) -> Shown<'p> {
        Shown {
            problems: Some(problems),
            progress: Some(progress),
            ..self
        }
    }

    /// Clears the bars and prints how many problems were not shown.
    pub fn finish(mut self) -> anyhow::Result<()> {
        if let Some(bar) = &self.apply {
            bar.finish();
        }
        if let Some(s) = self.spinner.take() {
            s.finish();
        }
        match self.problems.take() {
            Some(p) => p.finish(),
            None => Ok(()),
        }
    }
}

impl Observer for Shown<'_> {
    fn stage(&mut self, stage: Stage, detail: &str) {
        let spinner = Spinner::start(stage.name(), self.quiet);
        spinner.message(detail.to_string());
        self.spinner = Some(spinner);
    }

    fn stage_done(&mut self, _stage: Stage) {
        if let Some(s) = self.spinner.take() {
            s.finish();
        }
    }

    fn problem(&mut self, problem: &Problem) {
        if let Some(p) = &mut self.problems {
            p.report(problem);
        }
    }

    fn progress(&mut self, bytes: u64, messages: u64) {
        if let Some(p) = self.progress {
            p.update(bytes, messages);
        }
    }

    fn scanned(&mut self) {
        if let Some(p) = self.progress {
            p.finish();
        }
    }

    fn apply_event(&mut self, event: &ApplyEvent<'_>) {
        let quiet = self.quiet;
        self.apply
            .get_or_insert_with(|| ApplyProgress::new(quiet))
            .event(event);
    }
}

/// Where the accounts came from.
pub fn store_note(imported: Option<&ImportReport>, accounts: &Path) -> String {
    match imported {
        None => "existing store".to_string(),
        Some(report) => format!(
            "{} rows imported from {} ({} new, {} updated)",
            report.rows,
            accounts.display(),
            report.stats.inserted,
            report.stats.updated
        ),
    }
}

/// Everything printed after the run: the apply's failures and summary, the notes, the summary.
pub fn outcome(o: &IncidentOutcome, store_note: &str, quiet: bool) {
    let apply_note = o.apply.as_ref().map(|report| {
        for (account, why) in report.failed.iter().take(SHOWN_FAILURES) {
            eprintln!(
                "apply: account {} failed: {}",
                clean(account),
                clean(&why.to_string())
            );
        }
        if let Some(why) = &report.stopped {
            eprintln!(
                "apply: stopped, the webhook endpoint is unavailable ({}): run again when it is back",
                clean(why)
            );
        }
        crate::reissue::print_missing(&report.missing_messages, &o.outbox);
        apply_summary(report, o)
    });
    let apply_note = match (apply_note, o.record.as_ref().map(record_note)) {
        (Some(a), Some(r)) => Some(format!("{a}\n{r}")),
        (a, r) => a.or(r),
    };
    if let Some(note) = crate::term::fold_hint_note(o.fold_hint) {
        eprintln!("{note}");
    }
    if let Some(note) = crate::evaluate::suggestion_note(&o.suggested_domains) {
        if !quiet {
            eprintln!("{note}");
        }
    }
    if !quiet {
        print_summary(o, store_note, apply_note.as_deref());
    }
}

fn apply_summary(report: &ApplyReport, o: &IncidentOutcome) -> String {
    let (outbox, log) = (&o.outbox, &o.audit_log);
    let covered = match report.covered {
        0 => String::new(),
        n => format!(" ({n} actions done by the incident's earlier plans, not repeated)"),
    };
    format!(
        "applied: {} accounts done now, {} already done before{covered}; {} resets, {} reviews, {} notifications and {} notices to addresses without an account staged in {} (check and release them with `leakaudit remediate release --outbox {} --db {}`); audit log {}",
        report.accounts_done,
        report.accounts_already_done,
        report.resets,
        report.reviews,
        report.notifications,
        report.notices,
        outbox.display(),
        outbox.display(),
        o.store_path.display(),
        log.display()
    )
}

/// The plan's record in the store, over every run, by kind.
fn record_note(r: &PlanRecord) -> String {
    let kinds: Vec<String> = r
        .by_kind
        .iter()
        .map(|(k, s)| {
            let covered = match s.covered {
                0 => String::new(),
                n => format!(", {n} done by an earlier plan"),
            };
            format!(
                "{k} {} done, {} failed, {} pending{covered}",
                s.done,
                s.failed,
                s.planned + s.pending
            )
        })
        .collect();
    format!(
        "store totals for this plan (all runs): {}",
        kinds.join("; ")
    )
}

fn print_summary(o: &IncidentOutcome, store_note: &str, apply_note: Option<&str>) {
    let summary = &o.summary;
    let h = &summary.headline;
    let stats = &o.stats;
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "accounts: {}", clean(store_note));
    let t = &summary.triage;
    let _ = writeln!(
        err,
        "profile: {}; the response takes exposures at or above {}{}",
        t.profile,
        t.min_severity,
        if t.addresses_below_min_severity > 0 {
            format!(
                " ({} exposed address(es) ranked below it are left out: see the report)",
                t.addresses_below_min_severity
            )
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        err,
        "scanned {} messages ({:.1} MB) in {:.2} s; {} problems ({} errors)",
        stats.messages,
        stats.bytes as f64 / 1e6,
        o.scan_secs,
        o.problems,
        stats.errors
    );
    let _ = writeln!(
        err,
        "{}\nexposing messages: {} ({} campaign(s), {} single message(s)); addresses exposed: {}; accounts affected: {} ({} exposed addresses without account)",
        clean(&h.sentence),
        h.exposing_messages, h.campaigns, h.single_messages, h.addresses_exposed, h.accounts_affected, h.exposed_without_account
    );
    // The largest first; the rest are in campaigns.csv.
    for c in summary.campaigns.iter().take(10) {
        let _ = writeln!(
            err,
            "  {}: {} chunk(s), {} addresses, from {} at {}",
            c.id,
            c.chunks,
            c.addresses_exposed,
            clean(&c.sender),
            c.first.as_deref().unwrap_or("unknown date")
        );
    }
    if summary.campaigns.len() > 10 {
        let _ = writeln!(
            err,
            "  ... {} more campaign(s) in campaigns.csv",
            summary.campaigns.len() - 10
        );
    }
    let _ = writeln!(
        err,
        "plan{}: {} password resets, {} reviews, {} notifications, {} notices to exposed addresses without an account",
        if summary.plan.applied {
            " (applied)"
        } else {
            " (dry run, nothing changed)"
        },
        h.resets_planned,
        h.reviews_planned,
        h.notifications_planned,
        h.notices_without_account_planned
    );
    if let Some(note) = apply_note {
        let _ = writeln!(err, "{}", crate::term::clean_lines(note));
    }
    let _ = writeln!(
        err,
        "GDPR Art. 33 deadline: {} (72 h after detection at {})",
        summary.notification_deadline, summary.detected_at
    );
    if o.saw_others > 0 {
        let _ = writeln!(
            err,
            "{} recipient(s) saw exposed addresses without being shown (journal envelopes: Bcc, expanded lists, forwarding): saw-others.csv",
            o.saw_others
        );
    }
    let _ = writeln!(err, "written:");
    let w = &o.report_files;
    let files = [
        &w.html,
        &w.summary,
        &w.breach_record,
        &w.campaigns,
        &o.affected_file,
    ]
    .into_iter()
    .chain(&o.saw_others_file)
    .chain([&o.plan_file, &o.findings_file, &o.problems_file]);
    for p in files {
        let _ = writeln!(err, "  {}", clean(&p.display().to_string()));
    }
}
