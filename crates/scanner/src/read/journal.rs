//! Exchange / Microsoft 365 envelope journal reports: the original message inside, with the
//! envelope recipients the report lists.
//!
//! The layout (Microsoft, "Understanding Journal Reports", Exchange 2007-2016, and
//! [MS-XJRNL]): a message from the journaling agent marked `X-MS-Journal-Report:`, whose first
//! text part (text/plain, or text/html in newer versions) lists the envelope one value per
//! line: `Sender:`, `Subject:`, `Message-ID:`, an optional `On-Behalf-Of:`, then one line per
//! envelope recipient, `To: a`, `Cc: b`, `Bcc: c` or `Recipient: d` (addressing not
//! verified), optionally followed by `, Expanded: dl@x` (reached through a distribution
//! list) or `, Forwarded: y` (delivered as the alternate recipient of y). The original, as
//! transmitted (without its Bcc header), is attached unaltered as `message/rfc822`.
//!
//! The report's own recipient list is never a message body anyone received: the caller audits
//! the original and keeps the list as the envelope.

use crate::html;
use crate::model::{Address, EnvelopeKind, EnvelopeRecipient, Recipient};
use std::borrow::Cow;

/// Why a message marked as a journal report could not be read as one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    #[error("journal report is not a MIME multipart message: {0}")]
    NotMultipart(String),
    #[error("journal report has no envelope part (text/plain or text/html)")]
    NoEnvelopePart,
    #[error("journal report's envelope part lists no recipient (no `To:`, `Cc:`, `Bcc:` or `Recipient:` line)")]
    NoRecipients,
    #[error("journal report has no attached original (message/rfc822)")]
    NoOriginal,
    #[error("journal report's attached original is empty")]
    EmptyOriginal,
    #[error("journal report's attached original could not be decoded: {0}")]
    Undecodable(String),
}

/// A journal report, unwrapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report<'a> {
    /// The original message as transmitted: a slice of the report when attached unencoded
    /// (as Exchange does), decoded bytes otherwise.
    pub original: Cow<'a, [u8]>,
    /// The envelope recipients, in the report's order, duplicates removed.
    pub recipients: Vec<EnvelopeRecipient>,
}

/// Reads `raw` (a whole message) as a journal report.
pub fn unwrap(raw: &[u8]) -> Result<Report<'_>, JournalError> {
    locate(raw)?.report(&[])
}

/// The general path: any MIME structure mailparse reads. [`unwrap`] gives the same answer
/// on every input, faster on Exchange's own layout (public for tests and fuzzing).
pub fn unwrap_general(raw: &[u8]) -> Result<Report<'_>, JournalError> {
    locate_general(raw)?.report(&[])
}

/// A journal report's two parts found, not yet read: [`Located::original`] can be parsed
/// first, so that [`Located::report`] reuses the addresses its headers name.
pub struct Located<'a> {
    envelope: Cow<'a, str>,
    original: Result<Cow<'a, [u8]>, JournalError>,
}

/// Finds the envelope part and the original of `raw` (errors: not multipart, no envelope
/// part; the rest are [`Located::report`]'s).
pub fn locate(raw: &[u8]) -> Result<Located<'_>, JournalError> {
    // Exchange's own layout (two flat parts, plain text, the original unencoded) is split
    // here without a MIME parse tree; anything else goes through mailparse.
    if let Some(l) = locate_flat(raw) {
        return Ok(l);
    }
    locate_general(raw)
}

impl<'a> Located<'a> {
    /// The attached original, when there is one to read.
    pub fn original(&self) -> Option<&[u8]> {
        self.original.as_deref().ok()
    }

    /// The report, checked in the order both paths share: recipients first, then the
    /// original. An envelope line naming exactly one of `known` (the original's header
    /// recipients, parsed already) takes that address instead of parsing it again.
    pub fn report(self, known: &[Recipient]) -> Result<Report<'a>, JournalError> {
        // The `Sender:` and `Message-ID:` lines are not read: the original's own fields
        // say it, and merged reports are keyed by the original's Message-ID.
        let recipients = parse_envelope_text(&self.envelope, known);
        if recipients.is_empty() {
            return Err(JournalError::NoRecipients);
        }
        let original = self.original?;
        if original.iter().all(u8::is_ascii_whitespace) {
            return Err(JournalError::EmptyOriginal);
        }
        Ok(Report {
            original,
            recipients,
        })
    }
}

fn locate_general(raw: &[u8]) -> Result<Located<'_>, JournalError> {
    let mail = mailparse::parse_mail(raw).map_err(|e| JournalError::NotMultipart(e.to_string()))?;
    if !mail.ctype.mimetype.starts_with("multipart/") {
        return Err(JournalError::NotMultipart(format!(
            "Content-Type is {}",
            mail.ctype.mimetype
        )));
    }
    let mut envelope: Option<String> = None;
    let mut original: Option<Cow<'_, [u8]>> = None;
    let mut undecodable = None;
    visit(&mail, &mut |part| {
        let mime = part.ctype.mimetype.as_str();
        if envelope.is_none() && (mime == "text/plain" || mime == "text/html") {
            if let Ok(text) = part.get_body() {
                envelope = Some(if mime == "text/html" {
                    // One line per block or `<br>`, as the envelope grammar needs.
                    let lines = html::strip_html_with(text.as_bytes(), html::Layout::Quoting);
                    String::from_utf8_lossy(&lines).into_owned()
                } else {
                    text
                });
            }
        } else if original.is_none() && mime == "message/rfc822" {
            match attached(raw, part) {
                Ok(o) => original = Some(o),
                Err(e) => undecodable = Some(e),
            }
        }
    });
    let envelope = envelope.ok_or(JournalError::NoEnvelopePart)?;
    let original = match (original, undecodable) {
        (Some(o), _) => Ok(o),
        (None, Some(e)) => Err(e),
        (None, None) => Err(JournalError::NoOriginal),
    };
    Ok(Located {
        envelope: Cow::Owned(envelope),
        original,
    })
}

/// The fast path for the layout Exchange writes: a flat multipart whose first part is
/// text/plain (us-ascii or utf-8, not transfer-encoded) and whose next is the original as
/// `message/rfc822`, unencoded. `None` when the report is anything else (the general path
/// decides); the same answer as [`unwrap_general`] otherwise (tested side by side, fuzzed).
fn locate_flat(raw: &[u8]) -> Option<Located<'_>> {
    let (head, body_at) = simple_head(raw)?;
    let Cow::Borrowed(ctype) = head.content_type? else {
        return None;
    };
    let ctype = ContentType::parse(ctype)?;
    if ctype.kind() != PartKind::Multipart {
        return None;
    }
    let parts = flat_parts(&raw[body_at..], body_at, ctype.boundary?.as_bytes())?;
    let mut parts = parts.into_iter();
    let (text_plain, text, text_type) = parts.next()?;
    let (orig_plain, orig, orig_type) = parts.next()?;
    let PartKind::TextPlain(charset) = text_type else {
        return None;
    };
    if charset == Charset::Other || !text_plain || orig_type != PartKind::Message || !orig_plain {
        return None;
    }
    let text = &raw[text.clone()];
    // us-ascii with 8-bit bytes is decoded as windows-1252 by the general path: left to it.
    if charset == Charset::UsAscii && !text.is_ascii() {
        return None;
    }
    let text = std::str::from_utf8(text).ok()?;
    Some(Located {
        envelope: Cow::Borrowed(text),
        original: Ok(Cow::Borrowed(&raw[orig])),
    })
}

/// Lines with their line breaks, found with memchr (`split_inclusive` tests byte by byte).
struct Lines<'a>(&'a [u8]);

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.0.is_empty() {
            return None;
        }
        let end = memchr::memchr(b'\n', self.0).map_or(self.0.len(), |i| i + 1);
        let (line, rest) = self.0.split_at(end);
        self.0 = rest;
        Some(line)
    }
}

/// A header line as text, trimmed (ASCII, checked by the caller).
fn ascii_text(l: &[u8]) -> &str {
    std::str::from_utf8(l).unwrap_or_default().trim()
}

/// The two fields the fast path reads of a header block, unfolded (borrowed when on one line).
#[derive(Default)]
struct Head<'h> {
    content_type: Option<Cow<'h, str>>,
    encoding: Option<Cow<'h, str>>,
}

/// A header block the fast path reads exactly as mailparse does, walked once: ASCII, no
/// encoded words, every field `Name: value` with a bare name, folded lines only after a
/// field, no lone CR, ended by a blank line. Its Content-Type and Content-Transfer-Encoding
/// (the first of each) and where the body starts; `None` for anything else (mailparse
/// rejects some of it, decodes the rest: the general path decides).
fn simple_head(raw: &[u8]) -> Option<(Head<'_>, usize)> {
    let mut head = Head::default();
    let mut pos = 0;
    let mut lines = Lines(raw).peekable();
    while let Some(line) = lines.next() {
        let at = pos;
        pos += line.len();
        if line == b"\n" || line == b"\r\n" {
            return Some((head, pos));
        }
        if !line.is_ascii()
            || memchr::memchr_iter(b'=', line).any(|i| line.get(i + 1) == Some(&b'?'))
        {
            return None;
        }
        match line.first() {
            Some(b' ' | b'\t') if at > 0 => continue,
            Some(b' ' | b'\t' | b'\r') | None => return None,
            _ => {}
        }
        let colon = memchr::memchr(b':', line)?;
        let name = &line[..colon];
        if name
            .iter()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return None;
        }
        let slot = if name.eq_ignore_ascii_case(b"content-type") {
            &mut head.content_type
        } else if name.eq_ignore_ascii_case(b"content-transfer-encoding") {
            &mut head.encoding
        } else {
            continue;
        };
        let mut value = Cow::Borrowed(ascii_text(&line[colon + 1..]));
        while let Some(next) = lines.next_if(|l| matches!(l.first(), Some(b' ' | b'\t'))) {
            if !next.is_ascii()
                || memchr::memchr_iter(b'=', next).any(|i| next.get(i + 1) == Some(&b'?'))
            {
                return None;
            }
            pos += next.len();
            let v = value.to_mut();
            v.push(' ');
            v.push_str(ascii_text(next));
        }
        if slot.is_none() {
            *slot = Some(value);
        }
    }
    None
}

/// What the fast path needs of a Content-Type: the media type, the charset, the boundary.
/// `parse` reads the subset on which it gives what `mailparse::parse_content_type` gives
/// (no quoted-pair, no RFC 2231 `*` parameters, ASCII) and says `None` to the rest, which
/// the general path then reads: a third of the fast path's time went to building
/// mailparse's parameter map three times per report.
struct ContentType<'a> {
    /// The media type as written (compared case-insensitively).
    mime: &'a str,
    charset: Option<&'a str>,
    boundary: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PartKind {
    Multipart,
    TextPlain(Charset),
    Message,
    Other,
}

/// The charsets the fast path reads without decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Charset {
    UsAscii,
    Utf8,
    Other,
}

impl<'a> ContentType<'a> {
    fn parse(v: &'a str) -> Option<Self> {
        if !v.is_ascii() || v.contains(['\\', '*']) {
            return None;
        }
        // mailparse: split at `;` outside quotes; the first piece is the type; each other
        // piece with `=` is `key=value`, trimmed, the key case-insensitive, one pair of
        // surrounding quotes removed, the last of a repeated key kept.
        let mut pieces = Pieces { rest: Some(v) };
        let mut ct = ContentType {
            mime: pieces.next()?.trim(),
            charset: None,
            boundary: None,
        };
        for piece in pieces {
            let Some((key, value)) = piece.split_once('=') else {
                continue;
            };
            let value = value.trim();
            let value = match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
                Some(inner) if value.len() > 1 => inner,
                _ => value,
            };
            let key = key.trim();
            if key.eq_ignore_ascii_case("charset") {
                ct.charset = Some(value);
            } else if key.eq_ignore_ascii_case("boundary") {
                ct.boundary = Some(value);
            }
        }
        Some(ct)
    }

    fn kind(&self) -> PartKind {
        let m = self.mime;
        if m.len() >= 10 && m[..10].eq_ignore_ascii_case("multipart/") {
            PartKind::Multipart
        } else if m.eq_ignore_ascii_case("text/plain") {
            // RFC 2045's default charset, as mailparse's.
            let c = self.charset.unwrap_or("us-ascii");
            PartKind::TextPlain(if c.eq_ignore_ascii_case("us-ascii") {
                Charset::UsAscii
            } else if c.eq_ignore_ascii_case("utf-8") || c.eq_ignore_ascii_case("utf8") {
                Charset::Utf8
            } else {
                Charset::Other
            })
        } else if m.eq_ignore_ascii_case("message/rfc822") {
            PartKind::Message
        } else {
            PartKind::Other
        }
    }
}

/// The pieces of a Content-Type between `;` outside quotes (no quoted-pairs: refused before).
struct Pieces<'a> {
    rest: Option<&'a str>,
}

impl<'a> Iterator for Pieces<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        let mut quoted = false;
        for (i, b) in rest.bytes().enumerate() {
            match b {
                b'"' => quoted = !quoted,
                b';' if !quoted => {
                    self.rest = Some(&rest[i + 1..]);
                    return Some(&rest[..i]);
                }
                _ => {}
            }
        }
        self.rest = None;
        Some(rest)
    }
}

/// A part's kind (text/plain; charset=us-ascii when it has no Content-Type, as RFC 2045
/// says); `None` when its Content-Type is outside what [`ContentType::parse`] reads.
fn part_kind(head: &Head<'_>) -> Option<PartKind> {
    match &head.content_type {
        None => Some(PartKind::TextPlain(Charset::UsAscii)),
        Some(v) => Some(ContentType::parse(v)?.kind()),
    }
}

/// No transfer encoding to undo: absent, 7bit, 8bit or binary.
fn plain_encoding(head: &Head<'_>) -> bool {
    match &head.encoding {
        None => true,
        Some(v) => ["7bit", "8bit", "binary"]
            .iter()
            .any(|e| v.eq_ignore_ascii_case(e)),
    }
}

/// A part: no transfer encoding to undo ([`plain_encoding`]), its body's range in the
/// message, its kind.
type FlatPart = (bool, std::ops::Range<usize>, PartKind);

/// The parts of a multipart body as (header block, body range in the message); `at` is the
/// body's offset in the message. A part's body ends before the line break of the next
/// delimiter line (RFC 2046). `None` when a part is itself multipart, a part has no blank line
/// after its headers, or the closing delimiter is missing: the general path decides.
fn flat_parts(body: &[u8], at: usize, boundary: &[u8]) -> Option<Vec<FlatPart>> {
    let mut delim = Vec::with_capacity(boundary.len() + 2);
    delim.extend_from_slice(b"--");
    delim.extend_from_slice(boundary);
    let finder = memchr::memmem::Finder::new(&delim);
    // Delimiter lines: (start of the line, end of the line incl. its break, closing).
    let mut lines: Vec<(usize, usize, bool)> = Vec::new();
    let mut from = 0;
    while let Some(i) = finder.find(&body[from..]) {
        let start = from + i;
        from = start + delim.len();
        if start > 0 && body[start - 1] != b'\n' {
            continue;
        }
        let rest = &body[start + delim.len()..];
        let eol = memchr::memchr(b'\n', rest).map_or(rest.len(), |n| n + 1);
        let tail = &rest[..eol];
        let closing = tail.starts_with(b"--");
        let pad = if closing { &tail[2..] } else { tail };
        if !pad
            .iter()
            .all(|&b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        {
            // Not a delimiter by RFC 2046, but mailparse splits at any line starting with
            // one: the general path decides.
            return None;
        }
        lines.push((start, start + delim.len() + eol, closing));
        if closing {
            break;
        }
    }
    if !lines.last()?.2 {
        return None;
    }
    let mut parts = Vec::new();
    for w in lines.windows(2) {
        let (content, next) = (w[0].1, w[1].0);
        let mut end = next;
        if end > content && body[end - 1] == b'\n' {
            end -= 1;
            if end > content && body[end - 1] == b'\r' {
                end -= 1;
            }
        }
        let part = &body[content..end];
        let (head, body_at) = simple_head(part)?;
        let kind = part_kind(&head)?;
        if kind == PartKind::Multipart {
            return None;
        }
        parts.push((
            plain_encoding(&head),
            at + content + body_at..at + end,
            kind,
        ));
    }
    Some(parts)
}

/// Depth-first over the MIME tree (not into attached messages).
fn visit<'p, 'a>(
    part: &'p mailparse::ParsedMail<'a>,
    f: &mut impl FnMut(&'p mailparse::ParsedMail<'a>),
) {
    f(part);
    for sub in &part.subparts {
        visit(sub, f);
    }
}

/// The attached original: borrowed from `raw` when it is not transfer-encoded.
fn attached<'a>(
    raw: &'a [u8],
    part: &mailparse::ParsedMail<'_>,
) -> Result<Cow<'a, [u8]>, JournalError> {
    use mailparse::body::Body;
    let borrowed = match part.get_body_encoded() {
        Body::SevenBit(b) | Body::EightBit(b) => Some(b.get_raw()),
        Body::Binary(b) => Some(b.get_raw()),
        Body::Base64(_) | Body::QuotedPrintable(_) => None,
    };
    if let Some(body) = borrowed {
        // The parser's slice lies inside `raw`: re-slice `raw` so the original borrows the
        // scanner's buffer, not the parse tree.
        let start = (body.as_ptr() as usize).wrapping_sub(raw.as_ptr() as usize);
        if let Some(s) = raw.get(start..start + body.len()) {
            return Ok(Cow::Borrowed(s));
        }
        return Ok(Cow::Owned(body.to_vec()));
    }
    part.get_body_raw()
        .map(Cow::Owned)
        .map_err(|e| JournalError::Undecodable(e.to_string()))
}

/// The envelope's recipient lines, deduplicated by address and kind; an address written
/// exactly as one of `known` is that address (canonical addresses parse to themselves).
fn parse_envelope_text(text: &str, known: &[Recipient]) -> Vec<EnvelopeRecipient> {
    // A mass mail's chunk names hundreds: an index then; one or two: a look along the list.
    // foldhash (seeded per process), as the exposure sets: SipHash was most of this index.
    let index: Option<foldhash::HashMap<&str, &Address>> = (known.len() > 16).then(|| {
        known
            .iter()
            .map(|r| (r.mailbox.address.as_str(), &r.mailbox.address))
            .collect()
    });
    let lookup = |v: &str| -> Option<Address> {
        let v = bracketed(v);
        let hit = match &index {
            Some(index) => index.get(v).copied(),
            None => known
                .iter()
                .map(|r| &r.mailbox.address)
                .find(|a| a.as_str() == v),
        };
        match hit {
            Some(a) => Some(a.clone()),
            None => Address::parse(v),
        }
    };
    // A UTF-8 byte order mark before the first line (the charset decoder of the general path
    // drops it; the fast path must too).
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut recipients: Vec<EnvelopeRecipient> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        let key = key.trim();
        let is = |k: &str| key.eq_ignore_ascii_case(k);
        let kind = if is("to") {
            EnvelopeKind::To
        } else if is("cc") {
            EnvelopeKind::Cc
        } else if is("bcc") {
            EnvelopeKind::Bcc
        } else if is("recipient") {
            EnvelopeKind::Recipient
        } else {
            continue;
        };
        // `a@x, Expanded: dl@x` / `a@x, Forwarded: y@z`.
        let mut items = value.split(',');
        let Some(address) = items.next().and_then(lookup) else {
            continue;
        };
        let mut r = EnvelopeRecipient {
            address,
            kind,
            expanded_from: None,
            forwarded_for: None,
        };
        for item in items {
            if let Some((k, v)) = item.split_once(':') {
                let k = k.trim();
                if k.eq_ignore_ascii_case("expanded") {
                    r.expanded_from = address_of(v);
                } else if k.eq_ignore_ascii_case("forwarded") {
                    r.forwarded_for = address_of(v);
                }
            }
        }
        recipients.push(r);
    }
    // One recipient per (address, kind), first seen kept: the same union as merged reports.
    let mut unique = Vec::with_capacity(recipients.len());
    crate::model::add_envelope_recipients(&mut unique, recipients);
    unique
}

/// The address of `a@x`, `<a@x>` or `Name <a@x>`.
fn address_of(v: &str) -> Option<Address> {
    Address::parse(bracketed(v))
}

/// `a@x` of `a@x`, `<a@x>` or `Name <a@x>`, trimmed.
fn bracketed(v: &str) -> &str {
    let v = v.trim();
    match (v.rfind('<'), v.rfind('>')) {
        (Some(a), Some(b)) if a < b => v[a + 1..b].trim(),
        _ => v,
    }
}

/// Writes a journal report of `original` as Exchange does (the layout in the module doc):
/// the envelope lines, then the original attached unaltered as `message/rfc822`, minus its
/// Bcc and Resent-Bcc header fields (the original is what was transmitted). For test data
/// and benchmarks (`examples/to_journal.rs`); `n` numbers the report's own Message-ID.
pub fn render(original: &[u8], recipients: &[EnvelopeRecipient], n: u64) -> Vec<u8> {
    let env = crate::headers::parse_envelope(original).unwrap_or_default();
    let transmitted = without_bcc(original, env.header_len);
    let mut boundary = format!("journal-report-{n}");
    while memchr::memmem::find(&transmitted, boundary.as_bytes()).is_some() {
        boundary.push('x');
    }
    let sender = env.from.first().map(|m| m.address.as_str()).unwrap_or("");
    let domain = sender
        .rsplit_once('@')
        .map_or("journal.invalid", |(_, d)| d);
    // One line each, as Exchange writes them: no folding, no encoded words.
    let one_line = |s: &str| s.replace(['\r', '\n'], " ");
    let subject = one_line(env.subject.as_deref().unwrap_or(""));
    let mut out = Vec::with_capacity(original.len() + 512 + recipients.len() * 40);
    let mut w = |s: &str| out.extend_from_slice(s.as_bytes());
    w(&format!(
        "From: Microsoft Exchange Server <MicrosoftExchange@{domain}>\n\
         To: journal@{domain}\n\
         Subject: {subject}\n\
         Message-ID: <journal-report-{n}@{domain}>\n\
         X-MS-Journal-Report:\n\
         MIME-Version: 1.0\n\
         Content-Type: multipart/mixed; boundary=\"{boundary}\"\n\n\
         --{boundary}\n\
         Content-Type: text/plain; charset=\"utf-8\"\n\
         Content-Transfer-Encoding: 8bit\n\n\
         Sender: {sender}\n\
         Subject: {subject}\n"
    ));
    if let Some(id) = &env.message_id {
        w(&format!("Message-Id: <{}>\n", one_line(id)));
    }
    for r in recipients {
        let key = match r.kind {
            EnvelopeKind::To => "To",
            EnvelopeKind::Cc => "Cc",
            EnvelopeKind::Bcc => "Bcc",
            EnvelopeKind::Recipient => "Recipient",
        };
        w(&format!("{key}: {}", r.address));
        if let Some(dl) = &r.expanded_from {
            w(&format!(", Expanded: {dl}"));
        }
        if let Some(f) = &r.forwarded_for {
            w(&format!(", Forwarded: {f}"));
        }
        w("\n");
    }
    w(&format!("\n--{boundary}\nContent-Type: message/rfc822\n\n"));
    out.extend_from_slice(&transmitted);
    // The line break before a boundary belongs to the boundary (RFC 2046): the original keeps
    // its own last one.
    out.push(b'\n');
    out.extend_from_slice(format!("--{boundary}--\n").as_bytes());
    out
}

/// How many named recipients make a message a bulk send for [`render_mbox`].
pub const BULK: usize = 10;

/// An mbox rendered as a journal mailbox: every message wrapped in a report ([`render`])
/// whose envelope lists the recipients its headers name ([`recipients_of`]); a message that
/// names none (its envelope is unknown) is copied unwrapped, so the mailbox mixes both. The
/// messages' bytes are copied as they are, `>From ` quoting included: the result is an mbox.
/// `bulk_bcc` is added as Bcc recipients to the envelope of every message that names
/// [`BULK`] recipients or more: what a mailer that Bcc's deliverability-monitoring seed
/// addresses on its bulk sends leaves in the journal (they receive each such message without
/// being shown).
pub fn render_mbox(mbox: &[u8], bulk_bcc: &[&str]) -> Vec<u8> {
    let mut out = Vec::with_capacity(mbox.len() + mbox.len() / 4);
    for (i, span) in super::mbox::split(mbox, true).into_iter().enumerate() {
        let raw = &mbox[span.content..span.end];
        let mut rcpts = crate::headers::parse_envelope(raw)
            .map(|e| recipients_of(&e))
            .unwrap_or_default();
        if rcpts.len() >= BULK {
            rcpts.extend(
                bulk_bcc
                    .iter()
                    .filter_map(|a| Address::parse(a))
                    .map(|address| EnvelopeRecipient {
                        address,
                        kind: EnvelopeKind::Bcc,
                        expanded_from: None,
                        forwarded_for: None,
                    }),
            );
        }
        if rcpts.is_empty() {
            out.extend_from_slice(&mbox[span.start..span.end]);
        } else {
            out.extend_from_slice(b"From MAILER-DAEMON Fri Nov  1 09:00:00 2019\n");
            out.extend_from_slice(&render(raw, &rcpts, i as u64 + 1));
        }
        out.push(b'\n');
    }
    out
}

/// The envelope recipients a message's own headers name (To, Cc, Bcc and the Resent-
/// fields), as a journal report would list them for a message delivered to exactly those.
pub fn recipients_of(env: &crate::model::Envelope) -> Vec<EnvelopeRecipient> {
    use crate::model::Field;
    let mut seen = std::collections::HashSet::new();
    env.recipients
        .iter()
        .filter(|r| seen.insert(r.mailbox.address.clone()))
        .map(|r| EnvelopeRecipient {
            address: r.mailbox.address.clone(),
            kind: match r.field {
                Field::To | Field::ResentTo => EnvelopeKind::To,
                Field::Cc | Field::ResentCc => EnvelopeKind::Cc,
                Field::Bcc | Field::ResentBcc => EnvelopeKind::Bcc,
            },
            expanded_from: None,
            forwarded_for: None,
        })
        .collect()
}

/// `raw` without its Bcc and Resent-Bcc header fields (continuation lines included);
/// `header_len` is the header block's length ([`crate::model::Envelope::header_len`]).
fn without_bcc(raw: &[u8], header_len: usize) -> Vec<u8> {
    let end = if header_len == 0 {
        raw.len()
    } else {
        header_len.min(raw.len())
    };
    let mut out = Vec::with_capacity(raw.len());
    let mut skipping = false;
    for line in raw[..end].split_inclusive(|&b| b == b'\n') {
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if !continuation {
            let name = line.split(|&b| b == b':').next().unwrap_or(b"");
            skipping =
                name.eq_ignore_ascii_case(b"bcc") || name.eq_ignore_ascii_case(b"resent-bcc");
        }
        if !skipping {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(&raw[end..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "From: Microsoft Exchange <journal@corp.example>\r\n\
        To: journal-mailbox@corp.example\r\n\
        Subject: Important changes\r\n\
        X-MS-Journal-Report:\r\n\
        MIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
        \r\n\
        --b1\r\n\
        Content-Type: text/plain; charset=us-ascii\r\n\
        \r\n\
        Sender: noreply@corp.example\r\n\
        Subject: Important changes\r\n\
        Message-Id: <m1@corp.example>\r\n\
        To: Ann@Gmail.com\r\n\
        Cc: bob@example.org\r\n\
        Bcc: carl@yahoo.com\r\n\
        Recipient: dora@web.de, Expanded: customers@corp.example\r\n\
        Recipient: eve@gmx.de, Forwarded: old@corp.example\r\n\
        To: ann@gmail.com\r\n\
        \r\n\
        --b1\r\n\
        Content-Type: message/rfc822\r\n\
        \r\n\
        From: noreply@corp.example\r\n\
        To: ann@gmail.com, bob@example.org\r\n\
        Subject: Important changes\r\n\
        Message-ID: <m1@corp.example>\r\n\
        \r\n\
        Hello\r\n\
        \r\n\
        --b1--\r\n";

    /// Envelope lines naming the original's header addresses reuse them: the same
    /// recipients as parsed afresh, whether found along the list or in the index (> 16).
    #[test]
    fn reused_header_addresses_are_the_addresses_parsed_afresh() {
        for n in [1, 40] {
            let mut to: Vec<String> = (0..n).map(|i| format!("U{i}@Gmail.com")).collect();
            to.push("\"odd\"@x.example".into());
            let original = format!("From: a@corp.example\nTo: {}\n\nhi\n", to.join(", "));
            let rcpts =
                recipients_of(&crate::headers::parse_envelope(original.as_bytes()).unwrap());
            let mut report = String::from_utf8(render(original.as_bytes(), &rcpts, 1)).unwrap();
            // As written by hand: a case the canonical form differs from, a display name.
            report = report.replace(
                "To: u0@gmail.com\n",
                "To: U0@GMAIL.com\nCc: Ann <u0@gmail.com>\n",
            );
            let located = locate(report.as_bytes()).unwrap();
            let env = crate::headers::parse_envelope(located.original().unwrap()).unwrap();
            let reused = located.report(&env.recipients).unwrap();
            assert_eq!(Ok(reused.clone()), unwrap(report.as_bytes()), "n = {n}");
            assert_eq!(reused.recipients.len(), n + 2, "n = {n}");
        }
    }

    /// The fast path's answer, `None` where it leaves the report to the general path.
    fn flat(raw: &[u8]) -> Option<Result<Report<'_>, JournalError>> {
        locate_flat(raw).map(|l| l.report(&[]))
    }

    #[test]
    fn reads_the_envelope_and_borrows_the_original() {
        let raw = REPORT.as_bytes();
        let r = unwrap(raw).unwrap();
        let got: Vec<(&str, EnvelopeKind)> = r
            .recipients
            .iter()
            .map(|r| (r.address.as_str(), r.kind))
            .collect();
        assert_eq!(
            got,
            [
                ("ann@gmail.com", EnvelopeKind::To),
                ("bob@example.org", EnvelopeKind::Cc),
                ("carl@yahoo.com", EnvelopeKind::Bcc),
                ("dora@web.de", EnvelopeKind::Recipient),
                ("eve@gmx.de", EnvelopeKind::Recipient),
            ]
        );
        assert_eq!(
            r.recipients[3].expanded_from.as_ref().map(Address::as_str),
            Some("customers@corp.example")
        );
        assert_eq!(
            r.recipients[4].forwarded_for.as_ref().map(Address::as_str),
            Some("old@corp.example")
        );
        let Cow::Borrowed(o) = r.original else {
            panic!("an unencoded original is borrowed");
        };
        assert!(o.starts_with(b"From: noreply@corp.example\r\nTo: ann@gmail.com"));
        let start = o.as_ptr() as usize - raw.as_ptr() as usize;
        assert_eq!(&raw[start..start + 4], b"From");
    }

    #[test]
    fn html_envelope_and_base64_original() {
        let report = "X-MS-Journal-Report:\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/html\n\n<html><body><p>Sender: n@corp.example<br>To: a&#64;gmail.com<br/>Bcc: b@yahoo.com</p></body></html>\n--b\nContent-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\nRnJvbTogbkBjb3JwLmV4YW1wbGUKVG86IGFAZ21haWwuY29tCgpoaQo=\n--b--\n";
        let r = unwrap(report.as_bytes()).unwrap();
        assert_eq!(r.recipients.len(), 2);
        assert_eq!(r.recipients[0].address.as_str(), "a@gmail.com");
        assert_eq!(r.recipients[1].kind, EnvelopeKind::Bcc);
        assert_eq!(
            &*r.original,
            b"From: n@corp.example\nTo: a@gmail.com\n\nhi\n"
        );
    }

    #[test]
    fn render_writes_what_unwrap_reads() {
        let original = b"From: Shop <news@shop.example>\nTo: ann@gmail.com\nBcc: bob@yahoo.com,\n carl@web.de\nSubject: Hi\nMessage-ID: <h1@shop.example>\n\nBody\n";
        let env = crate::headers::parse_envelope(original).unwrap();
        let mut rcpts = recipients_of(&env);
        rcpts[1].expanded_from = Address::parse("vip@shop.example");
        let report = render(original, &rcpts, 7);
        let r = unwrap(&report).unwrap();
        assert_eq!(r.recipients, rcpts);
        assert_eq!(
            &*r.original,
            b"From: Shop <news@shop.example>\nTo: ann@gmail.com\nSubject: Hi\nMessage-ID: <h1@shop.example>\n\nBody\n",
            "transmitted without its Bcc field"
        );
        let outer = crate::headers::parse_envelope(&report).unwrap();
        assert!(outer.facts.journal_report);
    }

    #[test]
    fn the_fast_path_agrees_with_the_mime_parser() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/readers/journal");
        let mut fast = 0;
        let mut cases: Vec<Vec<u8>> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect();
        cases.push(REPORT.as_bytes().to_vec());
        cases.push(REPORT.replace("\r\n", "\n").into_bytes());
        for raw in &cases {
            if let Some(r) = flat(raw) {
                fast += 1;
                assert_eq!(r, unwrap_general(raw), "{}", String::from_utf8_lossy(raw));
            }
        }
        assert!(fast >= 5, "the fast path takes Exchange's layout ({fast})");
    }

    /// Found by the `journal` fuzz target: a byte order mark before `Sender:` made the fast
    /// path miss the sender while the general path read it (a first `To:` line likewise).
    #[test]
    fn byte_order_mark_before_the_envelope_lines_regression() {
        let raw = REPORT
            .replace("charset=us-ascii", "charset=utf-8")
            .replace("\r\n\r\nSender:", "\r\n\r\n\u{feff}Sender:");
        let fast = flat(raw.as_bytes()).expect("Exchange's layout");
        assert_eq!(fast, unwrap_general(raw.as_bytes()));
        let first = raw.replace("\u{feff}Sender: noreply@corp.example\r\n", "\u{feff}");
        let fast = flat(first.as_bytes()).expect("Exchange's layout");
        assert_eq!(fast, unwrap_general(first.as_bytes()));
        assert_eq!(fast.unwrap().recipients.len(), 5, "the first line is read");
    }

    /// Found by the `journal` fuzz target: a line of the original starting with the delimiter
    /// and more (`--b1more`) ended the original for mailparse, not for the fast path.
    #[test]
    fn line_starting_with_the_delimiter_regression() {
        let raw = REPORT.replace("Hello\r\n", "Hello\r\n--b1more\r\nbye\r\n");
        assert!(flat(raw.as_bytes()).is_none(), "left to the general path");
        assert_eq!(unwrap(raw.as_bytes()), unwrap_general(raw.as_bytes()));
    }

    /// Found by the `journal` fuzz target: a report whose header block starts with a folded
    /// line is refused by mailparse; the fast path read it.
    #[test]
    fn header_block_starting_with_a_space_regression() {
        let raw = format!(" x\r\n{REPORT}");
        assert!(flat(raw.as_bytes()).is_none(), "left to the general path");
        assert_eq!(unwrap(raw.as_bytes()), unwrap_general(raw.as_bytes()));
        assert!(unwrap(raw.as_bytes()).is_err());
    }

    /// Found by the `journal` fuzz target: 8-bit bytes in a us-ascii envelope part were read
    /// as UTF-8 by the fast path and as windows-1252 by the general one (another address).
    #[test]
    fn eight_bit_bytes_in_a_us_ascii_envelope_regression() {
        let raw = REPORT.replacen("To: ann@gmail", "To: ann@gm\u{feff}ail", 1);
        assert!(flat(raw.as_bytes()).is_none(), "left to the general path");
        assert_eq!(unwrap(raw.as_bytes()), unwrap_general(raw.as_bytes()));
    }

    /// The fast path's Content-Type reader gives mailparse's media type, charset and
    /// boundary on everything it reads, and leaves the rest to it.
    #[test]
    fn content_type_agrees_with_mailparse() {
        for v in [
            "multipart/mixed; boundary=\"journal-report-1\"",
            "Multipart/Mixed;boundary=b1",
            "multipart/mixed; boundary=\"a;b\"; charset=utf-8",
            "multipart/mixed; boundary=a; boundary=b",
            "multipart/mixed; boundary=\"\"",
            "multipart/mixed; boundary=\"",
            "multipart/mixed; junk; boundary = x ; =y",
            "text/plain; charset=\"UTF-8\"",
            "text/plain; Charset=us-ascii; format=flowed",
            "text/plain; charset=utf8",
            "text/plain; charset=iso-8859-1",
            "text/plain",
            " text/PLAIN ;",
            "message/rfc822",
            "text/plain; charset*=utf-8''x",
            "multipart/mixed; boundary*0=a; boundary*1=b",
            "multipart/mixed; boundary=\"a\\\"b\"",
            "text/plain; charset=\u{fc}",
        ] {
            let theirs = mailparse::parse_content_type(v);
            let Some(ours) = ContentType::parse(v) else {
                assert!(
                    v.contains(['*', '\\']) || !v.is_ascii(),
                    "{v}: refused, but mailparse's reading is simple"
                );
                continue;
            };
            assert_eq!(
                ours.boundary,
                theirs.params.get("boundary").map(String::as_str),
                "{v}"
            );
            let kind = ours.kind();
            assert_eq!(
                kind == PartKind::Multipart,
                theirs.mimetype.starts_with("multipart/"),
                "{v}"
            );
            assert_eq!(
                kind == PartKind::Message,
                theirs.mimetype == "message/rfc822"
            );
            if let PartKind::TextPlain(c) = kind {
                assert_eq!(theirs.mimetype, "text/plain", "{v}");
                let charset = theirs.charset.to_ascii_lowercase();
                let expected = match charset.as_str() {
                    "us-ascii" => Charset::UsAscii,
                    "utf-8" | "utf8" => Charset::Utf8,
                    _ => Charset::Other,
                };
                assert_eq!(c, expected, "{v}");
            } else {
                assert_ne!(theirs.mimetype, "text/plain", "{v}");
            }
        }
    }

    #[test]
    fn long_envelopes_are_deduplicated_by_address_and_kind() {
        let mut text = String::from("Sender: n@corp.example\n");
        for round in 0..2 {
            for i in 0..40 {
                text.push_str(&format!("To: u{i}@gmail.com\n"));
            }
            if round == 0 {
                text.push_str("Bcc: u3@gmail.com\n");
            }
        }
        let r = parse_envelope_text(&text, &[]);
        assert_eq!(r.len(), 41, "40 To once each, and the Bcc line");
        assert_eq!(r[40].kind, EnvelopeKind::Bcc);
        let short =
            parse_envelope_text("To: a@gmail.com\nBcc: a@gmail.com\nTo: A@gmail.com\n", &[]);
        let got: Vec<_> = short.iter().map(|r| (r.address.as_str(), r.kind)).collect();
        assert_eq!(
            got,
            [
                ("a@gmail.com", EnvelopeKind::To),
                ("a@gmail.com", EnvelopeKind::Bcc)
            ]
        );
    }

    #[test]
    fn broken_reports_say_why() {
        let plain = "X-MS-Journal-Report:\nContent-Type: text/plain\n\nSender: a@b.example\n";
        assert!(matches!(
            unwrap(plain.as_bytes()),
            Err(JournalError::NotMultipart(_))
        ));
        let no_original = "X-MS-Journal-Report:\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nSender: n@corp.example\nTo: a@gmail.com\n--b--\n";
        assert_eq!(
            unwrap(no_original.as_bytes()),
            Err(JournalError::NoOriginal)
        );
        let no_rcpt = "X-MS-Journal-Report:\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nSender: n@corp.example\n--b\nContent-Type: message/rfc822\n\nFrom: n@corp.example\n\nx\n--b--\n";
        assert_eq!(unwrap(no_rcpt.as_bytes()), Err(JournalError::NoRecipients));
        let empty = "X-MS-Journal-Report:\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nTo: a@gmail.com\n--b\nContent-Type: message/rfc822\n\n\n--b--\n";
        assert_eq!(unwrap(empty.as_bytes()), Err(JournalError::EmptyOriginal));
    }
}
