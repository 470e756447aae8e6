//! From measured facts to a severity: the default table, its thresholds, and the decision.
//!
//! Decision order (audit profile), first match wins:
//!
//! | outcome            | when                                                        | default  |
//! |--------------------|-------------------------------------------------------------|----------|
//! | `campaign`         | one of >= 2 exposing chunks of one mailing within the window | critical |
//! | `bulk`             | bulk-mail headers and >= 2 parties                           | critical |
//! | `mass`             | >= `critical_parties` (25) parties, not a known group and not | critical |
//! |                    | all already on the quoted original                           |          |
//! | `own-or-org`       | < 2 parties left once own addresses / org domains are removed | info     |
//! | `quoted-original`  | every exposed address already on the quoted original         | low      |
//! | `known-group`      | every pair of parties shares history                         | low      |
//! | `customers-system` | >= 2 account holders exposed by a system / bulk sender        | high     |
//! | `new-many`         | not a reply, >= `high_parties` (6) new parties               | high     |
//! | `new-few`          | not a reply, 2-5 new parties                                 | medium   |
//! | `reply-many`       | a reply, >= `high_parties` new parties                       | medium   |
//! | `reply-few`        | a reply, 2-5 new parties                                     | low      |
//!
//! Afterwards, account holders exposed to each other (>= 2) raise a `new-*` / `reply-*`
//! result one level (at most high); a leaked Bcc in a transmitted copy is at least medium.

use super::signal::Signal;
use crate::severity::Severity;
use std::collections::BTreeMap;

/// The decision reached, each with an overridable severity (`[rule.triage.severity]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    Campaign,
    Bulk,
    Mass,
    OwnOrOrg,
    QuotedOriginal,
    KnownGroup,
    CustomersSystem,
    NewMany,
    NewFew,
    ReplyMany,
    ReplyFew,
}

impl Outcome {
    pub const ALL: [Outcome; 11] = [
        Outcome::Campaign,
        Outcome::Bulk,
        Outcome::Mass,
        Outcome::OwnOrOrg,
        Outcome::QuotedOriginal,
        Outcome::KnownGroup,
        Outcome::CustomersSystem,
        Outcome::NewMany,
        Outcome::NewFew,
        Outcome::ReplyMany,
        Outcome::ReplyFew,
    ];

    /// The key in `[rule.triage.severity]`.
    pub fn key(self) -> &'static str {
        match self {
            Outcome::Campaign => "campaign",
            Outcome::Bulk => "bulk",
            Outcome::Mass => "mass",
            Outcome::OwnOrOrg => "own-or-org",
            Outcome::QuotedOriginal => "quoted-original",
            Outcome::KnownGroup => "known-group",
            Outcome::CustomersSystem => "customers-system",
            Outcome::NewMany => "new-many",
            Outcome::NewFew => "new-few",
            Outcome::ReplyMany => "reply-many",
            Outcome::ReplyFew => "reply-few",
        }
    }

    pub fn from_key(key: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.key() == key)
    }

    pub fn default_severity(self) -> Severity {
        match self {
            Outcome::Campaign | Outcome::Bulk | Outcome::Mass => Severity::Critical,
            Outcome::CustomersSystem | Outcome::NewMany => Severity::High,
            Outcome::NewFew | Outcome::ReplyMany => Severity::Medium,
            Outcome::QuotedOriginal | Outcome::KnownGroup | Outcome::ReplyFew => Severity::Low,
            Outcome::OwnOrOrg => Severity::Info,
        }
    }
}

/// Thresholds and severities of the triage (`[rule.triage]` of the `recipient-exposure`
/// rule). `Default` is the documented table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thresholds {
    /// Parties from which an exposure is a mass exposure (25).
    pub critical_parties: usize,
    /// New parties from which a non-reply exposure is high (6).
    pub high_parties: usize,
    /// Chunks of one mailing farther apart than this are separate mailings (6 h).
    pub campaign_window_secs: i64,
    /// Exposed addresses over all chunks of a mailing before it counts as a campaign (10):
    /// someone mailing the same note to two pairs of friends is not a campaign.
    pub campaign_min_addresses: usize,
    /// A chunk exposing at least this many addresses is "large": large chunks of one sender
    /// within the window are one campaign even with different subjects (language variants).
    pub variant_min_addresses: usize,
    /// Large chunks with other subjects count only this close in time (30 min, as the
    /// report's campaign grouping): two different bulk mailings of a morning stay apart.
    pub variant_window_secs: i64,
    /// Per outcome, when overridden.
    pub severity: BTreeMap<Outcome, Severity>,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            critical_parties: 25,
            high_parties: 6,
            campaign_window_secs: 6 * 3600,
            campaign_min_addresses: 10,
            variant_min_addresses: 10,
            variant_window_secs: 1800,
            severity: BTreeMap::new(),
        }
    }
}

impl Thresholds {
    pub fn severity_of(&self, o: Outcome) -> Severity {
        self.severity
            .get(&o)
            .copied()
            .unwrap_or_else(|| o.default_severity())
    }
}

/// What was measured about one exposing message (inputs of [`decide`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// External parties that can see each other, before any discount.
    pub raw_parties: usize,
    /// Parties left once the sender's own addresses and the organisation's domains are removed.
    pub parties: usize,
    /// Of `parties`, those lacking shared history with at least one other (= `parties` when
    /// there is no history); 0 = a known group.
    pub new_parties: usize,
    /// Pairs of `parties` with shared history.
    pub known_pairs: usize,
    pub has_history: bool,
    /// Exposed addresses removed as the sender's own / at org domains.
    pub own_addresses: usize,
    pub org_domain_parties: usize,
    /// Exposing chunks of this mailing within the window (this one included) and their
    /// exposed addresses.
    pub campaign_chunks: usize,
    pub campaign_addresses: usize,
    pub bulk: bool,
    pub system_sender: bool,
    pub reply: bool,
    /// Exposed (remaining) addresses that appear in the quoted original, out of `exposed`.
    pub quoted: usize,
    pub exposed: usize,
    /// Distinct parties of exposed account holders.
    pub customer_parties: usize,
    pub bcc_leaked: bool,
}

/// The severity, the outcome that set it, signals and reasons.
pub fn decide(f: &Facts, t: &Thresholds) -> (Severity, Option<Outcome>, Vec<Signal>, Vec<String>) {
    let mut signals = Vec::new();
    let mut reasons = Vec::new();
    let is_campaign = f.campaign_chunks >= 2 && f.campaign_addresses >= t.campaign_min_addresses;
    let known = f.has_history && f.parties >= 2 && f.new_parties == 0;
    let quoted_all = f.exposed > 0 && f.quoted >= f.exposed;
    let n = f.new_parties;

    if f.raw_parties >= t.critical_parties {
        signals.push(Signal::MassExposure);
    } else if f.raw_parties >= t.high_parties {
        signals.push(Signal::ManyParties);
    } else {
        signals.push(Signal::FewParties);
    }
    if is_campaign {
        signals.push(Signal::Campaign);
    }
    if f.bulk {
        signals.push(Signal::BulkMail);
    }
    if f.system_sender {
        signals.push(Signal::SystemSender);
    }
    if f.reply {
        signals.push(Signal::Reply);
    }
    if quoted_all {
        signals.push(Signal::QuotedOriginal);
    }
    if f.own_addresses > 0 {
        signals.push(Signal::OwnAddresses);
    }
    if f.org_domain_parties > 0 {
        signals.push(Signal::OrgDomain);
    }
    if f.customer_parties >= 2 {
        signals.push(Signal::Customers);
    }
    if f.bcc_leaked {
        signals.push(Signal::BccLeaked);
    }
    if !f.has_history {
        signals.push(Signal::NoHistory);
    } else if f.parties >= 2 {
        signals.push(if known {
            Signal::KnownGroup
        } else if f.known_pairs > 0 {
            Signal::PartlyKnown
        } else {
            Signal::NewContacts
        });
    }

    let outcome = if is_campaign {
        reasons.push(format!(
            "campaign: {} chunks of one mailing within {} h, {} addresses exposed",
            f.campaign_chunks,
            t.campaign_window_secs / 3600,
            f.campaign_addresses
        ));
        Outcome::Campaign
    } else if f.bulk && f.parties >= 2 {
        reasons.push(format!(
            "mass mail (bulk headers) showing {} external parties to each other",
            f.parties
        ));
        Outcome::Bulk
    } else if f.parties >= t.critical_parties && !known && !quoted_all {
        reasons.push(format!(
            "{} external parties can see each other (mass exposure from {})",
            f.parties, t.critical_parties
        ));
        Outcome::Mass
    } else if f.parties < 2 {
        reasons.push(format!(
            "only the sender's own addresses ({}) or the organisation's domains ({}) besides one party",
            f.own_addresses, f.org_domain_parties
        ));
        Outcome::OwnOrOrg
    } else if quoted_all {
        reasons.push(format!(
            "all {} exposed addresses were already on the quoted original: exposed upstream",
            f.exposed
        ));
        Outcome::QuotedOriginal
    } else if known {
        reasons.push(format!(
            "known group: all {} parties already corresponded in this archive",
            f.parties
        ));
        Outcome::KnownGroup
    } else if f.customer_parties >= 2 && (f.system_sender || f.bulk) {
        reasons.push(format!(
            "{} account holders exposed to each other by a system sender",
            f.customer_parties
        ));
        Outcome::CustomersSystem
    } else {
        let many = n >= t.high_parties;
        let novelty = if f.has_history {
            format!("{n} of {} parties new to each other", f.parties)
        } else {
            format!("{} parties, no history", f.parties)
        };
        let o = match (f.reply, many) {
            (false, true) => Outcome::NewMany,
            (false, false) => Outcome::NewFew,
            (true, true) => Outcome::ReplyMany,
            (true, false) => Outcome::ReplyFew,
        };
        reasons.push(if f.reply {
            format!("reply in a thread: {novelty}")
        } else {
            format!("new exposure: {novelty}")
        });
        o
    };
    let mut sev = t.severity_of(outcome);
    let novel = matches!(
        outcome,
        Outcome::NewMany | Outcome::NewFew | Outcome::ReplyMany | Outcome::ReplyFew
    );
    if f.customer_parties >= 2 && novel && sev < Severity::High {
        let raised = match sev {
            Severity::Info => Severity::Low,
            Severity::Low => Severity::Medium,
            _ => Severity::High,
        };
        reasons.push(format!(
            "{} account holders exposed: raised from {sev} to {raised}",
            f.customer_parties
        ));
        sev = raised;
    }
    if f.bcc_leaked && sev < Severity::Medium {
        reasons.push("a transmitted copy kept its Bcc header: at least medium".into());
        sev = Severity::Medium;
    }
    signals.sort();
    signals.dedup();
    (sev, Some(outcome), signals, reasons)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(parties: usize) -> Facts {
        Facts {
            raw_parties: parties,
            parties,
            new_parties: parties,
            has_history: true,
            exposed: parties,
            ..Facts::default()
        }
    }

    fn sev(f: &Facts) -> Severity {
        decide(f, &Thresholds::default()).0
    }

    #[test]
    fn default_table_by_size_and_novelty() {
        assert_eq!(sev(&new(2)), Severity::Medium);
        assert_eq!(sev(&new(5)), Severity::Medium);
        assert_eq!(sev(&new(6)), Severity::High);
        assert_eq!(sev(&new(24)), Severity::High);
        assert_eq!(sev(&new(25)), Severity::Critical);
        let known = Facts {
            new_parties: 0,
            ..new(8)
        };
        assert_eq!(sev(&known), Severity::Low);
        let (_, o, s, _) = decide(&known, &Thresholds::default());
        assert_eq!(o, Some(Outcome::KnownGroup));
        assert!(s.contains(&Signal::KnownGroup));
        // 25+ known parties: a standing distribution list, not a mass exposure.
        let big_known = Facts {
            new_parties: 0,
            ..new(30)
        };
        assert_eq!(sev(&big_known), Severity::Low);
        // A reply-all to 30 people who were all on the quoted original: exposed upstream.
        let big_quoted = Facts {
            quoted: 30,
            reply: true,
            ..new(30)
        };
        assert_eq!(sev(&big_quoted), Severity::Low);
    }

    #[test]
    fn replies_rank_one_level_lower_and_quoted_original_is_low() {
        let r = Facts {
            reply: true,
            ..new(3)
        };
        assert_eq!(sev(&r), Severity::Low);
        let r = Facts {
            reply: true,
            ..new(7)
        };
        assert_eq!(sev(&r), Severity::Medium);
        let q = Facts {
            quoted: 7,
            ..new(7)
        };
        let (s, o, sig, reasons) = decide(&q, &Thresholds::default());
        assert_eq!((s, o), (Severity::Low, Some(Outcome::QuotedOriginal)));
        assert!(sig.contains(&Signal::QuotedOriginal));
        assert!(reasons[0].contains("quoted original"), "{reasons:?}");
    }

    #[test]
    fn campaign_and_bulk_are_critical_whatever_the_size() {
        let c = Facts {
            campaign_chunks: 8,
            campaign_addresses: 800,
            reply: true,
            new_parties: 0,
            ..new(3)
        };
        assert_eq!(sev(&c), Severity::Critical);
        // Two pairs of friends with the same subject: not a campaign.
        let small = Facts {
            campaign_chunks: 2,
            campaign_addresses: 4,
            ..new(2)
        };
        assert_eq!(sev(&small), Severity::Medium);
        let b = Facts {
            bulk: true,
            ..new(2)
        };
        assert_eq!(sev(&b), Severity::Critical);
    }

    #[test]
    fn own_addresses_and_org_domains_are_info() {
        let f = Facts {
            raw_parties: 2,
            parties: 1,
            new_parties: 1,
            own_addresses: 1,
            has_history: true,
            exposed: 1,
            ..Facts::default()
        };
        let (s, o, sig, _) = decide(&f, &Thresholds::default());
        assert_eq!((s, o), (Severity::Info, Some(Outcome::OwnOrOrg)));
        assert!(sig.contains(&Signal::OwnAddresses));
    }

    #[test]
    fn customers_weigh_more_and_system_senders_are_high() {
        let c = Facts {
            customer_parties: 2,
            ..new(2)
        };
        assert_eq!(sev(&c), Severity::High);
        let c = Facts {
            customer_parties: 2,
            reply: true,
            ..new(2)
        };
        assert_eq!(sev(&c), Severity::Medium);
        let s = Facts {
            customer_parties: 3,
            system_sender: true,
            new_parties: 0,
            ..new(3)
        };
        assert_eq!(sev(&s), Severity::Low, "a known group stays low");
        let s = Facts {
            customer_parties: 3,
            system_sender: true,
            reply: true,
            ..new(3)
        };
        let (sv, o, _, _) = decide(&s, &Thresholds::default());
        assert_eq!((sv, o), (Severity::High, Some(Outcome::CustomersSystem)));
    }

    #[test]
    fn overrides_change_the_table() {
        let mut t = Thresholds::default();
        t.severity.insert(Outcome::NewFew, Severity::High);
        t.high_parties = 3;
        assert_eq!(decide(&new(2), &t).0, Severity::High);
        assert_eq!(decide(&new(3), &t).1, Some(Outcome::NewMany));
        assert_eq!(Outcome::from_key("reply-few"), Some(Outcome::ReplyFew));
        assert_eq!(Outcome::from_key("nope"), None);
    }

    #[test]
    fn no_history_counts_as_new() {
        let f = Facts {
            has_history: false,
            ..new(6)
        };
        let (s, _, sig, reasons) = decide(&f, &Thresholds::default());
        assert_eq!(s, Severity::High);
        assert!(sig.contains(&Signal::NoHistory));
        assert!(reasons[0].contains("no history"), "{reasons:?}");
    }

    #[test]
    fn leaked_bcc_is_at_least_medium() {
        let f = Facts {
            bcc_leaked: true,
            new_parties: 0,
            ..new(2)
        };
        assert_eq!(sev(&f), Severity::Medium);
    }
}
