//! The exposure records of an archive (`leakaudit scan`): the exposure model alone, without
//! the content rules, on the library's archive audit. One [`ExposureRecord`] per exposing
//! message, ranked: under the gate by size only, under the audit profile by the triage with
//! the archive's history. Several journal reports of one message become one record.

use crate::archive::{ArchiveAudit, AuditSink, Observer, Step};
use crate::content;
use crate::triage::{self, History, Profile, Thresholds, TriageContext};
use leakaudit_scanner::exposure::{self, Exposure, Org};
use leakaudit_scanner::scan::{ScanStats, Scanner};
use leakaudit_scanner::{
    Address, Envelope, ExposureRecord, Location, Message, Problem, RecordTriage,
};

/// Where the records go, on the calling thread, in archive order (under audit: after the
/// pass, ranked).
pub trait RecordSink {
    /// Every message as read: why the content rules' decoding limits would keep `check` from
    /// seeing all of it (if they would), and whether it came from a journal report.
    fn seen(&mut self, _location: &Location, _not_fully_audited: Option<&str>, _journal: bool) {}
    /// An exposing message's record, ranked.
    fn record(&mut self, record: ExposureRecord);
    /// [`RecordSink::record`] with the record already written as its JSON line
    /// ([`ExposureRecord::write_json_line`]'s bytes), on the worker that ranked it (the
    /// audit's records are written after the ranking, on one thread). Default: `record`.
    fn record_line(&mut self, record: ExposureRecord, _line: Vec<u8>) {
        self.record(record);
    }
    fn problem(&mut self, problem: &Problem);
    fn progress(&mut self, _bytes: u64, _messages: u64) {}
}

/// The gate's ranking of a record: by size only.
pub fn gate_triage(parties: usize, thresholds: &Thresholds) -> RecordTriage {
    let critical = parties >= thresholds.critical_parties;
    RecordTriage {
        profile: Profile::Gate.to_string(),
        severity: if critical { "critical" } else { "high" }.into(),
        signals: Vec::new(),
        reasons: vec![format!(
            "gate profile: any exposure is a bug ({parties} external parties{})",
            if critical { ", mass exposure" } else { "" }
        )],
    }
}

/// An exposing message, held until the history is complete under the audit profile.
struct Held {
    record: ExposureRecord,
    envelope: Envelope,
    exposure: Exposure,
    quoted: Vec<Address>,
    /// The ranked record's JSON line (audit: encoded where it was ranked).
    line: Option<Vec<u8>>,
}

/// Records of at most this many exposed addresses are written as their JSON line by the
/// worker that ranks them (see `records`).
const ENCODE_MAX_ADDRESSES: usize = 10_000;

/// What the workers make of one message: the exposing message, why `check` would not see all
/// of it, whether it came from a journal report. Boxed: every message's result is moved
/// through the pipeline, and most hold nothing (inline, each was ~1 KB of copying).
type Item = (Option<Box<Held>>, Option<String>, bool);

impl ArchiveAudit<'_> {
    /// The exposure records of `paths` under `org` (whose archive kind the profile may
    /// override: the gate reads a rendered file as what will be sent) and the exposure rule's
    /// `thresholds`, to `sink`.
    pub fn records(
        self,
        scanner: &Scanner,
        paths: &[String],
        org: &Org,
        thresholds: &Thresholds,
        sink: &mut impl RecordSink,
    ) -> (ScanStats, Option<History>) {
        let org = Org {
            archive_kind: self.profile.archive_kind(org.archive_kind),
            ..org.clone()
        };
        let org = &org;
        let audit = self.profile == Profile::Audit;
        let limits = content::Limits::default();
        // On the worker threads: the exposure model (and the history) in parallel.
        let process = |msg: &mut Message<'_>, obs: &Observer<'_>| -> Step<Item> {
            let hit = content::limits_hit_hinted(&msg.raw, msg.parts, &limits);
            let cut = hit.any().then(|| hit.describe(&limits));
            // A journal report's envelope (a provider log's is not a report).
            let journal =
                !msg.format.is_provider_log() && !msg.envelope.envelope_recipients.is_empty();
            let mut exp = exposure::analyse(&msg.envelope, org);
            obs.observe(&msg.envelope, org, &exp);
            if !exp.exposes() {
                return Step {
                    item: (None, cut, journal),
                    hold: false,
                };
            }
            // One list of exposed addresses per message, not two: the record takes it now
            // (gate) or once the ranking, which reads it from the exposure, is done (audit).
            let exposed = std::mem::take(&mut exp.exposed);
            let mut record = ExposureRecord::new(msg, &exp);
            if audit {
                exp.exposed = exposed;
            } else {
                record.exposed = exposed;
            }
            let held = Held {
                record,
                quoted: if audit {
                    crate::quoted::quoted_addresses(msg)
                } else {
                    Vec::new()
                },
                // Taken for the ranking, not copied; nothing reads the message after this.
                envelope: if audit {
                    msg.take_envelope()
                } else {
                    Envelope::default()
                },
                exposure: exp,
                line: None,
            };
            Step {
                item: (Some(Box::new(held)), cut, journal),
                hold: true,
            }
        };
        let rank = |item: &mut Item, ctx: &TriageContext<'_>| {
            let Some(h) = &mut item.0 else { return };
            let a = triage::assess(&h.envelope, &h.exposure, org, &h.quoted, ctx, thresholds);
            h.record.triage = Some(RecordTriage {
                profile: Profile::Audit.to_string(),
                severity: a.severity.to_string(),
                signals: a.signals.iter().map(|s| s.code().to_string()).collect(),
                reasons: a.reasons,
            });
            // The record as handed over (`ToRecords::message`), written here, in parallel with
            // the other rankings, rather than after them on the calling thread; what only the
            // ranking read is freed here too. A record too large to hold as one line (~100
            // bytes per address) is left to the sink to stream.
            if h.exposure.exposed.len() <= ENCODE_MAX_ADDRESSES {
                let mut line = Vec::new();
                h.record.exposed = std::mem::take(&mut h.exposure.exposed);
                if h.record.write_json_line(&mut line).is_ok() {
                    h.line = Some(line);
                    h.envelope = Envelope::default();
                    h.exposure = Exposure::default();
                    h.quoted = Vec::new();
                } else {
                    h.exposure.exposed = std::mem::take(&mut h.record.exposed);
                }
            }
        };
        let mut to = ToRecords {
            sink,
            org,
            audit,
            thresholds,
        };
        self.run(scanner, paths, process, rank, &mut to)
    }
}

struct ToRecords<'a, S> {
    sink: &'a mut S,
    org: &'a Org,
    audit: bool,
    thresholds: &'a Thresholds,
}

impl<S: RecordSink> AuditSink<Item> for ToRecords<'_, S> {
    fn seen(&mut self, location: &Location, item: &Item) {
        self.sink.seen(location, item.1.as_deref(), item.2);
    }

    fn held(&mut self, held: &mut Vec<(Location, Item)>) {
        merge_journal_reports(held, self.org);
    }

    fn message(&mut self, _location: Location, item: Item) {
        let Some(h) = item.0 else { return };
        let mut record = h.record;
        if let Some(line) = h.line {
            return self.sink.record_line(record, line);
        }
        if self.audit {
            record.exposed = h.exposure.exposed;
        }
        if record.triage.is_none() {
            record.triage = Some(gate_triage(record.audience_size, self.thresholds));
        }
        self.sink.record(record);
    }

    fn problem(&mut self, problem: &Problem) {
        self.sink.problem(problem);
    }

    fn progress(&mut self, bytes: u64, messages: u64) {
        self.sink.progress(bytes, messages);
    }
}

/// Several journal reports of one message (Exchange splits a large envelope over reports)
/// become one record: the envelopes' union, analysed again. Only exposing reports are held,
/// and that is enough: a report that exposes nothing adds no party (the original's headers
/// are the same in every report; see docs/architecture/readers-and-pipeline.md, journal reports).
fn merge_journal_reports(held: &mut Vec<(Location, Item)>, org: &Org) {
    let mut first: std::collections::HashMap<String, usize> = Default::default();
    let mut merged_into = vec![None; held.len()];
    for i in 0..held.len() {
        let Some(h) = &held[i].1 .0 else { continue };
        if h.envelope.envelope_recipients.is_empty() {
            continue;
        }
        let Some(id) = h.record.message_id.clone() else {
            continue;
        };
        match first.entry(id) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(i);
            }
            std::collections::hash_map::Entry::Occupied(o) => {
                let j = *o.get();
                let more = held[i]
                    .1
                     .0
                    .as_mut()
                    .map(|h| std::mem::take(&mut h.envelope.envelope_recipients))
                    .unwrap_or_default();
                if let Some(target) = held[j].1 .0.as_mut() {
                    leakaudit_scanner::add_envelope_recipients(
                        &mut target.envelope.envelope_recipients,
                        more,
                    );
                }
                merged_into[i] = Some(j);
            }
        }
    }
    let targets: std::collections::BTreeSet<usize> =
        merged_into.iter().flatten().copied().collect();
    for j in targets {
        if let Some(h) = held[j].1 .0.as_mut() {
            h.exposure = exposure::analyse(&h.envelope, org);
            h.record.audience_size = h.exposure.audience_parties.len();
            h.record.visible_parties = h.exposure.visible_parties;
            h.record.saw_others = h.exposure.saw_others.clone();
        }
    }
    let mut i = 0;
    held.retain(|_| {
        i += 1;
        merged_into[i - 1].is_none()
    });
}
