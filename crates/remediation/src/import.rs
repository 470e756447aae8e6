//! Accounts CSV import: parse and validate every row first, then hand all of them to the
//! store in one transaction. Any bad row rejects the whole file (all errors reported by line):
//! a half-imported account list would make the plan silently miss users.
//!
//! Columns (header row required, names case-insensitive, order free, extra columns ignored
//! and reported):
//! * `id` (required, unique), `email` (required, unique after canonicalisation),
//!   `has_2fa` (`true/false`, `1/0`, `yes/no`), `balance` (decimal with a dot),
//!   `locale` (`en`, `de-CH`, `pt_BR`; empty means `en`);
//! * optionally `failed_logins_since_incident` (count), or `failed_logins` with
//!   `failed_logins_since` (date `YYYY-MM-DD` or RFC 3339).

use crate::error::{Error, LineError, Result};
use crate::matching::canonical;
use crate::store::{AccountRecord, AccountStore, ImportStats};
use std::collections::HashMap;
use std::path::Path;

/// What parsing the CSV produced.
#[derive(Debug, Clone)]
pub struct ParsedAccounts {
    pub records: Vec<AccountRecord>,
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

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "y" | "t" => Some(true),
        "false" | "0" | "no" | "n" | "f" => Some(false),
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

/// Parses and validates an accounts CSV held in memory (`path` names it in errors).
pub fn parse_accounts_csv(path: &Path, data: &[u8]) -> Result<ParsedAccounts> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(data);
    let headers = rdr.headers().map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        line: Some(1),
        reason: format!("cannot read the header row: {e}"),
    })?;
    let mut col: HashMap<String, usize> = HashMap::new();
    let mut ignored = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        let name = h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase();
        if REQUIRED.contains(&name.as_str()) || OPTIONAL.contains(&name.as_str()) {
            if col.insert(name.clone(), i).is_some() {
                return Err(Error::Parse {
                    path: path.to_path_buf(),
                    line: Some(1),
                    reason: format!("column `{name}` appears twice"),
                });
            }
        } else {
            ignored.push(h.to_string());
        }
    }
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
    let mut errors = Vec::new();
    let mut seen_ids: HashMap<String, u64> = HashMap::new();
    let mut seen_emails: HashMap<String, u64> = HashMap::new();
    for rec in rdr.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                errors.push(LineError {
                    line,
                    reason: format!("unreadable row: {e}"),
                });
                continue;
            }
        };
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        if rec.len() != width {
            errors.push(LineError {
                line,
                reason: format!("{} fields, the header has {width}", rec.len()),
            });
            continue;
        }
        let get = |name: &str| col.get(name).map(|&i| &rec[i]).unwrap_or("");
        let mut why = Vec::new();
        let id = get("id").to_string();
        if id.is_empty() {
            why.push("empty id".to_string());
        }
        let email = canonical(get("email"));
        if email.is_none() {
            why.push(format!("`{}` is not an email address", get("email")));
        }
        let has_2fa = parse_bool(get("has_2fa"));
        if has_2fa.is_none() {
            why.push(format!(
                "has_2fa `{}` is not true/false/yes/no/1/0",
                get("has_2fa")
            ));
        }
        let balance = get("balance").parse::<f64>().ok().filter(|b| b.is_finite());
        if balance.is_none() {
            why.push(format!(
                "balance `{}` is not a number (use a dot for decimals)",
                get("balance")
            ));
        }
        let mut locale = get("locale").to_string();
        if locale.is_empty() {
            locale = "en".into();
        } else if !valid_locale(&locale) {
            why.push(format!("locale `{locale}` is not a language tag"));
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
                        "{count_col} `{failed_raw}` is not a whole number >= 0"
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
                "failed_logins_since `{since}` is not a date (YYYY-MM-DD or RFC 3339)"
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
        ignored_columns: ignored,
    })
}

/// Reads `csv_path` and imports it into `store`: all rows or none.
pub fn import_accounts(store: &mut dyn AccountStore, csv_path: &Path) -> Result<ImportReport> {
    let data = std::fs::read(csv_path).map_err(|e| Error::io(csv_path, e))?;
    let parsed = parse_accounts_csv(csv_path, &data)?;
    let stats = store.import(&parsed.records)?;
    Ok(ImportReport {
        stats,
        rows: parsed.records.len(),
        ignored_columns: parsed.ignored_columns,
    })
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
}
