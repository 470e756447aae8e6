//! The notification outbox: one message per user, exactly one address in To, no Cc, no Bcc,
//! in the account's language, written as a Maildir; and the release gate that re-checks
//! every message so the tool never repeats the leak.
//!
//! Layout of an outbox `DIR`:
//! * `DIR/staged/{tmp,new,cur}`: what `apply` writes (tmp/ then rename to new/, fsynced).
//!   File names are deterministic per (plan, account), so a resumed apply replaces a message
//!   instead of adding a second one.
//! * `DIR/apply-state.json`: written when a plan is completely applied: every staged file
//!   with its SHA-256 and its one expected recipient.
//! * `DIR/released/{tmp,new,cur}`: where `release` moves the messages once all pass the
//!   check; the mail system picks them up from there.
//!
//! Templates live in `crates/remediation/templates/<lang>.toml` (en, de, fr, es, ru), compiled
//! in; a locale `de-CH` uses `de`, an unknown language falls back to `en`.

use crate::error::{Error, Result};
use base64::Engine as _;
use leakaudit_scanner::exposure::{analyse, Org};
use leakaudit_scanner::Address;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::fs;
use std::path::{Path, PathBuf};

/// One notification template.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub subject: String,
    pub greeting: String,
    pub happened: String,
    pub reset_done: String,
    pub review_done: String,
    pub no_change: String,
    pub closing: String,
    pub unknown_date: String,
}

/// Shipped template sources by language.
pub const TEMPLATES: [(&str, &str); 5] = [
    ("en", include_str!("../templates/en.toml")),
    ("de", include_str!("../templates/de.toml")),
    ("fr", include_str!("../templates/fr.toml")),
    ("es", include_str!("../templates/es.toml")),
    ("ru", include_str!("../templates/ru.toml")),
];

/// The template language used for `locale` (its primary subtag when shipped, else `en`).
pub fn template_language(locale: &str) -> &'static str {
    let lang = locale
        .split(['-', '_'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    TEMPLATES
        .iter()
        .find(|(l, _)| *l == lang)
        .map(|(l, _)| *l)
        .unwrap_or("en")
}

/// The template for `locale` (with English fallback).
pub fn template(locale: &str) -> Template {
    let lang = template_language(locale);
    let src = TEMPLATES
        .iter()
        .find(|(l, _)| *l == lang)
        .map(|(_, s)| *s)
        .unwrap_or(TEMPLATES[0].1);
    toml::from_str(src).expect("shipped templates are valid (tested)")
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
        Ok(Sender {
            from: from.to_string(),
            from_domain: addr.domain().to_string(),
        })
    }
}

fn fill(s: &str, n: &Notice<'_>, t: &Template) -> String {
    let date = n
        .first_exposed
        .map(|d| d.get(..10).unwrap_or(d).to_string())
        .unwrap_or_else(|| t.unknown_date.clone());
    let expires = n.reset.as_ref().map(|(_, e)| e.as_str()).unwrap_or("");
    s.replace("{first_exposed}", &date)
        .replace("{messages}", &n.messages.to_string())
        .replace("{audience}", &n.audience.to_string())
        .replace("{expires}", expires)
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

/// The text body of a notice.
pub fn body_text(n: &Notice<'_>) -> String {
    let t = template(n.locale);
    let mut parts = vec![t.greeting.clone(), fill(&t.happened, n, &t)];
    if let Some((link, _)) = &n.reset {
        parts.push(format!("{}\n{link}", fill(&t.reset_done, n, &t)));
    }
    if n.review {
        parts.push(fill(&t.review_done, n, &t));
    }
    if n.reset.is_none() && !n.review {
        parts.push(fill(&t.no_change, n, &t));
    }
    parts.push(t.closing.clone());
    parts.join("\n\n") + "\n"
}

/// Builds the whole message (LF line ends, as Maildir stores them).
pub fn build_message(n: &Notice<'_>, sender: &Sender, message_id: &str, date: &str) -> Vec<u8> {
    let t = template(n.locale);
    let lang = template_language(n.locale);
    let body = base64::engine::general_purpose::STANDARD.encode(body_text(n));
    let mut out = String::new();
    out.push_str(&format!("Date: {date}\n"));
    out.push_str(&format!("From: {}\n", sender.from));
    out.push_str(&format!("To: <{}>\n", n.to));
    out.push_str(&format!("Subject: {}\n", encode_header_value(&t.subject)));
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

/// An extra check plugged in by the caller (the policy engine in the CLI): reasons to refuse.
pub type ExtraCheck<'a> = &'a (dyn Fn(&[u8]) -> Vec<String> + Sync);

const FORBIDDEN: [&str; 6] = [
    "Cc",
    "Bcc",
    "Resent-To",
    "Resent-Cc",
    "Resent-Bcc",
    "Resent-From",
];

/// Checks one notification; returns the reasons it must not be sent (empty = safe).
///
/// Independent layers: the structure (exactly one To header with exactly one mailbox, no
/// Cc/Bcc/Resent-*, the expected recipient), the body (no address other than the recipient's
/// and the sender's), the scanner's exposure model, and `extra` (the policy engine).
pub fn check_message(
    raw: &[u8],
    expected_to: Option<&str>,
    extra: Option<ExtraCheck<'_>>,
) -> Vec<String> {
    let mut why = Vec::new();
    let parsed = match mailparse::parse_mail(raw) {
        Ok(p) => p,
        Err(e) => return vec![format!("unparseable message: {e}")],
    };
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
    // Addresses in the body other than the recipient's or the sender's are a content leak.
    let from: Vec<String> = parsed
        .headers
        .iter()
        .filter(|h| h.get_key().eq_ignore_ascii_case("From"))
        .filter_map(|h| mailparse::addrparse_header(h).ok())
        .flat_map(|l| l.extract_single_info().into_iter().map(|s| s.addr))
        .filter_map(|a| Address::parse(&a).map(|a| a.as_str().to_string()))
        .collect();
    let body = parsed.get_body().unwrap_or_default();
    let others = body
        .split(|c: char| c.is_whitespace() || "<>()[],;:\"'".contains(c))
        .filter(|w| w.contains('@'))
        .filter_map(|w| Address::parse(w.trim_matches('.')))
        .filter(|a| a.domain().contains('.'))
        .filter(|a| Some(a) != to.as_ref() && !from.iter().any(|f| f == a.as_str()))
        .count();
    if others > 0 {
        why.push(format!("the body lists {others} other address(es)"));
    }
    // The scanner's own exposure model, as on any archive.
    match leakaudit_scanner::headers::parse_envelope(raw) {
        Ok(env) => {
            if env.recipients.len() > 1 {
                why.push(format!(
                    "the scanner sees {} recipients",
                    env.recipients.len()
                ));
            }
            let exposure = analyse(&env, &Org::with_defaults());
            if exposure.exposes() {
                why.push(format!(
                    "the exposure model flags it: {} address(es) exposed",
                    exposure.exposed.len()
                ));
            }
        }
        Err(e) => why.push(format!("the scanner cannot read its header: {e}")),
    }
    if let Some(extra) = extra {
        why.extend(extra(raw));
    }
    why
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

/// The outbox folders.
#[derive(Debug, Clone)]
pub struct Outbox {
    pub root: PathBuf,
}

/// One staged message as recorded in `apply-state.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedMessage {
    pub file: String,
    pub sha256: String,
    pub account: String,
    pub to: String,
}

/// `DIR/apply-state.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyState {
    pub plan: String,
    pub complete: bool,
    pub messages: Vec<StagedMessage>,
}

fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

fn make_maildir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    for sub in ["tmp", "new", "cur"] {
        let p = dir.join(sub);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&p)
            .map_err(|e| Error::io(&p, e))?;
    }
    Ok(())
}

impl Outbox {
    pub fn new(root: &Path) -> Outbox {
        Outbox {
            root: root.to_path_buf(),
        }
    }
    pub fn staged(&self) -> PathBuf {
        self.root.join("staged")
    }
    pub fn released(&self) -> PathBuf {
        self.root.join("released")
    }
    pub fn state_path(&self) -> PathBuf {
        self.root.join("apply-state.json")
    }

    /// Deterministic Maildir name of the message for (plan, account).
    pub fn file_name(plan_hash: &str, account: &str) -> String {
        let plan = plan_hash.trim_start_matches("sha256:");
        let acct = hex::encode(sha2::Sha256::digest(account.as_bytes()));
        format!(
            "{}.{}.leakaudit",
            plan.get(..12).unwrap_or(plan),
            &acct[..16]
        )
    }

    /// Writes a message durably into `staged/new` (tmp, fsync, rename, fsync the folder),
    /// replacing an earlier one of the same name.
    pub fn stage(&self, name: &str, bytes: &[u8]) -> Result<PathBuf> {
        let staged = self.staged();
        make_maildir(&staged)?;
        let tmp = staged.join("tmp").join(name);
        let dst = staged.join("new").join(name);
        {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(|e| Error::io(&tmp, e))?;
            f.write_all(bytes)
                .and_then(|_| f.sync_all())
                .map_err(|e| Error::io(&tmp, e))?;
        }
        fs::rename(&tmp, &dst).map_err(|e| Error::io(&dst, e))?;
        sync_dir(&staged.join("new"))?;
        Ok(dst)
    }

    /// Whether the message for `name` exists (staged or released).
    pub fn has_message(&self, name: &str) -> bool {
        self.staged().join("new").join(name).exists()
            || self.released().join("new").join(name).exists()
    }

    pub fn write_state(&self, state: &ApplyState) -> Result<()> {
        let p = self.state_path();
        leakaudit_scanner::io::write_atomic(&p, |w| {
            serde_json::to_writer_pretty(&mut *w, state)?;
            w.write_all(b"\n")
        })
        .map_err(|e| Error::io(&p, e))
    }

    pub fn read_state(&self) -> Result<Option<ApplyState>> {
        let p = self.state_path();
        if !p.exists() {
            return Ok(None);
        }
        let text = fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Error::Parse {
                path: p,
                line: Some(e.line() as u64),
                reason: e.to_string(),
            })
    }
}

/// One message the release gate refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub path: PathBuf,
    pub reasons: Vec<String>,
}

/// What `release` did or would not do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseOutcome {
    Released { count: usize, dir: PathBuf },
    Refused(Vec<Refusal>),
}

/// Checks every staged message and, only if all pass, moves them to `released/new`.
/// Refuses when the apply is incomplete, when a message was added, removed or changed since
/// apply wrote it, or when any message fails [`check_message`].
pub fn release(outbox: &Outbox, extra: Option<ExtraCheck<'_>>) -> Result<ReleaseOutcome> {
    let mut refusals = Vec::new();
    let state = outbox.read_state()?;
    let new_dir = outbox.staged().join("new");
    let mut files: Vec<PathBuf> = match fs::read_dir(&new_dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::io(&new_dir, e)),
    };
    files.sort();
    let Some(state) = state.filter(|s| s.complete) else {
        refusals.push(Refusal {
            path: outbox.state_path(),
            reasons: vec![
                "the plan is not completely applied: run `remediate apply` to the end first".into(),
            ],
        });
        return Ok(ReleaseOutcome::Refused(refusals));
    };
    for f in &files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let bytes = fs::read(f).map_err(|e| Error::io(f, e))?;
        let mut reasons = Vec::new();
        let rec = state.messages.iter().find(|m| m.file == name);
        match rec {
            None => reasons.push("not written by apply (unknown file)".to_string()),
            Some(m) => {
                let h = hex::encode(sha2::Sha256::digest(&bytes));
                if h != m.sha256 {
                    reasons.push("changed since apply wrote it".to_string());
                }
            }
        }
        reasons.extend(check_message(&bytes, rec.map(|m| m.to.as_str()), extra));
        if !reasons.is_empty() {
            refusals.push(Refusal {
                path: f.clone(),
                reasons,
            });
        }
    }
    for m in &state.messages {
        let staged = new_dir.join(&m.file);
        let released = outbox.released().join("new").join(&m.file);
        if !staged.exists() && !released.exists() {
            refusals.push(Refusal {
                path: staged,
                reasons: vec![format!("message for account {} is missing", m.account)],
            });
        }
    }
    if !refusals.is_empty() {
        return Ok(ReleaseOutcome::Refused(refusals));
    }
    let rel = outbox.released();
    make_maildir(&rel)?;
    for f in &files {
        let dst = rel
            .join("new")
            .join(f.file_name().expect("listed files have names"));
        fs::rename(f, &dst).map_err(|e| Error::io(&dst, e))?;
    }
    sync_dir(&rel.join("new"))?;
    sync_dir(&new_dir)?;
    Ok(ReleaseOutcome::Released {
        count: files.len(),
        dir: rel.join("new"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses_and_has_placeholders() {
        for (lang, src) in TEMPLATES {
            let t: Template = toml::from_str(src).unwrap_or_else(|e| panic!("{lang}: {e}"));
            assert!(t.happened.contains("{first_exposed}"), "{lang}");
            assert!(t.happened.contains("{messages}"), "{lang}");
            assert!(t.reset_done.contains("{expires}"), "{lang}");
        }
        assert_eq!(template_language("de-CH"), "de");
        assert_eq!(template_language("pt_BR"), "en");
        assert_eq!(template_language("RU"), "ru");
    }

    fn notice<'a>(to: &'a str, locale: &'a str, reset: bool) -> Notice<'a> {
        Notice {
            to,
            locale,
            first_exposed: Some("2026-03-01T09:00:00Z"),
            messages: 2,
            audience: 7,
            reset: reset.then(|| {
                (
                    "https://example.com/reset?selector=ab&token=cd".to_string(),
                    "2026-03-02T09:00:00Z".to_string(),
                )
            }),
            review: false,
        }
    }

    #[test]
    fn built_message_is_safe_and_localised() {
        let sender = Sender::new("Security Team <security@shop.example>").unwrap();
        let raw = build_message(
            &notice("anna@gmail.com", "ru", true),
            &sender,
            "x@shop.example",
            "Sat, 28 Nov 2026 10:00:00 +0000",
        );
        assert!(check_message(&raw, Some("anna@gmail.com"), None).is_empty());
        let p = mailparse::parse_mail(&raw).unwrap();
        let subject = p.headers.iter().find(|h| h.get_key() == "Subject").unwrap();
        assert!(subject.get_value().starts_with("Уведомление"));
        let body = p.get_body().unwrap();
        assert!(body.contains("https://example.com/reset?selector=ab&token=cd"));
        assert!(body.contains("2026-03-01"));
        // Wrong expected recipient.
        assert!(!check_message(&raw, Some("bob@gmail.com"), None).is_empty());
    }

    #[test]
    fn doctored_messages_refused() {
        let sender = Sender::new("security@shop.example").unwrap();
        let raw = build_message(
            &notice("anna@gmail.com", "en", false),
            &sender,
            "m@x",
            "Sat, 28 Nov 2026 10:00:00 +0000",
        );
        let text = String::from_utf8(raw).unwrap();
        let two = text.replace(
            "To: <anna@gmail.com>",
            "To: <anna@gmail.com>, <bob@yahoo.com>",
        );
        let why = check_message(two.as_bytes(), Some("anna@gmail.com"), None);
        assert!(why.iter().any(|w| w.contains("2 recipients")), "{why:?}");
        let cc = text.replace(
            "To: <anna@gmail.com>\n",
            "To: <anna@gmail.com>\nCc: bob@yahoo.com\n",
        );
        let why = check_message(cc.as_bytes(), Some("anna@gmail.com"), None);
        assert!(why.iter().any(|w| w.contains("Cc header")), "{why:?}");
        // A body that lists other users' addresses is a content leak.
        let body = build_message_with_body(
            &sender,
            "anna@gmail.com",
            "see also bob@yahoo.com and carl@web.de",
        );
        let why = check_message(&body, Some("anna@gmail.com"), None);
        assert!(why.iter().any(|w| w.contains("2 other address")), "{why:?}");
    }

    fn build_message_with_body(sender: &Sender, to: &str, body: &str) -> Vec<u8> {
        format!(
            "From: {}\nTo: <{to}>\nSubject: x\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n{body}\n",
            sender.from
        )
        .into_bytes()
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
