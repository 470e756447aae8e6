//! Unstructured values (Subject, Date, Message-ID) and RFC 2047 encoded words: bounded
//! decoding through mailparse, a fast path without `=?`, and repairs for what mailparse misses.

use super::{excerpt, RawField, Warnings, MAX_DECODE, MAX_WORDS};
use crate::model::HeaderWarningKind;

/// Longest encoded word the list splitter will look for (RFC 2047 says 75; senders exceed it).
const MAX_ENCODED_WORD: usize = 512;

/// The header bytes to hand to mailparse: the field itself when its value is valid UTF-8 and
/// not over `limit`, else a lossy/truncated copy in `scratch`.
pub(super) fn sanitized<'s>(
    field: &'s RawField<'_>,
    limit: usize,
    warn: &mut Warnings<'_>,
    scratch: &'s mut Vec<u8>,
) -> &'s [u8] {
    let value = &field.bytes[field.value_at..];
    let valid = std::str::from_utf8(value).is_ok();
    // Cut before the word that would make decoding quadratic.
    let limit = nth_word_start(value, MAX_WORDS).map_or(limit, |at| at.min(limit));
    if valid && value.len() <= limit {
        return field.bytes;
    }
    let name = String::from_utf8_lossy(field.name);
    let mut text = String::from_utf8_lossy(value).into_owned();
    if !valid {
        warn.push(HeaderWarningKind::InvalidUtf8, Some(&name), String::new);
    }
    if text.len() > limit {
        let mut cut = limit;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        warn.push(HeaderWarningKind::TruncatedValue, Some(&name), || {
            format!("{} bytes, truncated to {cut} bytes", value.len())
        });
        text.truncate(cut);
    }
    scratch.clear();
    scratch.extend_from_slice(b"X:");
    scratch.extend_from_slice(text.as_bytes());
    scratch
}

/// Byte offset of the `=?` after the first `n` ones, if there are more than `n`.
#[inline]
pub(super) fn nth_word_start(b: &[u8], n: usize) -> Option<usize> {
    word_starts(b).nth(n)
}

/// Offsets of the `=?` in `b` (where an encoded word can start), in order. `=` is rare in
/// header values: one SIMD search for it, not a two-byte substring search (Rabin-Karp on
/// short values, ~1% of a scan's instructions).
#[inline]
pub(super) fn word_starts(b: &[u8]) -> impl Iterator<Item = usize> + '_ {
    memchr::memchr_iter(b'=', b).filter(move |&i| b.get(i + 1) == Some(&b'?'))
}

/// Decoded (RFC 2047, unfolded) value of an unstructured field, trimmed.
pub(super) fn decoded_value(
    field: &RawField<'_>,
    warn: &mut Warnings<'_>,
    scratch: &mut Vec<u8>,
) -> String {
    let value = &field.bytes[field.value_at..];
    // Fast path: without `=?` there is nothing to decode, and unfolding is all get_value
    // would do (checked against mailparse by `unfold_matches_mailparse_get_value`).
    if value.len() <= MAX_DECODE && word_starts(value).next().is_none() {
        if let Ok(v) = std::str::from_utf8(value) {
            return unfold(v).trim().to_owned();
        }
    }
    let bytes = sanitized(field, MAX_DECODE, warn, scratch);
    let v = match mailparse::parse_header(bytes) {
        Ok((h, _)) => h.get_value(),
        Err(_) => String::new(),
    };
    let v = v.trim().to_owned();
    if has_encoded_word(&v) {
        let name = String::from_utf8_lossy(field.name);
        warn.push(HeaderWarningKind::UndecodableWord, Some(&name), || {
            excerpt(&v)
        });
    }
    v
}

/// Unfolds a header value the way mailparse's `get_value` does when there is no encoded
/// word: each continuation line loses its leading blanks and is joined with one space.
#[inline]
pub(super) fn unfold(v: &str) -> std::borrow::Cow<'_, str> {
    if !v.contains('\n') {
        return std::borrow::Cow::Borrowed(v.trim_end_matches('\r'));
    }
    let mut out = String::with_capacity(v.len());
    for (i, line) in v.lines().enumerate() {
        if i == 0 {
            out.push_str(line);
        } else {
            out.push(' ');
            out.push_str(line.trim_start());
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Whether `s` still contains something shaped like an RFC 2047 encoded word
/// (`=?charset?B|Q?text?=`), i.e. one mailparse could not decode.
#[inline]
pub(super) fn has_encoded_word(s: &str) -> bool {
    let b = s.as_bytes();
    word_starts(b).any(|i| encoded_word_end(b, i).is_some())
}

/// If an encoded word `=?charset?X?text?=` starts at `i`, the index just past its `?=`.
/// Bounded by [`MAX_ENCODED_WORD`] and by whitespace, so scanning a list stays linear.
#[inline]
pub(super) fn encoded_word_end(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'=') || b.get(i + 1) != Some(&b'?') {
        return None;
    }
    let limit = b.len().min(i + MAX_ENCODED_WORD);
    let mut j = i + 2;
    let cs = j;
    while j < limit && b[j] != b'?' && !b[j].is_ascii_whitespace() {
        j += 1;
    }
    if j == cs || j + 2 >= limit || b[j] != b'?' {
        return None;
    }
    if !matches!(b[j + 1], b'b' | b'B' | b'q' | b'Q') || b[j + 2] != b'?' {
        return None;
    }
    j += 3;
    while j + 1 < limit && !b[j].is_ascii_whitespace() {
        if b[j] == b'?' && b[j + 1] == b'=' {
            return Some(j + 2);
        }
        j += 1;
    }
    None
}
/// Decodes the encoded words mailparse left in a display name. mailparse checks the character
/// before `=?` by *character* index with a *byte* offset, so after raw UTF-8 (`Jörg
/// =?utf-8?q?M=C3=BCller?=`) it misses the word boundary and leaves the word undecoded. Each
/// whitespace-separated word is pure ASCII, so decoding it alone is correct; whitespace
/// between two encoded words is dropped (RFC 2047, 6.2).
pub(super) fn redecode(display: &str) -> String {
    let mut out = String::with_capacity(display.len());
    let mut prev_encoded = false;
    let mut buf = Vec::new();
    for (i, word) in display.split_whitespace().enumerate() {
        let is_word = word.is_ascii() && encoded_word_end(word.as_bytes(), 0) == Some(word.len());
        let decoded = if is_word {
            buf.clear();
            buf.extend_from_slice(b"X:");
            buf.extend_from_slice(word.as_bytes());
            mailparse::parse_header(&buf)
                .map(|(h, _)| h.get_value())
                .ok()
                .filter(|d| d != word)
        } else {
            None
        };
        if i > 0 && !(prev_encoded && decoded.is_some()) {
            out.push(' ');
        }
        prev_encoded = decoded.is_some();
        out.push_str(decoded.as_deref().unwrap_or(word));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::{addrs, parse, texts};
    use super::super::MAX_ITEM_WORDS;
    use super::*;
    use crate::model::HeaderWarning;
    use proptest::prelude::*;

    proptest! {
        /// The `=` search finds the `=?` a substring search finds.
        #[test]
        fn word_starts_are_the_substring_matches(b in proptest::collection::vec(
            proptest::sample::select(vec![b'=', b'?', b'a', b'\n']), 0..40)
        ) {
            let want: Vec<usize> = memchr::memmem::find_iter(&b, b"=?").collect();
            prop_assert_eq!(word_starts(&b).collect::<Vec<_>>(), want);
        }
    }

    #[test]
    fn adversarial_encoded_word_starts_stay_linear() {
        // 200 KB of `=?` in items of 1,000 bytes, in a Subject and in a To list: mailparse
        // alone would scan O(line) per `=?`.
        let item = "=?".repeat(500);
        let list = vec![item.as_str(); 100].join(",");
        let raw = format!(
            "Subject: {list}
To: {list}, ok@x.example

"
        );
        let e = parse(&raw);
        assert_eq!(addrs(&e), ["ok@x.example"]);
        assert!(e.subject.as_deref().unwrap().len() <= 2 * MAX_WORDS);
        assert!(texts(&e)
            .iter()
            .any(|w| w == "address item with over 16 encoded words in To: not decoded"));
        assert!(e.warnings.contains(&HeaderWarning::new(
            HeaderWarningKind::TooManyWords,
            Some("To"),
            format!("over {MAX_ITEM_WORDS} encoded words")
        )));
        // Unterminated brackets, quotes and comments: one pass each, no rescans.
        for junk in [
            "<".repeat(200_000),
            "\"".repeat(200_000),
            "(".repeat(200_000),
        ] {
            let e = parse(&format!("To: ok@x.example, {junk}\nCc: b@y.example\n\n"));
            assert_eq!(addrs(&e), ["ok@x.example", "b@y.example"]);
        }
        // A real name of several words still decodes.
        let e = parse(
            "To: =?utf-8?q?A?= =?utf-8?q?B?= =?utf-8?q?C?= =?utf-8?q?D?= =?utf-8?q?E?= <a@b.example>\n\n",
        );
        assert_eq!(e.recipients[0].mailbox.display.as_deref(), Some("ABCDE"));
    }

    #[test]
    fn encoded_word_after_raw_utf8_is_decoded() {
        let raw = "To: Jörg =?utf-8?q?M=C3=BCller?= =?utf-8?q?_jr?= <j@x.example>\n\n";
        // mailparse alone leaves the words undecoded (its boundary check mixes byte and
        // character offsets).
        let (h, _) = mailparse::parse_header(raw.as_bytes()).unwrap();
        let list = mailparse::addrparse_header(&h).unwrap();
        let mailparse::MailAddr::Single(s) = &list[0] else {
            panic!()
        };
        assert!(s.display_name.as_deref().unwrap().contains("=?utf-8?q?"));
        let e = parse(raw);
        assert_eq!(
            e.recipients[0].mailbox.display.as_deref(),
            Some("Jörg Müller jr")
        );
        assert!(e.warnings.is_empty(), "{:?}", e.warnings);
    }

    #[test]
    fn encoded_word_detection() {
        assert!(has_encoded_word("x =?utf-8?q?a?= y"));
        assert!(!has_encoded_word("=? not one ?="));
        assert!(!has_encoded_word("=?utf-8?x?a?="));
        assert_eq!(encoded_word_end(b"=?a?b?c?=d", 0), Some(9));
    }

    proptest! {
        #[test]
        fn unfold_matches_mailparse_get_value(
            parts in proptest::collection::vec("[A-Za-z0-9 \t.,:;<>@\u{e9}]{0,20}", 1..4),
            crlf in any::<bool>(),
        ) {
            let sep = if crlf { "\r\n " } else { "\n\t" };
            let value = parts.join(sep);
            let raw = format!("Subject: {value}");
            let (h, _) = mailparse::parse_header(raw.as_bytes()).unwrap();
            let field = RawField { bytes: raw.as_bytes(), name: b"Subject", value_at: 8 };
            let mut warnings = Vec::new();
            let mut w = Warnings { out: &mut warnings, dropped: 0 };
            let ours = decoded_value(&field, &mut w, &mut Vec::new());
            prop_assert_eq!(ours, h.get_value().trim().to_owned());
        }

    }
}
