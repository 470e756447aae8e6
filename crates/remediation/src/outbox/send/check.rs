//! The re-check of every released message just before it is sent, and the canary copies.
//!
//! Release moved the messages after checking them against the store, but the released folder
//! is a plain directory: a message may have been edited, added or left behind since, a token
//! may have expired or been revoked, an account may have changed its address. So `send`
//! checks each message again against the store (the same checks as release, plus the
//! placeholder sender and links) and sends nothing while any message fails.

use super::super::check::{inspect, OutboxGate};
use super::super::compose::{encode_header_value, RESET_LINK};
use super::super::maildir::{ApplyState, Outbox};
use super::super::release::{
    done_and_held, expected_messages, placeholder_reasons, recheck, unfinished, Refusal,
    RefusalKind,
};
use crate::error::{Error, Result};
use crate::store::AccountStore;
use base64::Engine as _;
use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::str::FromStr;

/// One released message, checked and ready to go.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub path: PathBuf,
    pub account: String,
    /// Its Message-ID with the angle brackets: the delivery key in the store.
    pub key: String,
    pub from: lettre::Address,
    pub to: lettre::Address,
    pub bytes: Vec<u8>,
    pub reset: bool,
    /// A notify-only notice (no account): its own text.
    pub notice: bool,
    pub language: String,
}

/// The released messages the store says the plan must have produced, each checked: the
/// checked messages in file order, or every refusal.
pub(super) fn prepare(
    outbox: &Outbox,
    store: &dyn AccountStore,
    gate: &OutboxGate<'_>,
    state: &ApplyState,
    now: i64,
) -> Result<std::result::Result<Vec<Prepared>, Vec<Refusal>>> {
    let plan = state.plan.as_str();
    let all = store.action_states(plan)?;
    if let Some(r) = unfinished(
        outbox,
        plan,
        &all,
        "finish `remediate apply` and `remediate release` first",
    ) {
        return Ok(Err(vec![r]));
    }
    // A failed account's message was never released: it is neither expected nor sent.
    let (actions, _held) = done_and_held(plan, all);
    let reset_base = store.reset_base(plan)?;
    let expected = expected_messages(plan, &actions);
    let released = outbox.released().join("new");
    let mut refusals = Vec::new();
    let files: Vec<PathBuf> = match fs::read_dir(&released) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::io(&released, e)),
    };
    for f in &files {
        let name = f.file_name().unwrap_or_default().to_string_lossy();
        if !expected.contains_key(name.as_ref()) {
            refusals.push(Refusal {
                path: f.clone(),
                reasons: vec![format!(
                    "not written by apply (no notify action of plan {plan} has this name)"
                )],
                kind: RefusalKind::Unsafe,
            });
        }
    }
    let mut out = Vec::new();
    let mut keys: BTreeMap<String, PathBuf> = BTreeMap::new();
    for (name, exp) in &expected {
        let path = released.join(name);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let staged = outbox.staged().join("new").join(name).exists();
                refusals.push(Refusal {
                    path,
                    kind: RefusalKind::Missing,
                    reasons: vec![if staged {
                        format!(
                            "message for account {} is not released: run `remediate release` first",
                            exp.account
                        )
                    } else {
                        format!("message for account {} is missing", exp.account)
                    }],
                });
                continue;
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        let (mut reasons, address) = recheck(
            store,
            gate,
            state,
            name,
            exp,
            &bytes,
            reset_base.as_deref(),
            now,
        )?;
        let head = header_facts(&bytes);
        reasons.extend(placeholder_reasons(
            &bytes,
            &exp.account,
            reset_base.as_deref(),
        ));
        let from = head
            .from_addr
            .as_deref()
            .and_then(|a| lettre::Address::from_str(a).ok());
        if from.is_none() {
            reasons.push("the From address cannot be used as the SMTP sender".into());
        }
        let to = address
            .as_deref()
            .and_then(|a| lettre::Address::from_str(a).ok());
        if address.is_some() && to.is_none() {
            reasons.push("the recipient's address cannot be used as an SMTP recipient".into());
        }
        match &head.message_id {
            None => reasons.push("no Message-ID".into()),
            Some(id) => {
                if let Some(other) = keys.insert(id.clone(), path.clone()) {
                    reasons.push(format!(
                        "Message-ID {id} is also the one of {}",
                        other.display()
                    ));
                }
            }
        }
        if !reasons.is_empty() {
            refusals.push(Refusal {
                path,
                reasons,
                kind: RefusalKind::Unsafe,
            });
            continue;
        }
        let (Some(from), Some(to), Some(key)) = (from, to, head.message_id) else {
            continue;
        };
        out.push(Prepared {
            path,
            account: exp.account.clone(),
            key,
            from,
            to,
            bytes,
            reset: exp.reset,
            notice: exp.notice_key.is_some(),
            language: head.language.unwrap_or_else(|| "en".into()),
        });
    }
    if refusals.is_empty() {
        Ok(Ok(out))
    } else {
        Ok(Err(refusals))
    }
}

/// What the send needs from a message's header block.
#[derive(Debug, Default)]
struct HeaderFacts {
    from_raw: Option<String>,
    from_addr: Option<String>,
    message_id: Option<String>,
    language: Option<String>,
}

fn header_facts(raw: &[u8]) -> HeaderFacts {
    use mailparse::MailHeaderMap;
    let Ok((headers, _)) = mailparse::parse_headers(raw) else {
        return HeaderFacts::default();
    };
    let from_raw = headers.get_first_value("From");
    let from_addr = headers
        .get_first_header("From")
        .and_then(|h| mailparse::addrparse_header(h).ok())
        .and_then(|list| match list.iter().next() {
            Some(mailparse::MailAddr::Single(s)) if list.len() == 1 => Some(s.addr.clone()),
            _ => None,
        });
    let message_id = headers
        .get_first_value("Message-ID")
        .map(|v| v.trim().to_string())
        .filter(|v| v.starts_with('<') && v.ends_with('>') && v.len() > 2);
    HeaderFacts {
        from_raw,
        from_addr,
        message_id,
        language: headers.get_first_value("Content-Language"),
    }
}

/// The marker replacing the reset link in a canary copy.
pub const REDACTED_LINK: &str = "[reset link removed: canary copy]";

/// A copy of `m` for a canary address: its subject marked, its reset link (and any token)
/// removed, the original recipient's address removed, a note on top. Never a live token.
pub(super) fn canary_copy(
    m: &Prepared,
    canary: &str,
    message_id: &str,
    date: &str,
) -> Result<Vec<u8>> {
    let msg = inspect(&m.bytes).map_err(|reason| Error::UnsafeMessage {
        path: m.path.clone(),
        reason: format!("cannot make its canary copy: {reason}"),
    })?;
    let head = header_facts(&m.bytes);
    let mut body = RESET_LINK
        .replace_all(&msg.body, REDACTED_LINK)
        .into_owned();
    body = TOKEN
        .replace_all(&body, "token=[removed]")
        .replace(&m.to.to_string(), "[recipient]");
    let body = format!(
        "*** CANARY COPY for review: not a live notification. The reset link and the recipient \
         are removed; the real message goes to the account's own address. ***\n\n{body}"
    );
    let subject = format!("[CANARY] {}", msg.subject);
    let mut out = String::new();
    out.push_str(&format!("Date: {date}\n"));
    out.push_str(&format!(
        "From: {}\n",
        head.from_raw.unwrap_or_else(|| m.from.to_string())
    ));
    out.push_str(&format!("To: <{canary}>\n"));
    out.push_str(&format!("Subject: {}\n", encode_header_value(&subject)));
    out.push_str(&format!("Message-ID: {message_id}\n"));
    out.push_str("MIME-Version: 1.0\n");
    out.push_str("Content-Type: text/plain; charset=utf-8\n");
    out.push_str("Content-Transfer-Encoding: base64\n");
    out.push_str(&format!("Content-Language: {}\n", m.language));
    out.push_str("X-Leakaudit-Canary: redacted copy\n");
    out.push_str("Auto-Submitted: auto-generated\n\n");
    let b64 = base64::engine::general_purpose::STANDARD.encode(body);
    for chunk in b64.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    Ok(out.into_bytes())
}

static TOKEN: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"(?i)(selector|token)=[0-9a-z]+").expect("constant regex")
});

#[cfg(test)]
mod tests {
    use super::*;

    /// The one placeholder check (release's), as send asks it: the sender, the pinned reset
    /// page, a link in the body (mixed case, a trailing dot).
    #[test]
    fn placeholder_sender_and_hosts() {
        let raw = b"From: Security <security@example.invalid>\r\nTo: a@gmail.com\r\nSubject: x\r\n\r\nOpen https://Docs.Example.INVALID./help\r\n";
        let why = placeholder_reasons(raw, "acc-1", Some("https://example.invalid/account/reset"));
        assert_eq!(why.len(), 3, "{why:?}");
        assert!(why[0].contains("placeholder sender security@example.invalid"));
        assert!(why[0].contains("--account acc-1"));
        assert!(why[1].contains("placeholder host docs.example.invalid"));
        assert!(why[2].contains("placeholder host example.invalid"));
        assert!(placeholder_reasons(b"From: s@shop.example\r\n\r\nhi\r\n", "a", None).is_empty());
    }

    #[test]
    fn canary_copy_carries_no_link_token_or_recipient() {
        use crate::outbox::compose::tests::notice;
        use crate::outbox::{build_message, OutboxGate, Sender};
        let sender = Sender::new("Security <security@shop.example>").unwrap();
        let raw = build_message(
            &notice("anna@gmail.com", "de", true),
            &sender,
            "m1@shop.example",
            "Sat, 28 Nov 2026 10:00:00 +0000",
        );
        let original = inspect(&raw).unwrap();
        assert!(RESET_LINK.is_match(&original.body));
        let m = Prepared {
            path: "m1".into(),
            account: "acc-1".into(),
            key: "<m1@shop.example>".into(),
            from: "security@shop.example".parse().unwrap(),
            to: "anna@gmail.com".parse().unwrap(),
            bytes: raw,
            reset: true,
            notice: false,
            language: "de".into(),
        };
        let copy = canary_copy(&m, "team@shop.example", "<c1@shop.example>", "now").unwrap();
        let c = inspect(&copy).unwrap();
        assert_eq!(c.to, vec!["team@shop.example".to_string()]);
        assert_eq!(c.subject, format!("[CANARY] {}", original.subject));
        assert_eq!(c.language.as_deref(), Some("de"));
        assert!(c.body.starts_with("*** CANARY COPY"));
        assert!(c.body.contains(REDACTED_LINK));
        assert!(!c.body.contains("token="), "{}", c.body);
        assert!(!RESET_LINK.is_match(&c.body) && !c.body.contains("selector="));
        assert!(!String::from_utf8_lossy(&copy).contains("anna@gmail.com"));
        // The copy itself passes the outbox gate, addressed to the canary.
        let engine = leakaudit_policy::Engine::new(
            leakaudit_policy::RulePack::builtin(),
            leakaudit_scanner::Org::with_defaults(),
            &Default::default(),
        );
        let why = OutboxGate::new(&engine).check(&copy, Some("team@shop.example"));
        assert!(why.is_empty(), "{why:?}");
    }

    #[test]
    fn header_facts_read_sender_id_and_language() {
        let raw = b"From: Security <sec@shop.example>\nMessage-ID: <a.b@shop.example>\nContent-Language: de\n\nbody\n";
        let h = header_facts(raw);
        assert_eq!(h.from_addr.as_deref(), Some("sec@shop.example"));
        assert_eq!(h.message_id.as_deref(), Some("<a.b@shop.example>"));
        assert_eq!(h.language.as_deref(), Some("de"));
        assert_eq!(header_facts(b"\x00\x01").message_id, None);
    }
}
