//! Address matching between exposed addresses and accounts.
//!
//! The default key is the scanner's canonical form ([`Address::parse`]: lowercase local part,
//! lowercase IDNA-ASCII domain). Provider folding is an option, off by default, because it can
//! merge mailboxes that are distinct at other providers:
//!
//! * `gmail.com` and `googlemail.com` are one domain (`gmail.com`);
//! * at Gmail, dots in the local part are ignored (`j.doe` == `jdoe`);
//! * at Gmail, a `+tag` suffix is ignored (`jdoe+shop` == `jdoe`).
//!
//! Other providers are left alone: many of them treat dots as significant.

use crate::affected::AffectedRow;
use crate::error::Result;
use crate::store::AccountStore;
use leakaudit_scanner::Address;
use serde::{Deserialize, Serialize};

/// How exposed addresses are matched to account emails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MatchMode {
    /// Canonical address equality (the default).
    #[default]
    Canonical,
    /// Canonical form plus Gmail folding (dots, `+tags`, googlemail.com).
    ProviderFolding,
}

impl MatchMode {
    /// `canonical` or `provider-folding` (the plan's and the list's spelling).
    pub fn as_str(self) -> &'static str {
        match self {
            MatchMode::Canonical => "canonical",
            MatchMode::ProviderFolding => "provider-folding",
        }
    }

    pub fn parse(s: &str) -> Option<MatchMode> {
        [MatchMode::Canonical, MatchMode::ProviderFolding]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

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

/// Canonical form of an address string, `None` when it is not an address.
pub fn canonical(s: &str) -> Option<String> {
    Address::parse(s).map(|a| a.as_str().to_string())
}

/// Provider-folded form of an already canonical address (see the module doc).
pub fn fold(canonical: &str) -> String {
    let Some((local, domain)) = canonical.rsplit_once('@') else {
        return canonical.to_string();
    };
    let domain = if domain == "googlemail.com" {
        "gmail.com"
    } else {
        domain
    };
    // A quoted local part (`"john doe"`) is no Gmail account name: folding its dots or a
    // `+` inside the quotes would only make a broken address.
    if domain == "gmail.com" && !local.starts_with('"') {
        let base = local.split('+').next().unwrap_or(local);
        let base: String = base.chars().filter(|c| *c != '.').collect();
        format!("{base}@{domain}")
    } else {
        format!("{local}@{domain}")
    }
}

/// The key an address is looked up under in `mode`.
pub fn match_key(canonical: &str, mode: MatchMode) -> String {
    match mode {
        MatchMode::Canonical => canonical.to_string(),
        MatchMode::ProviderFolding => fold(canonical),
    }
}

/// The one matching pass of the commands that match exposed addresses to accounts: rows are
/// streamed from the accumulator, matched [`FIND_BATCH`](crate::store::FIND_BATCH) at a time
/// (a million-address list is never held twice; one store lookup per batch, not per address),
/// and the unmatched addresses that would match with provider folding are counted for the hint.
/// Matches rows as they stream by; remembers the first store error (the stream then stops).
pub struct Matcher<'s> {
    store: &'s dyn AccountStore,
    mode: MatchMode,
    pub meta: crate::affected::ListMeta,
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
            meta: crate::affected::ListMeta {
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
        crate::affected::match_accounts(batch, self.store, self.mode)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_lowercases_and_punycodes() {
        assert_eq!(canonical("Bob@Example.COM").unwrap(), "bob@example.com");
        assert_eq!(canonical("not an address"), None);
    }

    #[test]
    fn gmail_folding() {
        assert_eq!(fold("j.doe+shop@googlemail.com"), "jdoe@gmail.com");
        assert_eq!(fold("j.doe@gmail.com"), "jdoe@gmail.com");
        // Other providers keep dots and tags.
        assert_eq!(fold("j.doe+x@example.com"), "j.doe+x@example.com");
        assert_eq!(
            match_key("j.doe@gmail.com", MatchMode::Canonical),
            "j.doe@gmail.com"
        );
    }

    #[test]
    fn quoted_local_parts_match_in_canonical_form_and_are_not_folded() {
        assert_eq!(
            canonical("\"J.Smith\"@Yahoo.com").unwrap(),
            canonical("j.smith@yahoo.com").unwrap()
        );
        let john = canonical("\"John Doe\"@gmail.com").unwrap();
        assert_eq!(john, "\"john doe\"@gmail.com");
        assert_eq!(fold(&john), john);
        let tagged = canonical("\"j.doe+x y\"@googlemail.com").unwrap();
        assert_eq!(fold(&tagged), "\"j.doe+x y\"@gmail.com");
        // Unquoted Gmail addresses still fold.
        assert_eq!(
            fold(&canonical("\"j.doe+x\"@gmail.com").unwrap()),
            "jdoe@gmail.com"
        );
    }
}
