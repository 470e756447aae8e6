//! Header block parsing into an [`Envelope`].
//!
//! Only the header block is read: its end (the first blank line) is found with `memchr`, the
//! block is split into fields here (this file), and only the fields the audit needs (From,
//! To, Cc, Bcc, Resent-To/Cc/Bcc, Subject, Date, Message-ID) are decoded, each with
//! `mailparse` (`parse_header`, `addrparse_header`, `MailHeader::get_value`, `dateparse`).
//! A few more fields are recorded as [`crate::model::HeaderFacts`] (presence, counts, short
//! values); every other field is skipped after one length-and-first-letter check.
//!
//! Files: `envelope.rs` (which field goes where, header facts), `list.rs` (the address-list
//! splitter and groups), `mailbox.rs` (one mailbox item: fast path, mailparse, salvage),
//! `encoded.rs` (unstructured values, RFC 2047 encoded words), `date.rs` (Date repair).
//!
//! Around mailparse (each covered by a test in the file that does it):
//! - Address lists are split into top-level items (`list.rs`) before mailparse sees them. mailparse
//!   rejects a whole list when one item is bad (one address without a domain would hide a
//!   thousand others), and its encoded-word boundary check is O(line length) per `=?`, which
//!   makes a 20,000-address one-line header quadratic. The splitter treats quoted strings,
//!   comments, angle brackets and encoded words as atomic, so a comma inside any of them never
//!   splits a list, and it handles groups (`name: a, b;`) itself.
//! - Invalid UTF-8 is replaced (lossy) instead of mailparse's whole-value Latin-1 fallback,
//!   which would garble the valid UTF-8 around a bad byte.
//! - Over-long values are guarded: an address item over [`MAX_ITEM`] bytes is parsed without
//!   encoded-word decoding (linear), a Subject over [`MAX_DECODE`] bytes is truncated, and a
//!   Date with an absurd number is not handed to `dateparse` (whose year loop is linear in the
//!   year).
//! - mailparse does not understand nested comments, misses encoded words after raw UTF-8 (it
//!   mixes byte and character offsets), and `dateparse` answers `Ok(0)` for garbage and
//!   rejects common real-world dates (no seconds, `0102` years, `+-0500`, asctime): each is
//!   worked around (`mailbox::push_without_comments`, `encoded::redecode`,
//!   `date::normalise_date`).
//! - Speed: the plain forms `addr`, `<addr>`, `Name <addr>` and values without `=?` skip
//!   mailparse (property-tested to give the same result); everything else goes through it.
//!
//! A message whose first line is not a header field has no header block: that is an error.
//! A leading mbox `From ` line is skipped. The block ends at the first blank line, or, when
//! there is none, at the first line that is neither a field nor a continuation (with a
//! warning), or at the end of the input.

mod date;
mod encoded;
mod envelope;
mod list;
mod mailbox;

use crate::model::{Envelope, HeaderWarning, HeaderWarningKind, PartsHint};

/// Whether a message's own Content-Type can give it parts (`multipart/*`, `message/*`), from
/// the lines of its header block fed one by one: without one, the MIME tree is a single
/// part. `true` whenever the block leaves a doubt (two Content-Type fields, one without a
/// colon, a value that does not start with a letter). Only a line's first 12 bytes and,
/// for a Content-Type line, its own value (not its continuation lines) are read.
#[derive(Debug, Clone, Copy, Default)]
pub struct ContentTypeCheck {
    /// The first Content-Type line's verdict.
    first: Option<bool>,
    doubt: bool,
}

impl ContentTypeCheck {
    /// One line of the header block (without its `\n`; a trailing `\r` may stay).
    #[inline]
    pub fn line(&mut self, line: &[u8]) {
        const NAME: &[u8] = b"content-type";
        if line.len() < NAME.len() || !line[..NAME.len()].eq_ignore_ascii_case(NAME) {
            return;
        }
        let Some(colon) = memchr::memchr(b':', line) else {
            self.doubt = true;
            return;
        };
        let v = line[colon + 1..].trim_ascii();
        let starts = |p: &[u8]| v.len() >= p.len() && v[..p.len()].eq_ignore_ascii_case(p);
        let nests = !v.first().is_some_and(u8::is_ascii_alphabetic)
            || starts(b"multipart")
            || starts(b"message");
        if self.first.replace(nests).is_some() {
            self.doubt = true;
        }
    }

    /// The verdict once the block's lines are all fed.
    pub fn may_nest(&self) -> bool {
        self.doubt || self.first == Some(true)
    }
}

/// Why a message has no usable header block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct HeaderError {
    pub reason: String,
}

impl HeaderError {
    fn new(reason: impl Into<String>) -> Self {
        HeaderError {
            reason: reason.into(),
        }
    }
}

/// RFC 5322 line length limit; longer lines get a warning.
const LONG_LINE: usize = 998;
/// Address items longer than this are parsed without encoded-word decoding (see module doc).
pub const MAX_ITEM: usize = 4096;
/// Subject/Date/Message-ID values longer than this are truncated before decoding.
pub const MAX_DECODE: usize = 16 * 1024;
/// More `=?` than this in one address item (or [`MAX_WORDS`] in a Subject) and mailparse's
/// encoded-word scan, O(line) per `=?`, would go quadratic: such items are parsed without
/// decoding, such values cut before the next `=?`. Real names need a handful of words.
pub const MAX_ITEM_WORDS: usize = 16;
/// See [`MAX_ITEM_WORDS`].
pub const MAX_WORDS: usize = 64;
/// At most this many warnings per message are kept; the rest are counted in one last line.
const MAX_WARNINGS: usize = 32;

/// If `line` starts a header field (`name:` with printable ASCII name, optional blanks before
/// the colon), the length of the name.
fn field_name_len(line: &[u8]) -> Option<usize> {
    // Printable ASCII but ':', by table: one load per byte (this runs on every header line).
    const NAME: [bool; 256] = {
        let mut t = [false; 256];
        let mut b = 33;
        while b <= 126 {
            t[b] = b != b':' as usize;
            b += 1;
        }
        t
    };
    let mut i = (line.iter())
        .position(|&b| !NAME[b as usize])
        .unwrap_or(line.len());
    if i == 0 {
        return None;
    }
    let name_len = i;
    while i < line.len() && (line[i] == b' ' || line[i] == b'\t') {
        i += 1;
    }
    (i < line.len() && line[i] == b':').then_some(name_len)
}

/// Warning collector with a cap, so a 20,000-address header of bad addresses stays small.
/// The detail is built only when the warning is kept.
struct Warnings<'a> {
    out: &'a mut Vec<HeaderWarning>,
    dropped: usize,
}

impl Warnings<'_> {
    fn push(
        &mut self,
        kind: HeaderWarningKind,
        field: Option<&str>,
        detail: impl FnOnce() -> String,
    ) {
        if self.out.len() < MAX_WARNINGS {
            self.out.push(HeaderWarning::new(kind, field, detail()));
        } else {
            self.dropped += 1;
        }
    }
    fn finish(self) {
        if self.dropped > 0 {
            self.out.push(HeaderWarning::new(
                HeaderWarningKind::TooManyWarnings,
                None,
                self.dropped.to_string(),
            ));
        }
    }
}

/// A short printable excerpt for warnings.
fn excerpt(s: &str) -> String {
    const MAX: usize = 60;
    let t = s.trim();
    if t.len() <= MAX {
        return t.to_owned();
    }
    let mut end = MAX;
    while !t.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &t[..end])
}

/// One header field located in the raw message.
struct RawField<'a> {
    /// The whole field, `name: value` with continuation lines, without the final line break.
    bytes: &'a [u8],
    name: &'a [u8],
    /// Offset of the value (just after the colon) inside `bytes`.
    value_at: usize,
}

/// Parses the header block of a whole stored message (the body is not parsed).
///
/// Errors only when there is no header block at all (empty input, first line not a header
/// field, binary junk); everything else is parsed with warnings in `Envelope::warnings`.
pub fn parse_envelope(raw: &[u8]) -> Result<Envelope, HeaderError> {
    match parse(raw, false)? {
        Parsed::Message(env, _) => Ok(env),
        Parsed::JournalReport => unreachable!("only parse_message stops at a journal report"),
    }
}

/// A header block as the scanner needs it: a message's envelope, or the mark of a journal
/// report (whose own header fields nobody audits: the original inside is the message).
#[derive(Debug)]
// Boxing the envelope would cost an allocation per message; the value is moved once.
#[allow(clippy::large_enum_variant)]
pub enum Parsed {
    /// The envelope, and what the walk over the header lines saw of the Content-Type.
    Message(Envelope, PartsHint),
    JournalReport,
}

/// [`parse_envelope`], except that a header block with `X-MS-Journal-Report:` is not parsed
/// field by field: the report's header fields are worth nothing to the audit, and parsing
/// them cost a journal scan ~7% of its time.
pub fn parse_message(raw: &[u8]) -> Result<Parsed, HeaderError> {
    parse(raw, true)
}

/// The header walk of both; with `journal_stops`, fields are applied only once the block is
/// known not to be a journal report's (the same fields, in the same order, as without).
fn parse(raw: &[u8], journal_stops: bool) -> Result<Parsed, HeaderError> {
    if raw.is_empty() {
        return Err(HeaderError::new("empty message"));
    }
    let mut env = Envelope::default();
    let mut warn_vec = Vec::new();
    let mut warn = Warnings {
        out: &mut warn_vec,
        dropped: 0,
    };
    let mut scratch = Vec::new();

    let mut pos = 0usize;
    // A one-message file exported from an mbox may still start with its `From ` line.
    if raw.starts_with(b"From ") && field_name_len(first_line(raw)).is_none() {
        pos = memchr::memchr(b'\n', raw).map_or(raw.len(), |n| n + 1);
    }
    // (field start, name len, end)
    let mut current: Option<(usize, usize, usize)> = None;
    // With `journal_stops`: the steps, applied after the walk, in the walk's order. Room for
    // a usual header block's fields up front: grown from empty, it was reallocated four
    // times per message (~1% of a scan's CPU).
    let mut held: Vec<Step> = Vec::with_capacity(if journal_stops { 32 } else { 0 });
    let mut apply = |step: Step, env: &mut Envelope, warn: &mut Warnings<'_>| {
        if journal_stops {
            held.push(step);
        } else {
            step.apply(raw, env, warn, &mut scratch);
        }
    };
    let mut long_line_warned = false;
    let mut content_type = ContentTypeCheck::default();
    // The block ends at a blank line or the input's end, where the check's walk ends too.
    let mut parts_known = true;
    let header_len;
    loop {
        if pos >= raw.len() {
            header_len = raw.len();
            break;
        }
        let nl = memchr::memchr(b'\n', &raw[pos..]).map(|i| pos + i);
        let line_end = nl.unwrap_or(raw.len());
        let content_end = if line_end > pos && raw[line_end - 1] == b'\r' {
            line_end - 1
        } else {
            line_end
        };
        let line = &raw[pos..content_end];
        let next = nl.map_or(raw.len(), |n| n + 1);
        if line.is_empty() {
            if current.is_none() {
                return Err(HeaderError::new(
                    "no header block: the message starts with a blank line",
                ));
            }
            header_len = next;
            break;
        }
        if line.len() > LONG_LINE && !long_line_warned {
            long_line_warned = true;
            apply(Step::Overlong(pos, line.len()), &mut env, &mut warn);
        }
        if line[0] == b' ' || line[0] == b'\t' {
            match current.as_mut() {
                Some(cur) => cur.2 = content_end,
                None => {
                    return Err(HeaderError::new(
                        "no header block: the first line is a continuation line",
                    ))
                }
            }
        } else if let Some(name_len) = field_name_len(line) {
            content_type.line(line);
            if let Some(field) = current.take() {
                apply(Step::Field(field), &mut env, &mut warn);
            }
            if journal_stops && envelope::is_journal_report(&line[..name_len]) {
                return Ok(Parsed::JournalReport);
            }
            current = Some((pos, name_len, content_end));
        } else {
            if current.is_none() {
                let binary = std::str::from_utf8(line).is_err()
                    || line.iter().any(|&b| (b < 32 && b != b'\t') || b == 127);
                return Err(HeaderError::new(if binary {
                    "no header block: binary data where the first header field should be"
                } else {
                    "no header block: the first line is not a header field"
                }));
            }
            apply(Step::NotTerminated(pos), &mut env, &mut warn);
            // A walk to the first blank line would go on past this line.
            parts_known = false;
            header_len = pos;
            break;
        }
        pos = next;
    }
    if let Some(field) = current.take() {
        apply(Step::Field(field), &mut env, &mut warn);
    }
    for step in held {
        step.apply(raw, &mut env, &mut warn, &mut scratch);
    }
    env.header_len = header_len;
    warn.finish();
    env.warnings = warn_vec;
    let parts = match (parts_known, content_type.may_nest()) {
        (false, _) => PartsHint::Unknown,
        (true, false) => PartsHint::Single,
        (true, true) => PartsHint::MayNest,
    };
    Ok(Parsed::Message(env, parts))
}

/// What the header walk found, in order: a field (start, name length, end) or a warning.
enum Step {
    Field((usize, usize, usize)),
    /// The first overlong line: (offset, length).
    Overlong(usize, usize),
    /// A line that is neither a field nor a continuation, at this offset.
    NotTerminated(usize),
}

impl Step {
    fn apply(self, raw: &[u8], env: &mut Envelope, warn: &mut Warnings<'_>, scratch: &mut Vec<u8>) {
        match self {
            Step::Field((s, n, e)) => envelope::handle_field(raw, s, n, e, env, warn, scratch),
            Step::Overlong(pos, len) => warn.push(HeaderWarningKind::OverlongLine, None, || {
                format!("{len} bytes at byte {pos}")
            }),
            Step::NotTerminated(pos) => {
                warn.push(HeaderWarningKind::HeaderNotTerminated, None, || {
                    pos.to_string()
                })
            }
        }
    }
}

fn first_line(raw: &[u8]) -> &[u8] {
    &raw[..memchr::memchr(b'\n', raw).unwrap_or(raw.len())]
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn parse(s: &str) -> Envelope {
        parse_envelope(s.as_bytes()).unwrap()
    }

    pub(crate) fn addrs(e: &Envelope) -> Vec<&str> {
        e.recipients
            .iter()
            .map(|r| r.mailbox.address.as_str())
            .collect()
    }

    /// The warnings as the human sentences they print as.
    pub(crate) fn texts(e: &Envelope) -> Vec<String> {
        e.warnings.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn first_line_must_be_a_header_field() {
        for (raw, reason) in [
            (
                &b" folded: no"[..],
                "no header block: the first line is a continuation line",
            ),
            (
                b"\nTo: a@b.example\n",
                "no header block: the message starts with a blank line",
            ),
            (
                b"Hello world\nTo: a@b\n",
                "no header block: the first line is not a header field",
            ),
            (
                b"\x7fELF\x02\x01:\x00\n",
                "no header block: binary data where the first header field should be",
            ),
        ] {
            assert_eq!(parse_envelope(raw).unwrap_err().reason, reason, "{raw:?}");
        }
    }

    #[test]
    fn header_block_ends_at_a_non_field_line_with_a_warning() {
        let raw = b"To: a@b.example\nthis is body text\n";
        let e = parse_envelope(raw).unwrap();
        assert_eq!(e.header_len, 16);
        assert_eq!(addrs(&e), ["a@b.example"]);
        assert_eq!(
            texts(&e),
            ["header block not ended by a blank line; body assumed from byte 16"]
        );
        assert_eq!(
            e.warnings[0],
            HeaderWarning::new(HeaderWarningKind::HeaderNotTerminated, None, "16")
        );
    }

    #[test]
    fn header_len_counts_the_blank_line_in_both_line_endings() {
        assert_eq!(parse("To: a@b.example\n\nbody").header_len, 17);
        assert_eq!(
            parse_envelope(b"To: a@b.example\r\n\r\nbody")
                .unwrap()
                .header_len,
            19
        );
        assert_eq!(parse("To: a@b.example").header_len, 15);
    }

    #[test]
    fn two_hundred_kilobyte_lines_do_not_break_anything() {
        let junk = "=?".repeat(100_000);
        let raw = format!(
            "From: a@x.example\nSubject: {junk}\nTo: {junk}\nX-Long: {}\nCc: ok@y.example\n\nbody",
            "x".repeat(200_000)
        );
        let e = parse(&raw);
        assert_eq!(addrs(&e), ["ok@y.example"]);
        assert!(e.subject.as_deref().unwrap().len() <= MAX_DECODE);
        let w = texts(&e).join("\n");
        assert!(
            w.contains("over-long header line (200009 bytes at byte 18)"),
            "{w}"
        );
        assert!(
            w.contains("over-long Subject header (200001 bytes, truncated to "),
            "{w}"
        );
        let kinds: Vec<_> = e.warnings.iter().map(|w| w.kind).collect();
        assert_eq!(kinds[0], HeaderWarningKind::OverlongLine);
        assert!(
            kinds.contains(&HeaderWarningKind::TruncatedValue),
            "{kinds:?}"
        );
        assert!(
            kinds.contains(&HeaderWarningKind::OverlongItem),
            "{kinds:?}"
        );
        assert!(
            w.contains("over-long address item (200000 bytes) in To"),
            "{w}"
        );
    }

    #[test]
    fn warnings_are_capped() {
        let mut raw = String::from("To: ");
        for i in 0..100 {
            raw.push_str(&format!("nobody{i},\n "));
        }
        raw.push_str("a@b.example\n\n");
        let e = parse(&raw);
        assert_eq!(addrs(&e), ["a@b.example"]);
        assert_eq!(e.warnings.len(), MAX_WARNINGS + 1, "{:?}", e.warnings);
        let last = e.warnings.last().unwrap();
        assert_eq!(last.to_string(), "68 more warnings not shown");
        assert_eq!(
            (last.kind, last.detail.as_str()),
            (HeaderWarningKind::TooManyWarnings, "68")
        );
        assert!(e.warnings[..MAX_WARNINGS]
            .iter()
            .all(|w| w.kind == HeaderWarningKind::AddressWithoutDomain
                && w.field.as_deref() == Some("To")));
    }

    /// `Name: value` lines, one per field (no blank line after them).
    fn header_block(fields: &[(&str, String)]) -> Vec<u8> {
        let mut raw = Vec::new();
        for (name, value) in fields {
            raw.extend_from_slice(name.as_bytes());
            raw.extend_from_slice(b": ");
            raw.extend_from_slice(value.as_bytes());
            raw.push(b'\n');
        }
        raw
    }

    proptest! {
        /// The table gives the byte-by-byte reading: a name of printable ASCII but `:`,
        /// blanks, then `:`.
        #[test]
        fn field_name_len_by_table(line in proptest::collection::vec(
            proptest::sample::select(b"Ab-:; \t\x00\x7f\xe9~!".to_vec()), 0..12)
        ) {
            let mut i = 0;
            while i < line.len() && matches!(line[i], 33..=126) && line[i] != b':' {
                i += 1;
            }
            let name = i;
            while i < line.len() && (line[i] == b' ' || line[i] == b'\t') {
                i += 1;
            }
            let want = (name > 0 && i < line.len() && line[i] == b':').then_some(name);
            prop_assert_eq!(field_name_len(&line), want);
        }
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(raw in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = parse_envelope(&raw);
        }

        #[test]
        fn never_panics_on_header_shaped_input(
            fields in proptest::collection::vec(
                (prop_oneof![
                    Just("To"), Just("Cc"), Just("Bcc"), Just("From"), Just("Subject"),
                    Just("Date"), Just("Message-ID"), Just("Resent-Cc"), Just("X-Other"),
                    Just("Reply-To"), Just("In-Reply-To"), Just("References"),
                    Just("Precedence"), Just("List-Id"), Just("User-Agent"), Just("Received")
                ],
                "[ -~\t\u{e9}\u{4e2d}=?\"(),:;<>@\\\\\r\n]{0,120}"),
                0..12),
            body in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut raw = header_block(&fields);
            raw.push(b'\n');
            raw.extend_from_slice(&body);
            if let Ok(e) = parse_envelope(&raw) {
                prop_assert!(e.header_len <= raw.len());
                for r in &e.recipients {
                    prop_assert!(r.mailbox.address.as_str().contains('@'));
                    if let Some(g) = r.group {
                        prop_assert!(g < e.groups.len());
                    }
                }
                let members: usize = e.groups.iter().map(|g| g.members).sum();
                prop_assert_eq!(members, e.recipients.iter().filter(|r| r.group.is_some()).count());
                let f = &e.facts;
                for v in [&f.in_reply_to, &f.precedence, &f.list_id, &f.mailer] {
                    prop_assert!(v.as_ref().is_none_or(|v| v.len() <= envelope::MAX_FACT
                        && !v.is_empty() && v.trim() == v));
                }
                prop_assert!(f.reply_to.iter().all(|a| a.as_str().contains('@')));
                prop_assert!(e.warnings.len() <= MAX_WARNINGS + 1);
            }
        }

        /// The scanner's walk gives what `parse_envelope` gives, warnings and their order
        /// included, unless the block is a journal report's.
        #[test]
        fn parse_message_agrees_with_parse_envelope(
            fields in proptest::collection::vec(
                (prop_oneof![
                    Just("To"), Just("Cc"), Just("From"), Just("Subject"), Just("Date"),
                    Just("X-Other"), Just("Received"), Just(" folded"), Just("not a field"),
                    Just("X-MS-Journal-Report")
                ],
                "[ -~\t=?\"(),:;<>@\r]{0,1100}"),
                1..12),
        ) {
            let mut raw = header_block(&fields);
            raw.extend_from_slice(b"\nbody\n");
            match (parse_message(&raw), parse_envelope(&raw)) {
                (Ok(Parsed::JournalReport), Ok(e)) => prop_assert!(e.facts.journal_report),
                (Ok(Parsed::Message(m, _)), Ok(e)) => {
                    prop_assert!(!e.facts.journal_report);
                    prop_assert_eq!(m, e);
                }
                (Err(a), Err(b)) => prop_assert_eq!(a.reason, b.reason),
                (a, b) => prop_assert!(false, "{:?} vs {:?}", a, b),
            }
        }
    }
}
