//! Baselines: known findings, suppressed by fingerprint so a CI gate can be adopted on an
//! archive that already has findings. The file holds fingerprints, rule ids and locations,
//! never evidence or addresses.

use crate::finding::Finding;
use crate::report::MessageReport;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineEntry {
    pub fingerprint: String,
    pub rule_id: String,
    /// Where it was when the baseline was written (informational; matching ignores it).
    #[serde(default)]
    pub location: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    pub version: u32,
    pub findings: Vec<BaselineEntry>,
}

#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("{path}: cannot read baseline: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{col}: invalid baseline: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        col: usize,
        message: String,
    },
}

/// What applying a baseline did.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub suppressed: usize,
    /// Entries that matched no finding (fixed, or the baseline is stale).
    pub unmatched: Vec<BaselineEntry>,
}

impl Baseline {
    pub fn from_findings<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> Baseline {
        let mut seen = BTreeMap::new();
        for f in findings {
            seen.entry(f.fingerprint.clone())
                .or_insert_with(|| BaselineEntry {
                    fingerprint: f.fingerprint.clone(),
                    rule_id: f.rule_id.clone(),
                    location: f.location.to_string(),
                });
        }
        Baseline {
            version: 1,
            findings: seen.into_values().collect(),
        }
    }

    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("baseline serialises");
        s.push('\n');
        s
    }

    pub fn parse(path: &Path, text: &str) -> Result<Baseline, BaselineError> {
        let b: Baseline = serde_json::from_str(text).map_err(|e| BaselineError::Invalid {
            path: path.to_path_buf(),
            line: e.line(),
            col: e.column(),
            message: e.to_string(),
        })?;
        if b.version != 1 {
            return Err(BaselineError::Invalid {
                path: path.to_path_buf(),
                line: 1,
                col: 1,
                message: format!("unsupported version {}", b.version),
            });
        }
        Ok(b)
    }

    pub fn load(path: &Path) -> Result<Baseline, BaselineError> {
        let text = std::fs::read_to_string(path).map_err(|source| BaselineError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Baseline::parse(path, &text)
    }

    /// Removes baselined findings from `reports`; reports entries that matched nothing.
    pub fn apply(&self, reports: &mut [MessageReport]) -> Outcome {
        let mut used: BTreeMap<&str, bool> = self
            .findings
            .iter()
            .map(|e| (e.fingerprint.as_str(), false))
            .collect();
        let mut suppressed = 0;
        for r in reports.iter_mut() {
            r.findings
                .retain(|f| match used.get_mut(f.fingerprint.as_str()) {
                    Some(u) => {
                        *u = true;
                        suppressed += 1;
                        false
                    }
                    None => true,
                });
        }
        let unmatched = self
            .findings
            .iter()
            .filter(|e| !used.get(e.fingerprint.as_str()).copied().unwrap_or(false))
            .cloned()
            .collect();
        Outcome {
            suppressed,
            unmatched,
        }
    }
}
