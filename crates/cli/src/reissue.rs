//! `leakaudit remediate reissue --account ID`: one notification staged again (its file was
//! deleted after apply, or its link expired), and what apply and release print about
//! missing messages, so a repair is never reported as a leak.

use crate::args::{OrgArgs, RulesArgs};
use crate::config::RunConfig;
use crate::{EXIT_CLEAN, EXIT_ERROR, EXIT_VIOLATION};
use leakaudit_remediation::apply::ApplyOptions;
use leakaudit_remediation::outbox::{OutboxGate, Refusal, RefusalKind};
use leakaudit_remediation::{read_plan, reissue, store};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// The account whose notification is staged again.
    #[arg(long, value_name = "ID")]
    pub account: String,
    /// The account store the plan was applied to.
    #[arg(long, value_name = "FILE")]
    pub db: PathBuf,
    /// The notification outbox (apply stages messages in DIR/staged, release moves them to
    /// DIR/released).
    #[arg(long, value_name = "DIR")]
    pub outbox: PathBuf,
    /// The applied plan [default: plan.json beside the outbox, as `incident` writes it].
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// Audit log (JSON Lines, hash-chained, appended).
    ///
    /// Default here: audit.jsonl beside the outbox, as `incident` writes it.
    #[arg(long = "log", value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    /// Reset token lifetime: 24h, 90m, 2d, 3600s.
    #[arg(long, default_value = "24h", value_parser = crate::args::parse_secs)]
    pub token_ttl: i64,
    #[command(flatten)]
    pub notify: crate::notify::NotifyArgs,
    #[command(flatten)]
    pub org: OrgArgs,
    #[command(flatten)]
    pub rules: RulesArgs,
}

/// `DIR/../name`: where `incident` puts the plan and the log beside its outbox.
fn beside(outbox: &Path, name: &str) -> PathBuf {
    outbox
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join(name)
}

pub fn run(a: Args) -> anyhow::Result<u8> {
    let plan_path = a
        .plan
        .clone()
        .unwrap_or_else(|| beside(&a.outbox, "plan.json"));
    let log = a
        .log_file
        .clone()
        .unwrap_or_else(|| beside(&a.outbox, "audit.jsonl"));
    let plan = read_plan(&plan_path)?;
    let mut store = store::open(&a.db)?;
    let run = RunConfig::resolve(&a.org, &a.rules, &Default::default())?;
    let engine = run.engine()?;
    let notify = a.notify.resolve(&run, false)?;
    if let (Some(given), Some(pinned)) = (
        a.notify.reset_base_url.as_deref(),
        store.reset_base(&plan.content_hash)?,
    ) {
        anyhow::ensure!(
            given == pinned,
            "--reset-base-url {given}: plan {} was applied with the reset page {pinned}, and its links must go there",
            plan.content_hash
        );
    }
    let opts = ApplyOptions::new(
        &a.outbox,
        &log,
        notify.reset_base_url,
        notify.sender,
        OutboxGate::new(&engine),
    )
    .with_templates(notify.templates)
    .with_token_ttl_secs(a.token_ttl);
    let r = reissue::reissue(&plan, &mut *store, &a.account, &opts)?;
    eprintln!(
        "account {}: notification staged again as {} ({}; audit log {}, action {})",
        r.account,
        r.file.display(),
        if r.reset {
            "the previous reset link revoked, a new one issued"
        } else {
            "no reset link"
        },
        log.display(),
        r.action_id
    );
    eprintln!(
        "check and release it with `leakaudit remediate release --outbox {} --db {}`",
        a.outbox.display(),
        a.db.display()
    );
    Ok(EXIT_CLEAN)
}

/// After apply: notifications whose files are gone, and the command that repairs each.
pub fn print_missing(missing: &[(String, String)], outbox: &Path) {
    for (account, file) in missing {
        eprintln!(
            "error: the notification of account {account} is missing from the outbox ({file}): stage it again with `leakaudit remediate reissue --account {account} --outbox {}`",
            outbox.display()
        );
    }
}

/// Release refused: each message with its reasons; exit 1 when any could expose someone, else
/// 2 (missing files and placeholders are errors to repair, not leaks).
pub fn print_refusals(list: &[Refusal]) -> u8 {
    let count = |k| list.iter().filter(|r| r.kind == k).count();
    for r in list {
        let label = match r.kind {
            RefusalKind::Unsafe => "refused",
            RefusalKind::Missing => "missing",
            RefusalKind::Placeholder => "placeholder",
        };
        eprintln!(
            "{label}: {}: {}",
            crate::term::clean(&r.path.display().to_string()),
            crate::term::clean(&r.reasons.join("; "))
        );
    }
    let (unsafe_, missing, placeholder) = (
        count(RefusalKind::Unsafe),
        count(RefusalKind::Missing),
        count(RefusalKind::Placeholder),
    );
    let mut parts = Vec::new();
    if unsafe_ > 0 {
        parts.push(format!(
            "{unsafe_} message(s) would expose someone or were not written by apply"
        ));
    }
    if missing > 0 {
        parts.push(format!("{missing} message(s) missing"));
    }
    if placeholder > 0 {
        parts.push(format!(
            "{placeholder} message(s) with a .invalid placeholder sender or reset page"
        ));
    }
    eprintln!("nothing released: {}", parts.join("; "));
    if unsafe_ > 0 {
        EXIT_VIOLATION
    } else {
        EXIT_ERROR
    }
}
