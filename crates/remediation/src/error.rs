//! Typed errors of the remediation crate. Every variant names the file (or store) it is about,
//! and a line when there is one, so the CLI can report it without guessing.

use std::path::PathBuf;

/// One bad input line (CSV row, findings line, policy key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: u64,
    pub reason: String,
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// Why a CSV record could not be read, without the csv crate's own position (which counts
/// from the first record, not the file's first line): the caller names the line where the
/// record starts.
pub(crate) fn csv_reason(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("{len} fields, the header has {expected_len}"),
        csv::ErrorKind::Utf8 { err, .. } => format!("not UTF-8 (field {})", err.field() + 1),
        csv::ErrorKind::Io(err) => format!("unreadable: {err}"),
        _ => e.to_string(),
    }
}

fn join_errors(errs: &[Error]) -> String {
    errs.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

fn join_lines(path: &std::path::Path, errs: &[LineError]) -> String {
    errs.iter()
        .map(|e| format!("{}:{}: {}", path.display(), e.line, e.reason))
        .collect::<Vec<_>>()
        .join("\n")
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A database error; `store` is the store's description (the SQLite file path).
    #[error("{store}: database error: {source}")]
    Db {
        store: String,
        #[source]
        source: rusqlite::Error,
    },
    /// A PostgreSQL error; `store` is the connection URL without its password.
    #[error("{store}: database error: {}", pg_reason(cause))]
    Pg {
        store: String,
        cause: postgres::Error,
    },
    /// `commit_account` found actions of the account already `done` (another run committed
    /// them): the commit was refused as a whole, nothing changed.
    #[error("{store}: account `{account}`: actions of plan {plan_hash} are already done (committed by another run); nothing was changed")]
    AlreadyDone {
        store: String,
        plan_hash: String,
        account: String,
    },
    /// One input file with one or more bad lines; nothing from it was used.
    #[error("{} ({} bad line(s); nothing imported)\n{}", path.display(), errors.len(), join_lines(path, errors))]
    BadLines {
        path: PathBuf,
        errors: Vec<LineError>,
    },
    /// A malformed file as a whole (bad JSON, bad TOML...), with position when known.
    #[error("{}{}: {reason}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Parse {
        path: PathBuf,
        line: Option<u64>,
        reason: String,
    },
    /// The plan's content hash does not match its actions.
    #[error("{}: plan content hash mismatch (file says {stated}, content hashes to {computed}): the plan was modified; refusing", path.display())]
    PlanHashMismatch {
        path: PathBuf,
        stated: String,
        computed: String,
    },
    /// The plan was made against a different account store.
    #[error("{}: plan was made for store {plan_store}, but this store is {store_id}; refusing", path.display())]
    WrongStore {
        path: PathBuf,
        plan_store: String,
        store_id: String,
    },
    /// The affected list was matched against a different account store.
    #[error("the affected list was matched against store {list_store}, but this store is {store_id}; refusing (match it against this store again)")]
    ListWrongStore {
        list_store: String,
        store_id: String,
    },
    /// The affected list carries no store id: it was never matched against accounts.
    #[error("the affected list was never matched against an account store; match it first")]
    ListNotMatched,
    /// An account id of the affected list is not in the store.
    #[error("row {row} of the affected list: account `{account}` is not in store {store_id}")]
    ListUnknownAccount {
        account: String,
        row: usize,
        store_id: String,
    },
    /// The store's schema is newer or older than this build understands.
    #[error("{store}: schema version {found} is not supported (this build knows {expected})")]
    SchemaVersion {
        store: String,
        found: i64,
        expected: i64,
    },
    /// A notification failed the outbox safety check (it would expose someone).
    #[error("{}: notification refused: {reason}", path.display())]
    UnsafeMessage { path: PathBuf, reason: String },
    /// The audit log does not verify.
    #[error("{}:{line}: audit log broken: {reason}", path.display())]
    AuditLog {
        path: PathBuf,
        line: u64,
        reason: String,
    },
    /// Argon2 parameters below the OWASP floor, or another bad setting.
    #[error("invalid setting: {0}")]
    Setting(String),
    /// Token generation or hashing failed (no OS randomness, argon2 error).
    #[error("crypto: {0}")]
    Crypto(String),
    /// Another process holds the store's remediation lock (an apply or release running).
    #[error("{store}: another {} is running; wait for it to finish{}", holder.as_ref().map_or_else(|| "apply or release (holder not yet recorded)".to_string(), |h| h.to_string()), if *waited_secs > 0 { format!(" (waited {waited_secs} s)") } else { String::new() })]
    Locked {
        store: String,
        holder: Option<crate::lock::LockHolder>,
        waited_secs: u64,
    },
    /// Several inputs with problems, each with its own (every template file at once).
    #[error("{}", join_errors(.0))]
    Several(Vec<Error>),
    /// A store, executor or transport this build cannot use.
    #[error("{0}")]
    Unsupported(String),
    /// `remediate reissue` cannot reissue this account's notification.
    #[error("account {account}: cannot reissue: {reason}")]
    NotReissuable { account: String, reason: String },
    /// A delivery outcome for a message no sender claimed.
    #[error("outbox message {message_key}: no delivery was claimed for it")]
    NotClaimed { message_key: String },
    /// A folder or file that would hold secrets is not private to us (or is a link).
    #[error(transparent)]
    Unsafe(#[from] leakaudit_scanner::safefs::UnsafePath),
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The text of a postgres error with its cause (the server's message), which the error's own
/// `Display` leaves out.
pub fn pg_reason(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{}: {}", db.severity(), db.message());
            if let Some(d) = db.detail() {
                s.push_str(&format!(" ({d})"));
            }
            s
        }
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}
