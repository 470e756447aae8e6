//! `recipient-exposure`: a message shows external recipients' addresses to other external
//! parties.
//!
//! What: the scanner's exposure model lists, for every message, the external addresses that
//! at least one other external party could see (To, Cc, Resent-*, and Bcc headers left in a
//! transmitted copy). This rule fires when the message reached at least `min_parties`
//! distinct external parties and exposed at least one address.
//! Why: a mass mail with every customer in To is the classic personal-data breach; two
//! strangers seeing each other is already one.
//! Example: `To: alice@gmail.com, bob@example.org` from `news@shop.example` exposes both.
//! Severity grows with the number of exposed addresses through `tiers`.

use super::{header_offset, tier_severity, Ctx, Hit};
use crate::allow::Allow;
use crate::finding::Severity;
use crate::raw::{RawRule, Validator};
use crate::redact;
use crate::triage::Thresholds;

#[derive(Debug, Clone)]
pub struct Params {
    /// Distinct external parties that must have received the message (default 2).
    pub min_parties: usize,
    /// Severity by number of exposed addresses (gate profile).
    pub tiers: Vec<(usize, Severity)>,
    /// Thresholds and severities of the audit profile (`[rule.triage]`).
    pub triage: Thresholds,
}

/// The parameters this kind accepts (a key of another kind is an error).
pub const KEYS: &[&str] = &["min_parties", "tiers", "triage"];

pub(crate) fn from_raw(v: &mut Validator<'_>, raw: &RawRule) -> Option<Params> {
    Some(Params {
        min_parties: v.count(&raw.min_parties, "min_parties", 2, 2),
        tiers: v.tiers(&raw.tiers),
        triage: crate::triage::config::from_raw(v, raw.triage.as_ref()),
    })
}

pub fn check(p: &Params, allow: &Allow, ctx: &Ctx<'_, '_>) -> Option<Hit> {
    let e = ctx.exposure;
    // Sized up front (a filtered collect grows by doubling: at 1,000,000 addresses a series
    // of large blocks the allocator keeps).
    let mut exposed = Vec::with_capacity(e.exposed.len());
    exposed.extend(
        e.exposed
            .iter()
            .filter(|x| !allow.recipient_domain_allowed(&x.address))
            .cloned(),
    );
    if exposed.is_empty() || e.audience_parties.len() < p.min_parties {
        return None;
    }
    let n = exposed.len();
    let audience = exposed.iter().map(|x| x.audience).max().unwrap_or(0);
    let evidence = format!(
        "{n} exposed: {}",
        redact::address_sample(exposed.iter().map(|x| &x.address), 3)
    );
    Some(Hit {
        severity: tier_severity(&p.tiers, n),
        message: format!(
            "{n} external address{} visible to other recipients ({} external parties received it)",
            if n == 1 { "" } else { "es" },
            e.audience_parties.len().max(audience)
        ),
        evidence,
        raw_offset: header_offset(ctx.raw, &["To", "Cc", "Resent-To", "Resent-Cc", "Bcc"]),
        exposed,
        audience_parties: e.audience_parties.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::tests_support::*;
    use leakaudit_scanner::{ExposedAddress, Exposure, Field};

    fn exposure(n: usize) -> Exposure {
        let exposed: Vec<ExposedAddress> = (0..n)
            .map(|i| ExposedAddress {
                address: addr(&format!("user{i}@gmail.com")),
                fields: vec![Field::To].into(),
                party: format!("user{i}@gmail.com").into(),
                audience: n - 1,
                in_group: false,
                source: None,
            })
            .collect();
        Exposure {
            audience_parties: exposed.iter().map(|x| x.party.clone()).collect(),
            visible_parties: n,
            exposed,
            saw_others: Vec::new(),
        }
    }

    fn params() -> Params {
        Params {
            min_parties: 2,
            tiers: vec![(2, Severity::High), (25, Severity::Critical)],
            triage: Thresholds::default(),
        }
    }

    #[test]
    fn severity_grows_with_count() {
        let raw = b"From: n@shop.example\nTo: x\n\nbody\n";
        let m = msg(raw, env("n@shop.example", &[]));
        let org = leakaudit_scanner::Org::with_defaults();
        for (n, sev) in [
            (2, Severity::High),
            (24, Severity::High),
            (25, Severity::Critical),
            (1000, Severity::Critical),
        ] {
            let e = exposure(n);
            let h = check(&params(), &Allow::default(), &ctx(&m, &org, &e, raw)).unwrap();
            assert_eq!(h.severity, Some(sev), "n={n}");
            assert_eq!(h.exposed.len(), n);
            assert!(
                !h.evidence.contains("user0@"),
                "evidence must be redacted: {}",
                h.evidence
            );
            assert_eq!(h.raw_offset, Some(21));
        }
    }

    #[test]
    fn nothing_exposed_nothing_fires() {
        let raw = b"From: n@shop.example\n\n";
        let m = msg(raw, env("n@shop.example", &[]));
        let org = leakaudit_scanner::Org::with_defaults();
        let e = Exposure::default();
        assert!(check(&params(), &Allow::default(), &ctx(&m, &org, &e, raw)).is_none());
    }
}
