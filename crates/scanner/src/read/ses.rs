//! Amazon SES event logs: event publishing records (`eventType`: Send, Delivery, Bounce,
//! Complaint, ...) as Kinesis Data Firehose writes them (JSON Lines, or records concatenated
//! `}{` on one line), SES notifications (`notificationType`), and either wrapped in an SNS
//! notification (`"Type": "Notification"`, the event as the `Message` string), one per line or
//! one pretty-printed object per file.
//!
//! Layout: <https://docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-firehose-contents.html>
//! and <https://docs.aws.amazon.com/ses/latest/dg/notification-contents.html>. Every event of a
//! message carries the same `mail` object: `messageId` (SES's), `destination` (every envelope
//! recipient, Bcc included), `headers` (the original header fields, when the configuration set
//! includes them; `headersTruncated` when SES cut them) and `commonHeaders` (`from`, `to`,
//! `cc`, `subject`, `date`, `messageId`, ...: no Bcc).
//!
//! One message per SES message id, at its first event: later events of the same message are
//! skipped. Memory: one 64-bit hash per message seen (the events themselves are streamed).
//! A message becomes a header block (its `headers`, else its `commonHeaders`) and its
//! `destination` becomes the envelope recipients, as a journal report's list does.

use crate::model::EnvelopeKind;
use crate::read::provider::{envelope, field, json_object_head, EventMessage};
use serde::Deserialize;
use std::borrow::Cow;

/// Whether `head` (the start of a file) is an SES event log.
pub fn detect(head: &[u8]) -> bool {
    let Some(has) = json_object_head(head) else {
        return false;
    };
    let event = has(b"\"eventType\"") || has(b"\"notificationType\"");
    let sns_event = has(b"\\\"eventType\\\"") || has(b"\\\"notificationType\\\"");
    (event && has(b"\"mail\"")) || (has(b"\"Type\"") && sns_event)
}

/// Why an event is not a message the audit can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SesError {
    #[error("not JSON: {0}")]
    Json(String),
    #[error("not an SES event: no `mail` object")]
    NotAnEvent,
    #[error("SNS notification whose `Message` is not an SES event: {0}")]
    SnsMessage(String),
    #[error("SES event without headers or commonHeaders: what the recipients saw is unknown")]
    NoHeaders,
    #[error("SES event without `mail.messageId`")]
    NoMessageId,
}

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(default, borrow)]
    mail: Option<Mail<'a>>,
    #[serde(rename = "Type", default, borrow)]
    sns_type: Option<Cow<'a, str>>,
    #[serde(rename = "Message", default, borrow)]
    sns_message: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Mail<'a> {
    #[serde(rename = "messageId", default, borrow)]
    message_id: Option<Cow<'a, str>>,
    #[serde(default)]
    destination: Vec<String>,
    #[serde(rename = "headersTruncated", default)]
    headers_truncated: bool,
    #[serde(default, borrow)]
    headers: Vec<Header<'a>>,
    #[serde(rename = "commonHeaders", default, borrow)]
    common: Option<Common<'a>>,
}

#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(default, borrow)]
    value: Cow<'a, str>,
}

#[derive(Deserialize, Default)]
struct Common<'a> {
    #[serde(default)]
    from: Vec<String>,
    #[serde(rename = "replyTo", default)]
    reply_to: Vec<String>,
    #[serde(default)]
    to: Vec<String>,
    #[serde(default)]
    cc: Vec<String>,
    #[serde(default)]
    bcc: Vec<String>,
    #[serde(default, borrow)]
    subject: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    date: Option<Cow<'a, str>>,
    #[serde(rename = "messageId", default, borrow)]
    message_id: Option<Cow<'a, str>>,
    #[serde(rename = "returnPath", default, borrow)]
    return_path: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct IdOnly<'a> {
    #[serde(default, borrow)]
    mail: Option<MailId<'a>>,
    #[serde(rename = "Message", default, borrow)]
    sns_message: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct MailId<'a> {
    #[serde(rename = "messageId", default, borrow)]
    message_id: Option<Cow<'a, str>>,
}

/// The SES message id of an event, read without building its message: a later event of a
/// message already read (a Delivery of each of 1,000 recipients) is skipped for the cost of
/// one pass over its text. `None` when it has none (then [`message_of`] says why).
pub fn message_id(value: &[u8]) -> Option<String> {
    let ev: IdOnly<'_> = serde_json::from_slice(value).ok()?;
    match (ev.mail, ev.sns_message) {
        (Some(m), _) => m.message_id.map(Cow::into_owned),
        (None, Some(inner)) => {
            let inner: IdOnly<'_> = serde_json::from_str(&inner).ok()?;
            inner.mail?.message_id.map(Cow::into_owned)
        }
        (None, None) => None,
    }
}

/// The message one event (a JSON value) describes.
pub fn message_of(value: &[u8]) -> Result<EventMessage, SesError> {
    let event: Event<'_> =
        serde_json::from_slice(value).map_err(|e| SesError::Json(e.to_string()))?;
    match event.mail {
        Some(mail) => from_mail(mail),
        None => match (event.sns_type.as_deref(), event.sns_message) {
            (Some("Notification"), Some(inner)) => {
                let inner: Event<'_> = serde_json::from_str(&inner)
                    .map_err(|e| SesError::SnsMessage(e.to_string()))?;
                from_mail(inner.mail.ok_or(SesError::NotAnEvent)?)
            }
            _ => Err(SesError::NotAnEvent),
        },
    }
}

fn from_mail(mail: Mail<'_>) -> Result<EventMessage, SesError> {
    let id = mail
        .message_id
        .filter(|id| !id.is_empty())
        .ok_or(SesError::NoMessageId)?
        .into_owned();
    let mut raw = Vec::with_capacity(1024);
    let use_headers = !mail.headers.is_empty() && !mail.headers_truncated;
    if use_headers {
        for h in &mail.headers {
            field(&mut raw, &h.name, &h.value);
        }
    } else {
        let c = mail.common.ok_or(SesError::NoHeaders)?;
        let list = |raw: &mut Vec<u8>, name: &str, v: &[String]| {
            if !v.is_empty() {
                field(raw, name, &v.join(", "));
            }
        };
        list(&mut raw, "From", &c.from);
        list(&mut raw, "Reply-To", &c.reply_to);
        list(&mut raw, "To", &c.to);
        list(&mut raw, "Cc", &c.cc);
        list(&mut raw, "Bcc", &c.bcc);
        if let Some(s) = &c.subject {
            field(&mut raw, "Subject", s);
        }
        if let Some(d) = &c.date {
            field(&mut raw, "Date", d);
        }
        if let Some(m) = &c.message_id {
            let m = m.trim();
            if m.starts_with('<') {
                field(&mut raw, "Message-ID", m);
            } else {
                field(&mut raw, "Message-ID", &format!("<{m}>"));
            }
        }
        if let Some(r) = &c.return_path {
            field(
                &mut raw,
                "Return-Path",
                &format!("<{}>", r.trim_matches(['<', '>'])),
            );
        }
    }
    if raw.is_empty() {
        return Err(SesError::NoHeaders);
    }
    raw.extend_from_slice(b"\r\n");
    let envelope = envelope(
        mail.destination
            .iter()
            .map(|d| (d.as_str(), EnvelopeKind::Recipient)),
    );
    Ok(EventMessage {
        id,
        raw,
        envelope,
        headers_truncated: mail.headers_truncated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEND: &str = r#"{"eventType":"Send","mail":{"timestamp":"2019-11-01T09:02:24.000Z","source":"noreply@shop.example","messageId":"0100016e26a3-1","destination":["a@gmail.com","b@yahoo.com","c@hotmail.com"],"headersTruncated":false,"headers":[{"name":"From","value":"Shop <noreply@shop.example>"},{"name":"To","value":"a@gmail.com, b@yahoo.com"},{"name":"Subject","value":"News"},{"name":"Message-ID","value":"<m1@shop.example>"}],"commonHeaders":{"from":["Shop <noreply@shop.example>"],"to":["a@gmail.com","b@yahoo.com"],"messageId":"m1@shop.example","subject":"News"}},"send":{}}"#;

    #[test]
    fn an_event_becomes_its_headers_and_envelope() {
        let m = message_of(SEND.as_bytes()).unwrap();
        assert_eq!(m.id, "0100016e26a3-1");
        assert_eq!(
            String::from_utf8(m.raw).unwrap(),
            "From: Shop <noreply@shop.example>\r\nTo: a@gmail.com, b@yahoo.com\r\nSubject: News\r\nMessage-ID: <m1@shop.example>\r\n\r\n"
        );
        let env: Vec<&str> = m.envelope.iter().map(|r| r.address.as_str()).collect();
        assert_eq!(env, ["a@gmail.com", "b@yahoo.com", "c@hotmail.com"]);
    }

    #[test]
    fn without_headers_the_common_headers_are_read() {
        let ev = SEND.replace(r#""headersTruncated":false"#, r#""headersTruncated":true"#);
        let m = message_of(ev.as_bytes()).unwrap();
        assert!(m.headers_truncated);
        assert_eq!(
            String::from_utf8(m.raw).unwrap(),
            "From: Shop <noreply@shop.example>\r\nTo: a@gmail.com, b@yahoo.com\r\nSubject: News\r\nMessage-ID: <m1@shop.example>\r\n\r\n"
        );
    }

    #[test]
    fn an_sns_notification_carries_the_event_as_a_string() {
        let sns = serde_json::json!({"Type": "Notification", "MessageId": "x", "Message": SEND});
        let m = message_of(sns.to_string().as_bytes()).unwrap();
        assert_eq!(m.id, "0100016e26a3-1");
        assert!(detect(sns.to_string().as_bytes()));
        assert!(detect(SEND.as_bytes()));
    }

    #[test]
    fn the_message_id_is_read_alone_and_agrees() {
        let sns = serde_json::json!({"Type": "Notification", "Message": SEND}).to_string();
        for ev in [SEND.to_string(), sns] {
            assert_eq!(
                message_id(ev.as_bytes()),
                Some(message_of(ev.as_bytes()).unwrap().id)
            );
        }
        assert_eq!(message_id(b"{\"eventType\":\"Send\"}"), None);
    }

    #[test]
    fn broken_events_say_why() {
        assert!(matches!(message_of(b"{\"a\":"), Err(SesError::Json(_))));
        assert_eq!(
            message_of(b"{\"eventType\":\"Send\"}"),
            Err(SesError::NotAnEvent)
        );
        assert_eq!(
            message_of(
                br#"{"eventType":"Send","mail":{"messageId":"x","destination":["a@b.example"]}}"#
            ),
            Err(SesError::NoHeaders)
        );
        assert!(!detect(b"{\"name\": \"not ses\"}"));
        assert!(!detect(b"From: a@b.example\n\n"));
    }

    #[test]
    fn a_line_break_in_a_value_cannot_start_a_field() {
        let ev = SEND.replace(
            "\"value\":\"News\"",
            "\"value\":\"News\\r\\nBcc: x@evil.example\"",
        );
        let m = message_of(ev.as_bytes()).unwrap();
        let text = String::from_utf8(m.raw).unwrap();
        assert!(
            text.contains("Subject: News\r\n Bcc: x@evil.example\r\n"),
            "{text}"
        );
    }
}
