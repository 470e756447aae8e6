//! Affected users: one row per exposed address, accumulated from policy [`Finding`]s (from a
//! live scan or a saved findings JSON Lines file), written as CSV or JSON.
//!
//! Counting rules (documented because reports quote them):
//! * a *message* is identified by its Message-ID, or by its location when it has none, so the
//!   same mail stored twice (two archive copies) counts once, and two rules firing on one message
//!   count once;
//! * the *audience* of an address is the number of distinct external parties, other than the
//!   address's own party, that received any message exposing it (the union of the findings'
//!   `audience_parties`); findings without party lists fall back to their per-message count;
//! * Message-IDs kept per row are the five earliest (by date, then id), so the output does not
//!   depend on input order.

use crate::error::{Error, LineError, Result};
use crate::matching::{canonical, match_key, MatchMode};
use crate::store::AccountStore;
use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use leakaudit_policy::Finding;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Write};
use std::path::Path;

/// How many Message-IDs a row keeps.
pub const MAX_MESSAGE_IDS: usize = 5;
/// Prefix of a pseudonymised address.
pub const PSEUDONYM_PREFIX: &str = "hmac-sha256:";
/// Schema tag of the JSON output.
pub const AFFECTED_SCHEMA: &str = "leakaudit-affected/1";

/// One exposed address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AffectedRow {
    /// Canonical address, or `hmac-sha256:<hex>` when pseudonymised.
    pub address: String,
    /// Accounts matched to the address (empty when no store was given or none matched).
    #[serde(default)]
    pub account_ids: Vec<String>,
    /// Distinct messages that exposed the address.
    pub messages: usize,
    /// Distinct other external parties that saw it.
    pub audience: usize,
    /// RFC 3339, UTC; `None` when no exposing message had a parseable Date.
    pub first_exposed: Option<String>,
    pub last_exposed: Option<String>,
    pub rule_ids: Vec<String>,
    /// Header fields it was visible in (`To`, `Cc`...).
    #[serde(default)]
    pub fields: Vec<String>,
    /// Up to [`MAX_MESSAGE_IDS`] Message-IDs.
    pub message_ids: Vec<String>,
}

/// The affected list as written in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AffectedList {
    pub schema: String,
    pub pseudonymised: bool,
    pub total: usize,
    pub rows: Vec<AffectedRow>,
}

#[derive(Default)]
struct Acc {
    messages: BTreeSet<String>,
    own_party: String,
    parties: BTreeSet<String>,
    max_audience: usize,
    first: Option<i64>,
    last: Option<i64>,
    rules: BTreeSet<String>,
    ids: BTreeSet<(i64, String)>,
    fields: BTreeSet<String>,
}

/// Feeds on findings, yields the rows. Order of feeding does not change the result.
#[derive(Default)]
pub struct AffectedAccumulator {
    by_address: BTreeMap<String, Acc>,
    findings: usize,
}

impl AffectedAccumulator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of findings seen so far (with or without exposed addresses).
    pub fn findings_seen(&self) -> usize {
        self.findings
    }

    /// Adds one finding; findings without exposed addresses only count as seen.
    pub fn add(&mut self, f: &Finding) {
        self.findings += 1;
        if f.exposed.is_empty() {
            return;
        }
        let msg_key = match &f.message_id {
            Some(id) if !id.is_empty() => format!("id:{id}"),
            _ => format!("loc:{}", f.location),
        };
        for ex in &f.exposed {
            // Re-canonicalise: saved findings may come from another version or be hand-made.
            let addr = canonical(ex.address.as_str())
                .unwrap_or_else(|| ex.address.as_str().to_lowercase());
            let acc = self.by_address.entry(addr).or_default();
            acc.messages.insert(msg_key.clone());
            if acc.own_party.is_empty() {
                acc.own_party = ex.party.clone();
            }
            for p in &f.audience_parties {
                if *p != ex.party {
                    acc.parties.insert(p.clone());
                }
            }
            acc.max_audience = acc.max_audience.max(ex.audience);
            if let Some(d) = f.date {
                acc.first = Some(acc.first.map_or(d, |x| x.min(d)));
                acc.last = Some(acc.last.map_or(d, |x| x.max(d)));
            }
            acc.rules.insert(f.rule_id.clone());
            for field in &ex.fields {
                acc.fields.insert(field.header_name().to_string());
            }
            if let Some(id) = &f.message_id {
                acc.ids.insert((f.date.unwrap_or(i64::MAX), id.clone()));
                while acc.ids.len() > MAX_MESSAGE_IDS {
                    acc.ids.pop_last();
                }
            }
        }
    }

    /// Reads a findings JSON Lines file (the `check --format jsonl` / `scan` output) into the
    /// accumulator. Every bad line is reported; nothing is added when any line is bad.
    pub fn add_jsonl_file(&mut self, path: &Path) -> Result<usize> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let reader = std::io::BufReader::new(file);
        let mut parsed = Vec::new();
        let mut errors = Vec::new();
        for (i, line) in reader.lines().enumerate() {
            let line_no = i as u64 + 1;
            let line = line.map_err(|e| Error::io(path, e))?;
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Finding>(&line) {
                Ok(f) => parsed.push(f),
                Err(e) => match serde_json::from_str::<ScanRecord>(&line) {
                    Ok(r) => parsed.push(r.into_finding()),
                    Err(_) => errors.push(LineError {
                        line: line_no,
                        reason: format!("not a finding: {e}"),
                    }),
                },
            }
        }
        if !errors.is_empty() {
            return Err(Error::BadLines {
                path: path.to_path_buf(),
                errors,
            });
        }
        for f in &parsed {
            self.add(f);
        }
        Ok(parsed.len())
    }

    /// The rows, sorted by canonical address.
    pub fn rows(&self) -> Vec<AffectedRow> {
        self.by_address
            .iter()
            .map(|(addr, a)| AffectedRow {
                address: addr.clone(),
                account_ids: Vec::new(),
                messages: a.messages.len(),
                audience: a.parties.len().max(a.max_audience),
                first_exposed: a.first.map(rfc3339),
                last_exposed: a.last.map(rfc3339),
                rule_ids: a.rules.iter().cloned().collect(),
                fields: a.fields.iter().cloned().collect(),
                message_ids: a.ids.iter().map(|(_, id)| id.clone()).collect(),
            })
            .collect()
    }
}

/// A `leakaudit scan` record (one per exposing message), accepted beside findings. It has no
/// party list, so the audience falls back to the per-message count.
#[derive(Deserialize)]
struct ScanRecord {
    location: leakaudit_scanner::Location,
    #[serde(default)]
    message_id: Option<String>,
    /// RFC 3339.
    #[serde(default)]
    date: Option<String>,
    exposed: Vec<leakaudit_scanner::ExposedAddress>,
}

/// Rule id recorded for rows that came from `scan` records.
pub const SCAN_RULE_ID: &str = "scan-exposure";

impl ScanRecord {
    fn into_finding(self) -> Finding {
        let date = self
            .date
            .as_deref()
            .and_then(|d| DateTime::parse_from_rfc3339(d).ok())
            .map(|d| d.timestamp());
        Finding {
            rule_id: SCAN_RULE_ID.into(),
            severity: leakaudit_policy::Severity::High,
            message: String::new(),
            hint: String::new(),
            location: self.location,
            line: None,
            message_id: self.message_id,
            date,
            from: None,
            subject: None,
            evidence: String::new(),
            fingerprint: String::new(),
            exposed: self.exposed,
            audience_parties: Vec::new(),
            signals: Vec::new(),
            reasons: Vec::new(),
            profile: None,
        }
    }
}

/// Seconds since the epoch as RFC 3339 UTC (`2026-03-01T09:00:00Z`).
pub fn rfc3339(ts: i64) -> String {
    DateTime::<Utc>::from_timestamp(ts, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| ts.to_string())
}

/// Fills `account_ids` of each row from the store.
pub fn match_accounts(
    rows: &mut [AffectedRow],
    store: &dyn AccountStore,
    mode: MatchMode,
) -> Result<()> {
    for row in rows.iter_mut() {
        let key = match_key(&row.address, mode);
        row.account_ids = store
            .find_by_email(&key, mode)?
            .into_iter()
            .map(|a| a.id)
            .collect();
    }
    Ok(())
}

/// Keyed pseudonym of a canonical address: `hmac-sha256:` + hex HMAC-SHA256(key, address).
/// Stable for one key; without the key it cannot be reversed or linked to other reports.
pub fn pseudonym(key: &[u8], address: &str) -> String {
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key)
        .expect("HMAC takes keys of any length");
    mac.update(address.as_bytes());
    format!(
        "{PSEUDONYM_PREFIX}{}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// Replaces every address with its pseudonym and re-sorts (so the order leaks nothing).
pub fn pseudonymise(rows: &mut [AffectedRow], key: &[u8]) {
    for r in rows.iter_mut() {
        r.address = pseudonym(key, &r.address);
    }
    rows.sort_by(|a, b| a.address.cmp(&b.address));
}

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

/// Writes the CSV form (list-valued cells joined with `;`).
pub fn write_csv(w: &mut dyn Write, rows: &[AffectedRow]) -> std::io::Result<()> {
    let mut csv = csv::Writer::from_writer(w);
    csv.write_record(CSV_COLUMNS)?;
    for r in rows {
        csv.write_record([
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
    }
    csv.flush()?;
    Ok(())
}

/// Writes the JSON form ([`AffectedList`]).
pub fn write_json(
    w: &mut dyn Write,
    rows: &[AffectedRow],
    pseudonymised: bool,
) -> std::io::Result<()> {
    let list = AffectedList {
        schema: AFFECTED_SCHEMA.to_string(),
        pseudonymised,
        total: rows.len(),
        rows: rows.to_vec(),
    };
    serde_json::to_writer_pretty(&mut *w, &list)?;
    w.write_all(b"\n")
}

/// Output format of the affected list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AffectedFormat {
    Csv,
    Json,
}

/// Writes the list to `path` atomically with mode 0600 (it holds addresses).
pub fn write_file(
    path: &Path,
    rows: &[AffectedRow],
    format: AffectedFormat,
    pseudonymised: bool,
) -> Result<()> {
    leakaudit_scanner::io::write_atomic(path, |w| match format {
        AffectedFormat::Csv => write_csv(w, rows),
        AffectedFormat::Json => write_json(w, rows, pseudonymised),
    })
    .map_err(|e| Error::io(path, e))
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
        return Ok(list);
    }
    read_csv(path, &text)
}

fn read_csv(path: &Path, text: &str) -> Result<AffectedList> {
    let mut rdr = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let headers = rdr.headers().map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        line: Some(1),
        reason: e.to_string(),
    })?;
    if headers.iter().collect::<Vec<_>>() != CSV_COLUMNS {
        return Err(Error::Parse {
            path: path.to_path_buf(),
            line: Some(1),
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
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                errors.push(LineError {
                    line,
                    reason: e.to_string(),
                });
                continue;
            }
        };
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let num = |i: usize| rec[i].parse::<usize>();
        match (num(2), num(3)) {
            (Ok(messages), Ok(audience)) => rows.push(AffectedRow {
                address: rec[0].to_string(),
                account_ids: split(&rec[1]),
                messages,
                audience,
                first_exposed: opt(&rec[4]),
                last_exposed: opt(&rec[5]),
                rule_ids: split(&rec[6]),
                fields: split(&rec[7]),
                message_ids: split(&rec[8]),
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
        total: rows.len(),
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use leakaudit_scanner::{ExposedAddress, Field, Location};

    fn finding(
        rule: &str,
        id: Option<&str>,
        date: i64,
        exposed: &[(&str, &str)],
        parties: &[&str],
    ) -> Finding {
        Finding {
            rule_id: rule.into(),
            severity: leakaudit_policy::Severity::High,
            message: String::new(),
            hint: String::new(),
            location: Location::file(format!("a.eml#{date}")),
            line: None,
            message_id: id.map(str::to_string),
            date: Some(date),
            from: None,
            subject: None,
            evidence: String::new(),
            fingerprint: String::new(),
            exposed: exposed
                .iter()
                .map(|(a, p)| ExposedAddress {
                    address: leakaudit_scanner::Address::parse(a).unwrap(),
                    fields: vec![Field::Cc],
                    party: p.to_string(),
                    audience: parties.len() - 1,
                    in_group: false,
                })
                .collect(),
            audience_parties: parties.iter().map(|s| s.to_string()).collect(),
            signals: Vec::new(),
            reasons: Vec::new(),
            profile: None,
        }
    }

    #[test]
    fn order_independent_and_capped() {
        let mut fs = Vec::new();
        for i in 0..8 {
            fs.push(finding(
                "recipient-exposure",
                Some(&format!("m{i}")),
                1_000 + i,
                &[
                    ("x@gmail.com", "x@gmail.com"),
                    (&format!("p{i}@yahoo.com"), &format!("p{i}@yahoo.com")),
                ],
                &["x@gmail.com", &format!("p{i}@yahoo.com")],
            ));
        }
        // A message without Message-ID is keyed by its location.
        fs.push(finding(
            "bcc-header-leak",
            None,
            5,
            &[("x@gmail.com", "x@gmail.com")],
            &["x@gmail.com", "z.example"],
        ));
        let mut a = AffectedAccumulator::new();
        fs.iter().for_each(|f| a.add(f));
        let mut b = AffectedAccumulator::new();
        fs.iter().rev().for_each(|f| b.add(f));
        assert_eq!(a.rows(), b.rows());
        let rows = a.rows();
        let x = rows.iter().find(|r| r.address == "x@gmail.com").unwrap();
        assert_eq!(x.messages, 9);
        assert_eq!(x.audience, 9, "8 yahoo users and z.example");
        assert_eq!(
            x.message_ids,
            vec!["m0", "m1", "m2", "m3", "m4"],
            "the 5 earliest"
        );
        assert_eq!(x.first_exposed.as_deref(), Some("1970-01-01T00:00:05Z"));
        assert_eq!(x.rule_ids, vec!["bcc-header-leak", "recipient-exposure"]);
        assert_eq!(x.fields, vec!["Cc"]);
    }

    #[test]
    fn csv_and_json_round_trip() {
        let mut a = AffectedAccumulator::new();
        a.add(&finding(
            "r",
            Some("m"),
            10,
            &[
                ("a@gmail.com", "a@gmail.com"),
                ("b@gmail.com", "b@gmail.com"),
            ],
            &["a@gmail.com", "b@gmail.com"],
        ));
        let mut rows = a.rows();
        rows[0].account_ids = vec!["acc-1".into()];
        let d = tempfile::tempdir().unwrap();
        for (name, fmt) in [
            ("x.csv", AffectedFormat::Csv),
            ("x.json", AffectedFormat::Json),
        ] {
            let p = d.path().join(name);
            write_file(&p, &rows, fmt, false).unwrap();
            let back = read_file(&p).unwrap();
            assert_eq!(back.rows, rows, "{name}");
        }
    }

    #[test]
    fn pseudonyms_are_keyed() {
        let p1 = pseudonym(b"key-one-0123456789", "a@gmail.com");
        assert_eq!(p1, pseudonym(b"key-one-0123456789", "a@gmail.com"));
        assert_ne!(p1, pseudonym(b"key-two-0123456789", "a@gmail.com"));
        assert_eq!(p1.len(), PSEUDONYM_PREFIX.len() + 64);
    }
}
