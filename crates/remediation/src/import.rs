//! Accounts CSV import: parse and validate every row first, then hand all of them to the
//! store in one transaction. Any bad row rejects the whole file (all errors reported by line):
//! a half-imported account list would make the plan silently miss users.
//!
//! Columns (header row required, names case-insensitive, order free, extra columns ignored
//! and reported):
//! * `id` (required, unique), `email` (required, unique after canonicalisation),
//!   `has_2fa` (`true/false`, `yes/no`, `y/n`, `1/0`, `on/off`, `enabled/disabled`, any case),
//!   `balance` (decimal with a dot; empty is an error unless [`EmptyBalance::Zero`]),
//!   `locale` (`en`, `de-CH`, `pt_BR`; empty means `en`);
//! * optionally `failed_logins_since_incident` (count), or `failed_logins` with
//!   `failed_logins_since` (date `YYYY-MM-DD` or RFC 3339).
//!
//! An export with other column names is read through a mapping ([`ImportOptions::map`]:
//! export name -> account column, e.g. `user_id` -> `id`). Row errors name the column as the
//! export spells it.
//!
//! Refused, with the line: a field over [`MAX_FIELD`] bytes, a record over [`MAX_RECORD`]
//! bytes (reading stops there: the file is read as a stream and never buffers more than
//! that, so one huge cell cannot exhaust memory), a control character in an id, a negative
//! balance, and an email the store already holds under another id (an earlier import).

use crate::error::{Error, LineError, Result};
use crate::matching::{canonical, MatchMode};
use crate::store::{AccountRecord, AccountStore, ImportStats};
use std::cell::Cell;
use std::collections::HashMap;
use std::io::{self, Read};
use std::path::Path;
use std::rc::Rc;

/// Longest accepted field, in bytes (ids and emails are far shorter).
pub const MAX_FIELD: usize = 1024;
/// Longest accepted record (row), in bytes, extra columns included.
pub const MAX_RECORD: u64 = 64 * 1024;

/// What parsing the CSV produced.
#[derive(Debug, Clone)]
pub struct ParsedAccounts {
    pub records: Vec<AccountRecord>,
    /// The CSV line of each record.
    pub lines: Vec<u64>,
    /// Header names that are not account columns (ignored).
    pub ignored_columns: Vec<String>,
}

/// Result of a whole import.
#[derive(Debug, Clone)]
pub struct ImportReport {
    pub stats: ImportStats,
    pub rows: usize,
    pub ignored_columns: Vec<String>,
}

const REQUIRED: [&str; 5] = ["id", "email", "has_2fa", "balance", "locale"];
const OPTIONAL: [&str; 3] = [
    "failed_logins_since_incident",
    "failed_logins",
    "failed_logins_since",
];

/// Every account column an export may be mapped to.
pub const COLUMNS: [&str; 8] = [
    "id",
    "email",
    "has_2fa",
    "balance",
    "locale",
    "failed_logins_since_incident",
    "failed_logins",
    "failed_logins_since",
];

/// What an empty `balance` means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmptyBalance {
    /// Refuse the row (the default: an unknown balance may hide a high-value account).
    #[default]
    Error,
    /// Import it as 0.
    Zero,
}

impl std::str::FromStr for EmptyBalance {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "error" => Ok(EmptyBalance::Error),
            "zero" => Ok(EmptyBalance::Zero),
            _ => Err(format!(
                "`{s}`: the empty-balance policy is `zero` or `error`"
            )),
        }
    }
}

/// How an export is read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Export column name (case-insensitive) -> account column ([`COLUMNS`]).
    pub map: std::collections::BTreeMap<String, String>,
    pub empty_balance: EmptyBalance,
}

impl ImportOptions {
    /// Adds `export=column` pairs (`user_id=id,email_address=email`), checking that each
    /// names an account column and that no export column is mapped twice.
    pub fn add_map(&mut self, spec: &str) -> std::result::Result<(), String> {
        for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (from, to) = pair
                .split_once('=')
                .ok_or_else(|| format!("`{pair}`: a mapping is EXPORT_COLUMN=ACCOUNT_COLUMN"))?;
            let (from, to) = (
                from.trim().to_ascii_lowercase(),
                to.trim().to_ascii_lowercase(),
            );
            if !COLUMNS.contains(&to.as_str()) {
                return Err(format!(
                    "`{pair}`: `{to}` is not an account column ({})",
                    COLUMNS.join(", ")
                ));
            }
            if from.is_empty() {
                return Err(format!("`{pair}`: empty export column name"));
            }
            if let Some(old) = self.map.insert(from.clone(), to.clone()) {
                if old != to {
                    return Err(format!("`{from}` is mapped twice (to `{old}` and `{to}`)"));
                }
            }
        }
        Ok(())
    }
}

/// One RFC 5322 addr-spec (RFC 6532: UTF-8 allowed): a dot-atom or a quoted-string, `@`, a
/// domain. `a@b.com;c@d.com` is not one (a mail builder would write two recipients, or
/// none); `"a,b"@c.com` is (a quoted local part, not two fields). The domain is left to the
/// canonical form's own check.
fn is_addr_spec(s: &str) -> bool {
    let s = s.trim();
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    let atext =
        |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii();
    let local_ok = if let Some(inner) = local.strip_prefix('"').and_then(|l| l.strip_suffix('"')) {
        let mut chars = inner.chars();
        let mut ok = true;
        while let Some(c) = chars.next() {
            match c {
                '\\' => ok &= chars.next().is_some_and(|n| !n.is_control() || n == '\t'),
                '"' => ok = false,
                c if c.is_control() && c != '\t' => ok = false,
                _ => {}
            }
        }
        ok && local.len() >= 2
    } else {
        !local.is_empty()
            && local
                .split('.')
                .all(|atom| !atom.is_empty() && atom.chars().all(atext))
    };
    let domain_ok = !domain.is_empty()
        && domain
            .split('.')
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_alphanumeric() || c == '-'));
    local_ok && domain_ok
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "y" | "t" | "on" | "enabled" => Some(true),
        "false" | "0" | "no" | "n" | "f" | "off" | "disabled" => Some(false),
        _ => None,
    }
}

fn valid_locale(s: &str) -> bool {
    let mut parts = s.split(['-', '_']);
    let lang = parts.next().unwrap_or("");
    (2..=3).contains(&lang.len())
        && lang.chars().all(|c| c.is_ascii_alphabetic())
        && parts
            .all(|p| !p.is_empty() && p.len() <= 8 && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

fn valid_date(s: &str) -> bool {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
        || chrono::DateTime::parse_from_rfc3339(s).is_ok()
}

/// A reader that fails once more than [`MAX_RECORD`] bytes (plus the CSV reader's buffer)
/// were read past `mark`, the end of the last whole record: the csv crate buffers a whole
/// record, so this bounds its memory.
struct Capped<R> {
    inner: R,
    read: u64,
    mark: Rc<Cell<u64>>,
}

/// Read-ahead slack on top of [`MAX_RECORD`] (the csv crate reads 8 KiB at a time).
const READ_SLACK: u64 = 64 * 1024;

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.read - self.mark.get() > MAX_RECORD + READ_SLACK {
            return Err(io::Error::other(RecordTooLong));
        }
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("record longer than {MAX_RECORD} bytes")]
struct RecordTooLong;

/// Parses and validates an accounts CSV held in memory (`path` names it in errors).
pub fn parse_accounts_csv(path: &Path, data: &[u8]) -> Result<ParsedAccounts> {
    parse_accounts_reader(path, data)
}

/// Parses and validates an accounts CSV read as a stream (`path` names it in errors).
pub fn parse_accounts_reader(path: &Path, reader: impl Read) -> Result<ParsedAccounts> {
    parse_accounts_with(path, reader, &ImportOptions::default())
}

/// [`parse_accounts_reader`] with a column mapping and an empty-balance policy.
pub fn parse_accounts_with(
    path: &Path,
    reader: impl Read,
    opts: &ImportOptions,
) -> Result<ParsedAccounts> {
    let mark = Rc::new(Cell::new(0));
    let capped = Capped {
        inner: reader,
        read: 0,
        mark: Rc::clone(&mark),
    };
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(capped);
    let headers = rdr
        .headers()
        .map_err(|e| Error::Parse {
            path: path.to_path_buf(),
            line: Some(1),
            reason: format!("cannot read the header row: {e}"),
        })?
        .clone();
    let mut col: HashMap<String, usize> = HashMap::new();
    let mut ignored = Vec::new();
    let mut mapped = std::collections::BTreeSet::new();
    for (i, h) in headers.iter().enumerate() {
        let raw = h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase();
        let name = match opts.map.get(&raw) {
            Some(to) => {
                mapped.insert(raw.clone());
                to.clone()
            }
            None => raw.clone(),
        };
        if REQUIRED.contains(&name.as_str()) || OPTIONAL.contains(&name.as_str()) {
            if col.insert(name.clone(), i).is_some() {
                return Err(Error::Parse {
                    path: path.to_path_buf(),
                    line: Some(1),
                    reason: format!("column `{name}` appears twice (check the column mapping)"),
                });
            }
        } else {
            ignored.push(h.to_string());
        }
    }
    let unused: Vec<&str> = opts
        .map
        .keys()
        .filter(|k| !mapped.contains(*k))
        .map(String::as_str)
        .collect();
    if !unused.is_empty() {
        return Err(Error::Parse {
            path: path.to_path_buf(),
            line: Some(1),
            reason: format!(
                "the column mapping names {} not in the header",
                unused
                    .iter()
                    .map(|u| format!("`{u}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    // Errors name a column as the export spells it, with the account column it stands for.
    let label = |name: &str| -> String {
        match col.get(name).and_then(|&i| headers.get(i)) {
            Some(h) if !h.eq_ignore_ascii_case(name) => format!("column `{h}` ({name})"),
            _ => format!("column `{name}`"),
        }
    };
    let missing: Vec<&str> = REQUIRED
        .iter()
        .copied()
        .filter(|c| !col.contains_key(*c))
        .collect();
    if !missing.is_empty() {
        return Err(Error::Parse {
            path: path.to_path_buf(),
            line: Some(1),
            reason: format!(
                "missing required column(s): {} (need {})",
                missing.join(", "),
                REQUIRED.join(", ")
            ),
        });
    }
    if col.contains_key("failed_logins_since_incident") && col.contains_key("failed_logins") {
        return Err(Error::Parse {
            path: path.to_path_buf(),
            line: Some(1),
            reason: "give either failed_logins_since_incident or failed_logins (+ failed_logins_since), not both".into(),
        });
    }
    let width = headers.len();
    let mut records = Vec::new();
    let mut lines = Vec::new();
    let mut errors = Vec::new();
    let mut seen_ids: HashMap<String, u64> = HashMap::new();
    let mut seen_emails: HashMap<String, u64> = HashMap::new();
    let mut rec = csv::StringRecord::new();
    loop {
        mark.set(rdr.position().byte());
        match rdr.read_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => {
                // Nothing after a read failure can be trusted: stop with what we have.
                errors.push(LineError {
                    line: rdr.position().line(),
                    reason: format!("unreadable: {e}"),
                });
                break;
            }
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                errors.push(LineError {
                    line,
                    reason: format!("unreadable row: {}", crate::error::csv_reason(&e)),
                });
                continue;
            }
        }
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        if rec.len() != width {
            errors.push(LineError {
                line,
                reason: format!("{} fields, the header has {width}", rec.len()),
            });
            continue;
        }
        if let Some(i) = rec.iter().position(|f| f.len() > MAX_FIELD) {
            let name = headers.get(i).unwrap_or("?");
            errors.push(LineError {
                line,
                reason: format!(
                    "field `{name}` is {} bytes, over the limit of {MAX_FIELD}",
                    rec[i].len()
                ),
            });
            continue;
        }
        let get = |name: &str| col.get(name).map(|&i| &rec[i]).unwrap_or("");
        let mut why = Vec::new();
        let id = get("id").to_string();
        if id.is_empty() {
            why.push(format!("{}: empty id", label("id")));
        } else if id.chars().any(char::is_control) {
            why.push(format!(
                "{}: id {id:?} contains a control character",
                label("id")
            ));
        }
        let email = canonical(get("email")).filter(|_| is_addr_spec(get("email")));
        if email.is_none() {
            why.push(format!(
                "{}: `{}` is not an email address (one RFC 5322 addr-spec: local@domain, the local part a dot-atom or a quoted string)",
                label("email"),
                get("email")
            ));
        }
        let has_2fa = parse_bool(get("has_2fa"));
        if has_2fa.is_none() {
            why.push(format!(
                "{}: `{}` is not a boolean (true/false, yes/no, y/n, 1/0, on/off, enabled/disabled)",
                label("has_2fa"),
                get("has_2fa")
            ));
        }
        let balance = match (get("balance"), opts.empty_balance) {
            ("", EmptyBalance::Zero) => Some(0.0),
            ("", EmptyBalance::Error) => {
                why.push(format!(
                    "{}: empty (fill it in, or pass --empty-balance zero to import empty balances as 0)",
                    label("balance")
                ));
                Some(0.0)
            }
            (v, _) => {
                let b = v.parse::<f64>().ok().filter(|b| b.is_finite());
                match b {
                    None => why.push(format!(
                        "{}: `{v}` is not a number (use a dot for decimals)",
                        label("balance")
                    )),
                    Some(b) if b < 0.0 => {
                        why.push(format!("{}: balance `{v}` is negative", label("balance")))
                    }
                    Some(_) => {}
                }
                b
            }
        };
        let mut locale = get("locale").to_string();
        if locale.is_empty() {
            locale = "en".into();
        } else if !valid_locale(&locale) {
            why.push(format!(
                "{}: `{locale}` is not a language tag",
                label("locale")
            ));
        }
        let count_col = if col.contains_key("failed_logins_since_incident") {
            "failed_logins_since_incident"
        } else {
            "failed_logins"
        };
        let failed_raw = get(count_col);
        let failed_logins = if failed_raw.is_empty() {
            None
        } else {
            match failed_raw.parse::<u32>() {
                Ok(n) => Some(n),
                Err(_) => {
                    why.push(format!(
                        "{}: `{failed_raw}` is not a whole number >= 0",
                        label(count_col)
                    ));
                    None
                }
            }
        };
        let since = get("failed_logins_since");
        let failed_logins_since = if since.is_empty() {
            None
        } else if valid_date(since) {
            Some(since.to_string())
        } else {
            why.push(format!(
                "{}: `{since}` is not a date (YYYY-MM-DD or RFC 3339)",
                label("failed_logins_since")
            ));
            None
        };
        if !id.is_empty() {
            if let Some(first) = seen_ids.get(&id) {
                why.push(format!("duplicate id `{id}` (first on line {first})"));
            } else {
                seen_ids.insert(id.clone(), line);
            }
        }
        if let Some(e) = &email {
            if let Some(first) = seen_emails.get(e) {
                why.push(format!("duplicate email `{e}` (first on line {first})"));
            } else {
                seen_emails.insert(e.clone(), line);
            }
        }
        if !why.is_empty() {
            errors.push(LineError {
                line,
                reason: why.join("; "),
            });
            continue;
        }
        lines.push(line);
        records.push(AccountRecord {
            id,
            email: email.unwrap_or_default(),
            has_2fa: has_2fa.unwrap_or(false),
            balance: balance.unwrap_or(0.0),
            locale,
            failed_logins,
            failed_logins_since,
        });
    }
    if !errors.is_empty() {
        return Err(Error::BadLines {
            path: path.to_path_buf(),
            errors,
        });
    }
    Ok(ParsedAccounts {
        records,
        lines,
        ignored_columns: ignored,
    })
}

/// Emails the store already holds under another id. An account of the store that this
/// import moves to another email does not count (the import is one transaction).
fn check_store_emails(
    path: &Path,
    store: &dyn AccountStore,
    parsed: &ParsedAccounts,
) -> Result<()> {
    let new_email: HashMap<&str, &str> = parsed
        .records
        .iter()
        .map(|r| (r.id.as_str(), r.email.as_str()))
        .collect();
    let mut errors = Vec::new();
    for (r, &line) in parsed.records.iter().zip(&parsed.lines) {
        for owner in store.find_by_email(&r.email, MatchMode::Canonical)? {
            let moves_away = new_email
                .get(owner.id.as_str())
                .is_some_and(|e| *e != r.email);
            if owner.id != r.id && !moves_away {
                errors.push(LineError {
                    line,
                    reason: format!(
                        "email `{}` already belongs to account `{}` in the store",
                        r.email, owner.id
                    ),
                });
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::BadLines {
            path: path.to_path_buf(),
            errors,
        })
    }
}

/// Reads `csv_path` and imports it into `store`: all rows or none.
pub fn import_accounts(store: &mut dyn AccountStore, csv_path: &Path) -> Result<ImportReport> {
    import_accounts_with(store, csv_path, &ImportOptions::default())
}

/// [`import_accounts`] with a column mapping and an empty-balance policy.
pub fn import_accounts_with(
    store: &mut dyn AccountStore,
    csv_path: &Path,
    opts: &ImportOptions,
) -> Result<ImportReport> {
    let file = std::fs::File::open(csv_path).map_err(|e| Error::io(csv_path, e))?;
    let parsed = parse_accounts_with(csv_path, io::BufReader::new(file), opts)?;
    check_store_emails(csv_path, &*store, &parsed)?;
    let stats = store.import(&parsed.records)?;
    Ok(ImportReport {
        stats,
        rows: parsed.records.len(),
        ignored_columns: parsed.ignored_columns,
    })
}

/// Imports `csv` into the store `db` (a file path or a PostgreSQL URL; all rows or none). A
/// store file this import created is removed again when the import fails, so a failed import
/// never leaves an empty store that later commands would take for the real one; an existing
/// store is left as it was (the import is one transaction).
pub fn import_into(
    db: &Path,
    csv: &Path,
    opts: &ImportOptions,
) -> Result<(Box<dyn AccountStore + Send>, ImportReport)> {
    let is_file = !db.to_str().is_some_and(crate::store::is_postgres_url);
    let created = is_file && !db.exists();
    let result = crate::store::open(db).and_then(|mut st| {
        let report = import_accounts_with(&mut *st, csv, opts)?;
        Ok((st, report))
    });
    if result.is_err() && created {
        for suffix in ["", "-journal", "-wal", "-shm", ".lock"] {
            let mut p = db.as_os_str().to_owned();
            p.push(suffix);
            let _ = std::fs::remove_file(std::path::PathBuf::from(p));
        }
    }
    result
}

/// The account store of a run given an accounts source: a PostgreSQL URL or an SQLite store
/// is opened as it is; anything else is taken as an accounts CSV export and imported into
/// `import_db` (created on first use).
pub struct OpenedStore {
    pub store: Box<dyn AccountStore + Send>,
    /// Where the accounts are: `source` itself, or `import_db` after an import.
    pub path: std::path::PathBuf,
    /// The import's report, when `source` was a CSV.
    pub imported: Option<ImportReport>,
}

/// See [`OpenedStore`]; an SQLite file is told by its header, not by its name.
pub fn open_or_import(
    source: &Path,
    import_db: &Path,
    opts: &ImportOptions,
) -> Result<OpenedStore> {
    let is_url = source.to_str().is_some_and(crate::store::is_postgres_url);
    if is_url || is_sqlite(source)? {
        return Ok(OpenedStore {
            store: crate::store::open(source)?,
            path: source.to_path_buf(),
            imported: None,
        });
    }
    let (store, report) = import_into(import_db, source, opts)?;
    Ok(OpenedStore {
        store,
        path: import_db.to_path_buf(),
        imported: Some(report),
    })
}

/// An SQLite database starts with this header.
fn is_sqlite(path: &Path) -> Result<bool> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut head = [0u8; 16];
    let n = f.read(&mut head).unwrap_or(0);
    Ok(n == 16 && &head == b"SQLite format 3\0")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ParsedAccounts> {
        parse_accounts_csv(Path::new("a.csv"), text.as_bytes())
    }

    fn bad_lines(r: Result<ParsedAccounts>) -> Vec<u64> {
        match r {
            Err(Error::BadLines { errors, .. }) => errors.iter().map(|e| e.line).collect(),
            other => panic!("expected bad lines, got {other:?}"),
        }
    }

    #[test]
    fn optional_columns_and_canonical_email() {
        let p = parse("ID,Email,has_2fa,balance,locale,failed_logins,failed_logins_since,extra\n1,Bob@Exämple.COM,yes,1.5,de-CH,4,2026-03-01,x\n2,c@x.example,0,0,,,,\n").unwrap();
        assert_eq!(p.ignored_columns, vec!["extra"]);
        assert_eq!(p.records[0].email, "bob@xn--exmple-cua.com");
        assert_eq!(p.records[0].failed_logins, Some(4));
        assert_eq!(
            p.records[0].failed_logins_since.as_deref(),
            Some("2026-03-01")
        );
        assert!(p.records[0].has_2fa);
        assert_eq!(p.records[1].locale, "en", "empty locale means en");
        assert_eq!(p.records[1].failed_logins, None);
    }

    /// Issue 29 (4): only one addr-spec per email field, with its line.
    #[test]
    fn an_email_that_is_not_one_addr_spec_is_refused_with_its_line() {
        let text = "id,email,has_2fa,balance,locale\n\
                    a,a@x.example,true,1,en\n\
                    b,b@b.com;c@d.com,true,1,en\n\
                    c,\"\"\"a,b\"\"@c.com\",true,1,en\n\
                    d,d..x@x.example,true,1,en\n\
                    e,\"e f@x.example\",true,1,en\n\
                    f,\"<g@y.example>\",true,1,en\n\
                    g,\"\"\"<v3@yahoo.com>\"\"@gmail.com\",true,1,en\n\
                    h,j\u{f6}rg@m\u{fc}ller.example,true,1,en\n";
        assert_eq!(bad_lines(parse(text)), vec![3, 5, 6, 7]);
        let r = reasons(parse(text));
        assert!(
            r[0].1
                .contains("not an email address (one RFC 5322 addr-spec"),
            "{r:?}"
        );
    }

    #[test]
    fn every_bad_row_is_reported() {
        let text = "id,email,has_2fa,balance,locale,failed_logins_since_incident\n\
                    a,a@x.example,true,1,en,0\n\
                    ,b@x.example,true,1,en,0\n\
                    c,c@x.example,true,NaN,en,0\n\
                    d,d@x.example,true,1,english!,0\n\
                    e,A@X.example,true,1,en,-3\n\
                    f,f@x.example,true,12,50,en\n";
        assert_eq!(bad_lines(parse(text)), vec![3, 4, 5, 6, 7]);
    }

    #[test]
    fn header_problems() {
        let e = parse("id,email,balance\n1,a@x.example,1\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("a.csv:1:") && e.contains("has_2fa") && e.contains("locale"),
            "{e}"
        );
        let e =
            parse("id,email,has_2fa,balance,locale,failed_logins,failed_logins_since_incident\n")
                .unwrap_err()
                .to_string();
        assert!(e.contains("not both"), "{e}");
    }

    #[test]
    fn import_is_all_or_nothing() {
        let d = tempfile::tempdir().unwrap();
        let mut s = crate::store::SqliteStore::open(&d.path().join("s.db")).unwrap();
        let bad = d.path().join("bad.csv");
        std::fs::write(
            &bad,
            "id,email,has_2fa,balance,locale\n1,a@x.example,true,1,en\n2,nope,true,1,en\n",
        )
        .unwrap();
        assert!(import_accounts(&mut s, &bad).is_err());
        assert_eq!(s.account_count().unwrap(), 0);
    }

    const HEAD: &str = "id,email,has_2fa,balance,locale\n";

    fn reasons(r: Result<ParsedAccounts>) -> Vec<(u64, String)> {
        match r {
            Err(Error::BadLines { errors, .. }) => {
                errors.into_iter().map(|e| (e.line, e.reason)).collect()
            }
            other => panic!("expected bad lines, got {other:?}"),
        }
    }

    #[test]
    fn oversized_fields_are_refused_with_line() {
        let long = "x".repeat(MAX_FIELD + 1);
        let text = format!(
            "{HEAD}ok,a@x.example,true,1,en\n{long},b@x.example,true,1,en\nc,{long}@x.example,true,1,en\n"
        );
        let got = reasons(parse(&text));
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].0, 3);
        assert!(got[0].1.contains("field `id` is 1025 bytes"), "{got:?}");
        assert_eq!(got[1].0, 4);
        assert!(got[1].1.contains("field `email`"), "{got:?}");
    }

    #[test]
    fn huge_record_stops_reading_without_buffering_it() {
        // A 100 MB id, streamed: refused after about MAX_RECORD bytes, never held whole.
        struct Huge(u64, Rc<Cell<u64>>);
        impl Read for Huge {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = (buf.len() as u64).min(self.0) as usize;
                buf[..n].fill(b'a');
                self.0 -= n as u64;
                self.1.set(self.1.get() + n as u64);
                Ok(n)
            }
        }
        let served = Rc::new(Cell::new(0));
        let data = io::Cursor::new(format!("{HEAD}ok,a@x.example,true,1,en\n"))
            .chain(Huge(100 << 20, Rc::clone(&served)))
            .chain(&b",b@x.example,true,1,en\n"[..]);
        let got = reasons(parse_accounts_reader(Path::new("a.csv"), data));
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, 3);
        assert!(
            got[0].1.contains("record longer than 65536 bytes"),
            "{got:?}"
        );
        assert!(served.get() < 256 * 1024, "read {} bytes", served.get());
    }

    #[test]
    fn negative_balance_is_refused_with_line() {
        let text = format!("{HEAD}a,a@x.example,true,-0.01,en\nb,b@x.example,true,0,en\n");
        let got = reasons(parse(&text));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, 2);
        assert!(got[0].1.contains("balance `-0.01` is negative"), "{got:?}");
    }

    #[test]
    fn control_characters_in_ids_are_refused_with_line() {
        let text = format!(
            "{HEAD}ok,a@x.example,true,1,en\n\"a\x1b[2Jb\",b@x.example,true,1,en\n\"c\nd\",c@x.example,true,1,en\n"
        );
        let got = reasons(parse(&text));
        assert_eq!(
            got.iter().map(|g| g.0).collect::<Vec<_>>(),
            vec![3, 4],
            "{got:?}"
        );
        assert!(
            got.iter().all(|g| g.1.contains("control character")),
            "{got:?}"
        );
    }

    /// Issue 12: `user_id,email_address,mfa_enabled,balance_usd` was refused outright.
    #[test]
    fn export_with_other_column_names_imports_with_map() {
        let text = "user_id,email_address,mfa_enabled,balance_usd,locale\n\
                    u1,a@x.example,Enabled,10.5,de\n\
                    u2,b@x.example,off,0,en\n\
                    u3,c@x.example,Y,3,en\n";
        let e = parse(text).unwrap_err().to_string();
        assert!(
            e.contains("missing required column(s): id, email, has_2fa, balance"),
            "{e}"
        );
        let mut opts = ImportOptions::default();
        opts.add_map("user_id=id, email_address=email,MFA_ENABLED=has_2fa")
            .unwrap();
        opts.add_map("balance_usd=balance").unwrap();
        let p = parse_accounts_with(Path::new("a.csv"), text.as_bytes(), &opts).unwrap();
        let got: Vec<(&str, bool, f64)> = p
            .records
            .iter()
            .map(|r| (r.id.as_str(), r.has_2fa, r.balance))
            .collect();
        assert_eq!(
            got,
            [("u1", true, 10.5), ("u2", false, 0.0), ("u3", true, 3.0)]
        );
        // Errors name the export's column.
        let bad =
            "user_id,email_address,mfa_enabled,balance_usd,locale\nu1,a@x.example,maybe,1,en\n";
        let e = parse_accounts_with(Path::new("a.csv"), bad.as_bytes(), &opts)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("a.csv:2: column `mfa_enabled` (has_2fa): `maybe` is not a boolean"),
            "{e}"
        );
        // A mapping naming a column the file lacks, or a target that is no account column.
        let e = parse_accounts_with(Path::new("a.csv"), HEAD.as_bytes(), &opts)
            .unwrap_err()
            .to_string();
        assert!(e.contains("a.csv:1:") && e.contains("`user_id`"), "{e}");
        assert!(ImportOptions::default().add_map("x=identifier").is_err());
        assert!(ImportOptions::default().add_map("x").is_err());
    }

    #[test]
    fn usual_boolean_spellings_are_accepted() {
        for (v, want) in [
            ("true", true),
            ("FALSE", false),
            ("yes", true),
            ("No", false),
            ("y", true),
            ("N", false),
            ("1", true),
            ("0", false),
            ("on", true),
            ("OFF", false),
            ("enabled", true),
            ("Disabled", false),
        ] {
            assert_eq!(parse_bool(v), Some(want), "{v}");
        }
        assert_eq!(parse_bool("maybe"), None);
    }

    /// Issue 12: one empty balance rejected the whole file, with no way out.
    #[test]
    fn empty_balance_is_an_error_with_a_hint_unless_zero() {
        let text = format!("{HEAD}a,a@x.example,true,,en\nb,b@x.example,true,2,en\n");
        let e = parse(&text).unwrap_err().to_string();
        assert!(
            e.contains("a.csv:2: column `balance`: empty") && e.contains("--empty-balance zero"),
            "{e}"
        );
        let opts = ImportOptions {
            empty_balance: "zero".parse().unwrap(),
            ..ImportOptions::default()
        };
        let p = parse_accounts_with(Path::new("a.csv"), text.as_bytes(), &opts).unwrap();
        assert_eq!(p.records[0].balance, 0.0);
        assert_eq!(p.records[1].balance, 2.0);
        assert!("none".parse::<EmptyBalance>().is_err());
    }

    #[test]
    fn same_email_under_another_id_in_a_later_import_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let mut s = crate::store::SqliteStore::open(&d.path().join("s.db")).unwrap();
        let write = |name: &str, body: &str| {
            let p = d.path().join(name);
            std::fs::write(&p, format!("{HEAD}{body}")).unwrap();
            p
        };
        let first = write(
            "1.csv",
            "a1,alice@x.example,true,1,en\nb1,bob@x.example,true,1,en\n",
        );
        import_accounts(&mut s, &first).unwrap();
        // Same email (in another spelling) under a new id: refused, nothing imported.
        let clash = write(
            "2.csv",
            "c1,carol@x.example,true,1,en\na2,Alice@X.example,true,1,en\n",
        );
        let e = import_accounts(&mut s, &clash).unwrap_err();
        match &e {
            Error::BadLines { errors, .. } => {
                assert_eq!(errors.len(), 1, "{e}");
                assert_eq!(errors[0].line, 3);
                assert!(errors[0].reason.contains("account `a1`"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(s.account_count().unwrap(), 2);
        // Re-importing the same ids, or moving an address between accounts in one import,
        // is fine.
        let again = write("3.csv", "a1,alice@x.example,true,2,en\n");
        import_accounts(&mut s, &again).unwrap();
        let swap = write(
            "4.csv",
            "a1,alice2@x.example,true,1,en\nb2,alice@x.example,true,1,en\n",
        );
        import_accounts(&mut s, &swap).unwrap();
        let owner = s
            .find_by_email("alice@x.example", MatchMode::Canonical)
            .unwrap();
        assert_eq!(
            owner.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
            ["b2"]
        );
    }
}
