//! `leakaudit remediate send`: deliver the released outbox to the SMTP relay.
//!
//! Settings: flags over `[smtp]` of `leakaudit.toml` over the defaults (`--tls starttls`).
//! Credentials never come from the command line: `--smtp-credentials FILE` (user on the first
//! line, password on the second, mode 0600), else `LEAKAUDIT_SMTP_USER` and
//! `LEAKAUDIT_SMTP_PASSWORD`, else the config's `credentials` file.

use crate::args::{OrgArgs, RulesArgs};
use crate::config::{load_smtp, RunConfig, SmtpConfig};
use crate::{EXIT_CLEAN, EXIT_ERROR, EXIT_VIOLATION};
use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use leakaudit_remediation::outbox::send::{
    self, CanaryReport, CanaryStep, Credentials, MessageResult, Resolution, SendEvent, SendOptions,
    SendOutcome, SendReport, SmtpSettings, Status, TlsMode,
};
use leakaudit_remediation::outbox::{Outbox, OutboxGate};
use leakaudit_remediation::store;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(clap::Args)]
pub struct SendArgs {
    /// The notification outbox (apply stages messages in DIR/staged, release moves them to
    /// DIR/released).
    #[arg(long, value_name = "DIR")]
    pub outbox: PathBuf,
    /// The account store the plan was applied to: every message is checked against it again,
    /// and each message's delivery state is kept in it.
    #[arg(long, value_name = "FILE")]
    pub db: PathBuf,
    /// Audit log (JSON Lines, hash-chained, appended).
    #[arg(long, value_name = "FILE")]
    pub log: PathBuf,
    /// The SMTP relay, HOST:PORT [default: the config's `[smtp] server`].
    #[arg(long, value_name = "HOST:PORT")]
    pub smtp: Option<String>,
    /// Connection security: starttls, tls (SMTPS) or none (loopback only) [default: the
    /// config's `[smtp] tls`, else starttls].
    #[arg(long, value_name = "MODE", value_parser = ["starttls", "tls", "none"])]
    pub tls: Option<String>,
    /// File with the SMTP user (first line) and password (second line), mode 0600 [default:
    /// LEAKAUDIT_SMTP_USER and LEAKAUDIT_SMTP_PASSWORD, else the config's `[smtp]
    /// credentials`].
    #[arg(long, value_name = "FILE")]
    pub smtp_credentials: Option<PathBuf>,
    /// Extra trusted CA certificates (PEM) for the relay [default: the config's `[smtp] ca`].
    #[arg(long, value_name = "FILE")]
    pub smtp_ca: Option<PathBuf>,
    /// Seconds to wait for the relay per step [default: the config's, else 60].
    #[arg(long, value_name = "SECS")]
    pub smtp_timeout: Option<u64>,
    /// At most this many messages: N/s or N/m [default: the config's `[smtp] rate`, else no
    /// limit].
    #[arg(long, value_name = "N/s")]
    pub rate: Option<String>,
    /// Send at most N messages in this run (the rest by the next run).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Send again the messages the relay refused for good (5xx) in an earlier run.
    #[arg(long)]
    pub retry_failed: bool,
    /// Send redacted copies (no reset link, no token) of one message per language and kind to
    /// these addresses only, then stop.
    #[arg(long, value_name = "ADDR,...", value_delimiter = ',', num_args = 1.., conflicts_with_all = ["canary_confirmed", "no_canary"])]
    pub canary: Vec<String>,
    /// The canary copies were looked at: send for real (requires an accepted canary copy).
    #[arg(long, conflicts_with = "no_canary")]
    pub canary_confirmed: bool,
    /// Send without the canary step.
    #[arg(long)]
    pub no_canary: bool,
    /// Decide on messages left in doubt by a killed send (after checking the relay's log for
    /// their Message-ID): sent (the relay has them) or resend.
    #[arg(long, value_name = "DECISION", value_parser = ["sent", "resend"])]
    pub resolve_in_doubt: Option<String>,
    /// With --resolve-in-doubt: only the message with this Message-ID (repeatable).
    #[arg(long, value_name = "ID", requires = "resolve_in_doubt")]
    pub message_id: Vec<String>,
    /// No progress bar, no summary, no warnings; errors are still printed.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub org: OrgArgs,
    #[command(flatten)]
    pub rules: RulesArgs,
}

pub fn run(a: SendArgs) -> anyhow::Result<u8> {
    let run = RunConfig::resolve(&a.org, &a.rules, &Default::default())?;
    let cfg = load_smtp(&run)?;
    let smtp = settings(&a, &cfg)?;
    let rate = match a.rate.as_deref().or(cfg.rate.as_deref()) {
        Some(r) => Some(parse_rate(r).map_err(|e| anyhow::anyhow!("--rate {r}: {e}"))?),
        None => None,
    };
    let canary = if !a.canary.is_empty() {
        CanaryStep::Send(a.canary.clone())
    } else if a.canary_confirmed {
        CanaryStep::Confirmed
    } else if a.no_canary {
        CanaryStep::Skip
    } else if a.resolve_in_doubt.is_some() {
        // A decision alone sends nothing new without the canary decision; it is recorded and
        // the run stops after the summary of the stored states.
        CanaryStep::Skip
    } else {
        anyhow::bail!(
            "send a canary first: --canary ADDR[,ADDR] sends redacted copies to your team; then --canary-confirmed sends for real (or --no-canary to skip the step deliberately)"
        );
    };
    let resolve = a.resolve_in_doubt.as_deref().map(|d| {
        let how = if d == "sent" {
            Resolution::Sent
        } else {
            Resolution::Resend
        };
        (how, a.message_id.clone())
    });
    let engine = run.engine()?;
    let only_resolve = a.resolve_in_doubt.is_some() && !a.canary_confirmed && !a.no_canary;
    let opts = SendOptions {
        smtp,
        log: a.log.clone(),
        gate: OutboxGate::new(&engine),
        rate,
        retry_failed: a.retry_failed,
        // Resolving alone sends nothing: the decision is recorded, the states shown.
        limit: if only_resolve { Some(0) } else { a.limit },
        canary,
        resolve_in_doubt: resolve,
    };
    let mut store = store::open(&a.db)?;
    let bar = Bar::new(a.quiet);
    let outcome = send::send(&Outbox::new(&a.outbox), &mut *store, &opts, &mut |ev| {
        bar.event(ev)
    });
    bar.finish();
    let outcome = match outcome {
        Err(e @ leakaudit_remediation::Error::Locked { .. }) => {
            anyhow::bail!("{e}")
        }
        r => r?,
    };
    Ok(match outcome {
        SendOutcome::Refused(list) => {
            for r in &list {
                eprintln!("refused: {}: {}", r.path.display(), r.reasons.join("; "));
            }
            eprintln!(
                "nothing sent: {} message(s) failed the check before sending",
                list.len()
            );
            EXIT_VIOLATION
        }
        SendOutcome::Canary(c) => canary_summary(&c, &a),
        SendOutcome::Sent(r) => summary(&r, &a),
    })
}

/// The relay settings: flags over the config.
fn settings(a: &SendArgs, cfg: &SmtpConfig) -> anyhow::Result<SmtpSettings> {
    let server = a.smtp.as_deref().or(cfg.server.as_deref()).context(
        "no SMTP relay: give --smtp HOST:PORT or `server` in the [smtp] table of leakaudit.toml",
    )?;
    let (host, port) = split_server(server)?;
    let tls_name = a
        .tls
        .as_deref()
        .or(cfg.tls.as_deref())
        .unwrap_or("starttls");
    let tls = TlsMode::parse(tls_name)
        .with_context(|| format!("[smtp] tls = {tls_name:?}: use starttls, tls or none"))?;
    let ca_path = a.smtp_ca.as_deref().or(cfg.ca.as_deref());
    let ca_pem = ca_path
        .map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
        .transpose()?;
    Ok(SmtpSettings {
        host,
        port,
        tls,
        credentials: credentials(a, cfg)?,
        timeout: Duration::from_secs(a.smtp_timeout.or(cfg.timeout_secs).unwrap_or(60).max(1)),
        ca_pem,
    })
}

fn split_server(s: &str) -> anyhow::Result<(String, u16)> {
    let (host, port) = s
        .rsplit_once(':')
        .with_context(|| format!("SMTP relay `{s}`: give it as HOST:PORT"))?;
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .with_context(|| format!("SMTP relay `{s}`: `{port}` is not a port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    anyhow::ensure!(!host.is_empty(), "SMTP relay `{s}`: no host");
    Ok((host.to_string(), port))
}

/// The login: a file (flag, else env, else the config's file); never the command line.
fn credentials(a: &SendArgs, cfg: &SmtpConfig) -> anyhow::Result<Option<Credentials>> {
    if let Some(p) = &a.smtp_credentials {
        return read_credentials(p).map(Some);
    }
    let user = std::env::var("LEAKAUDIT_SMTP_USER").ok();
    let pass = std::env::var("LEAKAUDIT_SMTP_PASSWORD").ok();
    match (user, pass) {
        (Some(u), Some(p)) => return Ok(Some(Credentials::new(u, p))),
        (None, None) => {}
        _ => anyhow::bail!("set both LEAKAUDIT_SMTP_USER and LEAKAUDIT_SMTP_PASSWORD, or neither"),
    }
    cfg.credentials.as_deref().map(read_credentials).transpose()
}

fn read_credentials(path: &Path) -> anyhow::Result<Credentials> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    anyhow::ensure!(
        meta.permissions().mode() & 0o077 == 0,
        "{}: the SMTP credentials file is readable by others; `chmod 600` it",
        path.display()
    );
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines();
    match (lines.next(), lines.next()) {
        (Some(u), Some(p)) if !u.trim().is_empty() && !p.is_empty() => {
            Ok(Credentials::new(u.trim().to_string(), p.to_string()))
        }
        _ => anyhow::bail!(
            "{}:1: expected the SMTP user on the first line and the password on the second",
            path.display()
        ),
    }
}

/// `10/s`, `600/m` or `10` (per second) -> messages per second.
fn parse_rate(s: &str) -> Result<f64, String> {
    let (n, per) = match s.trim().split_once('/') {
        Some((n, unit)) => (n, unit.trim()),
        None => (s.trim(), "s"),
    };
    let n: f64 = n
        .trim()
        .parse()
        .map_err(|_| "give it as N/s or N/m".to_string())?;
    if !(n.is_finite() && n > 0.0) {
        return Err("the rate must be positive".into());
    }
    match per {
        "s" => Ok(n),
        "m" => Ok(n / 60.0),
        _ => Err("the unit must be s or m".into()),
    }
}

/// Messages sent so far (hidden when quiet or stderr is not a terminal).
struct Bar(Option<ProgressBar>);

impl Bar {
    fn new(quiet: bool) -> Bar {
        if quiet || !std::io::stderr().is_terminal() {
            return Bar(None);
        }
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{prefix:>8} [{elapsed_precise}] {bar:30} {pos}/{len} ({per_sec}) {msg}",
        ) {
            bar.set_style(style);
        }
        bar.set_prefix("send");
        bar.enable_steady_tick(Duration::from_millis(200));
        Bar(Some(bar))
    }

    fn event(&self, ev: SendEvent<'_>) {
        let Some(bar) = &self.0 else { return };
        match ev {
            SendEvent::Start { messages } => bar.set_length(messages as u64),
            SendEvent::Done(r) => {
                bar.inc(1);
                if r.status != Status::Sent && r.status != Status::AlreadySent {
                    bar.set_message(format!("last: {} {:?}", r.account, r.status));
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// One line for `remediate status`: the stored delivery states of a plan.
pub fn delivery_counts(rows: &[leakaudit_remediation::store::DeliveryRow]) -> String {
    use leakaudit_remediation::store::DeliveryState as D;
    let canary = |r: &&leakaudit_remediation::store::DeliveryRow| {
        r.message_key.starts_with(send::CANARY_KEY_PREFIX)
    };
    let real: Vec<_> = rows.iter().filter(|r| !canary(r)).collect();
    let n = |s: D| real.iter().filter(|r| r.state == s).count();
    format!(
        "send: sent {}, deferred {}, failed {}, in doubt {} (canary copies {})",
        n(D::Sent),
        n(D::Deferred),
        n(D::Failed),
        n(D::Sending),
        rows.iter().filter(canary).count()
    )
}

fn line(r: &MessageResult) -> String {
    format!(
        "account {} {}: {}",
        r.account,
        r.key,
        match (&r.reply, r.status) {
            (Some(reply), _) => reply.as_str(),
            (None, Status::NotAttempted) => "not attempted in this run",
            (None, _) => "no reply recorded",
        }
    )
}

fn summary(r: &SendReport, a: &SendArgs) -> u8 {
    let c = |s| r.count(s);
    let undelivered =
        c(Status::Deferred) + c(Status::Failed) + c(Status::InDoubt) + c(Status::NotAttempted);
    for x in r.results.iter().filter(|x| x.status == Status::Failed) {
        eprintln!("failed: {} (not retried without --retry-failed)", line(x));
    }
    for x in r.results.iter().filter(|x| x.status == Status::InDoubt) {
        eprintln!("in doubt: {}", line(x));
    }
    if !a.quiet {
        for x in r.results.iter().filter(|x| x.status == Status::Deferred) {
            eprintln!("deferred: {} (sent by the next run)", line(x));
        }
        eprintln!(
            "plan {}: {} message(s): sent {}, already sent {}, deferred {}, failed {}, in doubt {}, not attempted {}{}{}",
            r.plan,
            r.results.len(),
            c(Status::Sent),
            c(Status::AlreadySent),
            c(Status::Deferred),
            c(Status::Failed),
            c(Status::InDoubt),
            c(Status::NotAttempted),
            if r.resolved > 0 { format!(", resolved {}", r.resolved) } else { String::new() },
            if r.recovered_log_entries > 0 {
                format!(", log entries recovered {}", r.recovered_log_entries)
            } else {
                String::new()
            },
        );
    }
    if let Some(why) = &r.stopped {
        eprintln!("error: stopped: {why}");
    }
    if c(Status::InDoubt) > 0 {
        eprintln!(
            "{} message(s) in doubt: a previous send was killed during their SMTP transaction, so the relay may have them. Look for their Message-ID in the relay's log, then run `remediate send ... --resolve-in-doubt sent` (it has them) or `--resolve-in-doubt resend` (it has not), with --message-id ID to decide one at a time",
            c(Status::InDoubt)
        );
    }
    if !r.failed_in_apply.is_empty() {
        eprintln!(
            "error: {} account(s) or notice(s) failed in apply and were not sent: {}; see `remediate status`",
            r.failed_in_apply.len(),
            crate::term::clean(
                &r.failed_in_apply
                    .iter()
                    .take(10)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        );
    }
    if undelivered == 0 && r.failed_in_apply.is_empty() {
        EXIT_CLEAN
    } else {
        EXIT_ERROR
    }
}

fn canary_summary(c: &CanaryReport, a: &SendArgs) -> u8 {
    let sent = c
        .results
        .iter()
        .filter(|r| r.status == Status::Sent)
        .count();
    for r in c.results.iter().filter(|r| r.status != Status::Sent) {
        eprintln!("canary copy not sent: {}", line(r));
    }
    if let Some(why) = &c.stopped {
        eprintln!("error: stopped: {why}");
    }
    if sent == c.results.len() && sent > 0 {
        if !a.quiet {
            eprintln!(
                "canary: {sent} redacted cop(ies) of plan {} sent to {} address(es); no user was mailed. Look at them, then send for real with `leakaudit remediate send --outbox {} --db {} --log {} --canary-confirmed`",
                c.plan,
                c.addresses,
                a.outbox.display(),
                a.db.display(),
                a.log.display()
            );
        }
        EXIT_CLEAN
    } else {
        EXIT_ERROR
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_servers_parse() {
        assert_eq!(parse_rate("10/s"), Ok(10.0));
        assert_eq!(parse_rate("120/m"), Ok(2.0));
        assert_eq!(parse_rate("4"), Ok(4.0));
        assert!(parse_rate("0/s").is_err());
        assert!(parse_rate("5/h").is_err());
        assert_eq!(
            split_server("mail.example.com:587").unwrap(),
            ("mail.example.com".to_string(), 587)
        );
        assert_eq!(split_server("[::1]:25").unwrap(), ("::1".to_string(), 25));
        assert!(split_server("mail.example.com").is_err());
        assert!(split_server("mail.example.com:0").is_err());
    }

    #[test]
    fn credentials_file_must_be_private_and_complete() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("creds");
        std::fs::write(&p, "relay-user\nsecret pass\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_credentials(&p).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let c = read_credentials(&p).unwrap();
        assert_eq!(c.user, "relay-user");
        std::fs::write(&p, "only-user\n").unwrap();
        let err = read_credentials(&p).unwrap_err().to_string();
        assert!(err.contains(":1: expected"), "{err}");
        assert!(!err.contains("only-user"));
    }
}
