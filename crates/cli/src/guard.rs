//! `leakaudit guard smtp`: flags -> `GuardConfig` and the library's `Auditor` (the same rules,
//! configuration and severities as `check`) -> `leakaudit_guard::run`.

use crate::args::{OrgArgs, RulesArgs};
use crate::config::RunConfig;
use leakaudit_guard::{GuardConfig, OnUnaudited, OnViolation};
use leakaudit_policy::Severity;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum Command {
    /// An SMTP proxy that refuses a leaking message inside the SMTP transaction (Postfix
    /// `smtpd_proxy_filter`, or a relay in front of a smarthost).
    Smtp(SmtpArgs),
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ViolationArg {
    /// `550 5.7.1` with the rule id and the finding's fingerprint.
    Reject,
    /// Relay with an `X-Leakaudit-Verdict` header.
    Monitor,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum UnauditedArg {
    /// `451 4.7.0`: the client keeps the message queued.
    Tempfail,
    /// `550 5.7.1`.
    Reject,
}

#[derive(clap::Args)]
pub struct SmtpArgs {
    /// Where clients connect (loopback unless --allow-client is given).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:10025")]
    pub listen: SocketAddr,
    /// The SMTP server mail is passed on to (Postfix's reinjection smtpd, or a smarthost).
    #[arg(long, value_name = "ADDR:PORT")]
    pub upstream: SocketAddr,
    /// What a message that fails the policy gets.
    #[arg(long, value_enum, default_value = "reject")]
    pub on_violation: ViolationArg,
    /// What a message that cannot be fully audited gets.
    #[arg(long, value_enum, default_value = "tempfail")]
    pub on_unaudited: UnauditedArg,
    /// Concurrent sessions; beyond them a client gets 421.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub max_sessions: usize,
    /// Largest message in bytes (advertised as SIZE; beyond it 552).
    #[arg(long, value_name = "BYTES", default_value_t = 50 << 20)]
    pub max_size: usize,
    /// Clients allowed besides loopback (repeatable), e.g. 10.0.0.0/8.
    #[arg(long = "allow-client", value_name = "CIDR")]
    pub allow_clients: Vec<ipnet::IpNet>,
    /// One JSON line per message to FILE (appended, mode 0600) instead of standard error.
    #[arg(long, value_name = "FILE")]
    pub verdict_log: Option<PathBuf>,
    /// Show addresses in clear (default: pseudonymised).
    #[arg(long)]
    pub show_addresses: bool,
    /// Fail when a finding at or above this severity remains (check: exit 1; guard: the
    /// message is refused) [default: the config's `fail_on`, else high].
    #[arg(long, value_name = "SEVERITY")]
    pub fail_on: Option<Severity>,
    #[command(flatten)]
    pub org: OrgArgs,
    #[command(flatten)]
    pub rules: RulesArgs,
}

pub fn run(cmd: Command) -> anyhow::Result<u8> {
    let Command::Smtp(a) = cmd;
    let run = RunConfig::resolve(&a.org, &a.rules, &Default::default())?;
    let auditor = run.auditor(a.fail_on)?;
    let mut cfg = GuardConfig::new(a.listen, a.upstream);
    cfg.on_violation = match a.on_violation {
        ViolationArg::Reject => OnViolation::Reject,
        ViolationArg::Monitor => OnViolation::Monitor,
    };
    cfg.on_unaudited = match a.on_unaudited {
        UnauditedArg::Tempfail => OnUnaudited::Tempfail,
        UnauditedArg::Reject => OnUnaudited::Reject,
    };
    cfg.max_sessions = a.max_sessions;
    cfg.max_size = a.max_size;
    cfg.allow_clients = a.allow_clients;
    cfg.log = a.verdict_log;
    cfg.show_addresses = a.show_addresses;
    leakaudit_guard::run(cfg, auditor, |addr| {
        eprintln!(
            "guard: listening on {addr}, passing clean mail to {}",
            a.upstream
        );
    })?;
    Ok(crate::EXIT_CLEAN)
}
