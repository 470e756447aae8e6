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
            c if c.is_control() && c != '\t' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
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
    }

    #[test]
    fn markdown_escapes_markup_and_html() {
        assert_eq!(
            markdown("[click](http://x) <img src=x> *bold*\n# h"),
            "\\[click\\]\\(http://x\\) &lt;img src=x&gt; \\*bold\\* \\# h"
        );
    }
}
