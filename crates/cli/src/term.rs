//! Text from the archive (subjects, addresses, file names, problem reasons) is attacker
//! controlled: everything printed on a terminal goes through [`clean`] (the scanner's
//! `text::clean`, which the policy renderers and the CSV writer use too).

pub use leakaudit_scanner::text::clean;

use std::borrow::Cow;

/// [`clean`] for text of several lines (an error chain, a table): line breaks are kept, every
/// other control character is escaped.
pub fn clean_lines(s: &str) -> Cow<'_, str> {
    if !s.split('\n').any(|l| matches!(clean(l), Cow::Owned(_))) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.split('\n').map(clean).collect::<Vec<_>>().join("\n"))
}

/// The hint after a canonical match: unmatched addresses that provider folding would match.
pub fn fold_hint_note(would_match: usize) -> Option<String> {
    (would_match > 0).then(|| {
        format!(
            "note: {would_match} unmatched address(es) would match an account with --provider-folding"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::{clean, clean_lines};

    #[test]
    fn escape_sequences_are_defused_and_line_breaks_kept() {
        assert_eq!(clean("a\x1b[2Jb"), "a\\x1b[2Jb");
        assert_eq!(clean_lines("one\ntwo"), "one\ntwo");
        assert_eq!(
            clean_lines("o\x1b]0;x\x07\nt\rw"),
            "o\\x1b]0;x\\x07\nt\\x0dw"
        );
    }
}
