//! Escaping of untrusted text (subjects, addresses, file names) into HTML and Markdown.
//! Subjects are attacker-controlled: nothing reaches an output without going through here.

/// Escapes text for HTML element content and quoted attribute values.
pub fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // A bidirectional override would reorder the page around it (`evil\u{202e}gpj.exe`
            // reads as `evilexe.jpg`): shown as its code, as the terminal and CSV show it.
            c if is_bidi_control(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            // Control characters (other than tab/newline) have no business in a report and
            // some are invalid in HTML: show them as U+FFFD.
            c if c.is_control() && c != '\t' && c != '\n' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Escapes text for inline Markdown: Markdown punctuation is backslash-escaped and HTML
/// specials become entities, so a subject can neither format the record nor inject HTML
/// into a viewer that renders it. Newlines become spaces (one value stays on one line).
pub fn markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            // Enough for inline text: `.`/`-`/`+` only matter at a line start, and values
            // are never placed there.
            '\\' | '`' | '*' | '_' | '{' | '}' | '[' | ']' | '(' | ')' | '#' | '|' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '\r' | '\n' => out.push(' '),
            // As in `html`, escaped for Markdown (`\\u\{202e\}` renders as `\u{202e}`).
            c if is_bidi_control(c) => out.push_str(&format!("\\\\u\\{{{:x}\\}}", c as u32)),
            c if c.is_control() && c != '\t' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The bidirectional embeddings, overrides and isolates (U+202A-202E, U+2066-2069).
fn is_bidi_control(c: char) -> bool {
    leakaudit_scanner::text::needs_escape(c) && !c.is_control()
}

/// Text for a Markdown code span: control characters escaped (`\x1b`, as on a terminal,
/// since a code span shows its text verbatim), backticks turned into `'`.
pub fn code(s: &str) -> String {
    leakaudit_scanner::text::clean(s).replace('`', "'")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_markup() {
        assert_eq!(
            html("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(html("a\u{0}b"), "a\u{FFFD}b");
        assert_eq!(html("Änderungen 重要"), "Änderungen 重要");
        // Issue 29 (6): a right-to-left override from an archive subject.
        assert_eq!(html("evil\u{202e}gpj.exe"), "evil\\u{202e}gpj.exe");
        assert_eq!(html("a\u{2067}b"), "a\\u{2067}b");
    }

    #[test]
    fn markdown_shows_bidi_overrides_as_their_code() {
        assert_eq!(
            markdown("evil\u{202e}gpj.exe"),
            "evil\\\\u\\{202e\\}gpj.exe"
        );
    }

    #[test]
    fn markdown_escapes_markup_and_html() {
        assert_eq!(
            markdown("[click](http://x) <img src=x> *bold*\n# h"),
            "\\[click\\]\\(http://x\\) &lt;img src=x&gt; \\*bold\\* \\# h"
        );
    }
}
