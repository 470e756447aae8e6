//! The run configuration: the shared argument groups, `leakaudit.toml` (or `--config FILE`)
//! and the built-in defaults resolved once into validated settings, from which every command
//! builds its library objects (organisation, rule engine, scanner).
//!
//! Precedence: command-line flags over the config file over the built-in defaults. Without
//! `--config`, `./leakaudit.toml` is used when it exists.

use crate::args::{FormatArg, OrgArgs, ReadArgs, RulesArgs};
use leakaudit_policy::config::ConfigFile;
use leakaudit_policy::{Auditor, Engine, OrgConfig, RuleError, RulePack, Severity};
use leakaudit_scanner::scan::{ScanOptions, Scanner};
use leakaudit_scanner::Org;
use std::path::{Path, PathBuf};

/// The config file in the working directory.
pub const DEFAULT_CONFIG: &str = "leakaudit.toml";

/// Settings shared by every command that reads archives or evaluates rules.
pub struct RunConfig {
    /// The configuration file with the command-line overrides applied.
    pub cfg: OrgConfig,
    /// The organisation built from it.
    pub org: Org,
    /// Where the configuration came from, for messages (`None`: built-in defaults).
    pub config_path: Option<PathBuf>,
    /// The file itself, read once: every section is parsed from this text.
    file: Option<ConfigFile>,
    rules: RulesArgs,
    read: ReadArgs,
}

impl RunConfig {
    /// Loads the configuration and applies the organisation flags; validates them.
    pub fn resolve(org: &OrgArgs, rules: &RulesArgs, read: &ReadArgs) -> anyhow::Result<Self> {
        let config_path: Option<PathBuf> = match &org.config {
            Some(p) => Some(p.clone()),
            None => Some(PathBuf::from(DEFAULT_CONFIG)).filter(|p| p.is_file()),
        };
        let file = config_path.as_deref().map(ConfigFile::read).transpose()?;
        let mut cfg = match &file {
            // The error already says file:line:col.
            Some(f) => OrgConfig::from_file(f)?,
            None => OrgConfig::default(),
        };
        for d in &org.internal_domains {
            anyhow::ensure!(
                leakaudit_scanner::address::canonical_domain(d).is_some() && !d.contains('@'),
                "--internal-domain {d:?} is not a valid domain"
            );
            cfg.internal_domains.push(d.clone());
        }
        if let Some(k) = org.archive_kind {
            cfg.archive_kind = k.into();
        }
        if let Some(n) = read.threads {
            anyhow::ensure!(n >= 1, "--threads must be at least 1");
        }
        let org = cfg.org();
        Ok(RunConfig {
            cfg,
            org,
            config_path,
            file,
            rules: rules.clone(),
            read: read.clone(),
        })
    }

    /// The rule pack: `--rules DIR` (or the config's `rules_dir`) with `--rules-mode` (or the
    /// config's), else the built-in pack.
    pub fn pack(&self) -> anyhow::Result<RulePack> {
        let dir = self
            .rules
            .rules
            .as_deref()
            .or(self.cfg.rules_dir.as_deref());
        let mode = self.rules.rules_mode.unwrap_or(self.cfg.rules_mode);
        RulePack::resolve(dir, mode).map_err(|errs| {
            anyhow::anyhow!(
                "{} error{} in rule files:\n{}",
                errs.len(),
                if errs.len() == 1 { "" } else { "s" },
                format_rule_errors(&errs)
            )
        })
    }

    /// The policy engine (severity overrides must name rules of the pack).
    pub fn engine(&self) -> anyhow::Result<Engine> {
        let path = self.config_path.as_ref().map(|p| p.display().to_string());
        Ok(leakaudit_policy::audit::engine(
            self.pack()?,
            &self.cfg,
            path.as_deref(),
        )?)
    }

    /// The triage thresholds of the pack (checked as [`RunConfig::engine`] checks it, without
    /// compiling the content rules).
    pub fn thresholds(&self) -> anyhow::Result<leakaudit_policy::triage::Thresholds> {
        Ok(leakaudit_policy::audit::thresholds(
            &self.pack()?,
            &self.cfg,
        )?)
    }

    /// The gate's auditor: the engine and `fail_on` (the flag's, else the configuration's,
    /// else the library default).
    pub fn auditor(&self, fail_on: Option<Severity>) -> anyhow::Result<Auditor> {
        Ok(Auditor::new(self.engine()?, fail_on, &self.cfg))
    }

    /// The remediation tables (`[accounts]`, `[notifications]`) of the configuration file.
    pub fn settings(&self) -> anyhow::Result<leakaudit_remediation::settings::Settings> {
        match &self.config_path {
            Some(_) => match &self.file {
                Some(f) => Ok(leakaudit_remediation::settings::Settings::from_text(
                    &f.path, &f.text,
                )?),
                None => Ok(Default::default()),
            },
            None => Ok(Default::default()),
        }
    }

    /// The scanner for the read options.
    pub fn scanner(&self) -> Scanner {
        Scanner::new(ScanOptions {
            format: self.read.input_format.and_then(FormatArg::container),
            journal: self.read.input_format == Some(FormatArg::Journal),
            threads: self.read.threads,
            ..ScanOptions::default()
        })
    }
}

/// Every rule error, one per line (`file:line:col: message`).
pub fn format_rule_errors(errs: &[RuleError]) -> String {
    errs.iter()
        .map(|e| format!("  {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `path` unless it is `-` (standard output).
pub fn file_or_stdout(path: Option<&Path>) -> Option<&Path> {
    path.filter(|p| *p != Path::new("-"))
}

/// `[smtp]` of `leakaudit.toml`: the relay `remediate send` delivers to. Flags override it;
/// the password is never in it (`credentials` names a file, or the environment holds it).
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// `host:port`.
    pub server: Option<String>,
    /// `starttls`, `tls` or `none`.
    pub tls: Option<String>,
    /// A file with the user on its first line and the password on its second (mode 0600),
    /// relative to the config file.
    pub credentials: Option<PathBuf>,
    /// Extra trusted CA certificates (PEM), relative to the config file.
    pub ca: Option<PathBuf>,
    /// `N/s` or `N/m`.
    pub rate: Option<String>,
    pub timeout_secs: Option<u64>,
}

/// Reads `[smtp]` from the configuration file `remediate send` uses (`--config`, else
/// `./leakaudit.toml` when present); errors say file:line:col.
pub fn load_smtp(run: &RunConfig) -> anyhow::Result<SmtpConfig> {
    #[derive(serde::Deserialize)]
    struct File {
        #[serde(default)]
        smtp: Option<SmtpConfig>,
    }
    let Some(f) = &run.file else {
        return Ok(SmtpConfig::default());
    };
    let file: File = toml::from_str(&f.text).map_err(|e| at(f, "smtp", &e))?;
    let mut smtp = file.smtp.unwrap_or_default();
    for p in [&mut smtp.credentials, &mut smtp.ca].into_iter().flatten() {
        *p = f.resolve(p);
    }
    Ok(smtp)
}

/// A TOML error in table `[name]` of the configuration file, at file:line:col.
fn at(f: &ConfigFile, name: &str, e: &toml::de::Error) -> anyhow::Error {
    let text = f.text.as_str();
    let off = e.span().map_or(0, |s| s.start).min(text.len());
    let line = text[..off].matches('\n').count() + 1;
    let col = off - text[..off].rfind('\n').map_or(0, |i| i + 1) + 1;
    anyhow::anyhow!(
        "{}:{line}:{col}: [{name}]: {}",
        f.path.display(),
        e.message().trim()
    )
}

/// `[guard]` of `leakaudit.toml`: the settings of `guard smtp` (its flags override them).
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardToml {
    pub listen: Option<std::net::SocketAddr>,
    pub upstream: Option<std::net::SocketAddr>,
    /// `reject` or `monitor`.
    pub on_violation: Option<String>,
    /// `tempfail` or `reject`.
    pub on_unaudited: Option<String>,
    pub max_sessions: Option<usize>,
    pub max_size: Option<usize>,
    #[serde(default)]
    pub allow_clients: Vec<ipnet::IpNet>,
    /// Relative to the config file.
    pub verdict_log: Option<PathBuf>,
    pub show_addresses: Option<bool>,
}

/// Reads `[guard]` (see [`load_smtp`] for where the file is); errors say file:line:col.
pub fn load_guard(run: &RunConfig) -> anyhow::Result<GuardToml> {
    #[derive(serde::Deserialize)]
    struct File {
        #[serde(default)]
        guard: Option<GuardToml>,
    }
    let Some(f) = &run.file else {
        return Ok(GuardToml::default());
    };
    let file: File = toml::from_str(&f.text).map_err(|e| at(f, "guard", &e))?;
    let mut guard = file.guard.unwrap_or_default();
    if let Some(p) = guard.verdict_log.as_mut() {
        *p = f.resolve(p);
    }
    Ok(guard)
}
