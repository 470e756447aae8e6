//! Composing a notification: templates, the [`Notice`] text, the reset link, the message
//! bytes (RFC 2047 subject, base64 UTF-8 body).

use crate::error::{Error, Result};
use base64::Engine as _;
use leakaudit_scanner::Address;
use regex::Regex;
use std::sync::LazyLock;

pub use super::templates::{Template, Templates, TEMPLATES};

/// The shipped template language used for `locale` (its primary subtag when shipped, else
/// `en`).
pub fn template_language(locale: &str) -> &'static str {
    super::templates::builtin_ref().language(locale)
}

/// The shipped template for `locale` (with English fallback).
pub fn template(locale: &str) -> Template {
    super::templates::builtin_ref().get(locale).clone()
}

/// What a notification says.
#[derive(Debug, Clone)]
pub struct Notice<'a> {
    pub to: &'a str,
    pub locale: &'a str,
    pub first_exposed: Option<&'a str>,
    pub messages: usize,
    pub audience: usize,
    /// Reset link and its expiry (RFC 3339) when the password was reset.
    pub reset: Option<(String, String)>,
    pub review: bool,
    /// False for an exposed address without an account (a notify-only notice): the
    /// template's `no_account` text, never a link.
    pub account: bool,
}

/// Sender settings of the outbox.
#[derive(Debug, Clone)]
pub struct Sender {
    /// `Name <addr@domain>` or `addr@domain`, ASCII.
    pub from: String,
    pub from_domain: String,
}

impl Sender {
    /// Validates a From value: exactly one ASCII mailbox.
    pub fn new(from: &str) -> Result<Sender> {
        let bad = |why: &str| Error::Setting(format!("--from `{from}`: {why}"));
        if !from.is_ascii() || from.contains(['\r', '\n']) {
            return Err(bad("must be one ASCII line"));
        }
        let list = mailparse::addrparse(from).map_err(|e| bad(&e.to_string()))?;
        let single = match list.iter().collect::<Vec<_>>().as_slice() {
            [mailparse::MailAddr::Single(s)] => s.clone(),
            _ => return Err(bad("must be exactly one address")),
        };
        let addr = Address::parse(&single.addr).ok_or_else(|| bad("not an address"))?;
        // Every notification would show it to every customer: refused before anything
        // changes (the outbox gate refuses each message too).
        let own = |a: &Address| *a == addr;
        // As a reader's mail program shows it too: encoded words decoded.
        let line = format!("From: {from}");
        let shown = mailparse::parse_header(line.as_bytes())
            .map(|(h, _)| h.get_value())
            .unwrap_or_default();
        if super::check::foreign_addresses(from, &own)
            + super::check::foreign_addresses(&shown, &own)
            > 0
        {
            return Err(bad(
                "its display name or a comment holds another address, which every notification would show",
            ));
        }
        Ok(Sender {
            from: from.to_string(),
            from_domain: addr.domain().to_string(),
        })
    }
}

/// RFC 2047 encoding of a header value (B-encoding, UTF-8), folded; ASCII passes through.
pub fn encode_header_value(v: &str) -> String {
    if v.is_ascii() && !v.contains("=?") {
        return v.to_string();
    }
    // Chunks of whole characters, at most 39 bytes: 52 base64 chars + 12 = 64 per word, so
    // even the first line (after "Subject: ") stays under 78 characters.
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in v.chars() {
        if chunk.len() + c.len_utf8() > 39 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    words
        .iter()
        .map(|w| {
            format!(
                "=?UTF-8?B?{}?=",
                base64::engine::general_purpose::STANDARD.encode(w)
            )
        })
        .collect::<Vec<_>>()
        .join("\n ")
}

/// The text body of a notice (shipped templates).
pub fn body_text(n: &Notice<'_>) -> String {
    Templates::builtin().body_text(n)
}

/// Builds the whole message with the shipped templates (LF line ends, as Maildir stores
/// them).
pub fn build_message(n: &Notice<'_>, sender: &Sender, message_id: &str, date: &str) -> Vec<u8> {
    Templates::builtin().build_message(n, sender, message_id, date)
}

impl Templates {
    /// Builds the whole message (LF line ends, as Maildir stores them): one To, RFC 2047
    /// subject, base64 UTF-8 text body, Content-Language.
    pub fn build_message(
        &self,
        n: &Notice<'_>,
        sender: &Sender,
        message_id: &str,
        date: &str,
    ) -> Vec<u8> {
        let lang = self.language(n.locale);
        let body = base64::engine::general_purpose::STANDARD.encode(self.body_text(n));
        let mut out = String::new();
        out.push_str(&format!("Date: {date}\n"));
        out.push_str(&format!("From: {}\n", sender.from));
        out.push_str(&format!("To: <{}>\n", n.to));
        out.push_str(&format!(
            "Subject: {}\n",
            encode_header_value(&self.subject(n))
        ));
        out.push_str(&format!("Message-ID: <{message_id}>\n"));
        out.push_str("MIME-Version: 1.0\n");
        out.push_str("Content-Type: text/plain; charset=utf-8\n");
        out.push_str("Content-Transfer-Encoding: base64\n");
        out.push_str(&format!("Content-Language: {lang}\n"));
        out.push_str("Auto-Submitted: auto-generated\n\n");
        for chunk in body.as_bytes().chunks(76) {
            out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
            out.push('\n');
        }
        out.into_bytes()
    }
}

/// The reset link a notification carries: `base` + `?selector=<hex>&token=<hex>` (`&` when
/// `base` already has a query).
pub fn reset_link(base: &str, selector: &str, secret: &str) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}selector={selector}&token={secret}")
}

/// Recognises links made by [`reset_link`] from a token of [`crate::token::issue`]
/// (selector 16 bytes, secret 32 bytes, both lowercase hex). Kept next to the link format so
/// the two cannot drift apart; the outbox gate uses it to allow a notification's own link.
pub(crate) static RESET_LINK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"https?://[^\s<>"']*?[?&]selector=[0-9a-f]{32}&token=[0-9a-f]{64}\b"#)
        .expect("constant regex")
});

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::outbox::OutboxGate;
    use leakaudit_policy::{Engine, RulePack};
    use leakaudit_scanner::Org;

    /// Issue 29 (2): a sender whose display name or comment holds a customer's address.
    #[test]
    fn a_sender_showing_another_address_is_refused() {
        for from in [
            "\"c.anderson@gmail.com\" <security@example.com>",
            "security@example.com (c.anderson@gmail.com)",
            "=?UTF-8?B?Yy5hbmRlcnNvbkBnbWFpbC5jb20=?= <security@example.com>",
            "\"c.anderson&#64;gmail.com\" <security@example.com>",
        ] {
            let err = Sender::new(from).unwrap_err().to_string();
            assert!(err.contains("holds another address"), "{from}: {err}");
        }
        for from in [
            "Security <security@example.com>",
            "\"security@example.com\" <security@example.com>",
            "security@example.com",
        ] {
            assert!(Sender::new(from).is_ok(), "{from}");
        }
    }

    #[test]
    fn shipped_template_languages() {
        assert_eq!(template_language("de-CH"), "de");
        assert_eq!(template_language("pt_BR"), "en");
        assert_eq!(template_language("RU"), "ru");
        assert!(template("fr").reset_done.contains("{link}"));
    }

    /// A link shaped exactly like the ones apply writes.
    pub(crate) fn link() -> String {
        reset_link(
            "https://example.com/reset",
            &"ab".repeat(16),
            &"cd".repeat(32),
        )
    }

    pub(crate) fn notice<'a>(to: &'a str, locale: &'a str, reset: bool) -> Notice<'a> {
        Notice {
            to,
            locale,
            first_exposed: Some("2026-03-01T09:00:00Z"),
            messages: 2,
            audience: 7,
            reset: reset.then(|| (link(), "2026-03-02T09:00:00Z".to_string())),
            review: false,
            account: true,
        }
    }

    #[test]
    fn built_message_is_safe_and_localised() {
        let engine = Engine::new(
            RulePack::builtin(),
            Org::with_defaults(),
            &Default::default(),
        );
        let gate = OutboxGate::new(&engine);
        let sender = Sender::new("Security Team <security@shop.example>").unwrap();
        let raw = build_message(
            &notice("anna@gmail.com", "ru", true),
            &sender,
            "x@shop.example",
            "Sat, 28 Nov 2026 10:00:00 +0000",
        );
        assert_eq!(
            gate.check(&raw, Some("anna@gmail.com")),
            Vec::<String>::new()
        );
        let p = mailparse::parse_mail(&raw).unwrap();
        let subject = p.headers.iter().find(|h| h.get_key() == "Subject").unwrap();
        assert!(subject.get_value().starts_with("Уведомление"));
        let body = p.get_body().unwrap();
        assert!(body.contains(&link()));
        assert!(body.contains("2026-03-01"));
        // Wrong expected recipient.
        assert!(!gate.check(&raw, Some("bob@gmail.com")).is_empty());
    }

    #[test]
    fn reset_link_format_is_recognised() {
        let l = link();
        assert_eq!(
            l,
            format!(
                "https://example.com/reset?selector={}&token={}",
                "ab".repeat(16),
                "cd".repeat(32)
            )
        );
        assert_eq!(RESET_LINK.find(&l).map(|m| m.as_str()), Some(l.as_str()));
        let with_query = reset_link("https://x.example/r?lang=de", "0", "1");
        assert_eq!(with_query, "https://x.example/r?lang=de&selector=0&token=1");
        // A longer token is not one of ours.
        assert!(!RESET_LINK.is_match(&format!("{l}ef")));
    }

    #[test]
    fn subject_encoding_roundtrips() {
        let v =
            "Avis de sécurité : votre adresse e-mail a été exposée — très long sujet pour plier";
        let enc = encode_header_value(v);
        assert!(enc.is_ascii());
        let hdr = format!("Subject: {enc}\n\n");
        let (h, _) = mailparse::parse_header(hdr.as_bytes()).unwrap();
        assert_eq!(h.get_value(), v);
        assert_eq!(encode_header_value("plain"), "plain");
    }

    #[test]
    fn from_must_be_one_address() {
        assert!(Sender::new("a@x.example, b@y.example").is_err());
        assert!(Sender::new("nobody").is_err());
        assert_eq!(
            Sender::new("Sec <sec@Shop.Example>").unwrap().from_domain,
            "shop.example"
        );
    }
}
