//! The exposure model: which recipients a message shows to which other parties.
//!
//! OWNER: exposure/headers helper. The types below are the agreed contract; the analysis
//! is to be implemented here (see ARCHITECTURE.md for the model's rules).

use crate::model::{Address, Envelope, Field};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Whether a Bcc header in the archive is itself a leak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArchiveKind {
    /// What recipients actually received (MTA journal, provider export): a Bcc header leaked.
    #[default]
    Transmitted,
    /// The sender's own "Sent" copies: a Bcc header there is normal.
    Sent,
}

/// The organisation's view: who is internal, which domains are consumer providers.
#[derive(Debug, Clone, Default)]
pub struct Org {
    /// Lowercase, IDNA-ASCII domains of the organisation (in addition to the sender's domain
    /// when `sender_domain_internal` is set).
    pub internal_domains: BTreeSet<String>,
    /// Consumer mail providers (gmail.com, qq.com...): every address there is its own party.
    pub consumer_domains: BTreeSet<String>,
    /// Treat the From domain of each message as internal (default true).
    pub sender_domain_internal: bool,
    pub archive_kind: ArchiveKind,
}

/// One external address that the message shows to at least one other external party.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExposedAddress {
    pub address: Address,
    /// Fields it was visible in (sorted, deduplicated).
    pub fields: Vec<Field>,
    /// Party key of the address itself (the address for consumer domains, else the domain).
    pub party: String,
    /// Number of distinct external parties other than its own that received the message.
    pub audience: usize,
    /// The address was listed as a member of a named group.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_group: bool,
}

/// The exposure analysis of one message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exposure {
    /// External addresses exposed to someone, in first-seen order, one entry per address.
    pub exposed: Vec<ExposedAddress>,
    /// Distinct external party keys among the visible recipients.
    pub visible_parties: usize,
    /// Distinct external party keys among all recipients (the possible audience), sorted.
    pub audience_parties: Vec<String>,
}

impl Exposure {
    pub fn exposes(&self) -> bool {
        !self.exposed.is_empty()
    }
}

impl Org {
    /// The shipped defaults: consumer providers from `rules/consumer-domains.txt`, the From
    /// domain internal, archive kind transmitted.
    pub fn with_defaults() -> Org {
        Org {
            internal_domains: BTreeSet::new(),
            consumer_domains: BTreeSet::new(),
            sender_domain_internal: true,
            archive_kind: ArchiveKind::Transmitted,
        }
    }
}

/// Computes which external recipients `env` shows to which other external parties.
pub fn analyse(env: &Envelope, org: &Org) -> Exposure {
    let _ = (env, org);
    Exposure::default()
}
