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
    /// Where clients connect (loopback unless --allow-client is given) [default: `listen` of
    /// `[guard]` in leakaudit.toml, else 127.0.0.1:10025].
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// The SMTP server mail is passed on to (Postfix's reinjection smtpd, or a smarthost)
    /// [default: `upstream` of `[guard]`].
    #[arg(long, value_name = "ADDR:PORT")]
    pub upstream: Option<SocketAddr>,
    /// What a message that fails the policy gets [default: reject].
    #[arg(long, value_enum)]
    pub on_violation: Option<ViolationArg>,
    /// What a message that cannot be fully audited gets [default: tempfail].
    #[arg(long, value_enum)]
    pub on_unaudited: Option<UnauditedArg>,
    /// Concurrent sessions; beyond them a client gets 421 [default: 100].
    #[arg(long, value_name = "N")]
    pub max_sessions: Option<usize>,
    /// Largest message in bytes (advertised as SIZE; beyond it 552) [default: 52428800].
    #[arg(long, value_name = "BYTES")]
    pub max_size: Option<usize>,
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

/// A `[guard]` value naming one of a flag's choices.
fn choice<T: clap::ValueEnum>(name: &str, v: Option<&str>) -> anyhow::Result<Option<T>> {
    v.map(|s| {
        T::from_str(s, true).map_err(|_| {
            anyhow::anyhow!(
                "[guard] {name} = {s:?}: not one of the choices of --{}",
                name.replace('_', "-")
            )
        })
    })
    .transpose()
}

/// The flags over `[guard]` of the configuration file, over the library's defaults.
fn config(a: SmtpArgs, file: crate::config::GuardToml) -> anyhow::Result<GuardConfig> {
    let listen = a
        .listen
        .or(file.listen)
        .unwrap_or_else(|| "127.0.0.1:10025".parse().expect("a socket address"));
    let upstream = a.upstream.or(file.upstream).ok_or_else(|| {
        anyhow::anyhow!("no upstream: give --upstream ADDR:PORT (or `upstream` in [guard])")
    })?;
    let violation = match a.on_violation {
        Some(v) => v,
        None => {
            choice("on_violation", file.on_violation.as_deref())?.unwrap_or(ViolationArg::Reject)
        }
    };
    let unaudited = match a.on_unaudited {
        Some(v) => v,
        None => {
            choice("on_unaudited", file.on_unaudited.as_deref())?.unwrap_or(UnauditedArg::Tempfail)
        }
    };
    let mut cfg = GuardConfig::new(listen, upstream);
    cfg.on_violation = match violation {
        ViolationArg::Reject => OnViolation::Reject,
        ViolationArg::Monitor => OnViolation::Monitor,
    };
    cfg.on_unaudited = match unaudited {
        UnauditedArg::Tempfail => OnUnaudited::Tempfail,
        UnauditedArg::Reject => OnUnaudited::Reject,
    };
    if let Some(n) = a.max_sessions.or(file.max_sessions) {
        cfg.max_sessions = n;
    }
    if let Some(n) = a.max_size.or(file.max_size) {
        cfg.max_size = n;
    }
    cfg.allow_clients = if a.allow_clients.is_empty() {
        file.allow_clients
    } else {
        a.allow_clients
    };
    cfg.log = a.verdict_log.or(file.verdict_log);
    cfg.show_addresses = a.show_addresses || file.show_addresses.unwrap_or(false);
    Ok(cfg)
}

pub fn run(cmd: Command) -> anyhow::Result<u8> {
    let Command::Smtp(a) = cmd;
    let run = RunConfig::resolve(&a.org, &a.rules, &Default::default())?;
    let auditor = run.auditor(a.fail_on)?;
    let file = crate::config::load_guard(&run)?;
    let cfg = config(a, file)?;
    let upstream = cfg.upstream;
    leakaudit_guard::run(cfg, auditor, |addr| {
        eprintln!("guard: listening on {addr}, passing clean mail to {upstream}");
    })?;
    Ok(crate::EXIT_CLEAN)
}
