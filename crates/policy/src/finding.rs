//! Findings: what the policy engine yields for a message. The contract read by the CLI
//! renderers, the remediation crate and the report.

use crate::triage::{Profile, Signal};
use leakaudit_scanner::{ExposedAddress, Location};
use serde::{Deserialize, Serialize};

pub use crate::severity::Severity;

/// One rule firing on one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable rule id, e.g. `recipient-exposure`.
    pub rule_id: String,
    pub severity: Severity,
    /// One line for humans.
    pub message: String,
    /// How to fix it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hint: String,
    pub location: Location,
    /// 1-based line of the evidence, when known (content rules): in the file for a
    /// one-message file, in the message (its first header line, after the `From ` line, is 1) inside an mbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Seconds since the epoch, UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Redacted evidence: never a secret in clear.
    pub evidence: String,
    /// Hex SHA-256 of rule id, Message-ID (or content hash) and evidence; stable across
    /// archive reformatting. Baselines match on it.
    pub fingerprint: String,
    /// For exposure rules: the addresses exposed and to how many parties.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exposed: Vec<ExposedAddress>,
    /// For exposure rules: the external party keys that received the message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audience_parties: Vec<leakaudit_scanner::PartyKey>,
    /// For exposure rules: what the triage observed ("why this severity").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signals: Vec<Signal>,
    /// For exposure rules: the triage's reasons, the first one deciding the severity.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// The profile the message was evaluated under (`None`: [`crate::Engine::evaluate`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
}
