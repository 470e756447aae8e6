//! What the provider-log readers ([`crate::read::ses`], [`crate::read::mailgun`],
//! [`crate::read::postmark`]) share: the message one record becomes, its header fields, its
//! envelope, and the look at a file's start that tells a provider's JSON.

use crate::model::{Address, EnvelopeKind, EnvelopeRecipient, Format};

/// Whose log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Ses,
    Mailgun,
    Postmark,
}

impl Provider {
    /// The format of the messages read from its logs.
    pub fn format(self) -> Format {
        match self {
            Provider::Ses => Format::Ses,
            Provider::Mailgun => Format::Mailgun,
            Provider::Postmark => Format::Postmark,
        }
    }

    /// The provider whose logs `format` names (`--input-format`).
    pub fn of(format: Format) -> Option<Provider> {
        match format {
            Format::Ses => Some(Provider::Ses),
            Format::Mailgun => Some(Provider::Mailgun),
            Format::Postmark => Some(Provider::Postmark),
            Format::Mbox | Format::Maildir | Format::Eml => None,
        }
    }

    /// The provider whose log `head` (a file's start) is, if any.
    pub fn detect(head: &[u8]) -> Option<Provider> {
        [Provider::Ses, Provider::Mailgun, Provider::Postmark]
            .into_iter()
            .find(|p| match p {
                Provider::Ses => crate::read::ses::detect(head),
                Provider::Mailgun => crate::read::mailgun::detect(head),
                Provider::Postmark => crate::read::postmark::detect(head),
            })
    }
}

/// One message of a provider's log, as the scanner reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMessage {
    /// The provider's message id (the grouping key).
    pub id: String,
    /// The header block the recipients saw, ending in an empty line.
    pub raw: Vec<u8>,
    /// Who received it.
    pub envelope: Vec<EnvelopeRecipient>,
    /// The provider cut the original headers (SES `headersTruncated`): they were rebuilt
    /// from a summary without Bcc.
    pub headers_truncated: bool,
}

/// The envelope of `recipients` (address as the log writes it, how it was addressed): each
/// address once, the first way it was named kept; what does not parse is left out.
pub(crate) fn envelope<'a>(
    recipients: impl IntoIterator<Item = (&'a str, EnvelopeKind)>,
) -> Vec<EnvelopeRecipient> {
    let mut seen = foldhash::HashSet::default();
    recipients
        .into_iter()
        .filter_map(|(r, kind)| Some((Address::parse(r.trim())?, kind)))
        .filter(|(address, _)| seen.insert(address.clone()))
        .map(|(address, kind)| EnvelopeRecipient {
            address,
            kind,
            expanded_from: None,
            forwarded_for: None,
        })
        .collect()
}

/// When `head` (a file's start) is a JSON object: a test for a needle in its first 16 KiB.
pub(crate) fn json_object_head(head: &[u8]) -> Option<impl Fn(&[u8]) -> bool + '_> {
    let t = head
        .strip_prefix(b"\xEF\xBB\xBF")
        .unwrap_or(head)
        .trim_ascii_start();
    let sample = &t[..t.len().min(16 << 10)];
    t.starts_with(b"{")
        .then_some(move |needle: &[u8]| memchr::memmem::find(sample, needle).is_some())
}

/// One header field, folded again (SES writes values unfolded: a 1,000-address `To` is one
/// line) before a space so that unfolding gives the value back; a line break inside a value
/// (which SES does not write) is folded too, so that it cannot start a field of its own.
pub(crate) fn field(raw: &mut Vec<u8>, name: &str, value: &str) {
    const FOLD_AT: usize = 76;
    let name = name.trim();
    raw.extend_from_slice(name.as_bytes());
    raw.extend_from_slice(b": ");
    let mut col = name.len() + 2;
    let lines = value.split(['\r', '\n']).filter(|l| !l.is_empty());
    for (i, line) in lines.enumerate() {
        if i > 0 {
            raw.extend_from_slice(b"\r\n ");
            col = 1;
        }
        let mut rest = line;
        while col + rest.len() > FOLD_AT {
            // The last space that keeps this line short, else the first one after it.
            let room = FOLD_AT.saturating_sub(col).min(rest.len());
            let bytes = rest.as_bytes();
            let cut = bytes[..room]
                .iter()
                .rposition(|&b| b == b' ')
                .filter(|&p| p > 0)
                .or_else(|| {
                    let from = room.max(1);
                    bytes[from..]
                        .iter()
                        .position(|&b| b == b' ')
                        .map(|p| p + from)
                });
            let Some(cut) = cut else { break };
            raw.extend_from_slice(&bytes[..cut]);
            raw.extend_from_slice(b"\r\n");
            rest = &rest[cut..];
            col = 0;
        }
        raw.extend_from_slice(rest.as_bytes());
        col += rest.len();
    }
    raw.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_folded_before_a_space() {
        let to: Vec<String> = (0..300).map(|i| format!("customer{i}@gmail.com")).collect();
        let mut raw = Vec::new();
        field(&mut raw, "To", &to.join(", "));
        let text = String::from_utf8(raw).unwrap();
        assert!(text.lines().all(|l| l.len() <= 80), "{text}");
        assert!(text.lines().skip(1).all(|l| l.starts_with(' ')));
        let unfolded = text.trim_end().replace("\r\n", "");
        assert_eq!(unfolded, format!("To: {}", to.join(", ")));
        // A value without spaces stays whole.
        let mut raw = Vec::new();
        field(&mut raw, "X", &"a".repeat(200));
        assert_eq!(raw.len(), 3 + 200 + 2);
    }

    #[test]
    fn the_envelope_names_each_address_once() {
        let env = envelope([
            ("A@Gmail.com", EnvelopeKind::To),
            ("not an address", EnvelopeKind::To),
            ("a@gmail.com", EnvelopeKind::Recipient),
            (" b@yahoo.com ", EnvelopeKind::Bcc),
        ]);
        let got: Vec<(&str, EnvelopeKind)> =
            env.iter().map(|r| (r.address.as_str(), r.kind)).collect();
        assert_eq!(
            got,
            [
                ("a@gmail.com", EnvelopeKind::To),
                ("b@yahoo.com", EnvelopeKind::Bcc)
            ]
        );
    }
}
