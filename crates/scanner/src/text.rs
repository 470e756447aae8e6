//! Archive text (subjects, addresses, Message-IDs, file names, problem reasons) is attacker
//! controlled: printed raw, an ESC sequence can clear the screen, retitle the window or hide
//! lines. [`clean`] is the one escaping every terminal and CSV output uses.

use std::borrow::Cow;

/// Control characters (C0, DEL, C1) and bidirectional overrides.
pub fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Appends the escaped form of `c`: `\x1b` below U+0100, else `\u{202e}`.
pub(crate) fn push_escaped(out: &mut String, c: char) {
    use std::fmt::Write;
    if (c as u32) < 0x100 {
        let _ = write!(out, "\\x{:02x}", c as u32);
    } else {
        let _ = write!(out, "\\u{{{:x}}}", c as u32);
    }
}

/// `s` with every [`needs_escape`] character escaped as `\x1b`, `\u{202e}`; unchanged
/// (borrowed) when there is none.
pub fn clean(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if needs_escape(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn escape_sequences_are_defused() {
        assert_eq!(clean("plain subject"), "plain subject");
        assert_eq!(clean("a\x1b[2Jb"), "a\\x1b[2Jb");
        assert_eq!(clean("t\x1b]0;title\x07"), "t\\x1b]0;title\\x07");
        assert_eq!(clean("x\u{9b}y"), "x\\x9by");
        assert_eq!(clean("evil\u{202e}gpj.exe"), "evil\\u{202e}gpj.exe");
        assert_eq!(clean("two\nlines"), "two\\x0alines");
    }
}
