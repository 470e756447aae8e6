//! Format detection by content: an mbox starts with a `From ` separator line, a single
//! message starts with a header field, anything else is not mail.
//!
//! MH/nmh folders hold one message per file, and `repl`/`forw`/`dist -annotate` prepend
//! annotation fields (`Replied:`, `Forwarded:`, `Resent:`) to it, also in files that keep
//! the mbox `From ` line: such a file is an mbox whose first separator follows the
//! annotations ([`annotation_len`]).

use crate::model::Format;
use crate::read::provider::Provider;

/// How many leading bytes are enough to decide.
pub const SNIFF_BYTES: usize = 64 * 1024;

/// What a file's first bytes say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detected {
    /// Starts with a `From ` separator line: one or more messages.
    Mbox,
    /// Starts with a header block: one message (`.eml`, a Maildir file, `.msg.txt`...).
    Message,
    /// An email provider's log (JSON, [`crate::read::provider`]).
    Log(Provider),
    NotMail,
}

impl Detected {
    /// The format recorded for messages of this kind (`Maildir` when the file sits in one).
    pub fn format(self, maildir: bool) -> Option<Format> {
        match self {
            Detected::Mbox => Some(Format::Mbox),
            Detected::Message if maildir => Some(Format::Maildir),
            Detected::Message => Some(Format::Eml),
            Detected::Log(p) => Some(p.format()),
            Detected::NotMail => None,
        }
    }
}

/// Header names that real messages almost always carry near the top; a header-looking first
/// line alone ("Note: ...") is not enough to call a file mail.
const MAIL_HEADERS: &[&str] = &[
    "from",
    "to",
    "cc",
    "bcc",
    "subject",
    "date",
    "message-id",
    "received",
    "return-path",
    "delivered-to",
    "mime-version",
    "reply-to",
    "sender",
    "content-type",
    "in-reply-to",
    "references",
    "x-mailer",
    "resent-from",
    "resent-to",
    "resent-cc",
    "resent-bcc",
    "resent-date",
    "envelope-to",
    "x-original-to",
];

/// Decides by content. `head` is the start of the (decompressed) file.
pub fn detect(head: &[u8]) -> Detected {
    let head = strip_bom(head);
    let first = first_line(head);
    if is_from_line(first) || annotation_len(head) > 0 {
        return Detected::Mbox;
    }
    if looks_like_header_block(head) {
        return Detected::Message;
    }
    Detected::NotMail
}

/// What a file that is not mail looks like, for the problem that names it: a user who gave a
/// provider's JSON log or a saved error page must see what was read, not just "not mail".
/// Says nothing of the content itself (it may hold addresses).
pub fn looks_like(head: &[u8]) -> &'static str {
    let b = strip_bom(head);
    if b.is_empty() {
        return "an empty file";
    }
    if b.starts_with(b"%PDF") {
        return "a PDF document";
    }
    if b.starts_with(b"PK\x03\x04") {
        return "a ZIP archive (also .docx, .xlsx)";
    }
    if b.starts_with(b"\xD0\xCF\x11\xE0") {
        return "an OLE2 compound file (Outlook .msg, old Office)";
    }
    if b.starts_with(b"!BDN") {
        return "an Outlook data file (.pst/.ost)";
    }
    let sample = &b[..b.len().min(4096)];
    if sample.contains(&0) {
        return "binary data";
    }
    let t = sample.trim_ascii_start();
    let lower = |n: usize| t[..t.len().min(n)].to_ascii_lowercase();
    match t.first() {
        Some(b'{') => {
            // JSON Lines: the second line starts an object too.
            let second = t
                .split(|&c| c == b'\n')
                .nth(1)
                .map(<[u8]>::trim_ascii_start);
            if second.is_some_and(|l| l.starts_with(b"{")) {
                "JSON Lines (e.g. a provider's event log)"
            } else {
                "JSON (e.g. a provider's event export)"
            }
        }
        Some(b'[') => "JSON (e.g. a provider's event export)",
        Some(b'<') if lower(15).starts_with(b"<!doctype html") || lower(5) == b"<html" => {
            "an HTML page"
        }
        Some(b'<') if lower(5) == b"<?xml" => "XML",
        Some(b'<') => "markup (HTML or XML)",
        // An invalid sequence, not one cut by the sample's end.
        _ if std::str::from_utf8(sample).is_err_and(|e| e.error_len().is_some()) => "binary data",
        _ => "text whose first line is neither an mbox `From ` line nor a mail header field",
    }
}

/// Field names MH/nmh write as annotations at the top of a message file.
const ANNOTATIONS: &[&[u8]] = &[b"replied", b"forwarded", b"resent", b"distributed"];

/// Length of a leading block of MH/nmh annotation fields (folded lines included) when an
/// mbox `From ` separator line follows it directly; 0 otherwise (also when the annotations
/// are followed by ordinary header fields: then they are read as part of the header block).
pub fn annotation_len(buf: &[u8]) -> usize {
    let mut pos = 0;
    let mut fields = 0;
    while pos < buf.len() {
        let end = memchr::memchr(b'\n', &buf[pos..]).map_or(buf.len(), |nl| pos + nl + 1);
        let line = &buf[pos..end];
        if fields > 0 && is_from_line(line) {
            return pos;
        }
        let folded = fields > 0 && matches!(line.first(), Some(b' ' | b'\t'));
        let annotation = header_name(trim_cr(line.strip_suffix(b"\n").unwrap_or(line)))
            .is_some_and(|n| ANNOTATIONS.iter().any(|a| a.eq_ignore_ascii_case(n)));
        if !(folded || annotation) || end == buf.len() {
            return 0;
        }
        fields += usize::from(annotation);
        pos = end;
    }
    0
}

fn strip_bom(b: &[u8]) -> &[u8] {
    b.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(b)
}

fn first_line(b: &[u8]) -> &[u8] {
    let end = memchr::memchr(b'\n', b).unwrap_or(b.len());
    trim_cr(&b[..end])
}

fn trim_cr(l: &[u8]) -> &[u8] {
    l.strip_suffix(b"\r").unwrap_or(l)
}

/// The name of a header field line (`Name: value`), if the line is one.
pub fn header_name(line: &[u8]) -> Option<&[u8]> {
    let colon = memchr::memchr(b':', line)?;
    let name = &line[..colon];
    // RFC 5322 field names: printable ASCII except colon and space. Tolerate spaces before
    // the colon ("Subject : x"), which old mailers wrote.
    let name = trim_trailing_ws(name);
    if name.is_empty() || name.len() > 100 {
        return None;
    }
    name.iter()
        .all(|&c| (33..=126).contains(&c))
        .then_some(name)
}

fn trim_trailing_ws(b: &[u8]) -> &[u8] {
    let mut end = b.len();
    while end > 0 && (b[end - 1] == b' ' || b[end - 1] == b'\t') {
        end -= 1;
    }
    &b[..end]
}

/// The first line is a header field and the header block (as far as `head` reaches) names
/// at least one of the headers every mail system writes.
fn looks_like_header_block(head: &[u8]) -> bool {
    let mut lines = head.split(|&c| c == b'\n').map(trim_cr);
    let Some(first) = lines.next() else {
        return false;
    };
    let Some(name) = header_name(first) else {
        return false;
    };
    let known = |n: &[u8]| {
        MAIL_HEADERS
            .iter()
            .any(|h| h.as_bytes().eq_ignore_ascii_case(n))
    };
    if known(name) {
        return true;
    }
    for line in lines {
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            continue;
        }
        match header_name(line) {
            Some(n) if known(n) => return true,
            Some(_) => {}
            None => return false,
        }
    }
    false
}

/// Is `line` (with or without its line end) an mbox `From ` separator line?
///
/// A body line may well start with `From ` ("From the desk of..."); a real separator is
/// `From SENDER DATE` where DATE is asctime-like. We require a sender token and, after it, a
/// time `hh:mm` and a four-digit year, which no sentence is likely to carry by accident.
pub fn is_from_line(line: &[u8]) -> bool {
    let line = trim_cr(line.strip_suffix(b"\n").unwrap_or(line));
    let Some(rest) = line.strip_prefix(b"From ") else {
        return false;
    };
    if rest.len() > 1000 {
        return false;
    }
    // Some writers put two spaces after the sender ("From a@b  Thu Aug 22 ...").
    let Some(sp) = memchr::memchr(b' ', rest) else {
        return false;
    };
    if sp == 0 {
        return false;
    }
    let date = &rest[sp..];
    has_time(date) && has_year(date)
}

fn has_time(b: &[u8]) -> bool {
    b.windows(5).any(|w| {
        w[0].is_ascii_digit()
            && w[1].is_ascii_digit()
            && w[2] == b':'
            && w[3].is_ascii_digit()
            && w[4].is_ascii_digit()
    })
}

fn has_year(b: &[u8]) -> bool {
    let mut run = 0;
    for &c in b.iter().chain(std::iter::once(&b' ')) {
        if c.is_ascii_digit() {
            run += 1;
        } else {
            if run == 4 {
                return true;
            }
            run = 0;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_lines() {
        assert!(is_from_line(b"From a@b.com  Thu Aug 22 12:36:23 2002\n"));
        assert!(is_from_line(b"From - Mon Jan  1 00:00:00 2024\r\n"));
        assert!(is_from_line(
            b"From MAILER-DAEMON Fri Jul  8 12:08:34 2011 +0000"
        ));
        assert!(!is_from_line(b"From the desk of the CEO, 2024\n"));
        assert!(!is_from_line(b"From here at 10:30 we go\n"));
        assert!(!is_from_line(b"From: a@b.com\n"));
        assert!(!is_from_line(b">From a@b Thu Aug 22 12:36:23 2002\n"));
        assert!(!is_from_line(b"From  Thu Aug 22 12:36:23 2002"));
    }

    #[test]
    fn detection() {
        assert_eq!(
            detect(b"From a@b Thu Aug 22 12:36:23 2002\nSubject: x\n\nhi\n"),
            Detected::Mbox
        );
        assert_eq!(
            detect(b"Return-Path: <a@b>\nSubject: x\n\nhi\n"),
            Detected::Message
        );
        assert_eq!(
            detect(b"X-Custom: 1\nX-Other: 2\nTo: a@b\n\nhi\n"),
            Detected::Message
        );
        assert_eq!(detect(b"Note: buy milk\nand eggs\n"), Detected::NotMail);
        assert_eq!(detect(b""), Detected::NotMail);
        assert_eq!(detect(b"\x89PNG\r\n\x1a\n\0\0"), Detected::NotMail);
        assert_eq!(detect(b"hello world\n"), Detected::NotMail);
    }

    #[test]
    fn not_mail_says_what_it_looks_like() {
        let cases: [(&[u8], &str); 9] = [
            (b"", "an empty file"),
            (
                b"{\"eventType\":\"Send\"}\n{\"eventType\":\"Delivery\"}\n",
                "JSON Lines",
            ),
            (b"  {\n  \"items\": []\n}", "JSON ("),
            (b"[{\"a\":1}]", "JSON ("),
            (
                b"<!DOCTYPE html><html><body>502 Bad Gateway",
                "an HTML page",
            ),
            (b"<?xml version=\"1.0\"?><a/>", "XML"),
            (b"%PDF-1.7\n", "a PDF document"),
            (b"\x89PNG\r\n\x1a\n\0\0", "binary data"),
            (b"hello world\n", "text whose first line"),
        ];
        for (head, want) in cases {
            assert_eq!(detect(head), Detected::NotMail);
            assert!(
                looks_like(head).starts_with(want),
                "{head:?}: {}",
                looks_like(head)
            );
        }
        assert_eq!(Detected::Message.format(true), Some(Format::Maildir));
    }

    #[test]
    fn mh_annotations_before_from_line_are_mbox() {
        let m = b"Replied: Thu, 22 Aug 2002 18:26:25 +0700\nReplied: Robert Elz\n <kre@munnari.example>\nFrom a@b Thu Aug 22 12:36:23 2002\nSubject: x\n\nhi\n";
        assert_eq!(detect(m), Detected::Mbox);
        assert_eq!(annotation_len(m), 84);
        assert!(m[annotation_len(m)..].starts_with(b"From a@b "));
        let crlf = b"Forwarded: Mon, 26 Aug 2002 10:00:00 +0100\r\nFrom a@b Thu Aug 22 12:36:23 2002\r\nSubject: x\r\n\r\nhi\r\n";
        assert_eq!(detect(crlf), Detected::Mbox);
        // Annotations followed by ordinary fields stay a header block.
        assert_eq!(annotation_len(b"Replied: x\nSubject: y\n\nb\n"), 0);
        assert_eq!(detect(b"Replied: x\nSubject: y\n\nb\n"), Detected::Message);
        // Other fields, or only annotations, are not enough.
        assert_eq!(
            annotation_len(b"Note: x\nFrom a@b Thu Aug 22 12:36:23 2002\n"),
            0
        );
        assert_eq!(detect(b"Replied: x\nForwarded: y\n"), Detected::NotMail);
        assert_eq!(annotation_len(b"From a@b Thu Aug 22 12:36:23 2002\n"), 0);
    }
}
