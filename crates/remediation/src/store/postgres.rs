//! PostgreSQL account store (`postgres`, the synchronous client; no TLS: loopback or a unix
//! socket). Same tables as SQLite (`store::PG_SCHEMA`), created with `meta` in one transaction on
//! first use; the schema version is checked like SQLite's.
//!
//! Concurrency (two responders, or two processes on one store):
//! * `commit_account` locks the account row and its listed action rows (`SELECT ... FOR
//!   UPDATE`, READ COMMITTED: a waiter re-reads the committed row) and refuses with
//!   [`Error::AlreadyDone`] when one of them is already `done`, rolling back: a second commit
//!   of the same actions never issues a second token, whether or not the committer held the
//!   remediation lock.
//! * `claim_delivery` inserts with `ON CONFLICT DO NOTHING`, else locks the row `FOR UPDATE`
//!   before deciding, so two senders never both claim a message.
//! * `try_lock` is a session advisory lock (`pg_try_advisory_lock`) on a key derived from the
//!   store id, plus the `lock_holder` row naming the holder: the server releases the lock
//!   when the session ends, so a killed process never blocks the next run.

use super::pgconn::{self, prep, tx_exec, tx_query, ConnSpec, Param};
use super::*;
use crate::error::Error;
use crate::matching::fold;
use ::postgres::{Client, NoTls, Row, Statement};
use sha2::Digest;
use std::cell::RefCell;
use std::collections::HashMap;

/// Serialises the schema creation of two processes opening a new database at once
/// (concurrent `CREATE TABLE IF NOT EXISTS` can fail in PostgreSQL). Any constant works:
/// transaction advisory locks are per database.
const INIT_LOCK_KEY: i64 = 0x6c65_616b_6175_6469; // "leakaudi"

/// A store in a PostgreSQL database.
pub struct PgStore {
    // Reads take `&self` in the trait while the client needs `&mut`; one handle is used by
    // one thread at a time (the store is `Send`, not `Sync`).
    pub(super) client: RefCell<Client>,
    desc: String,
    /// Statements prepared on this connection, by SQL text: one round trip per query
    /// instead of two (parse, then execute).
    stmts: RefCell<HashMap<String, Statement>>,
    lock_key: i64,
    locked: bool,
}

impl PgStore {
    /// Connects to the database `url` names (`postgres://` or `postgresql://`), creating the
    /// schema on first use. The password comes from the URL, `PGPASSWORD` or a passfile.
    pub fn connect(url: &str) -> Result<PgStore> {
        let ConnSpec { config, desc } = pgconn::parse(url)?;
        let client = config.connect(NoTls).map_err(|cause| Error::Pg {
            store: desc.clone(),
            cause,
        })?;
        let mut store = PgStore {
            client: RefCell::new(client),
            desc,
            stmts: RefCell::default(),
            lock_key: 0,
            locked: false,
        };
        store.init()?;
        let digest = sha2::Sha256::digest(format!("leakaudit-lock:{}", store.store_id()?));
        store.lock_key = i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
        Ok(store)
    }

    fn err(&self) -> impl Fn(::postgres::Error) -> Error + '_ {
        move |cause| Error::Pg {
            store: self.desc.clone(),
            cause,
        }
    }

    fn init(&mut self) -> Result<()> {
        let desc = self.desc.clone();
        let e = |cause| Error::Pg {
            store: desc.clone(),
            cause,
        };
        let mut c = self.client.borrow_mut();
        let mut tx = c.transaction().map_err(e)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&INIT_LOCK_KEY])
            .map_err(e)?;
        tx.batch_execute(PG_SCHEMA).map_err(e)?;
        let version: Option<String> = tx
            .query_opt("SELECT value FROM meta WHERE key = 'schema_version'", &[])
            .map_err(e)?
            .map(|r| r.get(0));
        match version {
            None => {
                let now = chrono::Utc::now().timestamp();
                tx.execute(
                    "INSERT INTO meta(key, value) VALUES ('schema_version', $1), ('store_id', $2), ('created_at', $3)",
                    &[&SCHEMA_VERSION.to_string(), &random_store_id()?, &now.to_string()],
                )
                .map_err(e)?;
            }
            Some(v) => {
                let found = v.parse::<i64>().unwrap_or(-1);
                if found != SCHEMA_VERSION {
                    return Err(Error::SchemaVersion {
                        store: desc,
                        found,
                        expected: SCHEMA_VERSION,
                    });
                }
            }
        }
        tx.commit().map_err(e)
    }

    fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>> {
        let mut c = self.client.borrow_mut();
        let st = prep(&self.stmts, &mut *c, sql).map_err(self.err())?;
        c.query(&st, params).map_err(self.err())
    }

    fn query_opt(&self, sql: &str, params: &[Param<'_>]) -> Result<Option<Row>> {
        let mut c = self.client.borrow_mut();
        let st = prep(&self.stmts, &mut *c, sql).map_err(self.err())?;
        c.query_opt(&st, params).map_err(self.err())
    }

    fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64> {
        let mut c = self.client.borrow_mut();
        let st = prep(&self.stmts, &mut *c, sql).map_err(self.err())?;
        c.execute(&st, params).map_err(self.err())
    }

    fn lock_holder(&self) -> Result<Option<LockHolder>> {
        Ok(self
            .query_opt(
                "SELECT operation, plan_hash, pid, host, since FROM lock_holder WHERE name = 'remediation'",
                &[],
            )?
            .map(|r| LockHolder {
                operation: r.get(0),
                plan_hash: r.get(1),
                pid: r.get::<_, i64>(2) as u32,
                host: r.get(3),
                since: r.get(4),
            }))
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // The session's end frees the lock anyway; removing the row keeps the name honest.
        let _ = self.unlock();
    }
}

/// Accounts per import statement.
const IMPORT_BATCH: usize = 1000;

const ACCOUNT_COLS: &str = "id, email, has_2fa, balance, locale, failed_logins, failed_logins_since, password_hash, password_reset_required, review_required";
const DELIVERY_COLS: &str = "plan_hash, message_key, recipient, state, attempts, reply, updated_at";
const TOKEN_COLS: &str =
    "selector, account_id, token_hash, created_at, expires_at, used_at, revoked_at, plan_hash";

fn row_to_account(r: &Row) -> Account {
    Account {
        id: r.get(0),
        email: r.get(1),
        has_2fa: r.get(2),
        balance: r.get(3),
        locale: r.get(4),
        failed_logins: r.get::<_, Option<i64>>(5).map(|v| v as u32),
        failed_logins_since: r.get(6),
        has_password: r.get::<_, Option<String>>(7).is_some(),
        password_reset_required: r.get(8),
        review_required: r.get(9),
    }
}

fn row_to_token(r: &Row) -> TokenInfo {
    TokenInfo {
        selector: r.get(0),
        account_id: r.get(1),
        token_hash: r.get(2),
        created_at: r.get(3),
        expires_at: r.get(4),
        used_at: r.get(5),
        revoked_at: r.get(6),
        plan_hash: r.get(7),
    }
}

fn row_to_delivery(r: &Row) -> DeliveryRow {
    DeliveryRow {
        plan_hash: r.get(0),
        message_key: r.get(1),
        recipient: r.get(2),
        // The CHECK constraint admits only the four states.
        state: DeliveryState::parse(r.get(3)).unwrap_or(DeliveryState::Sending),
        attempts: r.get::<_, i64>(4) as u32,
        reply: r.get(5),
        updated_at: r.get(6),
    }
}

impl AccountStore for PgStore {
    fn describe(&self) -> String {
        self.desc.clone()
    }

    fn store_id(&self) -> Result<String> {
        let r = self.query_opt("SELECT value FROM meta WHERE key = 'store_id'", &[])?;
        r.map(|r| r.get(0)).ok_or_else(|| {
            Error::Unsupported(format!("{}: the store has no store_id in meta", self.desc))
        })
    }

    fn import(&mut self, records: &[AccountRecord]) -> Result<ImportStats> {
        let desc = self.desc.clone();
        let e = |cause| Error::Pg {
            store: desc.clone(),
            cause,
        };
        let now = chrono::Utc::now().timestamp();
        let stmts = &self.stmts;
        let mut c = self.client.borrow_mut();
        let mut tx = c.transaction().map_err(e)?;
        let mut stats = ImportStats::default();
        // Rows go in batches (one round trip each, not one per row). An id may appear once
        // per statement (ON CONFLICT cannot touch a row twice): a repeated id starts a batch.
        let mut start = 0;
        while start < records.len() {
            let mut ids = std::collections::HashSet::new();
            let mut end = start;
            while end < records.len()
                && end - start < IMPORT_BATCH
                && ids.insert(records[end].id.as_str())
            {
                end += 1;
            }
            let batch = &records[start..end];
            let col =
                |f: &dyn Fn(&AccountRecord) -> String| batch.iter().map(f).collect::<Vec<_>>();
            let id = col(&|r| r.id.clone());
            let email = col(&|r| r.email.clone());
            let folded = col(&|r| fold(&r.email));
            let locale = col(&|r| r.locale.clone());
            let has_2fa: Vec<bool> = batch.iter().map(|r| r.has_2fa).collect();
            let balance: Vec<f64> = batch.iter().map(|r| r.balance).collect();
            let failed: Vec<Option<i64>> = batch
                .iter()
                .map(|r| r.failed_logins.map(i64::from))
                .collect();
            let since: Vec<Option<&str>> = batch
                .iter()
                .map(|r| r.failed_logins_since.as_deref())
                .collect();
            // `xmax = 0` holds for a row this statement inserted, not for one it updated.
            let rows = tx_query(
                stmts,
                &mut tx,
                "INSERT INTO accounts (id, email, email_folded, has_2fa, balance, locale, failed_logins, failed_logins_since, updated_at)
                 SELECT u.id, u.email, u.email_folded, u.has_2fa, u.balance, u.locale, u.failed_logins, u.failed_logins_since, $9
                 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bool[], $5::float8[], $6::text[], $7::int8[], $8::text[])
                   AS u(id, email, email_folded, has_2fa, balance, locale, failed_logins, failed_logins_since)
                 ON CONFLICT (id) DO UPDATE SET email = excluded.email, email_folded = excluded.email_folded,
                   has_2fa = excluded.has_2fa, balance = excluded.balance, locale = excluded.locale,
                   failed_logins = excluded.failed_logins, failed_logins_since = excluded.failed_logins_since,
                   updated_at = excluded.updated_at
                 RETURNING (xmax = 0)",
                &[&id, &email, &folded, &has_2fa, &balance, &locale, &failed, &since, &now],
            )
            .map_err(e)?;
            let inserted = rows.iter().filter(|r| r.get::<_, bool>(0)).count();
            stats.inserted += inserted;
            stats.updated += rows.len() - inserted;
            start = end;
        }
        tx.commit().map_err(e)?;
        Ok(stats)
    }

    fn account(&self, id: &str) -> Result<Option<Account>> {
        let sql = format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE id = $1");
        Ok(self.query_opt(&sql, &[&id])?.as_ref().map(row_to_account))
    }

    fn find_by_email(&self, key: &str, mode: MatchMode) -> Result<Vec<Account>> {
        let col = super::email_column(mode);
        let sql = format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE {col} = $1 ORDER BY id");
        Ok(self
            .query(&sql, &[&key])?
            .iter()
            .map(row_to_account)
            .collect())
    }

    fn find_many(&self, keys: &[&str], mode: MatchMode) -> Result<Vec<Vec<Account>>> {
        let col = super::email_column(mode);
        // The key column last: `row_to_account` reads the account columns by position.
        let sql =
            format!("SELECT {ACCOUNT_COLS}, {col} FROM accounts WHERE {col} = ANY($1) ORDER BY id");
        let mut by_key: std::collections::HashMap<String, Vec<Account>> =
            std::collections::HashMap::new();
        for r in self.query(&sql, &[&keys])? {
            by_key
                .entry(r.get(10))
                .or_default()
                .push(row_to_account(&r));
        }
        Ok(keys
            .iter()
            .map(|k| by_key.get(*k).cloned().unwrap_or_default())
            .collect())
    }

    fn account_count(&self) -> Result<u64> {
        let r = self.query("SELECT COUNT(*) FROM accounts", &[])?;
        Ok(r[0].get::<_, i64>(0) as u64)
    }

    fn set_password_hash(&mut self, id: &str, phc: Option<&str>) -> Result<()> {
        self.execute(
            "UPDATE accounts SET password_hash = $2 WHERE id = $1",
            &[&id, &phc],
        )
        .map(|_| ())
    }

    fn password_hash(&self, id: &str) -> Result<Option<String>> {
        Ok(self
            .query_opt("SELECT password_hash FROM accounts WHERE id = $1", &[&id])?
            .and_then(|r| r.get(0)))
    }

    fn add_session(&mut self, account_id: &str, session_id: &str, now: i64) -> Result<()> {
        self.execute(
            "INSERT INTO sessions(id, account_id, created_at) VALUES ($1, $2, $3)",
            &[&session_id, &account_id, &now],
        )
        .map(|_| ())
    }

    fn active_sessions(&self, account_id: &str) -> Result<u64> {
        let r = self.query(
            "SELECT COUNT(*) FROM sessions WHERE account_id = $1 AND revoked_at IS NULL",
            &[&account_id],
        )?;
        Ok(r[0].get::<_, i64>(0) as u64)
    }

    fn tokens(&self, account_id: &str) -> Result<Vec<TokenInfo>> {
        let sql = format!(
            "SELECT {TOKEN_COLS} FROM reset_tokens WHERE account_id = $1 ORDER BY created_at, seq"
        );
        Ok(self
            .query(&sql, &[&account_id])?
            .iter()
            .map(row_to_token)
            .collect())
    }

    fn token_by_selector(&self, selector: &str) -> Result<Option<TokenInfo>> {
        let sql = format!("SELECT {TOKEN_COLS} FROM reset_tokens WHERE selector = $1");
        Ok(self
            .query_opt(&sql, &[&selector])?
            .as_ref()
            .map(row_to_token))
    }

    fn mark_token_used(&mut self, selector: &str, now: i64) -> Result<bool> {
        // One UPDATE guarded by the live condition: two concurrent redemptions cannot both win
        // (the second waits for the first's row lock, then re-checks the condition).
        let n = self.execute(
            "UPDATE reset_tokens SET used_at = $2 WHERE selector = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $2",
            &[&selector, &now],
        )?;
        Ok(n == 1)
    }

    fn ensure_planned_in(
        &mut self,
        plan_hash: &str,
        incident: Option<&str>,
        rows: &[PlannedRow],
        now: i64,
    ) -> Result<()> {
        let desc = self.desc.clone();
        let e = |cause| Error::Pg {
            store: desc.clone(),
            cause,
        };
        let mut c = self.client.borrow_mut();
        let mut tx = c.transaction().map_err(e)?;
        if let Some(incident) = incident {
            tx.execute(
                "INSERT INTO plan_incidents(plan_hash, incident) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&plan_hash, &incident],
            )
            .map_err(e)?;
        }
        let st = tx
            .prepare(
                "INSERT INTO remediation_actions(plan_hash, action_id, account_id, kind, state, detail, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            )
            .map_err(e)?;
        let cover = tx
            .prepare(
                "INSERT INTO covered_actions(plan_hash, action_id, by_plan) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .map_err(e)?;
        for r in rows {
            let (state, detail) = match &r.covered_by {
                Some(by) => ("done", Some(format!("done by plan {by} of this incident"))),
                None => ("planned", None),
            };
            tx.execute(
                &st,
                &[
                    &plan_hash, &r.id, &r.account, &r.kind, &state, &detail, &now,
                ],
            )
            .map_err(e)?;
            if let Some(by) = &r.covered_by {
                tx.execute(&cover, &[&plan_hash, &r.id, by]).map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }

    fn plan_incident(&self, plan_hash: &str) -> Result<Option<String>> {
        let rows = self.query(
            "SELECT incident FROM plan_incidents WHERE plan_hash = $1",
            &[&plan_hash],
        )?;
        Ok(rows.first().map(|r| r.get(0)))
    }

    fn action_states(&self, plan_hash: &str) -> Result<Vec<ActionRow>> {
        let rows = self.query(
            "SELECT a.action_id, a.account_id, a.kind, a.state, a.detail, a.updated_at, c.by_plan
             FROM remediation_actions a LEFT JOIN covered_actions c
               ON c.plan_hash = a.plan_hash AND c.action_id = a.action_id
             WHERE a.plan_hash = $1 ORDER BY a.action_id",
            &[&plan_hash],
        )?;
        Ok(rows
            .iter()
            .map(|r| ActionRow {
                action_id: r.get(0),
                account_id: r.get(1),
                kind: r.get(2),
                state: ActionState::parse(r.get(3)).unwrap_or(ActionState::Failed),
                detail: r.get(4),
                updated_at: r.get(5),
                covered_by: r.get(6),
            })
            .collect())
    }

    fn plans(&self) -> Result<Vec<String>> {
        let rows = self.query(
            "SELECT DISTINCT plan_hash FROM remediation_actions ORDER BY plan_hash",
            &[],
        )?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn commit_account(&mut self, c: &AccountCommit<'_>) -> Result<()> {
        let desc = self.desc.clone();
        let e = |cause| Error::Pg {
            store: desc.clone(),
            cause,
        };
        let stmts = &self.stmts;
        let mut client = self.client.borrow_mut();
        let mut tx = client.transaction().map_err(e)?;
        // Row locks first: a second committer of this account waits here, then sees the
        // first one's committed `done`.
        tx_exec(
            stmts,
            &mut tx,
            "SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE",
            &[&c.account_id],
        )
        .map_err(e)?;
        let done = tx_query(
            stmts,
            &mut tx,
            "SELECT 1 FROM remediation_actions WHERE plan_hash = $1 AND action_id = ANY($2)
                 AND state = 'done' FOR UPDATE",
            &[&c.plan_hash, &c.action_ids],
        )
        .map_err(e)?;
        if !done.is_empty() {
            drop(tx);
            return Err(Error::AlreadyDone {
                store: desc,
                plan_hash: c.plan_hash.into(),
                account: c.account_id.into(),
            });
        }
        if let Some(t) = &c.reset {
            // The current password stops working: no hash verifies against NULL.
            tx_exec(
                stmts,
                &mut tx,
                "UPDATE accounts SET password_hash = NULL, password_reset_required = TRUE, updated_at = $2 WHERE id = $1",
                &[&c.account_id, &c.now],
            )
            .map_err(e)?;
            tx_exec(
                stmts,
                &mut tx,
                "UPDATE sessions SET revoked_at = $2 WHERE account_id = $1 AND revoked_at IS NULL",
                &[&c.account_id, &c.now],
            )
            .map_err(e)?;
            // One live token per account: earlier unused ones die with the new one's birth.
            tx_exec(
                stmts,
                &mut tx,
                "UPDATE reset_tokens SET revoked_at = $2 WHERE account_id = $1 AND used_at IS NULL AND revoked_at IS NULL",
                &[&c.account_id, &c.now],
            )
            .map_err(e)?;
            tx_exec(
                stmts,
                &mut tx,
                &format!("INSERT INTO reset_tokens({TOKEN_COLS}) VALUES ($1, $2, $3, $4, $5, NULL, NULL, $6)"),
                &[&t.selector, &c.account_id, &t.token_hash, &c.now, &t.expires_at, &c.plan_hash],
            )
            .map_err(e)?;
        }
        if let Some(reason) = &c.review {
            tx_exec(
                stmts,
                &mut tx,
                "UPDATE accounts SET review_required = TRUE, review_reason = $2, updated_at = $3 WHERE id = $1",
                &[&c.account_id, reason, &c.now],
            )
            .map_err(e)?;
        }
        tx_exec(
            stmts,
            &mut tx,
            "UPDATE remediation_actions SET state = 'done', detail = $4, updated_at = $3
             WHERE plan_hash = $1 AND action_id = ANY($2)",
            &[&c.plan_hash, &c.action_ids, &c.now, &c.outcome],
        )
        .map_err(e)?;
        tx.commit().map_err(e)
    }

    fn mark_failed(
        &mut self,
        plan_hash: &str,
        action_ids: &[String],
        reason: &str,
        now: i64,
    ) -> Result<()> {
        self.execute(
            "UPDATE remediation_actions SET state = 'failed', detail = $3, updated_at = $4
             WHERE plan_hash = $1 AND action_id = ANY($2) AND state <> 'done'",
            &[&plan_hash, &action_ids, &reason, &now],
        )
        .map(|_| ())
    }

    fn audit_head(&self, plan_hash: &str) -> Result<Option<AuditHead>> {
        Ok(self
            .query_opt(
                "SELECT seq, hash FROM audit_heads WHERE plan_hash = $1",
                &[&plan_hash],
            )?
            .map(|r| AuditHead {
                seq: r.get::<_, i64>(0) as u64,
                hash: r.get(1),
            }))
    }

    fn set_audit_head(&mut self, plan_hash: &str, head: &AuditHead) -> Result<()> {
        self.execute(
            "INSERT INTO audit_heads(plan_hash, seq, hash) VALUES ($1, $2, $3)
             ON CONFLICT (plan_hash) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
            &[&plan_hash, &(head.seq as i64), &head.hash],
        )
        .map(|_| ())
    }

    fn pin_reset_base(&mut self, plan_hash: &str, url: &str) -> Result<String> {
        self.execute(
            "INSERT INTO plan_settings(plan_hash, reset_base_url) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&plan_hash, &url],
        )?;
        Ok(self.reset_base(plan_hash)?.unwrap_or_else(|| url.into()))
    }

    fn reset_base(&self, plan_hash: &str) -> Result<Option<String>> {
        Ok(self
            .query_opt(
                "SELECT reset_base_url FROM plan_settings WHERE plan_hash = $1",
                &[&plan_hash],
            )?
            .map(|r| r.get(0)))
    }

    fn audit_heads(&self) -> Result<Vec<(String, AuditHead)>> {
        let rows = self.query(
            "SELECT plan_hash, seq, hash FROM audit_heads ORDER BY plan_hash",
            &[],
        )?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    r.get(0),
                    AuditHead {
                        seq: r.get::<_, i64>(1) as u64,
                        hash: r.get(2),
                    },
                )
            })
            .collect())
    }

    fn try_lock(&mut self, holder: &LockHolder) -> Result<LockAttempt> {
        if !self.locked {
            // Session advisory locks stack: take it once per handle, so one unlock frees it.
            let got: bool =
                self.query("SELECT pg_try_advisory_lock($1)", &[&self.lock_key])?[0].get(0);
            if !got {
                // A holder records itself just after taking the lock: give it a moment.
                for _ in 0..40 {
                    if let Some(h) = self.lock_holder()? {
                        return Ok(LockAttempt::Held(Some(h)));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(25));
                }
                return Ok(LockAttempt::Held(None));
            }
            self.locked = true;
        }
        // Overwrites the row a killed holder left behind.
        self.execute(
            "INSERT INTO lock_holder(name, operation, plan_hash, pid, host, since)
             VALUES ('remediation', $1, $2, $3, $4, $5)
             ON CONFLICT (name) DO UPDATE SET operation = excluded.operation,
               plan_hash = excluded.plan_hash, pid = excluded.pid, host = excluded.host,
               since = excluded.since",
            &[
                &holder.operation,
                &holder.plan_hash,
                &i64::from(holder.pid),
                &holder.host,
                &holder.since,
            ],
        )?;
        Ok(LockAttempt::Acquired)
    }

    fn unlock(&mut self) -> Result<()> {
        if !self.locked {
            return Ok(());
        }
        self.locked = false;
        // The row goes first, so a process that gets the lock next never sees ours.
        let r = self.execute("DELETE FROM lock_holder WHERE name = 'remediation'", &[]);
        let u = self.execute("SELECT pg_advisory_unlock($1)", &[&self.lock_key]);
        r?;
        u.map(|_| ())
    }

    fn claim_delivery(
        &mut self,
        plan_hash: &str,
        message_key: &str,
        recipient: &str,
        retry_failed: bool,
        now: i64,
    ) -> Result<DeliveryClaim> {
        let desc = self.desc.clone();
        let e = |cause| Error::Pg {
            store: desc.clone(),
            cause,
        };
        let stmts = &self.stmts;
        let mut c = self.client.borrow_mut();
        let mut tx = c.transaction().map_err(e)?;
        // A new message: the insert is the claim (a concurrent inserter waits for ours, then
        // does nothing).
        let inserted = tx
            .execute(
                "INSERT INTO deliveries(plan_hash, message_key, recipient, state, attempts, updated_at)
                 VALUES ($1, $2, $3, 'sending', 1, $4) ON CONFLICT DO NOTHING",
                &[&plan_hash, &message_key, &recipient, &now],
            )
            .map_err(e)?;
        if inserted == 1 {
            tx.commit().map_err(e)?;
            return Ok(DeliveryClaim::Claimed);
        }
        let row = tx
            .query_one(
                &format!("SELECT {DELIVERY_COLS} FROM deliveries WHERE plan_hash = $1 AND message_key = $2 FOR UPDATE"),
                &[&plan_hash, &message_key],
            )
            .map_err(e)?;
        let r = row_to_delivery(&row);
        let claim = match r.state {
            DeliveryState::Sent => DeliveryClaim::AlreadySent,
            DeliveryState::Sending => DeliveryClaim::InDoubt(r),
            DeliveryState::Failed if !retry_failed => DeliveryClaim::Failed(r),
            _ => {
                tx_exec(
                    stmts,
                    &mut tx,
                    "UPDATE deliveries SET state = 'sending', attempts = attempts + 1, recipient = $3,
                       updated_at = $4 WHERE plan_hash = $1 AND message_key = $2",
                    &[&plan_hash, &message_key, &recipient, &now],
                )
                .map_err(e)?;
                DeliveryClaim::Claimed
            }
        };
        tx.commit().map_err(e)?;
        Ok(claim)
    }

    fn finish_delivery(
        &mut self,
        plan_hash: &str,
        message_key: &str,
        state: DeliveryState,
        reply: Option<&str>,
        now: i64,
    ) -> Result<()> {
        let n = self.execute(
            "UPDATE deliveries SET state = $3, reply = $4, updated_at = $5 WHERE plan_hash = $1 AND message_key = $2",
            &[&plan_hash, &message_key, &state.as_str(), &reply, &now],
        )?;
        if n == 0 {
            return Err(Error::NotClaimed {
                message_key: message_key.into(),
            });
        }
        Ok(())
    }

    fn deliveries(&self, plan_hash: &str) -> Result<Vec<DeliveryRow>> {
        let sql = format!(
            "SELECT {DELIVERY_COLS} FROM deliveries WHERE plan_hash = $1 ORDER BY message_key"
        );
        Ok(self
            .query(&sql, &[&plan_hash])?
            .iter()
            .map(row_to_delivery)
            .collect())
    }
}
