//! Finding fingerprints for baselines. Renderers mint a new Message-ID, Date, MIME boundaries
//! and tracking tokens on every run, so the key covers only what a re-rendering keeps: the
//! normalised subject, sender, recipients and a body with those volatile values replaced.

use leakaudit_scanner::model::Envelope;
use regex::bytes::Regex;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// The longest boundary value taken, in characters (longer quoted ones are not boundaries).
const MAX_BOUNDARY_CHARS: usize = 200;
/// Header lines of attached or quoted messages that renderers regenerate.
static VOLATILE_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?im)^(?:message-id|date|x-mailer-id|x-campaign-id)[ \t]*:[^\r\n]*")
        .expect("regex")
});
/// Tracking parameters in links: `utm_*` and one-letter random tokens such as `?t=`.
static TRACKING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)([?&;](?:amp;)?)(?:utm_[a-z_]+|t|token|trk|mc_eid|mc_cid)=[^&\s\x22'<>]*")
        .expect("regex")
});
/// Long tokens mixing letters and digits (ids, hashes, random link tokens).
static LONG_TOKEN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[A-Za-z0-9_\-]{16,}").expect("regex"));

/// The message's stable identity for fingerprints: subject, sender, recipients and the body
/// with boundaries, Message-ID, Date, tracking parameters and long random tokens normalised.
/// `unquoted_raw` is the whole message (headers are skipped with `env.header_len`).
pub fn message_key(env: &Envelope, unquoted_raw: &[u8]) -> String {
    let mut h = Sha256::new();
    let mut part = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    let subject = env.subject.as_deref().unwrap_or("");
    part(normalise_text(subject).as_bytes());
    for m in &env.from {
        part(m.address.as_str().as_bytes());
    }
    part(b"|");
    // Borrowed, not copied: a string per recipient was ~40 MB at 1,000,000.
    let mut rcpts: Vec<&str> = env
        .recipients
        .iter()
        .map(|r| r.mailbox.address.as_str())
        .collect();
    rcpts.sort_unstable();
    rcpts.dedup();
    for r in &rcpts {
        part(r.as_bytes());
    }
    part(b"|");
    let body = unquoted_raw
        .get(env.header_len.min(unquoted_raw.len())..)
        .unwrap_or(&[]);
    part(&normalise_body(
        unquoted_raw,
        body,
        env.message_id.as_deref(),
    ));
    format!("v2:{}", hex::encode(h.finalize()))
}

fn normalise_text(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The body with every volatile value replaced by a placeholder, line endings and trailing
/// blanks dropped.
/// Boundaries are looked up in the whole message: the top-level one is declared in the header.
pub(crate) fn normalise_body(whole: &[u8], body: &[u8], message_id: Option<&str>) -> Vec<u8> {
    let mut out: Vec<u8> = body.iter().copied().filter(|&b| b != b'\r').collect();
    let mut boundaries: Vec<Vec<u8>> = boundaries(whole).map(<[u8]>::to_vec).collect();
    // Longest first, so a boundary that contains another is replaced whole.
    boundaries.sort_by_key(|b| std::cmp::Reverse(b.len()));
    for b in boundaries {
        out = replace_all(&out, &b, b"BOUNDARY");
    }
    if let Some(id) = message_id.map(str::trim).filter(|id| id.len() >= 4) {
        out = replace_all(&out, id.as_bytes(), b"MSGID");
    }
    out = VOLATILE_LINE.replace_all(&out, &b""[..]).into_owned();
    out = TRACKING.replace_all(&out, &b"$1"[..]).into_owned();
    out = LONG_TOKEN
        .replace_all(&out, |c: &regex::bytes::Captures<'_>| {
            let t = &c[0];
            let digits = t.iter().any(u8::is_ascii_digit);
            let letters = t.iter().any(u8::is_ascii_alphabetic);
            if digits && letters {
                b"TOKEN".to_vec()
            } else {
                t.to_vec()
            }
        })
        .into_owned();
    let mut lines: Vec<&[u8]> = out
        .split(|&b| b == b'\n')
        .map(|l| l.trim_ascii_end())
        .collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines.join(&b'\n')
}

/// The `boundary=...` parameters anywhere in the message (nested multiparts declare theirs in
/// the body), in order: what `(?i)boundary\s*=\s*(?:"([^"\r\n]{1,200})"|([^\s;"]{1,200}))`
/// captures (group 1, else 2) over `whole`, match after match. By hand: the regex's
/// Unicode classes repeated 200 times took ~4 ms to compile, a third of a one-message `check`
/// (`boundaries_match_the_regex` holds the two equal). Characters are UTF-8 scalars, as
/// the regex's Unicode classes see them: an invalid byte ends a value.
fn boundaries(whole: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut at = 0;
    std::iter::from_fn(move || {
        // `at` never passes the end: a match ends inside `whole`, and `p` is a byte of it.
        while let Some(i) = memchr::memchr2(b'b', b'B', &whole[at..]) {
            let p = at + i;
            match boundary_at(whole, p) {
                Some((value, end)) => {
                    at = end;
                    return Some(value);
                }
                None => at = p + 1,
            }
        }
        None
    })
}

/// The boundary value of a match starting at `p` and the match's end, if one starts there.
fn boundary_at(b: &[u8], p: usize) -> Option<(&[u8], usize)> {
    let name = b.get(p..p + 8)?;
    if !name.eq_ignore_ascii_case(b"boundary") {
        return None;
    }
    let mut i = skip_space(b, p + 8);
    if b.get(i) != Some(&b'=') {
        return None;
    }
    i = skip_space(b, i + 1);
    if b.get(i) == Some(&b'"') {
        // Up to the closing quote, at most 200 characters, none a line break (the run stops
        // one past the limit: nothing further can change the answer).
        let start = i + 1;
        let (end, n) = run(b, start, MAX_BOUNDARY_CHARS + 1, |c| {
            !matches!(c, '"' | '\r' | '\n')
        });
        ((1..=MAX_BOUNDARY_CHARS).contains(&n) && b.get(end) == Some(&b'"'))
            .then(|| (&b[start..end], end + 1))
    } else {
        // The first 200 characters of a token that ends at a blank, `;` or `"`.
        let (end, n) = run(b, i, MAX_BOUNDARY_CHARS, |c| {
            !(c.is_whitespace() || c == ';' || c == '"')
        });
        (n >= 1).then(|| (&b[i..end], end))
    }
}

/// Past the white space (Unicode `White_Space`, as the regex's `\s`) from `i`.
fn skip_space(b: &[u8], i: usize) -> usize {
    run(b, i, usize::MAX, char::is_whitespace).0
}

/// From `i`, the end of the run of at most `max` characters that satisfy `keep`, and their
/// count. The run ends at an invalid UTF-8 sequence too.
fn run(b: &[u8], mut i: usize, max: usize, keep: impl Fn(char) -> bool) -> (usize, usize) {
    let mut n = 0;
    while n < max {
        match next_char(b, i) {
            Some((c, len)) if keep(c) => {
                i += len;
                n += 1;
            }
            _ => break,
        }
    }
    (i, n)
}

/// The UTF-8 character at `i` and its length; `None` at the end or at an invalid sequence.
fn next_char(b: &[u8], i: usize) -> Option<(char, usize)> {
    let lead = *b.get(i)?;
    if lead < 0x80 {
        return Some((lead as char, 1));
    }
    let len = match lead {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return None,
    };
    let s = std::str::from_utf8(b.get(i..i + len)?).ok()?;
    s.chars().next().map(|c| (c, len))
}

fn replace_all(hay: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    if needle.is_empty() {
        return hay.to_vec();
    }
    let mut out = Vec::with_capacity(hay.len());
    let mut rest = hay;
    while let Some(i) = memchr::memmem::find(rest, needle) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(with);
        rest = &rest[i + needle.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// Hex SHA-256 of (rule id, message key, redacted evidence): stable when the archive is
/// re-exported, split differently, moved or re-rendered; never depends on the file or line.
pub fn fingerprint(rule_id: &str, message_key: &str, evidence: &str) -> String {
    let mut h = Sha256::new();
    for part in [rule_id, message_key, evidence] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use leakaudit_scanner::headers::parse_envelope;

    fn key(raw: &str) -> String {
        let env = parse_envelope(raw.as_bytes()).expect("envelope");
        message_key(&env, raw.as_bytes())
    }

    fn render(mid: &str, date: &str, boundary: &str, token: &str) -> String {
        format!(
            "From: shop@shop.example\r\nTo: a@one.example, b@two.example\r\n\
             Subject: Your  order\r\nMessage-ID: <{mid}>\r\nDate: {date}\r\n\
             Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n\
             --{boundary}\r\nContent-Type: text/plain\r\n\r\nHello, see \
             https://shop.example/o?id=42&utm_source=mail&t={token}\r\nref {mid}\r\n\
             --{boundary}--\r\n"
        )
    }

    #[test]
    fn fingerprint_ignores_message_id_date_boundary_and_tracking_tokens() {
        let a = key(&render(
            "20240101.abc123@shop.example",
            "Mon, 1 Jan 2024 10:00:00 +0000",
            "==b1_9f8e7d6c5b4a39281706",
            "Zx81kQ0pLm3N7vB2",
        ));
        let b = key(&render(
            "20240302.ffe991@shop.example",
            "Sat, 2 Mar 2024 11:30:00 +0100",
            "----=_Part_1234_99887766.1709",
            "a9Qw0ErT5yUi3oP1",
        ));
        assert_eq!(a, b);
    }

    #[test]
    fn fingerprint_changes_with_content_recipients_and_subject() {
        let base = render("m1@x", "Mon, 1 Jan 2024 10:00:00 +0000", "b1", "tok");
        let k = key(&base);
        assert_ne!(k, key(&base.replace("Hello", "Goodbye")));
        assert_ne!(k, key(&base.replace("b@two.example", "c@three.example")));
        assert_ne!(k, key(&base.replace("Your  order", "Your refund")));
        assert_eq!(k, key(&base.replace("Your  order", "Your order")));
        assert_ne!(fingerprint("r", &k, "e"), fingerprint("r", &k, "f"));
        assert_ne!(fingerprint("r", &k, "e"), fingerprint("s", &k, "e"));
    }

    /// The boundary parameters as the regex that `boundaries` replaces finds them.
    fn by_regex(whole: &[u8]) -> Vec<Vec<u8>> {
        let re = Regex::new(r#"(?i)boundary\s*=\s*(?:"([^"\r\n]{1,200})"|([^\s;"]{1,200}))"#)
            .expect("regex");
        re.captures_iter(whole)
            .filter_map(|c| c.get(1).or_else(|| c.get(2)).map(|m| m.as_bytes().to_vec()))
            .collect()
    }

    fn by_hand(whole: &[u8]) -> Vec<Vec<u8>> {
        boundaries(whole).map(<[u8]>::to_vec).collect()
    }

    proptest::proptest! {
        /// Pieces that steer every branch: the name in both cases, white space (ASCII and
        /// not), quotes, `;`, line breaks, multi-byte and invalid UTF-8, and runs long enough
        /// to cross the 200-character limit.
        #[test]
        fn boundaries_match_the_regex(pieces in proptest::collection::vec(
            proptest::sample::select(vec![
                &b"boundary"[..], b"BoUnDaRy", b"bound", b"b", b"=", b" ", b"\t", b"\r\n", b"\n",
                b"\"", b";", b"x", b"-_=", b"\xc2\xa0", b"\xe2\x80\xa8", b"\xc3\xa9", b"\xe2\x84\xaa",
                b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xc0\x80",
                &[b'a'; 100][..], &[b'a'; 199][..],
                b"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
            ]),
            0..40,
        )) {
            let whole = pieces.concat();
            proptest::prop_assert_eq!(by_hand(&whole), by_regex(&whole));
        }
    }

    #[test]
    fn boundaries_at_the_limits() {
        let a = |n: usize| "a".repeat(n);
        for whole in [
            format!("Content-Type: multipart/mixed; boundary=\"{}\"\r\n", a(200)),
            format!("Content-Type: multipart/mixed; boundary=\"{}\"\r\n", a(201)),
            format!("boundary={}; x", a(201)),
            format!("BOUNDARY \t=\r\n \"{}\"boundary=\"b\"", a(3)),
            "boundary=\"\" boundary=\"x\ny\" boundary=;".to_owned(),
            format!("boundary=\"{}boundary=inner", a(250)),
        ] {
            assert_eq!(
                by_hand(whole.as_bytes()),
                by_regex(whole.as_bytes()),
                "{whole:?}"
            );
        }
        assert_eq!(
            by_hand(format!("boundary=\"{}\"", a(200)).as_bytes()),
            [a(200).into_bytes()]
        );
        assert!(by_hand(format!("boundary=\"{}\"", a(201)).as_bytes()).is_empty());
    }

    #[test]
    fn fingerprint_ignores_line_endings() {
        let crlf = "From: a@b.c\r\nTo: x@y.z\r\n\r\nhi\r\n";
        assert_eq!(key(crlf), key(&crlf.replace("\r\n", "\n")));
    }
}
