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
