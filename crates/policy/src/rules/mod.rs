//! Rule kinds: one file per kind, each with its parameters, their validation and the check.
//!
//! To add a kind: write `rules/<kind>.rs` with a `Params` type, its parameter keys `KEYS`,
//! `from_raw` (validation) and `check`; add a variant to [`RuleKind`], its name to [`KINDS`]
//! and its line in [`keys_of`] and [`validate_kind`]; ship a rule using it in `rules/*.toml`
//! with fixtures under `fixtures/rules/<rule-id>/`. The file formats live in [`raw`], which
//! imports nothing of the crate but `error` and `finding` (no module cycle).

use crate::content::Segment;
use crate::finding::Severity;
use leakaudit_scanner::{ExposedAddress, Exposure, Message, Org};
use raw::{RawRule, Validator};

pub mod address_list_in_content;
pub mod bcc_header_leak;
pub mod content_regex;
pub mod group_members_visible;
pub mod raw;
pub mod recipient_exposure;
pub mod seed_phrase;

/// Every rule kind a rule file may name.
pub const KINDS: [&str; 6] = [
    "recipient-exposure",
    "bcc-header-leak",
    "group-members-visible",
    "address-list-in-content",
    "content-regex",
    "seed-phrase",
];

/// The kind-specific keys each kind accepts (each kind lists its own).
fn keys_of(kind: &str) -> &'static [&'static str] {
    match kind {
        "recipient-exposure" => recipient_exposure::KEYS,
        "bcc-header-leak" => &[],
        "group-members-visible" => group_members_visible::KEYS,
        "address-list-in-content" => address_list_in_content::KEYS,
        "content-regex" => content_regex::KEYS,
        "seed-phrase" => seed_phrase::KEYS,
        _ => &[],
    }
}

/// A validated rule's kind and parameters.
#[derive(Debug, Clone)]
pub enum RuleKind {
    RecipientExposure(recipient_exposure::Params),
    BccHeaderLeak(bcc_header_leak::Params),
    GroupMembersVisible(group_members_visible::Params),
    AddressListInContent(address_list_in_content::Params),
    ContentRegex(content_regex::Params),
    SeedPhrase(seed_phrase::Params),
}

impl RuleKind {
    pub fn is_content(&self) -> bool {
        matches!(
            self,
            RuleKind::AddressListInContent(_) | RuleKind::ContentRegex(_) | RuleKind::SeedPhrase(_)
        )
    }
}

pub(crate) fn validate_kind(v: &mut Validator<'_>, raw: &RawRule) -> Option<RuleKind> {
    let kind = raw.kind.get_ref().as_str();
    if !KINDS.contains(&kind) {
        v.err(
            raw.kind.span(),
            format!(
                "unknown kind `{kind}` (expected one of: {})",
                KINDS.join(", ")
            ),
        );
        return None;
    }
    // A parameter of another kind is a mistake, never silently ignored.
    let allowed = keys_of(kind);
    let mut bad = false;
    for (name, span) in raw.params_given() {
        if !allowed.contains(&name) {
            bad = true;
            v.err(span, format!("`{name}` does not apply to kind `{kind}`"));
        }
    }
    let k = match kind {
        "recipient-exposure" => {
            recipient_exposure::from_raw(v, raw).map(RuleKind::RecipientExposure)
        }
        "bcc-header-leak" => Some(RuleKind::BccHeaderLeak(bcc_header_leak::Params)),
        "group-members-visible" => {
            group_members_visible::from_raw(v, raw).map(RuleKind::GroupMembersVisible)
        }
        "address-list-in-content" => {
            address_list_in_content::from_raw(v, raw).map(RuleKind::AddressListInContent)
        }
        "content-regex" => content_regex::from_raw(v, raw).map(RuleKind::ContentRegex),
        "seed-phrase" => seed_phrase::from_raw(v, raw).map(RuleKind::SeedPhrase),
        _ => None,
    };
    if bad {
        None
    } else {
        k
    }
}

/// What a rule sees of a message.
pub struct Ctx<'m, 'a> {
    pub msg: &'m Message<'a>,
    pub org: &'m Org,
    pub exposure: &'m Exposure,
    /// The unquoted stored message (content rules' offsets are into this).
    pub raw: &'m [u8],
    /// Judged under the gate profile: a rendered message about to be sent.
    pub gate: bool,
}

/// A rule firing, before the engine turns it into a [`crate::Finding`].
#[derive(Debug, Clone, Default)]
pub struct Hit {
    /// `None`: the rule's own severity (or its override).
    pub severity: Option<Severity>,
    pub message: String,
    /// Already redacted.
    pub evidence: String,
    /// Byte offset in the stored message, for the line number.
    pub raw_offset: Option<usize>,
    pub exposed: Vec<ExposedAddress>,
    pub audience_parties: Vec<leakaudit_scanner::PartyKey>,
}

/// The severity for `count` from tiers (`at_least` ascending); `None` below the first tier.
pub fn tier_severity(tiers: &[(usize, Severity)], count: usize) -> Option<Severity> {
    tiers
        .iter()
        .rev()
        .find(|(n, _)| count >= *n)
        .map(|(_, s)| *s)
}

/// Byte offset of a header line (`To:`) in the header block, for a line number.
pub fn header_offset(raw: &[u8], names: &[&str]) -> Option<usize> {
    let end = crate::content::body_start(raw).unwrap_or(raw.len());
    let mut pos = 0;
    for line in raw[..end].split_inclusive(|&b| b == b'\n') {
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            let name = &line[..colon];
            if names
                .iter()
                .any(|n| n.as_bytes().eq_ignore_ascii_case(name))
            {
                return Some(pos);
            }
        }
        pos += line.len();
    }
    None
}

/// Content segments handed to the content kinds.
pub struct ContentView<'s, 'a> {
    pub segments: &'s [Segment<'a>],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_key_is_a_raw_rule_parameter() {
        for kind in KINDS {
            for key in keys_of(kind) {
                assert!(RawRule::PARAM_KEYS.contains(key), "{kind}: {key}");
            }
        }
        // And every parameter belongs to some kind.
        for key in RawRule::PARAM_KEYS {
            assert!(KINDS.iter().any(|k| keys_of(k).contains(key)), "{key}");
        }
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::Ctx;
    use leakaudit_scanner::{
        Address, Envelope, Exposure, Field, Format, Location, Mailbox, Message, Org, Recipient,
    };

    pub fn addr(s: &str) -> Address {
        Address::parse(s).expect("test address")
    }

    pub fn env(from: &str, rcpts: &[(&str, Field)]) -> Envelope {
        Envelope {
            from: vec![Mailbox {
                address: addr(from),
                display: None,
            }],
            recipients: rcpts
                .iter()
                .map(|(a, f)| Recipient {
                    mailbox: Mailbox {
                        address: addr(a),
                        display: None,
                    },
                    field: *f,
                    group: None,
                })
                .collect(),
            ..Envelope::default()
        }
    }

    /// A message whose envelope is made up by the test (not parsed from `raw`): the rules'
    /// unit tests give each field exactly.
    pub fn msg(raw: &[u8], envelope: Envelope) -> Message<'_> {
        Message {
            location: Location::file("t.eml"),
            format: Format::Eml,
            raw: std::borrow::Cow::Borrowed(raw),
            mbox_quoted: false,
            envelope,
        }
    }

    pub fn ctx<'m, 'a>(
        m: &'m Message<'a>,
        org: &'m Org,
        exposure: &'m Exposure,
        raw: &'m [u8],
    ) -> Ctx<'m, 'a> {
        Ctx {
            msg: m,
            org,
            exposure,
            raw,
            gate: false,
        }
    }
}
