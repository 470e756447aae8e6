//! `leakaudit rules test`: runs every fixture under `fixtures/rules/<rule-id>/` through the
//! engine and compares what fired with what the fixture expects.
//!
//! A fixture is one message file with a header `X-Leakaudit-Expect: <rule-id>[, <rule-id>]`
//! or `X-Leakaudit-Expect: ok` (or `clean`). The expectation covers every rule of the pack: a rule that
//! fires without being listed is a false positive. Optional headers set the organisation for
//! that fixture: `X-Leakaudit-Archive-Kind: auto|sent|transmitted` and
//! `X-Leakaudit-Internal-Domains: a.example, b.example`; `X-Leakaudit-Profile: gate` judges the
//! fixture as the CI gate and the SMTP guard do (a rendered message about to be sent).
//! Every rule needs at least one fixture in its own folder that expects it (leaking) and one
//! that does not (clean); a missing one is a failure, as is any mismatch.

use crate::config::OrgConfig;
use crate::engine::Engine;
use crate::pack::RulePack;
use crate::triage::{Profile, TriageContext};
use leakaudit_scanner::{ArchiveKind, Location, Message};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize)]
pub struct FixtureResult {
    pub path: PathBuf,
    /// The folder it is in (the rule it was written for).
    pub folder: String,
    pub expected: BTreeSet<String>,
    pub fired: BTreeSet<String>,
    /// Why the fixture could not be run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl FixtureResult {
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.expected == self.fired
    }
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct RuleScore {
    pub id: String,
    pub tp: usize,
    pub fp: usize,
    #[serde(rename = "fn")]
    pub fn_: usize,
    pub tn: usize,
    /// Fixtures in the rule's own folder expecting it / not expecting it.
    pub leaking_fixtures: usize,
    pub clean_fixtures: usize,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct TestReport {
    pub fixtures: Vec<FixtureResult>,
    pub scores: Vec<RuleScore>,
    /// Structural problems: a rule without leaking or clean fixtures, an unknown folder...
    pub problems: Vec<String>,
}

impl TestReport {
    pub fn passed(&self) -> bool {
        self.problems.is_empty() && self.fixtures.iter().all(FixtureResult::passed)
    }

    /// The per-rule table, for humans.
    pub fn table(&self) -> String {
        let w = self
            .scores
            .iter()
            .map(|s| s.id.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let mut out = format!(
            "{:<w$}  {:>4} {:>4} {:>4} {:>4}  {:>7} {:>5}  status\n",
            "rule", "TP", "FP", "FN", "TN", "leaking", "clean"
        );
        for s in &self.scores {
            let ok = s.fp == 0 && s.fn_ == 0 && s.leaking_fixtures > 0 && s.clean_fixtures > 0;
            out.push_str(&format!(
                "{:<w$}  {:>4} {:>4} {:>4} {:>4}  {:>7} {:>5}  {}\n",
                s.id,
                s.tp,
                s.fp,
                s.fn_,
                s.tn,
                s.leaking_fixtures,
                s.clean_fixtures,
                if ok { "ok" } else { "FAIL" }
            ));
        }
        out
    }
}

fn header<'h>(headers: &'h [mailparse::MailHeader<'h>], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|h| h.get_key_ref().eq_ignore_ascii_case(name))
        .map(|h| h.get_value())
}

/// `ok` and `clean` both mean "no rule fires" (`clean` once got "unknown rule").
fn is_clean_word(v: &str) -> bool {
    v.eq_ignore_ascii_case("ok") || v.eq_ignore_ascii_case("clean")
}

fn list(v: &str) -> Vec<String> {
    v.split([',', ' ', '\t'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Runs all fixtures of `dir` (`fixtures/rules`) against `pack` with the organisation `base`.
pub fn run(pack: &RulePack, dir: &Path, base: &OrgConfig) -> std::io::Result<TestReport> {
    let ids: BTreeSet<String> = pack
        .rules
        .iter()
        .filter(|r| r.enabled)
        .map(|r| r.info.id.clone())
        .collect();
    let mut report = TestReport::default();
    let mut folders: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    folders.sort();
    let mut engines: BTreeMap<(Option<ArchiveKind>, Vec<String>), Engine> = BTreeMap::new();
    for folder in folders {
        let fname = folder
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        if !ids.contains(&fname) {
            report.problems.push(format!(
                "{}: folder does not name a rule of the pack",
                folder.display()
            ));
            continue;
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for path in files {
            let mut res = FixtureResult {
                path: path.clone(),
                folder: fname.clone(),
                expected: BTreeSet::new(),
                fired: BTreeSet::new(),
                error: None,
            };
            let raw = match std::fs::read(&path) {
                Ok(r) => r,
                Err(e) => {
                    res.error = Some(format!("cannot read: {e}"));
                    report.fixtures.push(res);
                    continue;
                }
            };
            let (expect, sent, internal, gate) = match mailparse::parse_headers(&raw) {
                Ok((h, _)) => (
                    header(&h, "X-Leakaudit-Expect"),
                    header(&h, "X-Leakaudit-Archive-Kind").and_then(|v| {
                        match v.trim().to_ascii_lowercase().as_str() {
                            "sent" => Some(ArchiveKind::Sent),
                            "transmitted" => Some(ArchiveKind::Transmitted),
                            "auto" => Some(ArchiveKind::Auto),
                            _ => None,
                        }
                    }),
                    header(&h, "X-Leakaudit-Internal-Domains")
                        .map(|v| list(&v))
                        .unwrap_or_default(),
                    header(&h, "X-Leakaudit-Profile").map(|v| v.trim().parse::<Profile>()),
                ),
                Err(e) => {
                    res.error = Some(format!("unreadable header block: {e}"));
                    report.fixtures.push(res);
                    continue;
                }
            };
            let gate = match gate {
                None => false,
                Some(Ok(p)) => p == Profile::Gate,
                Some(Err(e)) => {
                    res.error = Some(format!("X-Leakaudit-Profile: {e}"));
                    report.fixtures.push(res);
                    continue;
                }
            };
            let Some(expect) = expect else {
                res.error = Some("no `X-Leakaudit-Expect` header".into());
                report.fixtures.push(res);
                continue;
            };
            let expect = list(&expect);
            if !(expect.len() == 1 && is_clean_word(&expect[0])) {
                for e in expect {
                    if !ids.contains(&e) {
                        res.error = Some(format!("expects unknown rule `{e}`"));
                    }
                    res.expected.insert(e);
                }
            }
            let msg = match Message::from_bytes_at(&raw, Location::file(path.display().to_string()))
            {
                Ok(m) => m,
                Err(p) => {
                    res.error = Some(format!("malformed message: {}", p.reason));
                    report.fixtures.push(res);
                    continue;
                }
            };
            let engine = engines.entry((sent, internal.clone())).or_insert_with(|| {
                let mut cfg = base.clone();
                if let Some(kind) = sent {
                    cfg.archive_kind = kind;
                }
                cfg.internal_domains.extend(internal);
                Engine::new(pack.clone(), cfg.org(), &BTreeMap::new())
            });
            let eval = if gate {
                engine.evaluate_with(&msg, &TriageContext::gate())
            } else {
                engine.evaluate(&msg)
            };
            res.fired = eval.findings.into_iter().map(|f| f.rule_id).collect();
            report.fixtures.push(res);
        }
    }
    for id in &ids {
        let mut s = RuleScore {
            id: id.clone(),
            ..RuleScore::default()
        };
        for f in report.fixtures.iter().filter(|f| f.error.is_none()) {
            match (f.expected.contains(id), f.fired.contains(id)) {
                (true, true) => s.tp += 1,
                (false, true) => s.fp += 1,
                (true, false) => s.fn_ += 1,
                (false, false) => s.tn += 1,
            }
            if &f.folder == id {
                if f.expected.contains(id) {
                    s.leaking_fixtures += 1;
                } else {
                    s.clean_fixtures += 1;
                }
            }
        }
        if s.leaking_fixtures == 0 {
            report.problems.push(format!(
                "rule `{id}` has no leaking fixture in {}/{id}/",
                dir.display()
            ));
        }
        if s.clean_fixtures == 0 {
            report.problems.push(format!(
                "rule `{id}` has no clean fixture in {}/{id}/",
                dir.display()
            ));
        }
        report.scores.push(s);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expect_clean_was_an_unknown_rule_regression() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("bcc-header-leak");
        std::fs::create_dir_all(&folder).unwrap();
        let leak = "X-Leakaudit-Expect: bcc-header-leak\nX-Leakaudit-Archive-Kind: transmitted\n\
                    From: a@shop.example\nTo: x@one.example\nBcc: y@two.example\n\
                    Subject: s\n\nhi\n";
        std::fs::write(folder.join("leak.eml"), leak).unwrap();
        for (name, word) in [
            ("ok-a.eml", "ok"),
            ("ok-b.eml", "clean"),
            ("ok-c.eml", "Clean"),
        ] {
            let text = format!(
                "X-Leakaudit-Expect: {word}\nFrom: a@shop.example\nTo: x@one.example\n\
                 Subject: s\n\nhi\n"
            );
            std::fs::write(folder.join(name), text).unwrap();
        }
        let pack = RulePack {
            rules: RulePack::builtin()
                .rules
                .into_iter()
                .filter(|r| r.info.id == "bcc-header-leak")
                .collect(),
            skipped: vec![],
        };
        let report = run(&pack, dir.path(), &OrgConfig::default()).unwrap();
        let failed: Vec<_> = report.fixtures.iter().filter(|f| !f.passed()).collect();
        assert!(failed.is_empty(), "{failed:?}");
        assert_eq!(report.fixtures.len(), 4);
        assert_eq!(report.scores[0].clean_fixtures, 3);
        assert!(report.passed(), "{:?}", report.problems);
    }
}
