//! Loading `leakaudit.toml` / `--config` into the organisation settings and the rule pack.
//! OWNER: policy helper. Shared by `check`, `scan`, `affected` and `incident`.
//!
//! Precedence: command-line flags over the config file over the built-in defaults. Without
//! `--config`, `./leakaudit.toml` is used when it exists.

use anyhow::Context;
use leakaudit_policy::{OrgConfig, RuleError, RulePack, RulesMode};
use leakaudit_scanner::{ArchiveKind, Org};
use std::path::{Path, PathBuf};

/// The config file in the working directory.
pub const DEFAULT_CONFIG: &str = "leakaudit.toml";

/// `--config FILE`, else `./leakaudit.toml` if present, else the defaults.
pub fn load_config(config: Option<&Path>) -> anyhow::Result<OrgConfig> {
    let path: Option<PathBuf> = match config {
        Some(p) => Some(p.to_path_buf()),
        None => Some(PathBuf::from(DEFAULT_CONFIG)).filter(|p| p.is_file()),
    };
    match path {
        // The error already says file:line:col.
        Some(p) => OrgConfig::load(&p).map_err(|e| anyhow::anyhow!("{e}")),
        None => Ok(OrgConfig::default()),
    }
}

/// The configuration with the command-line overrides applied, and the organisation built
/// from it. `cli_internal` adds internal domains; `cli_kind` replaces the archive kind.
pub fn load_org(
    config: Option<&Path>,
    cli_internal: &[String],
    cli_kind: Option<ArchiveKind>,
) -> anyhow::Result<(OrgConfig, Org)> {
    let mut cfg = load_config(config)?;
    for d in cli_internal {
        anyhow::ensure!(
            leakaudit_scanner::address::canonical_domain(d).is_some() && !d.contains('@'),
            "--internal-domain {d:?} is not a valid domain"
        );
        cfg.internal_domains.push(d.clone());
    }
    if let Some(k) = cli_kind {
        cfg.archive_kind = k;
    }
    let org = cfg.org();
    Ok((cfg, org))
}

/// Every rule error, one per line (`file:line:col: message`).
pub fn format_rule_errors(errs: &[RuleError]) -> String {
    errs.iter()
        .map(|e| format!("  {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The rule pack: `--rules DIR` (or the config's `rules_dir`) with `--rules-mode` (or the
/// config's), else the built-in pack.
pub fn load_pack(
    cfg: &OrgConfig,
    cli_rules: Option<&Path>,
    cli_mode: Option<RulesMode>,
) -> anyhow::Result<RulePack> {
    let dir = cli_rules.or(cfg.rules_dir.as_deref());
    let mode = cli_mode.unwrap_or(cfg.rules_mode);
    RulePack::resolve(dir, mode).map_err(|errs| {
        anyhow::anyhow!(
            "{} error{} in rule files:\n{}",
            errs.len(),
            if errs.len() == 1 { "" } else { "s" },
            format_rule_errors(&errs)
        )
    })
}

/// The engine for a configuration (severity overrides must name rules of the pack).
pub fn load_engine(
    cfg: &OrgConfig,
    org: Org,
    cli_rules: Option<&Path>,
    cli_mode: Option<RulesMode>,
) -> anyhow::Result<leakaudit_policy::Engine> {
    let pack = load_pack(cfg, cli_rules, cli_mode)?;
    leakaudit_policy::Engine::try_new(pack, org, &cfg.severity_overrides)
        .context("in severity_overrides of the configuration")
}
