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

use crate::model::{Address, EnvelopeKind, EnvelopeRecipient};
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
    /// The `Sender:` line's address.
    pub sender: Option<Address>,
    /// The `Message-ID:` line, without angle brackets.
    pub message_id: Option<String>,
}

/// Reads `raw` (a whole message) as a journal report.
pub fn unwrap(raw: &[u8]) -> Result<Report<'_>, JournalError> {
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
                    html_text(&text)
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
    let (recipients, sender, message_id) = parse_envelope_text(&envelope);
    if recipients.is_empty() {
        return Err(JournalError::NoRecipients);
    }
    let original = match (original, undecodable) {
        (Some(o), _) => o,
        (None, Some(e)) => return Err(e),
        (None, None) => return Err(JournalError::NoOriginal),
    };
    if original.iter().all(u8::is_ascii_whitespace) {
        return Err(JournalError::EmptyOriginal);
    }
    Ok(Report {
        original,
        recipients,
        sender,
        message_id,
    })
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

/// The envelope lines: recipients (deduplicated by address and kind), sender, Message-ID.
fn parse_envelope_text(text: &str) -> (Vec<EnvelopeRecipient>, Option<Address>, Option<String>) {
    let mut recipients: Vec<EnvelopeRecipient> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut sender = None;
    let mut message_id = None;
    for line in text.lines() {
        let line = line.trim();
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        let kind = match key.trim().to_ascii_lowercase().as_str() {
            "to" => EnvelopeKind::To,
            "cc" => EnvelopeKind::Cc,
            "bcc" => EnvelopeKind::Bcc,
            "recipient" => EnvelopeKind::Recipient,
            "sender" => {
                sender = sender.or_else(|| address_of(value));
                continue;
            }
            "message-id" => {
                if message_id.is_none() {
                    let id = value.trim_start_matches('<').trim_end_matches('>').trim();
                    message_id = (!id.is_empty()).then(|| id.to_owned());
                }
                continue;
            }
            _ => continue,
        };
        // `a@x, Expanded: dl@x` / `a@x, Forwarded: y@z`.
        let mut items = value.split(',');
        let Some(address) = items.next().and_then(address_of) else {
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
                match k.trim().to_ascii_lowercase().as_str() {
                    "expanded" => r.expanded_from = address_of(v),
                    "forwarded" => r.forwarded_for = address_of(v),
                    _ => {}
                }
            }
        }
        if seen.insert((r.address.clone(), r.kind)) {
            recipients.push(r);
        }
    }
    (recipients, sender, message_id)
}

/// The address of `a@x`, `<a@x>` or `Name <a@x>`.
fn address_of(v: &str) -> Option<Address> {
    let v = v.trim();
    let v = match (v.rfind('<'), v.rfind('>')) {
        (Some(a), Some(b)) if a < b => &v[a + 1..b],
        _ => v,
    };
    Address::parse(v.trim())
}

/// The text of an HTML envelope part: one line per block or `<br>`, tags dropped, the
/// entities a report uses decoded.
fn html_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        let Some(gt) = rest[lt..].find('>') else {
            rest = "";
            break;
        };
        let tag = rest[lt + 1..lt + gt]
            .trim_start_matches('/')
            .to_ascii_lowercase();
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if matches!(
            name.as_str(),
            "br" | "p" | "div" | "tr" | "li" | "table" | "td" | "body" | "html"
        ) {
            out.push('\n');
        }
        rest = &rest[lt + gt + 1..];
    }
    out.push_str(rest);
    decode_entities(&out)
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let tail = &rest[amp..];
        let end = tail.find(';').filter(|&e| e <= 10);
        let decoded = end.and_then(|e| {
            let name = &tail[1..e];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some(' '),
                _ if name.starts_with("#x") || name.starts_with("#X") => {
                    u32::from_str_radix(&name[2..], 16)
                        .ok()
                        .and_then(char::from_u32)
                }
                _ if name.starts_with('#') => name[1..].parse().ok().and_then(char::from_u32),
                _ => None,
            };
            c.map(|c| (c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &tail[e + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
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
        assert_eq!(
            r.sender.as_ref().map(Address::as_str),
            Some("noreply@corp.example")
        );
        assert_eq!(r.message_id.as_deref(), Some("m1@corp.example"));
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
