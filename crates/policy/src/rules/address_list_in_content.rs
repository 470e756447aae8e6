//! `address-list-in-content`: many distinct addresses in the text of a message or of a text
//! attachment.
//!
//! What: counts distinct addresses in the decoded body and text attachments (text/plain,
//! text/html with tags stripped, text/csv and other text parts, base64 and quoted-printable
//! decoded, nested multiparts to a bounded depth), leaving out the message's own recipients
//! and senders and the organisation's addresses. Fires at `min_addresses`; `tiers` raise the
//! severity with the count.
//! Why: a customer export attached to a mail, or a list pasted into a body, exposes everyone
//! on it even when the headers are clean.
//! Example: `attachment; filename="newsletter-list.csv"` with 200 customer addresses.

use super::raw::{RawRule, Validator};
use super::{tier_severity, Ctx, Hit};
use crate::allow::Allow;
use crate::content::Segment;
use crate::finding::Severity;
use crate::orgview;
use crate::redact;
use leakaudit_scanner::Address;
use regex::bytes::Regex;
use std::collections::BTreeSet;
use std::sync::LazyLock;

static ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i-u)[a-z0-9._%+\-]{1,64}@[a-z0-9\-]{1,63}(?:\.[a-z0-9\-]{1,63})*\.[a-z]{2,24}(?-u:\b)",
    )
    .expect("static regex")
});

/// Most addresses counted per message (the count only drives the severity).
const MAX_COUNTED: usize = 100_000;

#[derive(Debug, Clone)]
pub struct Params {
    pub min_addresses: usize,
    pub tiers: Vec<(usize, Severity)>,
}

/// The parameters this kind accepts (a key of another kind is an error).
pub const KEYS: &[&str] = &["min_addresses", "tiers"];

pub(crate) fn from_raw(v: &mut Validator<'_>, raw: &RawRule) -> Option<Params> {
    Some(Params {
        min_addresses: v.count(&raw.min_addresses, "min_addresses", 10, 2),
        tiers: v.tiers(&raw.tiers),
    })
}

/// `20020908021306.25492.qmail@host`: a Message-ID quoted in a forwarded header, not a
/// person's address.
fn looks_like_message_id(local: &str) -> bool {
    let digits = local.bytes().filter(u8::is_ascii_digit).count();
    let letters = local.bytes().filter(u8::is_ascii_alphabetic).count();
    local.len() >= 12 && digits > letters
}

pub fn check(
    p: &Params,
    allow: &Allow,
    ctx: &Ctx<'_, '_>,
    segments: &[Segment<'_>],
) -> Option<Hit> {
    let env = &ctx.msg.envelope;
    let own: BTreeSet<&str> = env
        .recipients
        .iter()
        .map(|r| r.mailbox.address.as_str())
        .chain(env.from.iter().map(|m| m.address.as_str()))
        .collect();
    let mut found: BTreeSet<Address> = BTreeSet::new();
    let mut best_seg: Option<(usize, usize, Option<usize>)> = None; // (segment, count, first offset)
    for (si, seg) in segments.iter().enumerate() {
        if memchr::memchr_iter(b'@', &seg.text)
            .take(p.min_addresses)
            .count()
            < p.min_addresses
            && found.is_empty()
        {
            continue;
        }
        let before = found.len();
        let mut first = None;
        for m in ADDRESS.find_iter(&seg.text) {
            if found.len() >= MAX_COUNTED {
                break;
            }
            let Ok(s) = std::str::from_utf8(m.as_bytes()) else {
                continue;
            };
            let Some(a) = Address::parse(s.trim_start_matches(['.', '-', '+'])) else {
                continue;
            };
            if looks_like_message_id(a.local()) {
                continue;
            }
            if own.contains(a.as_str())
                || orgview::is_internal(&a, env, ctx.org)
                || allow.recipient_domain_allowed(&a)
                || allow.value_allowed(a.as_str().as_bytes())
            {
                continue;
            }
            if found.insert(a) && first.is_none() {
                first = Some(m.start());
            }
        }
        let added = found.len() - before;
        if added > 0 && best_seg.is_none_or(|(_, n, _)| added > n) {
            best_seg = Some((si, added, first.and_then(|f| seg.raw_offset.map(|o| o + f))));
        }
    }
    let n = found.len();
    if n < p.min_addresses {
        return None;
    }
    let (si, _, raw_offset) = best_seg?;
    Some(Hit {
        severity: tier_severity(&p.tiers, n),
        message: format!(
            "{n} other people's addresses in the content (most in {})",
            segments[si].what
        ),
        evidence: format!("{n} addresses: {}", redact::address_sample(found.iter(), 3)),
        raw_offset,
        ..Hit::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::tests_support::*;
    use leakaudit_scanner::{Exposure, Field, Org};
    use std::borrow::Cow;

    #[test]
    fn counts_other_peoples_addresses_only() {
        let org = Org::with_defaults();
        let e = Exposure::default();
        let m = msg(
            b"",
            env("ana@shop.example", &[("own@client.example", Field::To)]),
        );
        let c = ctx(&m, &org, &e, b"");
        let p = Params {
            min_addresses: 3,
            tiers: vec![(3, Severity::High), (5, Severity::Critical)],
        };
        let mk = |t: String| Segment {
            text: Cow::Owned(t.into_bytes()),
            what: "text/csv".into(),
            raw_offset: None,
        };
        // Own recipient, sender, internal colleagues and duplicates do not count.
        let s = [mk(
            "own@client.example ana@shop.example bob@shop.example x1@a.com X1@A.COM x2@b.org"
                .into(),
        )];
        assert!(check(&p, &Allow::default(), &c, &s).is_none());
        let s = [mk((0..5).map(|i| format!("p{i}@gmail.com\n")).collect())];
        let h = check(&p, &Allow::default(), &c, &s).unwrap();
        assert_eq!(h.severity, Some(Severity::Critical));
        assert!(
            h.evidence.starts_with("5 addresses: p0***@gm***.com"),
            "{}",
            h.evidence
        );
        assert!(h.message.contains("text/csv"));
    }
}
