//! Matching exposed addresses to accounts, a batch at a time, as the rows stream by.

use super::AffectedRow;
use crate::error::Result;
use crate::matching::{fold, MatchMode};
use crate::store::AccountStore;

/// How many rows without an account would match one with provider folding: the hint to print
/// after a canonical match (0 when the rows were matched with folding already).
pub fn fold_hint(rows: &[AffectedRow], store: &dyn AccountStore) -> Result<usize> {
    let folded: Vec<String> = rows
        .iter()
        .filter(|r| r.account_ids.is_empty())
        .map(|r| fold(&r.address))
        .collect();
    let mut n = 0;
    for chunk in folded.chunks(crate::store::FIND_BATCH) {
        let keys: Vec<&str> = chunk.iter().map(String::as_str).collect();
        n += store
            .find_many(&keys, MatchMode::ProviderFolding)?
            .iter()
            .filter(|found| !found.is_empty())
            .count();
    }
    Ok(n)
}

/// The one matching pass of the commands that match exposed addresses to accounts: rows are
/// streamed from the accumulator, matched [`FIND_BATCH`](crate::store::FIND_BATCH) at a time
/// (a million-address list is never held twice; one store lookup per batch, not per address),
/// and the unmatched addresses that would match with provider folding are counted for the hint.
/// Matches rows as they stream by; remembers the first store error (the stream then stops).
pub struct Matcher<'s> {
    store: &'s dyn AccountStore,
    mode: MatchMode,
    pub meta: super::ListMeta,
    pub rows: usize,
    pub matched: usize,
    /// Unmatched rows that would match with `--provider-folding`.
    pub fold_hint: usize,
    pub error: Option<crate::Error>,
}

impl<'s> Matcher<'s> {
    pub fn new(store: &'s dyn AccountStore, mode: MatchMode) -> Result<Self> {
        Ok(Matcher {
            store,
            mode,
            meta: super::ListMeta {
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

    /// The rows of `rows`, matched [`FIND_BATCH`](crate::store::FIND_BATCH) at a time, in order; the stream ends at
    /// the first store error (kept for [`Self::finish`]).
    pub fn match_iter<I: Iterator<Item = AffectedRow>>(&mut self, rows: I) -> Matched<'_, 's, I> {
        Matched {
            matcher: self,
            rows,
            ready: std::collections::VecDeque::new(),
        }
    }

    fn match_batch(&mut self, batch: &mut [AffectedRow]) -> Result<()> {
        super::match_accounts(batch, self.store, self.mode)?;
        if self.mode == MatchMode::Canonical {
            self.fold_hint += fold_hint(batch, self.store)?;
        }
        self.rows += batch.len();
        self.matched += batch.iter().filter(|r| !r.account_ids.is_empty()).count();
        Ok(())
    }

    /// The outcome: the first store error, else how many unmatched addresses would match an
    /// account with provider folding (the hint to give).
    pub fn finish(self) -> Result<usize> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.fold_hint),
        }
    }
}

/// See [`Matcher::match_iter`].
pub struct Matched<'m, 's, I> {
    matcher: &'m mut Matcher<'s>,
    rows: I,
    ready: std::collections::VecDeque<AffectedRow>,
}

impl<I: Iterator<Item = AffectedRow>> Iterator for Matched<'_, '_, I> {
    type Item = AffectedRow;

    fn next(&mut self) -> Option<AffectedRow> {
        if self.ready.is_empty() && self.matcher.error.is_none() {
            let mut batch: Vec<AffectedRow> =
                self.rows.by_ref().take(crate::store::FIND_BATCH).collect();
            match self.matcher.match_batch(&mut batch) {
                Ok(()) => self.ready.extend(batch),
                Err(e) => self.matcher.error = Some(e),
            }
        }
        self.ready.pop_front()
    }
}
