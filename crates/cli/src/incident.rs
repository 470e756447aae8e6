//! `leakaudit incident ARCHIVE... --accounts STORE --out DIR`: the first hour of an incident in
//! one command. Scans, evaluates the rules, builds the affected-user list, matches it against
//! the account store, writes the remediation plan (a dry run unless `--apply`), and writes the
//! report (`report.html`, `summary.json`, `breach-record.md`), all into DIR (created 0700,
//! every file 0600, written atomically).
//!
//! Exit code: 2 when any input or message could not be audited or a stage failed, else 1 when
//! any rule fired (a violation), else 0.

use crate::config::{load_engine, load_org};
use crate::progress::Progress;
use crate::scan::{ArchiveKindArg, FormatArg};
use crate::{EXIT_CLEAN, EXIT_ERROR, EXIT_VIOLATION};
use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use leakaudit_policy::{Engine, Finding, RulesMode};
use leakaudit_remediation::affected::{self, AffectedFormat};
use leakaudit_remediation::policy::RemediationPolicy;
use leakaudit_remediation::store::{AccountStore, SqliteStore};
use leakaudit_remediation::{AffectedAccumulator, AffectedRow, MatchMode};
use leakaudit_report::{
    AffectedUser, CampaignOptions, IncidentData, MessageRecord, PlanTotals, ReportOptions,
    ScanTotals,
};
use leakaudit_scanner::scan::{Event, ScanOptions, Scanner};
use leakaudit_scanner::{Format, Message, ProblemLevel};
use std::io::{IsTerminal, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Problems printed on stderr before "N more" (all go to DIR/problems.jsonl).
const SHOWN_PROBLEMS: usize = 20;

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
    /// Show addresses in clear in the report (default: pseudonymised).
    #[arg(long)]
    pub show_addresses: bool,
    /// Organisation settings (default: ./leakaudit.toml when present).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Folder of rule files (replaces or extends the built-in pack, see --rules-mode).
    #[arg(long, value_name = "DIR")]
    pub rules: Option<PathBuf>,
    /// How --rules combines with the built-in pack [default: extend].
    #[arg(long, value_name = "MODE")]
    pub rules_mode: Option<RulesMode>,
    /// A domain of the organisation (repeatable); the From domain is always internal.
    #[arg(long = "internal-domain", value_name = "DOMAIN")]
    pub internal_domains: Vec<String>,
    /// Where the archive comes from: decides whether a Bcc header is itself a leak
    /// (default: the config's, else transmitted).
    #[arg(long, value_enum)]
    pub archive_kind: Option<ArchiveKindArg>,
    /// Read every file as this format instead of detecting it from the content.
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// When the incident was detected (RFC 3339); the 72-hour GDPR deadline runs from here.
    /// Default: now.
    #[arg(long, value_name = "TIME")]
    pub detected_at: Option<String>,
    /// Largest gap between two chunks of one campaign, in hours.
    #[arg(long, value_name = "HOURS", default_value_t = 6.0)]
    pub campaign_window: f64,
    /// Fold Gmail addresses (dots, +tags) when matching accounts.
    #[arg(long)]
    pub provider_folding: bool,
    /// Remediation policy file (default: the shipped rules/remediation.toml).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// With --apply: the From of the notifications.
    #[arg(long, value_name = "MAILBOX")]
    pub from: Option<String>,
    /// With --apply: the password-reset page; `?selector=...&token=...` is appended.
    #[arg(long, value_name = "URL")]
    pub reset_base_url: Option<String>,
    /// No progress bars, no summary; errors are still printed.
    #[arg(long, short)]
    pub quiet: bool,
    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
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

/// What a worker thread hands back per message.
struct Evaluated {
    date: Option<i64>,
    record: Option<MessageRecord>,
    findings: Vec<Finding>,
    /// The findings as JSON Lines (serialised in parallel).
    jsonl: String,
}

fn parse_time(s: &str) -> anyhow::Result<i64> {
    if let Some(t) = leakaudit_report::parse_time(s) {
        return Ok(t);
    }
    bail!("--detected-at {s:?}: not an RFC 3339 time (e.g. 2019-11-04T08:30:00Z)")
}

/// Creates DIR (and parents) and makes DIR itself 0700: it will hold addresses.
fn prepare_out_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() && !dir.is_dir() {
        bail!("--out {}: exists and is not a folder", dir.display());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("setting mode 0700 on {}", dir.display()))?;
    Ok(())
}

/// An SQLite database starts with this header; anything else is taken as a CSV export.
fn is_sqlite(path: &Path) -> anyhow::Result<bool> {
    let mut f = std::fs::File::open(path)
        .with_context(|| format!("--accounts {}: cannot open", path.display()))?;
    let mut head = [0u8; 16];
    let n = f.read(&mut head).unwrap_or(0);
    Ok(n == 16 && &head == b"SQLite format 3\0")
}

/// Opens the store: an SQLite file as is, or a CSV imported into DIR/accounts.sqlite.
fn open_store(
    args: &Args,
    out: &Path,
    quiet: bool,
) -> anyhow::Result<(SqliteStore, PathBuf, String)> {
    if is_sqlite(&args.accounts)? {
        let store = SqliteStore::open(&args.accounts).map_err(|e| anyhow::anyhow!("{e}"))?;
        return Ok((store, args.accounts.clone(), "existing store".into()));
    }
    let db = out.join("accounts.sqlite");
    let stage = Stage::start("accounts", quiet);
    stage.message(format!("importing {}", args.accounts.display()));
    let mut store = SqliteStore::open(&db).map_err(|e| anyhow::anyhow!("{e}"))?;
    let report = leakaudit_remediation::import_accounts(&mut store, &args.accounts)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    stage.finish();
    Ok((
        store,
        db,
        format!(
            "{} rows imported from {} ({} new, {} updated)",
            report.rows,
            args.accounts.display(),
            report.stats.inserted,
            report.stats.updated
        ),
    ))
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let started = Instant::now();
    let generated_at = leakaudit_report::now();
    let detected_at = match &args.detected_at {
        Some(s) => parse_time(s)?,
        None => generated_at,
    };
    anyhow::ensure!(
        args.campaign_window.is_finite() && args.campaign_window >= 0.0,
        "--campaign-window must be a number of hours >= 0"
    );
    if args.apply {
        anyhow::ensure!(
            args.from.is_some() && args.reset_base_url.is_some(),
            "--apply needs --from MAILBOX (sender of the notifications) and --reset-base-url URL"
        );
    }
    let (cfg, org) = load_org(
        args.config.as_deref(),
        &args.internal_domains,
        args.archive_kind.map(Into::into),
    )?;
    let engine = load_engine(&cfg, org, args.rules.as_deref(), args.rules_mode)?;
    let remediation_policy = match &args.policy {
        Some(p) => RemediationPolicy::load(p).map_err(|e| anyhow::anyhow!("{e}"))?,
        None => RemediationPolicy::builtin(),
    };
    let mode = if args.provider_folding {
        MatchMode::ProviderFolding
    } else {
        MatchMode::Canonical
    };

    let out = args.out.clone();
    prepare_out_dir(&out)?;
    let (mut store, store_path, store_note) = open_store(&args, &out, args.quiet)?;
    if args.apply && store_path != args.accounts {
        // Say it before anything is done: resets land in the imported copy, not in the
        // system the CSV was exported from.
        eprintln!(
            "note: --apply with an accounts CSV acts on the imported copy {}; the notifications in the outbox are real",
            store_path.display()
        );
    }

    // Stage 1: scan and evaluate (workers), collect in archive order (this thread).
    let scanner = Scanner::new(ScanOptions {
        format: args.format.map(Format::from),
        threads: args.threads,
        ..ScanOptions::default()
    });
    let progress = Progress::for_inputs("scan", &args.archives, args.quiet);
    let mut acc = AffectedAccumulator::new();
    let mut records: Vec<MessageRecord> = Vec::new();
    let mut dates: Vec<i64> = Vec::new();
    let mut problems_lines = String::new();
    let mut problems = 0u64;
    let mut shown = 0usize;
    // Runs on the worker threads: rules, the report record and the findings' JSON lines.
    let process = |msg: &Message<'_>| -> Evaluated {
        let ev = engine.evaluate(msg);
        let mut jsonl = String::new();
        for f in &ev.findings {
            if let Ok(line) = serde_json::to_string(f) {
                jsonl.push_str(&line);
                jsonl.push('\n');
            }
        }
        Evaluated {
            date: msg.envelope.date,
            record: MessageRecord::from_evaluation(msg, &ev.exposure, &ev.findings),
            findings: ev.findings,
            jsonl,
        }
    };
    // findings.jsonl is streamed (it can be large), atomically, while the scan runs.
    let findings_path = out.join("findings.jsonl");
    let mut stats = None;
    let mut write_error: Option<std::io::Error> = None;
    leakaudit_scanner::io::write_atomic(&findings_path, |w| {
        stats = Some(scanner.scan(&args.archives, process, |ev| match ev {
            Event::Message { item, .. } => {
                if let Some(d) = item.date {
                    dates.push(d);
                }
                for f in &item.findings {
                    acc.add(f);
                }
                if write_error.is_none() {
                    if let Err(e) = w.write_all(item.jsonl.as_bytes()) {
                        write_error = Some(e);
                    }
                }
                if let Some(r) = item.record {
                    records.push(r);
                }
            }
            Event::Problem(p) => {
                problems += 1;
                if let Ok(line) = serde_json::to_string(&p) {
                    problems_lines.push_str(&line);
                    problems_lines.push('\n');
                }
                let show = match p.level {
                    ProblemLevel::Error => true,
                    ProblemLevel::Warning => !args.quiet,
                };
                if show && shown < SHOWN_PROBLEMS {
                    shown += 1;
                    progress.println(&p.to_string());
                }
            }
            Event::Progress { bytes, messages } => progress.update(bytes, messages),
        }));
        match write_error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    })
    .with_context(|| format!("writing {}", findings_path.display()))?;
    let stats = stats.context("the scan did not run")?;
    progress.finish();
    let scan_secs = started.elapsed().as_secs_f64();
    if shown as u64 > 0 && problems > shown as u64 {
        eprintln!(
            "... {} more problems not shown (all are in {})",
            problems - shown as u64,
            out.join("problems.jsonl").display()
        );
    }
    write_file(&out.join("problems.jsonl"), problems_lines.as_bytes())?;

    // Stage 2: affected users, matched against the store.
    let stage = Stage::start("affected", args.quiet);
    let mut rows: Vec<AffectedRow> = acc.rows();
    stage.message(format!(
        "matching {} addresses against the accounts",
        rows.len()
    ));
    affected::match_accounts(&mut rows, &store, mode).map_err(|e| anyhow::anyhow!("{e}"))?;
    let affected_path = out.join("affected.csv");
    affected::write_file(&affected_path, &rows, AffectedFormat::Csv, false)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    stage.finish();

    // Stage 3: the plan (and, with --apply, its execution).
    let stage = Stage::start("plan", args.quiet);
    let plan = leakaudit_remediation::build_plan(&rows, &store, &remediation_policy, mode)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let plan_path = out.join("plan.json");
    leakaudit_remediation::write_plan(&plan_path, &plan).map_err(|e| anyhow::anyhow!("{e}"))?;
    stage.finish();
    let mut plan_totals = PlanTotals {
        resets: plan.totals.force_password_reset,
        reviews: plan.totals.human_review,
        notifications: plan.totals.notify,
        applied: false,
        file: Some("plan.json".into()),
        hash: Some(plan.content_hash.clone()),
        done: None,
        failed: None,
    };
    let mut apply_failed = false;
    let mut apply_note = None;
    if args.apply {
        let report = apply_plan(&args, &plan, &mut store, &out, &engine)?;
        plan_totals.applied = true;
        plan_totals.done = Some(report.resets + report.reviews + report.notifications);
        plan_totals.failed = Some(report.failed.len());
        apply_failed = !report.failed.is_empty() || !report.complete;
        apply_note = Some(format!(
            "applied: {} accounts done now, {} already done before; {} resets, {} reviews, {} notifications staged in {} (check and release them with `leakaudit remediate release --outbox {}`); audit log {}",
            report.accounts_done,
            report.accounts_already_done,
            report.resets,
            report.reviews,
            report.notifications,
            out.join("outbox").display(),
            out.join("outbox").display(),
            out.join("audit.jsonl").display()
        ));
        for (account, why) in report.failed.iter().take(SHOWN_PROBLEMS) {
            eprintln!("apply: account {account} failed: {why}");
        }
    }

    // Stage 4: the report.
    let stage = Stage::start("report", args.quiet);
    let mut by_format = std::collections::BTreeMap::new();
    for (f, n) in &stats.by_format {
        by_format.insert(f.as_str().to_string(), *n);
    }
    let data = IncidentData {
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        inputs: args.archives.clone(),
        accounts_store: Some(store_path.display().to_string()),
        generated_at,
        detected_at,
        scan: ScanTotals {
            messages: stats.messages,
            bytes: stats.bytes,
            by_format,
            problems,
            errors: stats.errors,
        },
        message_dates: dates,
        messages: records,
        affected: rows
            .iter()
            .map(|r| AffectedUser {
                address: r.address.clone(),
                account_ids: r.account_ids.clone(),
                messages: r.messages,
                audience: r.audience,
                first: r.first_exposed.as_deref().and_then(|t| parse_time(t).ok()),
                last: r.last_exposed.as_deref().and_then(|t| parse_time(t).ok()),
            })
            .collect(),
        plan: plan_totals,
    };
    let opts = ReportOptions {
        show_addresses: args.show_addresses,
        campaigns: CampaignOptions {
            window_secs: (args.campaign_window * 3600.0) as i64,
            ..CampaignOptions::default()
        },
        pseudonym_key: None,
    };
    let (summary, written) =
        leakaudit_report::write_report(&out, &data, &opts).map_err(|e| anyhow::anyhow!("{e}"))?;
    stage.finish();

    let h = &summary.headline;
    if !args.quiet {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "accounts: {store_note}");
        let _ = writeln!(
            err,
            "scanned {} messages ({:.1} MB) in {:.2} s; {} problems ({} errors)",
            stats.messages,
            stats.bytes as f64 / 1e6,
            scan_secs,
            problems,
            stats.errors
        );
        let _ = writeln!(
            err,
            "exposing messages: {} in {} campaign(s); addresses exposed: {}; accounts affected: {} ({} exposed addresses without account)",
            h.exposing_messages, h.campaigns, h.addresses_exposed, h.accounts_affected, h.exposed_without_account
        );
        for c in &summary.campaigns {
            let _ = writeln!(
                err,
                "  {}: {} chunk(s), {} addresses, from {} at {}",
                c.id,
                c.chunks,
                c.addresses_exposed,
                c.sender,
                c.first.as_deref().unwrap_or("unknown date")
            );
        }
        let _ = writeln!(
            err,
            "plan{}: {} password resets, {} reviews, {} notifications",
            if summary.plan.applied {
                " (applied)"
            } else {
                " (dry run, nothing changed)"
            },
            h.resets_planned,
            h.reviews_planned,
            h.notifications_planned
        );
        if let Some(note) = &apply_note {
            let _ = writeln!(err, "{note}");
        }
        let _ = writeln!(
            err,
            "GDPR Art. 33 deadline: {} (72 h after detection at {})",
            summary.notification_deadline, summary.detected_at
        );
        let _ = writeln!(err, "written:");
        for p in [
            &written.html,
            &written.summary,
            &written.breach_record,
            &written.campaigns,
            &affected_path,
            &plan_path,
            &out.join("findings.jsonl"),
            &out.join("problems.jsonl"),
        ] {
            let _ = writeln!(err, "  {}", p.display());
        }
    }
    Ok(if stats.had_errors() || apply_failed {
        EXIT_ERROR
    } else if h.findings > 0 || h.exposing_messages > 0 {
        EXIT_VIOLATION
    } else {
        EXIT_CLEAN
    })
}

fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    leakaudit_scanner::io::write_bytes_atomic(path, bytes)
        .with_context(|| format!("writing {}", path.display()))
}

fn apply_plan(
    args: &Args,
    plan: &leakaudit_remediation::Plan,
    store: &mut SqliteStore,
    out: &Path,
    engine: &Engine,
) -> anyhow::Result<leakaudit_remediation::ApplyReport> {
    use leakaudit_remediation::outbox::Sender;
    let sender = Sender::new(args.from.as_deref().unwrap_or_default())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // The outbox is refused when our own policy finds anything in a notification.
    let check = |raw: &[u8]| -> Vec<String> { crate::remediate::engine_reasons(engine, raw) };
    let opts = leakaudit_remediation::ApplyOptions {
        outbox: out.join("outbox"),
        log: out.join("audit.jsonl"),
        token_ttl_secs: 24 * 3600,
        argon2: Default::default(),
        reset_base_url: args.reset_base_url.clone().unwrap_or_default(),
        sender,
        batch: 64,
        extra_check: Some(&check),
    };
    let stage = Stage::start("apply", args.quiet);
    let total = plan.by_account().len();
    let mut on_event = |ev: leakaudit_remediation::ApplyEvent<'_>| {
        if let leakaudit_remediation::ApplyEvent::Committed { n, .. } = ev {
            stage.message(format!("{n}/{total} accounts"));
        }
    };
    let report =
        leakaudit_remediation::apply(plan, store as &mut dyn AccountStore, &opts, &mut on_event)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    stage.finish();
    Ok(report)
}
