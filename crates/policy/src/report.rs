//! Human, JSON and JSON Lines renderings of a check run. Libraries never print: these return
//! strings and values, the CLI writes them (atomically when to a file).

use crate::finding::{Finding, Severity};
use leakaudit_scanner::text::clean;
use leakaudit_scanner::Location;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// One audited message and its findings (after the baseline), in archive order.
#[derive(Debug, Clone, Serialize)]
pub struct MessageReport {
    pub location: Location,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub findings: Vec<Finding>,
}

/// Totals of a run.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub messages: u64,
    pub messages_with_findings: usize,
    pub findings: usize,
    pub by_severity: BTreeMap<Severity, usize>,
    /// Findings suppressed by the baseline.
    pub suppressed: usize,
    /// Messages or files that could not be audited.
    pub errors: usize,
    pub fail_on: Severity,
    /// Findings at or above `fail_on`.
    pub failing: usize,
}

impl Summary {
    pub fn new(
        reports: &[MessageReport],
        messages: u64,
        suppressed: usize,
        errors: usize,
        fail_on: Severity,
    ) -> Summary {
        let mut by_severity = BTreeMap::new();
        let mut findings = 0;
        let mut failing = 0;
        for f in reports.iter().flat_map(|r| &r.findings) {
            *by_severity.entry(f.severity).or_insert(0) += 1;
            findings += 1;
            if f.severity >= fail_on {
                failing += 1;
            }
        }
        Summary {
            messages,
            messages_with_findings: reports.iter().filter(|r| !r.findings.is_empty()).count(),
            findings,
            by_severity,
            suppressed,
            errors,
            fail_on,
            failing,
        }
    }
}

fn location_line(loc: &Location, line: Option<u64>) -> String {
    let path = clean(&loc.path);
    if let Some(l) = loc.line {
        // An event of a provider's log: the log's line.
        return format!("{path}:{l}");
    }
    match (loc.offset, line) {
        (Some(off), _) => format!("{path}@{off}"),
        (None, Some(l)) => format!("{path}:{l}"),
        (None, None) => path.into_owned(),
    }
}

/// "why this severity": the profile, the triage's reasons and signals (no addresses).
pub fn why(f: &Finding) -> Option<String> {
    // Only exposure findings are ranked; a secret's severity is the rule's own.
    if f.reasons.is_empty() && f.signals.is_empty() {
        return None;
    }
    let mut parts = Vec::new();
    if let Some(p) = f.profile {
        // The first reason usually names the profile already.
        if !f.reasons.first().is_some_and(|r| r.starts_with(p.as_str())) {
            parts.push(format!("{p} profile"));
        }
    }
    parts.extend(f.reasons.iter().cloned());
    if !f.signals.is_empty() {
        let codes: Vec<&str> = f.signals.iter().map(|s| s.code()).collect();
        parts.push(format!("signals: {}", codes.join(", ")));
    }
    Some(parts.join("; "))
}

/// Grouped by message: location, Message-ID and subject, then each finding with its rule id,
/// severity, redacted evidence, why this severity (triage) and fix hint.
pub fn human(reports: &[MessageReport], summary: &Summary) -> String {
    let mut out = String::new();
    for r in reports.iter().filter(|r| !r.findings.is_empty()) {
        // Every value that comes from the archive goes through `clean` (terminal escapes).
        let _ = write!(out, "{}", clean(&r.location.to_string()));
        if let Some(id) = &r.message_id {
            let _ = write!(out, "  <{}>", clean(id));
        }
        out.push('\n');
        if let Some(s) = &r.subject {
            let _ = writeln!(out, "  subject: {}", clean(s));
        }
        for f in &r.findings {
            let _ = writeln!(
                out,
                "  {:<8} [{}] {}",
                f.severity.as_str(),
                f.rule_id,
                clean(&f.message)
            );
            let _ = writeln!(out, "           at {}", location_line(&f.location, f.line));
            let _ = writeln!(out, "           evidence: {}", clean(&f.evidence));
            if let Some(why) = why(f) {
                let _ = writeln!(
                    out,
                    "           why {}: {}",
                    f.severity.as_str(),
                    clean(&why)
                );
            }
            if !f.hint.is_empty() {
                let _ = writeln!(out, "           fix: {}", f.hint);
            }
            let _ = writeln!(
                out,
                "           fingerprint: {}",
                &f.fingerprint[..16.min(f.fingerprint.len())]
            );
        }
        out.push('\n');
    }
    let sev: Vec<String> = summary
        .by_severity
        .iter()
        .rev()
        .map(|(s, n)| format!("{n} {s}"))
        .collect();
    let _ = write!(
        out,
        "{} finding{} in {} of {} message{}",
        summary.findings,
        if summary.findings == 1 { "" } else { "s" },
        summary.messages_with_findings,
        summary.messages,
        if summary.messages == 1 { "" } else { "s" },
    );
    if !sev.is_empty() {
        let _ = write!(out, " ({})", sev.join(", "));
    }
    if summary.suppressed > 0 {
        let _ = write!(out, "; {} suppressed by the baseline", summary.suppressed);
    }
    if summary.errors > 0 {
        let _ = write!(out, "; {} could not be audited", summary.errors);
    }
    out.push('\n');
    if summary.failing > 0 {
        let _ = writeln!(
            out,
            "FAIL: {} finding{} at or above `{}`",
            summary.failing,
            if summary.failing == 1 { "" } else { "s" },
            summary.fail_on
        );
    } else if summary.errors > 0 || summary.messages == 0 {
        // An unreadable input or an empty run is never "ok": a broken renderer must not
        // turn the gate green.
        let _ = writeln!(
            out,
            "ERROR: {}; nothing can be said about what was not audited",
            if summary.messages == 0 {
                "no message was audited".to_string()
            } else {
                format!(
                    "{} input(s) or message(s) could not be audited",
                    summary.errors
                )
            }
        );
    } else {
        let _ = writeln!(out, "ok: nothing at or above `{}`", summary.fail_on);
    }
    out
}

/// `{"version": 1, "summary": {...}, "findings": [...]}`.
pub fn json(reports: &[MessageReport], summary: &Summary) -> serde_json::Value {
    let findings: Vec<&Finding> = reports.iter().flat_map(|r| &r.findings).collect();
    serde_json::json!({
        "version": 1,
        "tool": "leakaudit",
        "summary": summary,
        "findings": findings,
    })
}

/// One finding per line.
pub fn jsonl(reports: &[MessageReport]) -> String {
    let mut out = String::new();
    for f in reports.iter().flat_map(|r| &r.findings) {
        out.push_str(&serde_json::to_string(f).expect("findings serialise"));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::triage::{Profile, Signal};

    fn finding() -> Finding {
        Finding {
            rule_id: "recipient-exposure".into(),
            severity: Severity::Low,
            message: "2 external addresses visible".into(),
            hint: String::new(),
            location: Location::file("a.eml"),
            line: None,
            message_id: None,
            date: None,
            from: None,
            subject: None,
            evidence: "2 exposed: an***@gm***.com".into(),
            fingerprint: "0123456789abcdef0123".into(),
            exposed: Vec::new(),
            audience_parties: Vec::new(),
            signals: vec![Signal::FewParties, Signal::Reply],
            reasons: vec!["reply in a thread: 2 of 2 parties new to each other".into()],
            profile: Some(Profile::Audit),
        }
    }

    #[test]
    fn human_report_says_why_this_severity() {
        let reports = [MessageReport {
            location: Location::file("a.eml"),
            message_id: None,
            subject: None,
            findings: vec![finding()],
        }];
        let summary = Summary::new(&reports, 1, 0, 0, Severity::High);
        let text = human(&reports, &summary);
        assert!(
            text.contains(
                "why low: audit profile; reply in a thread: 2 of 2 parties new to each other; \
                 signals: few-parties, reply"
            ),
            "{text}"
        );
        let mut plain = finding();
        plain.signals.clear();
        plain.reasons.clear();
        plain.profile = None;
        assert_eq!(why(&plain), None);
    }
}
