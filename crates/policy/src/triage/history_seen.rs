//! The record of one party pair in the history: which messages showed it first, so that
//! novelty is temporal (a repeat of an exposure never hides the first one).

/// Tags are 31 bits: the top bit of a [`Seen`]'s second tag is its "more" flag.
pub(super) const TAG_MASK: u32 = 0x7fff_ffff;
pub(super) const MORE: u32 = 0x8000_0000;
/// Date of an undated message: after every dated one, so it is never "earlier".
pub(super) const UNDATED: i32 = i32::MAX;

/// A message's date as stored with a pair: minutes since the epoch (i32 covers +-4,000
/// years, half the bytes of seconds); "the same minute" counts as the same date.
pub(crate) fn pair_date(date: Option<i64>) -> i32 {
    date.map_or(UNDATED, |d| {
        d.div_euclid(60).clamp(i32::MIN as i64, UNDATED as i64 - 1) as i32
    })
}

/// The messages that showed one party pair: the earliest date, up to two of the messages
/// of that date (the smallest tags) and whether there were more, and the next later date.
/// Enough to answer "shown by another message dated strictly earlier" and "shown by two
/// other messages of the same date" exactly for any message, and to merge partials in any
/// order with the same result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Seen {
    /// Earliest date (minutes, [`UNDATED`] when only undated messages showed the pair).
    pub(super) d1: i32,
    /// Earliest date after `d1` ([`UNDATED`] when none, or only undated ones).
    pub(super) d2: i32,
    /// Smallest tag among the messages dated `d1`.
    pub(super) t1: u32,
    /// Next tag at `d1` (0: none); top bit ([`MORE`]): a third message is dated `d1`.
    pub(super) t2: u32,
}

impl Seen {
    pub(super) fn new(date: i32, tag: u32) -> Seen {
        Seen {
            d1: date,
            d2: UNDATED,
            t1: tag,
            t2: 0,
        }
    }

    pub(super) fn more(&self) -> bool {
        self.t2 & MORE != 0
    }

    /// The stored tags of the earliest date.
    fn first_tags(&self) -> impl Iterator<Item = u32> {
        [self.t1, self.t2 & TAG_MASK]
            .into_iter()
            .filter(|t| *t != 0)
    }

    /// Whether every message of `o`'s earliest date is one of ours (copies of a message:
    /// a later copy of the same message is no later date of the pair).
    fn covers(&self, o: &Seen) -> bool {
        !o.more() && o.first_tags().all(|t| self.first_tags().any(|x| x == t))
    }

    /// Adds another record of the same pair (one message, another partial, a saved run).
    /// Called per pair of every observed message: no allocation.
    pub(super) fn merge(&mut self, o: Seen) {
        let d2 = self.d2.min(o.d2);
        match self.d1.cmp(&o.d1) {
            std::cmp::Ordering::Less => {
                self.d2 = if self.covers(&o) { d2 } else { d2.min(o.d1) };
            }
            std::cmp::Ordering::Greater => {
                let old = std::mem::replace(self, o);
                self.d2 = if self.covers(&old) {
                    d2
                } else {
                    d2.min(old.d1)
                };
            }
            std::cmp::Ordering::Equal => {
                let mut tags = [self.t1, self.t2 & TAG_MASK, o.t1, o.t2 & TAG_MASK];
                tags.sort_unstable();
                let mut uniq = [0u32; 4];
                let mut n = 0;
                for t in tags.into_iter().filter(|t| *t != 0) {
                    if n == 0 || uniq[n - 1] != t {
                        uniq[n] = t;
                        n += 1;
                    }
                }
                let more = self.more() || o.more() || n > 2;
                self.t1 = uniq[0];
                self.t2 = uniq[1] | if more { MORE } else { 0 };
                self.d2 = d2;
            }
        }
    }

    /// Whether a message other than `tag` showed the pair before `date` (strictly earlier),
    /// or two other messages showed it at the same date; for an undated message, two other
    /// messages (at most one of them undated is counted). So the first of two copies is
    /// never hidden by the second.
    pub(super) fn known_before(&self, date: i32, tag: u32) -> bool {
        // A third message at the earliest date: two others whichever one this is.
        let others_first =
            self.first_tags().filter(|t| *t != tag).count() + if self.more() { 2 } else { 0 };
        if date == UNDATED {
            let later = usize::from(self.d1 != UNDATED && self.d2 != UNDATED);
            return others_first + later >= 2;
        }
        match self.d1.cmp(&date) {
            std::cmp::Ordering::Less => others_first > 0 || self.d2 < date,
            std::cmp::Ordering::Equal => others_first >= 2,
            std::cmp::Ordering::Greater => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_merges_to_the_same_record_in_any_order() {
        let entries = [
            (50, 5),
            (10, 3),
            (30, 4),
            (10, 1),
            (10, 3),
            (20, 2),
            (UNDATED, 9),
            (10, 7),
        ];
        let fold = |it: &mut dyn Iterator<Item = &(i32, u32)>| {
            let mut s: Option<Seen> = None;
            for (d, t) in it {
                match s.as_mut() {
                    Some(s) => s.merge(Seen::new(*d, *t)),
                    None => s = Some(Seen::new(*d, *t)),
                }
            }
            s.unwrap()
        };
        let fwd = fold(&mut entries.iter());
        let rev = fold(&mut entries.iter().rev());
        assert_eq!(fwd, rev);
        // Partials merged: same record.
        let mut a = fold(&mut entries[..3].iter());
        a.merge(fold(&mut entries[3..].iter()));
        assert_eq!(a, fwd);
        assert_eq!((fwd.d1, fwd.d2, fwd.t1, fwd.t2 & TAG_MASK), (10, 20, 1, 3));
        assert!(fwd.more());
        // Three messages at minute 10: each has two others; at 20 the pair is known.
        assert!(fwd.known_before(10, 1) && fwd.known_before(10, 7));
        assert!(fwd.known_before(11, 5) && !fwd.known_before(9, 2));
        // A later copy of the same message (same tag, other date) is no evidence for itself.
        let mut s = Seen::new(40, 4);
        s.merge(Seen::new(30, 4));
        assert_eq!((s.d1, s.d2), (30, UNDATED));
        assert!(!s.known_before(40, 4) && s.known_before(40, 8));
        let mut s = Seen::new(30, 4);
        s.merge(Seen::new(40, 4));
        assert!(!s.known_before(50, 4));
        // Two messages at one date: neither sees the other as history.
        let mut s = Seen::new(30, 4);
        s.merge(Seen::new(30, 6));
        assert!(!s.known_before(30, 4) && !s.known_before(30, 6) && s.known_before(31, 6));
        // Undated: two others, at most one of them undated.
        let mut s = Seen::new(UNDATED, 4);
        s.merge(Seen::new(UNDATED, 6));
        assert!(!s.known_before(UNDATED, 4) && s.known_before(UNDATED, 8));
        let mut s = Seen::new(30, 4);
        s.merge(Seen::new(UNDATED, 6));
        assert!(!s.known_before(UNDATED, 6) && !s.known_before(30, 4));
        s.merge(Seen::new(40, 5));
        assert!(s.known_before(UNDATED, 6));
    }

    /// The documented memory bound (8-byte hash + 16-byte `Seen` per bucket) holds.
    #[test]
    fn pair_entry_is_24_bytes() {
        assert_eq!(std::mem::size_of::<(u64, Seen)>(), 24);
        // The default cap fits a table of 2 Mi buckets (hashbrown fills 7/8 of them).
        assert!(super::super::HistoryOptions::default().max_pairs <= (2 << 20) / 8 * 7);
    }
}
