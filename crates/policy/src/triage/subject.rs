//! Subjects: reply/forward prefixes and the normalised form that keys a mailing.

/// Reply and forward prefixes in the languages mail clients use (English, German, Nordic,
/// Dutch, Finnish, French, Spanish/Portuguese/Italian).
const PREFIXES: &[&str] = &[
    "re", "fw", "fwd", "aw", "sv", "wg", "vs", "tr", "rv", "antw", "r", "ris", "enc", "vl",
    "doorst",
];

/// Splits one leading prefix (`Re:`, `FWD:`, `Re[2]:`, `AW :`) off `s`.
fn strip_one(s: &str) -> Option<&str> {
    let t = s.trim_start();
    let word_end = t
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(t.len());
    let (word, mut rest) = t.split_at(word_end);
    if word.is_empty() || !PREFIXES.iter().any(|p| p.eq_ignore_ascii_case(word)) {
        return None;
    }
    // Optional counter: Re[2]: / Re(2):
    let t = rest.trim_start();
    if let Some(r) = t.strip_prefix('[').or_else(|| t.strip_prefix('(')) {
        let close = r.find([']', ')'])?;
        if !r[..close].chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        rest = &r[close + 1..];
    }
    rest.trim_start().strip_prefix(':')
}

/// Whether the subject starts with a reply or forward prefix.
pub fn is_reply_subject(subject: &str) -> bool {
    strip_one(subject).is_some()
}

/// The subject without any reply/forward prefixes, lowercased, every run of non-letters
/// (digits, punctuation, whitespace) folded to one space and trimmed: "Changes (batch 3/8)"
/// and "RE: changes - batch 4/8" give the same key. Letters of any script are kept.
pub fn normalise(subject: &str) -> String {
    let mut s = subject;
    while let Some(rest) = strip_one(s) {
        s = rest;
    }
    letters_key(s)
}

/// Lowercase letters of any script separated by single spaces; digits, punctuation and
/// whitespace runs are separators (chunk numbers and dates do not split a mailing). Also the
/// report's campaign key.
pub fn letters_key(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut gap = false;
    for c in s.chars() {
        if c.is_alphabetic() {
            if gap && !out.is_empty() {
                out.push(' ');
            }
            gap = false;
            out.extend(c.to_lowercase());
        } else {
            gap = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_prefixes_in_many_languages() {
        for s in [
            "Re: lunch",
            "RE:lunch",
            "Fwd: x",
            "FW: x",
            "AW: Termin",
            "SV: möte",
            "WG: Termin",
            "VS: x",
            "TR: réunion",
            "RV: x",
            "Antw: x",
            "Re[2]: x",
            "Re (3): x",
        ] {
            assert!(is_reply_subject(s), "{s}");
        }
        for s in ["Reminder: x", "Remarks", "Tractor sale", "", "Re", "Fwd"] {
            assert!(!is_reply_subject(s), "{s}");
        }
    }

    #[test]
    fn normalised_subjects_key_one_mailing() {
        assert_eq!(normalise("Changes (batch 3/8)"), "changes batch");
        assert_eq!(normalise("RE: Fwd: changes - batch 4/8"), "changes batch");
        assert_eq!(normalise("  Важно: изменения 2  "), "важно изменения");
        assert_eq!(normalise("Re: Re: "), "");
        assert_ne!(normalise("Lunch"), normalise("Dinner"));
    }
}
