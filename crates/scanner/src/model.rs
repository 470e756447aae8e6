//! The message model: what every reader produces and every later stage consumes.
//!
//! These types are the contract between the crates. Change them deliberately: the policy,
//! remediation and CLI crates all read them.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// Where a message or a problem was found. Cheap to clone (the path is shared).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Location {
    /// The file as given or found while walking; `-` for standard input.
    pub path: Arc<str>,
    /// Byte offset of the message (its `From ` line) inside an mbox, counted in the
    /// decompressed stream for compressed archives. `None` for one-message files.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub offset: Option<u64>,
    /// 1-based message number inside an mbox.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub index: Option<u64>,
    /// 1-based line of a line-oriented log (a provider's JSON event log) where the event
    /// starts; `offset` is then its byte offset.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub line: Option<u64>,
}

impl Location {
    pub fn file(path: impl Into<Arc<str>>) -> Self {
        Location {
            path: path.into(),
            offset: None,
            index: None,
            line: None,
        }
    }
    pub fn in_mbox(path: Arc<str>, offset: u64, index: u64) -> Self {
        Location {
            path,
            offset: Some(offset),
            index: Some(index),
            line: None,
        }
    }
    /// An event of a line-oriented log: its line (1-based) and byte offset.
    pub fn in_log(path: Arc<str>, line: u64, offset: u64) -> Self {
        Location {
            path,
            offset: Some(offset),
            index: None,
            line: Some(line),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.offset) {
            (Some(line), _) => write!(f, "{}:{}", self.path, line),
            (None, Some(off)) => write!(f, "{}@{}", self.path, off),
            (None, None) => f.write_str(&self.path),
        }
    }
}

/// Container format a message was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Mbox,
    Maildir,
    Eml,
    /// An Amazon SES event log (JSON): headers and envelope, no body.
    Ses,
    /// A Mailgun event log (JSON): a few headers and the recipients, no body.
    Mailgun,
    /// Postmark outbound messages (JSON): headers rebuilt from the record, the recipients.
    Postmark,
}

impl Format {
    /// Read from an email provider's log (its envelope is the provider's record, not a
    /// journal report).
    pub fn is_provider_log(self) -> bool {
        matches!(self, Format::Ses | Format::Mailgun | Format::Postmark)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Mbox => "mbox",
            Format::Maildir => "maildir",
            Format::Eml => "eml",
            Format::Ses => "ses",
            Format::Mailgun => "mailgun",
            Format::Postmark => "postmark",
        }
    }
}

/// The header a recipient was listed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Field {
    To,
    Cc,
    Bcc,
    #[serde(rename = "Resent-To")]
    ResentTo,
    #[serde(rename = "Resent-Cc")]
    ResentCc,
    #[serde(rename = "Resent-Bcc")]
    ResentBcc,
}

impl Field {
    pub const ALL: [Field; 6] = [
        Field::To,
        Field::Cc,
        Field::Bcc,
        Field::ResentTo,
        Field::ResentCc,
        Field::ResentBcc,
    ];

    pub fn header_name(self) -> &'static str {
        match self {
            Field::To => "To",
            Field::Cc => "Cc",
            Field::Bcc => "Bcc",
            Field::ResentTo => "Resent-To",
            Field::ResentCc => "Resent-Cc",
            Field::ResentBcc => "Resent-Bcc",
        }
    }

    /// Bcc-type fields are hidden from the other recipients in a correctly sent message.
    pub fn is_blind(self) -> bool {
        matches!(self, Field::Bcc | Field::ResentBcc)
    }

    /// Case-insensitive lookup of a header name.
    pub fn from_header_name(name: &str) -> Option<Field> {
        Field::ALL
            .into_iter()
            .find(|f| f.header_name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.header_name())
    }
}

/// An email address in canonical form: `local@domain`, where the local part is lowercased and
/// the domain is lowercased and converted to its IDNA ASCII (punycode) form. Two spellings of
/// the same mailbox (`Bob@Exämple.com`, `bob@xn--exmple-cua.com`) canonicalise to one value.
/// See `address.rs` for the construction rules.
///
/// Shared (`Arc<str>`): one message's address travels into the envelope, the exposure, the
/// findings, the records and the affected list; a clone is a reference count, not a copy
/// (a 1,000,000-address message held every address several times over).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Address(Arc<str>);

impl Address {
    /// Wraps an already-canonical string. Only `address.rs` should call this; everyone else
    /// goes through `Address::parse`.
    pub(crate) fn from_canonical(s: String) -> Self {
        Address(s.into())
    }
    /// [`Address::from_canonical`] from a borrowed string (one allocation, no copy first).
    pub(crate) fn from_canonical_str(s: &str) -> Self {
        Address(Arc::from(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The shared string (a party key that is the address itself reuses it).
    pub fn shared(&self) -> Arc<str> {
        Arc::clone(&self.0)
    }
    // A byte search: `rsplit_once('@')` walked chars and was ~4% of a scan's CPU.
    pub fn local(&self) -> &str {
        memchr::memrchr(b'@', self.0.as_bytes()).map_or(&self.0, |at| &self.0[..at])
    }
    pub fn domain(&self) -> &str {
        memchr::memrchr(b'@', self.0.as_bytes()).map_or("", |at| &self.0[at + 1..])
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An address with its (decoded) display name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mailbox {
    pub address: Address,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub display: Option<String>,
}

/// One visible-or-blind recipient of a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    pub mailbox: Mailbox,
    pub field: Field,
    /// Index into `Envelope::groups` when the address was listed as a member of a named group.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub group: Option<usize>,
}

/// A named group (`Clients: a@x, b@y;`). `undisclosed-recipients:;` has zero members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub name: String,
    pub field: Field,
    pub members: usize,
}

/// Everything the scanner extracts from a message's header block.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Without the angle brackets.
    pub message_id: Option<String>,
    /// Seconds since the Unix epoch, UTC, when the Date header parsed.
    pub date: Option<i64>,
    /// The Date header as written.
    pub date_raw: Option<String>,
    pub from: Vec<Mailbox>,
    /// Decoded (RFC 2047) subject.
    pub subject: Option<String>,
    /// All recipients, in header order, one entry per (address, field) occurrence.
    pub recipients: Vec<Recipient>,
    pub groups: Vec<Group>,
    /// Length in bytes of the header block including the blank separator line.
    pub header_len: usize,
    /// Non-fatal oddities (undecodable words, addresses without a domain, over-long lines),
    /// at most 32 plus one [`HeaderWarningKind::TooManyWarnings`].
    pub warnings: Vec<HeaderWarning>,
    /// Other header facts the triage reads (threading, transit traces, bulk markers).
    #[serde(default)]
    pub facts: HeaderFacts,
    /// Who the message was delivered to, when the archive records it (a journal report's
    /// recipient lines). The headers say what was visible; these say who received it, Bcc
    /// included. Empty for a plain message: its headers are all there is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub envelope_recipients: Vec<EnvelopeRecipient>,
}

/// One envelope recipient of a message, as a journal report lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeRecipient {
    pub address: Address,
    /// How the sender addressed it (`To`, `Cc`, `Bcc`), or `Recipient` when not recorded.
    pub kind: EnvelopeKind,
    /// The distribution list whose expansion reached it (`, Expanded: dl@x`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expanded_from: Option<Address>,
    /// The recipient it was delivered for, as an alternate recipient (`, Forwarded: y`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarded_for: Option<Address>,
}

/// How an envelope recipient was addressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EnvelopeKind {
    To,
    Cc,
    Bcc,
    /// Addressing not recorded (a `Recipient:` line).
    Recipient,
}

/// Header facts besides the recipients, parsed with the envelope: presence and short values
/// only (values are unfolded, trimmed and bounded to a few hundred bytes). The scanner records
/// facts; deciding what they mean (reply, bulk mail, transmitted copy) is the policy's job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderFacts {
    /// In-Reply-To, first message id, without angle brackets.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub in_reply_to: Option<String>,
    /// Number of message ids in References.
    #[serde(default)]
    pub references: u32,
    /// Number of Received header fields (each a hop through an MTA).
    #[serde(default)]
    pub received: u32,
    /// Delivered-To present (a delivery agent stored this copy).
    #[serde(default)]
    pub delivered_to: bool,
    /// X-Original-To present.
    #[serde(default)]
    pub x_original_to: bool,
    /// Return-Path present (added at final delivery).
    #[serde(default)]
    pub return_path: bool,
    /// Precedence value, lowercased (`bulk`, `list`, `junk`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub precedence: Option<String>,
    /// List-Id value.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub list_id: Option<String>,
    /// List-Unsubscribe present.
    #[serde(default)]
    pub list_unsubscribe: bool,
    /// Auto-Submitted value, lowercased (`auto-generated`...; `no` is kept as is).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub auto_submitted: Option<String>,
    /// X-Mailer or User-Agent value.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mailer: Option<String>,
    /// Content-Language value (language variants of one campaign).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub content_language: Option<String>,
    /// X-MS-Journal-Report present: an Exchange journal report wrapping the original.
    #[serde(default)]
    pub journal_report: bool,
    /// Reply-To addresses (canonical).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reply_to: Vec<Address>,
}

/// A non-fatal header oddity: a stable code, the field it was found in, and the specifics.
/// `Display` gives the human sentence (`address without domain in To: john`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderWarning {
    pub kind: HeaderWarningKind,
    /// The header field name as written (`To`, `Subject`); `None` for block-level warnings.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub field: Option<String>,
    /// What is specific to this occurrence: an excerpt of the offending text, a size or a
    /// byte position (see each kind); empty when the kind and field say it all.
    #[serde(default)]
    pub detail: String,
}

/// What kind of header oddity, as a stable kebab-case code (`HeaderWarningKind::code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HeaderWarningKind {
    /// A header line over the RFC 5322 limit of 998 bytes; detail: `N bytes at byte P`.
    OverlongLine,
    /// No blank line after the header block; detail: the byte offset assumed as body start.
    HeaderNotTerminated,
    /// A Date that no known form parses; detail: excerpt.
    BadDate,
    /// Invalid UTF-8 in a field value, replaced by U+FFFD; no detail.
    InvalidUtf8,
    /// An unstructured value over the decode limit, cut; detail: `N bytes, truncated to M bytes`.
    TruncatedValue,
    /// An encoded word (`=?charset?X?text?=`) left undecoded; detail: excerpt.
    UndecodableWord,
    /// A group (`name: a, b`) without its closing `;`; no detail.
    UnterminatedGroup,
    /// An address item over 4 KiB, parsed without decoding; detail: `N bytes`.
    OverlongItem,
    /// An address item with more encoded words than allowed, parsed without decoding;
    /// detail: `over N encoded words`.
    TooManyWords,
    /// A group inside a group, flattened; detail: the inner group's name.
    NestedGroup,
    /// An item mailparse rejected whose address was still recovered; detail: the address.
    RecoveredAddress,
    /// An item with an `@` that is not a valid address; detail: excerpt.
    InvalidAddress,
    /// An item without an `@` (`john`); detail: excerpt.
    AddressWithoutDomain,
    /// The cap was reached; detail: how many more warnings were dropped.
    TooManyWarnings,
}

impl HeaderWarningKind {
    pub const ALL: [HeaderWarningKind; 14] = [
        HeaderWarningKind::OverlongLine,
        HeaderWarningKind::HeaderNotTerminated,
        HeaderWarningKind::BadDate,
        HeaderWarningKind::InvalidUtf8,
        HeaderWarningKind::TruncatedValue,
        HeaderWarningKind::UndecodableWord,
        HeaderWarningKind::UnterminatedGroup,
        HeaderWarningKind::OverlongItem,
        HeaderWarningKind::TooManyWords,
        HeaderWarningKind::NestedGroup,
        HeaderWarningKind::RecoveredAddress,
        HeaderWarningKind::InvalidAddress,
        HeaderWarningKind::AddressWithoutDomain,
        HeaderWarningKind::TooManyWarnings,
    ];

    /// The stable code, identical to the serde form.
    pub fn code(self) -> &'static str {
        match self {
            HeaderWarningKind::OverlongLine => "overlong-line",
            HeaderWarningKind::HeaderNotTerminated => "header-not-terminated",
            HeaderWarningKind::BadDate => "bad-date",
            HeaderWarningKind::InvalidUtf8 => "invalid-utf8",
            HeaderWarningKind::TruncatedValue => "truncated-value",
            HeaderWarningKind::UndecodableWord => "undecodable-word",
            HeaderWarningKind::UnterminatedGroup => "unterminated-group",
            HeaderWarningKind::OverlongItem => "overlong-item",
            HeaderWarningKind::TooManyWords => "too-many-words",
            HeaderWarningKind::NestedGroup => "nested-group",
            HeaderWarningKind::RecoveredAddress => "recovered-address",
            HeaderWarningKind::InvalidAddress => "invalid-address",
            HeaderWarningKind::AddressWithoutDomain => "address-without-domain",
            HeaderWarningKind::TooManyWarnings => "too-many-warnings",
        }
    }
}

impl fmt::Display for HeaderWarningKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl HeaderWarning {
    pub fn new(kind: HeaderWarningKind, field: Option<&str>, detail: impl Into<String>) -> Self {
        HeaderWarning {
            kind,
            field: field.map(str::to_owned),
            detail: detail.into(),
        }
    }
}

impl fmt::Display for HeaderWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use HeaderWarningKind as K;
        let name = self.field.as_deref().unwrap_or("header");
        let d = &self.detail;
        match self.kind {
            K::OverlongLine => write!(f, "over-long header line ({d})"),
            K::HeaderNotTerminated => write!(
                f,
                "header block not ended by a blank line; body assumed from byte {d}"
            ),
            K::BadDate => write!(f, "unparseable {name}: {d}"),
            K::InvalidUtf8 => write!(f, "invalid UTF-8 in {name} header (replaced)"),
            K::TruncatedValue => write!(f, "over-long {name} header ({d})"),
            K::UndecodableWord => write!(f, "undecodable encoded word in {name}: {d}"),
            K::UnterminatedGroup => write!(f, "unterminated group in {name} header"),
            K::OverlongItem => write!(
                f,
                "over-long address item ({d}) in {name}: encoded words not decoded"
            ),
            K::TooManyWords => write!(f, "address item with {d} in {name}: not decoded"),
            K::NestedGroup => write!(f, "nested group in {name}: {d}"),
            K::RecoveredAddress => write!(f, "malformed address in {name}, recovered {d}"),
            K::InvalidAddress => write!(f, "invalid address in {name}: {d}"),
            K::AddressWithoutDomain => write!(f, "address without domain in {name}: {d}"),
            K::TooManyWarnings => write!(f, "{d} more warnings not shown"),
        }
    }
}

impl Envelope {
    /// Domain of the first From address, if any.
    pub fn sender_domain(&self) -> Option<&str> {
        self.from.first().map(|m| m.address.domain())
    }
}

/// A message handed by a reader to the processing stage. `raw` borrows the reader's buffer
/// (owned only for a journal report's original that was attached encoded).
#[derive(Debug)]
pub struct Message<'a> {
    pub location: Location,
    pub format: Format,
    /// The message as stored, without the mbox `From ` separator line. In an mbox, body lines
    /// may still carry `>From ` quoting; use [`Message::unquoted`] for content inspection.
    pub raw: std::borrow::Cow<'a, [u8]>,
    pub mbox_quoted: bool,
    pub envelope: Envelope,
    /// What the header parser saw of `raw`'s own Content-Type in passing (see [`PartsHint`]).
    pub parts: PartsHint,
}

/// Whether a message's own Content-Type can give it MIME parts, as the header parser saw it
/// on its one walk over the header lines ([`crate::headers::ContentTypeCheck`]), so that a
/// check of the content limits need not walk them again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PartsHint {
    /// Not known (the header block ended at a line that is not a field, the message came
    /// from a journal report or was built by hand): look at the bytes.
    #[default]
    Unknown,
    /// `ContentTypeCheck::may_nest` is false for the header block of `raw`.
    Single,
    /// `ContentTypeCheck::may_nest` is true for it.
    MayNest,
}

/// Adds `more` to `list`, one recipient per (address, kind), the first seen kept: the union
/// of a report's repeated lines, and of several reports of one message (Exchange splits a
/// message's envelope over reports).
pub fn add_envelope_recipients(
    list: &mut Vec<EnvelopeRecipient>,
    more: impl IntoIterator<Item = EnvelopeRecipient>,
) {
    // Nearly every report names one or two recipients: a set only for long lists.
    const SHORT: usize = 16;
    let mut known: Option<foldhash::HashSet<(Address, EnvelopeKind)>> = None;
    for r in more {
        if known.is_none() && list.len() >= SHORT {
            known = Some(list.iter().map(|r| (r.address.clone(), r.kind)).collect());
        }
        let new = match &mut known {
            Some(set) => set.insert((r.address.clone(), r.kind)),
            None => !list
                .iter()
                .any(|x| x.kind == r.kind && x.address == r.address),
        };
        if new {
            list.push(r);
        }
    }
}

impl Message<'_> {
    /// Moves the envelope out (for a caller that keeps it past the message: 1,000,000
    /// recipients are 64 MiB to copy), leaving its `warnings`, which the scanner reports
    /// after processing. Anything read from the envelope must be read before.
    pub fn take_envelope(&mut self) -> Envelope {
        let warnings = std::mem::take(&mut self.envelope.warnings);
        std::mem::replace(
            &mut self.envelope,
            Envelope {
                warnings,
                ..Envelope::default()
            },
        )
    }

    /// The message with mbox `>From ` quoting removed one level (see
    /// [`unquote`]); the stored bytes when it was not read from an mbox.
    pub fn unquoted(&self) -> std::borrow::Cow<'_, [u8]> {
        if self.mbox_quoted {
            unquote(&self.raw)
        } else {
            std::borrow::Cow::Borrowed(&self.raw)
        }
    }
}

/// How serious a problem is for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProblemLevel {
    /// Audited, but something was odd (reported, exit code unaffected).
    Warning,
    /// A message or file could not be audited: the exit code becomes 2.
    Error,
}

/// What kind of problem, as a stable machine-readable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemKind {
    /// The file or directory could not be opened or read.
    Unreadable,
    /// The file is not mail in any format we read; skipped.
    NotMail,
    /// A message without a usable header block.
    Malformed,
    /// The last message of an mbox or a compressed stream ended early.
    Truncated,
    /// Non-fatal header oddity (bad encoding, over-long line, address without domain).
    HeaderWarning,
    /// A limit (MIME depth, part count, decoded size) stopped the audit of part of the
    /// message: what lies beyond was not inspected. The gate (`check`) treats it as an error.
    NotFullyAudited,
}

impl ProblemKind {
    pub const ALL: [ProblemKind; 6] = [
        ProblemKind::Unreadable,
        ProblemKind::NotMail,
        ProblemKind::Malformed,
        ProblemKind::Truncated,
        ProblemKind::HeaderWarning,
        ProblemKind::NotFullyAudited,
    ];

    /// The stable code, identical to the serde form: stderr and JSON say the same thing.
    pub fn code(self) -> &'static str {
        match self {
            ProblemKind::Unreadable => "unreadable",
            ProblemKind::NotMail => "not-mail",
            ProblemKind::Malformed => "malformed",
            ProblemKind::Truncated => "truncated",
            ProblemKind::HeaderWarning => "header-warning",
            ProblemKind::NotFullyAudited => "not-fully-audited",
        }
    }
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A problem found while reading, always with where and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub location: Location,
    pub level: ProblemLevel,
    pub kind: ProblemKind,
    pub reason: String,
    /// For [`ProblemKind::HeaderWarning`]: which header oddity.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub detail_code: Option<HeaderWarningKind>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lvl = match self.level {
            ProblemLevel::Warning => "warning",
            ProblemLevel::Error => "error",
        };
        write!(
            f,
            "{}: {lvl}[{}]: {}",
            self.location,
            self.kind.code(),
            self.reason
        )
    }
}

/// Removes one level of `>From ` quoting: every line matching `^>+From ` loses one `>`.
/// This is exact for mboxrd and the best reading of mboxo (where an original `>From ` line
/// cannot be told from a quoted `From ` one). Borrows when there is nothing to unquote.
pub fn unquote(raw: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let quoted_at = |line_start: usize| {
        let rest = &raw[line_start..];
        let gts = rest.iter().take_while(|&&c| c == b'>').count();
        gts > 0 && rest[gts..].starts_with(b"From ")
    };
    let line_starts = std::iter::once(0).chain(memchr::memchr_iter(b'\n', raw).map(|i| i + 1));
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    for start in line_starts {
        if start < raw.len() && raw[start] == b'>' && quoted_at(start) {
            let v = out.get_or_insert_with(|| Vec::with_capacity(raw.len()));
            v.extend_from_slice(&raw[copied..start]);
            copied = start + 1;
        }
    }
    match out {
        None => std::borrow::Cow::Borrowed(raw),
        Some(mut v) => {
            v.extend_from_slice(&raw[copied..]);
            std::borrow::Cow::Owned(v)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_kind_code_is_the_serde_code() {
        for k in ProblemKind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), k.code(), "{k:?}");
        }
    }

    #[test]
    fn header_warning_kind_code_is_the_serde_code() {
        for k in HeaderWarningKind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), k.code(), "{k:?}");
            let back: HeaderWarningKind = serde_json::from_value(k.code().into()).unwrap();
            assert_eq!(back, k);
        }
    }

    #[test]
    fn every_header_warning_kind_has_its_sentence() {
        use HeaderWarningKind as K;
        let to = Some("To");
        let cases = [
            (
                K::OverlongLine,
                None,
                "1200 bytes at byte 18",
                "over-long header line (1200 bytes at byte 18)",
            ),
            (
                K::HeaderNotTerminated,
                None,
                "16",
                "header block not ended by a blank line; body assumed from byte 16",
            ),
            (
                K::BadDate,
                Some("Date"),
                "garbage",
                "unparseable Date: garbage",
            ),
            (
                K::InvalidUtf8,
                to,
                "",
                "invalid UTF-8 in To header (replaced)",
            ),
            (
                K::TruncatedValue,
                Some("Subject"),
                "20000 bytes, truncated to 16384 bytes",
                "over-long Subject header (20000 bytes, truncated to 16384 bytes)",
            ),
            (
                K::UndecodableWord,
                to,
                "=?x?q?a?=",
                "undecodable encoded word in To: =?x?q?a?=",
            ),
            (
                K::UnterminatedGroup,
                to,
                "",
                "unterminated group in To header",
            ),
            (
                K::OverlongItem,
                to,
                "5000 bytes",
                "over-long address item (5000 bytes) in To: encoded words not decoded",
            ),
            (
                K::TooManyWords,
                to,
                "over 16 encoded words",
                "address item with over 16 encoded words in To: not decoded",
            ),
            (K::NestedGroup, to, "Inner", "nested group in To: Inner"),
            (
                K::RecoveredAddress,
                to,
                "a@b.example",
                "malformed address in To, recovered a@b.example",
            ),
            (K::InvalidAddress, to, "a@", "invalid address in To: a@"),
            (
                K::AddressWithoutDomain,
                to,
                "john",
                "address without domain in To: john",
            ),
            (K::TooManyWarnings, None, "68", "68 more warnings not shown"),
        ];
        assert_eq!(cases.len(), HeaderWarningKind::ALL.len());
        for (kind, field, detail, text) in cases {
            assert_eq!(HeaderWarning::new(kind, field, detail).to_string(), text);
        }
    }

    #[test]
    fn problem_display_prints_the_stable_code_not_debug() {
        let p = Problem {
            location: Location::in_mbox("a.mbox".into(), 57, 2),
            level: ProblemLevel::Error,
            kind: ProblemKind::NotMail,
            reason: "x".into(),
            detail_code: None,
        };
        assert_eq!(p.to_string(), "a.mbox@57: error[not-mail]: x");
        let w = Problem {
            level: ProblemLevel::Warning,
            kind: ProblemKind::HeaderWarning,
            detail_code: Some(HeaderWarningKind::BadDate),
            ..p
        };
        assert_eq!(w.to_string(), "a.mbox@57: warning[header-warning]: x");
        let json = serde_json::to_value(&w).unwrap();
        assert_eq!(json["kind"], "header-warning");
        assert_eq!(json["detail_code"], "bad-date");
    }

    #[test]
    fn problem_without_detail_code_reads_and_writes_as_before() {
        let json = r#"{"location":{"path":"x"},"level":"error","kind":"malformed","reason":"r"}"#;
        let p: Problem = serde_json::from_str(json).unwrap();
        assert_eq!(p.detail_code, None);
        assert_eq!(serde_json::to_string(&p).unwrap(), json);
    }
}

#[cfg(test)]
mod unquote_tests {
    use super::unquote;

    #[test]
    fn unquotes_one_level() {
        let raw = b">From start\nbody\n>From a\n>>From b\n> From c\n>Fromage\n";
        assert_eq!(
            &*unquote(raw),
            b"From start\nbody\nFrom a\n>From b\n> From c\n>Fromage\n"
        );
        assert!(matches!(unquote(b"plain\n"), std::borrow::Cow::Borrowed(_)));
    }
}
