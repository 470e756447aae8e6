//! leakaudit-policy: rule files, their validation, evaluation of messages into findings, and
//! the gate's outputs (baseline, SARIF, JUnit, human and JSON reports).
//!
//! Flow: [`RulePack`] (built-in or `--rules DIR`) + [`OrgConfig`] -> [`Engine`];
//! `Engine::evaluate(&Message)` -> [`Evaluation`] (exposure + findings) on worker threads;
//! the renderers take [`report::MessageReport`]s in archive order.
#![cfg_attr(test, allow(clippy::print_stdout, clippy::print_stderr))]

pub mod allow;
pub mod archive;
pub mod audit;
pub mod baseline;
pub mod config;
pub mod content;
pub mod engine;
pub mod error;
pub mod finding;
pub mod fingerprint;
pub mod fixtures;
pub mod junit;
pub mod orgview;
pub mod pack;
pub mod quoted;
pub mod raw;
pub mod records;
pub mod redact;
pub mod report;
pub mod rules;
pub mod sarif;
pub mod severity;
pub mod triage;

pub use audit::{Auditor, Gate, Outcome, Verdict};
pub use config::OrgConfig;
pub use engine::{Engine, Evaluation};
pub use error::{ConfigError, RuleError};
pub use finding::{Finding, Severity};
pub use pack::{Rule, RuleInfo, RulePack, RulesMode};
pub use report::MessageReport;
