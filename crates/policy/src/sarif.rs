//! SARIF 2.1.0 output, as GitHub code scanning reads it: `tool.driver.rules` with ids,
//! short and full descriptions, help and a default level (plus `security-severity`), and
//! results with `ruleId`, `level`, `message`, a physical location (`startLine` for files,
//! `byteOffset` and `startLine` for messages inside an mbox) and `partialFingerprints`.
//! Paths under the source root are repository-relative with `uriBaseId` `%SRCROOT%`, as code
//! scanning maps alerts by repository path and line.

use crate::finding::Severity;
use crate::pack::RuleInfo;
use crate::report::MessageReport;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// The `uriBaseId` of repository-relative locations.
pub const SRCROOT: &str = "%SRCROOT%";

/// Where locations are resolved from.
#[derive(Debug, Clone, Default)]
pub struct SarifOptions {
    /// The source root (`--sarif-root`, else the working directory): inputs under it get
    /// relative URIs with `uriBaseId` `%SRCROOT%`. `None`: paths as given.
    pub src_root: Option<PathBuf>,
    /// The directory relative input paths are relative to (the working directory).
    pub cwd: PathBuf,
}

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

/// Lexically normalised absolute form of `p` (no file system access: inputs may be gone).
fn absolute(cwd: &Path, p: &str) -> PathBuf {
    let joined = cwd.join(p);
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn artifact_json(path: &str, opts: &SarifOptions) -> Value {
    match artifact(path, opts) {
        (uri, Some(base)) => json!({ "uri": uri, "uriBaseId": base }),
        (uri, None) => json!({ "uri": uri }),
    }
}

/// `(uri, uriBaseId)` of an input path.
fn artifact(path: &str, opts: &SarifOptions) -> (String, Option<&'static str>) {
    let Some(root) = &opts.src_root else {
        return (path_uri(path), None);
    };
    if path == "-" {
        return (path_uri(path), None);
    }
    let abs = absolute(&opts.cwd, path);
    let root = absolute(&opts.cwd, &root.to_string_lossy());
    match abs.strip_prefix(&root) {
        Ok(rel) => (path_uri(&rel.to_string_lossy()), Some(SRCROOT)),
        Err(_) => (path_uri(&abs.to_string_lossy()), None),
    }
}

/// 1-based line of each byte offset in each plain (uncompressed) mbox file, counted in one
/// streaming pass per file; compressed or unreadable files get none (byte offset only).
fn mbox_lines(reports: &[MessageReport], cwd: &Path) -> BTreeMap<(String, u64), u64> {
    let mut wanted: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for f in reports.iter().flat_map(|r| &r.findings) {
        if let (Some(off), None) = (f.location.offset, f.location.line) {
            wanted
                .entry(f.location.path.to_string())
                .or_default()
                .insert(off);
        }
    }
    let mut out = BTreeMap::new();
    for (path, offsets) in wanted {
        let Ok(file) = std::fs::File::open(cwd.join(&path)) else {
            continue;
        };
        let mut r = std::io::BufReader::with_capacity(1 << 20, file);
        let mut buf = vec![0u8; 1 << 20];
        let (mut pos, mut lines, mut first) = (0u64, 1u64, true);
        let mut pending = offsets.into_iter().peekable();
        while pending.peek().is_some() {
            let n = match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            // Offsets count decompressed bytes: a compressed file's lines would be wrong.
            if first && crate::sarif::compressed(&buf[..n]) {
                break;
            }
            first = false;
            while let Some(&off) = pending.peek() {
                if off > pos + n as u64 {
                    break;
                }
                let upto = (off - pos) as usize;
                let here = memchr::memchr_iter(b'\n', &buf[..upto]).count() as u64;
                out.insert((path.clone(), off), lines + here);
                pending.next();
            }
            lines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
            pos += n as u64;
        }
    }
    out
}

fn compressed(head: &[u8]) -> bool {
    head.starts_with(&[0x1f, 0x8b]) || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
}

/// The whole SARIF log for one run, paths as given and mbox results by byte offset only.
pub fn render(rules: &[RuleInfo], reports: &[MessageReport], tool_version: &str) -> Value {
    render_with(rules, reports, tool_version, &SarifOptions::default())
}

/// The whole SARIF log for one run, locations resolved with `opts`.
pub fn render_with(
    rules: &[RuleInfo],
    reports: &[MessageReport],
    tool_version: &str,
    opts: &SarifOptions,
) -> Value {
    let lines = if opts.src_root.is_some() {
        mbox_lines(reports, &opts.cwd)
    } else {
        BTreeMap::new()
    };
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
            // An event of a provider's log: its line in the log (the message is made from it).
            (Some(off), _) if f.location.line.is_some() => {
                region.insert("byteOffset".into(), json!(off));
                region.insert("startLine".into(), json!(f.location.line));
            }
            (Some(off), in_msg) => {
                region.insert("byteOffset".into(), json!(off));
                if let Some(l) = lines.get(&(f.location.path.to_string(), off)) {
                    // The message's text starts on the line after its `From ` line.
                    region.insert("startLine".into(), json!(l + in_msg.unwrap_or(0)));
                }
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
                    "artifactLocation": artifact_json(&f.location.path, opts),
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
    let mut run = json!({
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
    });
    if let Some(root) = &opts.src_root {
        let abs = absolute(&opts.cwd, &root.to_string_lossy());
        let mut uri = format!("file://{}", path_uri(&abs.to_string_lossy()));
        if !uri.ends_with('/') {
            uri.push('/');
        }
        run["originalUriBaseIds"] = json!({ SRCROOT: { "uri": uri } });
    }
    json!({
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [run]
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
