//! The report's input: what the incident command collected. Plain data, filled by the CLI from
//! the scanner, the policy engine and the remediation crate.

use leakaudit_policy::{Finding, Severity};
use leakaudit_scanner::{ExposedAddress, Exposure, Location, Message};
use std::collections::BTreeMap;

/// Totals of the scan stage.
#[derive(Debug, Clone, Default)]
pub struct ScanTotals {
    /// Messages read and audited.
    pub messages: u64,
    /// Bytes read (decompressed).
    pub bytes: u64,
    /// Messages by container format (`mbox`, `maildir`, `eml`).
    pub by_format: BTreeMap<String, u64>,
    /// Problems reported while reading (warnings and errors).
    pub problems: u64,
    /// Problems of level error (messages or files that could not be audited).
    pub errors: u64,
}

/// One rule firing, as the report needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingRef {
    pub rule_id: String,
    pub severity: Severity,
}

/// One message that has at least one finding or exposes at least one address.
#[derive(Debug, Clone)]
pub struct MessageRecord {
    pub location: Location,
    pub message_id: Option<String>,
    /// Seconds since the epoch, UTC.
    pub date: Option<i64>,
    /// Canonical address of the first From mailbox.
    pub from: Option<String>,
    /// Decoded subject (attacker-controlled text: always escaped on output).
    pub subject: Option<String>,
    /// External addresses this message showed to other external parties.
    pub exposed: Vec<ExposedAddress>,
    /// Distinct external parties that received the message.
    pub audience_parties: usize,
    pub findings: Vec<FindingRef>,
}

impl MessageRecord {
    /// The audience of the message: the largest number of OTHER external parties (a consumer
    /// mailbox, or one business domain) that saw one of its exposed addresses, the address's
    /// own party not counted (the scanner's `ExposedAddress::audience`). A message to 167
    /// parties has audience 166. The one definition every output uses: the top-messages
    /// table, `top_messages[].audience` in summary.json, `max_audience` in campaigns.csv and
    /// the campaigns table, and (per address) the audience histogram.
    pub fn audience(&self) -> usize {
        self.exposed.iter().map(|e| e.audience).max().unwrap_or(0)
    }

    /// Builds the record of one message from its evaluation. Returns `None` when the message
    /// neither exposes anyone nor has a finding (nothing to report).
    pub fn from_evaluation(
        msg: &Message<'_>,
        exposure: &Exposure,
        findings: &[Finding],
    ) -> Option<MessageRecord> {
        let mut r = Self::without_exposed(msg, exposure, findings)?;
        r.exposed = exposure.exposed.clone();
        Some(r)
    }

    /// [`Self::from_evaluation`] with `exposed` left empty, for a caller that moves the
    /// exposure's list in later instead of holding a copy while the scan runs.
    pub fn without_exposed(
        msg: &Message<'_>,
        exposure: &Exposure,
        findings: &[Finding],
    ) -> Option<MessageRecord> {
        if findings.is_empty() && !exposure.exposes() {
            return None;
        }
        let env = &msg.envelope;
        Some(MessageRecord {
            location: msg.location.clone(),
            message_id: env.message_id.clone(),
            date: env.date,
            from: env.from.first().map(|m| m.address.as_str().to_owned()),
            subject: env.subject.clone(),
            exposed: Vec::new(),
            audience_parties: exposure.audience_parties.len(),
            findings: findings
                .iter()
                .map(|f| FindingRef {
                    rule_id: f.rule_id.clone(),
                    severity: f.severity,
                })
                .collect(),
        })
    }

    /// Replaces the findings (their severities after the triage ranked them).
    pub fn set_findings(&mut self, findings: &[Finding]) {
        self.findings = findings
            .iter()
            .map(|f| FindingRef {
                rule_id: f.rule_id.clone(),
                severity: f.severity,
            })
            .collect();
    }

    /// The message exposes at least one address.
    pub fn exposes(&self) -> bool {
        !self.exposed.is_empty()
    }

    /// The highest severity among its findings.
    pub fn max_severity(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }
}

/// One row of the affected-user list (one per exposed address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AffectedUser {
    /// Canonical address.
    pub address: String,
    /// The matching accounts (empty when the store has none).
    pub account_ids: Vec<String>,
    /// Messages that exposed it.
    pub messages: usize,
    /// Distinct other parties who saw it.
    pub audience: usize,
    pub first: Option<i64>,
    pub last: Option<i64>,
}

/// Totals of the remediation plan.
#[derive(Debug, Clone, Default)]
pub struct PlanTotals {
    pub resets: usize,
    pub reviews: usize,
    pub notifications: usize,
    /// Notices to exposed addresses without an account (no token, no account change).
    pub notify_only: usize,
    /// The plan was applied (`--apply`), not only written.
    pub applied: bool,
    /// Where the plan file is (relative to the output folder when inside it).
    pub file: Option<String>,
    /// The plan's content hash.
    pub hash: Option<String>,
    /// After `--apply`: actions done and failed.
    pub done: Option<usize>,
    pub failed: Option<usize>,
    /// The account store had failed-login data for an exposed account: the breach record
    /// lists monitoring of failed logins only then (a measure must be backed by data).
    pub failed_login_data: bool,
}

/// Everything the report is made of.
#[derive(Debug, Clone, Default)]
pub struct IncidentData {
    pub tool_version: String,
    /// The archives as given on the command line.
    pub inputs: Vec<String>,
    /// The account store used (path as given).
    pub accounts_store: Option<String>,
    /// When the report was made, seconds since the epoch (UTC).
    pub generated_at: i64,
    /// When the incident was detected (defaults to `generated_at`); the 72-hour Art. 33
    /// deadline runs from here.
    pub detected_at: i64,
    pub scan: ScanTotals,
    /// The Date of every scanned message that had one (the timeline's background).
    pub message_dates: Vec<i64>,
    /// Every message with a finding or an exposure, in archive order.
    pub messages: Vec<MessageRecord>,
    /// The affected-user list.
    pub affected: Vec<AffectedUser>,
    pub plan: PlanTotals,
    /// How the exposures were ranked and what the threshold left out of the response.
    pub triage: TriageTotals,
}

/// The ranking behind the affected list and the plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TriageTotals {
    /// `gate` or `audit`.
    pub profile: String,
    /// Affected users and the plan take exposures at or above this severity.
    pub min_severity: String,
    /// Exposed addresses every finding of which ranked below `min_severity`: in the facts
    /// (findings, messages), not in the affected list or the plan.
    pub addresses_below_min_severity: usize,
    /// Domains the archive's own senders use that are not configured as internal (likely the
    /// organisation's other domains); exposures to them were ranked as such.
    #[serde(default)]
    pub suggested_internal_domains: Vec<String>,
}

/// Drops later copies of the same message (same Message-ID; messages without one are never
/// merged): an archive scanned together with a second export of it, or a journal beside a
/// Sent folder, holds each mail twice, and the report counts messages, not copies (as the
/// affected list does). Returns the kept records, in order, and the number dropped.
pub fn dedup_messages(messages: &[MessageRecord]) -> (Vec<MessageRecord>, usize) {
    let mut seen = std::collections::HashSet::new();
    let mut kept = Vec::with_capacity(messages.len());
    for m in messages {
        match &m.message_id {
            Some(id) if !id.is_empty() => {
                if seen.insert(id.as_str()) {
                    kept.push(m.clone());
                }
            }
            _ => kept.push(m.clone()),
        }
    }
    let dropped = messages.len() - kept.len();
    (kept, dropped)
}

impl From<&leakaudit_scanner::scan::ScanStats> for ScanTotals {
    fn from(s: &leakaudit_scanner::scan::ScanStats) -> ScanTotals {
        ScanTotals {
            messages: s.messages,
            bytes: s.bytes,
            by_format: s
                .by_format
                .iter()
                .map(|(f, n)| (f.as_str().to_string(), *n))
                .collect(),
            problems: s.warnings + s.errors,
            errors: s.errors,
        }
    }
}

impl From<&leakaudit_remediation::AffectedRow> for AffectedUser {
    fn from(r: &leakaudit_remediation::AffectedRow) -> AffectedUser {
        let secs = |t: &Option<String>| {
            t.as_deref()
                .and_then(leakaudit_scanner::time::parse_rfc3339)
        };
        AffectedUser {
            address: r.address.clone(),
            account_ids: r.account_ids.clone(),
            messages: r.messages,
            audience: r.audience,
            first: secs(&r.first_exposed),
            last: secs(&r.last_exposed),
        }
    }
}

impl From<&leakaudit_remediation::Plan> for PlanTotals {
    /// The totals of a plan written as `plan.json` beside the report, not (yet) applied.
    fn from(plan: &leakaudit_remediation::Plan) -> PlanTotals {
        PlanTotals {
            resets: plan.totals.force_password_reset,
            reviews: plan.totals.human_review,
            notifications: plan.totals.notify,
            notify_only: plan.totals.notify_only,
            applied: false,
            file: Some("plan.json".into()),
            hash: Some(plan.content_hash.clone()),
            done: None,
            failed: None,
            failed_login_data: false,
        }
    }
}
