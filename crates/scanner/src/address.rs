//! Address canonicalisation: one canonical form per mailbox, so that the same person is one
//! address in the exposure model, in affected-user lists and in account matching.
//!
//! # Canonical form
//! `local@domain` where
//! - the **domain** is converted with UTS 46 / IDNA to its ASCII form (punycode `xn--` labels),
//!   which also lowercases it, and loses a trailing root dot: `Exämple.COM.` and
//!   `xn--exmple-cua.com` are both `xn--exmple-cua.com`. Domain literals (`[192.0.2.1]`) are
//!   kept, lowercased.
//! - the **local part** is lowercased (Unicode lowercase for RFC 6532 local parts). RFC 5321
//!   lets a server treat local parts case-sensitively, but no provider we match accounts
//!   against does, and users type their address in any case: matching `Bob@x` and `bob@x` as
//!   one person is the safe side for an exposure audit (a missed user is worse than a merged
//!   pair). Provider-specific folding (Gmail dots, `+tags`) is NOT done here.
//!
//! Change the form here only: `Address::from_canonical` is crate-private so that every
//! `Address` comes through [`Address::parse`].

use crate::model::Address;
use idna::AsciiDenyList;

/// ASCII that never occurs in a mail domain: whitespace/control (via `deny_glyphless`) and
/// address-syntax punctuation. Underscore stays allowed (seen in real host names).
const DOMAIN_DENY: AsciiDenyList = AsciiDenyList::new(true, "%#/:<>?@[\\]^|,;\"()!$&'*+=`{}~");

impl Address {
    /// Parses and canonicalises a bare `local@domain` address (no display name, no angle
    /// brackets; surrounding whitespace is ignored). Returns `None` when there is no `@`, the
    /// local part or domain is empty, or the domain is not a valid IDNA name.
    pub fn parse(s: &str) -> Option<Address> {
        let s = s.trim();
        let (local, domain) = s.rsplit_once('@')?;
        if local.is_empty() || local.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return None;
        }
        let domain = canonical_domain(domain)?;
        let mut out = String::with_capacity(local.len() + 1 + domain.len());
        if local.is_ascii() {
            out.push_str(local);
            out.make_ascii_lowercase();
        } else {
            out.extend(local.chars().flat_map(char::to_lowercase));
        }
        out.push('@');
        out.push_str(&domain);
        Some(Address::from_canonical(out))
    }
}

/// The canonical (lowercase IDNA ASCII) form of a domain; `None` when empty or invalid.
pub fn canonical_domain(d: &str) -> Option<String> {
    let d = d.trim();
    let d = d.strip_suffix('.').unwrap_or(d);
    if d.is_empty() {
        return None;
    }
    if d.starts_with('[') {
        // Domain literal: no IDNA, but one spelling.
        let ok = d.len() > 2
            && d.ends_with(']')
            && d[1..d.len() - 1]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".:-".contains(&b));
        return ok.then(|| d.to_ascii_lowercase());
    }
    // Fast path for the overwhelmingly common case: plain lowercase ASCII, no punycode label
    // (punycode labels go through IDNA so that a non-canonical encoding is normalised too).
    let simple = d.bytes().all(|b| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.' || b == b'_'
    });
    if simple && !d.contains("xn--") && !d.starts_with('.') && !d.contains("..") {
        return Some(d.to_owned());
    }
    let ascii = idna::domain_to_ascii_cow(d.as_bytes(), DOMAIN_DENY).ok()?;
    if ascii.is_empty() || ascii.starts_with('.') || ascii.contains("..") {
        return None;
    }
    Some(ascii.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Option<String> {
        Address::parse(s).map(|a| a.as_str().to_owned())
    }

    #[test]
    fn lowercases_local_and_domain() {
        assert_eq!(
            p("Bob.Smith@Example.COM").as_deref(),
            Some("bob.smith@example.com")
        );
        assert_eq!(p("  bob@example.com. ").as_deref(), Some("bob@example.com"));
    }

    #[test]
    fn unicode_domain_and_punycode_twin_are_one_address() {
        let a = Address::parse("Local@Dömain.COM").unwrap();
        let b = Address::parse("local@xn--dmain-jua.com").unwrap();
        let c = Address::parse("LOCAL@XN--DMAIN-JUA.COM").unwrap();
        assert_eq!(a.as_str(), "local@xn--dmain-jua.com");
        assert_eq!(a, b);
        assert_eq!(b, c);
        assert_eq!(a.domain(), "xn--dmain-jua.com");
        assert_eq!(a.local(), "local");
    }

    #[test]
    fn unicode_local_part_is_lowercased() {
        assert_eq!(p("JOSÉ@example.com").as_deref(), Some("josé@example.com"));
        assert_eq!(
            p("用户@例子.广告").as_deref(),
            Some("用户@xn--fsqu00a.xn--4rr70v")
        );
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "no-at-sign",
            "@example.com",
            "bob@",
            "bob@ ",
            "bob@exa mple.com",
            "bob@a..b",
            "bob@<x>",
            "bo b@example.com",
            "bob@[]",
            "bob@.",
        ] {
            assert_eq!(p(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn quoted_local_part_with_at_uses_last_at() {
        assert_eq!(
            p("\"a@b\"@Example.com").as_deref(),
            Some("\"a@b\"@example.com")
        );
    }

    #[test]
    fn domain_literal_kept() {
        assert_eq!(p("x@[192.0.2.1]").as_deref(), Some("x@[192.0.2.1]"));
        assert_eq!(
            canonical_domain("[IPv6:2001:DB8::1]").as_deref(),
            Some("[ipv6:2001:db8::1]")
        );
    }

    #[test]
    fn canonical_domain_forms() {
        assert_eq!(
            canonical_domain("Example.ORG").as_deref(),
            Some("example.org")
        );
        assert_eq!(
            canonical_domain("bücher.de").as_deref(),
            Some("xn--bcher-kva.de")
        );
        assert_eq!(
            canonical_domain("BÜCHER.DE").as_deref(),
            Some("xn--bcher-kva.de")
        );
        assert_eq!(
            canonical_domain("mail_host.example").as_deref(),
            Some("mail_host.example")
        );
        assert_eq!(canonical_domain(""), None);
    }
}
