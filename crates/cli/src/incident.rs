//! `leakaudit incident ARCHIVE... --accounts STORE --out DIR`: the first hour of an incident in
//! one command. Scans, evaluates the rules, builds the affected-user list, matches it against
//! the account store, writes the remediation plan (a dry run unless `--apply`), and writes the
//! report (`report.html`, `summary.json`, `breach-record.md`), all into DIR (created 0700,
//! every file 0600, written atomically).
//!
//! Exit code: 2 when any input or message could not be audited or a stage failed, else 1 when
//! any rule fired (a violation), else 0.

use crate::args::{
    FormatArg, MatchArgs, OrgArgs, ReadArgs, RulesArgs, SelectArgs, TriageArgs, UiArgs,
};
use crate::config::RunConfig;
use crate::evaluate::Triage;
use crate::problems::Problems;
use crate::progress::Progress;
use crate::{EXIT_CLEAN, EXIT_ERROR, EXIT_VIOLATION};
use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use leakaudit_policy::triage::Profile;
use leakaudit_policy::Engine;
use leakaudit_policy::Severity;
use leakaudit_remediation::affected::{self, AffectedFormat, SawOthers, Selection};
use leakaudit_remediation::folder;
use leakaudit_remediation::matching::Matcher;
use leakaudit_remediation::plan::PlanBuilder;
use leakaudit_remediation::policy::RemediationPolicy;
use leakaudit_remediation::store::AccountStore;

/// The account store of a run, whatever its backend.
type Store = Box<dyn AccountStore + Send>;
use leakaudit_remediation::{AffectedAccumulator, ApplyReport, Plan};
use leakaudit_report::{
    AffectedTotals, CampaignOptions, IncidentData, MessageRecord, PlanTotals, ReportOptions,
    ScanTotals, Summary, TriageTotals,
};
use leakaudit_scanner::scan::ScanStats;
use leakaudit_scanner::Message;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
struct Stage {
    bar: Option<ProgressBar>,
}

impl Stage {
    fn start(name: &str, quiet: bool) -> Stage {
        if quiet || !std::io::stderr().is_terminal() {
            return Stage { bar: None };
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{prefix:>8} [{elapsed_precise}] {spinner} {msg}")
        {
            bar.set_style(style);
        }
        bar.set_prefix(name.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        Stage { bar: Some(bar) }
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

/// What the scan stage gathered.
struct Scanned {
    stats: ScanStats,
    acc: AffectedAccumulator,
    records: Vec<MessageRecord>,
    dates: Vec<i64>,
    problems: u64,
    /// Exposed addresses left out by --min-severity.
    below_only: usize,
    /// Domains the archive's own senders use that are not internal.
    suggested: Vec<String>,
    /// Who saw exposed addresses without being shown (journal envelopes).
    saw: SawOthers,
    secs: f64,
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
    let out = args.out.clone();
    crate::outdir::private_dir(&out, "--out")?;
    let (store, store_path, store_note) = open_store(&args, &out, &s.run.settings()?.accounts)?;
    if args.apply && store_path != args.accounts {
        // Say it before anything is done: resets land in the imported copy, not in the
        // system the CSV was exported from.
        eprintln!(
            "note: --apply with an accounts CSV acts on the imported copy {}; the notifications in the outbox are real",
            store_path.display()
        );
    }

    // A folder whose plan was applied to this store: the new outputs go to a staging folder
    // first. The same plan again is a resumed run; another one (accounts or archives changed)
    // is a re-plan of the incident, applied as a delta, and the earlier outputs are kept in
    // `earlier/`. Nothing of the record of what was done is overwritten.
    let applied_before = folder::applied_plan_in(&out, &*store)?;

    // The triage weighs exposures among account holders higher: the store answers "are these
    // customers" for each ranked message, a batch per lookup (behind a lock: the store is
    // one connection). A failed lookup counts as "not a customer": it only lowers a ranking.
    let locked = std::sync::Mutex::new(store);
    let is_customer = |addresses: &[&leakaudit_scanner::Address]| -> Vec<bool> {
        let Ok(st) = locked.lock() else {
            return vec![false; addresses.len()];
        };
        let mut out = Vec::with_capacity(addresses.len());
        for chunk in addresses.chunks(leakaudit_remediation::store::FIND_BATCH) {
            let keys: Vec<&str> = chunk.iter().map(|a| a.as_str()).collect();
            match st.find_many(&keys, leakaudit_remediation::MatchMode::Canonical) {
                Ok(found) => out.extend(found.iter().map(|f| !f.is_empty())),
                Err(_) => out.resize(out.len() + chunk.len(), false),
            }
        }
        out
    };
    let write_dir = match &applied_before {
        Some(_) => {
            let d = out.join(".rerun");
            if d.exists() {
                std::fs::remove_dir_all(&d)
                    .with_context(|| format!("removing the stale {}", d.display()))?;
            }
            crate::outdir::private_dir(&d, "--out")?;
            d
        }
        None => out.clone(),
    };
    let scanned = scan_stage(&args, &s, &write_dir, &is_customer);
    let mut store = locked
        .into_inner()
        .map_err(|_| anyhow::anyhow!("the account store lock was poisoned"))?;
    let mut scanned = scanned?;
    // Before any list, plan or report: an incident of nothing read must not look clean.
    crate::problems::ensure_read(&scanned.stats, &args.archives)?;

    // Affected users, matched against the store, streamed row by row into the list file, the
    // plan and the report (a million-address list is never held twice).
    let stage = Stage::start("affected", args.ui.quiet);
    stage.message(format!(
        "matching {} addresses against the accounts",
        scanned.acc.len()
    ));
    let mut matcher = Matcher::new(&*store, args.matching.mode())?;
    let meta = matcher.meta.clone();
    let mut planner = PlanBuilder::new(&*store, &s.remediation, &meta)?;
    let mut plan_error = None;
    // The report needs aggregates only (counts, histogram, top 10), not the rows.
    let mut users = AffectedTotals::default();
    let affected_path = write_dir.join("affected.csv");
    let rows = matcher.match_iter(scanned.acc.rows_iter()).inspect(|r| {
        if plan_error.is_none() {
            if let Err(e) = planner.add(r) {
                plan_error = Some(e);
            }
        }
        users.add(affected_user(r));
    });
    affected::write_file(&affected_path, AffectedFormat::Csv, &meta, rows)?;
    // Holders of the exposed data, not data subjects: a list of their own, only when a
    // journal's envelopes named any.
    let saw_path = write_dir.join("saw-others.csv");
    if !scanned.saw.is_empty() {
        scanned.saw.write_csv(&saw_path)?;
    } else if saw_path.exists() {
        // An earlier run's list in the same folder would describe another archive.
        std::fs::remove_file(&saw_path)
            .with_context(|| format!("removing the stale {}", saw_path.display()))?;
    }
    let fold_note = crate::term::fold_hint_note(matcher.finish()?);
    if let Some(e) = plan_error {
        return Err(e.into());
    }
    // The rows are written and summed up in `users`: the accumulator is not needed past this point.
    drop(std::mem::take(&mut scanned.acc));
    stage.finish();

    // The plan (and, with --apply, its execution).
    let stage = Stage::start("plan", args.ui.quiet);
    let mut plan = planner.finish()?;
    if let Some(old) = &applied_before {
        folder::follow(&mut plan, old, args.new_incident);
    }
    let plan_path = write_dir.join("plan.json");
    leakaudit_remediation::write_plan(&plan_path, &plan)?;
    if let Some(old) = &applied_before {
        folder::settle(&out, &write_dir, old, &plan)?;
    }
    let plan_path = out.join("plan.json");
    stage.finish();
    let mut plan_totals = plan_totals(&plan);
    plan_totals.failed_login_data = failed_login_data(&*store, &users)?;
    let mut apply_failed = false;
    let mut apply_note = None;
    if args.apply {
        let report = apply_plan(&args, &s, &plan, &mut *store, &out)?;
        apply_failed =
            !report.failed.is_empty() || !report.complete || !report.missing_messages.is_empty();
        apply_note = Some(apply_summary(&report, &out, &plan, &store_path));
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
        crate::reissue::print_missing(&report.missing_messages, &folder::plan_files(&out, &plan).0);
    }
    // The store's totals, not this run's: a second run finds everything done and must not
    // report fewer actions than the first.
    if let Some(note) = store_totals(&*store, &plan, &mut plan_totals)? {
        apply_note = Some(match apply_note {
            Some(a) => format!("{a}\n{note}"),
            None => note,
        });
    }
    plan_totals.delta = plan_delta(&*store, &plan)?;
    // Written (and applied): the report needs only its totals. A plan of 1,000,000 notices
    // is ~200 MB.
    drop(plan);

    // The report.
    let stage = Stage::start("report", args.ui.quiet);
    let mut scan_totals = ScanTotals::from(&scanned.stats);
    scan_totals.problems = scanned.problems;
    let data = IncidentData {
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        inputs: args.archives.clone(),
        accounts_store: Some(store_path.display().to_string()),
        generated_at: s.generated_at,
        detected_at: s.detected_at,
        scan: scan_totals,
        message_dates: std::mem::take(&mut scanned.dates),
        messages: std::mem::take(&mut scanned.records),
        affected: users,
        plan: plan_totals,
        triage: TriageTotals {
            profile: s.triage.profile.to_string(),
            min_severity: s.min_severity.to_string(),
            addresses_below_min_severity: scanned.below_only,
            suggested_internal_domains: scanned.suggested.clone(),
        },
    };
    let opts = ReportOptions {
        show_addresses: args.show_addresses,
        campaigns: CampaignOptions {
            window_secs: (args.campaign_window * 3600.0) as i64,
            ..CampaignOptions::default()
        },
        pseudonym_key: None,
    };
    let (summary, written) = leakaudit_report::write_report(&out, data, &opts)?;
    stage.finish();
    if let Some(note) = &fold_note {
        eprintln!("{note}");
    }
    if let Some(note) = crate::evaluate::suggestion_note(&scanned.suggested) {
        if !args.ui.quiet {
            eprintln!("{note}");
        }
    }

    if !args.ui.quiet {
        let findings_path = out.join("findings.jsonl");
        let problems_file = problems_path(&args, &out);
        let mut files = vec![
            &written.html,
            &written.summary,
            &written.breach_record,
            &written.campaigns,
            &affected_path,
        ];
        if !scanned.saw.is_empty() {
            files.push(&saw_path);
        }
        files.extend([&plan_path, &findings_path, &problems_file]);
        print_summary(
            &summary,
            &scanned,
            &store_note,
            apply_note.as_deref(),
            &files,
        );
    }
    let h = &summary.headline;
    Ok(if scanned.stats.had_errors() || apply_failed {
        EXIT_ERROR
    } else if h.findings > 0 || h.exposing_messages > 0 {
        EXIT_VIOLATION
    } else {
        EXIT_CLEAN
    })
}

fn problems_path(args: &Args, out: &Path) -> PathBuf {
    args.ui
        .problems
        .clone()
        .unwrap_or_else(|| out.join("problems.jsonl"))
}

/// Scans and evaluates (workers, ranked under the profile), collects in archive order (this
/// thread); findings.jsonl and the problems file are streamed, atomically, while the scan runs.
fn scan_stage(
    args: &Args,
    s: &Settings,
    out: &Path,
    is_customer: &leakaudit_policy::triage::IsCustomer<'_>,
) -> anyhow::Result<Scanned> {
    let started = Instant::now();
    let scanner = s.run.scanner();
    let progress = Progress::for_inputs("scan", &args.archives, args.ui.quiet);
    let mut problems = Problems::new(Some(&problems_path(args, out)), args.ui.quiet, &progress)?;
    let mut sel = Selection::new(s.min_severity);
    let mut records: Vec<MessageRecord> = Vec::new();
    let mut dates: Vec<i64> = Vec::new();
    let findings_path = out.join("findings.jsonl");
    let mut stats = None;
    let mut write_error: Option<std::io::Error> = None;
    let mut eval_error = None;
    let mut suggested = Vec::new();
    leakaudit_scanner::io::write_atomic(&findings_path, |w| {
        // Findings are serialised straight into the buffer: one finding of a
        // 1,000,000-address message is ~100 MB of JSON, which a line string would hold whole.
        let mut w = std::io::BufWriter::with_capacity(1 << 16, w);
        let result = s.triage.evaluate(
            &scanner,
            &s.engine,
            &args.archives,
            &progress,
            &mut problems,
            Some(is_customer),
            // The report's record is built on the worker; its severities after the ranking, its
            // exposed addresses moved in from the evaluation (not copied while the scan runs).
            |msg: &Message<'_>, ev| {
                (
                    msg.envelope.date,
                    MessageRecord::without_exposed(msg, &ev.exposure, &ev.findings),
                )
            },
            |mut m| {
                let (date, record) = m.extra;
                if let Some(d) = date {
                    dates.push(d);
                }
                sel.add(&m.location, &m.eval);
                for f in &m.eval.findings {
                    if write_error.is_none() {
                        let written = serde_json::to_writer(&mut w, f)
                            .map_err(std::io::Error::from)
                            .and_then(|()| w.write_all(b"\n"));
                        if let Err(e) = written {
                            write_error = Some(e);
                        }
                    }
                }
                if let Some(mut r) = record {
                    r.exposed = std::mem::take(&mut m.eval.exposure.exposed);
                    r.set_findings(&m.eval.findings);
                    records.push(r);
                }
            },
        );
        match result {
            Ok((st, history)) => {
                suggested = crate::evaluate::suggested_domains(history.as_ref(), s.engine.org());
                stats = Some(st);
            }
            Err(e) => eval_error = Some(e),
        }
        match write_error.take() {
            Some(e) => Err(e),
            None => w.flush(),
        }
    })
    .with_context(|| format!("writing {}", findings_path.display()))?;
    if let Some(e) = eval_error {
        return Err(e);
    }
    let stats = stats.context("the scan did not run")?;
    progress.finish();
    let total = problems.total();
    problems.finish()?;
    let below_only = sel.below_only();
    let Selection { acc, saw, .. } = sel;
    Ok(Scanned {
        stats,
        acc,
        records,
        dates,
        problems: total,
        below_only,
        suggested,
        saw,
        secs: started.elapsed().as_secs_f64(),
    })
}

/// The report's view of an affected row (the report crate knows nothing of remediation).
fn affected_user(r: &leakaudit_remediation::AffectedRow) -> leakaudit_report::AffectedUser {
    let secs = |t: &Option<String>| {
        t.as_deref()
            .and_then(leakaudit_scanner::time::parse_rfc3339)
    };
    leakaudit_report::AffectedUser {
        address: r.address.clone(),
        account_ids: r.account_ids.clone(),
        messages: r.messages,
        audience: r.audience,
        first: secs(&r.first_exposed),
        last: secs(&r.last_exposed),
    }
}

/// The report's totals of a plan written as `plan.json` beside it, not (yet) applied.
fn plan_totals(plan: &Plan) -> PlanTotals {
    PlanTotals {
        resets: plan.totals.force_password_reset,
        reviews: plan.totals.human_review,
        notifications: plan.totals.notify,
        notify_only: plan.totals.notify_only,
        applied: false,
        file: Some("plan.json".into()),
        hash: Some(plan.content_hash.clone()),
        ..PlanTotals::default()
    }
}

/// Opens the store: an SQLite file or PostgreSQL URL as is, or a CSV imported into
/// DIR/accounts.sqlite.
fn open_store(
    args: &Args,
    out: &Path,
    import: &leakaudit_remediation::ImportOptions,
) -> anyhow::Result<(Store, PathBuf, String)> {
    let stage = Stage::start("accounts", args.ui.quiet);
    stage.message(format!("opening {}", args.accounts.display()));
    let opened = leakaudit_remediation::import::open_or_import(
        &args.accounts,
        &out.join("accounts.sqlite"),
        import,
    )?;
    stage.finish();
    let note = match &opened.imported {
        None => "existing store".to_string(),
        Some(report) => format!(
            "{} rows imported from {} ({} new, {} updated)",
            report.rows,
            args.accounts.display(),
            report.stats.inserted,
            report.stats.updated
        ),
    };
    Ok((opened.store, opened.path, note))
}

/// Whether the store has a failed-login count for any exposed account.
fn failed_login_data(store: &dyn AccountStore, users: &AffectedTotals) -> anyhow::Result<bool> {
    for id in &users.accounts {
        if store
            .account(id)?
            .is_some_and(|a| a.failed_logins.is_some())
        {
            return Ok(true);
        }
    }
    Ok(false)
}

fn apply_summary(report: &ApplyReport, out: &Path, plan: &Plan, store: &Path) -> String {
    let (outbox, log) = folder::plan_files(out, plan);
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
        store.display(),
        log.display()
    )
}

fn print_summary(
    summary: &Summary,
    scanned: &Scanned,
    store_note: &str,
    apply_note: Option<&str>,
    files: &[&PathBuf],
) {
    let h = &summary.headline;
    let stats = &scanned.stats;
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
        scanned.secs,
        scanned.problems,
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
    if !scanned.saw.is_empty() {
        let _ = writeln!(
            err,
            "{} recipient(s) saw exposed addresses without being shown (journal envelopes: Bcc, expanded lists, forwarding): saw-others.csv",
            scanned.saw.len()
        );
    }
    let _ = writeln!(err, "written:");
    for p in files {
        let _ = writeln!(err, "  {}", crate::term::clean(&p.display().to_string()));
    }
}

/// The plan's record in the store, over every run: sets the report's done/failed and says
/// them by kind. `None` when the store never saw the plan.
fn store_totals(
    store: &dyn AccountStore,
    plan: &Plan,
    totals: &mut PlanTotals,
) -> anyhow::Result<Option<String>> {
    let Some(r) = leakaudit_remediation::apply::record(store, plan)? else {
        return Ok(None);
    };
    totals.applied = true;
    totals.done = Some(r.done);
    totals.failed = Some(r.failed);
    totals.notices_done = Some(r.notices_done);
    totals.notices_failed = Some(r.notices_failed);
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
    Ok(Some(format!(
        "store totals for this plan (all runs): {}",
        kinds.join("; ")
    )))
}

/// For a re-plan: what the incident's earlier plans did of this plan's actions (recorded as
/// covered when it was applied, foreseen when not).
fn plan_delta(
    store: &dyn AccountStore,
    plan: &Plan,
) -> anyhow::Result<Option<leakaudit_report::PlanDelta>> {
    let d = leakaudit_remediation::apply::delta(plan, store)?;
    if d.earlier.is_empty() {
        return Ok(None);
    }
    Ok(Some(leakaudit_report::PlanDelta {
        incident: plan.incident_id().to_string(),
        covered: d.covered_by_kind(plan),
        earlier_plans: d.earlier,
    }))
}

fn apply_plan(
    args: &Args,
    s: &Settings,
    plan: &Plan,
    store: &mut dyn AccountStore,
    out: &Path,
) -> anyhow::Result<ApplyReport> {
    use leakaudit_remediation::outbox::OutboxGate;
    let notify = s
        .notify
        .as_ref()
        .context("--apply without notification settings")?;
    let (outbox, log) = folder::plan_files(out, plan);
    // The outbox is refused when the configured policy finds anything in a notification.
    let opts = leakaudit_remediation::ApplyOptions::new(
        outbox,
        log,
        notify.reset_base_url.clone(),
        notify.sender.clone(),
        OutboxGate::new(&s.engine),
    )
    .with_templates(notify.templates.clone())
    .with_executor(s.executor.clone());
    let opts = leakaudit_remediation::ApplyOptions {
        new_incident: args.new_incident,
        ..opts
    };
    let mut bar = crate::apply_progress::ApplyProgress::new(args.ui.quiet);
    let mut on_event = |ev: leakaudit_remediation::ApplyEvent<'_>| bar.event(&ev);
    let report = leakaudit_remediation::apply(plan, store, &opts, &mut on_event);
    bar.finish();
    Ok(report?)
}
