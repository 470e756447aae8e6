//! `leakaudit remediate`: plan, apply, release, send (`send.rs`), status, verify-log.
//!
//! Test-only hook (built only with the `crash-points` feature, which `scripts/test.sh`
//! enables): `LEAKAUDIT_TEST_CRASH_AFTER=N` makes `apply` abort the process (no cleanup,
//! like a SIGKILL) after the Nth account of the run reached the point named by
//! `LEAKAUDIT_TEST_CRASH_POINT` (`staged`, `committed` (default) or `logged`), so the tests can
//! prove that a killed apply resumes without losing or repeating anything. With
//! `LEAKAUDIT_TEST_CRASH_MODE=hang` it stops there instead (holding the store's lock) until
//! killed, so the tests can SIGKILL a lock holder at a known point.

use crate::affected::{collect, Source};
use crate::args::{MatchArgs, OrgArgs, RulesArgs};
use crate::config::RunConfig;
use crate::{EXIT_CLEAN, EXIT_ERROR, EXIT_VIOLATION};
use leakaudit_policy::Engine;
use leakaudit_remediation::affected::fold_hint;
use leakaudit_remediation::affected::AffectedList;
use leakaudit_remediation::apply::{self, ApplyEvent, ApplyOptions};
use leakaudit_remediation::outbox::{self, Outbox, OutboxGate, ReleaseOutcome};
use leakaudit_remediation::store;
use leakaudit_remediation::{
    affected, audit, build_plan, read_plan, write_plan, Argon2Settings, MatchMode,
    RemediationPolicy,
};
use std::path::{Path, PathBuf};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Write the remediation plan (changes nothing).
    Plan(PlanArgs),
    /// Execute a plan exactly once: resets, reviews, notifications; resumable.
    Apply(ApplyArgs),
    /// Check every staged notification and move them to `OUTBOX/released/new` if all pass.
    Release(ReleaseArgs),
    /// Deliver the released notifications over SMTP, each exactly once (canary step first).
    Send(Box<crate::send::SendArgs>),
    /// Stage one account's notification again (deleted or expired): revokes its live reset
    /// token, issues a new one, audit-logged.
    Reissue(crate::reissue::Args),
    /// Progress of plans: planned, done, failed, pending, by action.
    Status {
        /// The account store the plans were applied to.
        #[arg(long, value_name = "FILE")]
        db: PathBuf,
        /// Only this plan (also counts actions not yet recorded as pending).
        #[arg(long, value_name = "FILE")]
        plan: Option<PathBuf>,
    },
    /// Verify audit logs' hash chains (with --db, also against everything the store recorded).
    VerifyLog {
        /// The audit logs (JSON Lines) written by `apply`, one per plan.
        #[arg(value_name = "FILE", required = true, num_args = 1..)]
        logs: Vec<PathBuf>,
        /// The account store: also check each log's last entry against the one the store
        /// recorded (no tail cut), and that every plan the store applied is in a given log.
        #[arg(long, value_name = "FILE")]
        db: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
pub struct PlanArgs {
    /// A list written by `leakaudit affected` (CSV or JSON, not pseudonymised).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["paths", "findings"])]
    pub affected: Option<PathBuf>,
    #[command(flatten)]
    pub source: Source,
    /// The account store (SQLite file) to plan against.
    #[arg(long, value_name = "FILE")]
    pub db: PathBuf,
    /// Where to write the plan (JSON, mode 0600).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Remediation policy (default: the shipped rules/remediation.toml).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    #[command(flatten)]
    pub matching: MatchArgs,
    /// A plan of the incident this one re-plans (after accounts or archives changed): apply
    /// then does only what the incident's plans have not done (no account reset twice, no
    /// address notified twice).
    #[arg(long, value_name = "FILE")]
    pub replans: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct ReleaseArgs {
    /// The notification outbox (apply stages messages in DIR/staged, release moves them to
    /// DIR/released).
    #[arg(long, value_name = "DIR")]
    pub outbox: PathBuf,
    /// The account store the plan was applied to (required: every message is checked against
    /// it, its account's current address and its reset token, not against files in DIR).
    #[arg(long, value_name = "FILE")]
    pub db: PathBuf,
    #[command(flatten)]
    pub org: OrgArgs,
    #[command(flatten)]
    pub rules: RulesArgs,
}

#[derive(clap::Args)]
pub struct ApplyArgs {
    /// The plan written by `remediate plan` or `incident`.
    #[arg(long, value_name = "FILE")]
    pub plan: PathBuf,
    /// Apply although another plan of this store already reset or notified some of the same
    /// accounts and addresses (this is a new incident); refused without it.
    #[arg(long)]
    pub new_incident: bool,
    /// The account store the plan was made against.
    #[arg(long, value_name = "FILE")]
    pub db: PathBuf,
    /// The notification outbox (apply stages messages in DIR/staged, release moves them to
    /// DIR/released).
    #[arg(long, value_name = "DIR")]
    pub outbox: PathBuf,
    /// Audit log (JSON Lines, hash-chained, appended).
    #[arg(long, value_name = "FILE")]
    pub log: PathBuf,
    /// Reset token lifetime: 24h, 90m, 2d, 3600s.
    #[arg(long, default_value = "24h", value_parser = crate::args::parse_secs)]
    pub token_ttl: i64,
    /// argon2id memory in KiB (at least 19456).
    #[arg(long, default_value_t = 19456)]
    pub argon2_m_kib: u32,
    /// argon2id iterations (at least 2).
    #[arg(long, default_value_t = 2)]
    pub argon2_t: u32,
    /// argon2id lanes (at least 1).
    #[arg(long, default_value_t = 1)]
    pub argon2_p: u32,
    #[command(flatten)]
    pub notify: crate::notify::NotifyArgs,
    /// Accounts hashed in parallel per batch.
    #[arg(long, default_value_t = leakaudit_remediation::apply::DEFAULT_BATCH)]
    pub batch: usize,
    /// When another apply or release of the same store is running, wait up to SECS for it
    /// (default: exit 2 at once, naming it).
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub wait: u64,
    /// No progress bar, no summary, no warnings; errors are still printed.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub org: OrgArgs,
    #[command(flatten)]
    pub rules: RulesArgs,
    #[command(flatten)]
    pub executor: crate::executor::ExecutorArgs,
}

pub fn run(cmd: Command) -> anyhow::Result<u8> {
    match cmd {
        Command::Plan(a) => plan(a),
        Command::Apply(a) => apply_cmd(a),
        Command::Release(a) => release(&a),
        Command::Send(a) => crate::send::run(*a),
        Command::Reissue(a) => crate::reissue::run(a),
        Command::Status { db, plan } => status(&db, plan.as_deref()),
        Command::VerifyLog { logs, db } => verify_log(&logs, db.as_deref()),
    }
}

fn plan(a: PlanArgs) -> anyhow::Result<u8> {
    let policy = match &a.policy {
        Some(p) => RemediationPolicy::load(p)?,
        None => RemediationPolicy::builtin(),
    };
    let mut scan_errors = 0;
    let store = store::open(&a.db)?;
    let mut list = match &a.affected {
        Some(f) => {
            let list = affected::read_file(f)?;
            anyhow::ensure!(
                !list.pseudonymised,
                "{} is pseudonymised: plan from the clear list or the findings",
                f.display()
            );
            list
        }
        None => {
            let c = collect(&a.source)?;
            if let Some(note) = c.below_note() {
                eprintln!("{note}");
            }
            scan_errors = c.errors;
            AffectedList::new(c.acc.rows())
        }
    };
    // One matching decision: a list matched by `affected --accounts` is used as written (the
    // plan refuses one matched against another store); an unmatched one is matched now.
    if list.store_id.is_none() {
        affected::match_list(&mut list, &*store, a.matching.mode())?;
        let hint = fold_hint(&list.rows, &*store)?;
        if a.matching.mode() == MatchMode::Canonical && hint > 0 {
            eprintln!(
                "note: {hint} unmatched address(es) would match an account with --provider-folding"
            );
        }
    } else if a.matching.provider_folding && list.match_mode != Some(MatchMode::ProviderFolding) {
        anyhow::bail!(
            "--provider-folding: {} was matched without folding; match it again with `affected --accounts DB --provider-folding`",
            a.affected.as_deref().unwrap_or(Path::new("the list")).display()
        );
    }
    let mut plan = build_plan(&list, &*store, &policy)?;
    if let Some(earlier) = &a.replans {
        let earlier = read_plan(earlier)?;
        anyhow::ensure!(
            earlier.store.id == plan.store.id,
            "--replans: {} was made for another account store",
            a.replans.as_deref().unwrap_or(Path::new("")).display()
        );
        plan.set_incident(Some(earlier.incident_id().to_string()));
    }
    write_plan(&a.out, &plan)?;
    let t = plan.totals;
    eprintln!(
        "plan {} written to {}: {} affected address(es), {} matched to {} account(s), {} unmatched",
        plan.content_hash,
        a.out.display(),
        t.affected_addresses,
        t.affected_addresses - t.unmatched_addresses,
        t.accounts,
        t.unmatched_addresses
    );
    eprintln!(
        "  force-password-reset {}  human-review {}  notify {}  notify-only (no account) {}  (nothing changed; run `remediate apply`)",
        t.force_password_reset, t.human_review, t.notify, t.notify_only
    );
    if scan_errors > 0 {
        eprintln!(
            "error: {scan_errors} input problem(s) while scanning: the plan may be incomplete"
        );
        return Ok(EXIT_ERROR);
    }
    Ok(EXIT_CLEAN)
}

/// The configured policy engine (rules, organisation), the same one `incident --apply` uses,
/// as the outbox check.
fn engine_check(org: &OrgArgs, rules: &RulesArgs) -> anyhow::Result<Engine> {
    RunConfig::resolve(org, rules, &Default::default())?.engine()
}

/// The crash point the tests asked for: after how many events of which kind, and whether to
/// hang there instead of aborting.
type CrashPoint = (usize, String, bool);

/// Only in a build with the `crash-points` feature (`scripts/test.sh`): a release build has
/// neither the hook nor its variable names.
#[cfg(feature = "crash-points")]
fn crash_hook() -> Option<CrashPoint> {
    let n = std::env::var("LEAKAUDIT_TEST_CRASH_AFTER")
        .ok()?
        .parse()
        .ok()?;
    let point =
        std::env::var("LEAKAUDIT_TEST_CRASH_POINT").unwrap_or_else(|_| "committed".to_string());
    let hang = std::env::var("LEAKAUDIT_TEST_CRASH_MODE").is_ok_and(|m| m == "hang");
    Some((n, point, hang))
}

#[cfg(not(feature = "crash-points"))]
fn crash_hook() -> Option<CrashPoint> {
    None
}

fn apply_cmd(a: ApplyArgs) -> anyhow::Result<u8> {
    let argon2 = Argon2Settings::new(a.argon2_m_kib, a.argon2_t, a.argon2_p)?;
    let plan = read_plan(&a.plan)?;
    let run = RunConfig::resolve(&a.org, &a.rules, &Default::default())?;
    let engine = run.engine()?;
    // Settings and templates are checked before the store is opened (or created).
    let notify = a.notify.resolve(&run, true)?;
    let mut store = store::open(&a.db)?;
    let executor = crate::executor::resolve(&a.executor, &run)?;
    let opts = ApplyOptions::new(
        &a.outbox,
        &a.log,
        notify.reset_base_url,
        notify.sender,
        OutboxGate::new(&engine),
    )
    .with_templates(notify.templates)
    .with_token_ttl_secs(a.token_ttl)
    .with_argon2(argon2)
    .with_batch(a.batch)
    .with_lock_wait(std::time::Duration::from_secs(a.wait))
    .with_executor(executor);
    let opts = ApplyOptions {
        new_incident: a.new_incident,
        ..opts
    };
    let mut bar = crate::apply_progress::ApplyProgress::new(a.quiet);
    let crash = crash_hook();
    let mut seen = 0usize;
    let mut on_event = |ev: ApplyEvent<'_>| {
        bar.event(&ev);
        let name = match ev {
            ApplyEvent::Staged { .. } => "staged",
            ApplyEvent::Committed { .. } => "committed",
            ApplyEvent::Logged { .. } => "logged",
            _ => return,
        };
        if let Some((after, point, hang)) = &crash {
            if name == point {
                seen += 1;
                if seen >= *after {
                    if *hang {
                        // Test hook: stop here, lock held, until killed.
                        loop {
                            std::thread::sleep(std::time::Duration::from_secs(3600));
                        }
                    }
                    // Test hook: die like a SIGKILL, no unwinding, no flushing.
                    std::process::abort();
                }
            }
        }
    };
    let applied = apply::apply(&plan, &mut *store, &opts, &mut on_event);
    bar.finish();
    let report = match applied {
        Err(e @ leakaudit_remediation::Error::Locked { .. }) => {
            anyhow::bail!("{e}, or pass --wait SECS")
        }
        r => r?,
    };
    if !a.quiet {
        eprintln!(
            "plan {}: {} account(s): {} done now, {} already done, {} failed",
            plan.content_hash,
            report.accounts_total,
            report.accounts_done,
            report.accounts_already_done,
            report.failed.len()
        );
        eprintln!(
            "  resets {}  reviews {}  notifications staged {}  log entries recovered {}",
            report.resets, report.reviews, report.notifications, report.recovered_log_entries
        );
        if report.notices + report.notices_already_done > 0 {
            eprintln!(
                "  notices to addresses without an account: {} staged now, {} already staged{}",
                report.notices,
                report.notices_already_done,
                if report.notices_restaged > 0 {
                    format!(
                        " ({} of them missing from the outbox, staged anew)",
                        report.notices_restaged
                    )
                } else {
                    String::new()
                }
            );
        }
        if report.webhook_requests > 0 {
            eprintln!("  webhook requests {}", report.webhook_requests);
        }
    }
    for (acct, why) in &report.failed {
        eprintln!(
            "error: account {}: {} (will be retried by the next apply)",
            crate::term::clean(acct),
            crate::term::clean(&why.to_string())
        );
    }
    if let Some(why) = &report.stopped {
        eprintln!(
            "error: stopped, the webhook endpoint is unavailable ({}): run apply again when it is back; done actions are skipped, the rest are resent with the same Idempotency-Key",
            crate::term::clean(why)
        );
    }
    crate::reissue::print_missing(&report.missing_messages, &a.outbox);
    if report.complete && report.missing_messages.is_empty() {
        eprintln!(
            "complete: notifications staged in {}; check and release them with `leakaudit remediate release --outbox {} --db {}`",
            Outbox::new(&a.outbox).staged().join("new").display(),
            a.outbox.display(),
            a.db.display()
        );
        Ok(EXIT_CLEAN)
    } else {
        Ok(EXIT_ERROR)
    }
}

fn release(a: &ReleaseArgs) -> anyhow::Result<u8> {
    let dir = a.outbox.as_path();
    let engine = engine_check(&a.org, &a.rules)?;
    let mut store = store::open(&a.db)?;
    match outbox::release(&Outbox::new(dir), &mut *store, &OutboxGate::new(&engine))? {
        ReleaseOutcome::Released { count, dir, failed } => {
            eprintln!("released {count} notification(s)");
            println!("{}", dir.display());
            if failed.is_empty() {
                return Ok(EXIT_CLEAN);
            }
            // The others went on; these did not: the exit code says so.
            eprintln!(
                "error: {} account(s) or notice(s) failed in apply and were not released: {}; see `remediate status`, fix them, run `remediate apply` again, then release",
                failed.len(),
                crate::term::clean(&failed.iter().take(10).cloned().collect::<Vec<_>>().join(", "))
            );
            Ok(EXIT_ERROR)
        }
        ReleaseOutcome::Refused(list) => Ok(crate::reissue::print_refusals(&list)),
    }
}

fn status(db: &Path, plan_path: Option<&Path>) -> anyhow::Result<u8> {
    let store = store::open(db)?;
    let plan = plan_path.map(read_plan).transpose()?;
    let hashes = match &plan {
        Some(p) => vec![p.content_hash.clone()],
        None => store.plans()?,
    };
    if hashes.is_empty() {
        println!("no plan has been applied to this store");
    }
    for h in hashes {
        let st = apply::status(&*store, &h, plan.as_ref())?;
        println!("plan {h}");
        println!(
            "  {:<22} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "action", "planned", "done", "failed", "pending", "covered"
        );
        for (kind, s) in &st {
            println!(
                "  {:<22} {:>8} {:>8} {:>8} {:>8} {:>8}",
                kind, s.planned, s.done, s.failed, s.pending, s.covered
            );
        }
        if st.values().any(|s| s.covered > 0) {
            println!("  (covered: done by an earlier plan of the same incident, not repeated)");
        }
        let deliveries = store.deliveries(&h)?;
        if !deliveries.is_empty() {
            println!("  {}", crate::send::delivery_counts(&deliveries));
        }
    }
    Ok(EXIT_CLEAN)
}

fn verify_log(logs: &[PathBuf], db: Option<&Path>) -> anyhow::Result<u8> {
    let verified = match db {
        Some(db) => audit::verify_with_store(logs, &*store::open(db)?),
        None => logs.iter().map(|l| audit::verify(l, None)).collect(),
    };
    match verified {
        Ok(v) => {
            println!(
                "ok: {} entries in {} log(s), chain intact{}",
                v.iter().map(|v| v.entries).sum::<u64>(),
                v.len(),
                if db.is_some() {
                    ", every plan of the store present, tails match the store"
                } else {
                    " (pass --db to also check them against the store)"
                }
            );
            Ok(EXIT_CLEAN)
        }
        Err(e @ leakaudit_remediation::Error::AuditLog { .. }) => {
            eprintln!("{}", crate::term::clean_lines(&e.to_string()));
            Ok(EXIT_VIOLATION)
        }
        Err(e) => Err(e.into()),
    }
}
