//! Address lists: a linear splitter into top-level items and groups (quoted strings,
//! comments, `<...>` and encoded words are atomic), then each item to `mailbox.rs`.

use super::encoded::encoded_word_end;
use super::mailbox::parse_item;
use super::{RawField, Warnings, MAX_ITEM};
use crate::model::{Envelope, Field, Group, HeaderWarningKind, Mailbox, Recipient};

/// One top-level piece of an address list.
pub(super) enum Piece<'a> {
    /// A mailbox item (display name and address), with its group.
    Item(&'a [u8], Option<usize>),
    /// A group starts: its (raw) name.
    GroupStart(&'a [u8]),
    /// The open group ends (`;`, or the end of the field when unterminated).
    GroupEnd { terminated: bool },
}

/// Splits an address list into top-level items and groups in one linear pass. Quoted
/// strings, comments, `<...>` and encoded words are atomic: commas inside them do not split.
pub(super) fn split_list<'a>(b: &'a [u8], mut emit: impl FnMut(Piece<'a>)) {
    let n = b.len();
    let mut i = 0;
    let mut item_start = 0;
    let mut has_at = false;
    let mut group: Option<usize> = None;
    let mut groups = 0usize;
    let mut no_close_before = 0usize;
    while i < n {
        match b[i] {
            b'"' => {
                i += 1;
                while i < n && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'(' => {
                let mut depth = 1;
                i += 1;
                while i < n && depth > 0 {
                    match b[i] {
                        b'\\' => i += 1,
                        b'(' => depth += 1,
                        b')' => depth -= 1,
                        _ => {}
                    }
                    i += 1;
                }
                continue;
            }
            b'<' if i >= no_close_before => {
                // Up to '>'; a ',' or ';' first means an unterminated bracket: treat '<' as
                // text there (keeps the list split). Every '<' before that stop would stop
                // there too, so remember it: `<<<<...` stays linear.
                let mut j = i + 1;
                while j < n && !matches!(b[j], b'>' | b',' | b';') {
                    if b[j] == b'@' {
                        has_at = true;
                    }
                    j += 1;
                }
                if j < n && b[j] == b'>' {
                    i = j;
                } else {
                    no_close_before = j;
                }
            }
            b'=' => {
                if let Some(end) = encoded_word_end(b, i) {
                    i = end;
                    continue;
                }
            }
            b'@' => has_at = true,
            b',' => {
                emit(Piece::Item(&b[item_start..i], group));
                item_start = i + 1;
                has_at = false;
            }
            b':' if group.is_none() && !has_at => {
                emit(Piece::GroupStart(&b[item_start..i]));
                group = Some(groups);
                groups += 1;
                item_start = i + 1;
            }
            b';' => {
                emit(Piece::Item(&b[item_start..i], group));
                if group.take().is_some() {
                    emit(Piece::GroupEnd { terminated: true });
                }
                item_start = i + 1;
                has_at = false;
            }
            _ => {}
        }
        i += 1;
    }
    emit(Piece::Item(&b[item_start.min(n)..], group));
    if group.is_some() {
        emit(Piece::GroupEnd { terminated: false });
    }
}

/// Where the mailboxes of an address field go.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Target {
    /// `env.from`.
    From,
    /// `env.recipients` (and `env.groups`).
    Rcpt(Field),
    /// `env.facts.reply_to`, addresses only.
    ReplyTo,
}

/// Parses an address field into `target`. Groups are recorded for recipients only; in From
/// and Reply-To their members are kept as plain mailboxes.
pub(super) fn parse_address_field(
    raw_field: &RawField<'_>,
    target: Target,
    env: &mut Envelope,
    warn: &mut Warnings<'_>,
    scratch: &mut Vec<u8>,
) {
    let fname = String::from_utf8_lossy(raw_field.name);
    // Lossy-decode the value once if needed; no length limit here (lists are long).
    let owned;
    let value: &[u8] = {
        let v = &raw_field.bytes[raw_field.value_at..];
        if std::str::from_utf8(v).is_ok() {
            v
        } else {
            warn.push(HeaderWarningKind::InvalidUtf8, Some(&fname), String::new);
            owned = String::from_utf8_lossy(v).into_owned();
            owned.as_bytes()
        }
    };
    let mut item_buf: Vec<u8> = Vec::new();
    // Group index in env.groups for the group open in this field, and its member count.
    let mut open_group: Option<usize> = None;
    // Sized from the commas (a little over with commas in names): a 1,000,000-address field
    // grown by doubling leaves a series of large freed blocks the allocator keeps. A short
    // field (nearly every one) is not counted: room for a few items will do.
    let capacity = if value.len() <= 256 {
        8
    } else {
        memchr::memchr_iter(b',', value).count() + 1
    };
    let mut pieces: Vec<Piece<'_>> = Vec::with_capacity(capacity);
    split_list(value, |p| pieces.push(p));
    if matches!(target, Target::Rcpt(_)) {
        env.recipients.reserve(pieces.len());
    }
    for piece in pieces {
        match piece {
            Piece::GroupStart(name) => {
                open_group = match target {
                    Target::Rcpt(f) => {
                        env.groups.push(Group {
                            name: group_name(name, scratch),
                            field: f,
                            members: 0,
                        });
                        Some(env.groups.len() - 1)
                    }
                    Target::From | Target::ReplyTo => None,
                };
            }
            Piece::GroupEnd { terminated } => {
                if !terminated {
                    warn.push(
                        HeaderWarningKind::UnterminatedGroup,
                        Some(&fname),
                        String::new,
                    );
                }
                open_group = None;
            }
            Piece::Item(item, in_group) => {
                let group = in_group.and(open_group);
                let trimmed = item.trim_ascii();
                if trimmed.is_empty() {
                    continue;
                }
                let mut found = |mb: Mailbox| match target {
                    Target::Rcpt(f) => {
                        if let Some(g) = group {
                            env.groups[g].members += 1;
                        }
                        env.recipients.push(Recipient {
                            mailbox: mb,
                            field: f,
                            group,
                        });
                    }
                    Target::From => env.from.push(mb),
                    Target::ReplyTo => env.facts.reply_to.push(mb.address),
                };
                parse_item(trimmed, &fname, &mut item_buf, warn, &mut found);
            }
        }
    }
}

/// Decoded group name (`"Clients"`, `=?utf-8?q?Kunden?=`, `undisclosed-recipients`).
fn group_name(raw: &[u8], scratch: &mut Vec<u8>) -> String {
    scratch.clear();
    scratch.extend_from_slice(b"X:");
    scratch.extend_from_slice(&raw[..raw.len().min(MAX_ITEM)]);
    let v = match mailparse::parse_header(scratch) {
        Ok((h, _)) => h.get_value(),
        Err(_) => String::from_utf8_lossy(raw).into_owned(),
    };
    // `<Undisclosed-Recipient:;>` is common in old bulk mail: the `<` belongs to no name.
    let v = v.trim().trim_start_matches('<').trim();
    v.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(v)
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{addrs, parse, texts};
    use super::*;

    #[test]
    fn one_bad_item_does_not_hide_the_rest() {
        // mailparse alone rejects the whole list because of the item without a domain.
        let raw = "To: a@x.example, nobody, b@y.example\n\n";
        let (h, _) = mailparse::parse_header(raw.as_bytes()).unwrap();
        assert!(mailparse::addrparse_header(&h).is_err());
        let e = parse(raw);
        assert_eq!(addrs(&e), ["a@x.example", "b@y.example"]);
        assert_eq!(texts(&e), ["address without domain in To: nobody"]);
        assert_eq!(
            (e.warnings[0].kind, e.warnings[0].detail.as_str()),
            (HeaderWarningKind::AddressWithoutDomain, "nobody")
        );
    }

    #[test]
    fn splitter_keeps_quoted_commented_bracketed_and_encoded_commas() {
        let v = br#""a, b" <x@y>, c@d (e, f), <g,h@i>, =?utf-8?q?j,_k?= <l@m>, n@o"#;
        let mut items = Vec::new();
        split_list(v, |p| {
            if let Piece::Item(i, _) = p {
                items.push(String::from_utf8_lossy(i).trim().to_owned());
            }
        });
        assert_eq!(
            items,
            [
                r#""a, b" <x@y>"#,
                "c@d (e, f)",
                "<g",
                "h@i>",
                "=?utf-8?q?j,_k?= <l@m>",
                "n@o"
            ]
        );
    }

    #[test]
    fn unterminated_group_keeps_members_with_a_warning() {
        let e = parse("To: Friends: a@x.example, b@y.example\n\n");
        assert_eq!(addrs(&e), ["a@x.example", "b@y.example"]);
        assert_eq!(e.groups.len(), 1);
        assert_eq!(e.groups[0].members, 2);
        assert_eq!(texts(&e), ["unterminated group in To header"]);
        assert_eq!(e.warnings[0].kind, HeaderWarningKind::UnterminatedGroup);
        assert_eq!(e.warnings[0].field.as_deref(), Some("To"));
    }

    #[test]
    fn bracketed_undisclosed_group_from_old_bulk_mailers() {
        let e = parse("To: <Undisclosed-Recipient:;>\n\n");
        assert_eq!(e.groups.len(), 1);
        assert_eq!(e.groups[0].name, "Undisclosed-Recipient");
        assert_eq!(e.groups[0].members, 0);
        assert!(e.recipients.is_empty());
    }

    #[test]
    fn encoded_group_name_and_empty_group_in_cc() {
        let e = parse("To: a@x.example\nCc: =?utf-8?q?Kunden_M=C3=BCnchen?=:;\n\n");
        assert_eq!(e.groups.len(), 1);
        assert_eq!(e.groups[0].name, "Kunden München");
        assert_eq!(e.groups[0].field, Field::Cc);
        assert_eq!(e.groups[0].members, 0);
    }

    fn batch(n: usize, encoded: bool, sep: &str) -> String {
        let mut s = String::from("From: news@shop.example\nTo: ");
        for i in 0..n {
            if i > 0 {
                s.push(',');
                s.push_str(sep);
            }
            if encoded {
                s.push_str(&format!("=?utf-8?q?Kunde,_Nr_{i}?= <kunde{i}@gmail.com>"));
            } else {
                s.push_str(&format!("Customer {i} <c{i}@example{}.com>", i % 50));
            }
        }
        s.push_str("\nSubject: batch\n\nbody\n");
        s
    }

    #[test]
    fn twenty_thousand_addresses_on_one_line_and_folded() {
        // The one-line form with encoded words is quadratic inside mailparse if handed to it
        // whole; the splitter keeps it linear (measured in the report, not timed here).
        for (encoded, sep) in [(true, " "), (false, "\n "), (true, "\r\n\t")] {
            let raw = batch(20_000, encoded, sep);
            let e = parse(&raw);
            assert_eq!(e.recipients.len(), 20_000);
            assert!(e.recipients.iter().all(|r| r.field == Field::To));
            if encoded {
                assert_eq!(
                    e.recipients[19_999].mailbox.address.as_str(),
                    "kunde19999@gmail.com"
                );
                assert_eq!(
                    e.recipients[7].mailbox.display.as_deref(),
                    Some("Kunde, Nr 7")
                );
            }
        }
    }
}
