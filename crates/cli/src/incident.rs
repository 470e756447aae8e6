//! `leakaudit incident ARCHIVE... --accounts STORE --out DIR`: the first hour of an incident in
//! one command. Scans, evaluates the rules, builds the affected-user list, matches it against
//! the account store, writes the remediation plan (a dry run unless `--apply`), and writes the
//! report (`report.html`, `summary.json`, `breach-record.md`), all into DIR (created 0700,
//! every file 0600, written atomically).
//!
//! Exit code: 2 when any input or message could not be audited or a stage failed, else 1 when
//! any rule fired (a violation), else 0.

mod show;

use crate::args::{
    FormatArg, MatchArgs, OrgArgs, ReadArgs, RulesArgs, SelectArgs, TriageArgs, UiArgs,
};
use crate::config::RunConfig;
use crate::evaluate::Triage;
use crate::problems::Problems;
use crate::progress::Progress;
use anyhow::Context;
use leakaudit_incident::{ApplySettings, Incident, IncidentConfig, TriageSettings};
use leakaudit_policy::triage::Profile;
use leakaudit_policy::Severity;
use leakaudit_remediation::policy::RemediationPolicy;
use leakaudit_report::{CampaignOptions, ReportOptions};
use show::Shown;
use std::path::PathBuf;

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

/// The flags and configuration as the library's configuration, every setting validated
/// before any work.
fn config(args: &mut Args) -> anyhow::Result<IncidentConfig> {
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
    let apply = match notify {
        Some(n) => Some(ApplySettings {
            reset_base_url: n.reset_base_url,
            sender: n.sender,
            templates: n.templates,
            executor,
            new_incident: args.new_incident,
        }),
        None => None,
    };
    Ok(IncidentConfig {
        archives: args.archives.clone(),
        accounts: args.accounts.clone(),
        out: args.out.clone(),
        scanner: run.scanner(),
        engine,
        triage: TriageSettings {
            profile: triage.profile,
            history_file: triage.history_file,
            aliases: triage.aliases,
        },
        min_severity,
        match_mode: args.matching.mode(),
        import: run.settings()?.accounts,
        remediation,
        apply,
        problems_file: args.ui.problems.clone(),
        generated_at,
        detected_at,
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

pub fn run(mut args: Args) -> anyhow::Result<u8> {
    let cfg = config(&mut args)?;
    // The folder's own check, named after the flag, before the library creates it.
    crate::outdir::private_dir(&args.out, "--out")?;
    let quiet = args.ui.quiet;
    let mut shown = Shown::new(quiet);
    let incident = Incident::open(cfg, &mut shown)?;
    if args.apply && incident.store_path() != args.accounts {
        // Say it before anything is done: resets land in the imported copy, not in the
        // system the CSV was exported from.
        eprintln!(
            "note: --apply with an accounts CSV acts on the imported copy {}; the notifications in the outbox are real",
            incident.store_path().display()
        );
    }
    let store_note = show::store_note(incident.imported(), &args.accounts);
    let progress = Progress::for_inputs("scan", &args.archives, quiet);
    let problems = Problems::new(None, quiet, &progress)?.listed_in(&incident.problems_file());
    let mut shown = shown.scanning(problems, &progress);
    let result = incident.run(&mut shown);
    shown.finish()?;
    let o = result?;
    show::outcome(&o, &store_note, quiet);
    Ok(o.outcome.exit_code())
}
