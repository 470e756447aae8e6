//! The outbox gate: every reason a notification must not be sent. Used by `apply` before a
//! message is staged and by `release` before anything leaves, with the same configured
//! policy engine, so the two can never disagree about what is safe.

use super::compose::RESET_LINK;
use leakaudit_policy::Engine;
use leakaudit_scanner::exposure::analyse;
use leakaudit_scanner::{Address, Location, Message};
use regex::Regex;
use std::sync::LazyLock;

const FORBIDDEN: [&str; 6] = [
    "Cc",
    "Bcc",
    "Resent-To",
    "Resent-Cc",
    "Resent-Bcc",
    "Resent-From",
];

/// Headers holding message ids (address-shaped, not addresses).
const ID_HEADERS: [&str; 3] = ["Message-ID", "In-Reply-To", "References"];

/// `text` as a reader would see it, with what hides an address undone: HTML entities
/// (`&#64;`, `&commat;`), percent-encoding (`mailto:a%40b.com`), compatibility forms (NFKC:
/// a full-width `＠`), each repeated while it changes (`&amp;#64;`, `%2540`).
fn normalise(text: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let mut t = text.to_string();
    for _ in 0..4 {
        let next = decode_entities(&t);
        let next = percent_encoding::percent_decode_str(&next)
            .decode_utf8_lossy()
            .into_owned();
        let next: String = next.nfkc().collect();
        if next == t {
            break;
        }
        t = next;
    }
    t
}

/// Numeric (`&#64;`, `&#x40;`) and the named HTML entities that can make an address.
fn decode_entities(t: &str) -> String {
    static ENTITY: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)&(#x[0-9a-f]{1,6}|#[0-9]{1,7}|[a-z]{2,8});").expect("constant regex")
    });
    ENTITY
        .replace_all(t, |c: &regex::Captures<'_>| {
            let e = c[1].to_ascii_lowercase();
            let ch = if let Some(hex) = e.strip_prefix("#x") {
                u32::from_str_radix(hex, 16).ok().and_then(char::from_u32)
            } else if let Some(dec) = e.strip_prefix('#') {
                dec.parse().ok().and_then(char::from_u32)
            } else {
                match e.as_str() {
                    "commat" => Some('@'),
                    "period" => Some('.'),
                    "amp" => Some('&'),
                    "lt" => Some('<'),
                    "gt" => Some('>'),
                    "quot" => Some('"'),
                    "apos" => Some('\''),
                    "nbsp" => Some(' '),
                    "percnt" => Some('%'),
                    _ => None,
                }
            };
            ch.map_or_else(|| c[0].to_string(), String::from)
        })
        .into_owned()
}

/// How many addresses in `text` (normalised first) `allowed` does not allow.
pub(crate) fn foreign_addresses(text: &str, allowed: &dyn Fn(&Address) -> bool) -> usize {
    static ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+").expect("constant regex")
    });
    let text = normalise(text);
    ADDRESS
        .find_iter(&text)
        .filter_map(|m| Address::parse(m.as_str().trim_matches('.')))
        .filter(|a| !allowed(a))
        .count()
}

/// What replaces a notification's own reset link before the policy engine reads the body.
const LINK_MASK: &str = "[reset link]";

/// The check every notification passes before it is staged and again before it is released.
///
/// Independent layers: the structure (one single-part `text/plain` message, exactly one To
/// header with exactly one mailbox, no Cc/Bcc/Resent-*, the expected recipient, at most one
/// reset link), the body (no address other than the recipient's and the sender's), the
/// scanner's exposure model under the engine's organisation, and every enabled rule of the
/// engine (built-in or `--rules`, with the configured organisation and severities).
#[derive(Clone, Copy)]
pub struct OutboxGate<'e> {
    engine: &'e Engine,
}

impl std::fmt::Debug for OutboxGate<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxGate")
            .field("rules", &self.engine.rules().len())
            .finish()
    }
}

impl<'e> OutboxGate<'e> {
    /// A gate running `engine` (the one the incident or check was configured with).
    pub fn new(engine: &'e Engine) -> OutboxGate<'e> {
        OutboxGate { engine }
    }

    pub fn engine(&self) -> &'e Engine {
        self.engine
    }

    /// The reasons `raw` must not be sent (empty = safe), recipient not known in advance.
    pub fn reasons(&self, raw: &[u8]) -> Vec<String> {
        self.check(raw, None)
    }

    /// The reasons `raw` must not be sent (empty = safe); `expected_to` is the canonical
    /// address of the account the message is for.
    pub fn check(&self, raw: &[u8], expected_to: Option<&str>) -> Vec<String> {
        let parsed = match mailparse::parse_mail(raw) {
            Ok(p) => p,
            Err(e) => return vec![format!("unparseable message: {e}")],
        };
        let (body, undecodable) = match parsed.get_body() {
            Ok(b) => (b, None),
            Err(e) => (
                String::new(),
                Some(format!("the body does not decode: {e}")),
            ),
        };
        let mut why = structure(&parsed, &body, expected_to);
        why.extend(undecodable);
        let single_text = parsed.subparts.is_empty() && parsed.ctype.mimetype == "text/plain";
        let links = RESET_LINK.find_iter(&body).count();
        if links > 1 {
            why.push(format!("{links} reset links (at most one allowed)"));
        }
        let msg = match read(raw) {
            Ok(msg) => msg,
            Err(e) => {
                why.push(e);
                return why;
            }
        };
        let envelope = &msg.envelope;
        if envelope.recipients.len() > 1 {
            why.push(format!(
                "the scanner sees {} recipients",
                envelope.recipients.len()
            ));
        }
        // Kept beside the engine's rules: a `--rules` pack that replaces the built-in one
        // may have no exposure rule at all.
        let exposure = analyse(envelope, self.engine.org());
        if exposure.exposes() {
            why.push(format!(
                "the exposure model flags it: {} address(es) exposed",
                exposure.exposed.len()
            ));
        }
        // The one allowed finding source is the notification's own reset link: a message to
        // exactly one recipient, one plain-text part, one link of the shape apply writes.
        // The link is masked and the engine reads the rest, so every rule (a pasted secret,
        // a user's own token pattern) still sees everything else. Deciding by the link and
        // not by rule id keeps a user rule that happens to match tokens from refusing every
        // notification, and keeps the built-in reset-link rule live for anything but the one
        // link the account owner is meant to receive.
        let masked = (single_text && links == 1 && envelope.recipients.len() == 1)
            .then(|| mask_own_link(raw, &body))
            .flatten();
        let findings = match &masked {
            Some(m) => match read(m) {
                Ok(masked) => self.rules(&masked),
                Err(e) => vec![e],
            },
            None => self.rules(&msg),
        };
        why.extend(findings);
        why
    }

    fn rules(&self, msg: &Message<'_>) -> Vec<String> {
        self.engine
            .evaluate(msg)
            .findings
            .into_iter()
            .map(|f| format!("policy rule {} fires: {}", f.rule_id, f.message))
            .collect()
    }
}

/// The message as the scanner reads it, or why it cannot.
fn read(raw: &[u8]) -> Result<Message<'_>, String> {
    Message::from_bytes_at(raw, Location::file("outbox"))
        .map_err(|p| format!("the scanner cannot read it: {}", p.reason))
}

/// Structure and body-address layers.
fn structure(
    parsed: &mailparse::ParsedMail<'_>,
    body: &str,
    expected_to: Option<&str>,
) -> Vec<String> {
    let mut why = Vec::new();
    if !parsed.subparts.is_empty() || parsed.ctype.mimetype != "text/plain" {
        // Other parts could carry text the body checks below never read.
        why.push(format!(
            "content type {} (one text/plain part allowed)",
            parsed.ctype.mimetype
        ));
    }
    let mut to_addrs: Vec<String> = Vec::new();
    let mut to_headers = 0;
    for h in &parsed.headers {
        let key = h.get_key();
        if FORBIDDEN.iter().any(|f| f.eq_ignore_ascii_case(&key)) {
            why.push(format!("has a {key} header"));
        }
        if key.eq_ignore_ascii_case("To") {
            to_headers += 1;
            match mailparse::addrparse_header(h) {
                Ok(list) => {
                    for a in list.iter() {
                        match a {
                            mailparse::MailAddr::Single(s) => to_addrs.push(s.addr.clone()),
                            mailparse::MailAddr::Group(g) => {
                                why.push(format!("To has a group `{}`", g.group_name));
                                to_addrs.extend(g.addrs.iter().map(|s| s.addr.clone()));
                            }
                        }
                    }
                }
                Err(e) => why.push(format!("To does not parse: {e}")),
            }
        }
    }
    if to_headers != 1 {
        why.push(format!("{to_headers} To headers (exactly one allowed)"));
    }
    if to_addrs.len() != 1 {
        why.push(format!(
            "{} recipients in To (exactly one allowed)",
            to_addrs.len()
        ));
    }
    let to = to_addrs.first().and_then(|a| Address::parse(a));
    if let (Some(exp), Some(to)) = (expected_to, &to) {
        if to.as_str() != exp {
            why.push("To is not the account's own address".to_string());
        }
    }
    // Addresses other than the recipient's or the sender's anywhere a reader sees them (every
    // header, the From display name and comments included, and the body) are a second leak.
    let from: Vec<String> = parsed
        .headers
        .iter()
        .filter(|h| h.get_key().eq_ignore_ascii_case("From"))
        .filter_map(|h| mailparse::addrparse_header(h).ok())
        .flat_map(|l| l.extract_single_info().into_iter().map(|s| s.addr))
        .filter_map(|a| Address::parse(&a).map(|a| a.as_str().to_string()))
        .collect();
    let allowed = |a: &Address| Some(a) == to.as_ref() || from.iter().any(|f| f == a.as_str());
    for h in &parsed.headers {
        let key = h.get_key();
        if ID_HEADERS.iter().any(|k| k.eq_ignore_ascii_case(&key)) {
            // A message id has the shape of an address; it must be on the sender's domain.
            let value = h.get_value();
            let domain_ok = value
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .rsplit_once('@')
                .is_some_and(|(_, d)| {
                    from.iter().any(|f| {
                        f.rsplit_once('@')
                            .is_some_and(|(_, fd)| fd.eq_ignore_ascii_case(d))
                    })
                });
            if !domain_ok {
                why.push(format!("{key} is not an id on the sender's domain"));
            }
            continue;
        }
        // The raw value too: a display name or a comment may hide an address the decoded
        // value shows differently.
        let raw_value = String::from_utf8_lossy(h.get_value_raw()).into_owned();
        let n = foreign_addresses(&h.get_value(), &allowed)
            .max(foreign_addresses(&raw_value, &allowed));
        if n > 0 {
            why.push(format!("the {key} header shows {n} other address(es)"));
        }
    }
    let others = foreign_addresses(body, &allowed);
    if others > 0 {
        why.push(format!("the body lists {others} other address(es)"));
    }
    why
}

/// `raw` with its header block kept (but for the transfer encoding) and its decoded body,
/// the one reset link replaced by [`LINK_MASK`]. `None` when the header block cannot be cut.
fn mask_own_link(raw: &[u8], body: &str) -> Option<Vec<u8>> {
    let (_, body_off) = mailparse::parse_headers(raw).ok()?;
    let link = RESET_LINK.find(body)?;
    let mut out = Vec::with_capacity(raw.len());
    let mut skipping = false;
    for line in raw[..body_off.min(raw.len())].split_inclusive(|b| *b == b'\n') {
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        if content.is_empty() {
            break;
        }
        let continuation = matches!(content.first(), Some(b' ' | b'\t'));
        if !continuation {
            skipping = content
                .get(..26)
                .is_some_and(|n| n.eq_ignore_ascii_case(b"Content-Transfer-Encoding:"));
        }
        if !skipping {
            out.extend_from_slice(line);
        }
    }
    // The body below is the decoded text itself.
    out.extend_from_slice(b"Content-Transfer-Encoding: 8bit\n\n");
    out.extend_from_slice(&body.as_bytes()[..link.start()]);
    out.extend_from_slice(LINK_MASK.as_bytes());
    out.extend_from_slice(&body.as_bytes()[link.end()..]);
    Some(out)
}

/// A notification read back (for tests, status displays and audits of the outbox).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspected {
    /// Every address in every To header.
    pub to: Vec<String>,
    /// Number of Cc, Bcc and Resent-* headers.
    pub other_recipient_headers: usize,
    pub subject: String,
    pub language: Option<String>,
    /// The decoded text body.
    pub body: String,
}

/// Parses a message written by [`build_message`] (or any message) into its parts.
pub fn inspect(raw: &[u8]) -> Result<Inspected, String> {
    let m = mailparse::parse_mail(raw).map_err(|e| e.to_string())?;
    let mut to = Vec::new();
    let mut other = 0;
    let mut subject = String::new();
    let mut language = None;
    for h in &m.headers {
        let k = h.get_key();
        if k.eq_ignore_ascii_case("To") {
            let list = mailparse::addrparse_header(h).map_err(|e| e.to_string())?;
            to.extend(list.extract_single_info().into_iter().map(|s| s.addr));
        } else if FORBIDDEN.iter().any(|f| f.eq_ignore_ascii_case(&k)) {
            other += 1;
        } else if k.eq_ignore_ascii_case("Subject") {
            subject = h.get_value();
        } else if k.eq_ignore_ascii_case("Content-Language") {
            language = Some(h.get_value().trim().to_string());
        }
    }
    Ok(Inspected {
        to,
        other_recipient_headers: other,
        subject,
        language,
        body: m.get_body().map_err(|e| e.to_string())?,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::outbox::compose::tests::{link, notice};
    use crate::outbox::{build_message, Sender};
    use leakaudit_policy::{RulePack, RulesMode};
    use leakaudit_scanner::Org;

    fn builtin() -> Engine {
        Engine::new(
            RulePack::builtin(),
            Org::with_defaults(),
            &Default::default(),
        )
    }

    /// An engine with the built-in pack extended by `rules` (one TOML file).
    pub(crate) fn configured(rules: &str) -> Engine {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("custom.toml"), rules).unwrap();
        let pack = RulePack::resolve(Some(dir.path()), RulesMode::Extend).unwrap();
        Engine::new(pack, Org::with_defaults(), &Default::default())
    }

    fn notification(reset: bool) -> String {
        let sender = Sender::new("security@shop.example").unwrap();
        let raw = build_message(
            &notice("anna@gmail.com", "en", reset),
            &sender,
            "m@shop.example",
            "Sat, 28 Nov 2026 10:00:00 +0000",
        );
        String::from_utf8(raw).unwrap()
    }

    fn build_message_with_body(sender: &Sender, to: &str, body: &str) -> Vec<u8> {
        format!(
            "From: {}\nTo: <{to}>\nSubject: x\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n{body}\n",
            sender.from
        )
        .into_bytes()
    }

    /// Issue 29 (2): a customer's address anywhere a recipient sees it, however written, is
    /// a second leak: the From display name or a comment, Reply-To, the Subject, the body as
    /// a percent-encoded `mailto:`, a full-width `＠`, an HTML entity.
    #[test]
    fn a_foreign_address_in_any_header_or_hidden_in_the_body_is_refused() {
        let engine = builtin();
        let gate = OutboxGate::new(&engine);
        let text = notification(false);
        let ok = |t: &str| gate.check(t.as_bytes(), Some("anna@gmail.com"));
        assert_eq!(ok(&text), Vec::<String>::new());
        let from = "From: security@shop.example";
        assert!(text.contains(from));
        let subject = text.lines().find(|l| l.starts_with("Subject:")).unwrap();
        for (what, doctored, reason) in [
            (
                "display name",
                text.replace(
                    from,
                    "From: \"c.anderson@gmail.com\" <security@shop.example>",
                ),
                "the From header shows 1 other address(es)",
            ),
            (
                "comment",
                text.replace(from, "From: security@shop.example (c.anderson@gmail.com)"),
                "the From header shows 1 other address(es)",
            ),
            (
                "encoded display name",
                text.replace(
                    from,
                    "From: =?UTF-8?B?Yy5hbmRlcnNvbkBnbWFpbC5jb20=?= <security@shop.example>",
                ),
                "the From header shows 1 other address(es)",
            ),
            (
                "Reply-To",
                text.replace(from, &format!("{from}\nReply-To: c.anderson@gmail.com")),
                "the Reply-To header shows 1 other address(es)",
            ),
            (
                "subject",
                text.replace(subject, "Subject: Notice about c.anderson@gmail.com"),
                "the Subject header shows 1 other address(es)",
            ),
            (
                "full-width at in the subject",
                text.replace(
                    subject,
                    "Subject: =?UTF-8?B?Yy5hbmRlcnNvbu+8oGdtYWlsLmNvbQ==?=",
                ),
                "the Subject header shows 1 other address(es)",
            ),
        ] {
            let why = ok(&doctored);
            assert!(why.iter().any(|w| w == reason), "{what}: {why:?}");
            assert!(
                why.iter().all(|w| !w.contains("c.anderson")),
                "{what}: a reason never names the address: {why:?}"
            );
        }
        let sender = Sender::new("security@shop.example").unwrap();
        for body in [
            "write to mailto:c.anderson%40gmail.com",
            "c.anderson\u{ff20}gmail.com",
            "c.anderson&#64;gmail.com",
            "c.anderson&amp;#x40;gmail&period;com",
            "c.anderson%2540gmail.com",
        ] {
            let raw = build_message_with_body(&sender, "anna@gmail.com", body);
            let why = gate.check(&raw, Some("anna@gmail.com"));
            assert!(
                why.iter()
                    .any(|w| w == "the body lists 1 other address(es)"),
                "{body}: {why:?}"
            );
        }
        // The recipient's and the sender's own addresses stay allowed, however written.
        let raw = build_message_with_body(
            &sender,
            "anna@gmail.com",
            "sent to anna&#64;gmail.com by security\u{ff20}shop.example",
        );
        assert!(!gate
            .check(&raw, Some("anna@gmail.com"))
            .iter()
            .any(|w| w.contains("other address")),);
    }

    #[test]
    fn doctored_messages_refused() {
        let engine = builtin();
        let gate = OutboxGate::new(&engine);
        let sender = Sender::new("security@shop.example").unwrap();
        let text = notification(false);
        assert_eq!(
            gate.check(text.as_bytes(), Some("anna@gmail.com")),
            Vec::<String>::new()
        );
        let two = text.replace(
            "To: <anna@gmail.com>",
            "To: <anna@gmail.com>, <bob@yahoo.com>",
        );
        let why = gate.check(two.as_bytes(), Some("anna@gmail.com"));
        assert!(why.iter().any(|w| w.contains("2 recipients")), "{why:?}");
        let cc = text.replace(
            "To: <anna@gmail.com>\n",
            "To: <anna@gmail.com>\nCc: bob@yahoo.com\n",
        );
        let why = gate.check(cc.as_bytes(), Some("anna@gmail.com"));
        assert!(why.iter().any(|w| w.contains("Cc header")), "{why:?}");
        // A body that lists other users' addresses is a content leak.
        let body = build_message_with_body(
            &sender,
            "anna@gmail.com",
            "see also bob@yahoo.com and carl@web.de",
        );
        let why = gate.check(&body, Some("anna@gmail.com"));
        assert!(why.iter().any(|w| w.contains("2 other address")), "{why:?}");
    }

    #[test]
    fn own_reset_link_passes_but_a_pasted_secret_next_to_it_is_refused() {
        let engine = builtin();
        let gate = OutboxGate::new(&engine);
        let sender = Sender::new("security@shop.example").unwrap();
        let ok = build_message_with_body(&sender, "anna@gmail.com", &format!("Reset: {}", link()));
        assert_eq!(gate.reasons(&ok), Vec::<String>::new());
        let leak = build_message_with_body(
            &sender,
            "anna@gmail.com",
            &format!(
                "Reset: {}\naws_access_key_id = AKIA0000EXAMPLE00000",
                link()
            ),
        );
        let why = gate.reasons(&leak);
        assert!(
            why.iter()
                .any(|w| w.starts_with("policy rule aws-access-key fires")),
            "{why:?}"
        );
    }

    #[test]
    fn own_link_shown_to_two_recipients_fires_the_reset_link_rule() {
        let engine = builtin();
        let gate = OutboxGate::new(&engine);
        let two = notification(true).replace(
            "To: <anna@gmail.com>",
            "To: <anna@gmail.com>, <bob@yahoo.com>",
        );
        let why = gate.reasons(two.as_bytes());
        assert!(
            why.iter()
                .any(|w| w.starts_with("policy rule password-reset-link fires")),
            "{why:?}"
        );
        assert!(
            why.iter()
                .any(|w| w.starts_with("policy rule recipient-exposure fires")),
            "{why:?}"
        );
    }

    #[test]
    fn user_token_rule_ignores_the_own_link_but_refuses_a_second_token() {
        // A user rule that matches any long hex token would match every notification's own
        // link; the gate allows that one link and nothing else.
        let engine = configured(
            r#"
[[rule]]
id = "hex-token"
kind = "content-regex"
severity = "high"
summary = "A long hex token"
description = "What: 40+ hex characters after token=."
hint = "Revoke it."
keywords = ["token="]
regex = 'token=[0-9a-f]{40,}'
"#,
        );
        let gate = OutboxGate::new(&engine);
        let text = notification(true);
        assert_eq!(
            gate.check(text.as_bytes(), Some("anna@gmail.com")),
            Vec::<String>::new()
        );
        let sender = Sender::new("security@shop.example").unwrap();
        let pasted = build_message_with_body(
            &sender,
            "anna@gmail.com",
            &format!("{}\nold token={}", link(), "e".repeat(48)),
        );
        let why = gate.reasons(&pasted);
        assert!(
            why.iter()
                .any(|w| w.starts_with("policy rule hex-token fires")),
            "{why:?}"
        );
    }

    #[test]
    fn two_reset_links_refused() {
        let engine = builtin();
        let gate = OutboxGate::new(&engine);
        let sender = Sender::new("security@shop.example").unwrap();
        let other = link().replace("cdcd", "efef");
        let raw =
            build_message_with_body(&sender, "anna@gmail.com", &format!("{}\n{other}", link()));
        let why = gate.reasons(&raw);
        assert!(
            why.iter()
                .any(|w| w == "2 reset links (at most one allowed)"),
            "{why:?}"
        );
    }

    #[test]
    fn multipart_refused() {
        let engine = builtin();
        let gate = OutboxGate::new(&engine);
        let raw = b"From: security@shop.example\nTo: <anna@gmail.com>\nSubject: x\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nhi\n--b\nContent-Type: text/plain\n\nbob@yahoo.com\n--b--\n";
        let why = gate.reasons(raw);
        assert!(
            why.iter()
                .any(|w| w == "content type multipart/mixed (one text/plain part allowed)"),
            "{why:?}"
        );
    }

    #[test]
    fn exposure_model_uses_the_engine_org() {
        // partner.example is external to the default org and internal to the configured one.
        let text = notification(false).replace(
            "To: <anna@gmail.com>",
            "To: <anna@gmail.com>, <ops@partner.example>",
        );
        let default = builtin();
        let why = OutboxGate::new(&default).reasons(text.as_bytes());
        assert!(
            why.iter()
                .any(|w| w.starts_with("the exposure model flags")),
            "{why:?}"
        );
        let mut org = Org::with_defaults();
        org.internal_domains.insert("partner.example".into());
        let partner = Engine::new(RulePack::builtin(), org, &Default::default());
        let why = OutboxGate::new(&partner).reasons(text.as_bytes());
        assert!(
            !why.iter()
                .any(|w| w.starts_with("the exposure model flags")),
            "{why:?}"
        );
        // The structure still refuses a second recipient.
        assert!(
            why.iter().any(|w| w.contains("2 recipients in To")),
            "{why:?}"
        );
    }
}
