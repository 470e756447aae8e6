//! `seed-phrase`: a BIP-39 wallet recovery phrase (12, 15, 18, 21 or 24 words of the list
//! whose last bits are the checksum of the rest).
//!
//! What: one pass splits the text at white space; a token counts as a word when it is 3 to 8
//! lowercase letters (optionally followed by `,` or `.`), and numbering such as `1.`, `2)` or
//! `12:` between words is skipped, so `1. abandon 2. ability ...` and one word per line are
//! read as one run. Only when 12 such words are in a row are they looked up in the list
//! (`wordlist = "bip39-english"`, `rules/bip39-english.txt`). For each maximal run of listed
//! words, the phrases of 12/15/18/21/24 words (at least `min_words`) at the start and at the
//! end of the run must pass the BIP-39 checksum (entropy bits, then the first ENT/32 bits of
//! SHA-256 of the entropy) and must not repeat words much (real phrases come from random
//! entropy: a run of a few repeated words is prose, or the public all-zero test vector).
//! Why: whoever reads a recovery phrase owns the wallet; it must never travel by mail. The
//! checksum is what tells a phrase from prose that happens to use listed words: a run of
//! list words passes it by chance once in 16 (12 words) to once in 256 (24 words), and the
//! repetition limit removes most of those.
//! Example: "scheme spot photo card baby mountain device kick cradle pact join borrow"
//! (a BIP-39 test vector) in a support reply.

use super::{Ctx, Hit};
use crate::allow::Allow;
use crate::content::Segment;
use crate::raw::{RawRule, Validator};
use std::sync::LazyLock;

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
        self.index_of(w).is_some()
    }

    /// The word's position in the list as given (duplicates and empty lines skipped).
    pub fn index_of(&self, w: &[u8]) -> Option<u16> {
        let k = key(w);
        let mut i = slot(k, self.mask);
        loop {
            let (sk, idx) = self.slots[i];
            if idx == 0 {
                return None;
            }
            if sk == k && self.words[idx as usize - 1] == w {
                return Some((idx - 1) as u16);
            }
            i = (i + 1) & self.mask;
        }
    }
}

static BIP39: LazyLock<WordSet> = LazyLock::new(|| {
    WordSet::new(
        BIP39_ENGLISH
            .lines()
            .map(str::trim)
            .filter(|w| !w.is_empty()),
    )
});

#[derive(Debug, Clone)]
pub struct Params {
    /// The fewest words a reported phrase has (12, the shortest BIP-39 phrase, by default).
    pub min_words: usize,
    /// Built on first use: `scan` builds the pack for its thresholds alone (~0.3 ms a run).
    pub words: &'static LazyLock<WordSet>,
    pub min_recipients: usize,
}

/// The parameters this kind accepts (a key of another kind is an error).
pub const KEYS: &[&str] = &["min_words", "wordlist", "min_recipients"];

pub(crate) fn from_raw(v: &mut Validator<'_>, raw: &RawRule) -> Option<Params> {
    let before = v.errors.len();
    let min_words = v.count_in(&raw.min_words, "min_words", 12, 12, MAX_PHRASE as i64);
    let words = match &raw.wordlist {
        None => Some(&BIP39),
        Some(w) if w.get_ref() == "bip39-english" => Some(&BIP39),
        Some(w) => {
            v.err(
                w.span(),
                format!(
                    "unknown wordlist `{}` (available: bip39-english)",
                    w.get_ref()
                ),
            );
            None
        }
    };
    let min_recipients = v.count(&raw.min_recipients, "min_recipients", 1, 1);
    if v.errors.len() != before {
        return None;
    }
    Some(Params {
        min_words,
        words: words?,
        min_recipients,
    })
}

/// BIP-39 phrase lengths; the longest is 24 words.
const PHRASE_LENGTHS: [usize; 5] = [12, 15, 18, 21, 24];
const MAX_PHRASE: usize = 24;

/// Words kept while a run grows: past this, the first ones are checked and dropped, keeping
/// the last `MAX_PHRASE` for the phrases that end the run.
const RUN_CAP: usize = 64;

/// Whether `idx` (word indices in the list) is a BIP-39 phrase: a valid length, the checksum,
/// and no more repeated words than random entropy plausibly gives (one per 8 words).
pub fn is_phrase(idx: &[u16]) -> bool {
    let n = idx.len();
    if !PHRASE_LENGTHS.contains(&n) || idx.iter().any(|&i| i >= 2048) {
        return false;
    }
    repeats(idx) <= n / 8 && checksum_ok(idx)
}

/// How many words repeat an earlier one.
fn repeats(idx: &[u16]) -> usize {
    let mut sorted = idx.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    idx.len() - sorted.len()
}

/// The BIP-39 checksum alone: 11 bits per word; the first 32*n/3 bits are the entropy, the
/// last n/3 bits must equal the first bits of SHA-256(entropy).
pub fn checksum_ok(idx: &[u16]) -> bool {
    use sha2::{Digest, Sha256};
    let n = idx.len();
    if !PHRASE_LENGTHS.contains(&n) {
        return false;
    }
    let mut bits = [0u8; 33];
    for (k, &i) in idx.iter().enumerate() {
        for b in 0..11 {
            if (i >> (10 - b)) & 1 == 1 {
                let pos = k * 11 + b;
                bits[pos / 8] |= 0x80 >> (pos % 8);
            }
        }
    }
    let ent_bytes = n * 11 * 32 / 33 / 8;
    let cs_bits = n / 3;
    let hash = Sha256::digest(&bits[..ent_bytes]);
    let mask = (0xFF00u16 >> cs_bits) as u8;
    (bits[ent_bytes] & mask) == (hash[0] & mask)
}

/// The phrase lengths a rule reports (at least `min_words`).
fn lengths(p: &Params) -> impl DoubleEndedIterator<Item = usize> + '_ {
    PHRASE_LENGTHS.into_iter().filter(|&l| l >= p.min_words)
}

/// In a maximal run of listed words (or its first/last part for a very long run), the first
/// phrase found: at its start when `head`, at its end when `tail`. Returns (index into
/// `run`, length).
fn phrase_in_run(
    p: &Params,
    text: &[u8],
    run: &[(u32, u32)],
    head: bool,
    tail: bool,
) -> Option<(usize, usize)> {
    let idx: Vec<u16> = run
        .iter()
        .map(|&(s, e)| {
            p.words
                .index_of(&text[s as usize..e as usize])
                .unwrap_or(u16::MAX)
        })
        .collect();
    // The whole run is held to the same repetition limit as a phrase: a run of 15 words
    // drawn from 14 (the synthetic archive's sentences) has a 12-word window with a single
    // repeat often enough to pass the checksum now and then; the run as a whole does not.
    if head && tail && repeats(&idx) > idx.len() / 8 {
        return None;
    }
    // Longest first: the first 12 words of a 15-word phrase pass the checksum once in 16.
    for l in lengths(p).filter(|&l| l <= run.len()).rev() {
        if head && is_phrase(&idx[..l]) {
            return Some((0, l));
        }
        let at = run.len() - l;
        // When the slice starts the run, its first window was just checked.
        if tail && !(head && at == 0) && is_phrase(&idx[at..]) {
            return Some((at, l));
        }
    }
    None
}

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

/// Numbering between the words of a written-out phrase: 1-3 digits, then `.`, `)` or `:`
/// or nothing (`1.`, `12)`, `3`).
fn is_numbering(t: &[u8]) -> bool {
    let digits = t.iter().take_while(|b| b.is_ascii_digit()).count();
    (1..=3).contains(&digits)
        && (digits == t.len() || (digits + 1 == t.len() && matches!(t[digits], b'.' | b')' | b':')))
}

/// Maximal runs of listed words: the tokens in a row that are well shaped, how many of the
/// last ones are known to be listed, and whether they already form a run of `need`.
struct Runner<'w> {
    words: &'w WordSet,
    need: usize,
    win: [(u32, u32); RUN_CAP],
    len: usize,
    verified: usize,
    in_run: bool,
    /// The run's first words were dropped (it outgrew `RUN_CAP`).
    cut: bool,
}

/// What the runner hands out: a run (or part of one), whether it starts the run and whether
/// it ends it. The callback returns `Some` to stop the scan.
type OnRun<'f, T> = &'f mut dyn FnMut(&[(u32, u32)], bool, bool) -> Option<T>;

impl Runner<'_> {
    fn close<T>(&mut self, f: OnRun<'_, T>) -> Option<T> {
        let out = if self.in_run {
            f(&self.win[..self.len], !self.cut, true)
        } else {
            None
        };
        self.len = 0;
        self.verified = 0;
        self.in_run = false;
        self.cut = false;
        out
    }

    fn word_then_close<T>(
        &mut self,
        text: &[u8],
        s: usize,
        e: usize,
        f: OnRun<'_, T>,
    ) -> Option<T> {
        if let Some(hit) = self.token(text, s, e, false, f) {
            return Some(hit);
        }
        self.close(f)
    }

    /// One token `text[s..e]` (`bad`: it holds a byte that is not a lowercase letter).
    #[inline]
    fn token<T>(
        &mut self,
        text: &[u8],
        s: usize,
        mut e: usize,
        bad: bool,
        f: OnRun<'_, T>,
    ) -> Option<T> {
        if bad {
            // Rare shapes are only examined for tokens that already failed the fast test.
            let t = &text[s..e];
            if t.len() <= 4 && is_numbering(t) {
                return None;
            }
            let ok_punct = (4..=9).contains(&t.len())
                && matches!(t[t.len() - 1], b',' | b'.')
                && t[..t.len() - 1].iter().all(u8::is_ascii_lowercase);
            if !ok_punct {
                return self.close(f);
            }
            e -= 1;
            if text[e] == b'.' {
                // A full stop ends the sentence, and the run with it: sentences of listed
                // words are not joined into one long run.
                return self.word_then_close(text, s, e, f);
            }
        } else if !(3..=8).contains(&(e - s)) {
            return self.close(f);
        }
        if self.in_run {
            if !self.words.contains(&text[s..e]) {
                return self.close(f);
            }
            if self.len == RUN_CAP {
                let out = f(&self.win[..self.len], !self.cut, false);
                if out.is_some() {
                    return out;
                }
                self.win.copy_within(RUN_CAP - MAX_PHRASE.., 0);
                self.len = MAX_PHRASE;
                self.cut = true;
            }
            self.win[self.len] = (s as u32, e as u32);
            self.len += 1;
            return None;
        }
        self.win[self.len] = (s as u32, e as u32);
        self.len += 1;
        if self.len < self.need {
            return None;
        }
        // From the last one backwards: a miss discards everything before it, and the words
        // after it stay verified, so most tokens of ordinary text are never looked up.
        let mut miss = None;
        for k in (self.verified..self.len).rev() {
            let (s, e) = self.win[k];
            if !self.words.contains(&text[s as usize..e as usize]) {
                miss = Some(k);
                break;
            }
        }
        match miss {
            None => self.in_run = true,
            Some(k) => {
                self.win.copy_within(k + 1..self.len, 0);
                self.len -= k + 1;
                self.verified = self.len;
            }
        }
        None
    }
}

/// Scans `text` for maximal runs of at least `need` listed words and hands each to `f`
/// (with whether the slice starts and ends the run; a run longer than `RUN_CAP` comes in
/// parts). Stops at the first `Some` from `f`.
///
/// One pass, 64 bytes at a time: white space and lowercase letters become bit masks (SIMD),
/// and tokens are found from the mask's transitions, so the cost per byte does not depend on
/// the words' lengths (a byte-by-byte tokenizer mispredicted a branch at every word end and
/// made this rule most of `check`'s time). A token that is not 3-8 lowercase letters ends the
/// run without a lookup; only when `need` well-shaped tokens are in a row are they looked up.
fn scan_runs<T>(words: &WordSet, need: usize, text: &[u8], f: OnRun<'_, T>) -> Option<T> {
    let n = text.len().min(u32::MAX as usize);
    let mut r = Runner {
        words,
        need: need.clamp(1, RUN_CAP),
        win: [(0, 0); RUN_CAP],
        len: 0,
        verified: 0,
        in_run: false,
        cut: false,
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
                if let Some(hit) = r.token(text, tok_start, base + k as usize, is_bad, f) {
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
        if let Some(hit) = r.token(text, tok_start, n, tok_bad, f) {
            return Some(hit);
        }
    }
    r.close(f)
}

/// The first BIP-39 phrase in `text`: (byte offset, end of its first word, word count).
fn find_phrase(p: &Params, text: &[u8]) -> Option<(usize, usize, usize)> {
    let need = lengths(p).next()?;
    scan_runs(p.words, need, text, &mut |run, head, tail| {
        let (at, l) = phrase_in_run(p, text, run, head, tail)?;
        let (s, e) = run[at];
        Some((s as usize, e as usize, l))
    })
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
        while let Some((start, first_end, words)) = find_phrase(p, &seg.text[from..]) {
            let (start, first_end) = (from + start, from + first_end);
            let run_text = &seg.text[start..];
            if !allow.value_allowed(run_text) {
                let first = String::from_utf8_lossy(&seg.text[start..first_end]);
                return Some(Hit {
                    severity: None,
                    message: format!(
                        "a {words}-word BIP-39 recovery phrase (valid checksum) in {}",
                        seg.what
                    ),
                    evidence: format!("{words} words: {}", crate::redact::secret(&first, 2)),
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
    use sha2::{Digest, Sha256};

    fn params() -> Params {
        Params {
            min_words: 12,
            words: &BIP39,
            min_recipients: 1,
        }
    }

    fn list() -> Vec<&'static str> {
        BIP39_ENGLISH.lines().map(str::trim).collect()
    }

    /// BIP-39 from the specification: entropy, then the first ENT/32 bits of its SHA-256,
    /// cut into 11-bit word indices.
    fn mnemonic(entropy: &[u8]) -> Vec<u16> {
        let hash = Sha256::digest(entropy);
        let mut bits: Vec<bool> = entropy
            .iter()
            .flat_map(|b| (0..8).map(move |k| (b >> (7 - k)) & 1 == 1))
            .collect();
        let cs = entropy.len() * 8 / 32;
        bits.extend((0..cs).map(|k| (hash[0] >> (7 - k)) & 1 == 1));
        bits.chunks(11)
            .map(|c| c.iter().fold(0u16, |acc, &b| (acc << 1) | b as u16))
            .collect()
    }

    fn words(idx: &[u16], sep: &str) -> String {
        let l = list();
        idx.iter()
            .map(|&i| l[i as usize])
            .collect::<Vec<_>>()
            .join(sep)
    }

    /// Fixed pseudo-random entropy (xorshift), so the test phrases are the same every run.
    fn entropy(seed: u64, len: usize) -> Vec<u8> {
        let mut s = seed | 1;
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn wordlist_is_complete() {
        assert_eq!(BIP39.len(), 2048);
        for (i, w) in BIP39_ENGLISH.lines().enumerate() {
            assert_eq!(BIP39.index_of(w.as_bytes()), Some(i as u16), "{w}");
        }
        // Same first four letters, different word; prefixes; empty.
        for w in ["abandons", "aban", "ab", "", "zzzz", "the", "with"] {
            assert!(!BIP39.contains(w.as_bytes()), "{w}");
        }
    }

    #[test]
    fn generator_matches_the_official_vectors_and_they_pass_the_checksum() {
        let zero12 = mnemonic(&[0; 16]);
        assert_eq!(
            words(&zero12, " "),
            format!("{}about", "abandon ".repeat(11))
        );
        let zero24 = mnemonic(&[0; 32]);
        assert_eq!(words(&zero24, " "), format!("{}art", "abandon ".repeat(23)));
        let v = mnemonic(&hex::decode("9e885d952ad362caeb4efe34a8e91bd2").unwrap());
        assert_eq!(
            words(&v, " "),
            "ozone drill grab fiber curtain grace pudding thank cruise elder eight picnic"
        );
        for idx in [&zero12, &zero24, &v] {
            assert!(checksum_ok(idx));
        }
        // The all-zero vectors are one word repeated: public test data, not a wallet.
        assert!(!is_phrase(&zero12) && !is_phrase(&zero24));
        assert!(is_phrase(&v));
    }

    #[test]
    fn generated_phrases_are_found_in_every_layout() {
        let p = params();
        for (n, bytes) in [(12, 16), (15, 20), (18, 24), (21, 28), (24, 32)] {
            for seed in 1..=20u64 {
                let idx = mnemonic(&entropy(seed * 7919 + n as u64, bytes));
                assert_eq!(idx.len(), n);
                if !is_phrase(&idx) {
                    // A repeated word in a random phrase: rare, and allowed up to n/8 times.
                    continue;
                }
                let l = list();
                let numbered: Vec<String> = idx
                    .iter()
                    .enumerate()
                    .map(|(k, &i)| format!("{}. {}", k + 1, l[i as usize]))
                    .collect();
                let numbered_lines: Vec<String> = idx
                    .iter()
                    .enumerate()
                    .map(|(k, &i)| format!("{}) {}", k + 1, l[i as usize]))
                    .collect();
                for body in [
                    words(&idx, " "),
                    words(&idx, "\n"),
                    words(&idx, ", "),
                    numbered.join(" "),
                    numbered_lines.join("\r\n"),
                ] {
                    let text =
                        format!("Hello,\nYour recovery words are:\n\n{body}\n\nKeep them safe.\n");
                    let got = find_phrase(&p, text.as_bytes());
                    let first = l[idx[0] as usize];
                    let at = text
                        .find(&format!("\n{first}"))
                        .map(|i| i + 1)
                        .or_else(|| text.find(&format!(" {first}")).map(|i| i + 1))
                        .unwrap();
                    assert_eq!(got, Some((at, at + first.len(), n)), "{text:?}");
                }
            }
        }
    }

    #[test]
    fn a_wrong_checksum_word_is_not_a_phrase() {
        let p = params();
        for seed in 1..=50u64 {
            let mut idx = mnemonic(&entropy(seed, 16));
            // The lowest bit of the last word is checksum, not entropy.
            idx[11] ^= 1;
            assert!(!checksum_ok(&idx));
            assert_eq!(find_phrase(&p, words(&idx, " ").as_bytes()), None);
        }
    }

    #[test]
    fn prose_with_twelve_or_more_list_words_in_a_row_does_not_fire() {
        let p = params();
        // Every word of each line is on the list (12 or more in a row).
        let prose = [
            "you will find that this simple idea can help people save time",
            "you can have this little table today once you come over early",
            "best order account update best order account update best order account update",
            "order order order order order order order order order order order order order",
        ];
        for t in prose {
            assert!(runs(&BIP39, 12, t.as_bytes()).len() == 1, "{t}");
            assert_eq!(find_phrase(&p, t.as_bytes()), None, "{t}");
        }
        // The synthetic archive's false positives: sentences made of the listed words of
        // `gen_bench`'s vocabulary (14 words, and "now"), each a run of 15 listed words.
        // Without the checksum every one fires; with it, one in 32 would pass by chance;
        // the repetition limit leaves about one in 5,000 (a sentence that happens to use 14
        // different words of the 15).
        let vocab = [
            "order", "account", "update", "please", "find", "payment", "ticket", "best",
            "question", "about", "next", "project", "review", "balance",
        ];
        let mut s = 0x9E37_79B9_7F4A_7C15u64;
        let mut fired = 0;
        for _ in 0..5000 {
            let mut text = String::new();
            for _ in 0..14 {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                text.push_str(vocab[(s % vocab.len() as u64) as usize]);
                text.push(' ');
            }
            text.push_str("now.\n");
            assert_eq!(runs(&BIP39, 12, text.as_bytes()).len(), 1);
            fired += usize::from(find_phrase(&p, text.as_bytes()).is_some());
        }
        assert!(fired <= 3, "{fired} of 5000");
    }

    #[test]
    fn min_words_above_twelve_skips_shorter_phrases() {
        let idx = mnemonic(&entropy(3, 16));
        assert!(is_phrase(&idx));
        let text = words(&idx, " ");
        assert!(find_phrase(&params(), text.as_bytes()).is_some());
        let p = Params {
            min_words: 13,
            ..params()
        };
        assert_eq!(find_phrase(&p, text.as_bytes()), None);
    }

    #[test]
    fn a_phrase_at_the_end_of_a_longer_run_is_found() {
        let p = params();
        let idx = mnemonic(&entropy(11, 16));
        assert!(is_phrase(&idx));
        // Listed words before the phrase ("please review this"): the run's end is checked.
        let text = format!("please review this {}", words(&idx, " "));
        let l = list();
        let at = text.find(l[idx[0] as usize]).unwrap();
        assert_eq!(
            find_phrase(&p, text.as_bytes()).map(|h| (h.0, h.2)),
            Some((at, 12))
        );
        // And a phrase inside a run longer than the run buffer is still found at its end.
        let long = format!("{}{}", "zoo able ".repeat(40), words(&idx, " "));
        let at = long.len() - words(&idx, " ").len();
        assert_eq!(
            find_phrase(&p, long.as_bytes()).map(|h| (h.0, h.2)),
            Some((at, 12))
        );
    }

    #[test]
    fn fixtures_leaking_and_clean_side_by_side() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/rules");
        let pack = crate::pack::RulePack::builtin();
        let report = crate::fixtures::run(&pack, &dir, &crate::config::OrgConfig::default())
            .expect("fixtures folder");
        let mine: Vec<_> = report
            .fixtures
            .iter()
            .filter(|f| f.folder == "seed-phrase")
            .collect();
        assert!(mine.len() >= 8, "{mine:?}");
        for f in &mine {
            assert!(f.passed(), "{f:?}");
        }
        let leaking = mine.iter().filter(|f| !f.expected.is_empty()).count();
        assert!(leaking >= 3 && mine.len() - leaking >= 5, "{mine:?}");
    }

    fn is_ws(b: u8) -> bool {
        matches!(b, b' ' | b'\n' | b'\t' | b'\r')
    }

    /// Maximal runs of at least `need` listed words, by a plain tokenizer: the reference the
    /// bit-mask one must match. (start, end of first word, words).
    fn runs_reference(w: &WordSet, need: usize, text: &[u8]) -> Vec<(usize, usize, usize)> {
        let mut out = Vec::new();
        let mut run: Vec<(usize, usize)> = Vec::new();
        let mut flush = |run: &mut Vec<(usize, usize)>| {
            if run.len() >= need {
                out.push((run[0].0, run[0].1, run.len()));
            }
            run.clear();
        };
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
            let t = &text[s..i];
            if is_numbering(t) {
                continue;
            }
            let core = match t.last() {
                Some(b',' | b'.') => &t[..t.len() - 1],
                _ => t,
            };
            if (3..=8).contains(&core.len())
                && core.iter().all(u8::is_ascii_lowercase)
                && w.contains(core)
            {
                run.push((s, s + core.len()));
                if t.ends_with(b".") {
                    flush(&mut run);
                }
            } else {
                flush(&mut run);
            }
        }
        flush(&mut run);
        out
    }

    fn runs(w: &WordSet, need: usize, text: &[u8]) -> Vec<(usize, usize, usize)> {
        let mut out = Vec::new();
        scan_runs::<()>(w, need, text, &mut |run, head, tail| {
            assert!(head && tail, "test runs fit the buffer");
            out.push((run[0].0 as usize, run[0].1 as usize, run.len()));
            None
        });
        out
    }

    #[test]
    fn bit_mask_tokenizer_matches_the_reference() {
        // Deterministic pseudo-random texts mixing listed words, unlisted ones, short and
        // long words, capitals, punctuation, numbering and runs of white space.
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
            "act,",
            "action",
            "actor",
            "zzzz",
            "x1",
            "1.",
            "12)",
            "3",
            "1234.",
            "access",
            "accident",
            "actual",
            "adapt",
            "add",
            "addict",
            "..",
        ];
        let seps: &[&str] = &[" ", " ", " ", "\n", "  ", "\t", "\r\n"];
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = |m: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % m as u64) as usize
        };
        for need in [3, 5, 12] {
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
                    runs(&BIP39, need, text.as_bytes()),
                    runs_reference(&BIP39, need, text.as_bytes()),
                    "need {need}: {text:?}"
                );
            }
        }
    }

    #[test]
    fn runs_across_block_boundaries_and_at_the_end() {
        // Every alignment of a run against the 64-byte blocks, with and without white space
        // after its last word (a token closed by the end of the text).
        let run =
            "abandon ability able about above absent absorb abstract absurd abuse access accident";
        for pad in 0..140 {
            for tail in ["", " ", "\n", ".", "s", "x"] {
                let text = format!("{}{run}{tail}", "x ".repeat(pad / 2) + &" ".repeat(pad % 2));
                let want = runs_reference(&BIP39, 12, text.as_bytes());
                assert_eq!(
                    want.len(),
                    usize::from(tail != "s" && tail != "x"),
                    "{text:?}"
                );
                assert_eq!(runs(&BIP39, 12, text.as_bytes()), want, "{text:?}");
            }
        }
    }
}
