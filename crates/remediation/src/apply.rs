//! Apply: execute exactly one plan, once, resumably.
//!
//! State machine per account (all of its actions move together):
//!
//! ```text
//! planned ──(1) tokens hashed, in parallel, outside any transaction
//!         ──(2) notification built, checked, written durably to the outbox (staged/new)
//!         ──(3) ONE store transaction: password invalidated, sessions and older tokens
//!               revoked, new token hash stored, review flag set, actions -> done
//!         ──(4) audit entries appended (fsync), audit head stored
//! ```
//!
//! Crash windows (the process may die anywhere):
//! * before (2) completes: nothing changed; the resumed run starts the account afresh.
//! * between (2) and (3): the outbox holds a message whose token was never stored (a dead
//!   link). The resumed run issues a fresh token and rewrites the message under the same file
//!   name, replacing the dead one, then commits: one message, one live token.
//! * between (3) and (4): the store says done but the log lacks the entries; the resumed run
//!   appends them (`done-logged-on-resume`) before anything else.
//!
//! Exactly once under concurrency: the whole run holds the store's remediation lock
//! ([`crate::store::lock_store`]); a second apply (or a release) of the same store waits up to
//! [`ApplyOptions::lock_wait`] and then fails naming the holder. The lock dies with its
//! process, so a killed apply never blocks the next one.
//!
//! The plaintext secret exists only in memory and in the outbox message (and, with the
//! webhook executor and `send_token`, in the request to the system of record).
//!
//! Executor ([`crate::executor`]): with `webhook`, step (3) is preceded by one signed POST per
//! reset and review action; the store commits only what the system of record accepted.

use crate::audit::AuditLog;
use crate::error::{Error, Result};
use crate::executor::{perform_account, AccountCalls, Attempt, ExecutorConfig, Webhook};
use crate::outbox::{
    reset_link, ApplyState, Notice, Outbox, OutboxGate, Sender, StagedMessage, Templates,
};
use crate::plan::{notice_key, Action, Notice as PlanNotice, Plan, NOTIFY_ONLY};
use crate::policy::ActionKind;
use crate::store::{
    lock_store, AccountCommit, AccountStore, ActionState, AuditHead, LockHolder, NewToken,
    PlannedRow,
};
use crate::token::{issue, Argon2Settings, IssuedToken};
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Accounts per hashing batch. The batch after the current one is hashed on the pool while
/// this thread stages, commits and logs the current one, so up to two batches of plaintext
/// secrets are in memory and a killed run throws away up to two batches of argon2id work
/// (~50 ms each per core at the OWASP minimum). 32 keeps both small and still gives every
/// core of a 16-core machine two hashes per batch; 64 measured no faster (docs/architecture/remediation.md,
/// *Outbox and the release gate*).
pub const DEFAULT_BATCH: usize = 32;

/// Default reset-token lifetime: 24 hours.
pub const DEFAULT_TOKEN_TTL_SECS: i64 = 24 * 3600;

/// Settings of an apply run. Build with [`ApplyOptions::new`] (library defaults for the
/// rest), then adjust fields or use the `with_*` methods.
#[derive(Clone, Debug)]
pub struct ApplyOptions<'a> {
    pub outbox: PathBuf,
    pub log: PathBuf,
    /// Token lifetime in seconds ([`DEFAULT_TOKEN_TTL_SECS`]).
    pub token_ttl_secs: i64,
    /// argon2id cost ([`Argon2Settings::OWASP_MIN`]).
    pub argon2: Argon2Settings,
    /// The reset page; `?selector=..&token=..` is appended.
    pub reset_base_url: String,
    pub sender: Sender,
    /// Accounts per parallel hashing batch ([`DEFAULT_BATCH`]).
    pub batch: usize,
    /// Every notification passes it before it is staged (and again at release).
    pub gate: OutboxGate<'a>,
    /// How long to wait for another apply or release of the store to finish (default 0:
    /// fail at once, naming it).
    pub lock_wait: Duration,
    /// Who performs resets and reviews (default: the local store only).
    pub executor: ExecutorConfig,
    /// The notification texts ([`Templates::builtin`] unless set).
    pub templates: Arc<Templates>,
    /// Apply a plan although another plan of this store already did some of its actions
    /// for the same accounts or addresses (a new incident). Off: such a plan is refused
    /// before anything changes, since it would reset and notify the same people again.
    pub new_incident: bool,
}

impl<'a> ApplyOptions<'a> {
    /// Options with the library defaults for TTL, argon2id cost and batch size.
    pub fn new(
        outbox: impl Into<PathBuf>,
        log: impl Into<PathBuf>,
        reset_base_url: impl Into<String>,
        sender: Sender,
        gate: OutboxGate<'a>,
    ) -> ApplyOptions<'a> {
        ApplyOptions {
            outbox: outbox.into(),
            log: log.into(),
            token_ttl_secs: DEFAULT_TOKEN_TTL_SECS,
            argon2: Argon2Settings::OWASP_MIN,
            reset_base_url: reset_base_url.into(),
            sender,
            batch: DEFAULT_BATCH,
            gate,
            lock_wait: Duration::ZERO,
            executor: ExecutorConfig::Local,
            templates: Templates::builtin(),
            new_incident: false,
        }
    }

    pub fn with_executor(mut self, executor: ExecutorConfig) -> Self {
        self.executor = executor;
        self
    }

    pub fn with_templates(mut self, templates: Arc<Templates>) -> Self {
        self.templates = templates;
        self
    }

    pub fn with_lock_wait(mut self, wait: Duration) -> Self {
        self.lock_wait = wait;
        self
    }

    pub fn with_token_ttl_secs(mut self, secs: i64) -> Self {
        self.token_ttl_secs = secs;
        self
    }

    pub fn with_argon2(mut self, argon2: Argon2Settings) -> Self {
        self.argon2 = argon2;
        self
    }

    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch;
        self
    }
}

/// Progress events, so the caller can draw progress (and tests can stop the process at an
/// exact point).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyEvent<'a> {
    /// The run starts: `accounts` to do now (`already_done` skipped), `to_hash` of them
    /// get a new reset token.
    Started {
        accounts: usize,
        already_done: usize,
        to_hash: usize,
    },
    /// `n` reset tokens hashed in this run so far (reported per batch).
    Hashed { n: usize },
    /// One webhook request answered (or failed).
    Webhook(Attempt<'a>),
    /// The notification for `account` is durable in the outbox.
    Staged { account: &'a str },
    /// The store transaction for `account` committed; `n` accounts committed in this run.
    Committed { account: &'a str, n: usize },
    /// Its audit entries are durable.
    Logged { account: &'a str, n: usize },
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    pub accounts_total: usize,
    pub accounts_already_done: usize,
    pub accounts_done: usize,
    pub resets: usize,
    pub reviews: usize,
    pub notifications: usize,
    /// Notify-only notices (exposed addresses without an account) staged by this run.
    pub notices: usize,
    /// Notices a previous run had staged already.
    pub notices_already_done: usize,
    /// Done notices whose file was gone, staged anew.
    pub notices_restaged: usize,
    /// Done actions whose audit entries a killed run had not written.
    pub recovered_log_entries: usize,
    /// `(account, reason)` of accounts whose actions failed (retried by the next run).
    pub failed: Vec<(String, String)>,
    pub complete: bool,
    /// The run stopped early because the executor's endpoint stayed unavailable: why.
    pub stopped: Option<String>,
    /// Webhook requests sent (retries included).
    pub webhook_requests: u64,
    /// `(account, file)` of done notifications whose outbox file is gone.
    pub missing_messages: Vec<(String, String)>,
    /// Actions of the plan an earlier plan of its incident did: recorded done, not redone.
    pub covered: usize,
    /// Of those, logged by this run (the first run of the plan).
    pub covered_logged: usize,
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

use crate::affected::rfc3339;

/// Executes `plan` against `store`. Checks the store identity first; the plan's content hash
/// was checked by [`crate::plan::read_plan`] and is checked again here.
pub fn apply(
    plan: &Plan,
    store: &mut dyn AccountStore,
    opts: &ApplyOptions<'_>,
    on_event: &mut dyn FnMut(ApplyEvent<'_>),
) -> Result<ApplyReport> {
    plan.check_against(store)?;
    if opts.token_ttl_secs <= 0 {
        return Err(Error::Setting("token TTL must be positive".into()));
    }
    if plan
        .actions
        .iter()
        .any(|a| a.kind == ActionKind::ForcePasswordReset)
    {
        // A reset link the user cannot open, or that could hand the token to someone else.
        crate::outbox::check_reset_base_url(&opts.reset_base_url)?;
        if let ExecutorConfig::Webhook(w) = &opts.executor {
            // The notification carries leakaudit's link: the system of record must honour it.
            if !w.send_token {
                return Err(Error::Setting(
                    "the plan resets passwords and its notifications carry leakaudit's reset link, so the webhook must hand that token over: set `send_token = true` in [executor] (or --webhook-send-token)".into(),
                ));
            }
        }
    }
    if let ExecutorConfig::Webhook(w) = &opts.executor {
        w.validate()?;
    }
    let hash = plan.content_hash.as_str();
    lock_store(
        store,
        &LockHolder::this_process("apply", hash),
        opts.lock_wait,
    )?;
    let done = apply_locked(plan, store, opts, on_event);
    let unlocked = store.unlock();
    let report = done?;
    unlocked?;
    Ok(report)
}

/// The run under the store's lock: everything from reading the log to `apply-state.json`.
fn apply_locked(
    plan: &Plan,
    store: &mut dyn AccountStore,
    opts: &ApplyOptions<'_>,
    on_event: &mut dyn FnMut(ApplyEvent<'_>),
) -> Result<ApplyReport> {
    let hash = plan.content_hash.as_str();
    let fresh = store.action_states(hash)?.is_empty();
    let delta = delta(plan, store)?;
    if fresh {
        if !opts.new_incident {
            refuse_repeats(plan, store, &delta.others)?;
        }
    } else {
        refuse_superseded(plan, store, &delta)?;
    }
    if let Some(other) = Outbox::new(&opts.outbox).other_plan(hash)? {
        return Err(Error::Setting(format!(
            "the outbox {} holds the messages of plan {other}: release and send check one plan's messages, so give plan {hash} an outbox of its own (a re-plan of an incident gets `outbox-<hash>` beside the first); nothing was changed",
            opts.outbox.display()
        )));
    }
    if plan
        .actions
        .iter()
        .any(|a| a.kind == ActionKind::ForcePasswordReset)
    {
        // Release accepts only links to this base: a message rewritten to another host
        // would hand the token to that host.
        let pinned = store.pin_reset_base(hash, &opts.reset_base_url)?;
        if pinned != opts.reset_base_url {
            return Err(Error::Setting(format!(
                "plan {hash} was applied with reset base URL `{pinned}`, not `{}`: resume it with the same one",
                opts.reset_base_url
            )));
        }
    }
    let head = store.audit_head(hash)?;
    let mut log = AuditLog::open(&opts.log, hash, head.as_ref())?;
    let outbox = Outbox::new(&opts.outbox);
    outbox.prepare()?;

    // A notice's row names its address only by a key (`plan::notice_key`): the store's
    // action table and the audit log never hold an address.
    // What an earlier plan of the incident did is recorded done (`covered_by`) in the same
    // transaction as the rest, so a killed first run never loses the delta.
    let planned = planned_rows(plan, |id| {
        fresh.then(|| delta.covered.get(id).cloned()).flatten()
    });
    store.ensure_planned_in(hash, plan.incident.as_deref(), &planned, now())?;
    let rows = store.action_states(hash)?;
    let states: BTreeMap<String, ActionState> = rows
        .iter()
        .map(|r| (r.action_id.clone(), r.state))
        .collect();
    let covered: BTreeMap<String, String> = rows
        .into_iter()
        .filter_map(|r| Some((r.action_id, r.covered_by?)))
        .collect();

    let mut report = ApplyReport {
        covered: covered.len(),
        ..ApplyReport::default()
    };
    // (4) of a killed run: log what the store committed but the log lacks (and, once,
    // each action an earlier plan of the incident did).
    let logged: BTreeSet<String> = log.done_actions()?.into_iter().collect();
    let unlogged = plan
        .actions
        .iter()
        .map(|a| (a.kind.as_str(), a.id.as_str(), a.account.clone()))
        .chain(
            plan.notices
                .iter()
                .map(|n| (NOTIFY_ONLY, n.id.as_str(), notice_key(hash, &n.address))),
        )
        .filter(|(_, id, _)| states.get(*id) == Some(&ActionState::Done) && !logged.contains(*id));
    for (kind, id, account) in unlogged {
        let (status, detail) = match covered.get(id) {
            Some(by) => ("covered", format!("done by plan {by} of this incident")),
            None => (
                "done-logged-on-resume",
                "the previous run stopped between the store commit and the log".into(),
            ),
        };
        let h = log.append(kind, id, &account, status, Some(detail))?;
        store.set_audit_head(hash, &h)?;
        if covered.contains_key(id) {
            report.covered_logged += 1;
        } else {
            report.recovered_log_entries += 1;
        }
    }

    let by_account = plan.by_account();
    report.accounts_total = by_account.len();
    let mut pending: Vec<(&str, Vec<&Action>)> = Vec::new();
    for (acct, actions) in &by_account {
        // An account's actions move together, except those an earlier plan of the
        // incident did: only the rest is done now.
        let open: Vec<&Action> = actions
            .iter()
            .copied()
            .filter(|a| states.get(&a.id) != Some(&ActionState::Done))
            .collect();
        if open.is_empty() {
            report.accounts_already_done += 1;
        } else {
            pending.push((acct, open));
        }
    }

    let mut webhook = match &opts.executor {
        ExecutorConfig::Local => None,
        ExecutorConfig::Webhook(c) => Some(Webhook::new(c.clone())?),
    };
    let mut committed = 0usize;
    let mut hashed = 0usize;
    let batch = opts.batch.max(1);
    let chunks: Vec<&[(&str, Vec<&Action>)]> = pending.chunks(batch).collect();
    let needs = |chunk: &[(&str, Vec<&Action>)]| -> Vec<bool> {
        chunk
            .iter()
            .map(|(_, actions)| {
                actions
                    .iter()
                    .any(|a| a.kind == ActionKind::ForcePasswordReset)
            })
            .collect()
    };
    let argon2 = opts.argon2;
    // (1) hash outside any transaction, in parallel, and one batch ahead: the next batch is
    // hashed on the pool while this thread does the I/O-bound steps (2)-(4) of the current one.
    let hash_batch = move |needs: Vec<bool>| -> Vec<Option<Result<IssuedToken>>> {
        needs
            .into_par_iter()
            .map(|n| n.then(|| issue(&argon2)))
            .collect()
    };
    on_event(ApplyEvent::Started {
        accounts: pending.len(),
        already_done: report.accounts_already_done,
        to_hash: chunks
            .iter()
            .map(|c| needs(c).iter().filter(|n| **n).count())
            .sum(),
    });
    std::thread::scope(|scope| -> Result<()> {
        let mut ahead = chunks.first().map(|c| {
            let n = needs(c);
            scope.spawn(move || hash_batch(n))
        });
        for (i, chunk) in chunks.iter().enumerate() {
            let tokens = ahead
                .take()
                .expect("a batch is always hashed ahead")
                .join()
                .map_err(|_| Error::Crypto("the hashing thread panicked".into()))?;
            let n = tokens.iter().filter(|t| t.is_some()).count();
            if n > 0 {
                hashed += n;
                on_event(ApplyEvent::Hashed { n: hashed });
            }
            if let Some(next) = chunks.get(i + 1) {
                let n = needs(next);
                ahead = Some(scope.spawn(move || hash_batch(n)));
            }
            for ((acct, actions), token) in chunk.iter().zip(tokens) {
                let token = token.transpose()?;
                let step = Step {
                    plan,
                    opts,
                    outbox: &outbox,
                    webhook: webhook.as_mut(),
                };
                match apply_account(step, store, acct, actions, token, on_event) {
                    Ok((summary, outcomes)) => {
                        committed += 1;
                        on_event(ApplyEvent::Committed {
                            account: acct,
                            n: committed,
                        });
                        let mut h: Option<AuditHead> = None;
                        for a in actions {
                            let outcome = outcomes
                                .iter()
                                .find(|(id, _)| *id == a.id)
                                .map(|(_, o)| o.clone());
                            h = Some(log.append(
                                a.kind.as_str(),
                                &a.id,
                                &a.account,
                                "done",
                                outcome,
                            )?);
                        }
                        if let Some(h) = h {
                            store.set_audit_head(hash, &h)?;
                        }
                        on_event(ApplyEvent::Logged {
                            account: acct,
                            n: committed,
                        });
                        report.accounts_done += 1;
                        report.resets += summary.0 as usize;
                        report.reviews += summary.1 as usize;
                        report.notifications += summary.2 as usize;
                    }
                    Err(AccountFailure::Fatal(e)) => return Err(e),
                    Err(failure) => {
                        let stop = matches!(failure, AccountFailure::Unavailable(_));
                        let reason = failure.reason();
                        let ids: Vec<String> = actions.iter().map(|a| a.id.clone()).collect();
                        store.mark_failed(hash, &ids, &reason, now())?;
                        let mut h = None;
                        for a in actions {
                            h = Some(log.append(
                                a.kind.as_str(),
                                &a.id,
                                &a.account,
                                "failed",
                                Some(reason.clone()),
                            )?);
                        }
                        if let Some(h) = h {
                            store.set_audit_head(hash, &h)?;
                        }
                        report.failed.push((acct.to_string(), reason.clone()));
                        if stop {
                            report.stopped = Some(reason);
                            return Ok(());
                        }
                    }
                }
            }
        }
        Ok(())
    })?;
    // The notices to exposed addresses without an account: no token, nothing changes in
    // the store but the notice's own row, so they go after the accounts, one commit each.
    if report.stopped.is_none() {
        for n in &plan.notices {
            if covered.contains_key(&n.id) {
                continue;
            }
            if states.get(&n.id) == Some(&ActionState::Done) {
                report.notices_already_done += 1;
                if !outbox.has_message(&Outbox::notice_file_name(hash, &n.id)) {
                    // Deleted after its commit: a notice holds no secret and changes nothing,
                    // so it is staged anew under its name and Message-ID (a send that had
                    // delivered it answers `already sent`).
                    let key = notice_key(hash, &n.address);
                    if stage_notice(plan, opts, &outbox, store, n, &key, false)?.is_ok() {
                        report.notices_restaged += 1;
                        let h = log.append(NOTIFY_ONLY, &n.id, &key, "restaged-missing", None)?;
                        store.set_audit_head(hash, &h)?;
                    }
                }
                continue;
            }
            let key = notice_key(hash, &n.address);
            let (status, detail) = match stage_notice(plan, opts, &outbox, store, n, &key, true)? {
                Ok(()) => {
                    on_event(ApplyEvent::Staged { account: &n.id });
                    report.notices += 1;
                    ("done", None)
                }
                Err(reason) => {
                    store.mark_failed(hash, std::slice::from_ref(&n.id), &reason, now())?;
                    report.failed.push((n.id.clone(), reason.clone()));
                    ("failed", Some(reason))
                }
            };
            let h = log.append(NOTIFY_ONLY, &n.id, &key, status, detail)?;
            store.set_audit_head(hash, &h)?;
        }
    }
    report.webhook_requests = webhook.as_ref().map_or(0, |w| w.requests);

    // Every action at an end (done or failed)? Then record every staged message of a done
    // notification for the release gate: one account that cannot be done never holds back
    // the others (it is listed as failed, and the next apply retries it).
    let states = store.action_states(hash)?;
    report.complete = states.iter().all(|r| r.state == ActionState::Done);
    let finished = states.iter().all(|r| r.state != ActionState::Planned);
    let state_of: BTreeMap<&str, ActionState> = states
        .iter()
        .map(|r| (r.action_id.as_str(), r.state))
        .collect();
    let done = |id: &str| state_of.get(id) == Some(&ActionState::Done);
    if finished {
        let mut messages = Vec::new();
        let mut failed: Vec<String> = Vec::new();
        for (acct, actions) in &by_account {
            if actions.iter().any(|a| !done(&a.id)) {
                failed.push(acct.to_string());
                continue;
            }
            if !actions
                .iter()
                .any(|a| a.kind == ActionKind::Notify && !covered.contains_key(&a.id))
            {
                continue;
            }
            let name = Outbox::file_name(hash, acct);
            // Deleted after its commit: the store says it exists, so release will name it as
            // missing and `remediate reissue` stages a new one.
            let Some(bytes) = outbox.read_message(&name)? else {
                report.missing_messages.push((acct.to_string(), name));
                continue;
            };
            let to = store.account(acct)?.map(|a| a.email).unwrap_or_default();
            messages.push(StagedMessage::of(name, &bytes, acct, to));
        }
        for n in &plan.notices {
            if !done(&n.id) {
                failed.push(n.id.clone());
                continue;
            }
            if covered.contains_key(&n.id) {
                continue;
            }
            let name = Outbox::notice_file_name(hash, &n.id);
            let Some(bytes) = outbox.read_message(&name)? else {
                report.missing_messages.push((n.id.clone(), name));
                continue;
            };
            messages.push(StagedMessage::of(name, &bytes, &n.id, n.address.clone()));
        }
        outbox.write_state(&ApplyState {
            plan: hash.to_string(),
            complete: true,
            messages,
            failed,
        })?;
    }
    Ok(report)
}

/// The store rows of every action and notice of `plan`, each covered by the plan
/// `covered_by` names (if any).
fn planned_rows(plan: &Plan, covered_by: impl Fn(&str) -> Option<String>) -> Vec<PlannedRow> {
    let hash = plan.content_hash.as_str();
    plan.actions
        .iter()
        .map(|a| PlannedRow {
            id: a.id.clone(),
            account: a.account.clone(),
            kind: a.kind.as_str().to_string(),
            covered_by: covered_by(&a.id),
        })
        .chain(plan.notices.iter().map(|n| PlannedRow {
            id: n.id.clone(),
            account: notice_key(hash, &n.address),
            kind: NOTIFY_ONLY.to_string(),
            covered_by: covered_by(&n.id),
        }))
        .collect()
}

/// What the earlier plans of a plan's incident did, as it bears on the plan: a re-plan after
/// the accounts or archives changed (the same incident, `Plan::incident`) is applied as a
/// delta. An account already reset (or put under review) is not reset again; an address
/// already notified, as an account holder or by a notice, is not notified again, unless the
/// account now gets a reset, whose link only a notification carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    /// The incident's other plans recorded in the store.
    pub earlier: Vec<String>,
    /// The store's plans of other incidents.
    pub others: Vec<String>,
    /// Action or notice id of the plan -> the earlier plan that did it.
    pub covered: BTreeMap<String, String>,
}

impl Delta {
    /// Covered actions of `plan` by kind (`notify-only` for notices).
    pub fn covered_by_kind(&self, plan: &Plan) -> BTreeMap<String, usize> {
        let mut out: BTreeMap<String, usize> = BTreeMap::new();
        for a in &plan.actions {
            if self.covered.contains_key(&a.id) {
                *out.entry(a.kind.as_str().to_string()).or_default() += 1;
            }
        }
        for n in &plan.notices {
            if self.covered.contains_key(&n.id) {
                *out.entry(NOTIFY_ONLY.to_string()).or_default() += 1;
            }
        }
        out
    }
}

/// The store's other plans: (of `plan`'s incident, of other incidents).
fn plans_by_incident(plan: &Plan, store: &dyn AccountStore) -> Result<(Vec<String>, Vec<String>)> {
    let incident = plan.incident_id();
    let (mut same, mut other) = (Vec::new(), Vec::new());
    for p in store.plans()? {
        if p == plan.content_hash {
            continue;
        }
        let of = store.plan_incident(&p)?;
        if of.as_deref().unwrap_or(&p) == incident {
            same.push(p);
        } else {
            other.push(p);
        }
    }
    Ok((same, other))
}

/// The [`Delta`] of `plan` against what the store records of its incident's other plans (their
/// own work: what they recorded as covered was done by a third, which is read too).
pub fn delta(plan: &Plan, store: &dyn AccountStore) -> Result<Delta> {
    let (earlier, others) = plans_by_incident(plan, store)?;
    let mut delta = Delta {
        earlier,
        others,
        covered: BTreeMap::new(),
    };
    if delta.earlier.is_empty() {
        return Ok(delta);
    }
    // (kind, account) -> plan; notified address -> plan; per plan, its notices' keys.
    let mut did: std::collections::HashMap<(String, String), String> = Default::default();
    let mut notified: std::collections::HashMap<String, String> = Default::default();
    let mut keys: Vec<(&str, std::collections::HashSet<String>)> = Vec::new();
    for p in &delta.earlier {
        let mut mine = std::collections::HashSet::new();
        for r in store.action_states(p)? {
            if r.state != ActionState::Done || r.covered_by.is_some() {
                continue;
            }
            if r.kind == NOTIFY_ONLY {
                mine.insert(r.account_id);
                continue;
            }
            if r.kind == ActionKind::Notify.as_str() {
                if let Some(a) = store.account(&r.account_id)? {
                    notified.entry(a.email).or_insert_with(|| p.clone());
                }
            }
            did.entry((r.kind, r.account_id))
                .or_insert_with(|| p.clone());
        }
        keys.push((p, mine));
    }
    let notified_by = |address: &str| -> Option<String> {
        notified.get(address).cloned().or_else(|| {
            keys.iter()
                .find(|(p, k)| k.contains(&notice_key(p, address)))
                .map(|(p, _)| p.to_string())
        })
    };
    for (acct, actions) in plan.by_account() {
        let mut reset_open = false;
        for a in actions.iter().filter(|a| a.kind != ActionKind::Notify) {
            match did.get(&(a.kind.as_str().to_string(), acct.to_string())) {
                Some(p) => {
                    delta.covered.insert(a.id.clone(), p.clone());
                }
                None => reset_open |= a.kind == ActionKind::ForcePasswordReset,
            }
        }
        let Some(n) = actions.iter().find(|a| a.kind == ActionKind::Notify) else {
            continue;
        };
        if reset_open {
            // The new reset's link reaches the user only in a notification.
            continue;
        }
        let mut by = did
            .get(&(ActionKind::Notify.as_str().to_string(), acct.to_string()))
            .cloned();
        if by.is_none() {
            if let Some(a) = store.account(acct)? {
                by = notified_by(&a.email);
            }
        }
        if let Some(p) = by {
            delta.covered.insert(n.id.clone(), p);
        }
    }
    for n in &plan.notices {
        if let Some(p) = notified_by(&n.address) {
            delta.covered.insert(n.id.clone(), p);
        }
    }
    Ok(delta)
}

/// A plan being resumed whose open actions another plan of its incident has done since (a
/// re-plan applied in between): refused, it would do them twice.
fn refuse_superseded(plan: &Plan, store: &dyn AccountStore, delta: &Delta) -> Result<()> {
    let states: BTreeMap<String, ActionState> = store
        .action_states(&plan.content_hash)?
        .into_iter()
        .map(|r| (r.action_id, r.state))
        .collect();
    let clash: BTreeSet<&String> = delta
        .covered
        .iter()
        .filter(|(id, _)| states.get(*id) != Some(&ActionState::Done))
        .map(|(_, by)| by)
        .collect();
    if clash.is_empty() {
        return Ok(());
    }
    Err(Error::Setting(format!(
        "plan {} of this incident has open actions that plan(s) {} did since: resuming it would reset or notify them twice; nothing was changed. Apply the newest plan of the incident instead",
        plan.content_hash,
        clash.into_iter().cloned().collect::<Vec<_>>().join(", ")
    )))
}

/// A plan not yet started whose actions a plan of another incident already did (the same
/// kind for the same account, or a notice to the same address): refused before anything
/// changes. A rerun of an incident that was not made as its re-plan (`Plan::incident`) is
/// such a plan; applied, it reset the same 204 accounts again and sent 598 second
/// notifications.
fn refuse_repeats(plan: &Plan, store: &dyn AccountStore, others: &[String]) -> Result<()> {
    let mine: BTreeSet<(String, String)> = plan
        .actions
        .iter()
        .map(|a| (a.kind.as_str().to_string(), a.account.clone()))
        .collect();
    let mut repeats = 0usize;
    let mut by: BTreeSet<String> = BTreeSet::new();
    for other in others {
        let rows = store.action_states(other)?;
        let done: BTreeSet<(&str, &str)> = rows
            .iter()
            .filter(|r| r.state == ActionState::Done && r.covered_by.is_none())
            .map(|r| (r.kind.as_str(), r.account_id.as_str()))
            .collect();
        let mut n = mine
            .iter()
            .filter(|(k, a)| done.contains(&(k.as_str(), a.as_str())))
            .count();
        n += plan
            .notices
            .iter()
            .filter(|x| done.contains(&(NOTIFY_ONLY, notice_key(other, &x.address).as_str())))
            .count();
        if n > 0 {
            repeats += n;
            by.insert(other.clone());
        }
    }
    if repeats == 0 {
        return Ok(());
    }
    Err(Error::Setting(format!(
        "{repeats} action(s) of plan {} were already done by plan(s) {} of another incident in this store, for the same accounts and addresses: applying it would reset and notify them again; nothing was changed. If this re-plans that incident (accounts or archives changed), make the plan as its re-plan (`incident` into the same --out folder, or `remediate plan --replans PLAN`): it is then applied as a delta; if this really is a new incident, pass --new-incident",
        plan.content_hash,
        by.into_iter().collect::<Vec<_>>().join(", ")
    )))
}

/// Stages one notify-only notice and (with `commit`) commits its row: `Ok(Err(reason))` when the outbox gate
/// refused the message (the notice fails; the others go on).
fn stage_notice(
    plan: &Plan,
    opts: &ApplyOptions<'_>,
    outbox: &Outbox,
    store: &mut dyn AccountStore,
    n: &PlanNotice,
    key: &str,
    commit: bool,
) -> Result<std::result::Result<(), String>> {
    let hash = plan.content_hash.as_str();
    let t = now();
    let notice = Notice {
        to: &n.address,
        // No account, no known language: the templates' default.
        locale: "",
        first_exposed: n.first_exposed.as_deref(),
        messages: n.messages,
        audience: n.audience,
        reset: None,
        review: false,
        account: false,
    };
    let name = Outbox::notice_file_name(hash, &n.id);
    let raw = match checked_notification(opts, &notice, &message_id(&name, opts, None), t) {
        Ok(raw) => raw,
        Err(why) => return Ok(Err(why)),
    };
    outbox.stage(&name, &raw)?;
    if commit {
        store.commit_account(&AccountCommit {
            plan_hash: hash,
            account_id: key,
            action_ids: vec![n.id.clone()],
            reset: None,
            review: None,
            outcome: None,
            now: t,
        })?;
    }
    Ok(Ok(()))
}

/// The Message-ID of outbox message `name`: its name, the reissue's number when there is
/// one (a delivery record keyed by the old id must not swallow the new message), the
/// sender's domain.
pub(crate) fn message_id(name: &str, opts: &ApplyOptions<'_>, reissue: Option<&str>) -> String {
    let base = name.trim_end_matches(".leakaudit");
    match reissue {
        Some(n) => format!("{base}.{n}@{}", opts.sender.from_domain),
        None => format!("{base}@{}", opts.sender.from_domain),
    }
}

/// A notification as apply and reissue write it (dated `at`), checked by the outbox gate
/// against its own recipient: the message, or why it is refused.
pub(crate) fn checked_notification(
    opts: &ApplyOptions<'_>,
    notice: &Notice<'_>,
    message_id: &str,
    at: i64,
) -> std::result::Result<Vec<u8>, String> {
    let date = chrono::DateTime::from_timestamp(at, 0)
        .unwrap_or_default()
        .to_rfc2822();
    let raw = opts
        .templates
        .build_message(notice, &opts.sender, message_id, &date);
    let why = opts.gate.check(&raw, Some(notice.to));
    if !why.is_empty() {
        return Err(format!("notification refused: {}", why.join("; ")));
    }
    Ok(raw)
}

enum AccountFailure {
    /// This account cannot be done now (missing account, unsafe message, a refusal of the
    /// system of record); others go on.
    Refused(String),
    /// The executor's endpoint stayed unavailable: this account failed, the run stops.
    Unavailable(String),
    Fatal(Error),
}

impl AccountFailure {
    fn reason(self) -> String {
        match self {
            AccountFailure::Refused(r) | AccountFailure::Unavailable(r) => r,
            AccountFailure::Fatal(e) => e.to_string(),
        }
    }
}

impl From<Error> for AccountFailure {
    fn from(e: Error) -> Self {
        AccountFailure::Fatal(e)
    }
}

/// What one account's step works with.
struct Step<'s, 'a> {
    plan: &'s Plan,
    opts: &'s ApplyOptions<'a>,
    outbox: &'s Outbox,
    webhook: Option<&'s mut Webhook>,
}

/// Per action id, what the executor answered (empty for the local store).
type Outcomes = Vec<(String, String)>;

/// Steps (2) and (3) for one account. Returns (reset, review, notified) and the executor's
/// outcomes.
fn apply_account(
    step: Step<'_, '_>,
    store: &mut dyn AccountStore,
    acct: &str,
    actions: &[&Action],
    token: Option<IssuedToken>,
    on_event: &mut dyn FnMut(ApplyEvent<'_>),
) -> std::result::Result<((bool, bool, bool), Outcomes), AccountFailure> {
    let Step {
        plan,
        opts,
        outbox,
        webhook,
    } = step;
    let hash = plan.content_hash.as_str();
    let Some(account) = store.account(acct)? else {
        return Err(AccountFailure::Refused(
            "account no longer in the store".into(),
        ));
    };
    let t = now();
    let expires_at = t + opts.token_ttl_secs;
    let has = |k| actions.iter().any(|a| a.kind == k);
    let review_action = actions.iter().find(|a| a.kind == ActionKind::HumanReview);
    let notify = has(ActionKind::Notify);
    let first = actions[0];
    let reset = token.as_ref().map(|tok| {
        (
            reset_link(&opts.reset_base_url, &tok.selector, tok.secret()),
            rfc3339(expires_at),
        )
    });
    if notify {
        let notice = Notice {
            to: &account.email,
            locale: &account.locale,
            first_exposed: first.first_exposed.as_deref(),
            messages: first.messages,
            audience: first.audience,
            reset: reset.clone(),
            review: review_action.is_some(),
            account: true,
        };
        let name = Outbox::file_name(hash, acct);
        let raw = checked_notification(opts, &notice, &message_id(&name, opts, None), t)
            .map_err(AccountFailure::Refused)?;
        outbox.stage(&name, &raw)?;
        on_event(ApplyEvent::Staged { account: acct });
    } else if token.is_some() {
        // A reset whose link reaches nobody would lock the user out.
        return Err(AccountFailure::Refused(
            "a reset without a notification in the plan".into(),
        ));
    }
    // The system of record first: the store records only what it accepted.
    let outcomes = match webhook {
        None => Vec::new(),
        Some(w) => {
            let link = reset.as_ref().map(|(l, e)| (l.as_str(), e.as_str()));
            let mut on_attempt = |a: Attempt<'_>| on_event(ApplyEvent::Webhook(a));
            match perform_account(w, hash, actions, link, &mut on_attempt) {
                AccountCalls::Done(o) => o,
                AccountCalls::Refused(why) => return Err(AccountFailure::Refused(why)),
                AccountCalls::Unavailable(why) => return Err(AccountFailure::Unavailable(why)),
            }
        }
    };
    let outcome = (!outcomes.is_empty()).then(|| {
        outcomes
            .iter()
            .map(|(_, o)| o.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    });
    let commit = AccountCommit {
        plan_hash: hash,
        account_id: acct,
        action_ids: actions.iter().map(|a| a.id.clone()).collect(),
        reset: token.as_ref().map(|tok| NewToken {
            selector: tok.selector.clone(),
            token_hash: tok.token_hash.clone(),
            expires_at,
        }),
        review: review_action.map(|a| format!("{}: {}", a.rule, a.reason)),
        outcome,
        now: t,
    };
    store.commit_account(&commit)?;
    Ok(((token.is_some(), review_action.is_some(), notify), outcomes))
}

/// Progress of a plan in a store, by action kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct KindStatus {
    pub planned: usize,
    pub done: usize,
    pub failed: usize,
    /// In the plan but not yet recorded in the store (apply not started for them).
    pub pending: usize,
    /// Done by an earlier plan of the incident (counted here, not in `done`).
    pub covered: usize,
}

/// What the store records of a plan, over every run: actions of the plan's accounts done
/// and failed, notices done and failed, and the counts by kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanRecord {
    pub done: usize,
    pub failed: usize,
    pub notices_done: usize,
    pub notices_failed: usize,
    pub by_kind: BTreeMap<String, KindStatus>,
}

/// The store's record of `plan` (`None`: it never saw the plan). An action an earlier plan
/// of the incident did counts as recorded (a re-plan that adds nothing was still applied).
pub fn record(store: &dyn AccountStore, plan: &Plan) -> Result<Option<PlanRecord>> {
    let by_kind = status(store, &plan.content_hash, Some(plan))?;
    let recorded = by_kind
        .values()
        .any(|k| k.done + k.failed + k.planned + k.covered > 0);
    if !recorded {
        return Ok(None);
    }
    let planned: BTreeSet<&str> = plan.actions.iter().map(|a| a.kind.as_str()).collect();
    let of_plan = || by_kind.iter().filter(|(k, _)| planned.contains(k.as_str()));
    let notices = by_kind.get(NOTIFY_ONLY);
    Ok(Some(PlanRecord {
        done: of_plan().map(|(_, k)| k.done).sum(),
        failed: of_plan().map(|(_, k)| k.failed).sum(),
        notices_done: notices.map_or(0, |k| k.done),
        notices_failed: notices.map_or(0, |k| k.failed),
        by_kind,
    }))
}

/// `status`: counts per action kind for one plan hash (with the plan, unrecorded actions count
/// as pending).
pub fn status(
    store: &dyn AccountStore,
    plan_hash: &str,
    plan: Option<&Plan>,
) -> Result<BTreeMap<String, KindStatus>> {
    let mut out: BTreeMap<String, KindStatus> = BTreeMap::new();
    let rows = store.action_states(plan_hash)?;
    let known: BTreeSet<&str> = rows.iter().map(|r| r.action_id.as_str()).collect();
    for r in &rows {
        let s = out.entry(r.kind.clone()).or_default();
        match r.state {
            _ if r.covered_by.is_some() => s.covered += 1,
            ActionState::Planned => s.planned += 1,
            ActionState::Done => s.done += 1,
            ActionState::Failed => s.failed += 1,
        }
    }
    if let Some(plan) = plan {
        for a in &plan.actions {
            if !known.contains(a.id.as_str()) {
                out.entry(a.kind.as_str().to_string()).or_default().pending += 1;
            }
        }
        for n in &plan.notices {
            if !known.contains(n.id.as_str()) {
                out.entry(NOTIFY_ONLY.to_string()).or_default().pending += 1;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{PolicyRef, StoreRef, PLAN_SCHEMA};
    use crate::store::{AccountRecord, SqliteStore};

    fn action(kind: ActionKind, account: &str) -> Action {
        Action {
            id: format!("{}:{account}", kind.as_str()),
            account: account.into(),
            kind,
            rule: "r".into(),
            reason: "why".into(),
            messages: 1,
            audience: 2,
            first_exposed: None,
        }
    }

    fn plan(store: &dyn AccountStore, incident: Option<&str>, actions: Vec<Action>) -> Plan {
        let mut p = Plan {
            schema: PLAN_SCHEMA.into(),
            created_at: String::new(),
            store: StoreRef {
                id: store.store_id().unwrap(),
                description: String::new(),
                accounts: 2,
            },
            policy: PolicyRef {
                source: String::new(),
                sha256: String::new(),
            },
            match_mode: "canonical".into(),
            totals: Default::default(),
            actions,
            notices: vec![PlanNotice {
                id: format!("{NOTIFY_ONLY}:1"),
                address: "nobody@yahoo.com".into(),
                messages: 1,
                audience: 2,
                first_exposed: None,
            }],
            incident: None,
            content_hash: String::new(),
        };
        p.set_incident(incident.map(Into::into));
        p
    }

    fn commit(store: &mut dyn AccountStore, plan: &str, account: &str, ids: &[String]) {
        store
            .commit_account(&AccountCommit {
                plan_hash: plan,
                account_id: account,
                action_ids: ids.to_vec(),
                reset: None,
                review: None,
                outcome: None,
                now: 1,
            })
            .unwrap();
    }

    /// The delta of a re-plan: what the first plan did is covered (a1's notification, the
    /// notice), what failed there is not (b2's reset and notification); once the re-plan did
    /// b2, resuming the first plan (which would retry b2) is refused.
    #[test]
    fn a_replan_covers_what_was_done_and_overtakes_the_first_plan() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = SqliteStore::open(&dir.path().join("s.db")).unwrap();
        let rec = |id: &str, email: &str| AccountRecord {
            id: id.into(),
            email: email.into(),
            has_2fa: false,
            balance: 1.0,
            locale: "en".into(),
            failed_logins: None,
            failed_logins_since: None,
        };
        st.import(&[rec("a1", "ann@gmail.com"), rec("b2", "bob@gmail.com")])
            .unwrap();
        let actions = || {
            vec![
                action(ActionKind::Notify, "a1"),
                action(ActionKind::ForcePasswordReset, "b2"),
                action(ActionKind::Notify, "b2"),
            ]
        };
        let p1 = plan(&st, None, actions());
        let h1 = p1.content_hash.clone();
        let rows = planned_rows(&p1, |_| None);
        st.ensure_planned_in(&h1, None, &rows, 1).unwrap();
        commit(&mut st, &h1, "a1", &["notify:a1".into()]);
        let notice = &p1.notices[0].id;
        commit(&mut st, &h1, &rows[3].account, std::slice::from_ref(notice));
        let b2 = ["force-password-reset:b2".to_string(), "notify:b2".into()];
        st.mark_failed(&h1, &b2, "refused", 1).unwrap();

        // Unrelated to the first plan: nothing covered, and the store says so.
        let other = plan(&st, None, vec![action(ActionKind::Notify, "a1")]);
        assert!(delta(&other, &st).unwrap().earlier.is_empty());
        let d = delta(&other, &st).unwrap();
        assert!(
            refuse_repeats(&other, &st, &d.others).is_err(),
            "a1 was notified"
        );

        let p2 = plan(&st, Some(&h1), actions());
        assert_ne!(p2.content_hash, h1, "the incident is in the hash");
        let d = delta(&p2, &st).unwrap();
        assert_eq!(d.earlier, std::slice::from_ref(&h1));
        let covered: Vec<&str> = d.covered.keys().map(String::as_str).collect();
        assert_eq!(covered, ["notify-only:1", "notify:a1"]);
        assert!(
            refuse_repeats(&p2, &st, &d.others).is_ok(),
            "the same incident"
        );

        let rows = planned_rows(&p2, |id| d.covered.get(id).cloned());
        st.ensure_planned_in(&p2.content_hash, Some(&h1), &rows, 2)
            .unwrap();
        assert!(refuse_superseded(&p1, &st, &delta(&p1, &st).unwrap()).is_ok());
        commit(&mut st, &p2.content_hash, "b2", &b2);
        let d1 = delta(&p1, &st).unwrap();
        assert_eq!(d1.earlier, std::slice::from_ref(&p2.content_hash));
        let err = refuse_superseded(&p1, &st, &d1).unwrap_err().to_string();
        assert!(
            err.contains("resuming it would reset or notify them twice"),
            "{err}"
        );
        // The re-plan itself resumes: its covered rows are done.
        assert!(refuse_superseded(&p2, &st, &delta(&p2, &st).unwrap()).is_ok());
        let status = status(&st, &p2.content_hash, Some(&p2)).unwrap();
        assert_eq!(status["notify"].covered, 1);
        assert_eq!(status["notify"].done, 1);
    }
}
