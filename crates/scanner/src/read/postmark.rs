//! Postmark outbound messages as the Messages API returns them: a search page
//! (`{"TotalCount": n, "Messages": [...]}`), one message per line, or a message's details.
//!
//! Layout: <https://postmarkapp.com/developer/api/messages-api> ("Outbound message search",
//! "Outbound message details"). One record per message (no grouping): `MessageID` (Postmark's),
//! `From`, `To`/`Cc`/`Bcc` (arrays of `{"Email", "Name"}`), `Recipients` (every envelope
//! recipient), `Subject`, `ReceivedAt`. The message's own header fields are not in it: the
//! message is rebuilt from these (Bcc known as Bcc, never shown).

use crate::model::EnvelopeKind;
use crate::read::provider::{envelope, field, json_object_head, EventMessage};
use serde::Deserialize;
use std::borrow::Cow;

/// Whether `head` (the start of a file) is a Postmark messages log.
pub fn detect(head: &[u8]) -> bool {
    let Some(has) = json_object_head(head) else {
        return false;
    };
    has(b"\"MessageID\"") && (has(b"\"Recipients\"") || has(b"\"MessageStream\""))
}

/// Why a record is not a message the audit can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostmarkError {
    #[error("not JSON: {0}")]
    Json(String),
    #[error("not a Postmark message: no `MessageID`")]
    NoMessageId,
    #[error("Postmark message without `From`, `To` or `Cc`: what the recipients saw is unknown")]
    NoHeaders,
}

#[derive(Deserialize, Default)]
struct Person<'a> {
    #[serde(rename = "Email", default, borrow)]
    email: Option<Cow<'a, str>>,
    #[serde(rename = "Name", default, borrow)]
    name: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Record<'a> {
    #[serde(rename = "MessageID", default, borrow)]
    message_id: Option<Cow<'a, str>>,
    #[serde(rename = "From", default, borrow)]
    from: Option<Cow<'a, str>>,
    #[serde(rename = "To", default, borrow)]
    to: Vec<Person<'a>>,
    #[serde(rename = "Cc", default, borrow)]
    cc: Vec<Person<'a>>,
    #[serde(rename = "Bcc", default, borrow)]
    bcc: Vec<Person<'a>>,
    #[serde(rename = "Recipients", default)]
    recipients: Vec<String>,
    #[serde(rename = "Subject", default, borrow)]
    subject: Option<Cow<'a, str>>,
    #[serde(rename = "ReceivedAt", default, borrow)]
    received_at: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct IdOnly<'a> {
    #[serde(rename = "MessageID", default, borrow)]
    message_id: Option<Cow<'a, str>>,
}

/// A record's `MessageID`, read without building its message.
pub fn message_id(value: &[u8]) -> Option<String> {
    let r: IdOnly<'_> = serde_json::from_slice(value).ok()?;
    r.message_id
        .filter(|m| !m.trim().is_empty())
        .map(Cow::into_owned)
}

#[derive(Deserialize)]
struct Page<'a> {
    #[serde(rename = "Messages", borrow)]
    messages: Vec<&'a serde_json::value::RawValue>,
}

/// The messages of a search page (`{"Messages": [...]}`), each as its JSON text; `None` when
/// `value` is not a page.
pub fn items(value: &[u8]) -> Option<Vec<&str>> {
    let page: Page<'_> = serde_json::from_slice(value).ok()?;
    Some(page.messages.into_iter().map(|r| r.get()).collect())
}

fn mailbox(p: &Person<'_>) -> Option<String> {
    let email = p.email.as_deref()?.trim();
    Some(
        match p.name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
            Some(name) => format!("\"{}\" <{email}>", name.replace(['"', '\\'], "")),
            None => email.to_string(),
        },
    )
}

fn people<'a>(
    list: &'a [Person<'_>],
    kind: EnvelopeKind,
) -> impl Iterator<Item = (&'a str, EnvelopeKind)> + 'a {
    list.iter()
        .filter_map(move |p| Some((p.email.as_deref()?, kind)))
}

/// The message one record describes.
pub fn message_of(value: &[u8]) -> Result<EventMessage, PostmarkError> {
    let r: Record<'_> =
        serde_json::from_slice(value).map_err(|e| PostmarkError::Json(e.to_string()))?;
    let id = r
        .message_id
        .map(|m| m.trim().to_string())
        .filter(|m| !m.is_empty())
        .ok_or(PostmarkError::NoMessageId)?;
    if r.from.is_none() && r.to.is_empty() && r.cc.is_empty() {
        return Err(PostmarkError::NoHeaders);
    }
    let mut raw = Vec::with_capacity(512);
    if let Some(from) = &r.from {
        field(&mut raw, "From", from);
    }
    let list = |people: &[Person<'_>]| -> String {
        people
            .iter()
            .filter_map(mailbox)
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (name, people) in [("To", &r.to), ("Cc", &r.cc)] {
        if !people.is_empty() {
            field(&mut raw, name, &list(people));
        }
    }
    if let Some(s) = &r.subject {
        field(&mut raw, "Subject", s);
    }
    if let Some(date) = r
        .received_at
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t.trim()).ok())
    {
        field(&mut raw, "Date", &date.to_rfc2822());
    }
    // Postmark's id names the message; a Message-ID needs a domain part.
    let mid = if id.contains('@') {
        format!("<{id}>")
    } else {
        format!("<{id}@postmark.message-id.invalid>")
    };
    field(&mut raw, "Message-ID", &mid);
    raw.extend_from_slice(b"\r\n");
    // The arrays say how each was addressed; `Recipients` adds whoever they did not name.
    let envelope = envelope(
        people(&r.to, EnvelopeKind::To)
            .chain(people(&r.cc, EnvelopeKind::Cc))
            .chain(people(&r.bcc, EnvelopeKind::Bcc))
            .chain(
                r.recipients
                    .iter()
                    .map(|e| (e.as_str(), EnvelopeKind::Recipient)),
            ),
    );
    Ok(EventMessage {
        id,
        raw,
        envelope,
        headers_truncated: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &str = r#"{"Tag":"news","MessageID":"0ac29aee-e1cd-480d-b08d-4f48548ff48d","MessageStream":"broadcast","To":[{"Email":"a@gmail.com","Name":"Ann"},{"Email":"b@yahoo.com","Name":null}],"Cc":[],"Bcc":[{"Email":"c@hotmail.com","Name":null}],"Recipients":["a@gmail.com","b@yahoo.com","c@hotmail.com"],"ReceivedAt":"2019-11-01T09:02:24.0000000+00:00","From":"\"Shop\" <noreply@shop.example>","Subject":"News","Attachments":[],"Status":"Sent"}"#;

    #[test]
    fn a_record_becomes_its_headers_and_envelope() {
        assert!(detect(MSG.as_bytes()));
        assert_eq!(
            message_id(MSG.as_bytes()).as_deref(),
            Some("0ac29aee-e1cd-480d-b08d-4f48548ff48d")
        );
        let m = message_of(MSG.as_bytes()).unwrap();
        assert_eq!(
            String::from_utf8(m.raw).unwrap(),
            "From: \"Shop\" <noreply@shop.example>\r\nTo: \"Ann\" <a@gmail.com>, b@yahoo.com\r\nSubject: News\r\nDate: Fri, 1 Nov 2019 09:02:24 +0000\r\nMessage-ID: <0ac29aee-e1cd-480d-b08d-4f48548ff48d@postmark.message-id.invalid>\r\n\r\n"
        );
        let env: Vec<(&str, EnvelopeKind)> = m
            .envelope
            .iter()
            .map(|r| (r.address.as_str(), r.kind))
            .collect();
        assert_eq!(
            env,
            [
                ("a@gmail.com", EnvelopeKind::To),
                ("b@yahoo.com", EnvelopeKind::To),
                ("c@hotmail.com", EnvelopeKind::Bcc)
            ]
        );
    }

    #[test]
    fn a_search_page_holds_its_messages_and_broken_records_say_why() {
        let page = format!(r#"{{"TotalCount":2,"Messages":[{MSG},{MSG}]}}"#);
        assert_eq!(items(page.as_bytes()).unwrap().len(), 2);
        assert!(detect(page.as_bytes()));
        assert!(matches!(message_of(b"[",), Err(PostmarkError::Json(_))));
        assert_eq!(message_of(b"{\"To\":[]}"), Err(PostmarkError::NoMessageId));
        assert_eq!(
            message_of(b"{\"MessageID\":\"x\",\"Recipients\":[\"a@b.example\"]}"),
            Err(PostmarkError::NoHeaders)
        );
        assert!(!detect(b"{\"event\":\"delivered\"}"));
    }
}
