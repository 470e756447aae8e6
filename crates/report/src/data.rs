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

/// Audience bins of the report's histogram: (min, max) other parties, inclusive.
pub(crate) const AUDIENCE_BINS: [(usize, Option<usize>); 8] = [
    (0, Some(1)),
    (2, Some(4)),
    (5, Some(9)),
    (10, Some(49)),
    (50, Some(99)),
    (100, Some(499)),
    (500, Some(999)),
    (1000, None),
];

/// Rows of the "most exposed addresses" table.
pub const MOST_EXPOSED: usize = 10;

/// What the report needs of the affected-user list, gathered row by row: counts, the
/// audience histogram and the most exposed addresses. The list itself is written to its own
/// file while it streams; a list of 1,000,000 rows is never held for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AffectedTotals {
    /// Rows (exposed addresses).
    pub addresses: usize,
    /// Rows without a matching account.
    pub without_account: usize,
    /// Distinct matched account ids (bounded by the store, not by the archive).
    pub accounts: std::collections::BTreeSet<String>,
    /// Addresses per [`AUDIENCE_BINS`] bin.
    pub audience_bins: [usize; AUDIENCE_BINS.len()],
    /// The [`MOST_EXPOSED`] rows with the largest audience (then messages, then address),
    /// best first.
    pub most_exposed: Vec<AffectedUser>,
}

impl Default for AffectedTotals {
    fn default() -> AffectedTotals {
        AffectedTotals {
            addresses: 0,
            without_account: 0,
            accounts: Default::default(),
            audience_bins: [0; AUDIENCE_BINS.len()],
            most_exposed: Vec::new(),
        }
    }
}

impl AffectedTotals {
    /// Adds one row of the list.
    pub fn add(&mut self, u: AffectedUser) {
        self.addresses += 1;
        if u.account_ids.is_empty() {
            self.without_account += 1;
        }
        for id in &u.account_ids {
            if !self.accounts.contains(id) {
                self.accounts.insert(id.clone());
            }
        }
        if let Some(bin) = AUDIENCE_BINS
            .iter()
            .position(|&(min, max)| u.audience >= min && max.is_none_or(|mx| u.audience <= mx))
        {
            self.audience_bins[bin] += 1;
        }
        // Keep the best MOST_EXPOSED, sorted: a row enters only if it beats the last.
        let full = self.most_exposed.len() >= MOST_EXPOSED;
        if full
            && self
                .most_exposed
                .last()
                .is_some_and(|last| exposure_order(last, &u).is_le())
        {
            return;
        }
        let at = self
            .most_exposed
            .partition_point(|a| exposure_order(a, &u).is_le());
        self.most_exposed.insert(at, u);
        self.most_exposed.truncate(MOST_EXPOSED);
    }
}

/// Most exposed first: larger audience, then more messages, then the address.
fn exposure_order(a: &AffectedUser, b: &AffectedUser) -> std::cmp::Ordering {
    (b.audience, b.messages)
        .cmp(&(a.audience, a.messages))
        .then_with(|| a.address.cmp(&b.address))
}

impl FromIterator<AffectedUser> for AffectedTotals {
    fn from_iter<I: IntoIterator<Item = AffectedUser>>(rows: I) -> AffectedTotals {
        let mut t = AffectedTotals::default();
        for u in rows {
            t.add(u);
        }
        t
    }
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
    /// After `--apply`: notices to addresses without an account staged, and failed.
    pub notices_done: Option<usize>,
    pub notices_failed: Option<usize>,
    /// The account store had failed-login data for an exposed account: the breach record
    /// lists monitoring of failed logins only then (a measure must be backed by data).
    pub failed_login_data: bool,
    /// A re-plan of an incident: what its earlier plans did already.
    pub delta: Option<PlanDelta>,
}

/// A re-plan of an incident (accounts or archives changed after its first plan): the
/// incident's earlier plans and, by action kind (`force-password-reset`, `human-review`,
/// `notify`, `notify-only`), how many of this plan's actions they did already: these are
/// recorded done and not repeated, the rest is what this plan adds.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PlanDelta {
    pub incident: String,
    pub earlier_plans: Vec<String>,
    pub covered: std::collections::BTreeMap<String, usize>,
}

impl PlanDelta {
    /// Of `planned` actions of `kind`, those this plan adds.
    pub fn added(&self, kind: &str, planned: usize) -> usize {
        planned.saturating_sub(self.covered.get(kind).copied().unwrap_or(0))
    }
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
    /// What the report needs of the affected-user list (the list itself is its own file).
    pub affected: AffectedTotals,
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
/// affected list does). Keeps the order, in place (a record can hold 1,000,000 exposed
/// addresses: never copied); returns the number dropped.
pub fn dedup_messages(messages: &mut Vec<MessageRecord>) -> usize {
    let before = messages.len();
    let mut seen = std::collections::HashSet::new();
    messages.retain(|m| match &m.message_id {
        Some(id) if !id.is_empty() => seen.insert(id.clone()),
        _ => true,
    });
    before - messages.len()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn user(i: usize) -> AffectedUser {
        // Audiences and message counts with many ties, addresses in no particular order.
        AffectedUser {
            address: format!("u{}@x.example", (i * 7919) % 1000),
            account_ids: if i.is_multiple_of(3) {
                vec![format!("A{}", i % 50)]
            } else {
                Vec::new()
            },
            messages: 1 + i % 4,
            audience: (i * 31) % 1200,
            first: None,
            last: None,
        }
    }

    #[test]
    fn totals_gathered_row_by_row_equal_those_of_the_whole_list() {
        let all: Vec<AffectedUser> = (0..1000).map(user).collect();
        let t: AffectedTotals = all.iter().cloned().collect();
        let mut sorted = all.clone();
        sorted.sort_by(exposure_order);
        assert_eq!(t.most_exposed, sorted[..MOST_EXPOSED].to_vec());
        assert_eq!(t.addresses, 1000);
        let with: Vec<&AffectedUser> = all.iter().filter(|u| !u.account_ids.is_empty()).collect();
        assert_eq!(t.without_account, 1000 - with.len());
        let ids: std::collections::BTreeSet<&str> = with
            .iter()
            .flat_map(|u| u.account_ids.iter().map(String::as_str))
            .collect();
        assert_eq!(t.accounts.len(), ids.len());
        for (bin, &(min, max)) in AUDIENCE_BINS.iter().enumerate() {
            let n = all
                .iter()
                .filter(|u| u.audience >= min && max.is_none_or(|m| u.audience <= m))
                .count();
            assert_eq!(t.audience_bins[bin], n, "bin {min}..{max:?}");
        }
        assert_eq!(t.audience_bins.iter().sum::<usize>(), 1000);
    }
}
