//! leakaudit-remediation: from findings to a remediation done exactly once.
//!
//! * [`affected`]: one row per exposed address, from [`leakaudit_policy::Finding`]s.
//! * [`store`]: the [`store::AccountStore`] trait and its SQLite backend; [`import`] loads an
//!   accounts CSV all-or-nothing.
//! * [`policy`]: `rules/remediation.toml`, which action each exposed account gets.
//! * [`plan`]: the plan file (actions, totals, content hash, store identity).
//! * [`reissue`]: a deleted or expired notification staged again with a new token.
//! * [`settings`]: the `[accounts]` and `[notifications]` tables of `leakaudit.toml`.
//! * [`apply`]: executes a plan transactionally, resumably; [`token`] issues reset tokens;
//!   [`audit`] keeps the hash-chained log; [`outbox`] writes and gates the notifications.
//!
//! The library never prints; errors are typed ([`Error`]).
#![cfg_attr(test, allow(clippy::print_stdout, clippy::print_stderr))]

pub mod affected;
pub mod apply;
pub mod audit;
pub mod error;
pub mod executor;
pub mod folder;
pub mod import;
pub mod lock;
pub mod matching;
pub mod outbox;
pub mod plan;
pub mod policy;
pub mod reissue;
pub mod settings;
pub mod store;
pub mod token;

pub use affected::fold_hint;
pub use affected::{AffectedAccumulator, AffectedFormat, AffectedList, AffectedRow, ListMeta};
pub use apply::{apply, ApplyEvent, ApplyOptions, ApplyReport};
pub use error::{Error, Result};
pub use import::{import_accounts, import_accounts_with, EmptyBalance, ImportOptions};
pub use matching::MatchMode;
pub use plan::{build_plan, read_plan, write_plan, Notice, Plan, PlanBuilder, PlanTotals};
pub use policy::{ActionKind, RemediationPolicy};
pub use store::{AccountStore, SqliteStore};
pub use token::Argon2Settings;

/// Plan totals for summaries (the incident report): resets, reviews, notifications.
pub fn plan_summary(plan: &Plan) -> PlanTotals {
    plan.totals
}
