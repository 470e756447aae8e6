//! The one matching pass of the commands that match exposed addresses to accounts: rows are
//! streamed from the accumulator, matched one at a time (a million-address list is never held
//! twice), and the addresses that would match with provider folding are counted for the hint.

use leakaudit_remediation::affected::{self, ListMeta};
use leakaudit_remediation::matching::fold_hint;
use leakaudit_remediation::{AccountStore, AffectedRow, MatchMode};

/// Matches rows as they stream by; remembers the first store error (the stream then stops).
pub struct Matcher<'s> {
    store: &'s dyn AccountStore,
    mode: MatchMode,
    pub meta: ListMeta,
    pub rows: usize,
    pub matched: usize,
    /// Unmatched rows that would match with `--provider-folding`.
    pub fold_hint: usize,
    pub error: Option<leakaudit_remediation::Error>,
}

impl<'s> Matcher<'s> {
    pub fn new(store: &'s dyn AccountStore, mode: MatchMode) -> anyhow::Result<Self> {
        Ok(Matcher {
            store,
            mode,
            meta: ListMeta {
                pseudonymised: false,
                store_id: Some(store.store_id()?),
                match_mode: Some(mode),
            },
            rows: 0,
            matched: 0,
            fold_hint: 0,
            error: None,
        })
    }

    /// Matches one row; `None` after an error.
    pub fn matched(&mut self, mut row: AffectedRow) -> Option<AffectedRow> {
        if self.error.is_some() {
            return None;
        }
        let hint = if self.mode == MatchMode::Canonical {
            affected::match_row(&mut row, self.store, self.mode)
                .and_then(|()| fold_hint(std::slice::from_ref(&row), self.store))
        } else {
            affected::match_row(&mut row, self.store, self.mode).map(|()| 0)
        };
        match hint {
            Ok(h) => {
                self.rows += 1;
                self.fold_hint += h;
                if !row.account_ids.is_empty() {
                    self.matched += 1;
                }
                Some(row)
            }
            Err(e) => {
                self.error = Some(e);
                None
            }
        }
    }

    /// The outcome: an error if matching failed, else the hint line to print (if any).
    pub fn finish(self) -> anyhow::Result<Option<String>> {
        if let Some(e) = self.error {
            return Err(e.into());
        }
        Ok((self.fold_hint > 0).then(|| {
            format!(
                "note: {} unmatched address(es) would match an account with --provider-folding",
                self.fold_hint
            )
        }))
    }
}
