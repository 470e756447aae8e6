//! The account store: accounts, sessions, reset tokens and the remediation state, behind the
//! [`AccountStore`] trait. SQLite ([`SqliteStore`]) is the embedded default; PostgreSQL
//! ([`PgStore`]) implements the same trait and runs the same generic test suite
//! (`store::tests::suite_with_lock`).
//!
//! Contract every backend must keep:
//! * `import` is one transaction: all records or none.
//! * `commit_account` is one transaction: the password is invalidated, every session and every
//!   earlier unused token of the account revoked, the new token inserted, the review flag set
//!   and every listed action marked `done` — all or nothing. When one of the listed actions is
//!   already `done` (another run committed it, even one that bypassed the remediation lock),
//!   the commit is refused with [`Error::AlreadyDone`] and changes nothing: an account is
//!   never reset twice for one plan. The check and the writes are one transaction under the
//!   rows' write lock (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: `SELECT ... FOR UPDATE`).
//! * `store_id` is a random identity created with the store and never changed, so a plan made
//!   against one store cannot be applied to another.
//! * Times are seconds since the Unix epoch, UTC.
//! * `try_lock` is the remediation lock (one `apply` or `release` at a time per store): it
//!   must die with the process or session holding it (a kernel file lock, a PostgreSQL
//!   session advisory lock), so a killed holder never blocks the next run.

mod pgconn;
mod postgres;
mod schema;
mod sqlite;
#[cfg(test)]
pub(crate) mod tests;

pub use self::postgres::PgStore;
pub use crate::lock::LockHolder;
pub use pgconn::{pg_reason, url_has_password};
pub use schema::{PG_SCHEMA, SCHEMA, SCHEMA_VERSION};
pub use sqlite::SqliteStore;

use crate::error::{Error, Result};
use crate::matching::MatchMode;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// Opens the store a `--db` value names: a `postgres://` or `postgresql://` URL is a
/// PostgreSQL store (schema created on first use), anything else the path of an SQLite file
/// (created on first use).
///
/// A `--db` value is a command-line argument, which every user of the machine can read (`ps`):
/// a URL carrying a password is refused here; the password goes in `PGPASSWORD` or a passfile
/// ([`PgStore::connect`] itself accepts one in the URL, for URLs that come from elsewhere).
pub fn open(spec: &std::path::Path) -> Result<Box<dyn AccountStore + Send>> {
    match spec.to_str() {
        Some(url) if is_postgres_url(url) => {
            let url = url.trim_start();
            if url_has_password(url) {
                return Err(Error::Setting(format!(
                    "{}: a password in the --db URL is visible to every user of this machine; \
                     put it in PGPASSWORD or a passfile (~/.pgpass, PGPASSFILE or ?passfile=PATH) instead",
                    redact_url(url)
                )));
            }
            Ok(Box::new(PgStore::connect(url)?))
        }
        _ => Ok(Box::new(SqliteStore::open(spec)?)),
    }
}

/// A `--db` value naming a PostgreSQL server rather than a file.
pub fn is_postgres_url(spec: &str) -> bool {
    let lower = spec.trim_start().to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// A connection URL fit for messages: the password, if any (`user:secret@` or `password=` in
/// the query), replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let rest = match rest.rfind('@') {
        Some(i) => match rest[..i].split_once(':') {
            Some((user, _)) => format!("{user}:***@{}", &rest[i + 1..]),
            None => rest.to_string(),
        },
        None => rest.to_string(),
    };
    let query = query.map(|q| {
        q.split('&')
            .map(|kv| match kv.split_once('=') {
                Some(("password", _)) => "password=***".to_string(),
                _ => kv.to_string(),
            })
            .collect::<Vec<_>>()
            .join("&")
    });
    match query {
        Some(q) => format!("{scheme}://{rest}?{q}"),
        None => format!("{scheme}://{rest}"),
    }
}

fn random_store_id() -> Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| Error::Crypto(e.to_string()))?;
    // RFC 4122 version 4 layout, so it reads as a UUID.
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

/// One account as the remediation sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    /// Canonical address (see [`crate::matching`]).
    pub email: String,
    pub has_2fa: bool,
    pub balance: f64,
    /// BCP 47-ish language tag (`en`, `de-CH`, `pt_BR`); templates fall back to English.
    pub locale: String,
    /// Failed logins since `failed_logins_since` (the incident), when the export had them.
    pub failed_logins: Option<u32>,
    pub failed_logins_since: Option<String>,
    /// The account has a usable password hash.
    pub has_password: bool,
    pub password_reset_required: bool,
    pub review_required: bool,
}

/// One row of an accounts import.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountRecord {
    pub id: String,
    /// Canonical address.
    pub email: String,
    pub has_2fa: bool,
    pub balance: f64,
    pub locale: String,
    pub failed_logins: Option<u32>,
    pub failed_logins_since: Option<String>,
}

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ImportStats {
    pub inserted: usize,
    pub updated: usize,
}

/// Per-action progress of an apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionState {
    Planned,
    Done,
    Failed,
}

impl ActionState {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionState::Planned => "planned",
            ActionState::Done => "done",
            ActionState::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<ActionState> {
        match s {
            "planned" => Some(ActionState::Planned),
            "done" => Some(ActionState::Done),
            "failed" => Some(ActionState::Failed),
            _ => None,
        }
    }
}

/// The stored state of one plan action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionRow {
    pub action_id: String,
    pub account_id: String,
    pub kind: String,
    pub state: ActionState,
    pub detail: Option<String>,
    pub updated_at: i64,
    /// Done by this earlier plan of the same incident, so recorded done here and never
    /// redone (no token, no message).
    pub covered_by: Option<String>,
}

/// One action recorded at the start of an apply: planned, or (with `covered_by`) done
/// already by an earlier plan of the same incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRow {
    pub id: String,
    pub account: String,
    pub kind: String,
    pub covered_by: Option<String>,
}

/// A reset token as stored: never the secret, only its argon2id PHC hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// Public lookup half of the token (hex), sent in the link beside the secret.
    pub selector: String,
    pub account_id: String,
    /// argon2id PHC string of the secret.
    pub token_hash: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub plan_hash: Option<String>,
}

impl TokenInfo {
    /// Usable at `now`: not used, not revoked, not expired.
    pub fn is_live(&self, now: i64) -> bool {
        self.used_at.is_none() && self.revoked_at.is_none() && self.expires_at > now
    }
}

/// A new token to store with a reset.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub selector: String,
    pub token_hash: String,
    pub expires_at: i64,
}

/// Everything done to one account in one transaction (see the module contract).
#[derive(Debug, Clone)]
pub struct AccountCommit<'a> {
    pub plan_hash: &'a str,
    pub account_id: &'a str,
    /// Actions marked `done` in the same transaction.
    pub action_ids: Vec<String>,
    /// A forced reset with its new token.
    pub reset: Option<NewToken>,
    /// Put the account under human review, with the reason.
    pub review: Option<String>,
    /// What the system of record answered (an executor's status and response excerpt), kept
    /// as the done actions' `detail`; `None` for the local store.
    pub outcome: Option<String>,
    pub now: i64,
}

/// Where one outbox message stands with the mail server (`remediate send`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Claimed by a sender; the SMTP transaction may or may not have completed.
    Sending,
    /// The server accepted the message (2xx after DATA).
    Sent,
    /// A transient failure (4xx, connection lost before DATA): sent again by the next run.
    Deferred,
    /// A permanent failure (5xx): not retried without an explicit request.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Sending => "sending",
            DeliveryState::Sent => "sent",
            DeliveryState::Deferred => "deferred",
            DeliveryState::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<DeliveryState> {
        match s {
            "sending" => Some(DeliveryState::Sending),
            "sent" => Some(DeliveryState::Sent),
            "deferred" => Some(DeliveryState::Deferred),
            "failed" => Some(DeliveryState::Failed),
            _ => None,
        }
    }
}

/// The stored delivery state of one outbox message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryRow {
    pub plan_hash: String,
    /// The message's stable key in the outbox (its Message-ID).
    pub message_key: String,
    pub recipient: String,
    pub state: DeliveryState,
    /// SMTP transactions started for it (claims).
    pub attempts: u32,
    /// The server's last reply (or the connection error), when there was one.
    pub reply: Option<String>,
    pub updated_at: i64,
}

/// The outcome of [`AccountStore::claim_delivery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryClaim {
    /// This sender now owns the message (state `sending`, attempts + 1): send it.
    Claimed,
    /// Already accepted by the server: never send again.
    AlreadySent,
    /// A failed delivery that is not retried unless `retry_failed` was asked.
    Failed(DeliveryRow),
    /// A previous sender claimed it and never recorded the outcome (killed mid-transaction):
    /// the server may have accepted it, so it is not sent again without a human decision.
    InDoubt(DeliveryRow),
}

/// The last audit-log entry recorded for a plan: lets verification detect a cut tail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditHead {
    pub seq: u64,
    pub hash: String,
}

/// The outcome of [`AccountStore::try_lock`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockAttempt {
    Acquired,
    /// Another process holds it; `None` when it has not recorded itself yet.
    Held(Option<LockHolder>),
}

/// Takes the store's remediation lock for `holder`, retrying for up to `wait`; an error
/// naming the holder when it stays taken.
pub fn lock_store(store: &mut dyn AccountStore, holder: &LockHolder, wait: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        match store.try_lock(holder)? {
            LockAttempt::Acquired => return Ok(()),
            LockAttempt::Held(other) => {
                let waited = start.elapsed();
                if waited >= wait {
                    return Err(Error::Locked {
                        store: store.describe(),
                        holder: other,
                        waited_secs: wait.as_secs(),
                    });
                }
                std::thread::sleep((wait - waited).min(Duration::from_millis(100)));
            }
        }
    }
}

/// Keys per [`AccountStore::find_many`] call: one statement, a bounded parameter list.
pub const FIND_BATCH: usize = 1000;

/// The accounts column a lookup in `mode` compares with (both backends store both forms).
fn email_column(mode: MatchMode) -> &'static str {
    match mode {
        MatchMode::Canonical => "email",
        MatchMode::ProviderFolding => "email_folded",
    }
}

/// A backend holding accounts and remediation state.
pub trait AccountStore {
    /// Human description for messages (the file path, or a connection string without secret).
    fn describe(&self) -> String;
    /// The store's random identity, created with it.
    fn store_id(&self) -> Result<String>;
    /// Inserts or updates (by id) all records in one transaction.
    fn import(&mut self, records: &[AccountRecord]) -> Result<ImportStats>;
    fn account(&self, id: &str) -> Result<Option<Account>>;
    /// Accounts whose email matches `key` (already folded when `mode` folds), sorted by id.
    fn find_by_email(&self, key: &str, mode: MatchMode) -> Result<Vec<Account>>;
    /// [`Self::find_by_email`] for each key, in key order. A backend that pays a round trip
    /// per query answers a batch in one (PostgreSQL: 20,000 lookups one by one took 9 s);
    /// callers pass at most [`FIND_BATCH`] keys.
    fn find_many(&self, keys: &[&str], mode: MatchMode) -> Result<Vec<Vec<Account>>> {
        keys.iter().map(|k| self.find_by_email(k, mode)).collect()
    }
    fn account_count(&self) -> Result<u64>;
    /// Sets (or clears) the stored password hash; the store never sees a password.
    fn set_password_hash(&mut self, id: &str, phc: Option<&str>) -> Result<()>;
    fn password_hash(&self, id: &str) -> Result<Option<String>>;
    fn add_session(&mut self, account_id: &str, session_id: &str, now: i64) -> Result<()>;
    fn active_sessions(&self, account_id: &str) -> Result<u64>;
    /// All tokens of an account, oldest first.
    fn tokens(&self, account_id: &str) -> Result<Vec<TokenInfo>>;
    fn token_by_selector(&self, selector: &str) -> Result<Option<TokenInfo>>;
    /// Marks a token used if it is still live; `false` when it was not (single use).
    fn mark_token_used(&mut self, selector: &str, now: i64) -> Result<bool>;
    /// Records `(action_id, account_id, kind)` as planned unless already known.
    fn ensure_planned(
        &mut self,
        plan_hash: &str,
        actions: &[(String, String, String)],
        now: i64,
    ) -> Result<()> {
        let rows: Vec<PlannedRow> = actions
            .iter()
            .map(|(id, account, kind)| PlannedRow {
                id: id.clone(),
                account: account.clone(),
                kind: kind.clone(),
                covered_by: None,
            })
            .collect();
        self.ensure_planned_in(plan_hash, None, &rows, now)
    }
    /// In one transaction: the plan's incident (when it is not the plan itself) and its
    /// rows unless already known, planned or, when covered, done with the covering plan.
    fn ensure_planned_in(
        &mut self,
        plan_hash: &str,
        incident: Option<&str>,
        rows: &[PlannedRow],
        now: i64,
    ) -> Result<()>;
    /// The incident a plan was recorded under (`None`: the plan is its own incident).
    fn plan_incident(&self, plan_hash: &str) -> Result<Option<String>>;
    /// The stored states of a plan's actions, sorted by action id.
    fn action_states(&self, plan_hash: &str) -> Result<Vec<ActionRow>>;
    /// All plan hashes known to the store.
    fn plans(&self) -> Result<Vec<String>>;
    /// Applies one account's actions in one transaction; [`Error::AlreadyDone`] (nothing
    /// changed) when one of them is already `done`.
    fn commit_account(&mut self, c: &AccountCommit<'_>) -> Result<()>;
    /// Marks actions failed (they are retried by the next apply).
    fn mark_failed(
        &mut self,
        plan_hash: &str,
        action_ids: &[String],
        reason: &str,
        now: i64,
    ) -> Result<()>;
    fn audit_head(&self, plan_hash: &str) -> Result<Option<AuditHead>>;
    fn set_audit_head(&mut self, plan_hash: &str, head: &AuditHead) -> Result<()>;
    /// Records the reset base URL a plan's links are made with, unless one is recorded
    /// already; returns the recorded one (release checks every link against it).
    fn pin_reset_base(&mut self, plan_hash: &str, url: &str) -> Result<String>;
    fn reset_base(&self, plan_hash: &str) -> Result<Option<String>>;
    /// Every recorded audit head, by plan hash (sorted).
    fn audit_heads(&self) -> Result<Vec<(String, AuditHead)>>;
    /// Takes the store's remediation lock without waiting and records `holder`; held by this
    /// handle until [`AccountStore::unlock`], its drop, or the end of the process (never
    /// longer: a crash releases it). Taking it again through the same handle succeeds.
    fn try_lock(&mut self, holder: &LockHolder) -> Result<LockAttempt>;
    /// Releases the lock of this handle (nothing when it holds none).
    fn unlock(&mut self) -> Result<()>;
    /// Atomically claims one message for sending (one transaction, safe against a concurrent
    /// sender): unknown or `deferred` (or `failed` with `retry_failed`) becomes `sending` with
    /// attempts + 1 and [`DeliveryClaim::Claimed`]; `sent`, `sending` and `failed` are
    /// reported as they are.
    fn claim_delivery(
        &mut self,
        plan_hash: &str,
        message_key: &str,
        recipient: &str,
        retry_failed: bool,
        now: i64,
    ) -> Result<DeliveryClaim>;
    /// Records the outcome of a claimed message (`sent`, `deferred` or `failed`), or resolves
    /// an in-doubt one by a human decision.
    fn finish_delivery(
        &mut self,
        plan_hash: &str,
        message_key: &str,
        state: DeliveryState,
        reply: Option<&str>,
        now: i64,
    ) -> Result<()>;
    /// Every delivery row of a plan, sorted by message key.
    fn deliveries(&self, plan_hash: &str) -> Result<Vec<DeliveryRow>>;
}
