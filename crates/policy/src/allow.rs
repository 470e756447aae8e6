//! Allowlists scoped to one rule (`[rule.allow]`): by sender, recipient domain, subject regex,
//! Message-ID, header match, and for content rules the matched value.
//!
//! Semantics (documented in the architecture notes):
//! - `senders`, `subjects`, `message_ids`, `headers`: the rule does not run on the message.
//! - `recipient_domains`: addresses at these domains never count for the rule (an exposure
//!   rule drops them from the exposed list; if every recipient is there the rule is skipped).
//! - `values`: content matches whose text matches one of these regexes are ignored.

use crate::raw::{RawAllow, RuleRegex, Validator};
use leakaudit_scanner::address::canonical_domain;
use leakaudit_scanner::{Address, Message};
use toml::Spanned;

#[derive(Debug, Clone, Default)]
pub struct Allow {
    sender_addresses: Vec<String>,
    sender_domains: Vec<String>,
    recipient_domains: Vec<String>,
    subjects: Vec<RuleRegex>,
    message_ids: Vec<String>,
    headers: Vec<(String, RuleRegex)>,
    values: Vec<RuleRegex>,
}

fn is_content_kind(kind: &str) -> bool {
    matches!(
        kind,
        "content-regex" | "seed-phrase" | "address-list-in-content"
    )
}

impl Allow {
    pub(crate) fn from_raw(
        v: &mut Validator<'_>,
        raw: Option<&Spanned<RawAllow>>,
        kind: &str,
    ) -> Allow {
        let mut a = Allow::default();
        let Some(raw) = raw else { return a };
        let raw = raw.get_ref();
        for s in &raw.senders {
            let t = s.get_ref().trim();
            if t.contains('@') {
                match Address::parse(t.trim_start_matches('*')) {
                    Some(addr) if !t.starts_with('@') && !t.starts_with("*@") => {
                        a.sender_addresses.push(addr.as_str().to_string())
                    }
                    _ => {
                        match canonical_domain(t.trim_start_matches('*').trim_start_matches('@')) {
                            Some(d) => a.sender_domains.push(d),
                            None => v.err(s.span(), format!("`{t}` is not an address or a domain")),
                        }
                    }
                }
            } else {
                match canonical_domain(t) {
                    Some(d) => a.sender_domains.push(d),
                    None => v.err(s.span(), format!("`{t}` is not an address or a domain")),
                }
            }
        }
        for d in &raw.recipient_domains {
            match canonical_domain(d.get_ref()) {
                Some(c) => a.recipient_domains.push(c),
                None => v.err(d.span(), format!("`{}` is not a domain", d.get_ref())),
            }
        }
        for s in &raw.subjects {
            if let Some(r) = v.regex(s) {
                a.subjects.push(r);
            }
        }
        for m in &raw.message_ids {
            a.message_ids.push(
                m.get_ref()
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string(),
            );
        }
        for h in &raw.headers {
            let h = h.get_ref();
            if h.name.get_ref().trim().is_empty() || h.name.get_ref().contains(':') {
                v.err(
                    h.name.span(),
                    "header `name` must be a header name without `:`",
                );
            }
            if let Some(r) = v.regex(&h.value) {
                a.headers.push((h.name.get_ref().trim().to_string(), r));
            }
        }
        if !raw.values.is_empty() && !is_content_kind(kind) {
            v.err(
                raw.values[0].span(),
                format!("`values` applies to content rules only, not to kind `{kind}`"),
            );
        }
        for s in &raw.values {
            if let Some(r) = v.regex(s) {
                a.values.push(r);
            }
        }
        a
    }

    /// The rule is skipped for this message entirely.
    pub fn skips_message(&self, msg: &Message<'_>) -> bool {
        let env = &msg.envelope;
        if !self.sender_addresses.is_empty() || !self.sender_domains.is_empty() {
            let hit = env.from.iter().any(|m| {
                self.sender_addresses
                    .iter()
                    .any(|a| a == m.address.as_str())
                    || self.sender_domains.iter().any(|d| d == m.address.domain())
            });
            if hit {
                return true;
            }
        }
        if let Some(id) = &env.message_id {
            if self.message_ids.iter().any(|m| m == id) {
                return true;
            }
        }
        if let Some(subj) = &env.subject {
            if self
                .subjects
                .iter()
                .any(|r| r.regex().is_match(subj.as_bytes()))
            {
                return true;
            }
        }
        if !self.recipient_domains.is_empty()
            && !env.recipients.is_empty()
            && env
                .recipients
                .iter()
                .all(|r| self.recipient_domain_allowed(&r.mailbox.address))
        {
            return true;
        }
        if !self.headers.is_empty() {
            if let Ok((headers, _)) = mailparse::parse_headers(&msg.raw) {
                for (name, re) in &self.headers {
                    for h in headers
                        .iter()
                        .filter(|h| h.get_key_ref().eq_ignore_ascii_case(name))
                    {
                        if re.regex().is_match(h.get_value().as_bytes()) {
                            return true;
                        }
                    }
                }
            }
        }
        false
    }

    pub fn recipient_domain_allowed(&self, addr: &Address) -> bool {
        self.recipient_domains.iter().any(|d| d == addr.domain())
    }

    pub fn has_recipient_domains(&self) -> bool {
        !self.recipient_domains.is_empty()
    }

    /// A content match that the rule's `values` allowlist excuses.
    pub fn value_allowed(&self, matched: &[u8]) -> bool {
        self.values.iter().any(|r| r.regex().is_match(matched))
    }
}
