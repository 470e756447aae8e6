//! Which header field goes where in the [`Envelope`]: the audited fields are decoded, the
//! header facts are counted or kept as short values, everything else is skipped.

use super::date::parse_date;
use super::encoded::{decoded_value, unfold};
use super::list::{parse_address_field, Target};
use super::{excerpt, RawField, Warnings};
use crate::model::{Envelope, Field, HeaderWarningKind};
use std::borrow::Cow;

/// Longest header-fact value kept, in bytes; longer ones are cut at a character boundary.
pub(super) const MAX_FACT: usize = 256;

/// The fields we read; everything else is skipped undecoded.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Wanted {
    From,
    Subject,
    Date,
    MessageId,
    Rcpt(Field),
    ReplyTo,
    InReplyTo,
    References,
    Received,
    DeliveredTo,
    XOriginalTo,
    ReturnPath,
    Precedence,
    ListId,
    ListUnsubscribe,
    AutoSubmitted,
    Mailer,
    ContentLanguage,
    JournalReport,
}

fn classify(name: &[u8]) -> Option<Wanted> {
    let eq = |s: &str| name.eq_ignore_ascii_case(s.as_bytes());
    // Dispatch on length and first letter: most fields in real mail are none of ours, and
    // those are rejected after at most one comparison.
    let first = name.first()?.to_ascii_lowercase();
    match (name.len(), first) {
        (2, b't') if eq("to") => Some(Wanted::Rcpt(Field::To)),
        (2, b'c') if eq("cc") => Some(Wanted::Rcpt(Field::Cc)),
        (3, b'b') if eq("bcc") => Some(Wanted::Rcpt(Field::Bcc)),
        (4, b'f') if eq("from") => Some(Wanted::From),
        (4, b'd') if eq("date") => Some(Wanted::Date),
        (7, b's') if eq("subject") => Some(Wanted::Subject),
        (7, b'l') if eq("list-id") => Some(Wanted::ListId),
        (8, b'r') if eq("received") => Some(Wanted::Received),
        (8, b'r') if eq("reply-to") => Some(Wanted::ReplyTo),
        (8, b'x') if eq("x-mailer") => Some(Wanted::Mailer),
        (9, b'r') if eq("resent-to") => Some(Wanted::Rcpt(Field::ResentTo)),
        (9, b'r') if eq("resent-cc") => Some(Wanted::Rcpt(Field::ResentCc)),
        (10, b'm') if eq("message-id") => Some(Wanted::MessageId),
        (10, b'r') if eq("resent-bcc") => Some(Wanted::Rcpt(Field::ResentBcc)),
        (10, b'r') if eq("references") => Some(Wanted::References),
        (10, b'p') if eq("precedence") => Some(Wanted::Precedence),
        (10, b'u') if eq("user-agent") => Some(Wanted::Mailer),
        (11, b'i') if eq("in-reply-to") => Some(Wanted::InReplyTo),
        (11, b'r') if eq("return-path") => Some(Wanted::ReturnPath),
        (12, b'd') if eq("delivered-to") => Some(Wanted::DeliveredTo),
        (13, b'x') if eq("x-original-to") => Some(Wanted::XOriginalTo),
        (14, b'a') if eq("auto-submitted") => Some(Wanted::AutoSubmitted),
        (16, b'l') if eq("list-unsubscribe") => Some(Wanted::ListUnsubscribe),
        (16, b'c') if eq("content-language") => Some(Wanted::ContentLanguage),
        (19, b'x') if eq("x-ms-journal-report") => Some(Wanted::JournalReport),
        _ => None,
    }
}

/// `X-MS-Journal-Report`, the field that marks an Exchange journal report.
pub(super) fn is_journal_report(name: &[u8]) -> bool {
    // Asked of every field before `classify` sees it: one comparison, not a dispatch.
    name.len() == 19 && name.eq_ignore_ascii_case(b"x-ms-journal-report")
}

/// Applies one header field (`raw[start..end]`, name of `name_len` bytes) to `env`. For
/// single-valued fields the first occurrence wins.
pub(super) fn handle_field(
    raw: &[u8],
    start: usize,
    name_len: usize,
    end: usize,
    env: &mut Envelope,
    warn: &mut Warnings<'_>,
    scratch: &mut Vec<u8>,
) {
    let name = &raw[start..start + name_len];
    let Some(kind) = classify(name) else {
        return;
    };
    let facts = &mut env.facts;
    // Presence and counts need no value.
    match kind {
        Wanted::Received => facts.received = facts.received.saturating_add(1),
        Wanted::DeliveredTo => facts.delivered_to = true,
        Wanted::XOriginalTo => facts.x_original_to = true,
        Wanted::ReturnPath => facts.return_path = true,
        Wanted::ListUnsubscribe => facts.list_unsubscribe = true,
        Wanted::JournalReport => facts.journal_report = true,
        _ => {}
    }
    if !needs_value(kind) {
        return;
    }
    let bytes = &raw[start..end];
    let colon = memchr::memchr(b':', bytes).unwrap_or(name_len);
    let field = RawField {
        bytes,
        name,
        value_at: colon + 1,
    };
    match kind {
        Wanted::Rcpt(f) => parse_address_field(&field, Target::Rcpt(f), env, warn, scratch),
        Wanted::From => {
            // The first From header is the sender; a second one is ignored.
            if env.from.is_empty() {
                parse_address_field(&field, Target::From, env, warn, scratch);
            }
        }
        Wanted::ReplyTo => {
            if env.facts.reply_to.is_empty() {
                parse_address_field(&field, Target::ReplyTo, env, warn, scratch);
            }
        }
        Wanted::Subject => {
            if env.subject.is_none() {
                env.subject = Some(decoded_value(&field, warn, scratch));
            }
        }
        Wanted::Date => {
            if env.date_raw.is_none() {
                let v = decoded_value(&field, warn, scratch);
                env.date = parse_date(&v);
                if env.date.is_none() {
                    warn.push(HeaderWarningKind::BadDate, Some("Date"), || excerpt(&v));
                }
                env.date_raw = Some(v);
            }
        }
        Wanted::MessageId => {
            if env.message_id.is_none() {
                let v = decoded_value(&field, warn, scratch);
                let id = match (v.find('<'), v.rfind('>')) {
                    (Some(a), Some(b)) if a < b => v[a + 1..b].trim(),
                    _ => v.trim(),
                };
                if !id.is_empty() {
                    env.message_id = Some(id.to_owned());
                }
            }
        }
        Wanted::InReplyTo => {
            if facts.in_reply_to.is_none() {
                facts.in_reply_to = first_message_id(&fact_text(&field)).map(bounded);
            }
        }
        Wanted::References => {
            let n = count_message_ids(&field.bytes[field.value_at..]);
            facts.references = facts.references.saturating_add(n);
        }
        Wanted::Precedence => set_once(&mut facts.precedence, &field, true),
        Wanted::ListId => set_once(&mut facts.list_id, &field, false),
        Wanted::AutoSubmitted => set_once(&mut facts.auto_submitted, &field, true),
        Wanted::Mailer => set_once(&mut facts.mailer, &field, false),
        Wanted::ContentLanguage => set_once(&mut facts.content_language, &field, false),
        Wanted::Received
        | Wanted::DeliveredTo
        | Wanted::XOriginalTo
        | Wanted::ReturnPath
        | Wanted::ListUnsubscribe
        | Wanted::JournalReport => {}
    }
}

fn needs_value(kind: Wanted) -> bool {
    !matches!(
        kind,
        Wanted::Received
            | Wanted::DeliveredTo
            | Wanted::XOriginalTo
            | Wanted::ReturnPath
            | Wanted::ListUnsubscribe
            | Wanted::JournalReport
    )
}

/// Sets a fact value from the first non-empty occurrence of its field.
fn set_once(slot: &mut Option<String>, field: &RawField<'_>, lowercase: bool) {
    if slot.is_some() {
        return;
    }
    let text = fact_text(field);
    if text.is_empty() {
        return;
    }
    let mut v = bounded(&text);
    if lowercase {
        v.make_ascii_lowercase();
    }
    *slot = Some(v);
}

/// The start of a field value, unfolded and trimmed, invalid UTF-8 replaced (facts are
/// informational: no warning). Only the first `4 * MAX_FACT` bytes are looked at, so a huge
/// value costs no more than a short one.
fn fact_text<'a>(field: &RawField<'a>) -> Cow<'a, str> {
    let v = &field.bytes[field.value_at..];
    let mut cut = v.len().min(4 * MAX_FACT);
    // Back to a character start, so the cut itself adds no replacement character.
    while cut > 0 && cut < v.len() && v[cut] & 0xC0 == 0x80 {
        cut -= 1;
    }
    match String::from_utf8_lossy(&v[..cut]) {
        Cow::Borrowed(s) => match unfold(s) {
            Cow::Borrowed(u) => Cow::Borrowed(u.trim()),
            Cow::Owned(u) => Cow::Owned(u.trim().to_owned()),
        },
        Cow::Owned(s) => Cow::Owned(unfold(&s).trim().to_owned()),
    }
}

/// `s` cut to at most [`MAX_FACT`] bytes at a character boundary, end trimmed.
fn bounded(s: &str) -> String {
    let mut end = s.len().min(MAX_FACT);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].trim_end().to_owned()
}

/// The first message id of an In-Reply-To value, without angle brackets: the inside of the
/// first `<...>` (old mailers write `Your message of ... <id>`), else the first word.
fn first_message_id(v: &str) -> Option<&str> {
    let id = match v.find('<') {
        Some(a) => {
            let rest = &v[a + 1..];
            let end = rest
                .find(|c: char| c == '>' || c.is_whitespace())
                .unwrap_or(rest.len());
            &rest[..end]
        }
        None => v.split_whitespace().next()?,
    };
    let id = id.trim();
    (!id.is_empty()).then_some(id)
}

/// Number of message ids in a References value: its `<...>` ids, or, when it has no angle
/// brackets at all, its words (some mailers drop the brackets).
fn count_message_ids(v: &[u8]) -> u32 {
    let bracketed = memchr::memchr_iter(b'<', v).count();
    let n = if bracketed > 0 {
        bracketed
    } else {
        v.split(|b| b.is_ascii_whitespace())
            .filter(|w| !w.is_empty())
            .count()
    };
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{parse, texts};
    use super::*;
    use crate::model::HeaderFacts;

    #[test]
    fn only_first_from_subject_date_message_id_are_used() {
        let e = parse(
            "From: A <a@x.example>\nFrom: b@y.example\nSubject: one\nSubject: two\n\
             Message-Id: no-brackets@x\nMessage-ID: <second@x>\nDate: garbage\n\n",
        );
        assert_eq!(e.from.len(), 1);
        assert_eq!(e.from[0].address.as_str(), "a@x.example");
        assert_eq!(e.subject.as_deref(), Some("one"));
        assert_eq!(e.message_id.as_deref(), Some("no-brackets@x"));
        assert_eq!(e.date, None);
        assert_eq!(e.date_raw.as_deref(), Some("garbage"));
        assert_eq!(texts(&e), ["unparseable Date: garbage"]);
        assert_eq!(e.warnings[0].kind, HeaderWarningKind::BadDate);
        assert_eq!(e.warnings[0].field.as_deref(), Some("Date"));
        assert_eq!(e.warnings[0].detail, "garbage");
    }

    #[test]
    fn classify_knows_every_field_in_any_case_and_nothing_else() {
        for (name, want) in [
            ("To", Some(Wanted::Rcpt(Field::To))),
            ("RESENT-BCC", Some(Wanted::Rcpt(Field::ResentBcc))),
            ("received", Some(Wanted::Received)),
            ("Reply-To", Some(Wanted::ReplyTo)),
            ("References", Some(Wanted::References)),
            ("User-Agent", Some(Wanted::Mailer)),
            ("X-MAILER", Some(Wanted::Mailer)),
            ("In-Reply-To", Some(Wanted::InReplyTo)),
            ("Return-Path", Some(Wanted::ReturnPath)),
            ("Delivered-To", Some(Wanted::DeliveredTo)),
            ("X-Original-To", Some(Wanted::XOriginalTo)),
            ("Auto-Submitted", Some(Wanted::AutoSubmitted)),
            ("List-Unsubscribe", Some(Wanted::ListUnsubscribe)),
            ("Content-Language", Some(Wanted::ContentLanguage)),
            ("Precedence", Some(Wanted::Precedence)),
            ("list-id", Some(Wanted::ListId)),
            // Same length and first letter as ours, but not ours.
            ("Tx", None),
            ("Resent-Xx", None),
            ("Reply-Ta", None),
            ("Content-Type", None),
            ("DKIM-Signature", None),
            ("List-Subscribe", None),
            ("", None),
            ("x-MS-journal-REPORT", Some(Wanted::JournalReport)),
            ("X-MS-Journal-Reporx", None),
        ] {
            assert_eq!(classify(name.as_bytes()), want, "{name}");
            // The parser's early journal check says what `classify` says.
            assert_eq!(
                is_journal_report(name.as_bytes()),
                want == Some(Wanted::JournalReport),
                "{name}"
            );
        }
    }

    #[test]
    fn message_without_fact_fields_has_default_facts() {
        let e = parse("From: a@x.example\nTo: b@y.example\nX-Other: 1\nSubject: s\n\n");
        assert_eq!(e.facts, HeaderFacts::default());
    }

    #[test]
    fn fact_values_are_unfolded_trimmed_and_bounded() {
        let long = "é".repeat(400);
        let e = parse(&format!(
            "X-Mailer:  Mutt\n\t 2.2 \nList-Id: {long}\nPrecedence: BULK\nPrecedence: list\n\
             Auto-Submitted: Auto-Replied; reason=x\nContent-Language: de-CH\n\n"
        ));
        let f = &e.facts;
        assert_eq!(f.mailer.as_deref(), Some("Mutt 2.2"));
        let list_id = f.list_id.as_deref().unwrap();
        assert!(list_id.len() <= MAX_FACT && list_id.len() >= MAX_FACT - 1);
        assert!(list_id.chars().all(|c| c == 'é'));
        assert_eq!(f.precedence.as_deref(), Some("bulk"));
        assert_eq!(f.auto_submitted.as_deref(), Some("auto-replied; reason=x"));
        assert_eq!(f.content_language.as_deref(), Some("de-CH"));
        assert!(e.warnings.is_empty(), "{:?}", e.warnings);
    }

    #[test]
    fn huge_or_empty_or_invalid_fact_values_stay_bounded_and_silent() {
        let mut raw =
            format!("User-Agent: {}\nIn-Reply-To:   \n", "x".repeat(300_000)).into_bytes();
        raw.extend_from_slice(b"Precedence: b\xfflk\nX-Mailer: later\n\n");
        let e = super::super::parse_envelope(&raw).unwrap();
        assert_eq!(e.facts.mailer.as_deref(), Some(&"x".repeat(MAX_FACT)[..]));
        assert_eq!(e.facts.in_reply_to, None);
        assert_eq!(e.facts.precedence.as_deref(), Some("b\u{fffd}lk"));
        // The over-long line is a warning of the block, not of the fact.
        assert!(e
            .warnings
            .iter()
            .all(|w| w.kind == HeaderWarningKind::OverlongLine));
    }

    #[test]
    fn in_reply_to_takes_the_first_id_in_any_shape() {
        for (v, want) in [
            ("<a.1@x.example>", Some("a.1@x.example")),
            ("<a@x> <b@y>", Some("a@x")),
            (
                "Your message of \"Mon, 1 Jan\"\n <old@host.example>",
                Some("old@host.example"),
            ),
            ("bare@id.example (comment)", Some("bare@id.example")),
            ("<unterminated@x", Some("unterminated@x")),
            ("<>", None),
        ] {
            let e = parse(&format!("In-Reply-To: {v}\n\n"));
            assert_eq!(e.facts.in_reply_to.as_deref(), want, "{v}");
        }
    }

    #[test]
    fn references_are_counted_across_folds_and_without_brackets() {
        let e = parse("References: <a@x>\n <b@x>\n\t<c@x>\n\n");
        assert_eq!(e.facts.references, 3);
        let e = parse("References: a@x b@x\n\n");
        assert_eq!(e.facts.references, 2);
        let e = parse("References:\n\n");
        assert_eq!(e.facts.references, 0);
    }

    #[test]
    fn presence_facts_and_received_count() {
        let e = parse(
            "Received: from a\nReceived: from b\n by c\nRECEIVED: x\nDelivered-To: me@x.example\n\
             X-Original-To: me@x.example\nReturn-Path: <>\nList-Unsubscribe: <mailto:u@x>\n\n",
        );
        let f = &e.facts;
        assert_eq!(f.received, 3);
        assert!(f.delivered_to && f.x_original_to && f.return_path && f.list_unsubscribe);
        assert!(e.recipients.is_empty());
    }

    #[test]
    fn reply_to_goes_through_the_address_parser_and_never_into_recipients() {
        let e = parse(
            "From: shop@shop.example\nReply-To: \"Support, EU\" <Help@Shop.Example>, =?utf-8?q?B=C3=BCro?= <buero@xn--exmple-cua.com>, nobody\nReply-To: second@x.example\nTo: c@d.example\n\n",
        );
        let rt: Vec<&str> = e.facts.reply_to.iter().map(|a| a.as_str()).collect();
        assert_eq!(rt, ["help@shop.example", "buero@xn--exmple-cua.com"]);
        assert_eq!(e.recipients.len(), 1);
        assert_eq!(texts(&e), ["address without domain in Reply-To: nobody"]);
        // A group in Reply-To keeps its members and creates no recipient group.
        let e = parse("Reply-To: Team: a@x.example, b@y.example;\n\n");
        assert_eq!(e.facts.reply_to.len(), 2);
        assert!(e.groups.is_empty());
    }
}
