//! `content-regex`: a secret-shaped string in the decoded text of a message.
//!
//! What: a regular expression over every text segment of the message (body, decoded text
//! parts and text attachments). `keywords` are literals that must occur for the regex to run
//! at all: the engine searches all keywords of the pack at once with Aho-Corasick over the
//! raw bytes, then runs only the candidate rules' regexes (compiled together into a RegexSet).
//! `min_recipients` limits a rule to messages with at least that many distinct recipients:
//! a password-reset link sent to its one owner is ordinary transactional mail, the same link
//! in a message to several people lets each of them take the account.
//! Why: a mail template or a reply that carries a private key, an API key or a live reset
//! token leaks it to every recipient and every archive of the message.
//! Example: `aws_access_key_id = AKIA...` pasted into a support reply.
//! Evidence: the named group `keep` (if the regex has one) followed by `****`, or the first
//! `keep_prefix` characters of the match; never the secret.

use super::{Ctx, Hit};
use crate::allow::Allow;
use crate::content::Segment;
use crate::raw::{RawRule, RuleRegex, Validator};
use crate::redact;
use std::collections::BTreeSet;

#[derive(Debug, Clone)]
pub struct Params {
    pub regex: RuleRegex,
    /// Literal prefilter (case-sensitive: list the spellings); empty: the regex always runs.
    pub keywords: Vec<String>,
    pub keep_prefix: usize,
    pub min_recipients: usize,
}

/// The parameters this kind accepts (a key of another kind is an error).
pub const KEYS: &[&str] = &["keywords", "regex", "keep_prefix", "min_recipients"];

pub(crate) fn from_raw(v: &mut Validator<'_>, raw: &RawRule) -> Option<Params> {
    let Some(re) = &raw.regex else {
        v.err(raw.kind.span(), "kind `content-regex` needs a `regex`");
        return None;
    };
    let regex = v.regex(re);
    let mut keywords = Vec::new();
    if let Some(k) = &raw.keywords {
        for kw in k.get_ref() {
            if kw.get_ref().trim().len() < 3 {
                v.err(
                    kw.span(),
                    "a keyword must be at least 3 characters (it is a prefilter)",
                );
            } else {
                keywords.push(kw.get_ref().clone());
            }
        }
    }
    let keep_prefix = v.count(&raw.keep_prefix, "keep_prefix", 4, 0);
    let min_recipients = v.count(&raw.min_recipients, "min_recipients", 1, 1);
    Some(Params {
        regex: regex?,
        keywords,
        keep_prefix,
        min_recipients,
    })
}

/// Distinct recipient addresses in all fields.
pub fn recipient_count(ctx: &Ctx<'_, '_>) -> usize {
    ctx.msg
        .envelope
        .recipients
        .iter()
        .map(|r| r.mailbox.address.as_str())
        .collect::<BTreeSet<_>>()
        .len()
}

fn redact_match(p: &Params, caps: &regex::bytes::Captures<'_>) -> String {
    match caps.name("keep") {
        Some(k) => format!("{}****", String::from_utf8_lossy(k.as_bytes())),
        None => redact::secret(&String::from_utf8_lossy(&caps[0]), p.keep_prefix),
    }
}

/// Runs the regex on the segments the engine marked as candidates.
pub fn check(
    p: &Params,
    allow: &Allow,
    ctx: &Ctx<'_, '_>,
    segments: &[Segment<'_>],
    candidate: &[bool],
    summary: &str,
) -> Option<Hit> {
    if recipient_count(ctx) < p.min_recipients {
        return None;
    }
    let mut first: Option<(String, Option<usize>, String)> = None;
    let mut count = 0usize;
    for (seg, _) in segments.iter().zip(candidate).filter(|(_, c)| **c) {
        for caps in p.regex.regex().captures_iter(&seg.text).take(100) {
            let m = caps.get(0).expect("group 0");
            if allow.value_allowed(m.as_bytes()) {
                continue;
            }
            count += 1;
            if first.is_none() {
                first = Some((
                    redact_match(p, &caps),
                    seg.raw_offset.map(|o| o + m.start()),
                    seg.what.to_string(),
                ));
            }
        }
    }
    let (evidence, raw_offset, what) = first?;
    Some(Hit {
        severity: None,
        message: if count == 1 {
            format!("{summary} (in {what})")
        } else {
            format!("{summary} ({count} matches, first in {what})")
        },
        evidence,
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

    fn seg(text: &str) -> Segment<'_> {
        Segment {
            text: Cow::Borrowed(text.as_bytes()),
            what: "body".into(),
            raw_offset: Some(10),
        }
    }

    fn params(re: &str, min_recipients: usize) -> Params {
        Params {
            regex: RuleRegex::new(re).unwrap(),
            keywords: vec![],
            keep_prefix: 4,
            min_recipients,
        }
    }

    #[test]
    fn evidence_is_the_keep_group_or_a_prefix() {
        let org = Org::with_defaults();
        let e = Exposure::default();
        let m = msg(b"", env("a@shop.example", &[("c@x.com", Field::To)]));
        let c = ctx(&m, &org, &e, b"");
        let s = [seg(
            "key: sk_live_abcdefghijklmnopqrstuvwx and sk_live_zzzzzzzzzzzzzzzzzzzzzzzz",
        )];
        let h = check(
            &params(r"(?P<keep>sk_live_)[a-z]{24}", 1),
            &Allow::default(),
            &c,
            &s,
            &[true],
            "Stripe",
        )
        .unwrap();
        assert_eq!(h.evidence, "sk_live_****");
        assert_eq!(h.raw_offset, Some(15));
        assert!(h.message.contains("2 matches"));
        let h = check(
            &params(r"sk_live_[a-z]{24}", 1),
            &Allow::default(),
            &c,
            &s,
            &[true],
            "Stripe",
        )
        .unwrap();
        assert_eq!(h.evidence, "sk_l****");
        // A segment the prefilter ruled out is not searched.
        assert!(check(
            &params(r"sk_live_[a-z]{24}", 1),
            &Allow::default(),
            &c,
            &s,
            &[false],
            "Stripe"
        )
        .is_none());
    }

    #[test]
    fn min_recipients_spares_single_recipient_mail() {
        let org = Org::with_defaults();
        let e = Exposure::default();
        let s = [seg(
            "https://x.example/reset?token=abcdefghijklmnopqrstuvwxyz",
        )];
        let p = params(r"(?P<keep>https://\S*reset\S*=)[a-z]{20,}", 2);
        let one = msg(b"", env("a@shop.example", &[("c@x.com", Field::To)]));
        assert!(check(
            &p,
            &Allow::default(),
            &ctx(&one, &org, &e, b""),
            &s,
            &[true],
            "r"
        )
        .is_none());
        let two = msg(
            b"",
            env(
                "a@shop.example",
                &[("c@x.com", Field::To), ("d@x.com", Field::Cc)],
            ),
        );
        let h = check(
            &p,
            &Allow::default(),
            &ctx(&two, &org, &e, b""),
            &s,
            &[true],
            "r",
        )
        .unwrap();
        assert_eq!(h.evidence, "https://x.example/reset?token=****");
    }
}
