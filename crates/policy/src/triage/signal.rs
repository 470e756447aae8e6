//! What the triage observed about an exposing message ([`Signal`]), the profile it ran under
//! ([`Profile`]) and its verdict ([`Assessment`]).

use crate::severity::Severity;
use leakaudit_scanner::ArchiveKind;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How findings of the exposure rules are ranked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Outbound templates and gates: any message that shows two external parties to each
    /// other is a bug, high (critical by size) whatever the context.
    #[default]
    Gate,
    /// Audits of real archives: severity from the triage signals.
    Audit,
}

impl Profile {
    /// The archive kind a message is judged under. The gate judges what is about to be
    /// transmitted: a rendered file has no transit headers yet, so `auto` must not take it for
    /// a sender's copy (where a Bcc header is normal); it is read as transmitted. An explicit
    /// kind (`sent` for checking a Sent folder) is kept. The audit decides per message.
    pub fn archive_kind(self, kind: ArchiveKind) -> ArchiveKind {
        match (self, kind) {
            (Profile::Gate, ArchiveKind::Auto) => ArchiveKind::Transmitted,
            (_, k) => k,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Gate => "gate",
            Profile::Audit => "audit",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "gate" => Ok(Profile::Gate),
            "audit" => Ok(Profile::Audit),
            _ => Err(format!("unknown profile `{s}` (gate, audit)")),
        }
    }
}

/// One observation about an exposing message. The kebab-case code is stable (JSONL, SARIF
/// `properties.signals`, baselines of reports): rename never, add freely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Signal {
    /// 2-5 external parties can see each other.
    FewParties,
    /// 6 or more (below the mass threshold).
    ManyParties,
    /// 25 or more external parties can see each other.
    MassExposure,
    /// Same sender and subject sent as several exposing chunks within the window.
    Campaign,
    /// Bulk-mail headers: Precedence bulk/list/junk, List-Unsubscribe, List-Id,
    /// Auto-Submitted, a mass mailer.
    BulkMail,
    /// A no-reply-like sender (noreply, notifications, mailer-daemon...).
    SystemSender,
    /// The exposed parties have never been recipients together or written to each other.
    NewContacts,
    /// Some of the exposed parties share history, some do not.
    PartlyKnown,
    /// Every pair of exposed parties already shares history: an established group.
    KnownGroup,
    /// Re:/Fwd: subject, In-Reply-To or References.
    Reply,
    /// Every exposed address already appears in the quoted original: exposed upstream.
    QuotedOriginal,
    /// Some exposed addresses are the sender's own (same name, personal mailbox, aliases).
    OwnAddresses,
    /// Some exposed parties are at domains the archive's own senders use.
    OrgDomain,
    /// Account holders were exposed to each other.
    Customers,
    /// A transmitted copy (transit headers) still carries a Bcc header: the Bcc leaked.
    BccLeaked,
    /// No history pass: novelty unknown, counted as new.
    NoHistory,
}

impl Signal {
    pub const ALL: [Signal; 16] = [
        Signal::FewParties,
        Signal::ManyParties,
        Signal::MassExposure,
        Signal::Campaign,
        Signal::BulkMail,
        Signal::SystemSender,
        Signal::NewContacts,
        Signal::PartlyKnown,
        Signal::KnownGroup,
        Signal::Reply,
        Signal::QuotedOriginal,
        Signal::OwnAddresses,
        Signal::OrgDomain,
        Signal::Customers,
        Signal::BccLeaked,
        Signal::NoHistory,
    ];

    /// The stable code (same as the serde form).
    pub fn code(self) -> &'static str {
        match self {
            Signal::FewParties => "few-parties",
            Signal::ManyParties => "many-parties",
            Signal::MassExposure => "mass-exposure",
            Signal::Campaign => "campaign",
            Signal::BulkMail => "bulk-mail",
            Signal::SystemSender => "system-sender",
            Signal::NewContacts => "new-contacts",
            Signal::PartlyKnown => "partly-known",
            Signal::KnownGroup => "known-group",
            Signal::Reply => "reply",
            Signal::QuotedOriginal => "quoted-original",
            Signal::OwnAddresses => "own-addresses",
            Signal::OrgDomain => "org-domain",
            Signal::Customers => "customers",
            Signal::BccLeaked => "bcc-leaked",
            Signal::NoHistory => "no-history",
        }
    }

    /// What the signal means, for humans (the assessment's reasons add the numbers).
    pub fn reason(self) -> &'static str {
        match self {
            Signal::FewParties => "a few external parties can see each other",
            Signal::ManyParties => "many external parties can see each other",
            Signal::MassExposure => "a mass exposure: 25 or more external parties",
            Signal::Campaign => "one of several chunks of the same mailing",
            Signal::BulkMail => {
                "bulk-mail headers (Precedence, List-*, Auto-Submitted, mass mailer)"
            }
            Signal::SystemSender => "sent by a system (no-reply-like) sender",
            Signal::NewContacts => "the exposed parties share no history in this archive",
            Signal::PartlyKnown => "some exposed parties share history, some do not",
            Signal::KnownGroup => "an established group: every pair already corresponded",
            Signal::Reply => "a reply or forward in an existing thread",
            Signal::QuotedOriginal => "every exposed address is already on the quoted original",
            Signal::OwnAddresses => "some exposed addresses are the sender's own",
            Signal::OrgDomain => "some exposed parties are the organisation's other domains",
            Signal::Customers => "account holders were exposed to each other",
            Signal::BccLeaked => "a transmitted copy still carries its Bcc header",
            Signal::NoHistory => "no archive history: novelty unknown, counted as new",
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The triage's verdict on one exposing message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assessment {
    pub severity: Severity,
    /// Sorted, deduplicated.
    pub signals: Vec<Signal>,
    /// One sentence per decision, with the numbers ("8 chunks within 6 h"); the first one is
    /// the reason for the severity.
    pub reasons: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_serde_and_are_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for s in Signal::ALL {
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.code()));
            assert_eq!(serde_json::from_str::<Signal>(&json).unwrap(), s);
            assert!(seen.insert(s.code()), "duplicate code {s}");
            assert!(!s.reason().is_empty());
        }
    }

    #[test]
    fn profile_parses_and_defaults_to_gate() {
        assert_eq!(Profile::default(), Profile::Gate);
        assert_eq!("AUDIT".parse::<Profile>().unwrap(), Profile::Audit);
        assert!("journal".parse::<Profile>().is_err());
        assert_eq!(serde_json::to_string(&Profile::Audit).unwrap(), "\"audit\"");
    }
}
