//! SARIF 2.1.0 output, as GitHub code scanning reads it: `tool.driver.rules` with ids,
//! short and full descriptions, help and a default level (plus `security-severity`), and
//! results with `ruleId`, `level`, `message`, a physical location (`startLine` for files,
//! `byteOffset` for messages inside an mbox) and `partialFingerprints`.

use crate::finding::Severity;
use crate::pack::RuleInfo;
use crate::report::MessageReport;
use serde_json::{json, Value};

pub const SCHEMA_URI: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// SARIF level: GitHub shows `error` as a failing alert.
pub fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub's `security-severity` (CVSS-like score, drives its critical/high/medium/low).
fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "0.5",
    }
}

/// A relative or absolute path as a SARIF URI reference (percent-encoding what URIs forbid).
pub fn path_uri(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.replace('\\', "/").bytes() {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'.'
            | b'_'
            | b'~'
            | b'/'
            | b':'
            | b'@'
            | b'+'
            | b'='
            | b',' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn rule_name(id: &str) -> String {
    id.split('-')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// The whole SARIF log for one run.
pub fn render(rules: &[RuleInfo], reports: &[MessageReport], tool_version: &str) -> Value {
    let driver_rules: Vec<Value> = rules
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "name": rule_name(&r.id),
                "shortDescription": { "text": r.summary },
                "fullDescription": { "text": r.description },
                "help": {
                    "text": r.hint,
                    "markdown": format!("**Fix:** {}\n\n{}", r.hint, r.description),
                },
                "defaultConfiguration": { "level": level(r.severity) },
                "properties": {
                    "tags": ["security", "privacy", r.kind],
                    "security-severity": security_severity(r.severity),
                    "precision": "high",
                },
            })
        })
        .collect();
    let mut results = Vec::new();
    for f in reports.iter().flat_map(|r| &r.findings) {
        let mut region = serde_json::Map::new();
        match (f.location.offset, f.line) {
            (Some(off), _) => {
                region.insert("byteOffset".into(), json!(off));
            }
            (None, Some(line)) => {
                region.insert("startLine".into(), json!(line));
            }
            (None, None) => {
                region.insert("startLine".into(), json!(1));
            }
        }
        let mut result = json!({
            "ruleId": f.rule_id,
            "level": level(f.severity),
            "message": { "text": format!("{} — evidence: {}. Fix: {}", f.message, f.evidence, f.hint) },
            "locations": [{
                "physicalLocation": {
                    "artifactLocation": { "uri": path_uri(&f.location.path) },
                    "region": Value::Object(region),
                }
            }],
            "partialFingerprints": { "leakaudit/v1": f.fingerprint },
            "properties": {
                "severity": f.severity.as_str(),
                "evidence": f.evidence,
            },
        });
        if let Some(i) = rules.iter().position(|r| r.id == f.rule_id) {
            result["ruleIndex"] = json!(i);
        }
        if let Some(mid) = &f.message_id {
            result["properties"]["messageId"] = json!(mid);
        }
        // Why this severity: the triage's profile, signals and reasons (counts, no addresses).
        if let Some(p) = f.profile {
            result["properties"]["profile"] = json!(p.as_str());
        }
        if !f.signals.is_empty() {
            let codes: Vec<&str> = f.signals.iter().map(|s| s.code()).collect();
            result["properties"]["signals"] = json!(codes);
        }
        if !f.reasons.is_empty() {
            result["properties"]["reasons"] = json!(f.reasons);
        }
        results.push(result);
    }
    json!({
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "leakaudit",
                    "version": tool_version,
                    "semanticVersion": tool_version,
                    "informationUri": "https://github.com/leakaudit/leakaudit",
                    "rules": driver_rules,
                }
            },
            "results": results,
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_encoded() {
        assert_eq!(path_uri("fixtures/a b#c.eml"), "fixtures/a%20b%23c.eml");
        assert_eq!(rule_name("recipient-exposure"), "RecipientExposure");
    }

    #[test]
    fn results_carry_the_triage_profile_signals_and_reasons() {
        use crate::triage::{Profile, Signal};
        let f = crate::Finding {
            rule_id: "recipient-exposure".into(),
            severity: crate::Severity::Critical,
            message: "m".into(),
            hint: "h".into(),
            location: leakaudit_scanner::Location::file("a.eml"),
            line: None,
            message_id: None,
            date: None,
            from: None,
            subject: None,
            evidence: "e".into(),
            fingerprint: "f".into(),
            exposed: Vec::new(),
            audience_parties: Vec::new(),
            signals: vec![Signal::MassExposure, Signal::Campaign],
            reasons: vec!["campaign: 8 chunks of one mailing within 6 h".into()],
            profile: Some(Profile::Audit),
        };
        let reports = [MessageReport {
            location: f.location.clone(),
            message_id: None,
            subject: None,
            findings: vec![f],
        }];
        let log = render(&[], &reports, "0");
        let p = &log["runs"][0]["results"][0]["properties"];
        assert_eq!(p["profile"], "audit");
        assert_eq!(p["signals"], json!(["mass-exposure", "campaign"]));
        assert_eq!(
            p["reasons"][0],
            "campaign: 8 chunks of one mailing within 6 h"
        );
    }
}
