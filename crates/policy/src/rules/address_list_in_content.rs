//! `address-list-in-content`: many distinct addresses that the sender put in the text of a
//! message or of a text attachment.
//!
//! What: counts distinct addresses in the decoded body and text attachments (text/plain,
//! text/html with tags stripped, text/csv and other text parts, base64 and quoted-printable
//! decoded, nested multiparts to a bounded depth), leaving out the message's own recipients
//! and senders, the organisation's addresses, and text quoted from an earlier message
//! (`>` lines, "On ... wrote:", "-----Original Message-----" and forwarded header blocks,
//! HTML `<blockquote>`, attached `message/rfc822` parts: see [`crate::quoted`]). Fires at
//! `min_addresses`; `tiers` raise the severity with the count.
//! Why: a customer export attached to a mail, or a list pasted into a body, exposes everyone
//! on it even when the headers are clean. A reply that quotes the original's header block
//! exposes nobody new: whoever wrote the original did.
//! Example: `attachment; filename="newsletter-list.csv"` with 200 customer addresses.

use super::{tier_severity, Ctx, Hit};
use crate::allow::Allow;
use crate::content::{self, HtmlLines, Limits, Segment, Source};
use crate::finding::Severity;
use crate::orgview;
use crate::pack::{RawRule, Validator};
use crate::quoted;
use crate::redact;
use leakaudit_scanner::{Address, ExposedAddress};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// Most addresses counted per message (the count only drives the severity).
const MAX_COUNTED: usize = 100_000;

#[derive(Debug, Clone)]
pub struct Params {
    pub min_addresses: usize,
    pub tiers: Vec<(usize, Severity)>,
}

pub(crate) fn from_raw(v: &mut Validator<'_>, raw: &RawRule) -> Option<Params> {
    Some(Params {
        min_addresses: v.count(&raw.min_addresses, "min_addresses", 10, 2),
        tiers: v.tiers(&raw.tiers),
    })
}

/// An address the sender put in the content, and where: `body` or `attachment:NAME`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ContentAddress {
    pub address: Address,
    pub source: String,
}

/// What the rule counted in one message.
#[derive(Debug, Default)]
pub struct Count {
    /// Addresses in new text or attachments, with where each was first seen.
    pub new: BTreeMap<Address, Source>,
    /// Distinct addresses seen only in quoted text or forwarded messages.
    pub quoted_only: usize,
    /// The segment that added the most new addresses: its description and the raw offset of
    /// its first new address (when the segment is a verbatim slice of the message).
    pub most_in: Option<(String, Option<usize>)>,
}

impl Count {
    /// The new addresses with their source labels, sorted by address.
    pub fn content_addresses(&self) -> Vec<ContentAddress> {
        self.new
            .iter()
            .map(|(a, s)| ContentAddress {
                address: a.clone(),
                source: s.label(),
            })
            .collect()
    }
}

/// Counts the addresses of `segments` that are not the message's own, not internal, not
/// allowed, split into new and quoted-only.
pub fn count(p: &Params, allow: &Allow, ctx: &Ctx<'_, '_>, segments: &[Segment<'_>]) -> Count {
    let env = &ctx.msg.envelope;
    let own: BTreeSet<&str> = env
        .recipients
        .iter()
        .map(|r| r.mailbox.address.as_str())
        .chain(env.from.iter().map(|m| m.address.as_str()))
        .collect();
    let mut c = Count::default();
    let mut quoted_seen: HashSet<Address> = HashSet::new();
    let mut best: Option<(usize, usize, Option<usize>)> = None; // (segment, added, offset)
    for (si, seg) in segments.iter().enumerate() {
        if memchr::memchr_iter(b'@', &seg.text)
            .take(p.min_addresses)
            .count()
            < p.min_addresses
            && c.new.is_empty()
            && quoted_seen.is_empty()
        {
            continue;
        }
        let source = seg.source();
        // Computed at the first address only: most segments hold none.
        let mut ranges: Option<Vec<std::ops::Range<usize>>> = None;
        let before = c.new.len();
        let mut first = None;
        for (pos, a) in content::addresses(&seg.text) {
            if c.new.len() + quoted_seen.len() >= MAX_COUNTED {
                break;
            }
            if own.contains(a.as_str())
                || orgview::is_internal(&a, env, ctx.org)
                || allow.recipient_domain_allowed(&a)
                || allow.value_allowed(a.as_str().as_bytes())
            {
                continue;
            }
            let is_quoted = match &source {
                Source::Forwarded => true,
                Source::Attachment(_) => false,
                Source::Body => quoted::in_ranges(
                    ranges.get_or_insert_with(|| quoted::quoted_ranges(&seg.text)),
                    pos,
                ),
            };
            if is_quoted {
                if !c.new.contains_key(&a) {
                    quoted_seen.insert(a);
                }
                continue;
            }
            quoted_seen.remove(&a);
            if let std::collections::btree_map::Entry::Vacant(e) = c.new.entry(a) {
                e.insert(source.clone());
                first.get_or_insert(pos);
            }
        }
        let added = c.new.len() - before;
        if added > 0 && best.is_none_or(|(_, n, _)| added > n) {
            best = Some((si, added, first.and_then(|f| seg.raw_offset.map(|o| o + f))));
        }
    }
    c.quoted_only = quoted_seen.len();
    c.most_in = best.map(|(si, _, off)| (segments[si].what.to_string(), off));
    c
}

pub fn check(
    p: &Params,
    allow: &Allow,
    ctx: &Ctx<'_, '_>,
    segments: &[Segment<'_>],
) -> Option<Hit> {
    let mut c = count(p, allow, ctx, segments);
    if c.new.len() < p.min_addresses {
        return None;
    }
    // The engine's HTML text is flat (for the other content rules); a reply quoted in a
    // `<blockquote>` or an HTML header block only shows with the line structure. Redone only
    // for a message that would fire, so the decoding is paid rarely.
    let html_body = segments
        .iter()
        .any(|s| s.what.starts_with("text/html") && s.source() == Source::Body);
    if html_body {
        let lined = content::segments_with(ctx.raw, &Limits::default(), HtmlLines::Quoted);
        c = count(p, allow, ctx, &lined);
    }
    let n = c.new.len();
    if n < p.min_addresses {
        return None;
    }
    let (what, raw_offset) = c.most_in.clone()?;
    let mut message = format!("{n} other people's addresses in the content (most in {what})");
    if c.quoted_only > 0 {
        message.push_str(&format!(
            "; {} more only in quoted or forwarded text, not counted",
            c.quoted_only
        ));
    }
    let parties = &ctx.exposure.audience_parties;
    let exposed = c
        .new
        .keys()
        .map(|a| {
            let party = orgview::party(a, ctx.org);
            let audience = parties.iter().filter(|p| **p != party).count();
            ExposedAddress {
                address: a.clone(),
                fields: Vec::new(),
                party,
                audience,
                in_group: false,
            }
        })
        .collect();
    Some(Hit {
        severity: tier_severity(&p.tiers, n),
        message,
        evidence: format!("{n} addresses: {}", redact::address_sample(c.new.keys(), 3)),
        raw_offset,
        exposed,
        audience_parties: parties.clone(),
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
