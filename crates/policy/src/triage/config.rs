//! `[rule.triage]` of the `recipient-exposure` rule: the triage's thresholds and the
//! severity of each outcome, validated with positions like every rule key.
//!
//! ```toml
//! [rule.triage]
//! critical_parties = 25        # mass exposure from this many parties
//! high_parties = 6             # a new, non-reply exposure of this many parties is high
//! campaign_window_hours = 6
//! campaign_min_addresses = 10  # exposed addresses over all chunks of a mailing
//! variant_min_addresses = 10   # large chunks merge across subjects (language variants)
//! variant_window_minutes = 30  # ... when this close in time
//! [rule.triage.severity]       # outcome = severity (see triage/severity.rs)
//! reply-few = "medium"
//! ```

use super::severity::{Outcome, Thresholds};
pub use crate::raw::RawTriage;
use crate::raw::Validator;
use std::collections::BTreeMap;
use toml::Spanned;

pub(crate) fn from_raw(v: &mut Validator<'_>, raw: Option<&Spanned<RawTriage>>) -> Thresholds {
    let d = Thresholds::default();
    let Some(raw) = raw else { return d };
    let r = raw.get_ref();
    let mut t = Thresholds {
        critical_parties: v.count(
            &r.critical_parties,
            "critical_parties",
            d.critical_parties,
            2,
        ),
        high_parties: v.count(&r.high_parties, "high_parties", d.high_parties, 2),
        campaign_window_secs: v.count(
            &r.campaign_window_hours,
            "campaign_window_hours",
            (d.campaign_window_secs / 3600) as usize,
            0,
        ) as i64
            * 3600,
        campaign_min_addresses: v.count(
            &r.campaign_min_addresses,
            "campaign_min_addresses",
            d.campaign_min_addresses,
            1,
        ),
        variant_min_addresses: v.count(
            &r.variant_min_addresses,
            "variant_min_addresses",
            d.variant_min_addresses,
            1,
        ),
        variant_window_secs: v.count(
            &r.variant_window_minutes,
            "variant_window_minutes",
            (d.variant_window_secs / 60) as usize,
            0,
        ) as i64
            * 60,
        severity: BTreeMap::new(),
    };
    if t.high_parties > t.critical_parties {
        if let Some(s) = &r.high_parties {
            v.err(
                s.span(),
                "`high_parties` must not exceed `critical_parties`",
            );
        }
    }
    for (k, val) in &r.severity {
        let Some(o) = Outcome::from_key(k) else {
            let keys: Vec<&str> = Outcome::ALL.iter().map(|o| o.key()).collect();
            v.err(
                val.span(),
                format!(
                    "unknown triage outcome `{k}` (expected one of: {})",
                    keys.join(", ")
                ),
            );
            continue;
        };
        if let Some(s) = v.severity(val) {
            t.severity.insert(o, s);
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use crate::pack::RulePack;
    use crate::rules::RuleKind;
    use crate::severity::Severity;
    use std::path::PathBuf;

    const RULE: &str = r#"
[[rule]]
id = "recipient-exposure"
kind = "recipient-exposure"
severity = "high"
summary = "s"
description = "d"
hint = "h"
"#;

    fn load(extra: &str) -> Result<RulePack, Vec<String>> {
        RulePack::from_texts(&[(PathBuf::from("t.toml"), format!("{RULE}{extra}"))])
            .map_err(|e| e.into_iter().map(|e| e.to_string()).collect())
    }

    #[test]
    fn triage_table_overrides_thresholds_and_severities() {
        let p = load(
            "[rule.triage]\nhigh_parties = 4\ncampaign_window_hours = 12\n\
             [rule.triage.severity]\nreply-few = \"medium\"\n",
        )
        .unwrap();
        let RuleKind::RecipientExposure(params) = &p.rules[0].kind else {
            panic!("kind")
        };
        assert_eq!(params.triage.high_parties, 4);
        assert_eq!(params.triage.campaign_window_secs, 12 * 3600);
        assert_eq!(
            params.triage.severity_of(super::Outcome::ReplyFew),
            Severity::Medium
        );
        assert_eq!(params.triage.critical_parties, 25);
    }

    #[test]
    fn shipped_triage_table_is_the_documented_default() {
        let p = RulePack::builtin();
        let r = p.get("recipient-exposure").unwrap();
        let RuleKind::RecipientExposure(params) = &r.kind else {
            panic!("kind")
        };
        let (t, d) = (&params.triage, super::Thresholds::default());
        assert_eq!(
            t.severity.len(),
            super::Outcome::ALL.len(),
            "every outcome listed"
        );
        for o in super::Outcome::ALL {
            assert_eq!(t.severity_of(o), o.default_severity(), "{}", o.key());
        }
        let strip = |mut x: super::Thresholds| {
            x.severity.clear();
            x
        };
        assert_eq!(strip(t.clone()), d);
    }

    #[test]
    fn bad_triage_keys_are_reported_with_positions() {
        let e = load(
            "[rule.triage]\nhigh_parties = 0\nfoo = 1\n[rule.triage.severity]\nnope = \"high\"\n",
        )
        .unwrap_err();
        assert!(e.iter().any(|m| m.contains("foo")), "{e:?}");
        let e = load("[rule.triage]\nhigh_parties = 30\n[rule.triage.severity]\nnope = \"high\"\nmass = \"urgent\"\n")
            .unwrap_err();
        assert!(
            e.iter()
                .any(|m| m.starts_with("t.toml:") && m.contains("unknown triage outcome `nope`")),
            "{e:?}"
        );
        assert!(e.iter().any(|m| m.contains("must not exceed")), "{e:?}");
        assert!(e.iter().any(|m| m.contains("urgent")), "{e:?}");
    }

    #[test]
    fn triage_table_belongs_to_recipient_exposure_only() {
        let e = RulePack::from_texts(&[(
            PathBuf::from("t.toml"),
            RULE.replace("recipient-exposure", "bcc-header-leak")
                + "[rule.triage]\nhigh_parties = 4\n",
        )])
        .unwrap_err();
        assert!(
            e[0].to_string().contains("`triage` does not apply"),
            "{e:?}"
        );
    }
}
