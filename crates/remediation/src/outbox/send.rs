//! Send: deliver the released outbox to the organisation's SMTP relay, each message exactly
//! once, resumable after a kill.
//!
//! Every run: every action of the plan done or failed, and released (a failed account's
//! message never is, and the report names it); every released message is
//! checked again ([`check`]: the same store checks as release, plus no `.invalid` placeholder
//! sender or link) and nothing is sent while any fails. Then, per message, in file order:
//!
//! 1. `claim_delivery` (one store transaction): unknown or deferred -> `sending`;
//! 2. one SMTP transaction ([`smtp::Mailer`]);
//! 3. `finish_delivery` with the outcome and the server's reply;
//! 4. one audit entry (`send:<account>`), fsynced, and the plan's audit head.
//!
//! A kill between 1 and 3 leaves the message `sending`: the server may have accepted it, so
//! the next run reports it *in doubt* and never sends it again on its own; a responder checks
//! the relay's log and records the decision (`Resolution`). A kill between 3 and 4 is
//! repaired by the next run (`sent-logged-on-resume`). A `failed` message is retried only
//! when asked (`retry_failed`).
//!
//! The canary step sends redacted copies (no link, no token, no recipient) of one message per
//! language and kind to the team's canary addresses and stops; they are recorded as
//! deliveries under the key `canary:<Message-ID>`, so the real send can require that one was
//! accepted ([`CanaryStep::Confirmed`]).

mod check;
pub mod smtp;

pub use check::{Prepared, REDACTED_LINK};
pub use smtp::{Credentials, Mailer, Outcome, SmtpSettings, TlsMode};

use super::check::OutboxGate;
use super::maildir::Outbox;
use super::release::{Refusal, RefusalKind};
use crate::audit::{read_entries, AuditLog};
use crate::error::{Error, Result};
use crate::store::{lock_store, AccountStore, DeliveryClaim, DeliveryState, LockHolder};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// Delivery keys of canary copies start with this (real keys are Message-IDs, `<...>`).
pub const CANARY_KEY_PREFIX: &str = "canary:";

/// The canary step of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CanaryStep {
    /// Send redacted copies to these addresses only, then stop.
    Send(Vec<String>),
    /// The team looked at the canary copies: send for real (a canary copy must have been
    /// accepted by the server for this plan).
    Confirmed,
    /// Send without a canary (a deliberate choice).
    Skip,
}

/// A responder's decision on messages left in doubt by a killed sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// The relay has it (its log shows the Message-ID): record it as sent.
    Sent,
    /// The relay does not have it: send it again.
    Resend,
}

/// Everything a send run needs.
pub struct SendOptions<'a> {
    pub smtp: SmtpSettings,
    /// The plan's audit log (the one apply wrote).
    pub log: PathBuf,
    pub gate: OutboxGate<'a>,
    /// Messages per second at most.
    pub rate: Option<f64>,
    pub retry_failed: bool,
    /// SMTP transactions at most in this run.
    pub limit: Option<usize>,
    pub canary: CanaryStep,
    /// Resolve in-doubt messages first: all of them, or only these Message-IDs.
    pub resolve_in_doubt: Option<(Resolution, Vec<String>)>,
}

/// Where one message stands after the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Sent,
    AlreadySent,
    Deferred,
    Failed,
    InDoubt,
    NotAttempted,
}

/// One message's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageResult {
    pub account: String,
    pub key: String,
    pub status: Status,
    /// The server's reply (or the connection error), when there is one.
    pub reply: Option<String>,
}

/// Progress of a run, for a progress bar.
#[derive(Debug)]
pub enum SendEvent<'a> {
    Start { messages: usize },
    Done(&'a MessageResult),
}

/// What a real send did.
#[derive(Debug, Clone, Default)]
pub struct SendReport {
    pub plan: String,
    pub results: Vec<MessageResult>,
    /// In-doubt messages resolved by this run's decision.
    pub resolved: usize,
    /// Entries logged for deliveries a killed run had recorded but not logged.
    pub recovered_log_entries: usize,
    /// Why the run stopped early (the relay unreachable, TLS or login refused).
    pub stopped: Option<String>,
    /// Accounts (and notices) whose actions failed in apply: never released, not sent.
    pub failed_in_apply: Vec<String>,
}

impl SendReport {
    pub fn count(&self, s: Status) -> usize {
        self.results.iter().filter(|r| r.status == s).count()
    }
}

/// What a canary step did: one result per copy (account = the copied message's account).
#[derive(Debug, Clone, Default)]
pub struct CanaryReport {
    pub plan: String,
    pub addresses: usize,
    pub results: Vec<MessageResult>,
    pub stopped: Option<String>,
}

#[derive(Debug)]
pub enum SendOutcome {
    /// Nothing sent: these messages failed the re-check.
    Refused(Vec<Refusal>),
    Canary(CanaryReport),
    Sent(SendReport),
}

/// Sends the released outbox (see the module documentation). Holds the store's remediation
/// lock for the whole run, so no apply, release or second send runs beside it.
pub fn send(
    outbox: &Outbox,
    store: &mut dyn AccountStore,
    opts: &SendOptions<'_>,
    on_event: &mut dyn FnMut(SendEvent<'_>),
) -> Result<SendOutcome> {
    let state = match outbox.read_state()? {
        Some(s) if s.complete => s,
        _ => {
            return Ok(SendOutcome::Refused(vec![Refusal {
                kind: RefusalKind::Unsafe,
                path: outbox.state_path(),
                reasons: vec![
                    "the plan is not completely applied: run `remediate apply` and `remediate release` first".into(),
                ],
            }]))
        }
    };
    let mailer = Mailer::new(opts.smtp.clone())?;
    lock_store(
        store,
        &LockHolder::this_process("send", &state.plan),
        Duration::ZERO,
    )?;
    let out = send_locked(outbox, store, opts, &state, mailer, on_event);
    let unlocked = store.unlock();
    let out = out?;
    unlocked?;
    Ok(out)
}

fn send_locked(
    outbox: &Outbox,
    store: &mut dyn AccountStore,
    opts: &SendOptions<'_>,
    state: &super::maildir::ApplyState,
    mut mailer: Mailer,
    on_event: &mut dyn FnMut(SendEvent<'_>),
) -> Result<SendOutcome> {
    let plan = state.plan.clone();
    let now = chrono::Utc::now().timestamp();
    let messages = match check::prepare(outbox, &*store, &opts.gate, state, now)? {
        Ok(m) => m,
        Err(refusals) => return Ok(SendOutcome::Refused(refusals)),
    };
    let head = store.audit_head(&plan)?;
    let mut log = Logger {
        log: AuditLog::open(&opts.log, &plan, head.as_ref())?,
        plan: plan.clone(),
    };
    let recovered = log.recover(store, &opts.log, &messages)?;
    let resolved = match &opts.resolve_in_doubt {
        Some((how, only)) => resolve(store, &mut log, &messages, *how, only)?,
        None => 0,
    };
    let mut pace = Pace::new(opts.rate);
    match &opts.canary {
        CanaryStep::Send(addrs) => {
            return canary(
                store,
                &mut log,
                &mut mailer,
                opts,
                &messages,
                addrs,
                &mut pace,
            )
            .map(SendOutcome::Canary)
        }
        CanaryStep::Confirmed => {
            let accepted = store.deliveries(&plan)?.iter().any(|d| {
                d.message_key.starts_with(CANARY_KEY_PREFIX) && d.state == DeliveryState::Sent
            });
            if !accepted {
                return Err(Error::Setting(format!(
                    "--canary-confirmed: no canary copy of plan {plan} was accepted by the server; send one with --canary ADDR[,ADDR] first (or skip the step deliberately with --no-canary)"
                )));
            }
        }
        CanaryStep::Skip => {}
    }
    on_event(SendEvent::Start {
        messages: messages.len(),
    });
    let mut report = SendReport {
        plan: plan.clone(),
        resolved,
        recovered_log_entries: recovered,
        failed_in_apply: state.failed.clone(),
        ..Default::default()
    };
    let mut transactions = 0usize;
    // States before this run: what a message this run does not get to still is.
    let before: BTreeMap<String, (DeliveryState, Option<String>)> = store
        .deliveries(&plan)?
        .into_iter()
        .map(|d| (d.message_key, (d.state, d.reply)))
        .collect();
    for m in &messages {
        let result = if report.stopped.is_some() || opts.limit.is_some_and(|l| transactions >= l) {
            not_attempted(m, before.get(&m.key).cloned())
        } else {
            let now = chrono::Utc::now().timestamp();
            pace.wait();
            match store.claim_delivery(&plan, &m.key, m.to.as_ref(), opts.retry_failed, now)? {
                DeliveryClaim::Claimed => {
                    transactions += 1;
                    let (outcome, stop) = match mailer.deliver(&m.from, &m.to, &m.bytes) {
                        Ok(o) => (o, None),
                        Err(smtp::SessionError(why)) => {
                            (Outcome::Deferred(format!("not sent: {why}")), Some(why))
                        }
                    };
                    report.stopped = stop;
                    record(store, &mut log, m, &outcome, "send")?
                }
                DeliveryClaim::AlreadySent => result_of(m, Status::AlreadySent, None),
                DeliveryClaim::Failed(row) => result_of(m, Status::Failed, row.reply),
                DeliveryClaim::InDoubt(row) => result_of(m, Status::InDoubt, row.reply),
            }
        };
        on_event(SendEvent::Done(&result));
        report.results.push(result);
    }
    mailer.close();
    Ok(SendOutcome::Sent(report))
}

fn result_of(m: &Prepared, status: Status, reply: Option<String>) -> MessageResult {
    MessageResult {
        account: m.account.clone(),
        key: m.key.clone(),
        status,
        reply,
    }
}

/// A message this run did not get to: its stored state says what it is.
fn not_attempted(m: &Prepared, stored: Option<(DeliveryState, Option<String>)>) -> MessageResult {
    match stored {
        Some((DeliveryState::Sent, _)) => result_of(m, Status::AlreadySent, None),
        Some((DeliveryState::Sending, reply)) => result_of(m, Status::InDoubt, reply),
        Some((DeliveryState::Failed, reply)) => result_of(m, Status::Failed, reply),
        _ => result_of(m, Status::NotAttempted, None),
    }
}

/// Stores one SMTP outcome and logs it.
fn record(
    store: &mut dyn AccountStore,
    log: &mut Logger,
    m: &Prepared,
    outcome: &Outcome,
    action: &str,
) -> Result<MessageResult> {
    let now = chrono::Utc::now().timestamp();
    let (status, state, reply) = match outcome {
        Outcome::Sent(r) => (Status::Sent, Some(DeliveryState::Sent), r),
        Outcome::Deferred(r) => (Status::Deferred, Some(DeliveryState::Deferred), r),
        Outcome::Failed(r) => (Status::Failed, Some(DeliveryState::Failed), r),
        // Left `sending`: only a responder can say whether the server has it.
        Outcome::InDoubt(r) => (Status::InDoubt, None, r),
    };
    if let Some(state) = state {
        store.finish_delivery(&log.plan, &m.key, state, Some(reply), now)?;
    }
    let result_name = match status {
        Status::Sent => "sent",
        Status::Deferred => "deferred",
        Status::Failed => "failed",
        _ => "in-doubt",
    };
    log.append(store, action, &m.account, result_name, Some(reply))?;
    Ok(result_of(m, status, Some(reply.clone())))
}

/// The plan's audit log, its head kept in the store after every entry.
struct Logger {
    log: AuditLog,
    plan: String,
}

impl Logger {
    fn append(
        &mut self,
        store: &mut dyn AccountStore,
        action: &str,
        account: &str,
        result: &str,
        detail: Option<&str>,
    ) -> Result<()> {
        let id = format!("{action}:{account}");
        let head = self
            .log
            .append(action, &id, account, result, detail.map(redact_addresses))?;
        store.set_audit_head(&self.plan, &head)
    }

    /// Logs `sent-logged-on-resume` for every message the store records as sent but the log
    /// does not (a kill between the store's record and the log's).
    fn recover(
        &mut self,
        store: &mut dyn AccountStore,
        path: &std::path::Path,
        messages: &[Prepared],
    ) -> Result<usize> {
        let logged: BTreeSet<String> = read_entries(path)?
            .into_iter()
            .filter(|e| e.action == "send" && e.result.starts_with("sent"))
            .map(|e| e.account)
            .collect();
        let sent: BTreeSet<String> = store
            .deliveries(&self.plan)?
            .into_iter()
            .filter(|d| d.state == DeliveryState::Sent)
            .map(|d| d.message_key)
            .collect();
        let mut n = 0;
        for m in messages
            .iter()
            .filter(|m| sent.contains(&m.key) && !logged.contains(&m.account))
        {
            self.append(store, "send", &m.account, "sent-logged-on-resume", None)?;
            n += 1;
        }
        Ok(n)
    }
}

/// Server replies can name the recipient; the log holds account ids only.
fn redact_addresses(s: &str) -> String {
    static ADDR: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"[^\s<>()\[\]]+@[^\s<>()\[\]]+").expect("constant regex")
    });
    ADDR.replace_all(s, "[address]").into_owned()
}

/// Applies a responder's decision to the messages left `sending` by a killed run.
fn resolve(
    store: &mut dyn AccountStore,
    log: &mut Logger,
    messages: &[Prepared],
    how: Resolution,
    only: &[String],
) -> Result<usize> {
    let plan = log.plan.clone();
    let in_doubt: BTreeMap<String, Option<String>> = store
        .deliveries(&plan)?
        .into_iter()
        .filter(|d| d.state == DeliveryState::Sending)
        .map(|d| (d.message_key, d.reply))
        .collect();
    if let Some(k) = only.iter().find(|k| !in_doubt.contains_key(*k)) {
        return Err(Error::Setting(format!(
            "--message-id {k}: no message of plan {plan} is in doubt under this Message-ID"
        )));
    }
    let mut n = 0;
    for (key, _) in in_doubt
        .iter()
        .filter(|(k, _)| only.is_empty() || only.contains(k))
    {
        let account = messages
            .iter()
            .find(|m| &m.key == key)
            .map_or_else(|| key.clone(), |m| m.account.clone());
        let now = chrono::Utc::now().timestamp();
        let (state, result, note) = match how {
            Resolution::Sent => (
                DeliveryState::Sent,
                "in-doubt-resolved-sent",
                "a responder found it accepted by the relay",
            ),
            Resolution::Resend => (
                DeliveryState::Deferred,
                "in-doubt-resolved-resend",
                "a responder found it not accepted by the relay: send again",
            ),
        };
        store.finish_delivery(&plan, key, state, Some(note), now)?;
        let action = if key.starts_with(CANARY_KEY_PREFIX) {
            "canary"
        } else {
            "send"
        };
        log.append(store, action, &account, result, Some(note))?;
        n += 1;
    }
    Ok(n)
}

/// Sends one redacted copy per (language, with or without a reset link, to an account or a
/// notice without one) to every canary address.
fn canary(
    store: &mut dyn AccountStore,
    log: &mut Logger,
    mailer: &mut Mailer,
    opts: &SendOptions<'_>,
    messages: &[Prepared],
    addrs: &[String],
    pace: &mut Pace,
) -> Result<CanaryReport> {
    let mut targets = Vec::new();
    for a in addrs {
        let a = a.trim();
        let parsed = lettre::Address::from_str(a)
            .map_err(|e| Error::Setting(format!("--canary {a}: not an address ({e})")))?;
        if parsed.domain().to_ascii_lowercase().ends_with(".invalid") {
            return Err(Error::Setting(format!(
                "--canary {a}: a placeholder domain"
            )));
        }
        targets.push(parsed);
    }
    if targets.is_empty() {
        return Err(Error::Setting("--canary: give at least one address".into()));
    }
    let mut samples: BTreeMap<(String, bool, bool), &Prepared> = BTreeMap::new();
    for m in messages {
        samples
            .entry((m.language.clone(), m.reset, m.notice))
            .or_insert(m);
    }
    let stamp = chrono::Utc::now();
    let date = stamp.to_rfc2822();
    let mut report = CanaryReport {
        plan: log.plan.clone(),
        addresses: targets.len(),
        ..Default::default()
    };
    for (i, m) in samples.values().enumerate() {
        for (j, to) in targets.iter().enumerate() {
            let id = format!(
                "<canary.{}.{i}.{j}@{}>",
                stamp.timestamp_millis(),
                m.from.domain()
            );
            let copy = check::canary_copy(m, to.as_ref(), &id, &date)?;
            let why = opts.gate.check(&copy, Some(to.as_ref()));
            if !why.is_empty() {
                return Err(Error::UnsafeMessage {
                    path: m.path.clone(),
                    reason: format!("its canary copy fails the outbox check: {}", why.join("; ")),
                });
            }
            let key = format!("{CANARY_KEY_PREFIX}{id}");
            let canary_msg = Prepared {
                key: key.clone(),
                to: to.clone(),
                bytes: copy,
                ..(*m).clone()
            };
            if report.stopped.is_some() {
                report
                    .results
                    .push(result_of(&canary_msg, Status::NotAttempted, None));
                continue;
            }
            pace.wait();
            let now = chrono::Utc::now().timestamp();
            let claim = store.claim_delivery(&log.plan, &key, to.as_ref(), false, now)?;
            if claim != DeliveryClaim::Claimed {
                continue;
            }
            let outcome = match mailer.deliver(&m.from, to, &canary_msg.bytes) {
                Ok(o) => o,
                Err(smtp::SessionError(why)) => {
                    report.stopped = Some(why.clone());
                    Outcome::Deferred(format!("not sent: {why}"))
                }
            };
            report
                .results
                .push(record(store, log, &canary_msg, &outcome, "canary")?);
        }
    }
    mailer.close();
    Ok(report)
}

/// The rate limit: at most `rate` transactions per second, evenly spaced.
struct Pace {
    every: Option<Duration>,
    next: Option<Instant>,
}

impl Pace {
    fn new(rate: Option<f64>) -> Pace {
        Pace {
            every: rate
                .filter(|r| *r > 0.0 && r.is_finite())
                .map(|r| Duration::from_secs_f64(1.0 / r)),
            next: None,
        }
    }

    fn wait(&mut self) {
        let Some(every) = self.every else { return };
        let now = Instant::now();
        if let Some(next) = self.next.filter(|n| *n > now) {
            std::thread::sleep(next - now);
        }
        self.next = Some(Instant::now().max(self.next.unwrap_or(now)) + every);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_details_carry_no_address() {
        assert_eq!(
            redact_addresses("550 5.1.1 <anna@gmail.com>: Recipient address rejected"),
            "550 5.1.1 <[address]>: Recipient address rejected"
        );
    }
}
