//! The webhook client: one signed POST per action, paced by the rate limit, retried with
//! backoff on 5xx, 408, 429, timeouts and connection errors.

use super::backoff::random_unit;
use super::{excerpt, sign, WebhookConfig};
use crate::error::Result;
use serde::Serialize;
use std::io::Read;
use std::time::{Duration, Instant};

/// The `schema` of every request body (its `version` is 1).
pub const BODY_SCHEMA: &str = "leakaudit-webhook-action";

/// Bytes of a response read for its excerpt (the rest is never read).
const READ_LIMIT: u64 = 4096;

/// One action to perform at the system of record.
#[derive(Debug, Clone, Serialize)]
pub struct ActionCall<'a> {
    pub action_id: &'a str,
    pub account_id: &'a str,
    /// `force-password-reset` or `human-review`.
    pub kind: &'a str,
    pub plan_hash: &'a str,
    /// leakaudit's reset link (only with `send_token`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reset_link: Option<&'a str>,
    /// When that link expires (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reset_expires_at: Option<&'a str>,
    /// Why a review was planned (`rule: reason`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review_reason: Option<&'a str>,
}

#[derive(Serialize)]
struct Body<'a> {
    schema: &'static str,
    version: u32,
    #[serde(flatten)]
    call: &'a ActionCall<'a>,
}

/// How one action ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOutcome {
    /// 2xx: performed (or already performed, deduplicated by the receiver).
    Accepted { status: u16, excerpt: String },
    /// A final refusal (4xx other than 408/429, or a redirect, which is never followed).
    Rejected { status: u16, excerpt: String },
    /// Still failing after every attempt (5xx, 408, 429, timeout, connection error).
    Unavailable { attempts: u32, last: String },
}

impl CallOutcome {
    /// `webhook <status>: <excerpt>` (or the last error), for the store and the audit log.
    pub fn describe(&self) -> String {
        match self {
            CallOutcome::Accepted { status, excerpt }
            | CallOutcome::Rejected { status, excerpt } => {
                format!("webhook {status}: {excerpt}")
            }
            CallOutcome::Unavailable { attempts, last } => {
                format!("webhook unavailable after {attempts} attempt(s): {last}")
            }
        }
    }
}

/// One HTTP attempt, for progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt<'a> {
    pub action_id: &'a str,
    /// 1 for the first.
    pub attempt: u32,
    /// The response status, `None` for a timeout or connection error.
    pub status: Option<u16>,
    /// Waiting this long before the next attempt (`None`: no retry follows).
    pub retry_in: Option<Duration>,
}

/// The webhook executor of one run.
pub struct Webhook {
    cfg: WebhookConfig,
    agent: ureq::Agent,
    interval: Duration,
    next_slot: Option<Instant>,
    /// HTTP requests sent in this run.
    pub requests: u64,
}

enum Try {
    Final(CallOutcome),
    Transient {
        status: Option<u16>,
        reason: String,
        retry_after: Option<Duration>,
    },
}

impl Webhook {
    /// A client for validated settings.
    pub fn new(cfg: WebhookConfig) -> Result<Webhook> {
        cfg.validate()?;
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(cfg.timeout))
            .http_status_as_error(false)
            // A redirect would carry a signed body (maybe a reset link) to another place.
            .max_redirects(0)
            .max_redirects_will_error(false)
            // The endpoint is named explicitly; an environment proxy is not asked.
            .proxy(None)
            .user_agent(concat!("leakaudit/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        let interval = Duration::from_secs_f64(1.0 / cfg.rate);
        Ok(Webhook {
            cfg,
            agent,
            interval,
            next_slot: None,
            requests: 0,
        })
    }

    pub fn config(&self) -> &WebhookConfig {
        &self.cfg
    }

    /// Performs one action: attempts until accepted, refused, or out of attempts.
    pub fn perform(
        &mut self,
        call: &ActionCall<'_>,
        on_attempt: &mut dyn FnMut(Attempt<'_>),
    ) -> CallOutcome {
        let body = serde_json::to_vec(&Body {
            schema: BODY_SCHEMA,
            version: 1,
            call,
        })
        .expect("the body is plain strings");
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            self.pace();
            match self.send_once(call.action_id, &body) {
                Try::Final(outcome) => {
                    let status = match &outcome {
                        CallOutcome::Accepted { status, .. }
                        | CallOutcome::Rejected { status, .. } => Some(*status),
                        CallOutcome::Unavailable { .. } => None,
                    };
                    on_attempt(Attempt {
                        action_id: call.action_id,
                        attempt,
                        status,
                        retry_in: None,
                    });
                    return outcome;
                }
                Try::Transient {
                    status,
                    reason,
                    retry_after,
                } => {
                    if attempt >= self.cfg.max_attempts {
                        on_attempt(Attempt {
                            action_id: call.action_id,
                            attempt,
                            status,
                            retry_in: None,
                        });
                        return CallOutcome::Unavailable {
                            attempts: attempt,
                            last: reason,
                        };
                    }
                    let wait =
                        self.cfg
                            .backoff
                            .delay_with_hint(attempt, random_unit(), retry_after);
                    on_attempt(Attempt {
                        action_id: call.action_id,
                        attempt,
                        status,
                        retry_in: Some(wait),
                    });
                    std::thread::sleep(wait);
                }
            }
        }
    }

    /// Waits for this request's slot under the rate limit.
    fn pace(&mut self) {
        let now = Instant::now();
        let slot = self.next_slot.map_or(now, |s| s.max(now));
        if slot > now {
            std::thread::sleep(slot - now);
        }
        self.next_slot = Some(slot + self.interval);
    }

    fn send_once(&mut self, action_id: &str, body: &[u8]) -> Try {
        self.requests += 1;
        let ts = chrono::Utc::now().timestamp();
        let signature = sign::header_value(self.cfg.secret.bytes(), ts, body);
        let sent = self
            .agent
            .post(&self.cfg.url)
            .header("Content-Type", "application/json")
            .header("X-Leakaudit-Timestamp", ts.to_string())
            .header("X-Leakaudit-Signature", signature)
            .header("Idempotency-Key", action_id)
            .send(body);
        let resp = match sent {
            Ok(r) => r,
            Err(e) => {
                return Try::Transient {
                    status: None,
                    reason: excerpt(e.to_string().as_bytes()),
                    retry_after: None,
                }
            }
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut text = Vec::new();
        let read = resp
            .into_body()
            .into_reader()
            .take(READ_LIMIT)
            .read_to_end(&mut text);
        let excerpt = match read {
            Ok(_) => excerpt(&text),
            Err(e) if (200..300).contains(&status) => {
                // Accepted is accepted even if the body was cut off.
                excerpt(format!("(body unreadable: {e})").as_bytes())
            }
            Err(e) => {
                return Try::Transient {
                    status: Some(status),
                    reason: excerpt(format!("{status}, body unreadable: {e}").as_bytes()),
                    retry_after,
                }
            }
        };
        match status {
            200..=299 => Try::Final(CallOutcome::Accepted { status, excerpt }),
            408 | 429 | 500..=599 => Try::Transient {
                status: Some(status),
                reason: format!("{status}: {excerpt}"),
                retry_after,
            },
            _ => Try::Final(CallOutcome::Rejected { status, excerpt }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::{Backoff, Secret};
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    /// A one-thread HTTP responder on loopback answering each connection with the next of
    /// `answers` (status, body), and returning the request heads it saw.
    fn responder(
        answers: Vec<(u16, &'static str)>,
    ) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", l.local_addr().unwrap());
        let h = std::thread::spawn(move || {
            let mut heads = Vec::new();
            for (status, body) in answers {
                let (s, _) = l.accept().unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut head = String::new();
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    r.read_line(&mut line).unwrap();
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                    if line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                let mut b = vec![0; len];
                r.read_exact(&mut b).unwrap();
                head.push_str(&String::from_utf8(b).unwrap());
                heads.push(head);
                let mut s = s;
                write!(
                    s,
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .unwrap();
            }
            heads
        });
        (url, h)
    }

    fn client(url: &str) -> Webhook {
        let mut cfg = WebhookConfig::new(url, Secret::new("s3cret", "test").unwrap());
        cfg.rate = 1000.0;
        cfg.max_attempts = 3;
        cfg.backoff = Backoff {
            base: Duration::from_millis(1),
            max: Duration::from_millis(4),
        };
        Webhook::new(cfg).unwrap()
    }

    const CALL: ActionCall<'static> = ActionCall {
        action_id: "force-password-reset:acc-1",
        account_id: "acc-1",
        kind: "force-password-reset",
        plan_hash: "abc",
        reset_link: None,
        reset_expires_at: None,
        review_reason: None,
    };

    #[test]
    fn retries_503_then_accepts_with_the_same_key_and_fresh_signature() {
        let (url, h) = responder(vec![(503, "busy"), (429, ""), (200, "{\"ok\":true}\n")]);
        let mut w = client(&url);
        let mut seen = Vec::new();
        let out = w.perform(&CALL, &mut |a| {
            seen.push((a.attempt, a.status, a.retry_in.is_some()))
        });
        assert_eq!(
            out,
            CallOutcome::Accepted {
                status: 200,
                excerpt: "{\"ok\":true}".into()
            }
        );
        assert_eq!(out.describe(), "webhook 200: {\"ok\":true}");
        assert_eq!(
            seen,
            vec![
                (1, Some(503), true),
                (2, Some(429), true),
                (3, Some(200), false)
            ]
        );
        let heads = h.join().unwrap();
        assert_eq!(heads.len(), 3);
        for head in &heads {
            let lower = head.to_ascii_lowercase();
            assert!(
                lower.contains("idempotency-key: force-password-reset:acc-1"),
                "{head}"
            );
            let ts: i64 = header(head, "x-leakaudit-timestamp").parse().unwrap();
            let body = &head[head.find('{').unwrap()..];
            assert_eq!(
                header(head, "x-leakaudit-signature"),
                sign::header_value(b"s3cret", ts, body.as_bytes())
            );
            let v: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(v["schema"], BODY_SCHEMA);
            assert_eq!(v["version"], 1);
            assert_eq!(v["action_id"], "force-password-reset:acc-1");
            assert!(v.get("reset_link").is_none(), "no link unless given");
        }
    }

    fn header(head: &str, name: &str) -> String {
        head.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
            .unwrap_or_default()
    }

    #[test]
    fn a_4xx_is_final_and_a_persistent_5xx_runs_out_of_attempts() {
        let (url, h) = responder(vec![(422, "unknown account\n\x1b[2J")]);
        let mut w = client(&url);
        let out = w.perform(&CALL, &mut |_| {});
        assert_eq!(out.describe(), "webhook 422: unknown account\\n\\u{1b}[2J");
        assert!(matches!(out, CallOutcome::Rejected { status: 422, .. }));
        h.join().unwrap();

        let (url, h) = responder(vec![(500, "a"), (502, "b"), (504, "c")]);
        let mut w = client(&url);
        let out = w.perform(&CALL, &mut |_| {});
        assert_eq!(
            out,
            CallOutcome::Unavailable {
                attempts: 3,
                last: "504: c".into()
            }
        );
        assert_eq!(h.join().unwrap().len(), 3);
        assert_eq!(w.requests, 3);
    }

    #[test]
    fn connection_refused_is_retried_then_unavailable() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut w = client(&format!("http://127.0.0.1:{port}/hook"));
        let mut n = 0;
        let out = w.perform(&CALL, &mut |a| {
            n += 1;
            assert_eq!(a.status, None);
        });
        assert!(
            matches!(out, CallOutcome::Unavailable { attempts: 3, .. }),
            "{out:?}"
        );
        assert_eq!(n, 3);
    }
}
