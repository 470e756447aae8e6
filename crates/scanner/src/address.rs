//! Address canonicalisation: one canonical form per mailbox.
//!
//! Canonical form: `local@domain` with the local part lowercased and the domain lowercased and
//! converted to IDNA ASCII (punycode).

use crate::model::Address;

impl Address {
    /// Parses and canonicalises a bare `local@domain` address. `None` when there is no `@`, an
    /// empty local part or domain, or the domain is not a valid IDNA name.
    pub fn parse(s: &str) -> Option<Address> {
        let s = s.trim();
        let (local, domain) = s.rsplit_once('@')?;
        if local.is_empty() {
            return None;
        }
        let domain = canonical_domain(domain)?;
        Some(Address::from_canonical(format!(
            "{}@{}",
            local.to_lowercase(),
            domain
        )))
    }
}

/// Lowercase IDNA ASCII form of a domain; `None` when empty or invalid.
pub fn canonical_domain(d: &str) -> Option<String> {
    let d = d.trim().trim_end_matches('.');
    if d.is_empty() {
        return None;
    }
    idna::domain_to_ascii(d).ok().filter(|s| !s.is_empty())
}
