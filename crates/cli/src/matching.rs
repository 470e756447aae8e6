//! The one matching pass of the commands that match exposed addresses to accounts: rows are
//! streamed from the accumulator, matched a batch at a time (a million-address list is never
//! held twice; one store lookup per batch, not per address), and the addresses that would
//! match with provider folding are counted for the hint.

use leakaudit_remediation::affected::{self, ListMeta};
use leakaudit_remediation::matching::fold_hint;
use leakaudit_remediation::store::FIND_BATCH;
use leakaudit_remediation::{AccountStore, AffectedRow, MatchMode};
use std::collections::VecDeque;

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

    /// The rows of `rows`, matched [`FIND_BATCH`] at a time, in order; the stream ends at
    /// the first store error (kept for [`Self::finish`]).
    pub fn match_iter<I: Iterator<Item = AffectedRow>>(&mut self, rows: I) -> Matched<'_, 's, I> {
        Matched {
            matcher: self,
            rows,
            ready: VecDeque::new(),
        }
    }

    fn match_batch(&mut self, batch: &mut [AffectedRow]) -> leakaudit_remediation::Result<()> {
        affected::match_accounts(batch, self.store, self.mode)?;
        if self.mode == MatchMode::Canonical {
            self.fold_hint += fold_hint(batch, self.store)?;
        }
        self.rows += batch.len();
        self.matched += batch.iter().filter(|r| !r.account_ids.is_empty()).count();
        Ok(())
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

/// See [`Matcher::match_iter`].
pub struct Matched<'m, 's, I> {
    matcher: &'m mut Matcher<'s>,
    rows: I,
    ready: VecDeque<AffectedRow>,
}

impl<I: Iterator<Item = AffectedRow>> Iterator for Matched<'_, '_, I> {
    type Item = AffectedRow;

    fn next(&mut self) -> Option<AffectedRow> {
        if self.ready.is_empty() && self.matcher.error.is_none() {
            let mut batch: Vec<AffectedRow> = self.rows.by_ref().take(FIND_BATCH).collect();
            match self.matcher.match_batch(&mut batch) {
                Ok(()) => self.ready.extend(batch),
                Err(e) => self.matcher.error = Some(e),
            }
        }
        self.ready.pop_front()
    }
}
