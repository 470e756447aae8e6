//! SQLite account store (rusqlite, bundled): one file, created on first use with mode 0600
//! (it holds addresses), WAL journal, `synchronous=FULL` so a committed reset survives a crash.

use super::*;
use crate::error::Error;
use crate::matching::fold;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};

/// The embedded default store.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    /// The locked `<store>.lock` while this handle holds the remediation lock.
    lock: Option<std::fs::File>,
}

impl SqliteStore {
    /// Opens the store at `path`, creating it (mode 0600) with the schema on first use.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        let existed = path.exists();
        if !existed {
            if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            }
            // Create the file 0600 before SQLite opens it: it will hold addresses.
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| Error::io(path, e))?;
        }
        let desc = path.display().to_string();
        let db = |source| Error::Db {
            store: desc.clone(),
            source,
        };
        let conn = Connection::open(path).map_err(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(db)?;
        let mut store = SqliteStore {
            conn,
            path: path.to_path_buf(),
            lock: None,
        };
        store.init()?;
        Ok(store)
    }

    fn db(&self) -> impl Fn(rusqlite::Error) -> Error + '_ {
        move |source| Error::Db {
            store: self.path.display().to_string(),
            source,
        }
    }

    fn init(&mut self) -> Result<()> {
        let desc = self.path.display().to_string();
        let db = |source| Error::Db {
            store: desc.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(db)?;
        tx.execute_batch(SCHEMA).map_err(db)?;
        let version: Option<String> = tx
            .query_row(
                "SELECT value FROM meta WHERE key='schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?;
        match version {
            None => {
                let now = chrono::Utc::now().timestamp();
                tx.execute(
                    "INSERT INTO meta(key, value) VALUES ('schema_version', ?1), ('store_id', ?2), ('created_at', ?3)",
                    params![SCHEMA_VERSION.to_string(), super::random_store_id()?, now.to_string()],
                )
                .map_err(db)?;
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
        tx.commit().map_err(db)?;
        Ok(())
    }

    /// `<store>.lock`, the file the remediation lock is taken on.
    pub fn lock_path(&self) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(".lock");
        PathBuf::from(p)
    }

    fn lock_holder(&self) -> Result<Option<LockHolder>> {
        self.conn
            .query_row(
                "SELECT operation, plan_hash, pid, host, since FROM lock_holder WHERE name = 'remediation'",
                [],
                |r| {
                    Ok(LockHolder {
                        operation: r.get(0)?,
                        plan_hash: r.get(1)?,
                        pid: r.get::<_, i64>(2)? as u32,
                        host: r.get(3)?,
                        since: r.get(4)?,
                    })
                },
            )
            .optional()
            .map_err(self.db())
    }

    fn row_to_account(r: &rusqlite::Row<'_>) -> rusqlite::Result<Account> {
        Ok(Account {
            id: r.get(0)?,
            email: r.get(1)?,
            has_2fa: r.get::<_, i64>(2)? != 0,
            balance: r.get(3)?,
            locale: r.get(4)?,
            failed_logins: r.get::<_, Option<i64>>(5)?.map(|v| v as u32),
            failed_logins_since: r.get(6)?,
            has_password: r.get::<_, Option<String>>(7)?.is_some(),
            password_reset_required: r.get::<_, i64>(8)? != 0,
            review_required: r.get::<_, i64>(9)? != 0,
        })
    }

    fn row_to_delivery(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeliveryRow> {
        let state: String = r.get(3)?;
        Ok(DeliveryRow {
            plan_hash: r.get(0)?,
            message_key: r.get(1)?,
            recipient: r.get(2)?,
            // The CHECK constraint admits only the four states.
            state: DeliveryState::parse(&state).unwrap_or(DeliveryState::Sending),
            attempts: r.get::<_, i64>(4)? as u32,
            reply: r.get(5)?,
            updated_at: r.get(6)?,
        })
    }

    fn row_to_token(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenInfo> {
        Ok(TokenInfo {
            selector: r.get(0)?,
            account_id: r.get(1)?,
            token_hash: r.get(2)?,
            created_at: r.get(3)?,
            expires_at: r.get(4)?,
            used_at: r.get(5)?,
            revoked_at: r.get(6)?,
            plan_hash: r.get(7)?,
        })
    }
}

const ACCOUNT_COLS: &str = "id, email, has_2fa, balance, locale, failed_logins, failed_logins_since, password_hash, password_reset_required, review_required";
const DELIVERY_COLS: &str = "plan_hash, message_key, recipient, state, attempts, reply, updated_at";
const TOKEN_COLS: &str =
    "selector, account_id, token_hash, created_at, expires_at, used_at, revoked_at, plan_hash";

impl AccountStore for SqliteStore {
    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn store_id(&self) -> Result<String> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key='store_id'", [], |r| {
                r.get(0)
            })
            .map_err(self.db())
    }

    fn import(&mut self, records: &[AccountRecord]) -> Result<ImportStats> {
        let desc = self.describe();
        let db = |source| Error::Db {
            store: desc.clone(),
            source,
        };
        let now = chrono::Utc::now().timestamp();
        let tx = self.conn.transaction().map_err(db)?;
        let mut stats = ImportStats::default();
        {
            let mut exists = tx
                .prepare("SELECT 1 FROM accounts WHERE id = ?1")
                .map_err(db)?;
            let mut up = tx
                .prepare(
                    "INSERT INTO accounts (id, email, email_folded, has_2fa, balance, locale, failed_logins, failed_logins_since, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                     ON CONFLICT(id) DO UPDATE SET email=excluded.email, email_folded=excluded.email_folded,
                       has_2fa=excluded.has_2fa, balance=excluded.balance, locale=excluded.locale,
                       failed_logins=excluded.failed_logins, failed_logins_since=excluded.failed_logins_since,
                       updated_at=excluded.updated_at",
                )
                .map_err(db)?;
            for r in records {
                if exists.exists(params![r.id]).map_err(db)? {
                    stats.updated += 1;
                } else {
                    stats.inserted += 1;
                }
                up.execute(params![
                    r.id,
                    r.email,
                    fold(&r.email),
                    r.has_2fa as i64,
                    r.balance,
                    r.locale,
                    r.failed_logins.map(|v| v as i64),
                    r.failed_logins_since,
                    now
                ])
                .map_err(db)?;
            }
        }
        tx.commit().map_err(db)?;
        Ok(stats)
    }

    fn account(&self, id: &str) -> Result<Option<Account>> {
        self.conn
            .query_row(
                &format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE id = ?1"),
                params![id],
                Self::row_to_account,
            )
            .optional()
            .map_err(self.db())
    }

    fn find_by_email(&self, key: &str, mode: MatchMode) -> Result<Vec<Account>> {
        let col = super::email_column(mode);
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT {ACCOUNT_COLS} FROM accounts WHERE {col} = ?1 ORDER BY id"
            ))
            .map_err(self.db())?;
        let rows = st
            .query_map(params![key], Self::row_to_account)
            .map_err(self.db())?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.db())
    }

    fn find_many(&self, keys: &[&str], mode: MatchMode) -> Result<Vec<Vec<Account>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let col = super::email_column(mode);
        // One statement per batch (a point query each made 3,000,000 lookups take ~20 s);
        // the key column last, after the account columns `row_to_account` reads by position.
        let marks = vec!["?"; keys.len()].join(",");
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT {ACCOUNT_COLS}, {col} FROM accounts WHERE {col} IN ({marks}) ORDER BY id"
            ))
            .map_err(self.db())?;
        let mut by_key: std::collections::HashMap<String, Vec<Account>> =
            std::collections::HashMap::new();
        let rows = st
            .query_map(rusqlite::params_from_iter(keys.iter()), |r| {
                Ok((r.get::<_, String>(10)?, Self::row_to_account(r)?))
            })
            .map_err(self.db())?;
        for row in rows {
            let (key, account) = row.map_err(self.db())?;
            by_key.entry(key).or_default().push(account);
        }
        Ok(keys
            .iter()
            .map(|k| by_key.get(*k).cloned().unwrap_or_default())
            .collect())
    }

    fn account_count(&self) -> Result<u64> {
        self.conn
            .query_row("SELECT COUNT(*) FROM accounts", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(self.db())
    }

    fn set_password_hash(&mut self, id: &str, phc: Option<&str>) -> Result<()> {
        self.conn
            .execute(
                "UPDATE accounts SET password_hash = ?2 WHERE id = ?1",
                params![id, phc],
            )
            .map(|_| ())
            .map_err(self.db())
    }

    fn password_hash(&self, id: &str) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT password_hash FROM accounts WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()
            .map(Option::flatten)
            .map_err(self.db())
    }

    fn add_session(&mut self, account_id: &str, session_id: &str, now: i64) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO sessions(id, account_id, created_at) VALUES (?1, ?2, ?3)",
                params![session_id, account_id, now],
            )
            .map(|_| ())
            .map_err(self.db())
    }

    fn active_sessions(&self, account_id: &str) -> Result<u64> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM sessions WHERE account_id = ?1 AND revoked_at IS NULL",
                params![account_id],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(self.db())
    }

    fn tokens(&self, account_id: &str) -> Result<Vec<TokenInfo>> {
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT {TOKEN_COLS} FROM reset_tokens WHERE account_id = ?1 ORDER BY created_at, rowid"
            ))
            .map_err(self.db())?;
        let rows = st
            .query_map(params![account_id], Self::row_to_token)
            .map_err(self.db())?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.db())
    }

    fn token_by_selector(&self, selector: &str) -> Result<Option<TokenInfo>> {
        self.conn
            .query_row(
                &format!("SELECT {TOKEN_COLS} FROM reset_tokens WHERE selector = ?1"),
                params![selector],
                Self::row_to_token,
            )
            .optional()
            .map_err(self.db())
    }

    fn mark_token_used(&mut self, selector: &str, now: i64) -> Result<bool> {
        // One UPDATE guarded by the live condition: two concurrent redemptions cannot both win.
        let n = self
            .conn
            .execute(
                "UPDATE reset_tokens SET used_at = ?2 WHERE selector = ?1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > ?2",
                params![selector, now],
            )
            .map_err(self.db())?;
        Ok(n == 1)
    }

    fn ensure_planned_in(
        &mut self,
        plan_hash: &str,
        incident: Option<&str>,
        rows: &[PlannedRow],
        now: i64,
    ) -> Result<()> {
        let desc = self.describe();
        let db = |source| Error::Db {
            store: desc.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(db)?;
        {
            if let Some(incident) = incident {
                tx.execute(
                    "INSERT OR IGNORE INTO plan_incidents(plan_hash, incident) VALUES (?1, ?2)",
                    params![plan_hash, incident],
                )
                .map_err(db)?;
            }
            let mut st = tx
                .prepare(
                    "INSERT OR IGNORE INTO remediation_actions(plan_hash, action_id, account_id, kind, state, detail, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(db)?;
            let mut cover = tx
                .prepare(
                    "INSERT OR IGNORE INTO covered_actions(plan_hash, action_id, by_plan) VALUES (?1, ?2, ?3)",
                )
                .map_err(db)?;
            for r in rows {
                let (state, detail) = match &r.covered_by {
                    Some(by) => ("done", Some(format!("done by plan {by} of this incident"))),
                    None => ("planned", None),
                };
                st.execute(params![
                    plan_hash, r.id, r.account, r.kind, state, detail, now
                ])
                .map_err(db)?;
                if let Some(by) = &r.covered_by {
                    cover.execute(params![plan_hash, r.id, by]).map_err(db)?;
                }
            }
        }
        tx.commit().map_err(db)
    }

    fn plan_incident(&self, plan_hash: &str) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT incident FROM plan_incidents WHERE plan_hash = ?1",
                params![plan_hash],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.db())
    }

    fn action_states(&self, plan_hash: &str) -> Result<Vec<ActionRow>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT a.action_id, a.account_id, a.kind, a.state, a.detail, a.updated_at, c.by_plan
                 FROM remediation_actions a LEFT JOIN covered_actions c
                   ON c.plan_hash = a.plan_hash AND c.action_id = a.action_id
                 WHERE a.plan_hash = ?1 ORDER BY a.action_id",
            )
            .map_err(self.db())?;
        let rows = st
            .query_map(params![plan_hash], |r| {
                let state: String = r.get(3)?;
                Ok(ActionRow {
                    action_id: r.get(0)?,
                    account_id: r.get(1)?,
                    kind: r.get(2)?,
                    state: ActionState::parse(&state).unwrap_or(ActionState::Failed),
                    detail: r.get(4)?,
                    updated_at: r.get(5)?,
                    covered_by: r.get(6)?,
                })
            })
            .map_err(self.db())?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.db())
    }

    fn plans(&self) -> Result<Vec<String>> {
        let mut st = self
            .conn
            .prepare("SELECT DISTINCT plan_hash FROM remediation_actions ORDER BY plan_hash")
            .map_err(self.db())?;
        let rows = st.query_map([], |r| r.get(0)).map_err(self.db())?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.db())
    }

    fn commit_account(&mut self, c: &AccountCommit<'_>) -> Result<()> {
        let desc = self.describe();
        let db = |source| Error::Db {
            store: desc.clone(),
            source,
        };
        // IMMEDIATE: the write lock is held from the check to the commit, so a second
        // committer (another process, even one without the remediation lock) sees this one's
        // `done` and is refused.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db)?;
        {
            let mut st = tx
                .prepare_cached(
                    "SELECT 1 FROM remediation_actions WHERE plan_hash = ?1 AND action_id = ?2 AND state = 'done'",
                )
                .map_err(db)?;
            for id in &c.action_ids {
                if st.exists(params![c.plan_hash, id]).map_err(db)? {
                    return Err(Error::AlreadyDone {
                        store: desc.clone(),
                        plan_hash: c.plan_hash.into(),
                        account: c.account_id.into(),
                    });
                }
            }
        }
        if let Some(t) = &c.reset {
            // The current password stops working: no hash verifies against NULL.
            tx.execute(
                "UPDATE accounts SET password_hash = NULL, password_reset_required = 1, updated_at = ?2 WHERE id = ?1",
                params![c.account_id, c.now],
            )
            .map_err(db)?;
            tx.execute(
                "UPDATE sessions SET revoked_at = ?2 WHERE account_id = ?1 AND revoked_at IS NULL",
                params![c.account_id, c.now],
            )
            .map_err(db)?;
            // One live token per account: earlier unused ones die with the new one's birth.
            tx.execute(
                "UPDATE reset_tokens SET revoked_at = ?2 WHERE account_id = ?1 AND used_at IS NULL AND revoked_at IS NULL",
                params![c.account_id, c.now],
            )
            .map_err(db)?;
            tx.execute(
                &format!("INSERT INTO reset_tokens({TOKEN_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, NULL, NULL, ?6)"),
                params![t.selector, c.account_id, t.token_hash, c.now, t.expires_at, c.plan_hash],
            )
            .map_err(db)?;
        }
        if let Some(reason) = &c.review {
            tx.execute(
                "UPDATE accounts SET review_required = 1, review_reason = ?2, updated_at = ?3 WHERE id = ?1",
                params![c.account_id, reason, c.now],
            )
            .map_err(db)?;
        }
        for id in &c.action_ids {
            tx.execute(
                "UPDATE remediation_actions SET state = 'done', detail = ?4, updated_at = ?3 WHERE plan_hash = ?1 AND action_id = ?2",
                params![c.plan_hash, id, c.now, c.outcome],
            )
            .map_err(db)?;
        }
        tx.commit().map_err(db)
    }

    fn mark_failed(
        &mut self,
        plan_hash: &str,
        action_ids: &[String],
        reason: &str,
        now: i64,
    ) -> Result<()> {
        let desc = self.describe();
        let db = |source| Error::Db {
            store: desc.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(db)?;
        for id in action_ids {
            tx.execute(
                "UPDATE remediation_actions SET state = 'failed', detail = ?3, updated_at = ?4 WHERE plan_hash = ?1 AND action_id = ?2 AND state != 'done'",
                params![plan_hash, id, reason, now],
            )
            .map_err(db)?;
        }
        tx.commit().map_err(db)
    }

    fn audit_head(&self, plan_hash: &str) -> Result<Option<AuditHead>> {
        self.conn
            .query_row(
                "SELECT seq, hash FROM audit_heads WHERE plan_hash = ?1",
                params![plan_hash],
                |r| {
                    Ok(AuditHead {
                        seq: r.get::<_, i64>(0)? as u64,
                        hash: r.get(1)?,
                    })
                },
            )
            .optional()
            .map_err(self.db())
    }

    fn set_audit_head(&mut self, plan_hash: &str, head: &AuditHead) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO audit_heads(plan_hash, seq, hash) VALUES (?1, ?2, ?3)
                 ON CONFLICT(plan_hash) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
                params![plan_hash, head.seq as i64, head.hash],
            )
            .map(|_| ())
            .map_err(self.db())
    }

    fn pin_reset_base(&mut self, plan_hash: &str, url: &str) -> Result<String> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO plan_settings(plan_hash, reset_base_url) VALUES (?1, ?2)",
                params![plan_hash, url],
            )
            .map_err(self.db())?;
        Ok(self.reset_base(plan_hash)?.unwrap_or_else(|| url.into()))
    }

    fn reset_base(&self, plan_hash: &str) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT reset_base_url FROM plan_settings WHERE plan_hash = ?1",
                params![plan_hash],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.db())
    }

    fn audit_heads(&self) -> Result<Vec<(String, AuditHead)>> {
        let mut st = self
            .conn
            .prepare("SELECT plan_hash, seq, hash FROM audit_heads ORDER BY plan_hash")
            .map_err(self.db())?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    AuditHead {
                        seq: r.get::<_, i64>(1)? as u64,
                        hash: r.get(2)?,
                    },
                ))
            })
            .map_err(self.db())?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.db())
    }

    fn try_lock(&mut self, holder: &LockHolder) -> Result<LockAttempt> {
        if self.lock.is_none() {
            use std::os::unix::fs::OpenOptionsExt;
            let p = self.lock_path();
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&p)
                .map_err(|e| Error::io(&p, e))?;
            match f.try_lock() {
                Ok(()) => self.lock = Some(f),
                Err(std::fs::TryLockError::WouldBlock) => {
                    // A holder records itself just after taking the lock: give it a moment.
                    for _ in 0..40 {
                        if let Some(h) = self.lock_holder()? {
                            return Ok(LockAttempt::Held(Some(h)));
                        }
                        std::thread::sleep(std::time::Duration::from_millis(25));
                    }
                    return Ok(LockAttempt::Held(None));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&p, e)),
            }
        }
        // Overwrites the row a killed holder left behind.
        self.conn
            .execute(
                "INSERT OR REPLACE INTO lock_holder(name, operation, plan_hash, pid, host, since)
                 VALUES ('remediation', ?1, ?2, ?3, ?4, ?5)",
                params![
                    holder.operation,
                    holder.plan_hash,
                    holder.pid as i64,
                    holder.host,
                    holder.since
                ],
            )
            .map_err(self.db())?;
        Ok(LockAttempt::Acquired)
    }

    fn unlock(&mut self) -> Result<()> {
        let Some(f) = self.lock.take() else {
            return Ok(());
        };
        // The row goes first, so a process that gets the lock next never sees ours.
        let r = self
            .conn
            .execute("DELETE FROM lock_holder WHERE name = 'remediation'", [])
            .map(|_| ())
            .map_err(self.db());
        drop(f);
        r
    }

    fn claim_delivery(
        &mut self,
        plan_hash: &str,
        message_key: &str,
        recipient: &str,
        retry_failed: bool,
        now: i64,
    ) -> Result<DeliveryClaim> {
        let desc = self.describe();
        let db = |source| Error::Db {
            store: desc.clone(),
            source,
        };
        // IMMEDIATE: the write lock is taken before the read, so two senders cannot both see
        // the message unclaimed.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db)?;
        let row = tx
            .query_row(
                &format!("SELECT {DELIVERY_COLS} FROM deliveries WHERE plan_hash = ?1 AND message_key = ?2"),
                params![plan_hash, message_key],
                Self::row_to_delivery,
            )
            .optional()
            .map_err(db)?;
        let claim = match row {
            Some(r) if r.state == DeliveryState::Sent => DeliveryClaim::AlreadySent,
            Some(r) if r.state == DeliveryState::Sending => DeliveryClaim::InDoubt(r),
            Some(r) if r.state == DeliveryState::Failed && !retry_failed => {
                DeliveryClaim::Failed(r)
            }
            _ => {
                tx.execute(
                    "INSERT INTO deliveries(plan_hash, message_key, recipient, state, attempts, updated_at)
                     VALUES (?1, ?2, ?3, 'sending', 1, ?4)
                     ON CONFLICT(plan_hash, message_key) DO UPDATE SET state = 'sending',
                       attempts = attempts + 1, recipient = excluded.recipient, updated_at = excluded.updated_at",
                    params![plan_hash, message_key, recipient, now],
                )
                .map_err(db)?;
                DeliveryClaim::Claimed
            }
        };
        tx.commit().map_err(db)?;
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
        let n = self
            .conn
            .execute(
                "UPDATE deliveries SET state = ?3, reply = ?4, updated_at = ?5 WHERE plan_hash = ?1 AND message_key = ?2",
                params![plan_hash, message_key, state.as_str(), reply, now],
            )
            .map_err(self.db())?;
        if n == 0 {
            return Err(Error::NotClaimed {
                message_key: message_key.into(),
            });
        }
        Ok(())
    }

    fn deliveries(&self, plan_hash: &str) -> Result<Vec<DeliveryRow>> {
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT {DELIVERY_COLS} FROM deliveries WHERE plan_hash = ?1 ORDER BY message_key"
            ))
            .map_err(self.db())?;
        let rows = st
            .query_map(params![plan_hash], Self::row_to_delivery)
            .map_err(self.db())?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.db())
    }
}
