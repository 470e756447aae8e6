//! The schemas (SQLite, and the same tables for PostgreSQL). Tables are only ever added with `CREATE TABLE IF NOT EXISTS`, so a
//! store made by an earlier build of the same schema version gains them when opened.

/// Schema version this build reads and writes (`meta.schema_version`).
pub const SCHEMA_VERSION: i64 = 1;

/// The SQLite schema (version 1). Times are seconds since the Unix epoch, UTC.
///
/// ```sql
/// meta(key TEXT PRIMARY KEY, value TEXT)        -- schema_version, store_id, created_at
/// accounts(id TEXT PRIMARY KEY,
///          email TEXT,                          -- canonical address
///          email_folded TEXT,                   -- provider-folded (Gmail) form, for --fold
///          has_2fa INTEGER, balance REAL, locale TEXT,
///          failed_logins INTEGER NULL, failed_logins_since TEXT NULL,
///          password_hash TEXT NULL,             -- PHC string; NULL = password invalidated
///          password_reset_required INTEGER, review_required INTEGER, review_reason TEXT NULL,
///          updated_at INTEGER)
/// sessions(id TEXT PRIMARY KEY, account_id TEXT REFERENCES accounts, created_at INTEGER,
///          revoked_at INTEGER NULL)
/// reset_tokens(selector TEXT PRIMARY KEY,       -- public half of the link
///              account_id TEXT REFERENCES accounts,
///              token_hash TEXT,                 -- argon2id PHC string of the 32-byte secret
///              created_at INTEGER, expires_at INTEGER, used_at INTEGER NULL,
///              revoked_at INTEGER NULL, plan_hash TEXT NULL)
/// remediation_actions(plan_hash TEXT, action_id TEXT, account_id TEXT, kind TEXT,
///              state TEXT CHECK (state IN ('planned','done','failed')), detail TEXT NULL,
///              updated_at INTEGER, PRIMARY KEY (plan_hash, action_id))
/// audit_heads(plan_hash TEXT PRIMARY KEY, seq INTEGER, hash TEXT)
/// plan_settings(plan_hash TEXT PRIMARY KEY,     -- what the plan's messages were made with
///               reset_base_url TEXT)
/// lock_holder(name TEXT PRIMARY KEY,            -- 'remediation': who holds the lock
///             operation TEXT, plan_hash TEXT, pid INTEGER, host TEXT, since INTEGER)
/// deliveries(plan_hash TEXT, message_key TEXT,  -- one outbox message (its Message-ID)
///            recipient TEXT,
///            state TEXT CHECK (state IN ('sending','sent','deferred','failed')),
///            attempts INTEGER, reply TEXT NULL, updated_at INTEGER,
///            PRIMARY KEY (plan_hash, message_key))
/// plan_incidents(plan_hash TEXT PRIMARY KEY,   -- the incident a plan belongs to (a plan
///                incident TEXT)                -- not listed is an incident of its own)
/// covered_actions(plan_hash TEXT, action_id TEXT, -- done by an earlier plan of the same
///                 by_plan TEXT,                 -- incident: recorded done, never redone
///                 PRIMARY KEY (plan_hash, action_id))
/// ```
///
/// The lock itself is an exclusive `flock` on `<store>.lock` beside the database (never the
/// database file: closing a second descriptor of it would drop SQLite's own POSIX locks). The
/// kernel releases it when the holder exits or is killed; `lock_holder` only names it.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL,
    email_folded TEXT NOT NULL,
    has_2fa INTEGER NOT NULL,
    balance REAL NOT NULL,
    locale TEXT NOT NULL,
    failed_logins INTEGER,
    failed_logins_since TEXT,
    password_hash TEXT,
    password_reset_required INTEGER NOT NULL DEFAULT 0,
    review_required INTEGER NOT NULL DEFAULT 0,
    review_reason TEXT,
    updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS accounts_email ON accounts(email);
CREATE INDEX IF NOT EXISTS accounts_email_folded ON accounts(email_folded);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX IF NOT EXISTS sessions_account ON sessions(account_id);
CREATE TABLE IF NOT EXISTS reset_tokens (
    selector TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    token_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER,
    revoked_at INTEGER,
    plan_hash TEXT
);
CREATE INDEX IF NOT EXISTS reset_tokens_account ON reset_tokens(account_id);
CREATE TABLE IF NOT EXISTS remediation_actions (
    plan_hash TEXT NOT NULL,
    action_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('planned','done','failed')),
    detail TEXT,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (plan_hash, action_id)
);
CREATE TABLE IF NOT EXISTS audit_heads (
    plan_hash TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS plan_settings (
    plan_hash TEXT PRIMARY KEY,
    reset_base_url TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS lock_holder (
    name TEXT PRIMARY KEY,
    operation TEXT NOT NULL,
    plan_hash TEXT NOT NULL,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    since INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    plan_hash TEXT NOT NULL,
    message_key TEXT NOT NULL,
    recipient TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('sending','sent','deferred','failed')),
    attempts INTEGER NOT NULL,
    reply TEXT,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (plan_hash, message_key)
);
CREATE TABLE IF NOT EXISTS plan_incidents (
    plan_hash TEXT PRIMARY KEY,
    incident TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS covered_actions (
    plan_hash TEXT NOT NULL,
    action_id TEXT NOT NULL,
    by_plan TEXT NOT NULL,
    PRIMARY KEY (plan_hash, action_id)
);
";

/// The PostgreSQL schema: `store::SCHEMA`'s tables with PostgreSQL types (times are BIGINT
/// seconds, flags BOOLEAN). `reset_tokens.seq` orders tokens created in the same second
/// (SQLite's rowid does that there).
pub const PG_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL,
    email_folded TEXT NOT NULL,
    has_2fa BOOLEAN NOT NULL,
    balance DOUBLE PRECISION NOT NULL,
    locale TEXT NOT NULL,
    failed_logins BIGINT,
    failed_logins_since TEXT,
    password_hash TEXT,
    password_reset_required BOOLEAN NOT NULL DEFAULT FALSE,
    review_required BOOLEAN NOT NULL DEFAULT FALSE,
    review_reason TEXT,
    updated_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS accounts_email ON accounts(email);
CREATE INDEX IF NOT EXISTS accounts_email_folded ON accounts(email_folded);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX IF NOT EXISTS sessions_account ON sessions(account_id);
CREATE TABLE IF NOT EXISTS reset_tokens (
    selector TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    token_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    revoked_at BIGINT,
    plan_hash TEXT,
    seq BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX IF NOT EXISTS reset_tokens_account ON reset_tokens(account_id);
CREATE TABLE IF NOT EXISTS remediation_actions (
    plan_hash TEXT NOT NULL,
    action_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('planned','done','failed')),
    detail TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (plan_hash, action_id)
);
CREATE TABLE IF NOT EXISTS audit_heads (
    plan_hash TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS plan_settings (
    plan_hash TEXT PRIMARY KEY,
    reset_base_url TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS lock_holder (
    name TEXT PRIMARY KEY,
    operation TEXT NOT NULL,
    plan_hash TEXT NOT NULL,
    pid BIGINT NOT NULL,
    host TEXT NOT NULL,
    since BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    plan_hash TEXT NOT NULL,
    message_key TEXT NOT NULL,
    recipient TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('sending','sent','deferred','failed')),
    attempts BIGINT NOT NULL,
    reply TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (plan_hash, message_key)
);
CREATE TABLE IF NOT EXISTS plan_incidents (
    plan_hash TEXT PRIMARY KEY,
    incident TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS covered_actions (
    plan_hash TEXT NOT NULL,
    action_id TEXT NOT NULL,
    by_plan TEXT NOT NULL,
    PRIMARY KEY (plan_hash, action_id)
);
";
