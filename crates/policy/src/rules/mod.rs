//! Rule kinds: one file per kind, each with its parameters, their validation and the check.
//!
//! To add a kind: write `rules/<kind>.rs` with a `Params` type, its parameter keys `KEYS`,
//! `from_raw` (validation) and `check`; add a variant to [`Kind`] and to [`RuleKind`]: the
//! compiler then names every `match` that needs its line (name, keys, build, the engine's
//! dispatch), and `Kind::ALL` takes it too; ship a rule using it in `rules/*.toml`
//! with fixtures under `fixtures/rules/<rule-id>/`. The file formats live in [`raw`], which
//! imports nothing of the crate but `error` and `finding` (no module cycle).

use crate::content::Segment;
use crate::finding::Severity;
use crate::raw::{RawRule, Validator};
use leakaudit_scanner::{ExposedAddress, Exposure, Message, Org};

pub mod address_list_in_content;
pub mod bcc_header_leak;
pub mod content_regex;
pub mod group_members_visible;
pub mod recipient_exposure;
pub mod seed_phrase;

/// Every rule kind a rule file may name. Everything about a kind is one exhaustive `match`
/// on it (its name, its keys, how it is built) and [`RuleKind::kind`] maps back: a new kind
/// that misses one of them does not compile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    RecipientExposure,
    BccHeaderLeak,
    GroupMembersVisible,
    AddressListInContent,
    ContentRegex,
    SeedPhrase,
}

impl Kind {
    /// Every kind, in the order error messages list them (a unit test checks it is complete).
    pub const ALL: [Kind; 6] = [
        Kind::RecipientExposure,
        Kind::BccHeaderLeak,
        Kind::GroupMembersVisible,
        Kind::AddressListInContent,
        Kind::ContentRegex,
        Kind::SeedPhrase,
    ];

    /// The name rule files use.
    pub fn name(self) -> &'static str {
        match self {
            Kind::RecipientExposure => "recipient-exposure",
            Kind::BccHeaderLeak => "bcc-header-leak",
            Kind::GroupMembersVisible => "group-members-visible",
            Kind::AddressListInContent => "address-list-in-content",
            Kind::ContentRegex => "content-regex",
            Kind::SeedPhrase => "seed-phrase",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The kind-specific keys it accepts (each kind lists its own).
    fn keys(self) -> &'static [&'static str] {
        match self {
            Kind::RecipientExposure => recipient_exposure::KEYS,
            Kind::BccHeaderLeak => &[],
            Kind::GroupMembersVisible => group_members_visible::KEYS,
            Kind::AddressListInContent => address_list_in_content::KEYS,
            Kind::ContentRegex => content_regex::KEYS,
            Kind::SeedPhrase => seed_phrase::KEYS,
        }
    }

    /// Its parameters, validated.
    fn build(self, v: &mut Validator<'_>, raw: &RawRule) -> Option<RuleKind> {
        match self {
            Kind::RecipientExposure => {
                recipient_exposure::from_raw(v, raw).map(RuleKind::RecipientExposure)
            }
            Kind::BccHeaderLeak => Some(RuleKind::BccHeaderLeak(bcc_header_leak::Params)),
            Kind::GroupMembersVisible => {
                group_members_visible::from_raw(v, raw).map(RuleKind::GroupMembersVisible)
            }
            Kind::AddressListInContent => {
                address_list_in_content::from_raw(v, raw).map(RuleKind::AddressListInContent)
            }
            Kind::ContentRegex => content_regex::from_raw(v, raw).map(RuleKind::ContentRegex),
            Kind::SeedPhrase => seed_phrase::from_raw(v, raw).map(RuleKind::SeedPhrase),
        }
    }
}

/// The names of every kind.
pub fn kind_names() -> impl Iterator<Item = &'static str> {
    Kind::ALL.into_iter().map(Kind::name)
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
    pub fn kind(&self) -> Kind {
        match self {
            RuleKind::RecipientExposure(_) => Kind::RecipientExposure,
            RuleKind::BccHeaderLeak(_) => Kind::BccHeaderLeak,
            RuleKind::GroupMembersVisible(_) => Kind::GroupMembersVisible,
            RuleKind::AddressListInContent(_) => Kind::AddressListInContent,
            RuleKind::ContentRegex(_) => Kind::ContentRegex,
            RuleKind::SeedPhrase(_) => Kind::SeedPhrase,
        }
    }

    /// Reads the message's content (runs in the engine's content pass), not its headers.
    pub fn is_content(&self) -> bool {
        match self {
            RuleKind::AddressListInContent(_)
            | RuleKind::ContentRegex(_)
            | RuleKind::SeedPhrase(_) => true,
            RuleKind::RecipientExposure(_)
            | RuleKind::BccHeaderLeak(_)
            | RuleKind::GroupMembersVisible(_) => false,
        }
    }
}

pub(crate) fn validate_kind(v: &mut Validator<'_>, raw: &RawRule) -> Option<RuleKind> {
    let name = raw.kind.get_ref().as_str();
    let Some(kind) = Kind::from_name(name) else {
        v.err(
            raw.kind.span(),
            format!(
                "unknown kind `{name}` (expected one of: {})",
                kind_names().collect::<Vec<_>>().join(", ")
            ),
        );
        return None;
    };
    // A parameter of another kind is a mistake, never silently ignored.
    let allowed = kind.keys();
    let mut bad = false;
    for (key, span) in raw.params_given() {
        if !allowed.contains(&key) {
            bad = true;
            v.err(span, format!("`{key}` does not apply to kind `{name}`"));
        }
    }
    let k = kind.build(v, raw);
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
        for kind in Kind::ALL {
            for key in kind.keys() {
                assert!(RawRule::PARAM_KEYS.contains(key), "{kind:?}: {key}");
            }
        }
        // And every parameter belongs to some kind.
        for key in RawRule::PARAM_KEYS {
            assert!(Kind::ALL.iter().any(|k| k.keys().contains(key)), "{key}");
        }
    }

    /// `Kind::ALL` lists every kind once: each name maps back to its kind, and a kind's
    /// position is the one its exhaustive match gives.
    #[test]
    fn all_lists_every_kind_once() {
        let position = |k: Kind| match k {
            Kind::RecipientExposure => 0,
            Kind::BccHeaderLeak => 1,
            Kind::GroupMembersVisible => 2,
            Kind::AddressListInContent => 3,
            Kind::ContentRegex => 4,
            Kind::SeedPhrase => 5,
        };
        for (i, k) in Kind::ALL.into_iter().enumerate() {
            assert_eq!(position(k), i);
            assert_eq!(Kind::from_name(k.name()), Some(k));
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
            parts: Default::default(),
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
