//! The text content of a message for content rules, decoded only when needed and bounded.
//!
//! Fast path: a message whose raw bytes mention neither base64 nor quoted-printable nor HTML
//! is inspected as it is stored (one segment, zero copies, byte offsets map to file lines).
//! Otherwise mailparse splits the MIME tree to [`Limits::max_depth`]; text-like leaf parts
//! (text/*, CSV, JSON, XML, and attachments whose file name says text) are decoded
//! (base64/QP), HTML has its tags stripped, and `message/rfc822` parts are descended into.
//! Total decoded bytes and parts are capped so one message can never take unbounded work.
//! [`Segment::source`] says where a segment's text was (body, attachment, forwarded message)
//! and [`addresses`] finds the addresses in it.

use leakaudit_scanner::headers::ContentTypeCheck;
/// The HTML-to-text step lives in the scanner (the journal reader uses it too).
pub use leakaudit_scanner::html::{strip_html, strip_html_with, Layout};
use leakaudit_scanner::{Address, PartsHint};
use regex::bytes::Regex;
use std::borrow::Cow;
use std::sync::LazyLock;

/// Bounds on the work per message.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_depth: usize,
    pub max_parts: usize,
    /// Decoded bytes kept per message, all parts together.
    pub max_decoded: usize,
    /// Distinct addresses counted in one message's content (about 64 bytes each while
    /// counted). 8 MiB of decoded text holds at most ~1.2 million; only a raw body larger
    /// than that can reach the default.
    pub max_content_addresses: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 8,
            max_parts: 64,
            max_decoded: 8 << 20,
            max_content_addresses: 2_000_000,
        }
    }
}

/// Which limits stopped the decoding of part of a message: what lies beyond was not
/// inspected, so the message is not fully audited (an AWS key base64-encoded at depth 9 or
/// in the 71st part would otherwise pass the gate as "ok").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitsHit {
    /// A multipart or attached message nested deeper than `max_depth`.
    pub depth: bool,
    /// More parts than `max_parts`.
    pub parts: bool,
    /// More decoded text than `max_decoded` (a part cut short or left out).
    pub decoded: bool,
    /// More than `max_content_addresses` addresses in one message's content: the rest were
    /// not counted, so the affected list could miss some.
    pub addresses: bool,
}

impl LimitsHit {
    pub fn any(&self) -> bool {
        self.depth || self.parts || self.decoded || self.addresses
    }

    /// One sentence naming every limit hit, e.g. `MIME nesting deeper than 8 levels`.
    pub fn describe(&self, limits: &Limits) -> String {
        let mut parts = Vec::new();
        if self.depth {
            parts.push(format!(
                "MIME nesting deeper than {} levels (limit mime-depth)",
                limits.max_depth
            ));
        }
        if self.parts {
            parts.push(format!(
                "more than {} MIME parts (limit mime-parts)",
                limits.max_parts
            ));
        }
        if self.decoded {
            parts.push(format!(
                "more than {} MiB of decoded text (limit decoded-size)",
                limits.max_decoded >> 20
            ));
        }
        if self.addresses {
            parts.push(format!(
                "more than {} addresses in the content (limit content-addresses)",
                limits.max_content_addresses
            ));
        }
        parts.join("; ")
    }
}

/// A piece of text to inspect.
#[derive(Debug)]
pub struct Segment<'a> {
    pub text: Cow<'a, [u8]>,
    /// `body`, or `text/csv attachment "list.csv"`, for messages.
    pub what: Cow<'static, str>,
    /// Offset of `text` inside the raw message when `text` is a verbatim slice of it.
    pub raw_offset: Option<usize>,
}

/// Where a segment's text was in the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The body: the stored text, or a text part without a file name.
    Body,
    /// A text part with a file name (`Content-Disposition` filename or `Content-Type` name).
    Attachment(String),
    /// Inside an attached message (`message/rfc822`, a `.eml`/`.msg` file): a forward.
    Forwarded,
}

impl Source {
    /// `body`, `attachment:NAME` or `forwarded`.
    pub fn label(&self) -> String {
        match self {
            Source::Body => "body".into(),
            Source::Attachment(name) => format!("attachment:{name}"),
            Source::Forwarded => "forwarded".into(),
        }
    }
}

const ATTACHED_MESSAGE: &str = "attached message: ";

impl Segment<'_> {
    /// Where the text was, read from `what` (the one place `what` is built is this module).
    pub fn source(&self) -> Source {
        if self.what.starts_with(ATTACHED_MESSAGE) {
            return Source::Forwarded;
        }
        match self.what.split_once(" attachment \"") {
            Some((_, rest)) => {
                let name = rest.strip_suffix('"').unwrap_or(rest);
                let lower = name.to_ascii_lowercase();
                if lower.ends_with(".eml") || lower.ends_with(".msg") {
                    Source::Forwarded
                } else {
                    Source::Attachment(name.to_string())
                }
            }
            None => Source::Body,
        }
    }
}

static ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i-u)[a-z0-9._%+\-]{1,64}@[a-z0-9\-]{1,63}(?:\.[a-z0-9\-]{1,63})*\.[a-z]{2,24}(?-u:\b)",
    )
    .expect("static regex")
});

/// `20020908021306.25492.qmail@host`: a Message-ID quoted in a forwarded header, not a
/// person's address.
fn looks_like_message_id(local: &str) -> bool {
    let digits = local.bytes().filter(u8::is_ascii_digit).count();
    let letters = local.bytes().filter(u8::is_ascii_alphabetic).count();
    local.len() >= 12 && digits > letters
}

/// The addresses in `text` (canonical form, Message-ID-like local parts left out), each with
/// the byte offset where its match starts; repeats are yielded again.
pub fn addresses(text: &[u8]) -> impl Iterator<Item = (usize, Address)> + '_ {
    ADDRESS.find_iter(text).filter_map(|m| {
        let s = std::str::from_utf8(m.as_bytes()).ok()?;
        let a = Address::parse(s.trim_start_matches(['.', '-', '+']))?;
        (!looks_like_message_id(a.local())).then_some((m.start(), a))
    })
}

/// MIME markers and whether the text behind them is invisible without decoding. Matched
/// case-sensitively in the engine's single prefilter pass (case-insensitive matching would
/// disable its SIMD prefilter), so the spellings mailers actually use are listed.
pub const MIME_MARKERS: [(&str, bool); 15] = [
    ("base64", true),
    ("Base64", true),
    ("BASE64", true),
    ("message/rfc822", true),
    ("Message/rfc822", true),
    ("Message/RFC822", true),
    ("MESSAGE/RFC822", true),
    ("quoted-printable", false),
    ("Quoted-printable", false),
    ("Quoted-Printable", false),
    ("QUOTED-PRINTABLE", false),
    ("text/html", false),
    ("Text/html", false),
    ("Text/HTML", false),
    ("TEXT/HTML", false),
];

/// Offset of the body: after the first empty line (LF or CRLF). `None` without a body.
pub fn body_start(raw: &[u8]) -> Option<usize> {
    let mut i = 0;
    // An empty first line means no headers at all; the whole thing is body.
    loop {
        let nl = memchr::memchr(b'\n', &raw[i..])? + i;
        let line = &raw[i..nl];
        if line.is_empty() || line == b"\r" {
            return Some(nl + 1);
        }
        i = nl + 1;
        if i >= raw.len() {
            return None;
        }
    }
}

/// Whether the stored message needs MIME decoding before content rules can see its text:
/// it holds `base64`, `message/rfc822`, `quoted-printable` or `text/html`, in any case.
/// Each of them has a byte that no case changes (`6`, `/`, `-`): one SIMD search for those
/// three, each hit's window then compared, instead of a case-insensitive automaton over
/// every byte (no SIMD prefilter there; ~3% of an audit's instructions, on mass mails).
pub fn needs_decoding(raw: &[u8]) -> bool {
    let at = |start: Option<usize>, word: &[u8]| {
        start.is_some_and(|s| {
            raw.get(s..s + word.len())
                .is_some_and(|w| w.eq_ignore_ascii_case(word))
        })
    };
    memchr::memchr3_iter(b'6', b'/', b'-', raw).any(|i| match raw[i] {
        b'6' => at(i.checked_sub(4), b"base64"),
        b'/' => at(i.checked_sub(7), b"message/rfc822") || at(i.checked_sub(4), b"text/html"),
        _ => at(i.checked_sub(6), b"quoted-printable"),
    })
}

/// The segments of `raw` (the unquoted stored message).
pub fn segments<'a>(raw: &'a [u8], limits: &Limits) -> Vec<Segment<'a>> {
    segments_with(raw, limits, Layout::Flat)
}

/// [`segments`], with HTML turned into text as `html` says.
pub fn segments_with<'a>(raw: &'a [u8], limits: &Limits, html: Layout) -> Vec<Segment<'a>> {
    segments_checked(raw, limits, html).0
}

/// Which limits [`segments`] would hit on `raw`, for a pass that runs no content rule (`scan`).
/// Cheap for almost every message: the MIME tree is only parsed when a count of its
/// delimiter lines and attached messages says a limit could be reached at all (each nesting
/// level and each part needs one of them; decoded text is never longer than the message).
pub fn limits_hit(raw: &[u8], limits: &Limits) -> LimitsHit {
    limits_hit_hinted(raw, PartsHint::Unknown, limits)
}

/// [`limits_hit`] of a message's `raw` bytes with what the header parser saw of them
/// ([`leakaudit_scanner::Message::parts`]): the header lines are not walked a second time
/// (that walk was ~2% of a scan's CPU).
pub fn limits_hit_hinted(raw: &[u8], parts: PartsHint, limits: &Limits) -> LimitsHit {
    let bound = limits.max_depth.min(limits.max_parts);
    let nests = || match parts {
        PartsHint::Unknown => may_nest(raw),
        PartsHint::Single => false,
        PartsHint::MayNest => true,
    };
    // Within the size bound, no limit can be reached by one part at depth 0 (its body is
    // never longer than the message), nor with fewer delimiters and markers than the bound.
    if raw.len() <= limits.max_decoded && (!nests() || nesting_marks(raw, bound) < bound) {
        return LimitsHit::default();
    }
    segments_checked(raw, limits, Layout::Flat).1
}

/// How many delimiter lines (`\n--`) and attached-message markers (`rfc822`, `RFC822`: the
/// spellings of `MIME_MARKERS`) `raw` holds, counted up to `bound`: each nesting level and
/// each part needs one. memmem (SIMD): a case-insensitive automaton over every body cost
/// scan ~40% more CPU. The markers' digits in one pass, their letters checked at each hit:
/// one pass per spelling cost 5% of a scan's instructions more.
fn nesting_marks(raw: &[u8], bound: usize) -> usize {
    static DELIMITER: LazyLock<memchr::memmem::Finder<'static>> =
        LazyLock::new(|| memchr::memmem::Finder::new(b"\n--"));
    static DIGITS: LazyLock<memchr::memmem::Finder<'static>> =
        LazyLock::new(|| memchr::memmem::Finder::new(b"822"));
    let n = DELIMITER.find_iter(raw).take(bound).count();
    if n >= bound {
        return n;
    }
    n + (DIGITS.find_iter(raw))
        .filter(|&i| i >= 3 && matches!(&raw[i - 3..i], b"rfc" | b"RFC"))
        .take(bound - n)
        .count()
}

/// Whether the message's own Content-Type can give it parts: `multipart/*` or `message/*`.
/// Without one the MIME tree is a single part, so no part or depth limit can be reached and
/// the body need not be searched (three passes over every message were ~7% of a scan's
/// CPU). `true` whenever the header block leaves a doubt (two Content-Type fields, one
/// without a colon, a value that does not start with a letter), so that the count decides.
fn may_nest(raw: &[u8]) -> bool {
    let mut check = ContentTypeCheck::default();
    // The header block's lines, as `body_start` finds them: up to the first empty line.
    let mut rest = raw;
    while !rest.is_empty() {
        let (line, next) = match memchr::memchr(b'\n', rest) {
            Some(nl) => (&rest[..nl], &rest[nl + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        if line.is_empty() || line == b"\r" {
            break;
        }
        rest = next;
        check.line(line);
    }
    check.may_nest()
}

/// [`segments_with`], and which limits left part of the message out.
pub fn segments_checked<'a>(
    raw: &'a [u8],
    limits: &Limits,
    html: Layout,
) -> (Vec<Segment<'a>>, LimitsHit) {
    let start = body_start(raw).unwrap_or(raw.len());
    if !needs_decoding(raw) {
        let seg = Segment {
            text: Cow::Borrowed(&raw[start..]),
            what: Cow::Borrowed("body"),
            raw_offset: Some(start),
        };
        return (vec![seg], LimitsHit::default());
    }
    let mut out = Vec::new();
    let mut budget = Budget {
        parts: 0,
        bytes: 0,
        limits: *limits,
        html,
        hit: LimitsHit::default(),
    };
    match mailparse::parse_mail(raw) {
        Ok(mail) => walk(&mail, 0, &mut budget, &mut out),
        Err(_) => out.push(Segment {
            text: Cow::Borrowed(&raw[start..]),
            what: Cow::Borrowed("body (undecodable MIME)"),
            raw_offset: Some(start),
        }),
    }
    (out, budget.hit)
}

struct Budget {
    parts: usize,
    bytes: usize,
    limits: Limits,
    html: Layout,
    hit: LimitsHit,
}

fn text_like(mime: &str, filename: Option<&str>) -> bool {
    if mime.starts_with("text/") {
        return true;
    }
    if matches!(
        mime,
        "application/csv"
            | "application/json"
            | "application/xml"
            | "application/x-csv"
            | "application/vnd.ms-excel"
            | "application/x-ndjson"
    ) {
        return true;
    }
    // Exports often come as application/octet-stream with a telling name.
    filename.is_some_and(|f| {
        let f = f.to_ascii_lowercase();
        [
            ".csv", ".txt", ".tsv", ".json", ".xml", ".html", ".htm", ".vcf", ".log", ".md",
            ".pem", ".key", ".env",
        ]
        .iter()
        .any(|e| f.ends_with(e))
    })
}

fn walk<'a>(
    part: &mailparse::ParsedMail<'a>,
    depth: usize,
    b: &mut Budget,
    out: &mut Vec<Segment<'a>>,
) {
    if b.parts >= b.limits.max_parts {
        b.hit.parts = true;
        return;
    }
    if b.bytes >= b.limits.max_decoded {
        b.hit.decoded = true;
        return;
    }
    b.parts += 1;
    if !part.subparts.is_empty() {
        if depth < b.limits.max_depth {
            for sp in &part.subparts {
                walk(sp, depth + 1, b, out);
            }
        } else {
            b.hit.depth = true;
        }
        return;
    }
    let mime = part.ctype.mimetype.to_ascii_lowercase();
    let disp = part.get_content_disposition();
    let filename = disp
        .params
        .get("filename")
        .or_else(|| part.ctype.params.get("name"))
        .cloned();
    if mime == "message/rfc822" {
        if depth < b.limits.max_depth {
            if let Ok(body) = part.get_body_raw() {
                // The nested message owns its bytes; inspect its headers and body as text and
                // descend into its own MIME structure.
                let nested = body;
                if let Ok(inner) = mailparse::parse_mail(&nested) {
                    let mut inner_out = Vec::new();
                    if b.html == Layout::Quoting {
                        let end = body_start(&nested).unwrap_or(nested.len());
                        let room = b.limits.max_decoded - b.bytes;
                        let headers = nested[..end.min(room)].to_vec();
                        b.bytes += headers.len();
                        inner_out.push(Segment {
                            text: Cow::Owned(headers),
                            what: Cow::Borrowed("headers"),
                            raw_offset: None,
                        });
                    }
                    walk(&inner, depth + 1, b, &mut inner_out);
                    for s in inner_out {
                        out.push(Segment {
                            text: Cow::Owned(s.text.into_owned()),
                            what: Cow::Owned(format!("{ATTACHED_MESSAGE}{}", s.what)),
                            raw_offset: None,
                        });
                    }
                }
            }
        } else {
            b.hit.depth = true;
        }
        return;
    }
    if !text_like(&mime, filename.as_deref()) {
        return;
    }
    let Ok(mut body) = part.get_body_raw() else {
        return;
    };
    let room = b.limits.max_decoded - b.bytes;
    if body.len() > room {
        body.truncate(room);
        b.hit.decoded = true;
    }
    b.bytes += body.len();
    let is_html = mime == "text/html"
        || filename
            .as_deref()
            .is_some_and(|f| f.ends_with(".html") || f.ends_with(".htm"));
    let text = if is_html {
        strip_html_with(&body, b.html)
    } else {
        body
    };
    let what = Cow::Owned(match &filename {
        Some(f) => format!("{mime} attachment \"{f}\""),
        None => mime.clone(),
    });
    out.push(Segment {
        text: Cow::Owned(text),
        what,
        raw_offset: None,
    });
}

/// 1-based line of byte `pos` in `raw`.
pub fn line_of(raw: &[u8], pos: usize) -> u64 {
    memchr::memchr_iter(b'\n', &raw[..pos.min(raw.len())]).count() as u64 + 1
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use aho_corasick::AhoCorasick;
    use leakaudit_scanner::Message;
    use proptest::prelude::*;

    /// Issue 34: `limits_hit` settles most messages from their header block; whatever it
    /// skips, the decoder must agree that no limit is reached.
    #[test]
    fn limits_hit_agrees_with_the_decoder_regression() {
        let limits = Limits {
            max_depth: 2,
            max_parts: 3,
            ..Limits::default()
        };
        let parts = |ct: &str| {
            let mut m = format!("From: a@b.example\n{ct}\n\n");
            for _ in 0..5 {
                // base64: the decoder walks the tree only when something needs decoding.
                m += "--b\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\neA==\n";
            }
            m + "--b--\n"
        };
        let nested = "Content-Type: message/rfc822\n\nContent-Type: message/rfc822\n\n\
                      Content-Type: message/rfc822\n\nSubject: deep\n\nx\n";
        let messages = [
            // A text body with many delimiter-like lines: one part.
            parts("Content-Type: text/plain"),
            parts(""),
            // Multipart, however the header is written.
            parts("Content-Type: multipart/mixed; boundary=b"),
            parts("content-TYPE:   MULTIPART/mixed; boundary=b"),
            parts("Content-Type:\n multipart/mixed; boundary=b"),
            parts("Content-Type: \"multipart/mixed\"; boundary=b"),
            parts("Content-Type: text/plain\nContent-Type: multipart/mixed; boundary=b"),
            parts("Content-Type: multipart/mixed; boundary=b\r"),
            format!("From: a@b.example\n{nested}"),
        ];
        let mut hits = 0;
        for m in &messages {
            let want = segments_checked(m.as_bytes(), &limits, Layout::Flat).1;
            hits += usize::from(want.any());
            assert_eq!(limits_hit(m.as_bytes(), &limits), want, "{m}");
        }
        assert!(hits >= 5, "the multipart forms must reach a limit: {hits}");
    }

    fn header_line() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("From: a@b.example".to_owned()),
            Just("To: c@d.example".to_owned()),
            Just("Content-Type: text/plain".to_owned()),
            Just("content-TYPE:   MULTIPART/mixed; boundary=b".to_owned()),
            Just("Content-Type: message/rfc822".to_owned()),
            Just("Content-Type:".to_owned()),
            Just("Content-Type: \"multipart/x\"".to_owned()),
            Just("Content-Type : text/html".to_owned()),
            Just("Content-Type-Options: nosniff".to_owned()),
            Just("Content-Type multipart/mixed".to_owned()),
            Just(" multipart/mixed; boundary=b".to_owned()),
            Just("\tcontinued".to_owned()),
            Just("not a field".to_owned()),
            Just("From sender@x Mon Jan  1 00:00:00 2024".to_owned()),
            Just("".to_owned()),
            "[ -~]{0,20}",
        ]
    }

    proptest! {
        /// The header parser's hint says what `may_nest` says of the same bytes whenever it
        /// says anything, and the limits come out the same with it as without it.
        #[test]
        fn parts_hint_agrees_with_a_walk_over_the_header_lines(
            lines in prop::collection::vec((header_line(), any::<bool>()), 1..8),
            body in prop_oneof![Just(""), Just("--b\nx\n--b\nContent-Type: message/rfc822\n\n")],
        ) {
            let mut raw = String::new();
            for (l, crlf) in &lines {
                raw += l;
                raw += if *crlf { "\r\n" } else { "\n" };
            }
            raw += body;
            let Ok(msg) = Message::from_bytes(raw.as_bytes()) else {
                return Ok(());
            };
            match msg.parts {
                PartsHint::Unknown => {}
                hint => prop_assert_eq!(hint == PartsHint::MayNest, may_nest(&msg.raw), "{:?}", raw),
            }
            let limits = Limits { max_depth: 2, max_parts: 3, ..Limits::default() };
            prop_assert_eq!(
                limits_hit_hinted(&msg.raw, msg.parts, &limits),
                limits_hit(&msg.raw, &limits)
            );
        }
    }

    proptest! {
        /// The one-pass count is the count of each spelling, capped at the bound.
        #[test]
        fn nesting_marks_counts_each_spelling(
            raw in proptest::collection::vec(proptest::sample::select(
                b"rfcRFC82\n-x".to_vec()), 0..60),
            bound in 1usize..10,
        ) {
            let each: usize = [&b"\n--"[..], b"rfc822", b"RFC822"]
                .iter()
                .map(|p| memchr::memmem::find_iter(&raw, p).count())
                .sum();
            prop_assert_eq!(nesting_marks(&raw, bound), each.min(bound));
        }
    }

    proptest! {
        /// The search for the case-proof bytes finds what a case-insensitive automaton finds.
        #[test]
        fn needs_decoding_agrees_with_an_automaton(
            parts in proptest::collection::vec(prop_oneof![
                Just("base64"), Just("BaSe64"), Just("bas64"), Just("message/rfc822"),
                Just("MESSAGE/RFC822"), Just("message/rfc82"), Just("quoted-printable"),
                Just("Quoted-Printable"), Just("quoted printable"), Just("text/html"),
                Just("TEXT/Html"), Just("text/htm"), Just("6"), Just("/"), Just("-"),
                Just("x"), Just("\n"), Just("ß"),
            ], 0..8),
        ) {
            let raw = parts.concat();
            let automaton = AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .build(["base64", "message/rfc822", "quoted-printable", "text/html"])
                .unwrap();
            prop_assert_eq!(needs_decoding(raw.as_bytes()), automaton.is_match(&raw), "{:?}", raw);
        }
    }

    #[test]
    fn nesting_marks_reads_both_spellings_and_no_other() {
        let raw = b"x\n--a\nmessage/rfc822\nMESSAGE/RFC822\nRfc822 rFC822 x822 822\n";
        assert_eq!(nesting_marks(raw, 64), 3);
        assert_eq!(nesting_marks(raw, 2), 2);
    }

    #[test]
    fn parts_hint_is_known_for_a_header_block_that_ends_at_a_blank_line() {
        let hint = |raw: &str| Message::from_bytes(raw.as_bytes()).unwrap().parts;
        assert_eq!(hint("From: a@b.example\n\nhi\n"), PartsHint::Single);
        assert_eq!(
            hint("From: a@b.example\r\nContent-Type: text/plain\r\n\r\nhi\r\n"),
            PartsHint::Single
        );
        assert_eq!(
            hint("Content-type: Multipart/Mixed; boundary=b\n\n--b\n"),
            PartsHint::MayNest
        );
        assert_eq!(hint("From: a@b.example"), PartsHint::Single);
        // The block ends at a line that is not a field: the walk to a blank line would not.
        assert_eq!(hint("From: a@b.example\nbody text\n"), PartsHint::Unknown);
    }

    #[test]
    fn plain_message_is_one_borrowed_segment() {
        let raw = b"From: a@b.c\r\nTo: d@e.f\r\n\r\nhello\r\n";
        let s = segments(raw, &Limits::default());
        assert_eq!(s.len(), 1);
        assert_eq!(&*s[0].text, b"hello\r\n");
        assert_eq!(s[0].raw_offset, Some(26));
        assert!(matches!(s[0].text, Cow::Borrowed(_)));
    }

    #[test]
    fn base64_csv_attachment_and_html_are_decoded() {
        let csv = "name,email\nA,a1@x.com\nB,b2@y.com\n";
        let b64 = encode_b64(csv.as_bytes());
        let raw = format!(
            "From: a@b.c\nTo: d@e.f\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=XX\n\n--XX\nContent-Type: text/html\n\n<p>Hi <a href=\"mailto:z@q.org\">there</a> &amp; c&#64;d.org</p>\n--XX\nContent-Type: application/octet-stream; name=\"list.csv\"\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"list.csv\"\n\n{b64}\n--XX--\n"
        );
        let s = segments(raw.as_bytes(), &Limits::default());
        assert_eq!(s.len(), 2, "{s:?}");
        let html = String::from_utf8_lossy(&s[0].text);
        assert!(
            html.contains("z@q.org") && html.contains("c@d.org") && !html.contains("<p>"),
            "{html}"
        );
        assert_eq!(String::from_utf8_lossy(&s[1].text), csv);
        assert!(s[1].what.contains("list.csv"));
    }

    #[test]
    fn depth_and_size_are_bounded() {
        let mut raw = String::from("From: a@b.c\nContent-Type: multipart/mixed; boundary=B0Z\n\n");
        for d in 0..20 {
            raw.push_str(&format!(
                "--B{d}Z\nContent-Type: multipart/mixed; boundary=B{}Z\n\n",
                d + 1
            ));
        }
        raw.push_str("--B20Z\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\ndeep=40x.com\n--B20Z--\n");
        let s = segments(raw.as_bytes(), &Limits::default());
        assert!(
            s.is_empty(),
            "text below max_depth must not be decoded: {s:?}"
        );
        let s = segments(
            raw.as_bytes(),
            &Limits {
                max_depth: 30,
                ..Limits::default()
            },
        );
        assert_eq!(s.len(), 1);
        assert!(String::from_utf8_lossy(&s[0].text).contains("deep@x.com"));
    }

    #[test]
    fn segment_sources_body_attachment_forwarded() {
        let raw = b"From: a@b.c\nContent-Type: multipart/mixed; boundary=XX\n\n--XX\nContent-Type: text/plain\n\nhi\n--XX\nContent-Type: text/csv\nContent-Disposition: attachment; filename=\"clients 2026.csv\"\n\nx@y.com\n--XX\nContent-Type: text/plain; name=\"old.eml\"\n\nFrom: z@w.com\n--XX\nContent-Type: message/rfc822\n\nFrom: q@r.com\nContent-Type: text/plain\n\ninner\n--XX--\n";
        let s = segments(raw, &Limits::default());
        let got: Vec<Source> = s.iter().map(Segment::source).collect();
        assert_eq!(
            got,
            [
                Source::Body,
                Source::Attachment("clients 2026.csv".into()),
                Source::Forwarded,
                Source::Forwarded
            ],
            "{s:?}"
        );
        assert_eq!(got[1].label(), "attachment:clients 2026.csv");
        assert_eq!(got[0].label(), "body");
        let plain = segments(b"From: a@b.c\n\nhi\n", &Limits::default());
        assert_eq!(plain[0].source(), Source::Body);
        // For quote analysis the attached message's own header block is there too.
        let q = segments_with(raw, &Limits::default(), Layout::Quoting);
        let headers: Vec<&Segment<'_>> = q.iter().filter(|s| s.what.ends_with("headers")).collect();
        assert_eq!(headers.len(), 1);
        assert_eq!(headers[0].source(), Source::Forwarded);
        assert!(String::from_utf8_lossy(&headers[0].text).contains("q@r.com"));
    }

    #[test]
    fn addresses_are_canonical_with_offsets_and_skip_message_ids() {
        let t = b"Mail Bob@Example.COM or .x@y.org; id 20020908021306.25492.qmail@host.example";
        let got: Vec<(usize, String)> = addresses(t)
            .map(|(p, a)| (p, a.as_str().to_string()))
            .collect();
        assert_eq!(
            got,
            [
                (5, "bob@example.com".to_string()),
                (24, "x@y.org".to_string())
            ]
        );
    }

    #[test]
    fn quoted_html_keeps_lines_and_marks_blockquotes() {
        let html =
            b"<p>new</p><blockquote>q1<br>q2<blockquote>deep</blockquote>back</blockquote>out";
        let flat = String::from_utf8(strip_html(html)).unwrap();
        assert!(!flat.contains('\n') && !flat.contains('>'), "{flat:?}");
        let lined = String::from_utf8(strip_html_with(html, Layout::Quoting)).unwrap();
        let lines: Vec<&str> = lined
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(
            lines,
            ["new", "> q1", "> q2", ">> deep", "> back", "out"],
            "{lined:?}"
        );
        // Unbalanced or hostile nesting stays bounded.
        let deep = "<blockquote>".repeat(1000) + "x<br>y";
        let out = String::from_utf8(strip_html_with(deep.as_bytes(), Layout::Quoting)).unwrap();
        let widest = out.lines().map(|l| l.matches('>').count()).max();
        assert_eq!(widest, Some(16));
    }

    pub(crate) fn encode_b64(data: &[u8]) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(data)
    }
}
