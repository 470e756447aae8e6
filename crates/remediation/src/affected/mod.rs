//! Affected users: one row per exposed address (in headers or in content), accumulated from
//! policy [`leakaudit_policy::Finding`]s and `scan` records, matched to accounts once, and
//! written as CSV or JSON.
//!
//! * [`accumulator`]: bounded-memory accumulation and the counting rules (module doc there);
//! * [`input`]: findings, scan records, content exposures, saved JSON Lines files;
//! * [`io`]: the CSV/JSON list, streamed, with the store it was matched against;
//! * [`saw`]: who saw exposed addresses without being shown (journal envelopes), listed
//!   apart: not data subjects, never rows of the affected list.
//!
//! One matching decision: [`match_list`] fills `account_ids` and records the store id and
//! mode in the list; the plan uses those ids as written and refuses a list matched against
//! another store.

pub mod accumulator;
pub mod input;
pub mod io;
pub mod matcher;
pub mod saw;
pub mod selection;

pub use accumulator::{AffectedAccumulator, Rows};
pub use input::{ContentExposed, SCAN_RULE_ID};
pub use io::{
    read_file, write_csv, write_file, write_json, AffectedFormat, ListMeta, CSV_COLUMNS,
    CSV_META_PREFIX,
};
pub use matcher::{fold_hint, Matched, Matcher};
pub use saw::SawOthers;
pub use selection::Selection;

use crate::error::Result;
use crate::matching::{match_key, MatchMode};
use crate::store::AccountStore;
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};

/// How many Message-IDs a row keeps.
pub const MAX_MESSAGE_IDS: usize = 5;
/// Prefix of a pseudonymised address.
pub const PSEUDONYM_PREFIX: &str = "hmac-sha256:";
/// Schema tag of the JSON output.
pub const AFFECTED_SCHEMA: &str = "leakaudit-affected/1";

/// One exposed address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AffectedRow {
    /// Canonical address, or `hmac-sha256:<hex>` when pseudonymised.
    pub address: String,
    /// Accounts matched to the address (empty when no store was given or none matched).
    #[serde(default)]
    pub account_ids: Vec<String>,
    /// Distinct messages that exposed the address.
    pub messages: usize,
    /// Distinct other external parties that saw it.
    pub audience: usize,
    /// RFC 3339, UTC; `None` when no exposing message had a parseable Date.
    pub first_exposed: Option<String>,
    pub last_exposed: Option<String>,
    pub rule_ids: Vec<String>,
    /// Where it was visible: header fields (`To`, `Cc`...) and content sources (`body`,
    /// `attachment:NAME`).
    #[serde(default)]
    pub fields: Vec<String>,
    /// Up to [`MAX_MESSAGE_IDS`] Message-IDs.
    pub message_ids: Vec<String>,
}

/// The affected list as written in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AffectedList {
    pub schema: String,
    pub pseudonymised: bool,
    /// The account store `account_ids` were matched against; `None`: never matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_id: Option<String>,
    /// How they were matched (with `store_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_mode: Option<MatchMode>,
    pub total: usize,
    pub rows: Vec<AffectedRow>,
}

impl AffectedList {
    /// An unmatched, clear list.
    pub fn new(rows: Vec<AffectedRow>) -> AffectedList {
        AffectedList {
            schema: AFFECTED_SCHEMA.to_string(),
            pseudonymised: false,
            store_id: None,
            match_mode: None,
            total: rows.len(),
            rows,
        }
    }

    /// What the writers put in the header.
    pub fn meta(&self) -> ListMeta {
        ListMeta {
            pseudonymised: self.pseudonymised,
            store_id: self.store_id.clone(),
            match_mode: self.match_mode,
        }
    }
}

/// Seconds since the epoch as RFC 3339 UTC (`2026-03-01T09:00:00Z`).
pub fn rfc3339(ts: i64) -> String {
    leakaudit_scanner::time::rfc3339(ts).unwrap_or_else(|| ts.to_string())
}

/// Fills `account_ids` of each row from the store, [`crate::store::FIND_BATCH`] rows per
/// lookup.
pub fn match_accounts(
    rows: &mut [AffectedRow],
    store: &dyn AccountStore,
    mode: MatchMode,
) -> Result<()> {
    for chunk in rows.chunks_mut(crate::store::FIND_BATCH) {
        let keys: Vec<String> = chunk.iter().map(|r| match_key(&r.address, mode)).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let found = store.find_many(&keys, mode)?;
        for (row, accounts) in chunk.iter_mut().zip(found) {
            row.account_ids = accounts.into_iter().map(|a| a.id).collect();
        }
    }
    Ok(())
}

/// The one matching decision: fills `account_ids` and records the store and mode in the list.
pub fn match_list(
    list: &mut AffectedList,
    store: &dyn AccountStore,
    mode: MatchMode,
) -> Result<()> {
    match_accounts(&mut list.rows, store, mode)?;
    list.store_id = Some(store.store_id()?);
    list.match_mode = Some(mode);
    Ok(())
}

/// Keyed pseudonym of a canonical address: `hmac-sha256:` + hex HMAC-SHA256(key, address).
/// Stable for one key; without the key it cannot be reversed or linked to other reports.
pub fn pseudonym(key: &[u8], address: &str) -> String {
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key)
        .expect("HMAC takes keys of any length");
    mac.update(address.as_bytes());
    format!(
        "{PSEUDONYM_PREFIX}{}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// Replaces every address with its pseudonym and re-sorts (so the order leaks nothing).
pub fn pseudonymise(rows: &mut [AffectedRow], key: &[u8]) {
    for r in rows.iter_mut() {
        r.address = pseudonym(key, &r.address);
    }
    rows.sort_by(|a, b| a.address.cmp(&b.address));
}

#[cfg(test)]
mod tests;
