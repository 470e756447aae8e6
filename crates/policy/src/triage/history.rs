//! The archive's own history, built by a first pass over every message: which external
//! parties were already recipients together or wrote to each other (novelty), which domains
//! the archive's senders use (the organisation's other domains), and the exposing chunks of
//! each sender (campaigns). Pass 2 (the engine) then reads it per message, in parallel.
//!
//! Memory is bounded:
//! - party pairs are stored as 64-bit hashes (XXH3-64 of each party, combined
//!   order-independently, so a saved file means the same thing in every build) with the
//!   earliest date that showed them, up to two tags of the messages of that date, whether
//!   more did and the next later date ([`Seen`], 16 bytes), at most
//!   [`HistoryOptions::max_pairs`] (default 1,800,000: a hash table of 2 Mi buckets x 25
//!   bytes, 8 + 16 + 1 control, about 50 MiB). Past the cap new pairs are not recorded
//!   ([`History::dropped_pairs`] counts them) and their parties stay "new": a full history
//!   errs towards higher severities, never lower;
//! - messages with more than [`HistoryOptions::max_pair_recipients`] (default 50) recipients
//!   add no pairs: a mass mail does not make its recipients acquainted;
//! - sender domains: at most 10,000 distinct; exposing chunks: at most
//!   [`HistoryOptions::max_chunks`] (default 1,000,000, 24 bytes each).

use super::subject;
#[path = "history_seen.rs"]
mod seen;
use crate::triage::severity::Thresholds;
use leakaudit_scanner::{exposure, Address, Envelope, Exposure, Org};
pub(crate) use seen::pair_date;
use seen::{Seen, MORE, TAG_MASK};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use xxhash_rust::xxh3::Xxh3Default;

const MAGIC: &[u8; 18] = b"LEAKAUDIT-HISTORY\0";
/// Bump when the file layout or the hashing changes; older files are refused.
/// 2: pairs carry the dates of their first messages (novelty is temporal).
/// 3: party, message, sender and subject hashes are XXH3-64, not SHA-256.
pub const HISTORY_VERSION: u32 = 3;
const MAX_DOMAINS: usize = 10_000;

/// Why a history file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a leakaudit history file", path.display())]
    NotHistory { path: PathBuf },
    #[error(
        "{}: history version {found}, this build reads version {expected} only: build the history again with this version",
        path.display()
    )]
    Version {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error("{}: corrupt history at byte {offset}: {reason}", path.display())]
    Corrupt {
        path: PathBuf,
        offset: usize,
        reason: &'static str,
    },
}

/// Bounds of the first pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryOptions {
    pub max_pairs: usize,
    pub max_pair_recipients: usize,
    pub max_chunks: usize,
}

impl Default for HistoryOptions {
    fn default() -> Self {
        HistoryOptions {
            // 2 Mi hash buckets hold 7/8 x 2 Mi entries: the largest cap at that table size.
            max_pairs: 1_800_000,
            max_pair_recipients: 50,
            max_chunks: 1_000_000,
        }
    }
}

/// One exposing message of a sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Chunk {
    date: Option<i64>,
    tag: u32,
    addresses: u32,
    subject: u64,
}

/// See the module documentation. Build with [`History::observe`] (one partial per thread,
/// then [`History::merge`]), then [`History::finish`].
#[derive(Debug, Clone, Default)]
pub struct History {
    opts: HistoryOptions,
    pairs: HashMap<u64, Seen, foldhash::fast::FixedState>,
    dropped_pairs: u64,
    messages: u64,
    sender_domains: HashMap<String, u64, foldhash::fast::FixedState>,
    /// Sender address hash -> its exposing chunks (sorted by date after `finish`).
    chunks: HashMap<u64, Vec<Chunk>>,
    n_chunks: usize,
    dropped_chunks: u64,
    /// Chunk lists sorted by date (set by `finish`, cleared by `observe`/`merge`).
    sorted: bool,
    /// The party hashes computed last (not part of the history).
    recent: RecentParties,
}

/// The two party hashes computed last, the older replaced first: nearly every message of a
/// journal has its recipient and its sender's party, and the sender's comes back with the
/// next message (hashing each party was a third of the history's time).
#[derive(Debug, Clone, Default)]
struct RecentParties {
    slots: [(String, u64); 2],
    /// The slot used last.
    last: usize,
}

impl RecentParties {
    fn hash(&mut self, party: &str) -> u64 {
        for i in 0..2 {
            let (p, h) = &self.slots[i];
            // An empty party key is not a valid party: an empty slot never matches one.
            if p == party && !p.is_empty() {
                self.last = i;
                return *h;
            }
        }
        let h = party_hash(party);
        let older = 1 - self.last;
        self.slots[older].0.clear();
        self.slots[older].0.push_str(party);
        self.slots[older].1 = h;
        self.last = older;
        h
    }
}

/// XXH3-64 of the length-prefixed parts: a specified hash, so a saved file means the same in
/// every build and on every platform (unlike std's or foldhash's hashers). Not SHA-256 any
/// more (version 3): hashing was a fifth of the history's time, and a cryptographic hash
/// bought nothing here: whoever could plant a colliding party in the archive could as well
/// plant a real message that makes the two parties acquainted.
fn h64(parts: &[&[u8]]) -> u64 {
    let mut h = Xxh3Default::new();
    for p in parts {
        h.update(&(p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.digest()
}

/// Stable hash of a party key.
pub(crate) fn party_hash(party: &str) -> u64 {
    h64(&[b"party", party.as_bytes()])
}

/// Order-independent combination of two party hashes (a splitmix64 finaliser of each order).
fn pair_of(a: u64, b: u64) -> u64 {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut z = lo ^ hi.rotate_left(29) ^ 0x9e37_79b9_7f4a_7c15;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Identity of a message for "seen in another message": Message-ID, else the header facts
/// a re-export keeps (Date, From, Subject, recipients). 31 bits (the top bit of a [`Seen`]'s
/// second tag is its "more" flag), never 0 (0 means no message).
pub fn message_tag(env: &Envelope) -> u32 {
    let h = match env.message_id.as_deref().map(str::trim) {
        Some(id) if !id.is_empty() => h64(&[b"mid", id.as_bytes()]),
        _ => {
            let from = env.from.first().map(|m| m.address.as_str()).unwrap_or("");
            let rc: Vec<&str> = env
                .recipients
                .iter()
                .map(|r| r.mailbox.address.as_str())
                .collect();
            h64(&[
                b"env",
                env.date_raw.as_deref().unwrap_or("").as_bytes(),
                from.as_bytes(),
                env.subject.as_deref().unwrap_or("").as_bytes(),
                rc.join(",").as_bytes(),
            ])
        }
    };
    ((h as u32) & TAG_MASK).max(1)
}

fn sender_hash(a: &Address) -> u64 {
    h64(&[b"sender", a.as_str().as_bytes()])
}

fn subject_hash(s: Option<&str>) -> u64 {
    h64(&[b"subject", subject::normalise(s.unwrap_or("")).as_bytes()])
}

/// The sender's party when it is one of the message's parties besides its audience (the
/// recipients' parties): not at a configured internal domain (in a journal, customers write
/// too) and not already in the audience.
fn message_sender_party<'e>(
    env: &'e Envelope,
    org: &Org,
    audience: &[leakaudit_scanner::PartyKey],
) -> Option<&'e str> {
    let s = env.from.first()?;
    if org.is_internal_domain(s.address.domain()) {
        return None;
    }
    let p = org.party_key(&s.address);
    (!audience.iter().any(|a| a.as_str() == p)).then_some(p)
}

/// What the history says about one exposing message's mailing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CampaignStats {
    /// Distinct exposing chunks of the mailing within the window, this one included.
    pub chunks: usize,
    /// Exposed addresses over those chunks.
    pub addresses: usize,
}

impl History {
    pub fn new(opts: HistoryOptions) -> History {
        History {
            opts,
            ..History::default()
        }
    }

    pub fn options(&self) -> HistoryOptions {
        self.opts
    }

    /// Messages observed.
    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// Distinct party pairs stored.
    pub fn pairs(&self) -> usize {
        self.pairs.len()
    }

    /// Pairs not stored because the cap was reached.
    pub fn dropped_pairs(&self) -> u64 {
        self.dropped_pairs
    }

    /// Records one message. `org` must be the one the engine will use.
    pub fn observe(&mut self, env: &Envelope, org: &Org) {
        self.observe_analysed(env, org, &exposure::analyse(env, org));
    }

    /// [`History::observe`] when the caller already has `exposure::analyse(env, org)` (a
    /// single-pass scan): the exposure model is not computed twice.
    pub fn observe_analysed(&mut self, env: &Envelope, org: &Org, x: &Exposure) {
        self.messages += 1;
        let sender = env.from.first().map(|m| &m.address);
        if let Some(s) = sender {
            let d = s.domain();
            if !d.is_empty() && !org.is_consumer(d) {
                let room = self.sender_domains.len() < MAX_DOMAINS;
                if let Some(c) = self.sender_domains.get_mut(d) {
                    *c += 1;
                } else if room {
                    self.sender_domains.insert(d.to_owned(), 1);
                }
            }
        }
        // Most messages have one external party: no pair, no chunk, no hashing at all.
        let mut tag = None;
        if env.recipients.len() <= self.opts.max_pair_recipients {
            // The parties (the audience, then the sender's) without a list of them, and their
            // hashes on the stack: two allocations per message of a journal otherwise.
            let audience = &x.audience_parties;
            let sender_party = message_sender_party(env, org, audience);
            let n = audience.len() + usize::from(sender_party.is_some());
            if n >= 2 {
                let t = *tag.get_or_insert_with(|| message_tag(env));
                let seen = Seen::new(pair_date(env.date), t);
                let mut stack = [0u64; 16];
                let mut heap = Vec::new();
                let hashes: &mut [u64] = if n <= stack.len() {
                    &mut stack[..n]
                } else {
                    heap.resize(n, 0);
                    &mut heap
                };
                let parties = audience.iter().map(|p| p.as_str()).chain(sender_party);
                for (h, p) in hashes.iter_mut().zip(parties) {
                    *h = self.recent.hash(p);
                }
                for i in 0..n {
                    for j in i + 1..n {
                        self.add_pair(pair_of(hashes[i], hashes[j]), seen);
                    }
                }
            }
        }
        if let (true, Some(s)) = (x.exposes(), sender) {
            self.add_chunk(
                sender_hash(s),
                Chunk {
                    date: env.date,
                    tag: tag.unwrap_or_else(|| message_tag(env)),
                    addresses: x.exposed.len().min(u32::MAX as usize) as u32,
                    subject: subject_hash(env.subject.as_deref()),
                },
            );
        }
    }

    fn add_pair(&mut self, pair: u64, seen: Seen) {
        if let Some(s) = self.pairs.get_mut(&pair) {
            s.merge(seen);
        } else if self.pairs.len() < self.opts.max_pairs {
            self.pairs.insert(pair, seen);
        } else {
            self.dropped_pairs += 1;
        }
    }

    fn add_chunk(&mut self, sender: u64, c: Chunk) {
        if self.n_chunks >= self.opts.max_chunks {
            self.dropped_chunks += 1;
            return;
        }
        self.n_chunks += 1;
        self.sorted = false;
        self.chunks.entry(sender).or_default().push(c);
    }

    /// Adds another partial history (another thread's share of the archive, or a saved run).
    pub fn merge(&mut self, other: History) {
        self.messages += other.messages;
        self.dropped_pairs += other.dropped_pairs;
        self.dropped_chunks += other.dropped_chunks;
        if self.pairs.is_empty() && self.pairs.capacity() < other.pairs.len() {
            self.pairs = other.pairs;
        } else {
            // Per pair the earliest messages win, whichever partial saw them.
            for (p, s) in other.pairs {
                self.add_pair(p, s);
            }
        }
        for (d, c) in other.sender_domains {
            let room = self.sender_domains.len() < MAX_DOMAINS;
            match self.sender_domains.get_mut(&d) {
                Some(n) => *n += c,
                None if room => {
                    self.sender_domains.insert(d, c);
                }
                None => {}
            }
        }
        for (s, list) in other.chunks {
            for c in list {
                self.add_chunk(s, c);
            }
        }
    }

    /// Sorts and deduplicates the chunk lists (a message observed twice, e.g. in a saved
    /// history and again). Call once after the last `observe`/`merge`.
    pub fn finish(&mut self) {
        let mut n = 0;
        for list in self.chunks.values_mut() {
            list.sort_by_key(|c| (c.date, c.tag));
            list.dedup_by_key(|c| c.tag);
            n += list.len();
        }
        self.n_chunks = n;
        self.sorted = true;
    }

    /// Whether two parties were *already* recipients together, or one wrote to the other,
    /// when the message tagged `tag` (see [`message_tag`]) dated `date` (epoch seconds) was
    /// sent: another message showed them strictly earlier (to the minute), or two other
    /// messages showed them at the same date; for an undated message, two other messages at
    /// any date. A repeat never hides the first exposure.
    pub fn shared(&self, a: &str, b: &str, tag: u32, date: Option<i64>) -> bool {
        self.shared_hashes(party_hash(a), party_hash(b), tag, pair_date(date))
    }

    /// [`History::shared`] with party hashes and a [`pair_date`].
    pub(crate) fn shared_hashes(&self, a: u64, b: u64, tag: u32, date: i32) -> bool {
        self.pairs
            .get(&pair_of(a, b))
            .is_some_and(|s| s.known_before(date, tag & TAG_MASK))
    }

    /// Minimum From count for a domain to be one of the organisation's: 1% of the messages,
    /// at least 3.
    fn org_domain_floor(&self) -> u64 {
        (self.messages / 100).max(3)
    }

    /// Whether `domain` (canonical) is the From domain of enough of the archive's messages.
    pub fn is_org_domain(&self, domain: &str) -> bool {
        self.sender_domains
            .get(domain)
            .is_some_and(|c| *c >= self.org_domain_floor())
    }

    /// The archive's own sender domains (>= 1% of messages, >= 3), most used first: the
    /// report suggests them as `internal_domains`.
    pub fn suggested_internal_domains(&self) -> Vec<(String, u64)> {
        let floor = self.org_domain_floor();
        let mut v: Vec<(String, u64)> = self
            .sender_domains
            .iter()
            .filter(|(_, c)| **c >= floor)
            .map(|(d, c)| (d.clone(), *c))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    }

    /// The archive's own sender domains that `org` does not count as internal: likely the
    /// organisation's other domains (subsidiaries), to add to `internal_domains`.
    pub fn unconfigured_sender_domains(&self, org: &Org) -> Vec<String> {
        let all: Vec<String> = self
            .suggested_internal_domains()
            .into_iter()
            .map(|(d, _)| d)
            .collect();
        // One sender domain is already internal in each of its messages (the From domain is);
        // a second one is external to the first's messages unless configured.
        if org.sender_domain_internal && all.len() < 2 {
            return Vec::new();
        }
        all.into_iter()
            .filter(|d| !org.is_internal_domain(d))
            .collect()
    }

    /// The mailing this exposing message belongs to: exposing chunks of the same sender within
    /// the window, with the same normalised subject, or (when this chunk exposes at least
    /// `variant_min_addresses`) large chunks with any subject within `variant_window_secs`
    /// (language variants).
    pub fn campaign(&self, env: &Envelope, exposed: usize, t: &Thresholds) -> CampaignStats {
        let tag = message_tag(env);
        // Distinct messages: a set, since a mass mailing can have thousands of chunks.
        let mut tags: std::collections::HashSet<u32, foldhash::fast::FixedState> =
            std::collections::HashSet::default();
        tags.insert(tag);
        let mut stats = CampaignStats {
            chunks: 1,
            addresses: exposed,
        };
        if let Some(s) = env.from.first() {
            let subj = subject_hash(env.subject.as_deref());
            let large = exposed >= t.variant_min_addresses;
            let near = |c: &Chunk, window: i64| match (c.date, env.date) {
                (Some(a), Some(b)) => (a - b).abs() <= window,
                (None, None) => true,
                _ => false,
            };
            let list: &[Chunk] = self
                .chunks
                .get(&sender_hash(&s.address))
                .map_or(&[], Vec::as_slice);
            // Sorted by date (undated first) after `finish`: only the window is visited.
            let reach = t.campaign_window_secs.max(t.variant_window_secs);
            let (from, to) = if !self.sorted {
                (0, list.len())
            } else if let Some(d) = env.date {
                let lo = d.saturating_sub(reach);
                let hi = d.saturating_add(reach);
                (
                    list.partition_point(|c| c.date.is_none_or(|x| x < lo)),
                    list.partition_point(|c| c.date.is_none_or(|x| x <= hi)),
                )
            } else {
                (0, list.partition_point(|c| c.date.is_none()))
            };
            for c in &list[from..to] {
                let same = (c.subject == subj && near(c, t.campaign_window_secs))
                    || (large
                        && c.addresses as usize >= t.variant_min_addresses
                        && near(c, t.variant_window_secs));
                if same && tags.insert(c.tag) {
                    stats.chunks += 1;
                    stats.addresses += c.addresses as usize;
                }
            }
        }
        stats
    }

    /// Writes the history (versioned binary, little-endian) atomically, mode 0600.
    pub fn save(&self, path: &Path) -> Result<(), HistoryError> {
        leakaudit_scanner::io::write_atomic(path, |w| self.write_to(w)).map_err(|source| {
            HistoryError::Io {
                path: path.to_path_buf(),
                source,
            }
        })
    }

    fn write_to(&self, w: &mut dyn Write) -> std::io::Result<()> {
        w.write_all(MAGIC)?;
        w.write_all(&HISTORY_VERSION.to_le_bytes())?;
        for n in [self.messages, self.dropped_pairs, self.dropped_chunks] {
            w.write_all(&n.to_le_bytes())?;
        }
        w.write_all(&(self.pairs.len() as u64).to_le_bytes())?;
        let mut pairs: Vec<(&u64, &Seen)> = self.pairs.iter().collect();
        pairs.sort_unstable_by_key(|(p, _)| **p);
        for (p, s) in pairs {
            w.write_all(&p.to_le_bytes())?;
            w.write_all(&s.d1.to_le_bytes())?;
            w.write_all(&s.d2.to_le_bytes())?;
            w.write_all(&s.t1.to_le_bytes())?;
            w.write_all(&s.t2.to_le_bytes())?;
        }
        let mut domains: Vec<(&String, &u64)> = self.sender_domains.iter().collect();
        domains.sort_unstable();
        w.write_all(&(domains.len() as u64).to_le_bytes())?;
        for (d, c) in domains {
            w.write_all(&(d.len() as u64).to_le_bytes())?;
            w.write_all(d.as_bytes())?;
            w.write_all(&c.to_le_bytes())?;
        }
        let mut senders: Vec<(&u64, &Vec<Chunk>)> = self.chunks.iter().collect();
        senders.sort_unstable_by_key(|(s, _)| **s);
        w.write_all(&(senders.len() as u64).to_le_bytes())?;
        for (s, list) in senders {
            w.write_all(&s.to_le_bytes())?;
            w.write_all(&(list.len() as u64).to_le_bytes())?;
            for c in list {
                w.write_all(&c.date.unwrap_or(i64::MIN).to_le_bytes())?;
                w.write_all(&c.tag.to_le_bytes())?;
                w.write_all(&c.addresses.to_le_bytes())?;
                w.write_all(&c.subject.to_le_bytes())?;
            }
        }
        Ok(())
    }

    /// The history at `path` when there is one (a run that is asked to keep a history starts
    /// without one the first time), with the default options.
    pub fn load_if_present(path: Option<&Path>) -> Result<Option<History>, HistoryError> {
        match path {
            Some(p) if p.exists() => History::load(p, HistoryOptions::default()).map(Some),
            _ => Ok(None),
        }
    }

    /// Reads a history written by [`History::save`] (any size: the caps bound growth, not
    /// what a file holds).
    pub fn load(path: &Path, opts: HistoryOptions) -> Result<History, HistoryError> {
        let bytes = std::fs::read(path).map_err(|source| HistoryError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut r = Reader {
            b: &bytes,
            pos: 0,
            path,
        };
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(HistoryError::NotHistory {
                path: path.to_path_buf(),
            });
        }
        r.pos = MAGIC.len();
        let version = r.u32()?;
        if version != HISTORY_VERSION {
            return Err(HistoryError::Version {
                path: path.to_path_buf(),
                found: version,
                expected: HISTORY_VERSION,
            });
        }
        let mut h = History::new(opts);
        h.messages = r.u64()?;
        h.dropped_pairs = r.u64()?;
        h.dropped_chunks = r.u64()?;
        let n = r.count(PAIR_RECORD)?;
        h.pairs.reserve(n);
        for _ in 0..n {
            let p = r.u64()?;
            let s = Seen {
                d1: r.u32()? as i32,
                d2: r.u32()? as i32,
                t1: r.u32()?,
                t2: r.u32()?,
            };
            if s.t1 == 0 || s.t1 & MORE != 0 {
                return Err(r.corrupt("pair without a message tag"));
            }
            h.pairs.insert(p, s);
        }
        let n = r.count(17)?;
        for _ in 0..n {
            let len = r.count(1)?;
            let d = std::str::from_utf8(r.take(len)?)
                .map_err(|_| r.corrupt("domain is not UTF-8"))?
                .to_owned();
            let c = r.u64()?;
            h.sender_domains.insert(d, c);
        }
        let n = r.count(16)?;
        for _ in 0..n {
            let s = r.u64()?;
            let m = r.count(24)?;
            let mut list = Vec::with_capacity(m);
            for _ in 0..m {
                let date = r.u64()? as i64;
                list.push(Chunk {
                    date: (date != i64::MIN).then_some(date),
                    tag: r.u32()?,
                    addresses: r.u32()?,
                    subject: r.u64()?,
                });
            }
            h.n_chunks += list.len();
            h.chunks.insert(s, list);
        }
        if r.pos != bytes.len() {
            return Err(r.corrupt("trailing bytes"));
        }
        h.finish();
        Ok(h)
    }
}

/// The first pass from the scanner's worker threads: `observe(&self)` records the message
/// in the partial history of the thread's shard (2 x cores shards, a thread always uses the
/// same one, so the locks rarely contend); [`HistoryBuilder::finish`] merges them. Peak
/// memory is bounded by (shards in use) x the cap of one partial, then one merged history.
#[derive(Debug)]
pub struct HistoryBuilder {
    opts: HistoryOptions,
    shards: Vec<std::sync::Mutex<History>>,
}

/// Shard of the current thread (threads numbered on first use).
fn shard_index(n: usize) -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static ID: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    ID.with(|id| *id % n)
}

impl Default for HistoryBuilder {
    fn default() -> Self {
        HistoryBuilder::new(HistoryOptions::default())
    }
}

impl HistoryBuilder {
    pub fn new(opts: HistoryOptions) -> HistoryBuilder {
        let n = std::thread::available_parallelism().map_or(4, |n| n.get() * 2);
        HistoryBuilder {
            opts,
            shards: (0..n)
                .map(|_| std::sync::Mutex::new(History::new(opts)))
                .collect(),
        }
    }

    /// Starts from a saved history (incremental run).
    pub fn from_history(h: History) -> HistoryBuilder {
        let b = HistoryBuilder::new(h.opts);
        *b.shards[0].lock().unwrap_or_else(|e| e.into_inner()) = h;
        b
    }

    pub fn observe(&self, env: &Envelope, org: &Org) {
        self.observe_analysed(env, org, &exposure::analyse(env, org));
    }

    /// See [`History::observe_analysed`].
    pub fn observe_analysed(&self, env: &Envelope, org: &Org, x: &Exposure) {
        let shard = &self.shards[shard_index(self.shards.len())];
        // A panic elsewhere cannot leave a partial half-updated: take the data anyway.
        shard
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .observe_analysed(env, org, x);
    }

    pub fn finish(self) -> History {
        let mut it = self
            .shards
            .into_iter()
            .map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()));
        let mut h = it.next().unwrap_or_else(|| History::new(self.opts));
        for p in it {
            h.merge(p);
        }
        h.finish();
        h
    }
}

/// Bytes of one pair in the file: hash, two dates, two tags.
const PAIR_RECORD: usize = 8 + 4 + 4 + 4 + 4;

struct Reader<'b> {
    b: &'b [u8],
    pos: usize,
    path: &'b Path,
}

impl<'b> Reader<'b> {
    fn corrupt(&self, reason: &'static str) -> HistoryError {
        HistoryError::Corrupt {
            path: self.path.to_path_buf(),
            offset: self.pos,
            reason,
        }
    }
    fn take(&mut self, n: usize) -> Result<&'b [u8], HistoryError> {
        if self.b.len() - self.pos < n {
            return Err(self.corrupt("file ends early"));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, HistoryError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4")))
    }
    fn u64(&mut self) -> Result<u64, HistoryError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8")))
    }
    /// A count of items of at least `item` bytes each: never more than the rest of the file
    /// can hold, so a corrupt count cannot make us allocate without bound.
    fn count(&mut self, item: usize) -> Result<usize, HistoryError> {
        let n = self.u64()?;
        let left = (self.b.len() - self.pos) as u64;
        if n > left / item as u64 {
            return Err(self.corrupt("count larger than the file"));
        }
        Ok(n as usize)
    }
}

#[cfg(test)]
#[path = "history_tests.rs"]
mod tests;
