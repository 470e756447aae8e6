//! `leakaudit.toml`: the organisation's settings (library side; the CLI finds the file).
//!
//! ```toml
//! internal_domains = ["example.com", "example.org"]
//! archive_kind = "auto"               # default; or "transmitted", "sent"
//! sender_domain_internal = true
//! consumer_domains_extra = ["mail.example.net"]
//! rules_dir = "rules"                 # relative to this file
//! rules_mode = "extend"               # or "replace"
//! fail_on = "high"
//! [severity_overrides]
//! bcc-header-leak = "critical"
//! [executor]                          # read by the CLI (remediate apply, incident --apply)
//! kind = "webhook"
//! ```
//! Unknown keys are errors with file, line and column.

use crate::error::{line_col, ConfigError};
use crate::finding::Severity;
use crate::pack::{RulePack, RulesMode};
use leakaudit_scanner::address::canonical_domain;
use leakaudit_scanner::{ArchiveKind, Org};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::de::{DeTable, DeValue};

/// The pack's rule id closest to `id` when it is a likely typo (at most 2 edits away).
fn nearest_id<'p>(pack: &'p RulePack, id: &str) -> Option<&'p str> {
    pack.rules
        .iter()
        .map(|r| (strsim::levenshtein(id, &r.info.id), r.info.id.as_str()))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, n)| n)
}

/// The organisation's settings, as loaded (all optional in the file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OrgConfig {
    /// The organisation's own domains (the From domain of each message is internal too,
    /// unless `sender_domain_internal = false`).
    pub internal_domains: Vec<String>,
    pub archive_kind: ArchiveKind,
    pub sender_domain_internal: bool,
    /// Consumer providers to add to the shipped list (each address there is its own party).
    pub consumer_domains_extra: Vec<String>,
    /// Rules folder, relative to the config file.
    pub rules_dir: Option<PathBuf>,
    pub rules_mode: RulesMode,
    /// Default for `check --fail-on`.
    pub fail_on: Option<Severity>,
    pub severity_overrides: BTreeMap<String, Severity>,
    /// How exposures are ranked: `gate` or `audit` (default: the command's own).
    pub profile: Option<crate::triage::Profile>,
    /// Addresses of the organisation's own people outside its domains (home mailboxes):
    /// the triage never counts them as a party.
    pub aliases: Vec<String>,
    /// The triage's saved history (`--history`), relative to this file.
    pub history: Option<PathBuf>,
    /// Affected users and plans take exposures at or above this severity (default medium).
    pub min_severity: Option<Severity>,
    /// `[executor]`: who performs the remediation's resets. Kept as written: the CLI, which
    /// knows the executors, reads and validates it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executor: Option<toml::Table>,
    /// `[smtp]`: read and validated by the CLI's `remediate send` (the policy does not use it).
    #[serde(skip_serializing)]
    pub smtp: Option<OtherTable>,
    /// `[accounts]` and `[notifications]`: remediation settings the CLI reads (and checks)
    /// itself; accepted here so that one file holds them.
    #[serde(skip_serializing)]
    pub accounts: Option<OtherTable>,
    #[serde(skip_serializing)]
    pub notifications: Option<OtherTable>,
    /// `[guard]`: the SMTP guard's settings, read by `leakaudit guard smtp`.
    #[serde(skip_serializing)]
    pub guard: Option<OtherTable>,
    /// Where each `severity_overrides` key was written (file, line, column), so an id that
    /// names no rule can be reported there ([`OrgConfig::check_overrides`]).
    #[serde(skip)]
    pub override_positions: BTreeMap<String, (PathBuf, usize, usize)>,
}

/// A table of `leakaudit.toml` that another part of leakaudit reads and validates itself:
/// accepted here so that `deny_unknown_fields` still catches misspelt keys everywhere else.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OtherTable;

impl<'de> Deserialize<'de> for OtherTable {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| OtherTable)
    }
}

impl Default for OrgConfig {
    fn default() -> Self {
        OrgConfig {
            internal_domains: Vec::new(),
            archive_kind: ArchiveKind::default(),
            sender_domain_internal: true,
            consumer_domains_extra: Vec::new(),
            rules_dir: None,
            rules_mode: RulesMode::Extend,
            fail_on: None,
            severity_overrides: BTreeMap::new(),
            profile: None,
            aliases: Vec::new(),
            history: None,
            min_severity: None,
            executor: None,
            smtp: None,
            accounts: None,
            notifications: None,
            guard: None,
            override_positions: BTreeMap::new(),
        }
    }
}

/// `leakaudit.toml` as read, once: every section's reader (the organisation and rules here,
/// `[accounts]`/`[notifications]` in remediation, `[smtp]`, `[guard]` and `[executor]` in the
/// CLI) parses its typed section from this text, so every error has the file, line and column.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    pub path: PathBuf,
    pub text: String,
}

impl ConfigFile {
    pub fn read(path: &Path) -> Result<ConfigFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(ConfigFile {
            path: path.to_path_buf(),
            text,
        })
    }

    /// A path written in the file, relative to the file's folder.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_relative() {
            self.path.parent().unwrap_or(Path::new(".")).join(p)
        } else {
            p.to_path_buf()
        }
    }
}

impl OrgConfig {
    /// Reads and validates `path`. `rules_dir` is made relative to the file's folder.
    pub fn load(path: &Path) -> Result<OrgConfig, ConfigError> {
        OrgConfig::from_file(&ConfigFile::read(path)?)
    }

    /// The organisation settings of a file already read.
    pub fn from_file(file: &ConfigFile) -> Result<OrgConfig, ConfigError> {
        let mut cfg = OrgConfig::parse(&file.path, &file.text)?;
        for p in [&mut cfg.rules_dir, &mut cfg.history].into_iter().flatten() {
            *p = file.resolve(p);
        }
        Ok(cfg)
    }

    /// Parses `text` (named `path` in errors).
    pub fn parse(path: &Path, text: &str) -> Result<OrgConfig, ConfigError> {
        let invalid = |off: usize, message: String| {
            let (line, col) = line_col(text, off);
            ConfigError::Invalid {
                path: path.to_path_buf(),
                line,
                col,
                message,
            }
        };
        let mut cfg: OrgConfig = toml::from_str(text).map_err(|e| {
            invalid(
                e.span().map(|s| s.start).unwrap_or(0),
                e.message().trim().to_string(),
            )
        })?;
        for d in cfg
            .internal_domains
            .iter()
            .chain(&cfg.consumer_domains_extra)
        {
            if canonical_domain(d).is_none() || d.contains('@') {
                let off = text.find(d.as_str()).unwrap_or(0);
                return Err(invalid(off, format!("`{d}` is not a domain")));
            }
        }
        for a in &cfg.aliases {
            if leakaudit_scanner::Address::parse(a).is_none() {
                let off = text.find(a.as_str()).unwrap_or(0);
                return Err(invalid(off, format!("alias `{a}` is not an address")));
            }
        }
        // The text parsed above, so this parse succeeds; it is only read for positions.
        if let Ok(doc) = DeTable::parse(text) {
            if let Some(DeValue::Table(t)) =
                doc.get_ref().get("severity_overrides").map(|v| v.get_ref())
            {
                for (k, _) in t.iter() {
                    let (line, col) = line_col(text, k.span().start);
                    cfg.override_positions
                        .insert(k.get_ref().to_string(), (path.to_path_buf(), line, col));
                }
            }
        }
        Ok(cfg)
    }

    /// Every `severity_overrides` key that names no rule of `pack`, each with the file, line
    /// and column where it was written (a typo would otherwise silently change nothing).
    pub fn check_overrides(&self, pack: &RulePack) -> Result<(), Vec<ConfigError>> {
        let errors: Vec<ConfigError> = self
            .severity_overrides
            .keys()
            .filter(|id| pack.get(id).is_none())
            .map(|id| {
                let (path, line, col) = self
                    .override_positions
                    .get(id)
                    .cloned()
                    .unwrap_or_else(|| (PathBuf::from("severity_overrides"), 0, 0));
                let near = nearest_id(pack, id)
                    .map(|n| format!(" (did you mean `{n}`?)"))
                    .unwrap_or_default();
                ConfigError::Invalid {
                    path,
                    line,
                    col,
                    message: format!("severity override for unknown rule `{id}`{near}"),
                }
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The organisation for the exposure model: shipped defaults plus these settings.
    pub fn org(&self) -> Org {
        let mut org = Org::with_defaults();
        // Validated in `parse`; an invalid one (only possible when built in code) is skipped.
        for d in &self.internal_domains {
            org.add_internal_domain(d);
        }
        for d in &self.consumer_domains_extra {
            org.add_consumer_domain(d);
        }
        org.sender_domain_internal = self.sender_domain_internal;
        org.archive_kind = self.archive_kind;
        org
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_setting() {
        let cfg = OrgConfig::parse(
            Path::new("leakaudit.toml"),
            "internal_domains = [\"Example.COM\"]\narchive_kind = \"sent\"\nrules_mode = \"replace\"\nfail_on = \"critical\"\n[severity_overrides]\nbcc-header-leak = \"low\"\n",
        )
        .unwrap();
        assert_eq!(cfg.archive_kind, ArchiveKind::Sent);
        assert_eq!(cfg.rules_mode, RulesMode::Replace);
        assert_eq!(cfg.fail_on, Some(Severity::Critical));
        assert_eq!(cfg.severity_overrides["bcc-header-leak"], Severity::Low);
        let org = cfg.org();
        assert!(org.internal_domains.contains("example.com"));
        assert_eq!(org.archive_kind, ArchiveKind::Sent);
    }

    #[test]
    fn smtp_table_is_left_to_the_send_command() {
        let text =
            "archive_kind = \"sent\"\n[smtp]\nserver = \"mail.example.com:587\"\nanything = 1\n";
        let cfg = OrgConfig::parse(Path::new("leakaudit.toml"), text).unwrap();
        assert_eq!(cfg.smtp, Some(OtherTable));
        assert_eq!(cfg.archive_kind, ArchiveKind::Sent);
    }

    #[test]
    fn unknown_key_is_an_error_with_line() {
        let e = OrgConfig::parse(
            Path::new("leakaudit.toml"),
            "archive_kind = \"sent\"\ninternal_domain = []\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("leakaudit.toml:2:1: unknown field `internal_domain`"),
            "{e}"
        );
        let e = OrgConfig::parse(Path::new("c.toml"), "archive_kind = \"journal\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("c.toml:1:16:"), "{e}");
    }

    #[test]
    fn severity_override_typos_have_file_line_col() {
        let text = "fail_on = \"high\"\n[severity_overrides]\nbcc-header-leak = \"low\"\n\
                    sed-phrase = \"high\"\nno-such-rule = \"info\"\n";
        let cfg = OrgConfig::parse(Path::new("leakaudit.toml"), text).unwrap();
        let e: Vec<String> = cfg
            .check_overrides(&RulePack::builtin())
            .unwrap_err()
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(
            e,
            [
                "leakaudit.toml:5:1: severity override for unknown rule `no-such-rule`",
                "leakaudit.toml:4:1: severity override for unknown rule `sed-phrase` \
                 (did you mean `seed-phrase`?)",
            ]
        );
        // A bad severity value is reported where it is written.
        let e = OrgConfig::parse(
            Path::new("c.toml"),
            "[severity_overrides]\nbcc-header-leak = \"hgh\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("c.toml:2:19:"), "{e}");
        let ok = OrgConfig::parse(
            Path::new("c.toml"),
            "[severity_overrides]\nseed-phrase = \"low\"\n",
        )
        .unwrap();
        assert!(ok.check_overrides(&RulePack::builtin()).is_ok());
    }
}
