//! The incident summary: every number of the report, computed once. `summary.json` is this
//! struct serialised; the HTML and the breach record are rendered from it. The JSON Schema is
//! `crates/report/schema/summary.schema.json`; bump [`SUMMARY_VERSION`] on any incompatible
//! change (removed or renamed field, changed meaning); added fields keep the version.

use crate::campaign::{self, CampaignOptions};
use crate::data::{IncidentData, AUDIENCE_BINS};
use crate::pseudo::Pseudonymiser;
use crate::text::rfc3339;
use leakaudit_policy::Severity;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The `schema` field of every summary.
pub const SUMMARY_SCHEMA_ID: &str = "leakaudit-incident-summary";
/// The `version` field: the schema's major version.
/// 2: `campaigns` lists mailings of two or more chunks, largest first; single messages are
/// folded into `singles`; `headline.sentence` names the incident.
pub const SUMMARY_VERSION: u32 = 2;
/// Hours between detection and the GDPR Art. 33 notification deadline.
pub const ART33_HOURS: i64 = 72;

/// See the JSON Schema for the meaning of every field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub schema: String,
    pub version: u32,
    pub tool_version: String,
    pub generated_at: String,
    pub detected_at: String,
    /// `detected_at` + 72 hours.
    pub notification_deadline: String,
    pub inputs: Vec<String>,
    pub accounts_store: Option<String>,
    /// Addresses in this summary and its report are pseudonymised.
    pub pseudonymised: bool,
    pub headline: Headline,
    pub scan: ScanSection,
    pub first_exposure: Option<String>,
    pub last_exposure: Option<String>,
    pub data_subjects: DataSubjects,
    pub findings_by_rule: Vec<RuleRow>,
    pub findings_by_severity: BTreeMap<String, usize>,
    pub campaign_options: CampaignOptions,
    /// Mailings of two or more chunks, in [`campaign::rank`] order: the incident first.
    pub campaigns: Vec<CampaignRow>,
    /// The exposing messages that are not part of a campaign, folded into one line.
    #[serde(default)]
    pub singles: campaign::Singles,
    pub top_messages: Vec<MessageRow>,
    pub audience_histogram: Vec<HistogramBin>,
    pub timeline: Timeline,
    pub plan: PlanSection,
    pub triage: crate::data::TriageTotals,
}

/// The headline numbers (the report's cards carry the same names in `data-metric`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Headline {
    /// One sentence that names the incident: the first campaign's subject, chunks, addresses
    /// and send times, then what else exposed anyone ([`headline_sentence`]).
    #[serde(default)]
    pub sentence: String,
    pub messages_scanned: u64,
    pub exposing_messages: usize,
    /// Mailings of two or more chunks.
    pub campaigns: usize,
    /// Exposing messages that are not part of a campaign.
    #[serde(default)]
    pub single_messages: usize,
    pub addresses_exposed: usize,
    pub accounts_affected: usize,
    pub exposed_without_account: usize,
    /// (address, message) pairs: how many times an address was shown to others.
    pub address_exposures: usize,
    pub resets_planned: usize,
    pub reviews_planned: usize,
    pub notifications_planned: usize,
    /// Notices to exposed addresses that have no account (data subjects all the same).
    pub notices_without_account_planned: usize,
    pub findings: usize,
    pub messages_with_findings: usize,
    /// Further copies of reported messages (same Message-ID) found in the archives and
    /// counted once.
    #[serde(default)]
    pub duplicate_copies: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanSection {
    pub messages: u64,
    pub bytes: u64,
    pub by_format: BTreeMap<String, u64>,
    pub problems: u64,
    pub errors: u64,
}

/// Who the exposed addresses belong to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataSubjects {
    /// Addresses at consumer mail providers: individual people.
    pub consumer_addresses: usize,
    /// Addresses at other (business) domains.
    pub business_addresses: usize,
    /// Distinct business domains.
    pub business_domains: usize,
    /// Consumer providers with the most exposed addresses (at most 10).
    pub top_consumer_domains: Vec<DomainCount>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainCount {
    pub domain: String,
    pub addresses: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleRow {
    pub rule_id: String,
    pub max_severity: Severity,
    pub findings: usize,
    pub messages: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignRow {
    pub id: String,
    /// The sending mailbox (the organisation's own; pseudonymised when it is also an exposed
    /// address and the report is pseudonymised).
    pub sender: String,
    pub subjects: Vec<String>,
    pub first: Option<String>,
    pub last: Option<String>,
    pub chunks: usize,
    pub addresses_exposed: usize,
    pub address_exposures: usize,
    pub max_audience: usize,
    pub max_severity: Option<Severity>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRow {
    /// The campaign it belongs to (none for a message with content findings only).
    pub campaign: Option<String>,
    pub location: String,
    pub message_id: Option<String>,
    pub date: Option<String>,
    pub sender: String,
    pub subject: String,
    pub addresses_exposed: usize,
    /// `MessageRecord::audience`: other parties who saw an exposed address (parties - 1).
    pub audience: usize,
    /// Distinct external parties that received the message.
    pub audience_parties: usize,
    pub max_severity: Option<Severity>,
    pub rules: Vec<String>,
}

/// Exposed addresses by audience size (distinct other parties that saw the address).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistogramBin {
    pub label: String,
    pub min: usize,
    /// Inclusive; `None` for the open last bin.
    pub max: Option<usize>,
    pub addresses: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline {
    pub bin_seconds: i64,
    pub bins: Vec<TimeBin>,
    /// Exposing messages without a usable Date (not on the chart).
    pub undated_exposing_messages: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeBin {
    pub start: String,
    /// Seconds since the epoch (for plotting).
    pub start_epoch: i64,
    pub exposing_messages: usize,
    /// All scanned messages dated in this bin.
    pub messages: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanSection {
    pub applied: bool,
    pub file: Option<String>,
    pub hash: Option<String>,
    pub resets: usize,
    pub reviews: usize,
    pub notifications: usize,
    pub done: Option<usize>,
    pub failed: Option<usize>,
    /// Notices to exposed addresses without an account: planned, and after `--apply`
    /// staged (done) and failed.
    #[serde(default)]
    pub notices: usize,
    #[serde(default)]
    pub notices_done: Option<usize>,
    #[serde(default)]
    pub notices_failed: Option<usize>,
    /// Whether the store had failed-login counts for an exposed account.
    #[serde(default)]
    pub failed_login_data: bool,
    /// A re-plan of an incident: what its earlier plans did (not repeated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<crate::data::PlanDelta>,
}

impl PlanSection {
    /// What this plan adds to its incident's earlier plans, one phrase (`None` for a first
    /// plan): "3 of its 205 actions and 1 of its 202 notices were done by earlier plan(s)
    /// ...; it adds 1 password reset(s), ...".
    pub fn delta_sentence(&self) -> Option<String> {
        let d = self.delta.as_ref()?;
        let covered_actions: usize = d
            .covered
            .iter()
            .filter(|(k, _)| k.as_str() != "notify-only")
            .map(|(_, n)| n)
            .sum();
        let covered_notices = d.covered.get("notify-only").copied().unwrap_or(0);
        Some(format!(
            "This plan re-plans incident {} after its inputs changed: earlier plan(s) {} did {} of its {} account actions and {} of its {} notices already, which are recorded and not repeated. It adds {} password reset(s), {} review(s), {} notification(s) and {} notice(s).",
            d.incident,
            d.earlier_plans.join(", "),
            covered_actions,
            self.resets + self.reviews + self.notifications,
            covered_notices,
            self.notices,
            d.added("force-password-reset", self.resets),
            d.added("human-review", self.reviews),
            d.added("notify", self.notifications),
            d.added("notify-only", self.notices),
        ))
    }
}

/// The sentence that leads the report: the first campaign (the largest mailing: the incident)
/// by subject, sender, chunks, addresses and send times, then what else exposed anyone, the
/// single messages folded. `time` shows an RFC 3339 time (as is in summary.json, readable in
/// the page). Plain text: the caller escapes it.
pub fn headline_sentence(
    campaigns: &[CampaignRow],
    singles: &campaign::Singles,
    time: impl Fn(&str) -> String,
) -> String {
    use crate::text::thousands;
    let plural = |n: usize, one: &str, many: &str| {
        format!(
            "{} {}",
            thousands(n as u64),
            if n == 1 { one } else { many }
        )
    };
    let rest_singles = || {
        format!(
            "{} exposing {}",
            plural(singles.messages, "single message", "single messages"),
            plural(singles.addresses_exposed, "address", "addresses")
        )
    };
    let Some(c) = campaigns.first() else {
        if singles.messages == 0 {
            return "No message exposed anyone.".to_owned();
        }
        return format!(
            "{}; no mass mailing (two or more chunks of one mailing) was found.",
            rest_singles()
        );
    };
    let subject = c.subjects.first().map(String::as_str).unwrap_or("");
    let variants = match c.subjects.len() {
        0 | 1 => String::new(),
        n => format!(
            " (and {} other subject{})",
            n - 1,
            if n == 2 { "" } else { "s" }
        ),
    };
    let when = match (&c.first, &c.last) {
        (Some(f), Some(l)) if f == l => format!(", sent {}", time(f)),
        (Some(f), Some(l)) => format!(", sent {} to {}", time(f), time(l)),
        _ => ", send time unknown".to_owned(),
    };
    let mut out = format!(
        "Mass mailing \"{subject}\"{variants} from {} exposed {} in {}{when}.",
        c.sender,
        plural(c.addresses_exposed, "address", "addresses"),
        plural(c.chunks, "chunk", "chunks"),
    );
    let others = campaigns.len() - 1;
    match (others, singles.messages) {
        (0, 0) => {}
        (0, _) => out.push_str(&format!(" Besides: {}.", rest_singles())),
        (_, 0) => out.push_str(&format!(
            " Besides: {}.",
            plural(others, "other campaign", "other campaigns")
        )),
        (_, _) => out.push_str(&format!(
            " Besides: {} and {}.",
            plural(others, "other campaign", "other campaigns"),
            rest_singles()
        )),
    }
    out
}

/// Bin widths the timeline may use, smallest first.
const TIME_BINS: [i64; 13] = [
    60,
    300,
    600,
    900,
    1800,
    3600,
    3 * 3600,
    6 * 3600,
    12 * 3600,
    86400,
    7 * 86400,
    30 * 86400,
    365 * 86400,
];

impl Summary {
    /// Computes every number from the collected data.
    pub fn build(data: &IncidentData, opts: &CampaignOptions, pseudo: &Pseudonymiser) -> Summary {
        let campaigns = campaign::group(&data.messages, opts);
        Summary::from_campaigns(data, &campaigns, opts, pseudo)
    }

    /// Computes every number, with the campaigns already grouped (by [`campaign::group`] on
    /// `data.messages` with `opts`).
    pub fn from_campaigns(
        data: &IncidentData,
        campaigns: &[campaign::Campaign],
        opts: &CampaignOptions,
        pseudo: &Pseudonymiser,
    ) -> Summary {
        let mut campaign_of: BTreeMap<usize, &str> = BTreeMap::new();
        let singles = campaign::singles(campaigns, &data.messages);
        let campaigns: Vec<&campaign::Campaign> =
            campaigns.iter().filter(|c| c.is_campaign()).collect();
        for c in &campaigns {
            for &i in &c.messages {
                campaign_of.insert(i, &c.id);
            }
        }
        let exposing: Vec<usize> = (0..data.messages.len())
            .filter(|&i| data.messages[i].exposes())
            .collect();
        // Only senders are looked up: a set of every exposed address would be ~50 MB at
        // 1,000,000.
        let senders: BTreeSet<&str> = data
            .messages
            .iter()
            .filter_map(|m| m.from.as_deref())
            .collect();
        let exposed_set: BTreeSet<&str> = data
            .messages
            .iter()
            .flat_map(|m| m.exposed.iter().map(|e| e.address.as_str()))
            .filter(|a| senders.contains(a))
            .collect();
        // Senders are the organisation's own mailboxes and shown as they are, unless the
        // sender is itself a data subject of this incident.
        let sender = |s: &str| -> String {
            if pseudo.active() && exposed_set.contains(s) {
                pseudo.show(s)
            } else {
                s.to_owned()
            }
        };

        let mut headline = Headline {
            sentence: String::new(),
            messages_scanned: data.scan.messages,
            exposing_messages: exposing.len(),
            campaigns: campaigns.len(),
            single_messages: singles.messages,
            addresses_exposed: data.affected.addresses,
            accounts_affected: data.affected.accounts.len(),
            exposed_without_account: data.affected.without_account,
            address_exposures: exposing
                .iter()
                .map(|&i| data.messages[i].exposed.len())
                .sum(),
            resets_planned: data.plan.resets,
            reviews_planned: data.plan.reviews,
            notifications_planned: data.plan.notifications,
            notices_without_account_planned: data.plan.notify_only,
            findings: data.messages.iter().map(|m| m.findings.len()).sum(),
            messages_with_findings: data
                .messages
                .iter()
                .filter(|m| !m.findings.is_empty())
                .count(),
            duplicate_copies: 0,
        };

        // Findings per rule and per severity.
        let mut rules: BTreeMap<&str, RuleRow> = BTreeMap::new();
        let mut by_severity: BTreeMap<String, usize> = BTreeMap::new();
        for m in &data.messages {
            let mut seen: BTreeSet<&str> = BTreeSet::new();
            for f in &m.findings {
                let row = rules.entry(&f.rule_id).or_insert_with(|| RuleRow {
                    rule_id: f.rule_id.clone(),
                    max_severity: f.severity,
                    findings: 0,
                    messages: 0,
                });
                row.findings += 1;
                row.max_severity = row.max_severity.max(f.severity);
                if seen.insert(&f.rule_id) {
                    row.messages += 1;
                }
                *by_severity
                    .entry(f.severity.as_str().to_owned())
                    .or_default() += 1;
            }
        }
        let mut findings_by_rule: Vec<RuleRow> = rules.into_values().collect();
        findings_by_rule.sort_by(|a, b| {
            (b.max_severity, b.findings, &a.rule_id).cmp(&(a.max_severity, a.findings, &b.rule_id))
        });

        // Data subjects by kind of domain: the exposure model makes a consumer address its own
        // party, so `party == address` marks an individual mailbox.
        let mut consumer: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        let mut business: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for m in &data.messages {
            for e in &m.exposed {
                let a = e.address.as_str();
                let map = if e.party == a {
                    &mut consumer
                } else {
                    &mut business
                };
                map.entry(e.address.domain()).or_default().insert(a);
            }
        }
        let mut top_consumer_domains: Vec<DomainCount> = consumer
            .iter()
            .map(|(d, s)| DomainCount {
                domain: (*d).to_owned(),
                addresses: s.len(),
            })
            .collect();
        top_consumer_domains
            .sort_by(|a, b| (b.addresses, &a.domain).cmp(&(a.addresses, &b.domain)));
        top_consumer_domains.truncate(10);
        let data_subjects = DataSubjects {
            consumer_addresses: consumer.values().map(BTreeSet::len).sum(),
            business_addresses: business.values().map(BTreeSet::len).sum(),
            business_domains: business.len(),
            top_consumer_domains,
        };

        let campaign_rows: Vec<CampaignRow> = campaigns
            .iter()
            .map(|c| CampaignRow {
                id: c.id.clone(),
                sender: sender(&c.sender),
                subjects: c.subjects.clone(),
                first: c.first.map(rfc3339),
                last: c.last.map(rfc3339),
                chunks: c.chunks(),
                addresses_exposed: c.addresses_exposed,
                address_exposures: c.address_exposures,
                max_audience: c.max_audience,
                max_severity: c.max_severity,
            })
            .collect();

        // Top messages: most addresses exposed first, then most severe, then earliest.
        let mut order: Vec<usize> = (0..data.messages.len()).collect();
        order.sort_by(|&a, &b| {
            let (ma, mb) = (&data.messages[a], &data.messages[b]);
            (
                mb.exposed.len(),
                mb.max_severity(),
                ma.date.is_none(),
                ma.date,
                a,
            )
                .cmp(&(
                    ma.exposed.len(),
                    ma.max_severity(),
                    mb.date.is_none(),
                    mb.date,
                    b,
                ))
        });
        let top_messages = order
            .into_iter()
            .take(15)
            .map(|i| {
                let m = &data.messages[i];
                let mut rules: Vec<String> = m.findings.iter().map(|f| f.rule_id.clone()).collect();
                rules.sort();
                rules.dedup();
                MessageRow {
                    campaign: campaign_of.get(&i).map(|s| (*s).to_owned()),
                    location: m.location.to_string(),
                    message_id: m.message_id.clone(),
                    date: m.date.map(rfc3339),
                    sender: sender(m.from.as_deref().unwrap_or("")),
                    subject: m.subject.clone().unwrap_or_default(),
                    addresses_exposed: m.exposed.len(),
                    audience: m.audience(),
                    audience_parties: m.audience_parties,
                    max_severity: m.max_severity(),
                    rules,
                }
            })
            .collect();

        let audience_histogram = AUDIENCE_BINS
            .iter()
            .zip(data.affected.audience_bins)
            .map(|(&(min, max), addresses)| HistogramBin {
                label: match max {
                    Some(1) => "1".to_owned(),
                    Some(mx) => format!("{min}–{mx}"),
                    None => format!("{min}+"),
                },
                min,
                max,
                addresses,
            })
            .collect();

        let exposing_dates: Vec<i64> = exposing
            .iter()
            .filter_map(|&i| data.messages[i].date)
            .collect();
        let timeline = timeline(&exposing_dates, &data.message_dates, exposing.len());

        headline.sentence = headline_sentence(&campaign_rows, &singles, |t| t.to_owned());
        Summary {
            schema: SUMMARY_SCHEMA_ID.to_owned(),
            version: SUMMARY_VERSION,
            tool_version: data.tool_version.clone(),
            generated_at: rfc3339(data.generated_at),
            detected_at: rfc3339(data.detected_at),
            notification_deadline: rfc3339(data.detected_at + ART33_HOURS * 3600),
            inputs: data.inputs.clone(),
            accounts_store: data.accounts_store.clone(),
            pseudonymised: pseudo.active(),
            headline,
            scan: ScanSection {
                messages: data.scan.messages,
                bytes: data.scan.bytes,
                by_format: data.scan.by_format.clone(),
                problems: data.scan.problems,
                errors: data.scan.errors,
            },
            first_exposure: exposing_dates.iter().min().map(|&d| rfc3339(d)),
            last_exposure: exposing_dates.iter().max().map(|&d| rfc3339(d)),
            data_subjects,
            findings_by_rule,
            findings_by_severity: by_severity,
            campaign_options: *opts,
            campaigns: campaign_rows,
            singles,
            top_messages,
            audience_histogram,
            timeline,
            plan: PlanSection {
                applied: data.plan.applied,
                file: data.plan.file.clone(),
                hash: data.plan.hash.clone(),
                resets: data.plan.resets,
                reviews: data.plan.reviews,
                notifications: data.plan.notifications,
                done: data.plan.done,
                failed: data.plan.failed,
                notices: data.plan.notify_only,
                notices_done: data.plan.notices_done,
                notices_failed: data.plan.notices_failed,
                failed_login_data: data.plan.failed_login_data,
                delta: data.plan.delta.clone(),
            },
            triage: data.triage.clone(),
        }
    }
}

/// Bins the exposing messages over their own span (padded by one bin on each side) with a
/// width giving at most 48 bins; all scanned messages in the same bins give the background.
fn timeline(exposing: &[i64], all: &[i64], exposing_total: usize) -> Timeline {
    let (Some(&lo), Some(&hi)) = (exposing.iter().min(), exposing.iter().max()) else {
        return Timeline {
            undated_exposing_messages: exposing_total,
            ..Timeline::default()
        };
    };
    let mut width = TIME_BINS
        .into_iter()
        .find(|w| (hi - lo) / w < 46)
        .unwrap_or(365 * 86400);
    // Absurd Date headers (year 1970 next to 2099) must not make thousands of bins.
    while (hi - lo) / width >= 46 {
        width = width.saturating_mul(2);
    }
    let start = lo.div_euclid(width) * width - width;
    let end = hi.div_euclid(width) * width + width;
    let n = ((end - start) / width + 1) as usize;
    let mut bins: Vec<TimeBin> = (0..n)
        .map(|k| {
            let s = start + k as i64 * width;
            TimeBin {
                start: rfc3339(s),
                start_epoch: s,
                exposing_messages: 0,
                messages: 0,
            }
        })
        .collect();
    let slot = |d: i64| -> Option<usize> {
        (d >= start && d < end + width).then(|| ((d - start) / width) as usize)
    };
    for &d in exposing {
        if let Some(k) = slot(d) {
            bins[k].exposing_messages += 1;
        }
    }
    for &d in all {
        if let Some(k) = slot(d) {
            bins[k].messages += 1;
        }
    }
    Timeline {
        bin_seconds: width,
        bins,
        undated_exposing_messages: exposing_total - exposing.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_bins_cover_every_dated_exposing_message() {
        let t0 = 1_572_598_800;
        let ex = [t0, t0 + 600, t0 + 5400];
        let all = [t0 - 86400, t0, t0 + 600, t0 + 601, t0 + 5400];
        let t = timeline(&ex, &all, 4);
        assert_eq!(t.bin_seconds, 300);
        let total: usize = t.bins.iter().map(|b| b.exposing_messages).sum();
        assert_eq!(total, 3);
        assert_eq!(t.undated_exposing_messages, 1);
        assert_eq!(t.bins.iter().map(|b| b.messages).sum::<usize>(), 4);
        assert!(t.bins.len() <= 50);
        assert_eq!(t.bins[0].exposing_messages, 0, "padded before");
        assert_eq!(t.bins.last().unwrap().exposing_messages, 0, "padded after");
    }

    #[test]
    fn absurd_dates_keep_the_chart_small() {
        let t = timeline(&[0, 4_102_444_800], &[], 2); // 1970 and 2100
        assert!(t.bins.len() <= 50, "{} bins", t.bins.len());
        assert_eq!(t.bins.iter().map(|b| b.exposing_messages).sum::<usize>(), 2);
    }

    #[test]
    fn single_message_timeline() {
        let t = timeline(&[1000], &[], 1);
        assert_eq!(t.bin_seconds, 60);
        assert_eq!(t.bins.len(), 3);
        assert_eq!(t.bins[1].exposing_messages, 1);
    }
}
