//! The affected-users accumulator: compact per-address aggregates, per-message party sets
//! stored once.
//!
//! Memory (what is kept, and why it is bounded):
//! * every string (exposed address, party key) is interned once in one table and named by a
//!   `u32`; a consumer address is its own party key, so it is stored once for both roles;
//! * per exposing message (keyed by Message-ID, or location without one): its sorted party
//!   ids, stored once however many addresses it exposes, plus its date range;
//! * per exposed address: 20 bytes (first message, rule bitmask, field bitmask, first content
//!   source, index of a message list only when two or more messages exposed it); rule ids
//!   beyond 32 and second content sources sit in side tables for the few addresses that have
//!   them.
//!
//! So memory is O(distinct strings + sum of party-set sizes of exposing messages + address
//! exposures of addresses seen in several messages x 4 bytes), never recipients squared.
//!
//! Counting (exact):
//! * the *audience* of an address = distinct external parties, other than its own, among the
//!   recipients of every message exposing it. Its own party is the address itself or its
//!   domain, whichever is a party key of those messages (the scanner's `Org::party_key` yields
//!   one of the two). For an address in one message it is that message's party count minus
//!   its own. For an address in several messages, the party sets of its messages are unioned
//!   when rows are produced, once per distinct message *set* (addresses with the same messages
//!   share the result): time O(sum over distinct message sets of their party-set sizes),
//!   scratch memory one stamp per interned string. A mass mail re-sent to the same list is one
//!   set, so it costs one union, not one per address.
//! * Parties known only by count (scan records and old findings list the exposed addresses'
//!   parties, not Bcc'd viewers) are added as distinct per message: exact for one message, an
//!   upper bound across several.
//! * a *message* counts once however many rules fired on it or copies of it were read;
//!   Message-IDs kept per row are the five earliest (by date, then id), so output does not
//!   depend on input order.

use super::{rfc3339, AffectedRow, MAX_MESSAGE_IDS};
use crate::matching::canonical;
use foldhash::fast::RandomState;
use indexmap::IndexSet;
use leakaudit_scanner::{ExposedAddress, Field, Location, PartyKey};
use std::borrow::Cow;
use std::collections::HashMap;

/// "No message / no index" in the compact tables.
const NONE: u32 = u32::MAX;
/// Field bits: `Field::ALL` order.
const FIELD_BITS: usize = 6;
/// Rule ids with an index below this live in the per-address bitmask.
const RULE_BITS: u32 = 32;

type Interner = IndexSet<Box<str>, RandomState>;
type Map<K, V> = HashMap<K, V, RandomState>;

fn intern(set: &mut Interner, s: &str) -> u32 {
    if let Some(i) = set.get_index_of(s) {
        return to_id(i);
    }
    to_id(set.insert_full(s.into()).0)
}

/// More than 4 billion distinct strings cannot fit in memory first; saturate rather than wrap.
fn to_id(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(NONE - 1).min(NONE - 1)
}

/// The canonical form of an address string from a saved file (hand-made or older). The
/// common, already canonical case (ASCII, no uppercase) skips the IDNA parse.
fn canonical_cow(s: &str) -> Cow<'_, str> {
    let plain = s.is_ascii()
        && !s.bytes().any(|b| b.is_ascii_uppercase() || b == b' ')
        && !s.ends_with('.')
        && s.bytes().filter(|b| *b == b'@').count() == 1;
    if plain {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(canonical(s).unwrap_or_else(|| s.to_lowercase()))
    }
}

struct Msg {
    /// Sorted, distinct party ids of every external recipient.
    parties: Box<[u32]>,
    /// Parties known only by count (not named in the input).
    hidden: u32,
    date_min: i64,
    date_max: i64,
}

#[derive(Clone, Copy)]
struct Agg {
    /// `NONE`: this string is only a party key, not an exposed address.
    first_msg: u32,
    /// Index into `multi` once a second message exposed the address.
    more: u32,
    rules: u32,
    /// First content source (`NONE`: none); more in `content`.
    source: u32,
    fields: u8,
}

const EMPTY: Agg = Agg {
    first_msg: NONE,
    more: NONE,
    rules: 0,
    source: NONE,
    fields: 0,
};

/// One address exposed in a message, as the accumulator takes it.
pub(crate) struct Exposed<'a> {
    pub address: &'a str,
    /// Header field bits, 0 for content.
    pub fields: u8,
    /// `body`, `attachment:NAME` for content exposures.
    pub source: Option<Cow<'a, str>>,
}

/// One message's exposures, as the accumulator takes it (`P`: how party keys are held).
pub(crate) struct MessageInput<'a, P = PartyKey> {
    pub message_id: Option<&'a str>,
    pub location: &'a Location,
    pub date: Option<i64>,
    pub rule_id: &'a str,
    /// Party keys of all external recipients; empty when the input does not list them.
    pub parties: &'a [P],
    /// Total number of external parties when only a count is known (records); `None` for
    /// findings, whose `parties` is complete when non-empty.
    pub party_count: Option<usize>,
}

/// Feeds on findings (and scan records), yields the rows. Order of feeding does not change
/// the result. See the module doc for what is kept and how audiences are counted.
#[derive(Default)]
pub struct AffectedAccumulator {
    strings: Interner,
    aggs: Vec<Agg>,
    multi: Vec<Vec<u32>>,
    msg_keys: Interner,
    msgs: Vec<Msg>,
    rule_names: Interner,
    rule_overflow: Map<u32, Vec<u32>>,
    sources: Interner,
    content: Map<u32, Vec<u32>>,
    addresses: usize,
    findings: usize,
}

fn insert_sorted(v: &mut Vec<u32>, x: u32) {
    if v.last().is_some_and(|l| *l < x) {
        v.push(x);
    } else if let Err(i) = v.binary_search(&x) {
        v.insert(i, x);
    }
}

/// Header field bit of `f` (`Field::ALL` order).
pub(crate) fn field_bit(f: Field) -> u8 {
    let i = Field::ALL.iter().position(|x| *x == f).unwrap_or(0);
    1 << i
}

pub(crate) fn field_bits(fields: impl IntoIterator<Item = Field>) -> u8 {
    fields.into_iter().fold(0, |b, f| b | field_bit(f))
}

impl AffectedAccumulator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of findings (or records) seen so far, with or without exposed addresses.
    pub fn findings_seen(&self) -> usize {
        self.findings
    }

    /// Number of distinct exposed addresses (the number of rows).
    pub fn len(&self) -> usize {
        self.addresses
    }

    pub fn is_empty(&self) -> bool {
        self.addresses == 0
    }

    /// Bytes of per-address aggregate state (one slot per interned string); the tables that do
    /// not depend on addresses (messages, strings) are not counted. For tests and benchmarks.
    pub fn per_address_state_bytes(&self) -> usize {
        self.aggs.capacity() * std::mem::size_of::<Agg>()
            + self.multi.iter().map(|v| v.capacity() * 4).sum::<usize>()
    }

    pub(crate) fn count_finding(&mut self) {
        self.findings += 1;
    }

    fn string(&mut self, s: &str) -> u32 {
        let id = intern(&mut self.strings, s);
        if id as usize >= self.aggs.len() {
            self.aggs.resize(id as usize + 1, EMPTY);
        }
        id
    }

    fn message<P: AsRef<str>>(&mut self, m: &MessageInput<'_, P>, exposed_parties: &[&str]) -> u32 {
        let key = match m.message_id {
            Some(id) if !id.is_empty() => format!("id:{id}"),
            _ => format!("loc:{}", m.location),
        };
        let mut parties: Vec<u32> = if m.parties.is_empty() {
            exposed_parties.iter().map(|p| self.string(p)).collect()
        } else {
            m.parties.iter().map(|p| self.string(p.as_ref())).collect()
        };
        parties.sort_unstable();
        parties.dedup();
        let hidden = match m.party_count {
            Some(n) => n.saturating_sub(parties.len()),
            None => 0,
        };
        let hidden = u32::try_from(hidden).unwrap_or(u32::MAX);
        let (date_min, date_max) = m.date.map_or((i64::MAX, i64::MIN), |d| (d, d));
        let (idx, new) = self.msg_keys.insert_full(key.into_boxed_str());
        if new {
            self.msgs.push(Msg {
                parties: parties.into_boxed_slice(),
                hidden,
                date_min,
                date_max,
            });
        } else {
            // Another rule or another copy of the same message: union, so the result does not
            // depend on which came first.
            let msg = &mut self.msgs[idx];
            if *msg.parties != *parties {
                let mut u: Vec<u32> = msg.parties.iter().copied().chain(parties).collect();
                u.sort_unstable();
                u.dedup();
                msg.parties = u.into_boxed_slice();
            }
            msg.hidden = msg.hidden.max(hidden);
            msg.date_min = msg.date_min.min(date_min);
            msg.date_max = msg.date_max.max(date_max);
        }
        to_id(idx)
    }

    /// Adds one message's exposures (one finding or record).
    pub(crate) fn add_message<'a, P: AsRef<str>>(
        &mut self,
        m: &MessageInput<'_, P>,
        exposed: impl Iterator<Item = Exposed<'a>> + Clone,
        exposed_parties: &[&str],
    ) {
        let msg = self.message(m, exposed_parties);
        let rule = intern(&mut self.rule_names, m.rule_id);
        for ex in exposed {
            let addr = canonical_cow(ex.address);
            let a = self.string(&addr);
            let agg = &mut self.aggs[a as usize];
            if agg.first_msg == NONE {
                agg.first_msg = msg;
                self.addresses += 1;
            } else if agg.first_msg != msg {
                if agg.more == NONE {
                    agg.more = to_id(self.multi.len());
                    let (x, y) = (agg.first_msg.min(msg), agg.first_msg.max(msg));
                    self.multi.push(vec![x, y]);
                } else {
                    insert_sorted(&mut self.multi[agg.more as usize], msg);
                }
            }
            agg.fields |= ex.fields;
            if rule < RULE_BITS {
                agg.rules |= 1 << rule;
            } else {
                insert_sorted(self.rule_overflow.entry(a).or_default(), rule);
            }
            if let Some(src) = &ex.source {
                let s = intern(&mut self.sources, src);
                if agg.source == NONE {
                    agg.source = s;
                } else if agg.source != s {
                    insert_sorted(self.content.entry(a).or_default(), s);
                }
            }
        }
    }

    /// Adds the exposed addresses of one message: header fields, or the content source.
    pub(crate) fn add_header_exposures<P: AsRef<str>>(
        &mut self,
        m: &MessageInput<'_, P>,
        exposed: &[ExposedAddress],
    ) {
        let parties: Vec<&str> = if m.parties.is_empty() {
            exposed.iter().map(|e| e.party.as_str()).collect()
        } else {
            Vec::new()
        };
        let it = exposed.iter().map(|e| Exposed {
            address: e.address.as_str(),
            fields: field_bits(e.fields.iter()),
            source: e.source.as_deref().map(super::input::clean_source),
        });
        self.add_message(m, it, &parties);
    }

    /// The rows, sorted by canonical address, all in memory. Prefer [`Self::rows_iter`] for
    /// large lists (a row is ~400 bytes; the accumulator's state ~100 bytes per address).
    pub fn rows(&self) -> Vec<AffectedRow> {
        self.rows_iter().collect()
    }

    /// The rows one at a time, sorted by canonical address.
    pub fn rows_iter(&self) -> Rows<'_> {
        let mut order: Vec<u32> = (0..self.aggs.len())
            .filter(|i| self.aggs[*i].first_msg != NONE)
            .map(to_id)
            .collect();
        order.sort_unstable_by(|a, b| self.strings[*a as usize].cmp(&self.strings[*b as usize]));
        Rows {
            acc: self,
            order: order.into_iter(),
            stamp: Vec::new(),
            generation: 0,
            unions: Map::default(),
        }
    }

    fn messages_of(&self, a: u32) -> &[u32] {
        let agg = &self.aggs[a as usize];
        if agg.more == NONE {
            std::slice::from_ref(&agg.first_msg)
        } else {
            &self.multi[agg.more as usize]
        }
    }

    /// Ids of the address's own party candidates: the address itself and its domain.
    fn own_candidates(&self, a: u32) -> [u32; 2] {
        let s = &self.strings[a as usize];
        let domain = s
            .rsplit_once('@')
            .and_then(|(_, d)| self.strings.get_index_of(d))
            .map_or(NONE, to_id);
        [a, domain]
    }
}

/// Rows in address order, computed one at a time (see [`AffectedAccumulator::rows_iter`]).
pub struct Rows<'a> {
    acc: &'a AffectedAccumulator,
    order: std::vec::IntoIter<u32>,
    /// `stamp[party] == generation` marks a party already counted in the current union.
    stamp: Vec<u32>,
    generation: u32,
    /// Union size (named parties, hidden count) by message list, shared by addresses exposed
    /// by the same messages.
    unions: Map<&'a [u32], (usize, usize)>,
}

impl<'a> Rows<'a> {
    fn audience(&mut self, a: u32, msgs: &'a [u32]) -> usize {
        let acc = self.acc;
        let own = acc.own_candidates(a);
        if let [m] = msgs {
            let msg = &acc.msgs[*m as usize];
            let own_in = own
                .iter()
                .filter(|o| **o != NONE && msg.parties.binary_search(o).is_ok())
                .count()
                .min(1);
            return msg.parties.len() + msg.hidden as usize - own_in;
        }
        let (named, hidden) = match self.unions.get(msgs) {
            Some(v) => *v,
            None => {
                let v = self.union(msgs);
                self.unions.insert(msgs, v);
                v
            }
        };
        let own_in = own
            .iter()
            .filter(|o| {
                **o != NONE
                    && msgs
                        .iter()
                        .any(|m| acc.msgs[*m as usize].parties.binary_search(o).is_ok())
            })
            .count()
            .min(1);
        named + hidden - own_in
    }

    fn union(&mut self, msgs: &[u32]) -> (usize, usize) {
        if self.stamp.len() < self.acc.strings.len() {
            self.stamp.resize(self.acc.strings.len(), 0);
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.stamp.fill(0);
            self.generation = 1;
        }
        let (mut named, mut hidden) = (0, 0);
        for m in msgs {
            let msg = &self.acc.msgs[*m as usize];
            hidden += msg.hidden as usize;
            for p in msg.parties.iter() {
                let s = &mut self.stamp[*p as usize];
                if *s != self.generation {
                    *s = self.generation;
                    named += 1;
                }
            }
        }
        (named, hidden)
    }
}

impl Iterator for Rows<'_> {
    type Item = AffectedRow;

    fn next(&mut self) -> Option<AffectedRow> {
        let a = self.order.next()?;
        let acc = self.acc;
        let agg = acc.aggs[a as usize];
        let msgs = acc.messages_of(a);
        let audience = self.audience(a, msgs);
        let first = msgs.iter().map(|m| acc.msgs[*m as usize].date_min).min();
        let last = msgs.iter().map(|m| acc.msgs[*m as usize].date_max).max();
        let mut ids: Vec<(i64, &str)> = msgs
            .iter()
            .filter_map(|m| {
                let key = acc.msg_keys.get_index(*m as usize)?;
                let id = key.strip_prefix("id:")?;
                Some((acc.msgs[*m as usize].date_min, id))
            })
            .collect();
        ids.sort_unstable();
        ids.truncate(MAX_MESSAGE_IDS);
        let mut rule_ids: Vec<String> = (0..RULE_BITS)
            .filter(|b| agg.rules & (1 << b) != 0)
            .filter_map(|b| acc.rule_names.get_index(b as usize))
            .chain(
                acc.rule_overflow
                    .get(&a)
                    .into_iter()
                    .flatten()
                    .filter_map(|r| acc.rule_names.get_index(*r as usize)),
            )
            .map(|s| s.to_string())
            .collect();
        rule_ids.sort_unstable();
        let mut fields: Vec<String> = (0..FIELD_BITS)
            .filter(|b| agg.fields & (1 << b) != 0)
            .map(|b| Field::ALL[b].header_name().to_string())
            .collect();
        if agg.source != NONE {
            let mut sources: Vec<String> = std::iter::once(&agg.source)
                .chain(acc.content.get(&a).into_iter().flatten())
                .filter_map(|s| acc.sources.get_index(*s as usize))
                .map(|s| s.to_string())
                .collect();
            sources.sort_unstable();
            sources.dedup();
            fields.extend(sources);
        }
        Some(AffectedRow {
            address: acc.strings[a as usize].to_string(),
            account_ids: Vec::new(),
            messages: msgs.len(),
            audience,
            first_exposed: first.filter(|d| *d != i64::MAX).map(rfc3339),
            last_exposed: last.filter(|d| *d != i64::MIN).map(rfc3339),
            rule_ids,
            fields,
            message_ids: ids.into_iter().map(|(_, id)| id.to_string()).collect(),
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.order.size_hint()
    }
}

impl ExactSizeIterator for Rows<'_> {}
