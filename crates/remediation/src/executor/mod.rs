//! Who performs a plan's reset and review actions: leakaudit's own store (`local`), or the
//! organisation's system of record through a signed webhook (`webhook`).
//!
//! The seam sits inside `apply`'s per-account step, between staging the notification and the
//! store transaction: with `webhook`, every reset and review action of the account is POSTed
//! first; only when all of them were accepted (2xx) is the account committed in the store
//! (the outcome `webhook <status>: <excerpt>` kept as the actions' detail and in the audit
//! log). A refusal (4xx other than 408/429) fails the account's actions with the reason; an
//! endpoint that stays unavailable after the retries stops the run (exit 2), leaving the
//! rest pending. Reruns skip done actions and resend unfinished ones with the same
//! `Idempotency-Key` (the action id): the receiver must deduplicate (README, *Webhook
//! executor*).

pub mod backoff;
pub mod sign;
mod webhook;

pub use backoff::Backoff;
pub use webhook::{ActionCall, Attempt, CallOutcome, Webhook, BODY_SCHEMA};

use crate::error::{Error, Result};
use crate::plan::Action;
use crate::policy::ActionKind;
use std::path::Path;
use std::time::Duration;

/// The environment variable holding the webhook secret (the alternative to a file).
pub const SECRET_ENV: &str = "LEAKAUDIT_WEBHOOK_SECRET";
/// Default requests per second.
pub const DEFAULT_RATE: f64 = 10.0;
/// Default timeout of one request (connect, send, response).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default attempts per action (the first plus retries).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 6;
/// Default backoff: 0.5 s doubling up to 30 s (six attempts span about a minute).
pub const DEFAULT_BACKOFF: Backoff = Backoff {
    base: Duration::from_millis(500),
    max: Duration::from_secs(30),
};
/// Longest response excerpt kept in the store and the audit log, in characters.
pub const EXCERPT_CHARS: usize = 200;

/// The HMAC key. Never printed: its `Debug` says only how long it is.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret(<{} bytes>)", self.0.len())
    }
}

impl Secret {
    /// A secret from its text (a trailing newline, as editors write one, is not part of it);
    /// empty is refused.
    pub fn new(text: &str, source: &str) -> Result<Secret> {
        let s = text.trim_end_matches(['\n', '\r']);
        if s.trim().is_empty() {
            return Err(Error::Setting(format!(
                "webhook secret from {source} is empty"
            )));
        }
        Ok(Secret(s.as_bytes().to_vec()))
    }

    /// Reads the secret from a file.
    pub fn from_file(path: &Path) -> Result<Secret> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Secret::new(&text, &path.display().to_string())
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// The webhook executor's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookConfig {
    /// The endpoint: `https://...`, or `http://` to a loopback address only.
    pub url: String,
    pub secret: Secret,
    /// Hand leakaudit's reset link to the system of record (which then honours that token).
    pub send_token: bool,
    /// Requests per second at most.
    pub rate: f64,
    /// One request's timeout.
    pub timeout: Duration,
    /// Attempts per action, the first included.
    pub max_attempts: u32,
    pub backoff: Backoff,
}

impl WebhookConfig {
    /// Settings with the defaults for rate, timeout and retries.
    pub fn new(url: impl Into<String>, secret: Secret) -> WebhookConfig {
        WebhookConfig {
            url: url.into(),
            secret,
            send_token: false,
            rate: DEFAULT_RATE,
            timeout: DEFAULT_TIMEOUT,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            backoff: DEFAULT_BACKOFF,
        }
    }

    /// Checks the URL (scheme, loopback rule) and the numbers.
    pub fn validate(&self) -> Result<()> {
        check_url(&self.url)?;
        if !(self.rate.is_finite() && self.rate > 0.0) {
            return Err(Error::Setting(format!(
                "webhook rate {} must be a positive number of requests per second",
                self.rate
            )));
        }
        if self.timeout.is_zero() {
            return Err(Error::Setting("webhook timeout must be positive".into()));
        }
        if self.max_attempts == 0 {
            return Err(Error::Setting(
                "webhook max_attempts must be at least 1".into(),
            ));
        }
        if self.backoff.base.is_zero() || self.backoff.max < self.backoff.base {
            return Err(Error::Setting(
                "webhook backoff: base must be positive and at most the maximum".into(),
            ));
        }
        Ok(())
    }
}

/// Who performs reset and review actions.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum ExecutorConfig {
    /// leakaudit's own account store only.
    #[default]
    Local,
    Webhook(WebhookConfig),
}

impl ExecutorConfig {
    pub fn name(&self) -> &'static str {
        match self {
            ExecutorConfig::Local => "local",
            ExecutorConfig::Webhook(_) => "webhook",
        }
    }
}

/// What the system of record said to one account's reset and review actions.
pub(crate) enum AccountCalls {
    /// Every call accepted: `(action id, outcome)` for each action performed remotely.
    Done(Vec<(String, String)>),
    /// One was refused: the reason (action id and answer); later ones were not sent.
    Refused(String),
    /// The endpoint stayed unavailable: the run stops.
    Unavailable(String),
}

/// Sends the account's reset and review actions, in plan order, stopping at the first one
/// that is not accepted. `reset` is leakaudit's link and its expiry, handed over only with
/// `send_token`.
pub(crate) fn perform_account(
    w: &mut Webhook,
    plan_hash: &str,
    actions: &[&Action],
    reset: Option<(&str, &str)>,
    on_attempt: &mut dyn FnMut(Attempt<'_>),
) -> AccountCalls {
    let send_token = w.config().send_token;
    let mut done = Vec::new();
    for a in actions {
        let review_reason;
        let call = match a.kind {
            ActionKind::ForcePasswordReset => ActionCall {
                action_id: &a.id,
                account_id: &a.account,
                kind: a.kind.as_str(),
                plan_hash,
                reset_link: reset.filter(|_| send_token).map(|r| r.0),
                reset_expires_at: reset.filter(|_| send_token).map(|r| r.1),
                review_reason: None,
            },
            ActionKind::HumanReview => {
                review_reason = format!("{}: {}", a.rule, a.reason);
                ActionCall {
                    action_id: &a.id,
                    account_id: &a.account,
                    kind: a.kind.as_str(),
                    plan_hash,
                    reset_link: None,
                    reset_expires_at: None,
                    review_reason: Some(&review_reason),
                }
            }
            _ => continue,
        };
        let outcome = w.perform(&call, on_attempt);
        match outcome {
            CallOutcome::Accepted { .. } => done.push((a.id.clone(), outcome.describe())),
            CallOutcome::Rejected { .. } => {
                return AccountCalls::Refused(format!("{}: {}", a.id, outcome.describe()))
            }
            CallOutcome::Unavailable { .. } => {
                return AccountCalls::Unavailable(format!("{}: {}", a.id, outcome.describe()))
            }
        }
    }
    AccountCalls::Done(done)
}

/// `https://` anywhere; `http://` only to a loopback host (`localhost`, 127.0.0.0/8, `::1`),
/// since the body can carry a reset link.
pub fn check_url(url: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::Setting(format!("webhook URL `{url}`: {why}")));
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("contains spaces or control characters");
    }
    let Ok(uri) = url.parse::<ureq::http::Uri>() else {
        return bad("not a URL");
    };
    let Some(host) = uri.host().filter(|h| !h.is_empty()) else {
        return bad("no host");
    };
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return bad("credentials in the URL are not allowed (the request is signed instead)");
    }
    match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
        Some("https") => Ok(()),
        Some("http") if is_loopback(host) => Ok(()),
        Some("http") => bad("plain http is allowed only to a loopback address; use https"),
        _ => bad("the scheme must be https (or http to a loopback address)"),
    }
}

fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// At most [`EXCERPT_CHARS`] characters of a response body, control characters escaped
/// (`\n`, `\u{1b}`), so it is safe in a terminal, one log line and a store column.
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out = String::new();
    for (n, c) in text.trim().chars().enumerate() {
        if n == EXCERPT_CHARS {
            out.push('…');
            break;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control()
                || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
            {
                out.push_str(&c.escape_unicode().to_string())
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_https_or_loopback_http_only() {
        for ok in [
            "https://idp.example/leakaudit/actions",
            "HTTPS://idp.example:8443/x",
            "http://127.0.0.1:8080/hook",
            "http://127.8.9.1/hook",
            "http://localhost:3000/",
            "http://[::1]:9000/hook",
        ] {
            assert!(check_url(ok).is_ok(), "{ok}: {:?}", check_url(ok));
        }
        for (bad, why) in [
            ("http://idp.example/hook", "only to a loopback"),
            ("http://10.0.0.1/hook", "only to a loopback"),
            ("http://localhost.evil.example/", "only to a loopback"),
            ("ftp://idp.example/", "scheme must be https"),
            ("idp.example/hook", "not a URL"),
            ("https://", "not a URL"),
            ("https://user:pw@idp.example/", "credentials"),
            ("https://idp.example/a b", "spaces"),
        ] {
            match check_url(bad) {
                Err(Error::Setting(m)) => assert!(m.contains(why), "{bad}: {m}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn secret_is_never_shown_and_never_empty() {
        let s = Secret::new("hunter2-very-secret\n", "test").unwrap();
        assert_eq!(s.bytes(), b"hunter2-very-secret");
        assert!(!format!("{s:?}").contains("hunter2"));
        for empty in ["", "\n", "  \n"] {
            assert!(
                matches!(Secret::new(empty, "env"), Err(Error::Setting(m)) if m.contains("empty"))
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        match Secret::from_file(&missing) {
            Err(Error::Io { path, .. }) => assert_eq!(path, missing),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn config_numbers_are_validated() {
        let secret = Secret::new("k", "t").unwrap();
        let good = WebhookConfig::new("http://127.0.0.1:1/", secret);
        assert!(good.validate().is_ok());
        let mut c = good.clone();
        c.rate = 0.0;
        assert!(c.validate().is_err());
        let mut c = good.clone();
        c.rate = f64::INFINITY;
        assert!(c.validate().is_err());
        let mut c = good.clone();
        c.timeout = Duration::ZERO;
        assert!(c.validate().is_err());
        let mut c = good.clone();
        c.max_attempts = 0;
        assert!(c.validate().is_err());
        let mut c = good;
        c.url = "http://example.com/".into();
        assert!(c.validate().is_err());
    }

    #[test]
    fn excerpt_is_bounded_and_escaped() {
        assert_eq!(excerpt(b"  {\"ok\":true}\n"), "{\"ok\":true}");
        assert_eq!(excerpt(b"a\nb\x1b[31mc\r"), "a\\nb\\u{1b}[31mc");
        assert_eq!(excerpt("x\u{202e}y".as_bytes()), "x\\u{202e}y");
        let long = "é".repeat(1000);
        let e = excerpt(long.as_bytes());
        assert_eq!(e.chars().count(), EXCERPT_CHARS + 1);
        assert!(e.ends_with('…'));
        assert_eq!(excerpt(b"\xff\xfeok"), "\u{fffd}\u{fffd}ok");
    }
}
