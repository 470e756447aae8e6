//! The remediation policy (`rules/remediation.toml`): rules that choose actions for exposed
//! users with an account, and whether exposed addresses without one are notified
//! (`notify_unmatched`). Data, not code; validated strictly (unknown keys are errors, with
//! their line). See the shipped file for the format.

use crate::error::{Error, Result};
use crate::store::Account;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

/// The shipped default policy.
pub const BUILTIN_POLICY: &str = include_str!("../../../rules/remediation.toml");

/// An action the plan can take on an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionKind {
    ForcePasswordReset,
    HumanReview,
    Notify,
}

impl ActionKind {
    pub const ALL: [ActionKind; 3] = [
        ActionKind::ForcePasswordReset,
        ActionKind::HumanReview,
        ActionKind::Notify,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::ForcePasswordReset => "force-password-reset",
            ActionKind::HumanReview => "human-review",
            ActionKind::Notify => "notify",
        }
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Conditions of a rule; all given ones must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct When {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_2fa: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance_gt: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance_gte: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance_lt: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_logins_gte: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_messages: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_audience: Option<usize>,
}

/// One policy rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub id: String,
    pub action: ActionKind,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub when: When,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    version: u32,
    #[serde(default = "yes")]
    notify_unmatched: bool,
    #[serde(default)]
    rule: Vec<Rule>,
}

fn yes() -> bool {
    true
}

/// What the policy sees about one exposed account.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub account: &'a Account,
    pub messages: usize,
    pub audience: usize,
}

/// A validated policy.
#[derive(Debug, Clone, PartialEq)]
pub struct RemediationPolicy {
    pub rules: Vec<Rule>,
    /// Exposed addresses without an account get a notify-only action (`notify_unmatched`,
    /// default true: they are data subjects the breach notice is owed to).
    pub notify_unmatched: bool,
    /// Hex SHA-256 of the policy file's bytes, recorded in the plan.
    pub digest: String,
    /// Where it came from (`builtin` or the path).
    pub source: String,
}

fn line_of(text: &str, offset: usize) -> u64 {
    text[..offset.min(text.len())].matches('\n').count() as u64 + 1
}

impl RemediationPolicy {
    /// The shipped default (`rules/remediation.toml`).
    pub fn builtin() -> RemediationPolicy {
        Self::parse(Path::new("builtin:rules/remediation.toml"), BUILTIN_POLICY)
            .expect("the shipped remediation policy is valid (tested)")
    }

    pub fn load(path: &Path) -> Result<RemediationPolicy> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(path, &text)
    }

    /// Parses and validates; the error names the file and line.
    pub fn parse(path: &Path, text: &str) -> Result<RemediationPolicy> {
        let err = |line: Option<u64>, reason: String| Error::Parse {
            path: path.to_path_buf(),
            line,
            reason,
        };
        let file: PolicyFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start));
            err(line, e.message().to_string())
        })?;
        if file.version != 1 {
            return Err(err(
                None,
                format!("unsupported version {} (this build reads 1)", file.version),
            ));
        }
        if file.rule.is_empty() {
            return Err(err(None, "no [[rule]] defined".into()));
        }
        let mut ids = BTreeSet::new();
        for r in &file.rule {
            let line = text
                .find(&format!("\"{}\"", r.id))
                .map(|o| line_of(text, o));
            if r.id.is_empty()
                || !r
                    .id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                return Err(err(
                    line,
                    format!(
                        "rule id `{}` must be non-empty lowercase letters, digits and '-'",
                        r.id
                    ),
                ));
            }
            if !ids.insert(r.id.clone()) {
                return Err(err(line, format!("duplicate rule id `{}`", r.id)));
            }
            for v in [r.when.balance_gt, r.when.balance_gte, r.when.balance_lt]
                .into_iter()
                .flatten()
            {
                if !v.is_finite() {
                    return Err(err(
                        line,
                        format!("rule `{}`: balance thresholds must be finite", r.id),
                    ));
                }
            }
        }
        let digest = hex::encode(sha2::Sha256::digest(text.as_bytes()));
        Ok(RemediationPolicy {
            rules: file.rule,
            notify_unmatched: file.notify_unmatched,
            digest,
            source: path.display().to_string(),
        })
    }

    /// For each action, the first rule that fires on `facts`, with a reason.
    pub fn decide(&self, facts: &Facts<'_>) -> Vec<(ActionKind, &Rule, String)> {
        let mut out: Vec<(ActionKind, &Rule, String)> = Vec::new();
        for rule in &self.rules {
            if out.iter().any(|(k, _, _)| *k == rule.action) {
                continue;
            }
            if let Some(reason) = matches(&rule.when, facts) {
                out.push((rule.action, rule, reason));
            }
        }
        out.sort_by_key(|(k, _, _)| *k);
        out
    }
}

/// `Some(reason)` when every condition holds; the reason lists the facts that made it hold.
fn matches(w: &When, f: &Facts<'_>) -> Option<String> {
    let a = f.account;
    let mut why = vec![format!(
        "exposed in {} message(s) to {} other part{}",
        f.messages,
        f.audience,
        if f.audience == 1 { "y" } else { "ies" }
    )];
    if let Some(want) = w.has_2fa {
        if a.has_2fa != want {
            return None;
        }
        why.push(if want { "has 2FA" } else { "no 2FA" }.into());
    }
    if let Some(t) = w.balance_gt {
        if a.balance <= t {
            return None;
        }
        why.push(format!("balance {} > {t}", a.balance));
    }
    if let Some(t) = w.balance_gte {
        if a.balance < t {
            return None;
        }
        why.push(format!("balance {} >= {t}", a.balance));
    }
    if let Some(t) = w.balance_lt {
        if a.balance >= t {
            return None;
        }
        why.push(format!("balance {} < {t}", a.balance));
    }
    if let Some(t) = w.failed_logins_gte {
        match a.failed_logins {
            Some(n) if n >= t => why.push(format!("{n} failed logins since the incident >= {t}")),
            _ => return None,
        }
    }
    if let Some(t) = w.min_messages {
        if f.messages < t {
            return None;
        }
    }
    if let Some(t) = w.min_audience {
        if f.audience < t {
            return None;
        }
    }
    Some(why.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acct(has_2fa: bool, balance: f64, failed: Option<u32>) -> Account {
        Account {
            id: "a".into(),
            email: "a@example.com".into(),
            has_2fa,
            balance,
            locale: "en".into(),
            failed_logins: failed,
            failed_logins_since: None,
            has_password: true,
            password_reset_required: false,
            review_required: false,
        }
    }

    fn kinds(p: &RemediationPolicy, a: &Account) -> Vec<ActionKind> {
        p.decide(&Facts {
            account: a,
            messages: 1,
            audience: 3,
        })
        .into_iter()
        .map(|(k, _, _)| k)
        .collect()
    }

    #[test]
    fn builtin_defaults() {
        use ActionKind::*;
        let p = RemediationPolicy::builtin();
        assert_eq!(
            kinds(&p, &acct(false, 10.0, None)),
            vec![ForcePasswordReset, Notify]
        );
        assert_eq!(kinds(&p, &acct(true, 10.0, None)), vec![Notify]);
        assert_eq!(kinds(&p, &acct(false, 0.0, None)), vec![Notify]);
        assert_eq!(
            kinds(&p, &acct(true, 0.0, Some(5))),
            vec![HumanReview, Notify]
        );
        assert_eq!(kinds(&p, &acct(true, 0.0, Some(4))), vec![Notify]);
        assert_eq!(
            kinds(&p, &acct(false, 50_000.0, None)),
            vec![ForcePasswordReset, HumanReview, Notify]
        );
        let d = p.decide(&Facts {
            account: &acct(true, 50_000.0, Some(9)),
            messages: 2,
            audience: 4,
        });
        // The first firing rule is recorded: failed logins come before the balance rule.
        assert_eq!(d[0].1.id, "review-failed-logins-since-incident");
        assert!(d[0].2.contains("9 failed logins"), "{}", d[0].2);
    }

    #[test]
    fn notify_unmatched_defaults_to_yes_and_can_be_turned_off() {
        assert!(RemediationPolicy::builtin().notify_unmatched);
        let rule = "[[rule]]\nid = \"x\"\naction = \"notify\"\n";
        let absent = RemediationPolicy::parse(Path::new("p.toml"), &format!("version = 1\n{rule}"));
        assert!(absent.unwrap().notify_unmatched);
        let off = RemediationPolicy::parse(
            Path::new("p.toml"),
            &format!("version = 1\nnotify_unmatched = false\n{rule}"),
        );
        assert!(!off.unwrap().notify_unmatched);
        let bad = RemediationPolicy::parse(
            Path::new("p.toml"),
            &format!("version = 1\nnotify_unmatched = \"maybe\"\n{rule}"),
        )
        .unwrap_err()
        .to_string();
        assert!(bad.starts_with("p.toml:2"), "{bad}");
    }

    #[test]
    fn unknown_key_is_an_error_with_line() {
        let text = "version = 1\n\n[[rule]]\nid = \"x\"\naction = \"notify\"\n[rule.when]\nbalance_over = 3\n";
        let err = RemediationPolicy::parse(Path::new("p.toml"), text).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("p.toml:7:"), "{msg}");
        assert!(msg.contains("balance_over"), "{msg}");
    }

    #[test]
    fn bad_action_and_duplicates_rejected() {
        let bad = "version = 1\n[[rule]]\nid = \"x\"\naction = \"delete-account\"\n";
        let e = RemediationPolicy::parse(Path::new("p.toml"), bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("p.toml:4"), "{e}");
        let dup = "version = 1\n[[rule]]\nid = \"x\"\naction = \"notify\"\n[[rule]]\nid = \"x\"\naction = \"notify\"\n";
        let e = RemediationPolicy::parse(Path::new("p.toml"), dup)
            .unwrap_err()
            .to_string();
        assert!(e.contains("duplicate rule id"), "{e}");
        let v2 = "version = 2\n[[rule]]\nid = \"x\"\naction = \"notify\"\n";
        assert!(RemediationPolicy::parse(Path::new("p.toml"), v2).is_err());
    }
}
