//! Campaigns: the chunks of one mass mailing, grouped so that every output shows the mailing
//! once, with its number of chunks and of addresses exposed.
//!
//! Only exposing messages are grouped, and every exposing message belongs to exactly one
//! group, so the chunks of all groups add up to the number of exposing messages. A group of
//! two or more chunks is a campaign; a lone message is a single message. Every output lists
//! them in [`rank`] order: the largest campaign, the incident, first.
//!
//! The rules, in order:
//! 1. **Same mailing key**: same sender (canonical From address) and the same *normalised*
//!    subject: lowercased, every run of characters that are not letters (digits, punctuation,
//!    whitespace) folded to one space. `Changes to your account (batch 3/8)` and
//!    `Changes to your account - batch 4/8` share the key `changes to your account batch`.
//! 2. **Close in time**: messages of one key, sorted by date, stay in one campaign while the gap
//!    between consecutive chunks is at most `window` (default 6 h); a longer gap starts a new
//!    campaign (the same newsletter sent next week is a new incident). Undated messages of a
//!    key form one campaign of their own.
//! 3. **Language variants** (decided: merged). A mailing sent per locale carries one subject
//!    per language, which no normalisation can match (`Änderungen an Ihrem Konto`,
//!    `Изменения в вашем аккаунте`). Campaigns from the same sender whose chunks are bulk
//!    (each campaign exposes at least `bulk_min_addresses` addresses in one message) and
//!    whose time spans overlap or lie within `variant_gap` (default 30 min) of each other are
//!    merged; the campaign lists every subject variant, so the merge is visible. Two different
//!    bulk mailings from one sender inside 30 minutes are therefore reported as one campaign
//!    with both subjects; set `variant_gap` to zero to group by subject only.

use crate::data::MessageRecord;
use leakaudit_policy::Severity;
use leakaudit_scanner::csv::CsvWriter;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Tuning of the grouping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignOptions {
    /// Largest gap, in seconds, between two chunks of one campaign with the same subject.
    pub window_secs: i64,
    /// Largest gap, in seconds, between the subject variants (languages) of one mailing.
    /// Zero disables the merge of variants.
    pub variant_gap_secs: i64,
    /// A chunk is "bulk" (may be a language variant) when it exposes at least this many
    /// addresses.
    pub bulk_min_addresses: usize,
}

impl Default for CampaignOptions {
    fn default() -> Self {
        CampaignOptions {
            window_secs: 6 * 3600,
            variant_gap_secs: 30 * 60,
            bulk_min_addresses: 10,
        }
    }
}

/// One mass mailing (or one lone exposing message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Campaign {
    /// `C1`, `C2`... for campaigns, `S1`, `S2`... for single messages, in [`rank`] order.
    pub id: String,
    /// Canonical From address (empty when the messages had none).
    pub sender: String,
    /// Distinct decoded subjects, in order of first appearance.
    pub subjects: Vec<String>,
    pub first: Option<i64>,
    pub last: Option<i64>,
    /// Indices into the message slice given to [`group`], in archive order.
    pub messages: Vec<usize>,
    /// Distinct addresses exposed by any chunk.
    pub addresses_exposed: usize,
    /// (address, message) pairs: the records exposed.
    pub address_exposures: usize,
    /// The largest audience (external parties) of one chunk.
    pub max_audience: usize,
    pub max_severity: Option<Severity>,
}

impl Campaign {
    /// Number of messages (chunks) the mailing was split into.
    pub fn chunks(&self) -> usize {
        self.messages.len()
    }

    /// A mailing of two or more chunks; one message alone is a single message.
    pub fn is_campaign(&self) -> bool {
        self.chunks() >= 2
    }
}

/// The grouping key of a subject: lowercase letters of any script, separated by single
/// spaces; digits, punctuation and whitespace runs are separators.
pub fn normalise_subject(subject: &str) -> String {
    leakaudit_policy::triage::subject::letters_key(subject)
}

/// A working cluster: message indices plus its time span.
struct Cluster {
    sender: String,
    messages: Vec<usize>,
    first: Option<i64>,
    last: Option<i64>,
    bulk: bool,
}

/// Groups the exposing messages of `messages` into campaigns (see the module doc).
pub fn group(messages: &[MessageRecord], opts: &CampaignOptions) -> Vec<Campaign> {
    // Rule 1: bucket by (sender, normalised subject).
    let mut keyed: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    for (i, m) in messages.iter().enumerate() {
        if !m.exposes() {
            continue;
        }
        let sender = m.from.clone().unwrap_or_default();
        let subject = normalise_subject(m.subject.as_deref().unwrap_or(""));
        keyed.entry((sender, subject)).or_default().push(i);
    }

    // Rule 2: split each bucket at gaps longer than the window.
    let mut clusters: Vec<Cluster> = Vec::new();
    for ((sender, _), idx) in keyed {
        let (mut dated, undated): (Vec<usize>, Vec<usize>) =
            idx.into_iter().partition(|&i| messages[i].date.is_some());
        dated.sort_by_key(|&i| (messages[i].date, i));
        let mut current: Vec<usize> = Vec::new();
        let mut last: Option<i64> = None;
        for i in dated {
            let d = messages[i].date.expect("partitioned on date");
            if let Some(prev) = last {
                if d - prev > opts.window_secs {
                    clusters.push(make_cluster(
                        &sender,
                        std::mem::take(&mut current),
                        messages,
                        opts,
                    ));
                }
            }
            current.push(i);
            last = Some(d);
        }
        if !current.is_empty() {
            clusters.push(make_cluster(&sender, current, messages, opts));
        }
        if !undated.is_empty() {
            clusters.push(make_cluster(&sender, undated, messages, opts));
        }
    }

    // Rule 3: merge bulk clusters of one sender that are close in time (language variants).
    let mut parent: Vec<usize> = (0..clusters.len()).collect();
    if opts.variant_gap_secs > 0 {
        let mut by_sender: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (ci, c) in clusters.iter().enumerate() {
            if c.bulk && c.first.is_some() {
                by_sender.entry(c.sender.as_str()).or_default().push(ci);
            }
        }
        for list in by_sender.values_mut() {
            list.sort_by_key(|&ci| clusters[ci].first);
            // Sweep in start order, chaining a cluster onto the running group when it starts
            // within the gap of the group's latest end.
            let mut group_end: Option<i64> = None;
            let mut root: Option<usize> = None;
            for &ci in list.iter() {
                let (first, last) = (clusters[ci].first.unwrap(), clusters[ci].last.unwrap());
                match (root, group_end) {
                    (Some(r), Some(end)) if first - end <= opts.variant_gap_secs => {
                        parent[ci] = r;
                        group_end = Some(end.max(last));
                    }
                    _ => {
                        root = Some(ci);
                        group_end = Some(last);
                    }
                }
            }
        }
    }
    let mut merged: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (ci, c) in clusters.iter().enumerate() {
        merged.entry(parent[ci]).or_default().extend(&c.messages);
    }

    let mut out: Vec<Campaign> = merged
        .into_iter()
        .map(|(root, mut idx)| {
            idx.sort_unstable();
            build(&clusters[root].sender, idx, messages)
        })
        .collect();
    rank(&mut out);
    out
}

/// Puts the incident first: campaigns (two or more chunks) before single messages, each by
/// addresses exposed, then severity, then first send time (undated last), sender and archive
/// position for a stable order. Campaigns are numbered `C1`, `C2`...; single messages `S1`,
/// `S2`... (a lone message is not a mailing, but every exposing message keeps a row).
pub fn rank(groups: &mut [Campaign]) {
    groups.sort_by(|a, b| {
        let key = |c: &Campaign| {
            (
                !c.is_campaign(),
                std::cmp::Reverse(c.addresses_exposed),
                std::cmp::Reverse(c.max_severity),
                c.first.is_none(),
                c.first,
            )
        };
        key(a)
            .cmp(&key(b))
            .then_with(|| a.sender.cmp(&b.sender))
            .then_with(|| a.messages.first().cmp(&b.messages.first()))
    });
    let (mut campaigns, mut singles) = (0, 0);
    for c in groups.iter_mut() {
        c.id = if c.is_campaign() {
            campaigns += 1;
            format!("C{campaigns}")
        } else {
            singles += 1;
            format!("S{singles}")
        };
    }
}

/// The long tail folded into one line: single exposing messages (not part of a campaign).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Singles {
    pub messages: usize,
    /// Distinct addresses exposed by them.
    pub addresses_exposed: usize,
    pub max_severity: Option<Severity>,
}

/// Counts the single messages among `groups` (see [`Singles`]).
pub fn singles(groups: &[Campaign], messages: &[MessageRecord]) -> Singles {
    let mut addresses: std::collections::HashSet<&str> = Default::default();
    let mut out = Singles::default();
    for c in groups.iter().filter(|c| !c.is_campaign()) {
        out.messages += 1;
        out.max_severity = out.max_severity.max(c.max_severity);
        for &i in &c.messages {
            addresses.extend(messages[i].exposed.iter().map(|e| e.address.as_str()));
        }
    }
    out.addresses_exposed = addresses.len();
    out
}

fn make_cluster(
    sender: &str,
    messages_idx: Vec<usize>,
    messages: &[MessageRecord],
    opts: &CampaignOptions,
) -> Cluster {
    let dates = messages_idx.iter().filter_map(|&i| messages[i].date);
    let first = dates.clone().min();
    let last = dates.max();
    let bulk = messages_idx
        .iter()
        .any(|&i| messages[i].exposed.len() >= opts.bulk_min_addresses.max(1));
    Cluster {
        sender: sender.to_owned(),
        messages: messages_idx,
        first,
        last,
        bulk,
    }
}

fn build(sender: &str, idx: Vec<usize>, messages: &[MessageRecord]) -> Campaign {
    let mut subjects: Vec<String> = Vec::new();
    let mut addresses: BTreeSet<&str> = BTreeSet::new();
    let mut exposures = 0;
    let mut max_audience = 0;
    let mut max_severity = None;
    // Subjects in chronological order of first use reads best ("en, then de, then fr").
    let mut chrono_idx = idx.clone();
    chrono_idx.sort_by_key(|&i| (messages[i].date.is_none(), messages[i].date, i));
    for &i in &chrono_idx {
        let m = &messages[i];
        let s = m.subject.clone().unwrap_or_default();
        if !subjects.contains(&s) {
            subjects.push(s);
        }
        for e in &m.exposed {
            addresses.insert(e.address.as_str());
        }
        max_audience = max_audience.max(m.audience());
        exposures += m.exposed.len();
        max_severity = max_severity.max(m.max_severity());
    }
    let dates = idx.iter().filter_map(|&i| messages[i].date);
    Campaign {
        id: String::new(),
        sender: sender.to_owned(),
        subjects,
        first: dates.clone().min(),
        last: dates.max(),
        addresses_exposed: addresses.len(),
        address_exposures: exposures,
        max_audience,
        max_severity,
        messages: idx,
    }
}

/// The header of [`to_csv`].
pub const CSV_HEADER: &str =
    "campaign,chunk,date,message_id,location,sender,addresses_exposed,max_audience,subject";

/// `campaigns.csv`: one row per exposing message (chunk), groups in [`rank`] order (campaigns,
/// then single messages), chunks by date.
/// No recipient address appears in it. Written by the scanner's [`CsvWriter`], which defuses
/// cells a spreadsheet would run as a formula: subjects are attacker-controlled.
pub fn to_csv(campaigns: &[Campaign], messages: &[MessageRecord]) -> String {
    let mut out = CsvWriter::new(Vec::new());
    let rows = std::iter::once(CSV_HEADER.split(',').map(str::to_owned).collect::<Vec<_>>()).chain(
        campaigns.iter().flat_map(|c| {
            let mut idx = c.messages.clone();
            idx.sort_by_key(|&i| (messages[i].date.is_none(), messages[i].date, i));
            idx.into_iter().enumerate().map(move |(k, i)| {
                let m = &messages[i];
                vec![
                    c.id.clone(),
                    (k + 1).to_string(),
                    m.date.map(crate::text::rfc3339).unwrap_or_default(),
                    m.message_id.clone().unwrap_or_default(),
                    m.location.to_string(),
                    m.from.clone().unwrap_or_default(),
                    m.exposed.len().to_string(),
                    m.audience().to_string(),
                    m.subject.clone().unwrap_or_default(),
                ]
            })
        }),
    );
    for row in rows {
        // Writing to a Vec cannot fail.
        let _ = out.write_row(row);
    }
    let bytes = out.into_inner().unwrap_or_default();
    // Every cell is a &str, so the bytes are UTF-8.
    String::from_utf8(bytes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::FindingRef;
    use leakaudit_scanner::{ExposedAddress, Field, Location};

    const T0: i64 = 1_572_598_800; // 2019-11-01 09:00:00 UTC

    fn msg(
        n: usize,
        from: &str,
        subject: &str,
        date: Option<i64>,
        exposed: usize,
    ) -> MessageRecord {
        let exposed = (0..exposed)
            .map(|k| ExposedAddress {
                address: addr(&format!("user{n}-{k}@gmail.com")),
                fields: vec![Field::To].into(),
                party: format!("user{n}-{k}@gmail.com").into(),
                audience: exposed.saturating_sub(1),
                in_group: false,
                source: None,
            })
            .collect();
        MessageRecord {
            location: Location::in_mbox("demo.mbox".into(), n as u64 * 1000, n as u64 + 1),
            message_id: Some(format!("m{n}@x")),
            date,
            from: Some(from.to_owned()),
            subject: Some(subject.to_owned()),
            exposed,
            audience_parties: 0,
            findings: vec![FindingRef {
                rule_id: "recipient-exposure".into(),
                severity: Severity::High,
            }],
        }
    }

    fn addr(s: &str) -> leakaudit_scanner::Address {
        leakaudit_scanner::Address::parse(s).expect("valid test address")
    }

    #[test]
    fn normalises_numbers_punctuation_and_case() {
        assert_eq!(
            normalise_subject("Important: Changes to your account (batch 3/8)"),
            "important changes to your account batch"
        );
        assert_eq!(
            normalise_subject("IMPORTANT - changes  to your account, batch #4 of 8"),
            "important changes to your account batch of"
        );
        assert_eq!(normalise_subject("  42 "), "");
        assert_eq!(
            normalise_subject("Изменения в аккаунте 2"),
            "изменения в аккаунте"
        );
    }

    #[test]
    fn batches_of_one_mailing_are_one_campaign() {
        let ms: Vec<_> = (0..8)
            .map(|b| {
                msg(
                    b,
                    "noreply@kx.example",
                    &format!("Important: changes to your account [{}/8]", b + 1),
                    Some(T0 + b as i64 * 600),
                    100,
                )
            })
            .collect();
        let c = group(&ms, &CampaignOptions::default());
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].chunks(), 8);
        assert_eq!(c[0].addresses_exposed, 800);
        assert_eq!(c[0].address_exposures, 800);
        assert_eq!(c[0].id, "C1");
        assert_eq!(c[0].first, Some(T0));
        assert_eq!(c[0].last, Some(T0 + 7 * 600));
        assert_eq!(c[0].subjects.len(), 8, "every distinct subject is listed");
    }

    #[test]
    fn different_mailings_are_not_merged() {
        let opts = CampaignOptions::default();
        // Same sender, different subjects, three hours apart: two campaigns.
        let ms = vec![
            msg(
                0,
                "noreply@kx.example",
                "Your November statement",
                Some(T0),
                50,
            ),
            msg(
                1,
                "noreply@kx.example",
                "Scheduled maintenance",
                Some(T0 + 3 * 3600),
                50,
            ),
        ];
        assert_eq!(group(&ms, &opts).len(), 2);
        // Same subject, different senders, same minute: two campaigns.
        let ms = vec![
            msg(
                0,
                "noreply@kx.example",
                "Changes to your account",
                Some(T0),
                50,
            ),
            msg(
                1,
                "news@other.example",
                "Changes to your account",
                Some(T0 + 60),
                50,
            ),
        ];
        assert_eq!(group(&ms, &opts).len(), 2);
        // Same sender and subject, a week apart: two incidents.
        let ms = vec![
            msg(0, "noreply@kx.example", "Weekly digest 44", Some(T0), 50),
            msg(
                1,
                "noreply@kx.example",
                "Weekly digest 45",
                Some(T0 + 7 * 86400),
                50,
            ),
        ];
        let c = group(&ms, &opts);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].messages, vec![0]);
        assert_eq!(c[1].messages, vec![1]);
    }

    #[test]
    fn window_is_measured_between_consecutive_chunks() {
        let opts = CampaignOptions {
            window_secs: 3600,
            ..CampaignOptions::default()
        };
        // 50 minutes apart each: one chain of 4 even though it spans 2.5 hours.
        let ms: Vec<_> = (0..4)
            .map(|b| msg(b, "a@kx.example", "Notice", Some(T0 + b as i64 * 3000), 3))
            .collect();
        assert_eq!(group(&ms, &opts).len(), 1);
        // A 61-minute gap splits.
        let ms = vec![
            msg(0, "a@kx.example", "Notice", Some(T0), 3),
            msg(1, "a@kx.example", "Notice", Some(T0 + 3660), 3),
        ];
        assert_eq!(group(&ms, &opts).len(), 2);
    }

    #[test]
    fn language_variants_of_one_mailing_are_merged() {
        let subjects = [
            "Important: changes to your account",
            "Wichtig: Änderungen an Ihrem Konto",
            "Important : modifications de votre compte",
            "Importante: cambios en su cuenta",
            "Важно: изменения в вашем аккаунте",
            "重要：アカウントの変更について",
        ];
        let ms: Vec<_> = subjects
            .iter()
            .enumerate()
            .map(|(i, s)| msg(i, "noreply@kx.example", s, Some(T0 + i as i64 * 900), 100))
            .collect();
        let c = group(&ms, &CampaignOptions::default());
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].chunks(), 6);
        assert_eq!(c[0].subjects.len(), 6);
        assert_eq!(c[0].subjects[4], subjects[4]);

        // With the merge switched off, each language is its own campaign.
        let off = CampaignOptions {
            variant_gap_secs: 0,
            ..CampaignOptions::default()
        };
        assert_eq!(group(&ms, &off).len(), 6);
    }

    #[test]
    fn small_exposures_are_not_merged_as_variants() {
        // Two unrelated 1:few slips by one support agent, ten minutes apart.
        let ms = vec![
            msg(0, "support@kx.example", "Re: Ticket 1182", Some(T0), 2),
            msg(
                1,
                "support@kx.example",
                "Meeting invitation",
                Some(T0 + 600),
                3,
            ),
        ];
        assert_eq!(group(&ms, &CampaignOptions::default()).len(), 2);
    }

    #[test]
    fn non_exposing_and_undated_messages() {
        let mut ms = vec![
            msg(0, "a@kx.example", "Hello", None, 2),
            msg(1, "a@kx.example", "Hello", Some(T0), 0), // finding without exposure
            msg(2, "a@kx.example", "Hello", None, 2),
            msg(3, "b@kx.example", "Other", Some(T0), 2),
        ];
        ms[1].exposed.clear();
        let c = group(&ms, &CampaignOptions::default());
        assert_eq!(c.len(), 2);
        assert_eq!(
            c[0].messages,
            vec![0, 2],
            "a campaign before a single message"
        );
        assert_eq!(c[0].id, "C1");
        assert_eq!(
            c[0].first, None,
            "the undated chunks of one key form a campaign"
        );
        assert_eq!(c[1].messages, vec![3]);
        assert_eq!(c[1].id, "S1");
        let chunks: usize = c.iter().map(Campaign::chunks).sum();
        assert_eq!(
            chunks, 3,
            "every exposing message is in exactly one campaign"
        );
    }

    /// Issue 27: the report listed 351 groups by date and the mass mail of 27 chunks was row
    /// 294. Campaigns come first, largest first; single messages after them, largest first.
    #[test]
    fn the_largest_campaign_leads_and_single_messages_follow() {
        let mut ms = Vec::new();
        // Earliest: many single exposing messages, some larger than a chunk of the mass mail.
        for n in 0..40 {
            ms.push(msg(
                n,
                &format!("rep{n}@kx.example"),
                &format!("Re: deal {n}"),
                Some(T0 + n as i64),
                3 + n % 7,
            ));
        }
        ms.push(msg(40, "big@kx.example", "Huge single", Some(T0 + 50), 60));
        // A small campaign, early.
        for k in 0..2 {
            ms.push(msg(
                41 + k,
                "news@kx.example",
                "Weekly news",
                Some(T0 + 100 + k as i64 * 60),
                4,
            ));
        }
        // The mass mail: 5 chunks of 20, late.
        for k in 0..5 {
            ms.push(msg(
                43 + k,
                "noreply@kx.example",
                &format!("Account changes {k}/5"),
                Some(T0 + 86_400 + k as i64 * 600),
                20,
            ));
        }
        let c = group(&ms, &CampaignOptions::default());
        assert_eq!(c[0].id, "C1");
        assert_eq!(c[0].sender, "noreply@kx.example");
        assert_eq!((c[0].chunks(), c[0].addresses_exposed), (5, 100));
        assert_eq!(c[1].id, "C2");
        assert_eq!(c[1].chunks(), 2);
        assert_eq!(c[2].id, "S1");
        assert_eq!(
            c[2].addresses_exposed, 60,
            "the largest single message first"
        );
        assert!(c[2..]
            .windows(2)
            .all(|w| w[0].addresses_exposed >= w[1].addresses_exposed));
        assert!(c[2..].iter().all(|g| !g.is_campaign()));
        let s = singles(&c, &ms);
        assert_eq!(s.messages, 41);
        assert_eq!(
            s.addresses_exposed,
            60 + (0..40).map(|n| 3 + n % 7).sum::<usize>()
        );
        // campaigns.csv in the same order.
        let csv = to_csv(&c, &ms);
        let ids: Vec<&str> = csv
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap())
            .collect();
        assert_eq!(&ids[..8], ["C1", "C1", "C1", "C1", "C1", "C2", "C2", "S1"]);
    }

    #[test]
    fn csv_lists_every_chunk_and_defuses_formulas() {
        let ms = vec![
            msg(
                0,
                "a@kx.example",
                "=HYPERLINK(\"http://x\",\"a, b\")",
                Some(T0 + 60),
                3,
            ),
            msg(
                1,
                "a@kx.example",
                "=HYPERLINK(\"http://x\",\"a, b\")",
                Some(T0),
                2,
            ),
        ];
        let c = group(&ms, &CampaignOptions::default());
        let csv = to_csv(&c, &ms);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], CSV_HEADER);
        assert!(
            lines[1].starts_with("C1,1,2019-11-01T09:00:00Z,m1@x,"),
            "{}",
            lines[1]
        );
        assert!(lines[2].starts_with("C1,2,2019-11-01T09:01:00Z,m0@x,"));
        assert!(
            lines[1].ends_with(",2,1,\"'=HYPERLINK(\"\"http://x\"\",\"\"a, b\"\")\""),
            "{}",
            lines[1]
        );
        assert!(!csv.contains("gmail.com"), "no recipient address");
    }

    #[test]
    fn csv_cells_read_back_exactly_through_the_shared_writer() {
        let subjects = [
            "'=quoted already",
            "-50% off",
            "@SUM(1)",
            "plain, with comma",
        ];
        let ms: Vec<_> = subjects
            .iter()
            .enumerate()
            .map(|(i, s)| msg(i, "a@kx.example", s, Some(T0 + 86_400 * i as i64), 2))
            .collect();
        let csv = to_csv(&group(&ms, &CampaignOptions::default()), &ms);
        let mut rdr = csv::ReaderBuilder::new().from_reader(csv.as_bytes());
        let got: Vec<String> = rdr
            .records()
            .map(|r| leakaudit_scanner::csv::undefuse(&r.unwrap()[8]).to_string())
            .collect();
        assert_eq!(got, subjects);
    }

    #[test]
    fn shared_addresses_are_counted_once() {
        let mut ms = vec![
            msg(0, "a@kx.example", "Notice", Some(T0), 3),
            msg(1, "a@kx.example", "Notice", Some(T0 + 60), 3),
        ];
        ms[1].exposed[0] = ms[0].exposed[0].clone();
        let c = group(&ms, &CampaignOptions::default());
        assert_eq!(c[0].addresses_exposed, 5);
        assert_eq!(c[0].address_exposures, 6);
    }
}
