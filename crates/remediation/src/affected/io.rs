//! The affected list on disk: CSV (one row per address) or JSON ([`super::AffectedList`]),
//! written row by row so a million-address list is never held twice.
//!
//! The store a list was matched against travels with it: the JSON list has `store_id` and
//! `match_mode`; a matched CSV starts with one comment line
//! `# leakaudit-affected/1 store_id=<id> match_mode=<mode>` before the header (a CSV never
//! matched has no such line). A plan refuses a list matched against another store.

use super::{AffectedList, AffectedRow, AFFECTED_SCHEMA, PSEUDONYM_PREFIX};
use crate::error::{Error, LineError, Result};
use crate::matching::MatchMode;
use leakaudit_scanner::csv::{undefuse, CsvWriter};
use std::borrow::Borrow;
use std::io::Write;
use std::path::Path;

/// CSV columns, in order.
pub const CSV_COLUMNS: [&str; 9] = [
    "address",
    "account_id",
    "messages",
    "audience",
    "first_exposed",
    "last_exposed",
    "rule_ids",
    "fields",
    "message_ids",
];

/// Start of the CSV metadata comment line.
pub const CSV_META_PREFIX: &str = "# leakaudit-affected/1";

/// Output format of the affected list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AffectedFormat {
    Csv,
    Json,
}

/// What a list says about itself besides its rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListMeta {
    pub pseudonymised: bool,
    /// Set when the rows were matched against a store ([`super::match_list`]).
    pub store_id: Option<String>,
    pub match_mode: Option<MatchMode>,
}

/// Writes the CSV form (list-valued cells joined with `;`, every cell defused against
/// spreadsheet formulas by [`CsvWriter`]); returns the number of rows.
pub fn write_csv<R: Borrow<AffectedRow>>(
    w: &mut dyn Write,
    meta: &ListMeta,
    rows: impl IntoIterator<Item = R>,
) -> std::io::Result<usize> {
    if let Some(id) = &meta.store_id {
        let mode = meta.match_mode.unwrap_or_default();
        writeln!(
            w,
            "{CSV_META_PREFIX} store_id={id} match_mode={}",
            mode.as_str()
        )?;
    }
    let mut csv = CsvWriter::new(w);
    csv.write_row(CSV_COLUMNS)?;
    let mut n = 0;
    for r in rows {
        let r = r.borrow();
        csv.write_row([
            r.address.as_str(),
            &r.account_ids.join(";"),
            &r.messages.to_string(),
            &r.audience.to_string(),
            r.first_exposed.as_deref().unwrap_or(""),
            r.last_exposed.as_deref().unwrap_or(""),
            &r.rule_ids.join(";"),
            &r.fields.join(";"),
            &r.message_ids.join(";"),
        ])?;
        n += 1;
    }
    csv.flush()?;
    Ok(n)
}

/// Writes the JSON form ([`AffectedList`]), one row per line; returns the number of rows.
/// `total` is written after the rows, so the count is always the rows written.
pub fn write_json<R: Borrow<AffectedRow>>(
    w: &mut dyn Write,
    meta: &ListMeta,
    rows: impl IntoIterator<Item = R>,
) -> std::io::Result<usize> {
    write!(
        w,
        "{{\n  \"schema\": {},\n  \"pseudonymised\": {},\n",
        serde_json::to_string(AFFECTED_SCHEMA)?,
        meta.pseudonymised
    )?;
    if let Some(id) = &meta.store_id {
        writeln!(w, "  \"store_id\": {},", serde_json::to_string(id)?)?;
        let mode = meta.match_mode.unwrap_or_default();
        writeln!(w, "  \"match_mode\": {},", serde_json::to_string(&mode)?)?;
    }
    w.write_all(b"  \"rows\": [")?;
    let mut n = 0usize;
    for r in rows {
        w.write_all(if n == 0 { b"\n    " } else { b",\n    " })?;
        serde_json::to_writer(&mut *w, r.borrow())?;
        n += 1;
    }
    write!(
        w,
        "{}],\n  \"total\": {n}\n}}\n",
        if n > 0 { "\n  " } else { "" }
    )?;
    Ok(n)
}

/// Writes the list to `path` atomically with mode 0600 (it holds addresses), streaming the
/// rows; returns the number written.
pub fn write_file<R: Borrow<AffectedRow>>(
    path: &Path,
    format: AffectedFormat,
    meta: &ListMeta,
    rows: impl IntoIterator<Item = R>,
) -> Result<usize> {
    let mut rows = Some(rows);
    let mut n = 0;
    leakaudit_scanner::io::write_atomic(path, |w| {
        let rows = rows.take().into_iter().flatten();
        n = match format {
            AffectedFormat::Csv => write_csv(w, meta, rows)?,
            AffectedFormat::Json => write_json(w, meta, rows)?,
        };
        Ok(())
    })
    .map_err(|e| Error::io(path, e))?;
    Ok(n)
}

/// Reads an affected list written by [`write_file`] (JSON or CSV, told apart by content).
pub fn read_file(path: &Path) -> Result<AffectedList> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    if text.trim_start().starts_with('{') {
        let list: AffectedList = serde_json::from_str(&text).map_err(|e| Error::Parse {
            path: path.to_path_buf(),
            line: Some(e.line() as u64),
            reason: e.to_string(),
        })?;
        if list.schema != AFFECTED_SCHEMA {
            return Err(Error::Parse {
                path: path.to_path_buf(),
                line: None,
                reason: format!("unknown schema `{}`", list.schema),
            });
        }
        if list.total != list.rows.len() {
            return Err(Error::Parse {
                path: path.to_path_buf(),
                line: None,
                reason: format!("total {} but {} rows", list.total, list.rows.len()),
            });
        }
        return Ok(list);
    }
    read_csv(path, &text)
}

/// `store_id` and `match_mode` from the metadata line.
fn parse_meta(path: &Path, line: &str) -> Result<(Option<String>, Option<MatchMode>)> {
    let mut store = None;
    let mut mode = None;
    for kv in line[CSV_META_PREFIX.len()..].split_whitespace() {
        match kv.split_once('=') {
            Some(("store_id", v)) if !v.is_empty() => store = Some(v.to_string()),
            Some(("match_mode", v)) => {
                mode = Some(MatchMode::parse(v).ok_or_else(|| Error::Parse {
                    path: path.to_path_buf(),
                    line: Some(1),
                    reason: format!("unknown match_mode `{v}`"),
                })?)
            }
            _ => {}
        }
    }
    Ok((store, mode))
}

fn read_csv(path: &Path, text: &str) -> Result<AffectedList> {
    // A spreadsheet may have re-saved the comment line as a quoted one-cell row.
    let first = text.lines().next().unwrap_or("");
    let first_cell = first.trim_start_matches('"');
    let (meta, body, skipped) = if first_cell.starts_with(CSV_META_PREFIX) {
        let meta = parse_meta(path, first_cell.trim_end_matches([',', '"']))?;
        let rest = text[first.len()..].trim_start_matches(['\r', '\n']);
        (meta, rest, 1)
    } else {
        ((None, None), text, 0)
    };
    let mut rdr = csv::ReaderBuilder::new().from_reader(body.as_bytes());
    let headers = rdr.headers().map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        line: Some(1 + skipped),
        reason: e.to_string(),
    })?;
    if headers.iter().map(undefuse).collect::<Vec<_>>() != CSV_COLUMNS {
        return Err(Error::Parse {
            path: path.to_path_buf(),
            line: Some(1 + skipped),
            reason: format!("expected columns {}", CSV_COLUMNS.join(",")),
        });
    }
    let split = |s: &str| -> Vec<String> {
        s.split(';')
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect()
    };
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for rec in rdr.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0) + skipped;
                errors.push(LineError {
                    line,
                    reason: crate::error::csv_reason(&e),
                });
                continue;
            }
        };
        let line = rec.position().map(|p| p.line()).unwrap_or(0) + skipped;
        // Cells were defused when written: undo exactly that.
        let cell = |i: usize| undefuse(&rec[i]);
        let num = |i: usize| cell(i).parse::<usize>();
        match (num(2), num(3)) {
            (Ok(messages), Ok(audience)) => rows.push(AffectedRow {
                address: cell(0).to_string(),
                account_ids: split(&cell(1)),
                messages,
                audience,
                first_exposed: opt(&cell(4)),
                last_exposed: opt(&cell(5)),
                rule_ids: split(&cell(6)),
                fields: split(&cell(7)),
                message_ids: split(&cell(8)),
            }),
            _ => errors.push(LineError {
                line,
                reason: "messages and audience must be whole numbers".into(),
            }),
        }
    }
    if !errors.is_empty() {
        return Err(Error::BadLines {
            path: path.to_path_buf(),
            errors,
        });
    }
    let pseudonymised = rows.iter().any(|r| r.address.starts_with(PSEUDONYM_PREFIX));
    Ok(AffectedList {
        schema: AFFECTED_SCHEMA.to_string(),
        pseudonymised,
        store_id: meta.0,
        match_mode: meta.1,
        total: rows.len(),
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(address: &str, message_id: &str) -> AffectedRow {
        AffectedRow {
            address: address.to_string(),
            account_ids: vec!["-acc-1".into()],
            messages: 1,
            audience: 2,
            first_exposed: Some("2024-01-09T10:30:00Z".into()),
            last_exposed: None,
            rule_ids: vec!["exposed-recipients".into()],
            fields: vec!["To".into()],
            message_ids: vec![message_id.to_string(), "=b@x".into()],
        }
    }

    #[test]
    fn formula_addresses_are_defused_in_affected_csv_and_read_back_exactly() {
        let rows = vec![
            row("=1+2@gmail.com", "=cmd|' /C calc'!A0@x"),
            row("@sum(1)@x.example", "m1@x"),
            row("+1@x.example", "+m@x"),
            row("-1@x.example", "-m@x"),
            row("\tx@x.example", "\rm@x"),
            row("'quoted@x.example", "'m@x"),
            row("plain@x.example", "m2@x"),
        ];
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("affected.csv");
        let meta = ListMeta {
            store_id: Some("s1".into()),
            ..ListMeta::default()
        };
        assert_eq!(
            write_file(&path, AffectedFormat::Csv, &meta, &rows).unwrap(),
            7
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        for rec in rdr.records().skip(2) {
            for cell in rec.unwrap().iter() {
                assert!(
                    !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                    "live formula cell {cell:?} in\n{text}"
                );
            }
        }
        let back = read_file(&path).unwrap();
        assert_eq!(back.rows, rows);
        assert_eq!(back.store_id.as_deref(), Some("s1"));
    }
}
