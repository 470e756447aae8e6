//! `bcc-header-leak`: a Bcc or Resent-Bcc header survived in a transmitted copy.
//!
//! What: in what recipients actually received (an MTA journal, a provider export), a `Bcc:`
//! header listing addresses means every recipient saw who was blind-copied. In the sender's
//! own "Sent" folder (`archive_kind = "sent"`) a Bcc header is normal and this rule is silent;
//! with `archive_kind = "auto"` (default) it fires only on a copy with transit traces
//! (Received, Delivered-To, X-Original-To, Return-Path), except under the gate profile, which
//! judges rendered mail as what will be transmitted: whether a Bcc header reaches the
//! recipients depends on the transport (Python's `send_message` strips it; raw SMTP DATA and
//! many providers' raw-send APIs do not).
//! It fires only when the header shows an external address to someone else: a copy whose only
//! recipient is the Bcc'd person, or a Bcc of internal addresses only, is not a leak.
//! Why: Bcc is the correct way to send to many people; a mailer that keeps the header defeats
//! it, and the people who were meant to be hidden are the ones exposed.
//! Example: `To: undisclosed-recipients:;` + `Bcc: a@x.com, b@y.org` in a journal copy.

use super::{header_offset, Ctx, Hit};
use crate::allow::Allow;
use crate::orgview;
use crate::redact;
use leakaudit_scanner::exposure::is_transmitted;
use std::collections::BTreeSet;

#[derive(Debug, Clone)]
pub struct Params;

pub fn check(_p: &Params, allow: &Allow, ctx: &Ctx<'_, '_>) -> Option<Hit> {
    let env = &ctx.msg.envelope;
    if !is_transmitted(env, ctx.org.archive_kind) {
        return None;
    }
    let all: BTreeSet<&str> = env
        .recipients
        .iter()
        .map(|r| r.mailbox.address.as_str())
        .collect();
    if all.len() < 2 {
        return None;
    }
    let blind: Vec<_> = env
        .recipients
        .iter()
        .filter(|r| r.field.is_blind())
        .map(|r| &r.mailbox.address)
        .filter(|a| !orgview::is_internal(a, env, ctx.org) && !allow.recipient_domain_allowed(a))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if blind.is_empty() {
        return None;
    }
    let n = blind.len();
    let s = if n == 1 { "" } else { "es" };
    let message = if ctx.gate {
        format!(
            "Bcc header with {n} external address{s} in outbound mail: a transport that sends \
             the message as is (raw SMTP DATA, a raw-send API) shows them to every recipient"
        )
    } else {
        format!("Bcc header with {n} external address{s} kept in a transmitted copy")
    };
    Some(Hit {
        severity: None,
        message,
        evidence: format!("Bcc: {}", redact::address_sample(blind.iter().copied(), 3)),
        raw_offset: header_offset(ctx.raw, &["Bcc", "Resent-Bcc"]),
        ..Hit::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::tests_support::*;
    use leakaudit_scanner::{Exposure, Field, Org};

    #[test]
    fn fires_in_transmitted_not_in_sent() {
        let raw = b"From: n@shop.example\nTo: a@x.com\nBcc: b@y.org\n\n";
        let m = msg(
            raw,
            env(
                "n@shop.example",
                &[("a@x.com", Field::To), ("b@y.org", Field::Bcc)],
            ),
        );
        let mut org = Org::with_defaults();
        org.archive_kind = leakaudit_scanner::ArchiveKind::Transmitted;
        let e = Exposure::default();
        let h = check(&Params, &Allow::default(), &ctx(&m, &org, &e, raw)).unwrap();
        assert_eq!(h.evidence, "Bcc: b***@y***.org");
        assert_eq!(h.raw_offset, Some(33));
        org.archive_kind = leakaudit_scanner::ArchiveKind::Sent;
        assert!(check(&Params, &Allow::default(), &ctx(&m, &org, &e, raw)).is_none());
    }

    #[test]
    fn auto_fires_only_on_a_copy_with_transit_traces() {
        let raw = b"From: n@shop.example\nTo: a@x.com\nBcc: b@y.org\n\n";
        let mut en = env(
            "n@shop.example",
            &[("a@x.com", Field::To), ("b@y.org", Field::Bcc)],
        );
        let org = Org::with_defaults();
        let e = Exposure::default();
        let m = msg(raw, en.clone());
        assert!(check(&Params, &Allow::default(), &ctx(&m, &org, &e, raw)).is_none());
        en.facts.received = 1;
        let m = msg(raw, en);
        assert!(check(&Params, &Allow::default(), &ctx(&m, &org, &e, raw)).is_some());
    }

    #[test]
    fn own_copy_and_internal_bcc_are_not_leaks() {
        let mut org = Org::with_defaults();
        org.archive_kind = leakaudit_scanner::ArchiveKind::Transmitted;
        let e = Exposure::default();
        let raw = b"From: n@shop.example\nBcc: b@y.org\n\n";
        let m = msg(raw, env("n@shop.example", &[("b@y.org", Field::Bcc)]));
        assert!(check(&Params, &Allow::default(), &ctx(&m, &org, &e, raw)).is_none());
        let raw = b"From: n@shop.example\nTo: a@x.com\nBcc: crm@shop.example\n\n";
        let m = msg(
            raw,
            env(
                "n@shop.example",
                &[("a@x.com", Field::To), ("crm@shop.example", Field::Bcc)],
            ),
        );
        assert!(check(&Params, &Allow::default(), &ctx(&m, &org, &e, raw)).is_none());
    }
}
