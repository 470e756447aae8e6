//! HTML as text: tags dropped, the entities that hide addresses decoded, optionally the line
//! structure kept. Here, below the policy's content rules, so that the readers (a journal
//! report's HTML envelope) and the rules share one implementation.

/// How much of a reply's structure the segments keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// HTML tags become spaces: the text runs on as the reader sees it (content rules).
    Flat,
    /// For the quoted-region detector: HTML block tags become line breaks and `<blockquote>`
    /// lines start with `>` (one per level), and the header block of an attached message is
    /// a segment of its own (it names the original's recipients).
    Quoting,
}

/// Drops tags, scripts and styles; decodes the entities that hide addresses (`&#64;`).
pub fn strip_html(html: &[u8]) -> Vec<u8> {
    strip_html_with(html, Layout::Flat)
}

/// Tags that start a new line on screen.
fn is_block_tag(name: &[u8]) -> bool {
    matches!(
        name,
        b"br"
            | b"p"
            | b"div"
            | b"tr"
            | b"li"
            | b"hr"
            | b"table"
            | b"ul"
            | b"ol"
            | b"pre"
            | b"h1"
            | b"h2"
            | b"h3"
            | b"h4"
            | b"h5"
            | b"h6"
            | b"blockquote"
    )
}

fn push_line_break(out: &mut Vec<u8>, depth: usize) {
    out.push(b'\n');
    if depth > 0 {
        out.extend(std::iter::repeat_n(b'>', depth));
        out.push(b' ');
    }
}

/// [`strip_html`], with the line structure `mode` asks for.
pub fn strip_html_with(html: &[u8], mode: Layout) -> Vec<u8> {
    let lines = mode == Layout::Quoting;
    // Nesting bounded: a hostile page cannot make every line start with a million `>`.
    let mut depth = 0usize;
    let mut out = Vec::with_capacity(html.len());
    let mut i = 0;
    while i < html.len() {
        let c = html[i];
        if c == b'<' {
            let lower_starts = |s: &[u8]| {
                html.len() >= i + s.len() && html[i..i + s.len()].eq_ignore_ascii_case(s)
            };
            let close: &[u8] = if lower_starts(b"<script") {
                b"</script>"
            } else if lower_starts(b"<style") {
                b"</style>"
            } else {
                b">"
            };
            let end = find_ci(&html[i..], close)
                .map(|p| i + p + close.len())
                .unwrap_or(html.len());
            // Keep link targets: the reader can see and follow them (mailto: addresses, reset
            // links with tokens).
            if close == b">" {
                if let Some(p) = find_ci(&html[i..end], b"href=") {
                    let mut s = i + p + 5;
                    let quote = html.get(s).copied().filter(|c| *c == b'"' || *c == b'\'');
                    if quote.is_some() {
                        s += 1;
                    }
                    let e = html[s..end]
                        .iter()
                        .position(|&c| {
                            Some(c) == quote || (quote.is_none() && (c == b' ' || c == b'>'))
                        })
                        .map(|q| s + q)
                        .unwrap_or(end);
                    let mut target = &html[s..e];
                    if target.len() >= 7 && target[..7].eq_ignore_ascii_case(b"mailto:") {
                        target = &target[7..];
                        if let Some(q) = target.iter().position(|&c| c == b'?') {
                            target = &target[..q];
                        }
                    }
                    out.push(b' ');
                    out.extend_from_slice(target);
                }
            }
            if lines && close == b">" {
                let closing = html.get(i + 1) == Some(&b'/');
                let s = i + 1 + usize::from(closing);
                let n = html[s..end]
                    .iter()
                    .position(|c| !c.is_ascii_alphanumeric())
                    .unwrap_or(end - s);
                let name = html[s..s + n].to_ascii_lowercase();
                if name == b"blockquote" {
                    depth = if closing {
                        depth.saturating_sub(1)
                    } else {
                        (depth + 1).min(16)
                    };
                }
                if is_block_tag(&name) {
                    push_line_break(&mut out, depth);
                } else {
                    out.push(b' ');
                }
            } else {
                out.push(b' ');
            }
            i = end;
        } else if c == b'&' {
            let rest = &html[i..html.len().min(i + 10)];
            let semi = rest.iter().position(|&c| c == b';');
            match semi.map(|p| (&rest[1..p], p)) {
                Some((ent, p)) => {
                    let rep: Option<&[u8]> = match ent {
                        b"#64" | b"#x40" | b"commat" => Some(b"@"),
                        b"amp" => Some(b"&"),
                        b"lt" => Some(b"<"),
                        b"gt" => Some(b">"),
                        b"nbsp" => Some(b" "),
                        b"quot" => Some(b"\""),
                        b"#46" | b"period" => Some(b"."),
                        _ => None,
                    };
                    match rep {
                        Some(r) => {
                            out.extend_from_slice(r);
                            i += p + 1;
                        }
                        None => {
                            out.push(c);
                            i += 1;
                        }
                    }
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else if c == b'\n' && lines {
            push_line_break(&mut out, depth);
            i += 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn find_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() > hay.len() {
        return None;
    }
    (0..=hay.len() - needle.len()).find(|&i| hay[i..i + needle.len()].eq_ignore_ascii_case(needle))
}
