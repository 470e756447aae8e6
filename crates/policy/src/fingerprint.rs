//! Finding fingerprints for baselines. Renderers mint a new Message-ID, Date, MIME boundaries
//! and tracking tokens on every run, so the key covers only what a re-rendering keeps: the
//! normalised subject, sender, recipients and a body with those volatile values replaced.

use leakaudit_scanner::model::Envelope;
use regex::bytes::Regex;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// `boundary=...` parameters anywhere in the message (nested multiparts declare theirs in
/// the body).
static BOUNDARY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)boundary\s*=\s*(?:"([^"\r\n]{1,200})"|([^\s;"]{1,200}))"#).expect("regex")
});
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
    let mut boundaries: Vec<Vec<u8>> = BOUNDARY
        .captures_iter(whole)
        .filter_map(|c| c.get(1).or_else(|| c.get(2)).map(|m| m.as_bytes().to_vec()))
        .collect();
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

    #[test]
    fn fingerprint_ignores_line_endings() {
        let crlf = "From: a@b.c\r\nTo: x@y.z\r\n\r\nhi\r\n";
        assert_eq!(key(crlf), key(&crlf.replace("\r\n", "\n")));
    }
}
