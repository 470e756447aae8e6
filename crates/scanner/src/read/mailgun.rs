//! Mailgun event logs: events as the Events API returns them (a page `{"items": [...],
//! "paging": {...}}`) or one event per line (JSON Lines, as webhooks and exports write them).
//!
//! Layout: <https://documentation.mailgun.com/docs/mailgun/api-reference/openapi-final/tag/Events/>
//! and the event structure in "Tracking messages / Events". One event per recipient
//! (`accepted`, `delivered`, `failed`, `opened`, ...): `recipient`, and `message.headers`
//! (`to`, `from`, `subject`, `message-id`: no Cc, no Bcc, no Date; `timestamp` gives the time).
//! A message is grouped by its `message-id`: its envelope is the union of the `recipient` of
//! every event of it.

use crate::model::EnvelopeKind;
use crate::read::provider::{envelope, field, json_object_head, EventMessage};
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// Whether `head` (the start of a file) is a Mailgun event log.
pub fn detect(head: &[u8]) -> bool {
    let Some(has) = json_object_head(head) else {
        return false;
    };
    has(b"\"event\"") && has(b"\"recipient\"") && has(b"\"message\"") && has(b"\"headers\"")
}

/// Why an event is not a message the audit can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailgunError {
    #[error("not JSON: {0}")]
    Json(String),
    #[error("not a Mailgun event: no `event` or `message`")]
    NotAnEvent,
    #[error("Mailgun event without `message.headers`: what the recipients saw is unknown")]
    NoHeaders,
    #[error("Mailgun event without `message.headers.message-id`")]
    NoMessageId,
}

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(default, borrow)]
    event: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    recipient: Option<Cow<'a, str>>,
    #[serde(default)]
    timestamp: Option<f64>,
    #[serde(default, borrow)]
    message: Option<MessagePart<'a>>,
}

#[derive(Deserialize)]
struct MessagePart<'a> {
    #[serde(default, borrow)]
    headers: Option<BTreeMap<Cow<'a, str>, Cow<'a, str>>>,
}

#[derive(Deserialize)]
struct KeyOnly<'a> {
    #[serde(default, borrow)]
    recipient: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    message: Option<KeyMessage<'a>>,
}

#[derive(Deserialize)]
struct KeyMessage<'a> {
    #[serde(default, borrow)]
    headers: Option<KeyHeaders<'a>>,
}

#[derive(Deserialize)]
struct KeyHeaders<'a> {
    #[serde(rename = "message-id", default, borrow)]
    message_id: Option<Cow<'a, str>>,
}

/// An event's grouping key (its message's `message-id`) and recipient, read without
/// building its message. `None` when it has no message id (then [`message_of`] says why).
pub fn key(value: &[u8]) -> Option<(String, Option<String>)> {
    let ev: KeyOnly<'_> = serde_json::from_slice(value).ok()?;
    let id = ev.message?.headers?.message_id?;
    let id = id.trim().trim_matches(['<', '>']);
    (!id.is_empty()).then(|| (id.to_string(), ev.recipient.map(Cow::into_owned)))
}

#[derive(Deserialize)]
struct Page<'a> {
    #[serde(borrow)]
    items: Vec<&'a serde_json::value::RawValue>,
}

/// The events of an Events API page (`{"items": [...]}`), each as its JSON text; `None` when
/// `value` is not a page.
pub fn items(value: &[u8]) -> Option<Vec<&str>> {
    let page: Page<'_> = serde_json::from_slice(value).ok()?;
    Some(page.items.into_iter().map(|r| r.get()).collect())
}

/// The message of the first event of a message (`value`) with every recipient its events
/// named (`recipients`, this event's included).
pub fn message_of(value: &[u8], recipients: &[String]) -> Result<EventMessage, MailgunError> {
    let ev: Event<'_> =
        serde_json::from_slice(value).map_err(|e| MailgunError::Json(e.to_string()))?;
    if ev.event.is_none() {
        return Err(MailgunError::NotAnEvent);
    }
    let headers = ev
        .message
        .ok_or(MailgunError::NotAnEvent)?
        .headers
        .ok_or(MailgunError::NoHeaders)?;
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    };
    let id = get("message-id")
        .map(|m| m.trim().trim_matches(['<', '>']).to_string())
        .filter(|m| !m.is_empty())
        .ok_or(MailgunError::NoMessageId)?;
    let mut raw = Vec::with_capacity(512);
    for name in ["From", "To", "Cc", "Subject"] {
        if let Some(v) = get(name) {
            field(&mut raw, name, v);
        }
    }
    if let Some(date) = ev
        .timestamp
        .and_then(|t| chrono::DateTime::from_timestamp(t as i64, 0))
    {
        field(&mut raw, "Date", &date.to_rfc2822());
    }
    field(&mut raw, "Message-ID", &format!("<{id}>"));
    raw.extend_from_slice(b"\r\n");
    let envelope = envelope(
        recipients
            .iter()
            .map(String::as_str)
            .chain(ev.recipient.as_deref())
            .map(|r| (r, EnvelopeKind::Recipient)),
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

    const DELIVERED: &str = r#"{"event":"delivered","id":"W3X4","timestamp":1572598944.0,"recipient":"a@gmail.com","envelope":{"sender":"noreply@shop.example","targets":"a@gmail.com"},"message":{"headers":{"to":"a@gmail.com, b@yahoo.com","message-id":"<m1@shop.example>","from":"Shop <noreply@shop.example>","subject":"News"},"size":1024}}"#;

    #[test]
    fn an_event_becomes_its_headers_and_the_recipients() {
        assert_eq!(
            key(DELIVERED.as_bytes()),
            Some(("m1@shop.example".into(), Some("a@gmail.com".into())))
        );
        let m = message_of(DELIVERED.as_bytes(), &["c@hotmail.com".into()]).unwrap();
        assert_eq!(m.id, "m1@shop.example");
        assert_eq!(
            String::from_utf8(m.raw).unwrap(),
            "From: Shop <noreply@shop.example>\r\nTo: a@gmail.com, b@yahoo.com\r\nSubject: News\r\nDate: Fri, 1 Nov 2019 09:02:24 +0000\r\nMessage-ID: <m1@shop.example>\r\n\r\n"
        );
        let env: Vec<&str> = m.envelope.iter().map(|r| r.address.as_str()).collect();
        assert_eq!(env, ["c@hotmail.com", "a@gmail.com"]);
        assert!(detect(DELIVERED.as_bytes()));
    }

    #[test]
    fn a_page_holds_its_events() {
        let page = format!(r#"{{"items":[{DELIVERED},{DELIVERED}],"paging":{{"next":"x"}}}}"#);
        let items = items(page.as_bytes()).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0], DELIVERED);
        assert!(detect(page.as_bytes()));
        assert!(super::items(DELIVERED.as_bytes()).is_none());
    }

    #[test]
    fn broken_events_say_why() {
        assert!(matches!(message_of(b"{", &[]), Err(MailgunError::Json(_))));
        assert_eq!(message_of(b"{\"a\":1}", &[]), Err(MailgunError::NotAnEvent));
        assert_eq!(
            message_of(
                br#"{"event":"delivered","recipient":"a@b.example","message":{}}"#,
                &[]
            ),
            Err(MailgunError::NoHeaders)
        );
        assert_eq!(
            key(br#"{"event":"delivered","message":{"headers":{}}}"#),
            None
        );
        assert!(!detect(b"{\"eventType\":\"Send\",\"mail\":{}}"));
    }
}
