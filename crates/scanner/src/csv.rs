//! The one CSV writer for every CSV output (affected.csv, campaigns.csv), with formula
//! defusing: archive data (addresses, subjects, Message-IDs) is attacker-controlled, and a
//! spreadsheet runs a cell starting with `=`, `+`, `-`, `@`, tab or CR as a formula (OWASP
//! "CSV injection"). Such a cell is written with a `'` in front.
//!
//! Lists that are read back (the affected list) must get their cells back exactly, so a cell
//! that already starts with `'` is prefixed too: [`undefuse`] then removes exactly one
//! leading `'`, and `defuse` / `undefuse` round-trip every string.
//!
//! A cell holding a control character (an ESC sequence in a Subject or Message-ID would
//! reach the terminal of whoever `cat`s the file) is written escaped behind the marker
//! `'\!`: `\\` for a backslash, `\x1b` / `\u{202e}` as in `text::clean`. The marker starts
//! with `'`, so a real cell starting with it is written `''\!...` and reads back exactly.

use std::borrow::Cow;
use std::io::{self, Write};

/// Characters that make a spreadsheet evaluate a cell, plus the escape itself.
const TRIGGERS: [char; 7] = ['=', '+', '-', '@', '\t', '\r', '\''];

/// Start of a cell whose control characters are escaped.
const ESCAPED: &str = "'\\!";

/// The cell as written: escaped behind `'\!` when it holds a control character, else `'` +
/// cell when it starts with a formula trigger or a `'`.
pub fn defuse(cell: &str) -> Cow<'_, str> {
    if cell.chars().any(crate::text::needs_escape) {
        let mut out = String::with_capacity(cell.len() + 16);
        out.push_str(ESCAPED);
        for c in cell.chars() {
            if c == '\\' {
                out.push_str("\\\\");
            } else if crate::text::needs_escape(c) {
                crate::text::push_escaped(&mut out, c);
            } else {
                out.push(c);
            }
        }
        Cow::Owned(out)
    } else if cell.starts_with(TRIGGERS) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// The original cell of a [`defuse`]d one.
pub fn undefuse(cell: &str) -> Cow<'_, str> {
    match cell.strip_prefix(ESCAPED) {
        Some(rest) => Cow::Owned(unescape(rest)),
        None => Cow::Borrowed(cell.strip_prefix('\'').unwrap_or(cell)),
    }
}

/// Reverses the escaping of [`defuse`]; anything that is not one of its escapes is kept as
/// it is (a hand-edited file never makes it fail).
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let (c, used) = if tail.starts_with("\\\\") {
            (Some('\\'), 2)
        } else if let Some(hex) = tail.strip_prefix("\\x").and_then(|t| t.get(..2)) {
            (
                u32::from_str_radix(hex, 16).ok().and_then(char::from_u32),
                4,
            )
        } else if let Some(body) = tail.strip_prefix("\\u{") {
            match body.find('}') {
                Some(end) => (
                    u32::from_str_radix(&body[..end], 16)
                        .ok()
                        .and_then(char::from_u32),
                    3 + end + 1,
                ),
                None => (None, 0),
            }
        } else {
            (None, 0)
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &tail[used..];
            }
            None => {
                out.push('\\');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A CSV writer (RFC 4180 quoting by the `csv` crate, LF line ends) that defuses every cell.
pub struct CsvWriter<W: Write> {
    inner: ::csv::Writer<W>,
}

impl<W: Write> CsvWriter<W> {
    pub fn new(w: W) -> Self {
        CsvWriter {
            inner: ::csv::WriterBuilder::new().from_writer(w),
        }
    }

    /// Writes one row, each cell through [`defuse`].
    pub fn write_row<I, T>(&mut self, cells: I) -> io::Result<()>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        for cell in cells {
            self.inner.write_field(defuse(cell.as_ref()).as_bytes())?;
        }
        self.inner.write_record(None::<&[u8]>)?;
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }

    /// Flushes and returns the underlying writer.
    pub fn into_inner(self) -> io::Result<W> {
        self.inner.into_inner().map_err(|e| e.into_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rows(cells: &[&str]) -> String {
        let mut w = CsvWriter::new(Vec::new());
        w.write_row(cells).unwrap();
        String::from_utf8(w.into_inner().unwrap()).unwrap()
    }

    #[test]
    fn formula_cells_are_prefixed_and_quoted_as_needed() {
        assert_eq!(
            rows(&[
                "=1+2@gmail.com",
                "@SUM(1)@x.example",
                "+1@x",
                "-1@x",
                "plain"
            ]),
            "'=1+2@gmail.com,'@SUM(1)@x.example,'+1@x,'-1@x,plain\n"
        );
        assert_eq!(
            rows(&["\tx", "\rx", "'x", "'\\!x"]),
            "'\\!\\x09x,'\\!\\x0dx,''x,''\\!x\n"
        );
        assert_eq!(
            rows(&["=HYPERLINK(\"http://x\",\"a, b\")"]),
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"a, b\"\")\"\n"
        );
        assert_eq!(rows(&["a", "", "b"]), "a,,b\n");
    }

    #[test]
    fn terminal_escapes_in_cells_are_escaped_and_read_back_regression() {
        let cell = "Hi \x1b]0;pwned\x07\x1b[2J a\\x1b";
        let line = rows(&[cell]);
        assert!(!line.contains('\x1b') && !line.contains('\x07'), "{line:?}");
        assert_eq!(line, "'\\!Hi \\x1b]0;pwned\\x07\\x1b[2J a\\\\x1b\n");
        assert_eq!(undefuse(line.trim_end()), cell);
        assert_eq!(undefuse("'\\!bad \\q \\x \\u{zz"), "bad \\q \\x \\u{zz");
    }

    proptest! {
        #[test]
        fn defused_cells_read_back_exactly(cells in proptest::collection::vec("(.|[\\\\\\x00-\\x1f\\x7f']){0,12}", 1..5)) {
            // Behind a header row, as in every output (a reader drops a BOM at the start).
            let text = rows(&["h"]) + &rows(&cells.iter().map(String::as_str).collect::<Vec<_>>());
            let mut rdr = ::csv::ReaderBuilder::new()
                .flexible(true)
                .from_reader(text.as_bytes());
            let rec = rdr.records().next().unwrap().unwrap();
            let back: Vec<String> = rec.iter().map(|c| undefuse(c).into_owned()).collect();
            prop_assert_eq!(back, cells);
            for cell in rec.iter() {
                prop_assert!(!cell.starts_with(['=', '+', '-', '@', '\t', '\r']), "{:?}", cell);
                prop_assert!(!cell.chars().any(crate::text::needs_escape), "{:?}", cell);
            }
        }
    }
}
