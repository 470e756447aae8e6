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
//! - a **quoted** local part (RFC 5322 `quoted-string`, also mixed with atoms as in
//!   `"j".smith`) is read for what it means: quoted-pairs unescaped, quotes removed. When the
//!   result is a dot-atom it is written bare (`"J.Smith"@x` is `j.smith@x`); otherwise it is
//!   quoted once, with only `"` and `\` escaped (`"John\ Doe"@x` is `"john doe"@x`). Every
//!   spelling of one mailbox thus has one form, and the form parses back to itself. An
//!   unterminated quote, or whitespace or a backslash outside quotes, is not an address.
//!
//! Change the form here only: `Address::from_canonical` is crate-private so that every
//! `Address` comes through [`Address::parse`].

use crate::model::Address;
use idna::AsciiDenyList;
use std::borrow::Cow;

/// ASCII that never occurs in a mail domain: whitespace/control (via `deny_glyphless`) and
/// address-syntax punctuation. Underscore stays allowed (seen in real host names).
const DOMAIN_DENY: AsciiDenyList = AsciiDenyList::new(true, "%#/:<>?@[\\]^|,;\"()!$&'*+=`{}~");

impl Address {
    /// Parses and canonicalises a bare `local@domain` address (no display name, no angle
    /// brackets; surrounding whitespace is ignored). Returns `None` when there is no `@`, the
    /// local part or domain is empty, or the domain is not a valid IDNA name.
    pub fn parse(s: &str) -> Option<Address> {
        let s = s.trim();
        let at = memchr::memrchr(b'@', s.as_bytes())?;
        let (local, domain) = (&s[..at], &s[at + 1..]);
        if local.contains('"') {
            let local = canonical_quoted_local(local)?;
            let domain = canonical_domain_cow(domain)?;
            return Some(Address::from_canonical(format!("{local}@{domain}")));
        }
        // ASCII whitespace and controls are the bytes up to space, and DEL.
        let bad_local = if local.is_ascii() {
            local.bytes().any(|b| b <= b' ' || b == 0x7f)
        } else {
            local.chars().any(|c| c.is_whitespace() || c.is_control())
        };
        if local.is_empty() || bad_local {
            return None;
        }
        let domain = canonical_domain_cow(domain)?;
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

    /// A bare `local@domain` that [`Address::parse`] would take as it is but for the local
    /// part's case (ASCII letters, digits and `._+-` before the one `@`, an already canonical
    /// plain domain after it), built with one allocation; `None` for anything else (the caller
    /// parses it the long way). A mass mail's list is nearly all such items: trimming,
    /// checking and lowercasing each in several passes, then copying it into its shared
    /// string, was a tenth of the time spent on it.
    pub(crate) fn parse_bare(s: &[u8]) -> Option<Address> {
        let at = memchr::memchr(b'@', s)?;
        let (local, domain) = (&s[..at], &s[at + 1..]);
        let mut upper = false;
        for &b in local {
            match b {
                b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'+' | b'-' => {}
                b'A'..=b'Z' => upper = true,
                _ => return None,
            }
        }
        if local.is_empty() || domain.is_empty() || domain.last() == Some(&b'.') {
            return None;
        }
        // No second `@` (the domain's alphabet has none), no trailing dot: the domain is
        // taken whole, and a plain one is canonical as it is.
        if !is_plain_domain(domain) {
            return None;
        }
        let text = std::str::from_utf8(s).ok()?;
        if !upper {
            return Some(Address::from_canonical_str(text));
        }
        let mut lower = [0u8; 256];
        let lower = lower.get_mut(..s.len())?;
        lower.copy_from_slice(s);
        lower[..at].make_ascii_lowercase();
        Some(Address::from_canonical_str(
            std::str::from_utf8(lower).ok()?,
        ))
    }
}

/// RFC 5322 `atext` (RFC 6532: any non-ASCII character too).
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii()
}

/// A local part with at least one `"`: its meaning (quotes removed, quoted-pairs unescaped,
/// lowercased), written bare when that is a dot-atom and quoted otherwise. `None` for an
/// unterminated quote, a dangling backslash, whitespace/backslash outside quotes, or a
/// control character other than a tab inside them.
fn canonical_quoted_local(local: &str) -> Option<String> {
    let mut text = String::with_capacity(local.len());
    let mut chars = local.chars();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (_, '"') => quoted = !quoted,
            (true, '\\') => {
                let next = chars.next()?;
                if next.is_control() && next != '\t' {
                    return None;
                }
                text.push(next);
            }
            (true, c) if c.is_control() && c != '\t' => return None,
            (true, c) => text.push(c),
            (false, c) if c.is_whitespace() || c.is_control() || c == '\\' => return None,
            (false, c) => text.push(c),
        }
    }
    if quoted {
        return None;
    }
    let text: String = if text.is_ascii() {
        text.to_ascii_lowercase()
    } else {
        text.chars().flat_map(char::to_lowercase).collect()
    };
    let dot_atom = !text.is_empty()
        && text
            .split('.')
            .all(|a| !a.is_empty() && a.chars().all(is_atext));
    if dot_atom {
        return Some(text);
    }
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Some(out)
}

/// The canonical (lowercase IDNA ASCII) form of a domain; `None` when empty or invalid.
pub fn canonical_domain(d: &str) -> Option<String> {
    canonical_domain_cow(d).map(Cow::into_owned)
}

/// [`canonical_domain`], borrowed when `d` is already canonical (most are: no copy).
fn canonical_domain_cow(d: &str) -> Option<Cow<'_, str>> {
    let d = d.trim();
    let d = d.strip_suffix('.').unwrap_or(d);
    // One trailing dot is the root; a second is an empty label (and the canonical form must
    // be a fixed point: `a@A..` once gave `a@a.`, then `a@a`).
    if d.is_empty() || d.ends_with('.') {
        return None;
    }
    if d.starts_with('[') {
        // Domain literal: no IDNA, but one spelling.
        let ok = d.len() > 2
            && d.ends_with(']')
            && d[1..d.len() - 1]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".:-".contains(&b));
        return ok.then(|| Cow::Owned(d.to_ascii_lowercase()));
    }
    // Fast path for the overwhelmingly common case: plain lowercase ASCII, no punycode label
    // (punycode labels go through IDNA so that a non-canonical encoding is normalised too).
    if is_plain_domain(d.as_bytes()) {
        return Some(Cow::Borrowed(d));
    }
    let ascii = idna::domain_to_ascii_cow(d.as_bytes(), DOMAIN_DENY).ok()?;
    if ascii.is_empty() || ascii.starts_with('.') || ascii.ends_with('.') || ascii.contains("..") {
        return None;
    }
    Some(Cow::Owned(ascii.into_owned()))
}

/// Lowercase ASCII letters, digits, `-`, `_` and `.`, not starting with a dot, no empty label,
/// no `xn--`: already canonical. One pass over the bytes (three substring searches were ~2%
/// of a scan's CPU).
fn is_plain_domain(d: &[u8]) -> bool {
    let mut prev = b'.';
    for (i, &b) in d.iter().enumerate() {
        let ok = match b {
            b'a'..=b'z' | b'0'..=b'9' | b'_' => true,
            b'.' => prev != b'.',
            b'-' => !(prev == b'-' && i >= 3 && &d[i - 3..i - 1] == b"xn"),
            _ => false,
        };
        if !ok {
            return false;
        }
        prev = b;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Option<String> {
        Address::parse(s).map(|a| a.as_str().to_owned())
    }

    proptest::proptest! {
        /// The bare fast path takes only what `parse` takes, and gives what it gives.
        #[test]
        fn bare_addresses_parse_as_parse_does(s in "[A-Za-z0-9._+@ -]{0,14}|[a-z]{1,6}[A-Z.]?@[a-z0-9.-]{1,9}") {
            if let Some(a) = Address::parse_bare(s.as_bytes()) {
                proptest::prop_assert_eq!(Some(a), Address::parse(&s), "{:?}", s);
            }
        }
    }

    #[test]
    fn bare_fast_path_takes_plain_addresses_only() {
        let bare = |s: &str| Address::parse_bare(s.as_bytes()).map(|a| a.as_str().to_owned());
        assert_eq!(
            bare("Oscar.Okafor496@gmail.com").as_deref(),
            Some("oscar.okafor496@gmail.com")
        );
        assert_eq!(
            bare("a+tag@x-y.example").as_deref(),
            Some("a+tag@x-y.example")
        );
        for other in [
            "a@Gmail.com",
            "a@gmail.com.",
            "a@b@c.example",
            "\"a b\"@x.example",
            " a@x.example",
            "a@xn--dmain-jua.com",
            "@x.example",
            "a@",
            "ä@x.example",
        ] {
            assert_eq!(bare(other), None, "{other:?}");
        }
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
    fn quoted_local_parts_have_one_canonical_form() {
        // The accounts of the defect: never matched before.
        assert_eq!(
            p("\"john doe\"@gmail.com").as_deref(),
            Some("\"john doe\"@gmail.com")
        );
        assert_eq!(
            p("\"j.smith\"@yahoo.com").as_deref(),
            Some("j.smith@yahoo.com")
        );
        assert_eq!(p("\"J.Smith\"@Yahoo.com"), p("j.smith@yahoo.com"));
        // Quoted-pairs: unnecessary escapes dropped, necessary ones kept.
        assert_eq!(
            p("\"\\j\\o\\h\\n\"@x.example").as_deref(),
            Some("john@x.example")
        );
        assert_eq!(
            p("\"John\\ Doe\"@x.example").as_deref(),
            Some("\"john doe\"@x.example")
        );
        assert_eq!(
            p("\"a\\\"b\\\\c\"@x.example").as_deref(),
            Some("\"a\\\"b\\\\c\"@x.example")
        );
        // Mixed with atoms (obsolete local part), and quoted dots that make no dot-atom.
        assert_eq!(
            p("\"j\".smith@x.example").as_deref(),
            Some("j.smith@x.example")
        );
        assert_eq!(
            p("\"j..smith\"@x.example").as_deref(),
            Some("\"j..smith\"@x.example")
        );
        assert_eq!(p("\".j\"@x.example").as_deref(), Some("\".j\"@x.example"));
        assert_eq!(p("\"\"@x.example").as_deref(), Some("\"\"@x.example"));
        for bad in [
            "\"john@x.example",
            "\"jo\"hn doe@x.example",
            "\"a\\\"@x.example",
            "\"a\nb\"@x.example",
            "a\\\"b\"@x.example",
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
    fn plain_domain_check_matches_its_definition() {
        let slow = |d: &str| {
            d.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.' || b == b'_'
            }) && !d.contains("xn--")
                && !d.starts_with('.')
                && !d.contains("..")
        };
        let alphabet = ["a", "x", "n", "-", ".", "_", "0", "Z", "\u{e4}"];
        // Every string of up to five of these pieces.
        let mut all = vec![String::new()];
        for _ in 0..5 {
            let longer: Vec<String> = all
                .iter()
                .flat_map(|s| alphabet.iter().map(move |a| format!("{s}{a}")))
                .collect();
            all.extend(longer);
            all.sort();
            all.dedup();
        }
        for d in all.iter().filter(|d| !d.is_empty()) {
            assert_eq!(is_plain_domain(d.as_bytes()), slow(d), "{d:?}");
        }
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

    /// Quoting of `content` as a `quoted-string`: minimal (`"` and `\` escaped) or every
    /// character a quoted-pair.
    fn quote(content: &str, all: bool) -> String {
        let mut q = String::from("\"");
        for c in content.chars() {
            if all || c == '"' || c == '\\' {
                q.push('\\');
            }
            q.push(c);
        }
        q.push('"');
        q
    }

    /// The meaning of a canonical local part (quotes and quoted-pairs removed).
    fn meaning(local: &str) -> String {
        match local.strip_prefix('"').and_then(|l| l.strip_suffix('"')) {
            None => local.to_owned(),
            Some(inner) => {
                let mut out = String::new();
                let mut chars = inner.chars();
                while let Some(c) = chars.next() {
                    out.push(if c == '\\' { chars.next().unwrap() } else { c });
                }
                out
            }
        }
    }

    use email_address::EmailAddress;
    use proptest::prelude::*;

    proptest! {
        /// Every quoted address the reference parser (`email_address`) accepts has one
        /// canonical form: the same for each spelling, meaning the lowercased content, itself
        /// accepted by the reference, and parsing back to itself.
        #[test]
        fn quoted_spellings_agree_with_the_reference_parser(
            content in "[a-zA-Z0-9 .@\"\\\\,!#~é(]{1,12}",
            domain in "[a-z]{1,8}\\.(com|example)",
        ) {
            let minimal = format!("{}@{domain}", quote(&content, false));
            prop_assume!(EmailAddress::is_valid(&minimal));
            let a = Address::parse(&minimal);
            prop_assert!(a.is_some(), "reference accepts {:?}", minimal);
            let a = a.unwrap();
            prop_assert_eq!(meaning(a.local()), content.to_lowercase());
            prop_assert!(EmailAddress::is_valid(a.as_str()), "{:?}", a.as_str());
            prop_assert_eq!(Address::parse(a.as_str()), Some(a.clone()));
            let escaped = format!("{}@{domain}", quote(&content, true));
            if EmailAddress::is_valid(&escaped) {
                prop_assert_eq!(Address::parse(&escaped), Some(a.clone()), "{}", escaped);
            }
            let bare = format!("{content}@{domain}");
            // Written bare, content with quotes or backslashes is another address (`" "` bare
            // is a quoted space): only plain content must mean the same unquoted.
            if !content.contains(['"', '\\']) && EmailAddress::is_valid(&bare) {
                prop_assert_eq!(Address::parse(&bare), Some(a.clone()), "{}", bare);
                prop_assert!(!a.as_str().starts_with('"'), "{:?}", a.as_str());
            }
        }

        /// Whatever is accepted (quoted or not, valid for the reference or not) parses back
        /// to itself.
        #[test]
        fn canonical_form_is_a_fixed_point(s in "[a-zA-Z0-9 .@\"\\\\,é\t]{1,16}@[a-zA-Z.]{1,10}") {
            if let Some(a) = Address::parse(&s) {
                prop_assert_eq!(Address::parse(a.as_str()), Some(a.clone()), "{:?}", s);
            }
        }
    }
}
