//! The audit as a library: what `leakaudit check` decides, callable by every entry point (the
//! CLI, the SMTP guard, the Python package, the Spark job).
//!
//! * [`Auditor`]: built once from the run configuration (rules, organisation, severity
//!   overrides, `fail_on`); [`Auditor::verdict`] answers "what is wrong with these bytes"
//!   exactly as `check` answers it for a one-message file: the gate profile, the same rules,
//!   allowlists, severities and fingerprints.
//! * [`Gate`]: the decision over a whole run: `fail_on` (default [`DEFAULT_FAIL_ON`]), the
//!   minimum number of messages, a message not fully audited is an error, the baseline (or
//!   writing one), and the [`Outcome`] whose exit code is the contract (0 clean, 1 violation,
//!   2 error).
//!
//! The history-based ranking of an archive audit (profile `audit`) is not here yet: it runs in
//! the CLI's evaluation pass (`crates/cli/src/evaluate.rs`) and moves next.

use crate::baseline::Baseline;
use crate::config::OrgConfig;
use crate::error::ConfigError;
use crate::pack::RulePack;
use crate::report::MessageReport;
use crate::triage::TriageContext;
use crate::{Engine, Evaluation, Finding, Severity};
use leakaudit_scanner::{Location, Message, Problem, ProblemKind, ProblemLevel};

/// `fail_on` when neither the caller nor the configuration sets it: any real exposure of
/// strangers (high) or a secret (critical) fails; medium and below are reported only.
pub const DEFAULT_FAIL_ON: Severity = Severity::High;

/// Why an [`Auditor`] cannot be built: each problem of the configuration, with file, line
/// and column where it has them.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{} error{} in the configuration:\n{}", .0.len(), if .0.len() == 1 { "" } else { "s" }, lines(.0))]
    Config(Vec<ConfigError>),
    #[error("in severity_overrides{}: {source}", .path.as_deref().map(|p| format!(" of {p}")).unwrap_or_default())]
    Overrides {
        path: Option<String>,
        source: crate::engine::UnknownRule,
    },
}

fn lines(errs: &[ConfigError]) -> String {
    errs.iter()
        .map(|e| format!("  {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The engine of a run: `pack` under `cfg` (organisation, severity overrides). Every override
/// naming no rule is reported at once, with its place in the file.
pub fn engine(pack: RulePack, cfg: &OrgConfig, path: Option<&str>) -> Result<Engine, AuditError> {
    cfg.check_overrides(&pack).map_err(AuditError::Config)?;
    Engine::try_new(pack, cfg.org(), &cfg.severity_overrides).map_err(|source| {
        AuditError::Overrides {
            path: path.map(str::to_string),
            source,
        }
    })
}

/// The triage thresholds [`engine`] would give, checked the same way (the configuration's
/// overrides must name rules of the pack), without compiling the content rules: `scan` reads
/// only these of the pack (building the whole engine was a fifth of a small scan's time).
pub fn thresholds(
    pack: &RulePack,
    cfg: &OrgConfig,
) -> Result<crate::triage::Thresholds, AuditError> {
    // The check that makes [`Engine::try_new`]'s own unknown-rule error unreachable here.
    cfg.check_overrides(pack).map_err(AuditError::Config)?;
    Ok(Engine::thresholds_of(pack))
}

/// How a message, or a run, ends: the exit-code contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Clean,
    Violation,
    /// Something could not be audited: never clean, whatever was found in the rest.
    Error,
}

impl Outcome {
    /// 0 clean, 1 violation, 2 error.
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Clean => 0,
            Outcome::Violation => 1,
            Outcome::Error => 2,
        }
    }
}

/// What is wrong with one message.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Verdict {
    /// Every finding (rule id, severity, reason, fingerprint), in rule order.
    pub findings: Vec<Finding>,
    /// The threshold the verdict was taken against.
    pub fail_on: Severity,
    /// Findings at or above `fail_on`.
    pub failing: usize,
    /// A decoding limit kept the content rules from seeing all of it: which.
    pub not_fully_audited: Option<String>,
    /// The message could not be read (why): it has no findings and is not clean.
    pub unreadable: Option<String>,
    /// The message's Message-ID, when it has one.
    pub message_id: Option<String>,
}

impl Verdict {
    pub fn outcome(&self) -> Outcome {
        if self.unreadable.is_some() || self.not_fully_audited.is_some() {
            Outcome::Error
        } else if self.failing > 0 {
            Outcome::Violation
        } else {
            Outcome::Clean
        }
    }

    /// Clean: nothing at or above `fail_on`, and every byte audited.
    pub fn passed(&self) -> bool {
        self.outcome() == Outcome::Clean
    }
}

/// The audit of a run's configuration, built once, used from any number of threads.
pub struct Auditor {
    engine: Engine,
    fail_on: Severity,
}

impl Auditor {
    /// `fail_on`: the caller's, else the configuration's, else [`DEFAULT_FAIL_ON`].
    pub fn new(engine: Engine, fail_on: Option<Severity>, cfg: &OrgConfig) -> Auditor {
        Auditor {
            engine,
            fail_on: fail_on.or(cfg.fail_on).unwrap_or(DEFAULT_FAIL_ON),
        }
    }

    /// The built-in rules under `cfg`.
    pub fn builtin(cfg: &OrgConfig) -> Result<Auditor, AuditError> {
        Ok(Auditor::new(
            engine(RulePack::builtin(), cfg, None)?,
            None,
            cfg,
        ))
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn fail_on(&self) -> Severity {
        self.fail_on
    }

    /// The gate's evaluation of a parsed message (no history: each message on its own).
    pub fn evaluate(&self, msg: &Message<'_>) -> Evaluation {
        self.engine.evaluate_with(msg, &TriageContext::gate())
    }

    /// The verdict on one message's bytes (a rendered `.eml`, an SMTP DATA payload).
    pub fn verdict(&self, raw: &[u8]) -> Verdict {
        match Message::from_bytes(raw) {
            Ok(msg) => self.verdict_of(&msg),
            Err(p) => Verdict {
                findings: Vec::new(),
                fail_on: self.fail_on,
                failing: 0,
                not_fully_audited: None,
                unreadable: Some(p.reason),
                message_id: None,
            },
        }
    }

    /// The verdict on a parsed message.
    pub fn verdict_of(&self, msg: &Message<'_>) -> Verdict {
        let eval = self.evaluate(msg);
        Verdict {
            failing: eval
                .findings
                .iter()
                .filter(|f| f.severity >= self.fail_on)
                .count(),
            findings: eval.findings,
            fail_on: self.fail_on,
            not_fully_audited: eval.not_fully_audited,
            unreadable: None,
            message_id: msg.envelope.message_id.clone(),
        }
    }
}

/// The gate's decision over a run (`check`): built from the configuration, fed what the run
/// saw.
#[derive(Debug, Clone)]
pub struct Gate {
    pub fail_on: Severity,
    /// Fewer audited messages than this is an error (a renderer that produced nothing must
    /// not pass); 0 turns the check, and the "nothing read" error, off.
    pub min_messages: u64,
    /// Findings it lists (by fingerprint) are suppressed.
    pub baseline: Option<Baseline>,
    /// The run records every finding as the new baseline: all are known, the gate passes
    /// (errors still count).
    pub write_baseline: bool,
}

/// What [`Gate::settle`] did to the findings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settled {
    pub suppressed: usize,
    /// Baseline entries that matched no finding (fixed, or the baseline is stale).
    pub unmatched: Vec<crate::baseline::BaselineEntry>,
}

impl Gate {
    /// A problem as the gate counts it: a message not fully audited cannot be called clean,
    /// so it is an error.
    pub fn level(p: &Problem) -> ProblemLevel {
        if p.kind == ProblemKind::NotFullyAudited {
            ProblemLevel::Error
        } else {
            p.level
        }
    }

    /// The run's own errors: nothing read at all (`read_nothing`: why), or fewer messages
    /// than the minimum.
    pub fn count_errors(&self, messages: u64, read_nothing: Option<String>) -> Vec<String> {
        let mut errors = Vec::new();
        if self.min_messages > 0 {
            errors.extend(read_nothing);
        }
        if messages > 0 && messages < self.min_messages {
            errors.push(format!(
                "{messages} message(s) audited, fewer than --min-messages {}",
                self.min_messages
            ));
        }
        errors
    }

    /// Applies the baseline (or, when writing one, clears every finding: they are the
    /// baseline now).
    pub fn settle(&self, reports: &mut [MessageReport]) -> Settled {
        if self.write_baseline {
            for r in reports.iter_mut() {
                r.findings.clear();
            }
            return Settled::default();
        }
        match &self.baseline {
            Some(b) => {
                let o = b.apply(reports);
                Settled {
                    suppressed: o.suppressed,
                    unmatched: o.unmatched,
                }
            }
            None => Settled::default(),
        }
    }

    /// The run's outcome: any error wins, then any finding at or above `fail_on`.
    pub fn outcome(&self, errors: usize, reports: &[MessageReport]) -> Outcome {
        if errors > 0 {
            Outcome::Error
        } else if reports
            .iter()
            .flat_map(|r| &r.findings)
            .any(|f| f.severity >= self.fail_on)
        {
            Outcome::Violation
        } else {
            Outcome::Clean
        }
    }
}

/// The `not-fully-audited` problem of a message: a warning, which the [`Gate`] counts as an
/// error (`Gate::level`).
pub fn not_fully_audited(location: &Location, why: &str) -> Problem {
    Problem {
        location: location.clone(),
        level: ProblemLevel::Warning,
        kind: ProblemKind::NotFullyAudited,
        reason: format!("not fully audited: {why}; the content rules did not see the rest"),
        detail_code: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEAK: &[u8] = b"From: shop@shop.example\r\nTo: a@gmail.com, b@yahoo.com, c@outlook.com\r\nSubject: News\r\nMessage-ID: <m1@shop.example>\r\n\r\nHello\r\n";
    const CLEAN: &[u8] =
        b"From: shop@shop.example\r\nTo: a@gmail.com\r\nSubject: News\r\nMessage-ID: <m2@shop.example>\r\n\r\nHello\r\n";

    #[test]
    fn a_visible_list_of_strangers_fails_the_default_threshold() {
        let a = Auditor::builtin(&OrgConfig::default()).unwrap();
        assert_eq!(a.fail_on(), DEFAULT_FAIL_ON);
        let v = a.verdict(LEAK);
        assert_eq!(v.outcome(), Outcome::Violation, "{v:?}");
        let f = &v.findings[0];
        assert_eq!(f.rule_id, "recipient-exposure");
        assert!(f.severity >= Severity::High && f.fingerprint.len() == 64);
        assert!(a.verdict(CLEAN).passed());
    }

    #[test]
    fn unreadable_bytes_are_an_error_never_clean() {
        let a = Auditor::builtin(&OrgConfig::default()).unwrap();
        let v = a.verdict(b"\x00\x01 not a header\r\n");
        assert_eq!(v.outcome(), Outcome::Error, "{v:?}");
        assert!(v.unreadable.is_some() && !v.passed());
    }

    #[test]
    fn fail_on_comes_from_the_caller_then_the_configuration() {
        let cfg = OrgConfig {
            fail_on: Some(Severity::Critical),
            ..OrgConfig::default()
        };
        let e = || engine(RulePack::builtin(), &cfg, None).unwrap();
        assert_eq!(Auditor::new(e(), None, &cfg).fail_on(), Severity::Critical);
        let low = Auditor::new(e(), Some(Severity::Low), &cfg);
        assert_eq!(low.fail_on(), Severity::Low);
        assert_eq!(
            Auditor::new(e(), None, &cfg).verdict(LEAK).outcome(),
            Outcome::Clean,
            "high is below critical"
        );
    }

    #[test]
    fn the_gate_counts_a_short_run_and_settles_a_written_baseline() {
        let gate = Gate {
            fail_on: Severity::High,
            min_messages: 3,
            baseline: None,
            write_baseline: true,
        };
        assert_eq!(gate.count_errors(2, None).len(), 1);
        assert_eq!(gate.count_errors(0, Some("nothing read".into())).len(), 1);
        assert!(gate.count_errors(3, None).is_empty());
        let a = Auditor::builtin(&OrgConfig::default()).unwrap();
        let mut reports = vec![MessageReport {
            location: Location::file("t.eml"),
            message_id: None,
            subject: None,
            findings: a.verdict(LEAK).findings,
        }];
        assert_eq!(gate.outcome(0, &reports), Outcome::Violation);
        gate.settle(&mut reports);
        assert_eq!(gate.outcome(0, &reports), Outcome::Clean);
        assert_eq!(gate.outcome(1, &reports), Outcome::Error);
    }
}
