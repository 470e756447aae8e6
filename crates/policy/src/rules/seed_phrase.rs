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

use super::raw::{RawRule, Validator};
use super::{Ctx, Hit};
use crate::allow::Allow;
use crate::content::Segment;
use std::sync::{Arc, LazyLock};

/// The BIP-39 English word list (2,048 words, in index order).
pub const BIP39_ENGLISH: &str = include_str!("../../../../rules/bip39-english.txt");

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

/// The parameters this kind accepts (a key of another kind is an error).
pub const KEYS: &[&str] = &["min_words", "wordlist", "min_recipients"];

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

/// Most words a run may need (`min_words` is validated against it).
pub const MAX_MIN_WORDS: usize = 48;

#[inline]
fn class_masks(blk: &[u8; 64]) -> (u64, u64) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        let mut ws = 0u64;
        let mut low = 0u64;
        // SAFETY: SSE2 is part of the x86_64 baseline; loads are unaligned and in bounds.
        unsafe {
            let sp = _mm_set1_epi8(b' ' as i8);
            let nl = _mm_set1_epi8(b'\n' as i8);
            let tb = _mm_set1_epi8(b'\t' as i8);
            let cr = _mm_set1_epi8(b'\r' as i8);
            let bias = _mm_set1_epi8((0x80u8.wrapping_sub(b'a')) as i8);
            let lim = _mm_set1_epi8((-128i16 + 26) as i8);
            for q in 0..4 {
                let v = _mm_loadu_si128(blk.as_ptr().add(q * 16) as *const __m128i);
                let w = _mm_or_si128(
                    _mm_or_si128(_mm_cmpeq_epi8(v, sp), _mm_cmpeq_epi8(v, nl)),
                    _mm_or_si128(_mm_cmpeq_epi8(v, tb), _mm_cmpeq_epi8(v, cr)),
                );
                let l = _mm_cmplt_epi8(_mm_add_epi8(v, bias), lim);
                ws |= (_mm_movemask_epi8(w) as u16 as u64) << (q * 16);
                low |= (_mm_movemask_epi8(l) as u16 as u64) << (q * 16);
            }
        }
        (ws, low)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let mut ws = 0u64;
        let mut low = 0u64;
        for (k, &b) in blk.iter().enumerate() {
            let is_ws = (b == b' ') | (b == b'\n') | (b == b'\t') | (b == b'\r');
            ws |= (is_ws as u64) << k;
            low |= ((b.wrapping_sub(b'a') < 26) as u64) << k;
        }
        (ws, low)
    }
}

/// The run being built: the last tokens that are well-shaped, and how many of the last
/// ones are already known to be listed.
struct Runner<'p> {
    p: &'p Params,
    win: [(u32, u32); MAX_MIN_WORDS],
    len: usize,
    verified: usize,
}

impl Runner<'_> {
    /// One token `text[s..e]` (`bad`: it holds a byte that is not a lowercase letter).
    /// Returns the run when this token completes one.
    #[inline]
    fn token(&mut self, text: &[u8], s: usize, e: usize, bad: bool) -> Option<(usize, usize)> {
        if bad || !(3..=8).contains(&(e - s)) {
            self.len = 0;
            self.verified = 0;
            return None;
        }
        self.win[self.len] = (s as u32, e as u32);
        self.len += 1;
        if self.len < self.p.min_words {
            return None;
        }
        let mut miss = None;
        for k in (self.verified..self.len).rev() {
            let (s, e) = self.win[k];
            if !self.p.words.contains(&text[s as usize..e as usize]) {
                miss = Some(k);
                break;
            }
        }
        match miss {
            None => Some((self.win[0].0 as usize, self.win[0].1 as usize)),
            Some(k) => {
                self.win.copy_within(k + 1..self.len, 0);
                self.len -= k + 1;
                self.verified = self.len;
                None
            }
        }
    }
}

/// First run of `min_words` consecutive listed words: (byte offset, first word).
///
/// One pass, 64 bytes at a time: white space and lowercase letters become bit masks (SIMD),
/// and tokens are found from the mask's transitions, so the cost per byte does not depend on
/// the words' lengths (a byte-by-byte tokenizer mispredicted a branch at every word end and
/// made this rule most of `check`'s time). A token that is not 3-8 lowercase letters ends the
/// run without a lookup; only when `min_words` well-shaped tokens are in a row are they
/// looked up, from the last one backwards, so a miss discards everything before it and the
/// words after it stay verified: most tokens of ordinary text are never looked up.
fn find_run(p: &Params, text: &[u8]) -> Option<(usize, usize)> {
    let n = text.len().min(u32::MAX as usize);
    let mut r = Runner {
        p,
        win: [(0, 0); MAX_MIN_WORDS],
        len: 0,
        verified: 0,
    };
    // The open token: its start, whether it has a bad byte so far, and from which bit of
    // the current block its bad bytes are still to be checked.
    let mut tok_start = 0usize;
    let mut tok_bad = false;
    let mut from_bit = 0u32;
    let mut prev_nonws = 0u64;
    let mut base = 0usize;
    while base < n {
        let end = (base + 64).min(n);
        let (ws, low) = match text[base..end].try_into() {
            Ok(blk) => class_masks(blk),
            Err(_) => {
                // The last, partial block: padded with spaces, which close an open token.
                let mut blk = [b' '; 64];
                blk[..end - base].copy_from_slice(&text[base..end]);
                class_masks(&blk)
            }
        };
        let nonws = !ws;
        let bad = nonws & !low;
        let mut trans = nonws ^ ((nonws << 1) | prev_nonws);
        prev_nonws = nonws >> 63;
        while trans != 0 {
            let k = trans.trailing_zeros();
            trans &= trans - 1;
            if (nonws >> k) & 1 == 1 {
                tok_start = base + k as usize;
                tok_bad = false;
                from_bit = k;
            } else {
                // Bits from_bit..k of `bad` are this token's part in this block.
                let part = (bad >> from_bit) & ((1u64 << (k - from_bit)) - 1);
                let is_bad = tok_bad | (part != 0);
                if let Some(hit) = r.token(text, tok_start, base + k as usize, is_bad) {
                    return Some(hit);
                }
            }
        }
        if prev_nonws != 0 {
            // A token runs on into the next block.
            tok_bad |= (bad >> from_bit) != 0;
            from_bit = 0;
        }
        base = end;
    }
    if prev_nonws != 0 {
        return r.token(text, tok_start, n, tok_bad);
    }
    None
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

    fn is_ws(b: u8) -> bool {
        matches!(b, b' ' | b'\n' | b'\t' | b'\r')
    }

    /// A plain tokenizer: the reference the bit-mask one must match.
    fn find_run_reference(p: &Params, text: &[u8]) -> Option<(usize, usize)> {
        let toks: Vec<(usize, usize)> = {
            let mut v = Vec::new();
            let mut i = 0;
            while i < text.len() {
                if is_ws(text[i]) {
                    i += 1;
                    continue;
                }
                let s = i;
                while i < text.len() && !is_ws(text[i]) {
                    i += 1;
                }
                v.push((s, i));
            }
            v
        };
        let ok = |&(s, e): &(usize, usize)| {
            (3..=8).contains(&(e - s))
                && text[s..e].iter().all(u8::is_ascii_lowercase)
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
    fn bit_mask_tokenizer_matches_the_reference() {
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
    fn runs_across_block_boundaries_and_at_the_end() {
        // Every alignment of the phrase against the 64-byte blocks, with and without white
        // space after its last word (a token closed by the end of the text).
        let p = params();
        let phrase =
            "abandon ability able about above absent absorb abstract absurd abuse access accident";
        for pad in 0..140 {
            for tail in ["", " ", "\n", ".", "s"] {
                let text = format!(
                    "{}{phrase}{tail}",
                    "x ".repeat(pad / 2) + &" ".repeat(pad % 2)
                );
                let want = find_run_reference(&p, text.as_bytes());
                assert_eq!(want.is_some(), tail != "." && tail != "s", "{text:?}");
                assert_eq!(find_run(&p, text.as_bytes()), want, "{text:?}");
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
