//! What the accumulator reads: policy [`Finding`]s (live, or saved by `check --format jsonl`),
//! `scan` records ([`ExposureRecord`]), and addresses exposed in message content.

use super::accumulator::{AffectedAccumulator, Exposed, MessageInput};
use crate::error::{Error, LineError, Result};
use leakaudit_policy::Finding;
use leakaudit_scanner::ExposureRecord;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::io::BufRead;
use std::path::Path;

/// Rule id recorded for rows that came from `scan` records.
pub const SCAN_RULE_ID: &str = "scan-exposure";
/// Longest content source kept (`attachment:` + a file name).
const MAX_SOURCE: usize = 128;

/// An address seen in a message's content and where: `body`, `attachment:clients.csv`.
/// Findings carry these as `exposed[]` entries with a `source`; a `content_exposed` list in a
/// saved finding (an older proposed shape) is still read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentExposed {
    pub address: String,
    pub source: String,
}

/// A source as written in the `fields` column: no `;` (the list separator), no control
/// characters, bounded.
pub(super) fn clean_source(s: &str) -> Cow<'_, str> {
    let bad = |c: char| c == ';' || c.is_control();
    if !s.contains(bad) && s.len() <= MAX_SOURCE {
        return Cow::Borrowed(s);
    }
    let mut out: String = s.chars().map(|c| if bad(c) { '_' } else { c }).collect();
    if out.len() > MAX_SOURCE {
        let mut end = MAX_SOURCE;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    Cow::Owned(out)
}

#[derive(Deserialize)]
struct ContentOnly {
    #[serde(default)]
    content_exposed: Vec<ContentExposed>,
}

impl AffectedAccumulator {
    /// Adds one finding: its exposed addresses, in headers (`fields`) or in the content
    /// (`source`). Findings exposing nobody only count as seen.
    pub fn add(&mut self, f: &Finding) {
        self.add_with_content(f, std::iter::empty());
    }

    /// Adds one finding with the content exposures given by the caller as
    /// `(address, source)`; the audience of a content address is every party that received
    /// the message (`f.audience_parties`, or those of another finding of the same message).
    pub fn add_with_content<'c>(
        &mut self,
        f: &Finding,
        content: impl Iterator<Item = (&'c str, &'c str)> + Clone,
    ) {
        self.count_finding();
        let has_content = content.clone().next().is_some();
        if f.exposed.is_empty() && !has_content {
            return;
        }
        // Findings without a party list (older files, hand-made): every exposed address's
        // audience is the message's party count minus one.
        let party_count = f
            .audience_parties
            .is_empty()
            .then(|| f.exposed.iter().map(|e| e.audience + 1).max())
            .flatten();
        let m = MessageInput {
            message_id: f.message_id.as_deref(),
            location: &f.location,
            date: f.date,
            rule_id: &f.rule_id,
            parties: &f.audience_parties,
            party_count,
        };
        if !f.exposed.is_empty() {
            self.add_header_exposures(&m, &f.exposed);
        }
        if has_content {
            let it = content.map(|(address, s)| Exposed {
                address,
                fields: 0,
                source: Some(clean_source(s)),
            });
            self.add_message(&m, it, &[]);
        }
    }

    /// Adds one `scan` record (no party list: the audience comes from its counts).
    pub fn add_record(&mut self, r: &ExposureRecord) {
        self.count_finding();
        if r.exposed.is_empty() {
            return;
        }
        let date = r.date_secs();
        let m: MessageInput<'_> = MessageInput {
            message_id: r.message_id.as_deref(),
            location: &r.location,
            date,
            rule_id: SCAN_RULE_ID,
            parties: &[],
            party_count: Some(r.audience_size),
        };
        self.add_header_exposures(&m, &r.exposed);
    }

    /// Reads a JSON Lines file of findings (`check --format jsonl`, typed as
    /// [`leakaudit_policy::Finding`]) and/or `scan` records ([`ExposureRecord`]). Streams the
    /// file twice: every bad line is reported with its line number and nothing is added when
    /// any line is bad; then the lines are added one at a time (nothing is held but the
    /// accumulator). Returns the number of lines added.
    pub fn add_jsonl_file(&mut self, path: &Path) -> Result<usize> {
        let mut errors = Vec::new();
        for_each_line(path, |line_no, line| {
            if let Err(reason) = line.and_then(parse_line).map(drop) {
                errors.push(LineError {
                    line: line_no,
                    reason,
                });
            }
        })?;
        if !errors.is_empty() {
            return Err(Error::BadLines {
                path: path.to_path_buf(),
                errors,
            });
        }
        let mut n = 0;
        for_each_line(path, |_, line| {
            if let Ok(item) = line.and_then(parse_line) {
                n += 1;
                match item {
                    Line::Finding(f, content) => {
                        let given = content
                            .iter()
                            .map(|c| (c.address.as_str(), c.source.as_str()));
                        self.add_with_content(&f, given);
                    }
                    Line::Record(r) => self.add_record(&r),
                }
            }
        })?;
        Ok(n)
    }
}

enum Line {
    Finding(Box<Finding>, Vec<ContentExposed>),
    Record(Box<ExposureRecord>),
}

/// A line is a finding when it has a `rule_id` key (a JSON key in a compact line is the only
/// place `"rule_id"` can occur unescaped, short of a string value equal to it), else a
/// record; the other form is tried when the first fails.
fn parse_line(line: &str) -> std::result::Result<Line, String> {
    let finding = |line: &str| {
        serde_json::from_str::<Finding>(line).map(|f| {
            let content = if line.contains("\"content_exposed\"") {
                serde_json::from_str::<ContentOnly>(line)
                    .map(|c| c.content_exposed)
                    .unwrap_or_default()
            } else {
                Vec::new()
            };
            Line::Finding(Box::new(f), content)
        })
    };
    let record = |line: &str| {
        serde_json::from_str::<ExposureRecord>(line).map(|r| Line::Record(Box::new(r)))
    };
    if line.contains("\"rule_id\"") {
        finding(line).or_else(|e| record(line).map_err(|_| format!("not a finding: {e}")))
    } else {
        record(line)
            .or_else(|e| finding(line).map_err(|_| format!("not a finding or scan record: {e}")))
    }
}

/// Calls `f` with each non-blank line, or the reason it is not text.
fn for_each_line(
    path: &Path,
    mut f: impl FnMut(u64, std::result::Result<&str, String>),
) -> Result<()> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader = std::io::BufReader::new(file);
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| Error::io(path, e))?;
        if n == 0 {
            return Ok(());
        }
        line_no += 1;
        match std::str::from_utf8(&buf) {
            Ok(line) if line.trim().is_empty() => {}
            Ok(line) => f(line_no, Ok(line.trim())),
            Err(e) => f(line_no, Err(format!("not UTF-8: {e}"))),
        }
    }
}
