//! The executor of `remediate apply` and `incident --apply`: flags over the `[executor]`
//! table of `leakaudit.toml` over the defaults, validated into the library's
//! [`ExecutorConfig`]. The webhook secret comes from a file or the environment, never from
//! the command line or `leakaudit.toml` itself.
//!
//! ```toml
//! [executor]
//! kind = "webhook"                    # or "local" (default)
//! url = "https://idp.example/leakaudit/actions"
//! secret_file = "/etc/leakaudit/webhook.secret"   # relative to this file
//! send_token = true                   # hand leakaudit's reset link to the system of record
//! rate = 10                           # requests per second
//! timeout = "10s"
//! max_attempts = 6
//! backoff_base = "500ms"
//! backoff_max = "30s"
//! ```

use crate::config::RunConfig;
use anyhow::Context;
use leakaudit_remediation::executor::{
    Backoff, ExecutorConfig, Secret, WebhookConfig, DEFAULT_BACKOFF, SECRET_ENV,
};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorKind {
    /// leakaudit's own account store only.
    Local,
    /// The organisation's endpoint, one signed POST per reset and review action.
    Webhook,
}

#[derive(clap::Args, Clone, Debug, Default)]
pub struct ExecutorArgs {
    /// Who performs password resets and reviews: `local` (leakaudit's store only) or
    /// `webhook` (the organisation's system of record; README, "Webhook executor").
    /// Default: `kind` of [executor] in leakaudit.toml, else local.
    #[arg(long, value_enum, value_name = "KIND")]
    pub executor: Option<ExecutorKind>,
    /// The webhook endpoint: https, or http to a loopback address only.
    #[arg(long, value_name = "URL")]
    pub webhook_url: Option<String>,
    /// File holding the webhook's HMAC secret (else $LEAKAUDIT_WEBHOOK_SECRET, else
    /// `secret_file` of [executor]).
    #[arg(long, value_name = "FILE")]
    pub webhook_secret_file: Option<PathBuf>,
    /// Webhook requests per second at most (default 10).
    #[arg(long, value_name = "PER_SEC")]
    pub webhook_rate: Option<f64>,
    /// Timeout of one webhook request: 10s, 500ms, 1m (default 10s).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub webhook_timeout: Option<Duration>,
    /// Hand leakaudit's reset link to the system of record (needed when the notifications
    /// carry it; `send_token` of [executor]).
    #[arg(long)]
    pub webhook_send_token: bool,
}

impl ExecutorArgs {
    fn any_webhook_flag(&self) -> Option<&'static str> {
        [
            (self.webhook_url.is_some(), "--webhook-url"),
            (self.webhook_secret_file.is_some(), "--webhook-secret-file"),
            (self.webhook_rate.is_some(), "--webhook-rate"),
            (self.webhook_timeout.is_some(), "--webhook-timeout"),
            (self.webhook_send_token, "--webhook-send-token"),
        ]
        .into_iter()
        .find_map(|(given, name)| given.then_some(name))
    }
}

/// The `[executor]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Section {
    kind: Option<ExecutorKind>,
    url: Option<String>,
    secret_file: Option<PathBuf>,
    send_token: Option<bool>,
    rate: Option<f64>,
    timeout: Option<String>,
    max_attempts: Option<u32>,
    backoff_base: Option<String>,
    backoff_max: Option<String>,
}

/// `500ms`, `10s`, `2m`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (500ms, 10s, 2m)"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        _ => return Err(format!("`{s}`: unit must be ms, s or m")),
    };
    if d.is_zero() {
        return Err(format!("`{s}`: the duration must be positive"));
    }
    Ok(d)
}

/// The executor for this run.
pub fn resolve(args: &ExecutorArgs, run: &RunConfig) -> anyhow::Result<ExecutorConfig> {
    let where_ = || match &run.config_path {
        Some(p) => format!("[executor] of {}", p.display()),
        None => "[executor]".to_string(),
    };
    let section: Section = match &run.cfg.executor {
        Some(t) => serde_json::to_value(t)
            .and_then(serde_json::from_value)
            .with_context(where_)?,
        None => Section::default(),
    };
    let kind = args
        .executor
        .or(section.kind)
        .unwrap_or(ExecutorKind::Local);
    if kind == ExecutorKind::Local {
        if let Some(flag) = args.any_webhook_flag() {
            anyhow::bail!("{flag} needs --executor webhook (or kind = \"webhook\" in [executor])");
        }
        return Ok(ExecutorConfig::Local);
    }
    let url = args
        .webhook_url
        .clone()
        .or(section.url.clone())
        .with_context(|| {
            format!(
                "--executor webhook needs --webhook-url URL (or url in {})",
                where_()
            )
        })?;
    let base = run
        .config_path
        .as_deref()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."));
    let secret = if let Some(f) = &args.webhook_secret_file {
        secret_file(f)?
    } else if let Some(v) = std::env::var_os(SECRET_ENV) {
        Secret::new(&v.to_string_lossy(), &format!("${SECRET_ENV}"))?
    } else if let Some(f) = &section.secret_file {
        secret_file(&base.join(f))?
    } else {
        anyhow::bail!(
            "--executor webhook needs its secret: --webhook-secret-file FILE, ${SECRET_ENV}, or secret_file in {}",
            where_()
        );
    };
    let mut cfg = WebhookConfig::new(url, secret);
    cfg.send_token = args.webhook_send_token || section.send_token.unwrap_or(false);
    if let Some(r) = args.webhook_rate.or(section.rate) {
        cfg.rate = r;
    }
    let dur = |v: &Option<String>, key: &str| -> anyhow::Result<Option<Duration>> {
        v.as_deref()
            .map(parse_duration)
            .transpose()
            .map_err(|e| anyhow::anyhow!("{key} in {}: {e}", where_()))
    };
    if let Some(t) = args.webhook_timeout.or(dur(&section.timeout, "timeout")?) {
        cfg.timeout = t;
    }
    if let Some(n) = section.max_attempts {
        cfg.max_attempts = n;
    }
    cfg.backoff = Backoff {
        base: dur(&section.backoff_base, "backoff_base")?.unwrap_or(DEFAULT_BACKOFF.base),
        max: dur(&section.backoff_max, "backoff_max")?.unwrap_or(DEFAULT_BACKOFF.max),
    };
    cfg.validate()?;
    Ok(ExecutorConfig::Webhook(cfg))
}

fn secret_file(path: &Path) -> anyhow::Result<Secret> {
    let secret = Secret::from_file(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0) {
            eprintln!(
                "warning: webhook secret file {} is readable by other users (chmod 600 it)",
                path.display()
            );
        }
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        for bad in ["", "0s", "ten", "5h", "-1s", "1.5s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
