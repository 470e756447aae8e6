//! `seed-phrase`: a run of 12 or more words from the BIP-39 list (a wallet recovery phrase).
//!
//! What: a cheap regex finds runs of at least `min_words` short lowercase words separated by
//! white space; only those runs are checked word by word against the list (`wordlist =
//! "bip39-english"`, shipped as `rules/bip39-english.txt`). The rule fires when `min_words`
//! consecutive words are all in the list. Ordinary prose rarely qualifies: it has capitals,
//! punctuation and words such as "the", "of", "to" that are not in the list.
//! Why: whoever reads a recovery phrase owns the wallet; it must never travel by mail.
//! Example: "abandon ability able about above absent absorb abstract absurd abuse access
//! accident" in a support reply.

use super::{Ctx, Hit};
use crate::allow::Allow;
use crate::content::Segment;
use crate::pack::{RawRule, Validator, BIP39_ENGLISH};
use regex::bytes::Regex;
use std::collections::HashSet;
use std::sync::{Arc, LazyLock};

static BIP39: LazyLock<Arc<HashSet<Vec<u8>>>> = LazyLock::new(|| {
    Arc::new(
        BIP39_ENGLISH
            .lines()
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .map(|w| w.as_bytes().to_vec())
            .collect(),
    )
});

#[derive(Debug, Clone)]
pub struct Params {
    pub min_words: usize,
    pub words: Arc<HashSet<Vec<u8>>>,
    pub run: Regex,
    pub min_recipients: usize,
}

pub(crate) fn from_raw(v: &mut Validator<'_>, raw: &RawRule) -> Option<Params> {
    let min_words = v.count(&raw.min_words, "min_words", 12, 3);
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
    let run = Regex::new(&format!(
        r"(?-u:\b)(?:[a-z]{{3,8}}[ \t\r\n]+){{{},}}[a-z]{{3,8}}(?-u:\b)",
        min_words - 1
    ))
    .expect("static shape");
    Some(Params {
        min_words,
        words,
        run,
        min_recipients: v.count(&raw.min_recipients, "min_recipients", 1, 1),
    })
}

/// Longest run of consecutive listed words in `text`: (start offset, length).
fn longest_run(p: &Params, text: &[u8]) -> (usize, usize) {
    let mut best = (0, 0);
    let mut cur_start = 0;
    let mut cur = 0;
    let mut pos = 0;
    for w in text.split(|b| b.is_ascii_whitespace()) {
        if !w.is_empty() {
            // Every listed word is 3 to 8 ASCII letters: skip the hash for anything else.
            let listed = (3..=8).contains(&w.len()) && p.words.contains(w);
            if listed {
                if cur == 0 {
                    cur_start = pos;
                }
                cur += 1;
                if cur > best.1 {
                    best = (cur_start, cur);
                }
            } else {
                cur = 0;
            }
        }
        pos += w.len() + 1;
    }
    best
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
        for m in p.run.find_iter(&seg.text).take(1000) {
            let (start, n) = longest_run(p, m.as_bytes());
            if n >= p.min_words && !allow.value_allowed(m.as_bytes()) {
                let first = m.as_bytes()[start..]
                    .split(|b| b.is_ascii_whitespace())
                    .next()
                    .unwrap_or_default();
                let first = String::from_utf8_lossy(first);
                return Some(Hit {
                    severity: None,
                    message: format!(
                        "{n} consecutive BIP-39 words (a wallet recovery phrase?) in {}",
                        seg.what
                    ),
                    evidence: format!("{n} words: {}", crate::redact::secret(&first, 2)),
                    raw_offset: seg.raw_offset.map(|o| o + m.start() + start),
                    ..Hit::default()
                });
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Params {
        let words = BIP39.clone();
        Params {
            min_words: 12,
            words,
            run: Regex::new(r"(?-u:\b)(?:[a-z]{3,8}[ \t\r\n]+){11,}[a-z]{3,8}(?-u:\b)").unwrap(),
            min_recipients: 1,
        }
    }

    #[test]
    fn wordlist_is_complete() {
        assert_eq!(BIP39.len(), 2048);
    }

    #[test]
    fn finds_runs_and_ignores_prose() {
        let p = params();
        let phrase = b"my words: abandon ability able about above absent absorb abstract absurd abuse access accident thanks";
        let m = p.run.find(phrase).unwrap();
        assert_eq!(longest_run(&p, m.as_bytes()).1, 12);
        let prose = b"we would like to invite you to our annual meeting which takes place next month in the city hall";
        let best = p
            .run
            .find_iter(prose)
            .map(|m| longest_run(&p, m.as_bytes()).1)
            .max()
            .unwrap_or(0);
        assert!(best < 12, "{best}");
    }
}
