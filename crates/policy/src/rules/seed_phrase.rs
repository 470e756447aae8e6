//! `seed-phrase`: a run of 12 or more words from the BIP-39 list (a wallet recovery phrase).
//!
//! What: one pass splits the text at white space; only when `min_words` (12) tokens of 3 to 8
//! lowercase letters are in a row are they looked up in the list (`wordlist =
//! "bip39-english"`, shipped as `rules/bip39-english.txt`), last first. The rule fires when
//! `min_words` consecutive words are all in the list. Ordinary prose rarely qualifies: it has capitals,
//! punctuation and words such as "the", "of", "to" that are not in the list.
//! Why: whoever reads a recovery phrase owns the wallet; it must never travel by mail.
//! Example: "abandon ability able about above absent absorb abstract absurd abuse access
//! accident" in a support reply.

use super::{Ctx, Hit};
use crate::allow::Allow;
use crate::content::Segment;
use crate::pack::{RawRule, Validator, BIP39_ENGLISH};
use std::sync::{Arc, LazyLock};

/// A word list with a lookup that costs one multiply, usually one probe and one compare:
/// open addressing on the first four letters. Word lookups are this rule's hot loop (every
/// candidate run of lowercase words is checked word by word).
#[derive(Debug)]
pub struct WordSet {
    /// (packed first four letters, index + 1); 0 = empty.
    slots: Vec<(u32, u32)>,
    words: Vec<Vec<u8>>,
    mask: usize,
}

fn key(w: &[u8]) -> u32 {
    let mut k = [0u8; 4];
    let n = w.len().min(4);
    k[..n].copy_from_slice(&w[..n]);
    u32::from_le_bytes(k)
}

fn slot(k: u32, mask: usize) -> usize {
    (k.wrapping_mul(0x9E37_79B1) >> 7) as usize & mask
}

impl WordSet {
    pub fn new<'a>(words: impl IntoIterator<Item = &'a str>) -> WordSet {
        let words: Vec<Vec<u8>> = words.into_iter().map(|w| w.as_bytes().to_vec()).collect();
        let cap = (words.len() * 4).next_power_of_two().max(16);
        let mut set = WordSet {
            slots: vec![(0, 0); cap],
            words: Vec::new(),
            mask: cap - 1,
        };
        for w in words {
            if !w.is_empty() && !set.contains(&w) {
                let k = key(&w);
                let mut i = slot(k, set.mask);
                while set.slots[i].1 != 0 {
                    i = (i + 1) & set.mask;
                }
                set.words.push(w);
                set.slots[i] = (k, set.words.len() as u32);
            }
        }
        set
    }

    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    pub fn contains(&self, w: &[u8]) -> bool {
        let k = key(w);
        let mut i = slot(k, self.mask);
        loop {
            let (sk, idx) = self.slots[i];
            if idx == 0 {
                return false;
            }
            if sk == k && self.words[idx as usize - 1] == w {
                return true;
            }
            i = (i + 1) & self.mask;
        }
    }
}

static BIP39: LazyLock<Arc<WordSet>> = LazyLock::new(|| {
    Arc::new(WordSet::new(
        BIP39_ENGLISH
            .lines()
            .map(str::trim)
            .filter(|w| !w.is_empty()),
    ))
});

#[derive(Debug, Clone)]
pub struct Params {
    pub min_words: usize,
    pub words: Arc<WordSet>,
    pub min_recipients: usize,
}

pub(crate) fn from_raw(v: &mut Validator<'_>, raw: &RawRule) -> Option<Params> {
    let min_words = v.count(&raw.min_words, "min_words", 12, 3);
    if min_words > MAX_MIN_WORDS {
        if let Some(m) = &raw.min_words {
            v.err(
                m.span(),
                format!("`min_words` must be at most {MAX_MIN_WORDS}"),
            );
        }
        return None;
    }
    let words = match &raw.wordlist {
        None => BIP39.clone(),
        Some(w) if w.get_ref() == "bip39-english" => BIP39.clone(),
        Some(w) => {
            v.err(
                w.span(),
                format!(
                    "unknown wordlist `{}` (available: bip39-english)",
                    w.get_ref()
                ),
            );
            return None;
        }
    };
    Some(Params {
        min_words,
        words,
        min_recipients: v.count(&raw.min_recipients, "min_recipients", 1, 1),
    })
}

const WS: u8 = 1;
const LOWER: u8 = 2;

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    t[b' ' as usize] = WS;
    t[b'\t' as usize] = WS;
    t[b'\r' as usize] = WS;
    t[b'\n' as usize] = WS;
    let mut c = b'a';
    while c <= b'z' {
        t[c as usize] = LOWER;
        c += 1;
    }
    t
};

/// Most words a run may need (`min_words` is validated against it).
pub const MAX_MIN_WORDS: usize = 48;

/// First run of `min_words` consecutive listed words: (byte offset, first word).
///
/// One pass: tokens are split at white space; a token that is not 3-8 lowercase letters
/// ends the run without a lookup. Only when `min_words` well-shaped tokens are in a row are
/// they looked up, from the last one backwards, so a miss discards everything before it and
/// the words after it stay verified: most tokens of ordinary text are never looked up.
fn find_run(p: &Params, text: &[u8]) -> Option<(usize, usize)> {
    let need = p.min_words;
    // Shortest possible run: `need` tokens of 3 letters and one separator between each two.
    let span = need * 4 - 1;
    let mut win = [(0u32, 0u32); MAX_MIN_WORDS];
    let mut len = 0usize;
    let mut verified = 0usize;
    let mut i = 0usize;
    let n = text.len().min(u32::MAX as usize);
    while i < n {
        if len == 0 {
            // No run in progress (`i` is at a token boundary): jump over text that cannot
            // hold one. This is what keeps the rule cheap on ordinary prose.
            i = skip_to_candidate(text, i, n, span);
            if i >= n {
                break;
            }
        }
        if CLASS[text[i] as usize] == WS {
            i += 1;
            continue;
        }
        let start = i;
        i = text[start..n]
            .iter()
            .position(|&b| CLASS[b as usize] == WS)
            .map_or(n, |p| start + p);
        let tok = &text[start..i];
        if !(3..=8).contains(&tok.len()) || !tok.iter().all(|&b| CLASS[b as usize] == LOWER) {
            len = 0;
            verified = 0;
            continue;
        }
        win[len] = (start as u32, i as u32);
        len += 1;
        if len < need {
            continue;
        }
        let mut miss = None;
        for k in (verified..len).rev() {
            let (s, e) = win[k];
            if !p.words.contains(&text[s as usize..e as usize]) {
                miss = Some(k);
                break;
            }
        }
        match miss {
            None => return Some((win[0].0 as usize, win[0].1 as usize)),
            Some(k) => {
                win.copy_within(k + 1..len, 0);
                len -= k + 1;
                verified = len;
            }
        }
    }
    None
}

/// Smallest position `>= i` (at a token boundary) where a run could start, or `n`.
///
/// Boyer-Moore-like: a run covers at least `span` bytes from its start, so the window
/// `[i, i + span)` is scanned backwards for the last byte that no run can contain (not a
/// lowercase letter nor white space, the ninth letter of a token, a whole token of one or
/// two letters); a run must start after it, so the scan jumps there without looking at the
/// bytes in between. Only a window with no such byte is handed to the exact tokenizer.
/// `i` must be at a token boundary (0, or just after white space or a token's end).
fn skip_to_candidate(text: &[u8], mut i: usize, n: usize, span: usize) -> usize {
    loop {
        if i + span > n {
            return n;
        }
        let mut j = i + span;
        // Letters seen since the last white space (going backwards), and whether a white
        // space closes them on the right inside the window (a whole token).
        let mut letters = 0usize;
        let mut closed = false;
        let mut breaker = None;
        while j > i {
            j -= 1;
            match CLASS[text[j] as usize] {
                WS => {
                    if closed && (1..=2).contains(&letters) {
                        // A whole one- or two-letter token at j + 1.
                        breaker = Some(j + 1);
                        break;
                    }
                    letters = 0;
                    closed = true;
                }
                LOWER => {
                    letters += 1;
                    if letters > 8 {
                        breaker = Some(j);
                        break;
                    }
                }
                _ => {
                    breaker = Some(j);
                    break;
                }
            }
        }
        let Some(b) = breaker else {
            return i;
        };
        // Resume at the next token boundary after the breaker.
        i = b + 1;
        while i < n && CLASS[text[i] as usize] != WS {
            i += 1;
        }
    }
}

pub fn check(
    p: &Params,
    allow: &Allow,
    ctx: &Ctx<'_, '_>,
    segments: &[Segment<'_>],
) -> Option<Hit> {
    if super::content_regex::recipient_count(ctx) < p.min_recipients {
        return None;
    }
    for seg in segments {
        let mut from = 0;
        while let Some((start, first_end)) = find_run(p, &seg.text[from..]) {
            let (start, first_end) = (from + start, from + first_end);
            let run_text = &seg.text[start..];
            if !allow.value_allowed(run_text) {
                let first = String::from_utf8_lossy(&seg.text[start..first_end]);
                return Some(Hit {
                    severity: None,
                    message: format!(
                        "{} consecutive BIP-39 words (a wallet recovery phrase?) in {}",
                        p.min_words, seg.what
                    ),
                    evidence: format!(
                        "{} words: {}",
                        p.min_words,
                        crate::redact::secret(&first, 2)
                    ),
                    raw_offset: seg.raw_offset.map(|o| o + start),
                    ..Hit::default()
                });
            }
            from = first_end;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Params {
        Params {
            min_words: 12,
            words: BIP39.clone(),
            min_recipients: 1,
        }
    }

    #[test]
    fn wordlist_is_complete() {
        assert_eq!(BIP39.len(), 2048);
        for w in BIP39_ENGLISH.lines() {
            assert!(BIP39.contains(w.as_bytes()), "{w}");
        }
        // Same first four letters, different word; prefixes; empty.
        for w in ["abandons", "aban", "ab", "", "zzzz", "the", "with"] {
            assert!(!BIP39.contains(w.as_bytes()), "{w}");
        }
    }

    /// The tokenizer without `skip_to_candidate`: the reference the fast path must match.
    fn find_run_reference(p: &Params, text: &[u8]) -> Option<(usize, usize)> {
        let toks: Vec<(usize, usize)> = {
            let mut v = Vec::new();
            let mut i = 0;
            while i < text.len() {
                if CLASS[text[i] as usize] == WS {
                    i += 1;
                    continue;
                }
                let s = i;
                while i < text.len() && CLASS[text[i] as usize] != WS {
                    i += 1;
                }
                v.push((s, i));
            }
            v
        };
        let ok = |&(s, e): &(usize, usize)| {
            (3..=8).contains(&(e - s))
                && text[s..e].iter().all(|&b| CLASS[b as usize] == LOWER)
                && p.words.contains(&text[s..e])
        };
        let mut run = 0;
        for (k, t) in toks.iter().enumerate() {
            run = if ok(t) { run + 1 } else { 0 };
            if run == p.min_words {
                return Some(toks[k + 1 - p.min_words]);
            }
        }
        None
    }

    #[test]
    fn skipping_matches_the_reference() {
        // Deterministic pseudo-random texts mixing listed words, unlisted ones, short and
        // long words, capitals, punctuation and runs of white space.
        let pieces: &[&str] = &[
            "abandon",
            "ability",
            "able",
            "about",
            "above",
            "zoo",
            "wrap",
            "the",
            "we",
            "a",
            "of",
            "absolutely",
            "Abandon",
            "acid.",
            "act",
            "action",
            "actor",
            "zzzz",
            "x1",
            "access",
            "accident",
            "actual",
            "adapt",
            "add",
            "addict",
        ];
        let seps: &[&str] = &[" ", " ", " ", "\n", "  ", "\t", "\r\n"];
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = |m: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % m as u64) as usize
        };
        for min_words in [3, 5, 12] {
            let p = Params {
                min_words,
                ..params()
            };
            for _ in 0..3000 {
                let mut text = String::new();
                let bias = next(4); // how often a listed word is picked
                for _ in 0..next(60) {
                    let w = if next(4) < bias {
                        pieces[next(7)]
                    } else {
                        pieces[next(pieces.len())]
                    };
                    text.push_str(w);
                    text.push_str(seps[next(seps.len())]);
                }
                assert_eq!(
                    find_run(&p, text.as_bytes()),
                    find_run_reference(&p, text.as_bytes()),
                    "min_words {min_words}: {text:?}"
                );
            }
        }
    }

    #[test]
    fn finds_runs_and_ignores_prose() {
        let p = params();
        let phrase = b"my words: abandon ability able about above absent absorb abstract absurd abuse access accident thanks";
        assert_eq!(find_run(&p, phrase), Some((10, 17)));
        // A non-listed word in the middle restarts the count; the words after it still count.
        let broken = b"abandon ability able about above absent zzzz absorb abstract absurd abuse access accident \
            acid acoustic acquire across act action actor";
        let (s, _) = find_run(&p, broken).unwrap();
        assert_eq!(&broken[s..s + 6], b"absorb");
        let prose = b"we would like to invite you to our annual meeting which takes place next month in the city hall";
        assert_eq!(find_run(&p, prose), None);
        // Eleven words are not enough; punctuation and capitals break a run.
        assert_eq!(
            find_run(
                &p,
                b"abandon ability able about above absent absorb abstract absurd abuse access"
            ),
            None
        );
        assert_eq!(find_run(&p, b"abandon ability able about above absent, absorb abstract absurd abuse access accident"), None);
        assert_eq!(find_run(&p, b"Abandon ability able about above absent absorb abstract absurd abuse access accident"), None);
    }
}
