//! The one CSV writer for every CSV output (affected.csv, campaigns.csv), with formula
//! defusing: archive data (addresses, subjects, Message-IDs) is attacker-controlled, and a
//! spreadsheet runs a cell starting with `=`, `+`, `-`, `@`, tab or CR as a formula (OWASP
//! "CSV injection"). Such a cell is written with a `'` in front.
//!
//! Lists that are read back (the affected list) must get their cells back exactly, so a cell
//! that already starts with `'` is prefixed too: [`undefuse`] then removes exactly one
//! leading `'`, and `defuse` / `undefuse` round-trip every string.

use std::borrow::Cow;
use std::io::{self, Write};

/// Characters that make a spreadsheet evaluate a cell, plus the escape itself.
const TRIGGERS: [char; 7] = ['=', '+', '-', '@', '\t', '\r', '\''];

/// The cell as written: `'` + cell when it starts with a formula trigger or a `'`.
pub fn defuse(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(TRIGGERS) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// The original cell of a [`defuse`]d one (one leading `'` removed).
pub fn undefuse(cell: &str) -> &str {
    cell.strip_prefix('\'').unwrap_or(cell)
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
        assert_eq!(rows(&["\tx", "\rx", "'x"]), "'\tx,\"'\rx\",''x\n");
        assert_eq!(
            rows(&["=HYPERLINK(\"http://x\",\"a, b\")"]),
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"a, b\"\")\"\n"
        );
        assert_eq!(rows(&["a", "", "b"]), "a,,b\n");
    }

    proptest! {
        #[test]
        fn defused_cells_read_back_exactly(cells in proptest::collection::vec(".{0,12}", 1..5)) {
            // Behind a header row, as in every output (a reader drops a BOM at the start).
            let text = rows(&["h"]) + &rows(&cells.iter().map(String::as_str).collect::<Vec<_>>());
            let mut rdr = ::csv::ReaderBuilder::new()
                .flexible(true)
                .from_reader(text.as_bytes());
            let rec = rdr.records().next().unwrap().unwrap();
            let back: Vec<&str> = rec.iter().map(undefuse).collect();
            prop_assert_eq!(back, cells.iter().map(String::as_str).collect::<Vec<_>>());
            for cell in rec.iter() {
                prop_assert!(!cell.starts_with(['=', '+', '-', '@', '\t', '\r']), "{:?}", cell);
            }
        }
    }
}
