//! `leakaudit incident ARCHIVE... --accounts STORE --out DIR`: the first hour of an incident in
//! one command. Scans, evaluates the rules, builds the affected-user list, matches it against
//! the account store, writes the remediation plan (a dry run unless `--apply`), and writes the
//! report (`report.html`, `summary.json`, `breach-record.md`), all into DIR (created 0700,
//! every file 0600, written atomically).
//!
//! Exit code: 2 when any input or message could not be audited or a stage failed, else 1 when
//! any rule fired (a violation), else 0.

use crate::apply_progress::ApplyProgress;
use crate::args::{
    FormatArg, MatchArgs, OrgArgs, ReadArgs, RulesArgs, SelectArgs, TriageArgs, UiArgs,
};
use crate::config::RunConfig;
use crate::evaluate::Triage;
use crate::problems::Problems;
use crate::progress::Progress;
use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use leakaudit_incident::{
    ApplySettings, Incident, IncidentConfig, IncidentOutcome, Observer, TriageSettings,
};
use leakaudit_policy::triage::Profile;
use leakaudit_policy::Engine;
use leakaudit_policy::Severity;
use leakaudit_remediation::apply::PlanRecord;
use leakaudit_remediation::policy::RemediationPolicy;
use leakaudit_remediation::{ApplyEvent, ApplyReport};
use leakaudit_report::{CampaignOptions, ReportOptions};
use leakaudit_scanner::Problem;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

/// Failed accounts printed on stderr after an apply.
const SHOWN_FAILURES: usize = 20;

#[derive(clap::Args)]
pub struct Args {
    /// mbox files (plain, gzip or zstd), Maildirs, .eml files or folders of them.
    #[arg(required = true, value_name = "ARCHIVE")]
    pub archives: Vec<String>,
    /// The accounts: an accounts CSV (imported into DIR/accounts.sqlite) or an existing
    /// SQLite account store.
    #[arg(long, value_name = "STORE")]
    pub accounts: PathBuf,
    /// Output folder (created with mode 0700).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Execute the plan (password resets, reviews, notification outbox). Without it the plan
    /// is only written (a dry run).
    #[arg(long)]
    pub apply: bool,
    /// Apply although another plan of this store already reset or notified some of the same
    /// accounts and addresses (this is a new incident); refused without it.
    #[arg(long, requires = "apply")]
    pub new_incident: bool,
    /// Show addresses in clear (default: pseudonymised).
    #[arg(long)]
    pub show_addresses: bool,
    #[command(flatten)]
    pub read: ReadArgs,
    /// Deprecated spelling of --input-format.
    #[arg(long = "format", value_enum, hide = true)]
    pub format_deprecated: Option<FormatArg>,
    #[command(flatten)]
    pub org: OrgArgs,
    #[command(flatten)]
    pub rules: RulesArgs,
    #[command(flatten)]
    pub ui: UiArgs,
    #[command(flatten)]
    pub matching: MatchArgs,
    #[command(flatten)]
    pub triage: TriageArgs,
    #[command(flatten)]
    pub select: SelectArgs,
    /// When the incident was detected (RFC 3339); the 72-hour GDPR deadline runs from here.
    /// Default: now.
    #[arg(long, value_name = "TIME")]
    pub detected_at: Option<String>,
    /// Largest gap between two chunks of one campaign, in hours.
    #[arg(long, value_name = "HOURS", default_value_t = 6.0)]
    pub campaign_window: f64,
    /// Remediation policy file (default: the shipped rules/remediation.toml).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    #[command(flatten)]
    pub notify: crate::notify::NotifyArgs,
    #[command(flatten)]
    pub executor: crate::executor::ExecutorArgs,
}

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

/// The validated options of one run.
struct Settings {
    run: RunConfig,
    engine: Engine,
    remediation: RemediationPolicy,
    generated_at: i64,
    detected_at: i64,
    triage: Triage,
    min_severity: Severity,
    executor: leakaudit_remediation::executor::ExecutorConfig,
    notify: Option<crate::notify::Notify>,
}

fn settings(args: &mut Args) -> anyhow::Result<Settings> {
    args.read
        .take_deprecated_format(args.format_deprecated.take());
    let generated_at = leakaudit_report::now();
    let detected_at = match &args.detected_at {
        Some(s) => leakaudit_report::parse_time(s).with_context(|| {
            format!("--detected-at {s:?}: not an RFC 3339 time (e.g. 2019-11-04T08:30:00Z)")
        })?,
        None => generated_at,
    };
    anyhow::ensure!(
        args.campaign_window.is_finite() && args.campaign_window >= 0.0,
        "--campaign-window must be a number of hours >= 0"
    );
    let run = RunConfig::resolve(&args.org, &args.rules, &args.read)?;
    // Before any work: an apply without a real sender and reset page is refused.
    let notify = match args.apply {
        true => Some(args.notify.resolve(&run, true)?),
        false => None,
    };
    let engine = run.engine()?;
    let remediation = match &args.policy {
        Some(p) => RemediationPolicy::load(p)?,
        None => RemediationPolicy::builtin(),
    };
    let triage = Triage::resolve(&run, &args.triage, Profile::Audit)?;
    // Before the scan: a bad executor setting must not cost a whole scan.
    let executor = crate::executor::resolve(&args.executor, &run)?;
    let min_severity = args
        .select
        .min_severity
        .or(run.cfg.min_severity)
        .unwrap_or(Severity::Medium);
    Ok(Settings {
        notify,
        triage,
        min_severity,
        run,
        engine,
        remediation,
        executor,
        generated_at,
        detected_at,
    })
}

pub fn run(mut args: Args) -> anyhow::Result<u8> {
    let s = settings(&mut args)?;
    // The folder's own check, named after the flag, before the library creates it.
    crate::outdir::private_dir(&args.out, "--out")?;
    let quiet = args.ui.quiet;
    let mut shown = Shown {
        quiet,
        spinner: None,
        problems: None,
        progress: None,
        apply: None,
    };
    let incident = Incident::open(config(&args, s)?, &mut shown)?;
    if args.apply && incident.store_path() != args.accounts {
        // Say it before anything is done: resets land in the imported copy, not in the
        // system the CSV was exported from.
        eprintln!(
            "note: --apply with an accounts CSV acts on the imported copy {}; the notifications in the outbox are real",
            incident.store_path().display()
        );
    }
    let store_note = match incident.imported() {
        None => "existing store".to_string(),
        Some(report) => format!(
            "{} rows imported from {} ({} new, {} updated)",
            report.rows,
            args.accounts.display(),
            report.stats.inserted,
            report.stats.updated
        ),
    };
    let progress = Progress::for_inputs("scan", &args.archives, quiet);
    let problems = Problems::new(None, quiet, &progress)?.listed_in(&incident.problems_file());
    let mut shown = Shown {
        problems: Some(problems),
        progress: Some(&progress),
        ..shown
    };
    let result = incident.run(&mut shown);
    if let Some(bar) = &shown.apply {
        bar.finish();
    }
    if let Some(p) = shown.problems.take() {
        p.finish()?;
    }
    let o = result?;

    let apply_note = o.apply.as_ref().map(|report| {
        for (account, why) in report.failed.iter().take(SHOWN_FAILURES) {
            eprintln!(
                "apply: account {} failed: {}",
                crate::term::clean(account),
                crate::term::clean(&why.to_string())
            );
        }
        if let Some(why) = &report.stopped {
            eprintln!(
                "apply: stopped, the webhook endpoint is unavailable ({}): run again when it is back",
                crate::term::clean(why)
            );
        }
        crate::reissue::print_missing(&report.missing_messages, &o.outbox);
        apply_summary(report, &o)
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
        print_summary(&o, &store_note, apply_note.as_deref());
    }
    Ok(o.outcome.exit_code())
}

/// The flags and configuration as the library's configuration.
fn config(args: &Args, s: Settings) -> anyhow::Result<IncidentConfig> {
    let apply = match s.notify {
        Some(n) => Some(ApplySettings {
            reset_base_url: n.reset_base_url,
            sender: n.sender,
            templates: n.templates,
            executor: s.executor,
            new_incident: args.new_incident,
        }),
        None => None,
    };
    Ok(IncidentConfig {
        archives: args.archives.clone(),
        accounts: args.accounts.clone(),
        out: args.out.clone(),
        scanner: s.run.scanner(),
        engine: s.engine,
        triage: TriageSettings {
            profile: s.triage.profile,
            history_file: s.triage.history_file,
            aliases: s.triage.aliases,
        },
        min_severity: s.min_severity,
        match_mode: args.matching.mode(),
        import: s.run.settings()?.accounts,
        remediation: s.remediation,
        apply,
        problems_file: args.ui.problems.clone(),
        generated_at: s.generated_at,
        detected_at: s.detected_at,
        report: ReportOptions {
            show_addresses: args.show_addresses,
            campaigns: CampaignOptions {
                window_secs: (args.campaign_window * 3600.0) as i64,
                ..CampaignOptions::default()
            },
            pseudonym_key: None,
        },
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
    })
}

/// What the terminal shows of a run: a spinner per short stage, the scan's progress bar and
/// problems, the apply's progress bar.
struct Shown<'p> {
    quiet: bool,
    spinner: Option<Spinner>,
    problems: Option<Problems<'p>>,
    progress: Option<&'p Progress>,
    apply: Option<ApplyProgress>,
}

impl Observer for Shown<'_> {
    fn stage(&mut self, stage: leakaudit_incident::Stage, detail: &str) {
        let spinner = Spinner::start(stage.name(), self.quiet);
        spinner.message(detail.to_string());
        self.spinner = Some(spinner);
    }

    fn stage_done(&mut self, _stage: leakaudit_incident::Stage) {
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
    let _ = writeln!(err, "accounts: {}", crate::term::clean(store_note));
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
        crate::term::clean(&h.sentence),
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
            crate::term::clean(&c.sender),
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
        let _ = writeln!(err, "  {}", crate::term::clean(&p.display().to_string()));
    }
}
