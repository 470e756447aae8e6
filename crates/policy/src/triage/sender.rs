//! Sender-side signals read from the header block: bulk-mail markers, system senders, and
//! the sender's own other addresses.

use leakaudit_scanner::{Address, Envelope, HeaderFacts};

/// Mass mailers and email service providers seen in X-Mailer / User-Agent.
const MASS_MAILERS: &[&str] = &[
    "mailchimp",
    "mailjet",
    "sendgrid",
    "sendinblue",
    "brevo",
    "campaign monitor",
    "constant contact",
    "phplist",
    "mailpoet",
    "mautic",
    "acoustic",
    "exacttarget",
    "salesforce marketing",
    "hubspot",
    "klaviyo",
    "mailgun",
    "amazon ses",
    "sparkpost",
    "emarsys",
    "cleverreach",
    "rapidmail",
    "newsletter",
    "bulk",
];

/// Local parts of senders that no human answers.
const SYSTEM_LOCAL: &[&str] = &[
    "noreply",
    "no-reply",
    "no_reply",
    "donotreply",
    "do-not-reply",
    "do_not_reply",
    "mailer-daemon",
    "postmaster",
    "notifications",
    "notification",
    "notify",
    "alerts",
    "alert",
    "bounce",
    "bounces",
    "newsletter",
    "news",
    "marketing",
    "mailer",
    "automated",
    "system",
];

/// Bulk-mail markers of the header block, each named (empty: none).
pub fn bulk_markers(f: &HeaderFacts) -> Vec<&'static str> {
    let mut out = Vec::new();
    if let Some(p) = &f.precedence {
        if ["bulk", "list", "junk"].contains(&p.trim().to_ascii_lowercase().as_str()) {
            out.push("Precedence");
        }
    }
    if f.list_unsubscribe {
        out.push("List-Unsubscribe");
    }
    if f.list_id.is_some() {
        out.push("List-Id");
    }
    if let Some(a) = &f.auto_submitted {
        if !a.trim().eq_ignore_ascii_case("no") {
            out.push("Auto-Submitted");
        }
    }
    if let Some(m) = &f.mailer {
        let m = m.to_ascii_lowercase();
        if MASS_MAILERS.iter().any(|k| m.contains(k)) {
            out.push("mass mailer");
        }
    }
    out
}

/// A no-reply-like sender: `noreply@`, `notifications@`, `mailer-daemon@`, and the same
/// words joined with a prefix or suffix (`shop-noreply@`, `noreply.billing@`).
pub fn is_system_sender(a: &Address) -> bool {
    let local = a.local();
    SYSTEM_LOCAL.contains(&local)
        || local
            .split(['.', '-', '_', '+'])
            .any(|part| matches!(part, "noreply" | "donotreply" | "notifications"))
        || local.contains("noreply")
        || local.contains("no-reply")
        || local.contains("donotreply")
}

/// Lowercase ASCII letters of a name part (accents and digits dropped).
fn letters(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphabetic())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// (first, last) name of a person from a display name (`John Smith`, `Smith, John`,
/// `John K. Smith`) or a `first.last` local part. `None` when it does not look like a name.
pub fn person_name(display: Option<&str>, address: &Address) -> Option<(String, String)> {
    if let Some(d) = display {
        let d = d.trim().trim_matches(['"', '\'']);
        let (first, last) = if let Some((last, first)) = d.split_once(',') {
            (
                first.split_whitespace().next(),
                last.split_whitespace().last(),
            )
        } else {
            let mut w = d.split_whitespace();
            (w.next(), w.last())
        };
        if let (Some(f), Some(l)) = (first.map(letters), last.map(letters)) {
            if f.len() >= 2 && l.len() >= 2 {
                return Some((f, l));
            }
        }
    }
    let parts: Vec<&str> = address.local().split(['.', '_']).collect();
    if parts.len() >= 2 {
        let (f, l) = (letters(parts[0]), letters(parts[parts.len() - 1]));
        if f.len() >= 2 && l.len() >= 2 {
            return Some((f, l));
        }
    }
    None
}

/// Whether a consumer-mailbox local part spells the person's name: `john.smith`,
/// `johnsmith`, `jsmith`, `smithj`, `smith.john`, `john_smith77`, `johns`.
pub fn local_spells_name(local: &str, name: (&str, &str)) -> bool {
    NameForms::new(name).matches(local)
}

/// The spellings of one person's name in a mailbox, built once per message.
pub struct NameForms {
    forms: [String; 5],
    initial: String,
    last: String,
    /// `last`, searched for in every candidate: built once.
    last_finder: memchr::memmem::Finder<'static>,
    max_len: usize,
}

impl NameForms {
    pub fn new((first, last): (&str, &str)) -> NameForms {
        let f0 = &first[..1];
        let l0 = &last[..1];
        NameForms {
            forms: [
                format!("{first}{last}"),
                format!("{last}{first}"),
                format!("{f0}{last}"),
                format!("{last}{f0}"),
                format!("{first}{l0}"),
            ],
            initial: f0.to_owned(),
            last: last.to_owned(),
            last_finder: memchr::memmem::Finder::new(last.as_bytes()).into_owned(),
            max_len: first.len() + last.len() + 2,
        }
    }

    pub fn matches(&self, local: &str) -> bool {
        // The letters on the stack: this runs for every consumer address of a mass mail, and
        // a string per address was a third of the check. Past `max_len` letters nothing can
        // match (every form and the second test are at most that long): stop there. A longer
        // run than the buffer with a name that long too: the string.
        let mut buf = [0u8; 64];
        let mut n = 0;
        for b in local.bytes().filter(u8::is_ascii_alphabetic) {
            if n == self.max_len {
                return false;
            }
            if n == buf.len() {
                return self.matches_letters(letters(local).as_bytes());
            }
            let b = b.to_ascii_lowercase();
            // Every form, and the initial-and-last-name test, begins with the first or the last
            // name's first letter: most customers' addresses stop at their first letter.
            if n == 0 && b != self.initial.as_bytes()[0] && b != self.last.as_bytes()[0] {
                return false;
            }
            buf[n] = b;
            n += 1;
        }
        self.matches_letters(&buf[..n])
    }

    fn matches_letters(&self, l: &[u8]) -> bool {
        if l.len() < 4 {
            return false;
        }
        self.forms.iter().any(|f| f.as_bytes() == l)
            || (self.last.len() >= 4
                && l.starts_with(self.initial.as_bytes())
                && self.last_finder.find(l).is_some()
                && l.len() <= self.max_len)
    }
}

/// Normalised display name for "same person" comparisons: letters only, words sorted, so
/// "Smith, John" and "John Smith" match. `None` unless at least two words of 2+ letters.
pub fn display_key(display: Option<&str>) -> Option<String> {
    let d = display?;
    let mut words: Vec<String> = d
        .split(|c: char| c.is_whitespace() || c == ',')
        .map(letters)
        .filter(|w| w.len() >= 2)
        .collect();
    if words.len() < 2 {
        return None;
    }
    words.sort();
    Some(words.join(" "))
}

/// The sender's first From mailbox: its name when it looks like a person.
pub fn sender_name(env: &Envelope) -> Option<(String, String)> {
    let m = env.from.first()?;
    person_name(m.display.as_deref(), &m.address)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The letters gathered on the stack, cut short past `max_len`, give what the letters
        /// string gives, past the buffer's length and with non-ASCII letters too.
        #[test]
        fn name_forms_match_as_on_the_letters_string(
            first in "[a-z]{1,40}",
            last in "[a-z]{1,40}",
            local in "[a-zA-Z0-9._\u{e4}\u{e9}-]{0,90}",
            form in 0..4usize,
        ) {
            let n = NameForms::new((&first, &last));
            // Some locals made of the name, so that matches happen.
            let local = match form {
                0 => local,
                1 => format!("{first}.{last}"),
                2 => format!("{}{last}9", &first[..1]),
                _ => format!("{local}{first}{last}"),
            };
            // The check as first written: on the letters string, with `str` searching.
            let l = letters(&local);
            let want = l.len() >= 4
                && (n.forms.contains(&l)
                    || (n.last.len() >= 4
                        && l.starts_with(&n.initial)
                        && l.contains(&n.last)
                        && l.len() <= n.max_len));
            proptest::prop_assert_eq!(n.matches(&local), want);
        }
    }

    fn a(s: &str) -> Address {
        Address::parse(s).unwrap()
    }

    #[test]
    fn bulk_markers_from_header_facts() {
        let mut f = HeaderFacts::default();
        assert!(bulk_markers(&f).is_empty());
        f.precedence = Some("Bulk".into());
        f.auto_submitted = Some("no".into());
        assert_eq!(bulk_markers(&f), ["Precedence"]);
        f.auto_submitted = Some("auto-generated".into());
        f.list_unsubscribe = true;
        f.list_id = Some("<news.shop.example>".into());
        f.mailer = Some("MailChimp Mailer - **CID123**".into());
        assert_eq!(
            bulk_markers(&f),
            [
                "Precedence",
                "List-Unsubscribe",
                "List-Id",
                "Auto-Submitted",
                "mass mailer"
            ]
        );
        f = HeaderFacts {
            mailer: Some("Microsoft Outlook 16.0".into()),
            precedence: Some("first-class".into()),
            ..HeaderFacts::default()
        };
        assert!(bulk_markers(&f).is_empty());
    }

    #[test]
    fn system_senders() {
        for s in [
            "noreply@shop.example",
            "no-reply@shop.example",
            "DoNotReply@shop.example",
            "mailer-daemon@mx.example",
            "notifications@github.example",
            "shop-noreply@shop.example",
        ] {
            assert!(is_system_sender(&a(s)), "{s}");
        }
        for s in [
            "john.smith@enron.com",
            "newsroom-editor@paper.example",
            "nora@x.example",
        ] {
            assert!(!is_system_sender(&a(s)), "{s}");
        }
    }

    #[test]
    fn names_from_display_or_local_part() {
        let addr = a("john.smith@enron.com");
        assert_eq!(
            person_name(None, &addr),
            Some(("john".into(), "smith".into()))
        );
        assert_eq!(
            person_name(Some("Smith, John K."), &a("x@y.example")),
            Some(("john".into(), "smith".into()))
        );
        assert_eq!(person_name(None, &a("sales@y.example")), None);
        let n = ("john", "smith");
        for l in [
            "jsmith",
            "john.smith",
            "johnsmith",
            "smithj",
            "john_smith77",
            "smith.john",
            "johns",
        ] {
            assert!(local_spells_name(l, n), "{l}");
        }
        for l in ["jdoe", "info", "smith", "mary.smith", "jo"] {
            assert!(!local_spells_name(l, n), "{l}");
        }
        assert_eq!(
            display_key(Some("Smith, John")),
            display_key(Some("John Smith"))
        );
        assert_eq!(display_key(Some("Sales")), None);
    }
}
