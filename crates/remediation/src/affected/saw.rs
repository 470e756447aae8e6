//! Recipients who saw exposed addresses without being shown themselves: the envelope-only
//! recipients (Bcc, members of an expanded list, forwarded-to) of an exposing message, as a
//! journal report lists them ([`leakaudit_scanner::Exposure::saw_others`]).
//!
//! They are not data subjects of the exposure (their own address was not shown to anyone),
//! so they are never rows of the affected list, which drives resets and notifications; they
//! hold the exposed data, so the incident lists them on their own (`saw-others.csv`).

use super::{rfc3339, MAX_MESSAGE_IDS};
use crate::error::{Error, Result};
use leakaudit_scanner::csv::CsvWriter;
use leakaudit_scanner::{Address, Location};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The header of `saw-others.csv`.
pub const SAW_OTHERS_COLUMNS: [&str; 5] = [
    "address",
    "messages",
    "first_received",
    "last_received",
    "message_ids",
];

#[derive(Debug, Default)]
struct Seen {
    /// Message keys (Message-ID, else location), distinct: the count.
    messages: BTreeSet<String>,
    /// The Message-IDs among them (a location is not one).
    ids: BTreeSet<String>,
    first: Option<i64>,
    last: Option<i64>,
}

/// The list, by canonical address.
#[derive(Debug, Default)]
pub struct SawOthers {
    rows: BTreeMap<Address, Seen>,
}

impl SawOthers {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the recipients who saw one exposing message (copies of a message count once).
    pub fn add(
        &mut self,
        message_id: Option<&str>,
        location: &Location,
        date: Option<i64>,
        saw: &[Address],
    ) {
        if saw.is_empty() {
            return;
        }
        let id = message_id.filter(|id| !id.is_empty());
        let key = id.map_or_else(|| location.to_string(), str::to_string);
        for a in saw {
            let row = self.rows.entry(a.clone()).or_default();
            row.messages.insert(key.clone());
            if let Some(id) = id {
                row.ids.insert(id.to_string());
            }
            if let Some(d) = date {
                row.first = Some(row.first.map_or(d, |f| f.min(d)));
                row.last = Some(row.last.map_or(d, |l| l.max(d)));
            }
        }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Writes `saw-others.csv` atomically, mode 0600 (it holds addresses); returns the rows.
    pub fn write_csv(&self, path: &Path) -> Result<usize> {
        leakaudit_scanner::io::write_atomic(path, |w| {
            let mut csv = CsvWriter::new(w);
            csv.write_row(SAW_OTHERS_COLUMNS)?;
            for (address, seen) in &self.rows {
                let ids: Vec<&str> = seen
                    .ids
                    .iter()
                    .take(MAX_MESSAGE_IDS)
                    .map(String::as_str)
                    .collect();
                csv.write_row([
                    address.as_str(),
                    &seen.messages.len().to_string(),
                    &seen.first.map(rfc3339).unwrap_or_default(),
                    &seen.last.map(rfc3339).unwrap_or_default(),
                    &ids.join(";"),
                ])?;
            }
            Ok(())
        })
        .map_err(|e| Error::io(path, e))?;
        Ok(self.rows.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn one_row_per_address_messages_counted_once() {
        let a = |s: &str| Address::parse(s).unwrap();
        let loc = Location::file("j.mbox".to_string());
        let mut s = SawOthers::new();
        s.add(
            Some("m1@x"),
            &loc,
            Some(1_572_598_800),
            &[a("Hal@AOL.com"), a("gina@icloud.com")],
        );
        // A second report of the same message, and another message.
        s.add(Some("m1@x"), &loc, Some(1_572_598_800), &[a("hal@aol.com")]);
        s.add(Some("m2@x"), &loc, Some(1_572_602_400), &[a("hal@aol.com")]);
        s.add(None, &loc, None, &[]);
        // Without a Message-ID: counted by location, never written as an id.
        s.add(None, &loc, None, &[a("hal@aol.com")]);
        assert_eq!(s.len(), 2);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("saw-others.csv");
        assert_eq!(s.write_csv(&p).unwrap(), 2);
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(
            text,
            "address,messages,first_received,last_received,message_ids\n\
             gina@icloud.com,1,2019-11-01T09:00:00Z,2019-11-01T09:00:00Z,m1@x\n\
             hal@aol.com,3,2019-11-01T09:00:00Z,2019-11-01T10:00:00Z,m1@x;m2@x\n"
        );
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
