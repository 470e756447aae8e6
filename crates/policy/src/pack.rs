//! Rule files and rule packs.
//!
//! A rule file is TOML with one `[[rule]]` table per rule (see `rules/*.toml` and
//! `/work/notes/policy-architecture.md`). Loading happens in two steps, like cargo-deny:
//! 1. parse: the text becomes [`RawRule`]s (serde with `deny_unknown_fields`, every field
//!    `Spanned` so errors point at a line and column);
//! 2. validate: each raw rule becomes a [`Rule`] (severity parsed, regexes compiled, the
//!    parameters checked against the rule's kind).
//!
//! Neither step stops at the first error: every error of every file is collected, so
//! `leakaudit rules validate` shows them all at once.

use crate::error::RuleError;
use crate::finding::Severity;
use crate::rules::{self, RuleKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

/// The default pack, compiled into the binary so `leakaudit` works with no folder at hand.
const BUILTIN: &[(&str, &str)] = &[
    (
        "rules/exposure.toml",
        include_str!("../../../rules/exposure.toml"),
    ),
    (
        "rules/content.toml",
        include_str!("../../../rules/content.toml"),
    ),
];

/// The BIP-39 English word list (2,048 words), used by `seed-phrase` rules.
pub const BIP39_ENGLISH: &str = include_str!("../../../rules/bip39-english.txt");

/// Files in a rules folder that are not rule packs (the remediation policy lives beside them).
const NOT_RULE_FILES: &[&str] = &["remediation.toml"];

/// Top-level keys of a rule table. Kind-specific ones are checked against the kind later.
const RULE_KEYS: &[&str] = &[
    "id",
    "kind",
    "severity",
    "summary",
    "description",
    "hint",
    "enabled",
    "min_parties",
    "tiers",
    "min_members",
    "min_addresses",
    "keywords",
    "regex",
    "keep_prefix",
    "min_recipients",
    "min_words",
    "wordlist",
    "allow",
    "triage",
];
const ALLOW_KEYS: &[&str] = &[
    "senders",
    "recipient_domains",
    "subjects",
    "message_ids",
    "headers",
    "values",
];

/// One rule as written (step 1). Every field keeps its position for error messages.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub id: Spanned<String>,
    pub kind: Spanned<String>,
    pub severity: Spanned<String>,
    pub summary: Spanned<String>,
    pub description: Spanned<String>,
    pub hint: Spanned<String>,
    #[serde(default)]
    pub enabled: Option<Spanned<bool>>,
    #[serde(default)]
    pub min_parties: Option<Spanned<i64>>,
    #[serde(default)]
    pub tiers: Option<Spanned<Vec<RawTier>>>,
    #[serde(default)]
    pub min_members: Option<Spanned<i64>>,
    #[serde(default)]
    pub min_addresses: Option<Spanned<i64>>,
    #[serde(default)]
    pub keywords: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pub regex: Option<Spanned<String>>,
    #[serde(default)]
    pub keep_prefix: Option<Spanned<i64>>,
    #[serde(default)]
    pub min_recipients: Option<Spanned<i64>>,
    #[serde(default)]
    pub min_words: Option<Spanned<i64>>,
    #[serde(default)]
    pub wordlist: Option<Spanned<String>>,
    #[serde(default)]
    pub allow: Option<Spanned<RawAllow>>,
    /// `[rule.triage]` (recipient-exposure only), validated in `triage::config`.
    #[serde(default)]
    pub triage: Option<Spanned<crate::triage::config::RawTriage>>,
}

/// `tiers = [{ at_least = 25, severity = "critical" }]`: severity by count.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTier {
    pub at_least: Spanned<i64>,
    pub severity: Spanned<String>,
}

/// `[rule.allow]`: exceptions scoped to one rule.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAllow {
    /// Sender addresses (`news@example.com`) or domains (`example.com`).
    #[serde(default)]
    pub senders: Vec<Spanned<String>>,
    /// Recipient domains: addresses there never count for this rule.
    #[serde(default)]
    pub recipient_domains: Vec<Spanned<String>>,
    /// Regexes on the decoded Subject.
    #[serde(default)]
    pub subjects: Vec<Spanned<String>>,
    /// Exact Message-IDs (without angle brackets).
    #[serde(default)]
    pub message_ids: Vec<Spanned<String>>,
    /// `{ name = "X-Mailer", value = "regex" }`.
    #[serde(default)]
    pub headers: Vec<Spanned<RawHeaderMatch>>,
    /// Content rules only: regexes on the matched text (e.g. documented example keys).
    #[serde(default)]
    pub values: Vec<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeaderMatch {
    pub name: Spanned<String>,
    pub value: Spanned<String>,
}

/// What reports, SARIF and `rules list` show about a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleInfo {
    pub id: String,
    pub kind: String,
    /// Default severity (before tiers and overrides).
    pub severity: Severity,
    /// One line (SARIF shortDescription).
    pub summary: String,
    /// What, why, example (SARIF fullDescription).
    pub description: String,
    /// How to fix (SARIF help).
    pub hint: String,
    /// `file:line` where the rule is defined (`rules/x.toml:3` for the built-in pack).
    pub source: String,
}

/// A validated rule (step 2).
#[derive(Debug, Clone)]
pub struct Rule {
    pub info: RuleInfo,
    pub enabled: bool,
    pub(crate) kind: RuleKind,
    pub(crate) allow: crate::allow::Allow,
}

impl Rule {
    pub fn id(&self) -> &str {
        &self.info.id
    }
}

/// How `--rules DIR` combines with the built-in pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RulesMode {
    /// The folder's rules are added; a rule with a built-in id replaces the built-in one.
    #[default]
    Extend,
    /// Only the folder's rules are used.
    Replace,
}

impl std::str::FromStr for RulesMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "extend" => Ok(RulesMode::Extend),
            "replace" => Ok(RulesMode::Replace),
            _ => Err(format!("unknown rules mode `{s}` (extend, replace)")),
        }
    }
}

/// A set of validated rules with unique ids, in file order.
#[derive(Debug, Clone, Default)]
pub struct RulePack {
    pub rules: Vec<Rule>,
    /// Files in the folder that were recognised as not being rule files (remediation.toml).
    pub skipped: Vec<PathBuf>,
}

impl RulePack {
    /// The default pack compiled into the binary.
    pub fn builtin() -> RulePack {
        let mut all = Vec::new();
        for (name, text) in BUILTIN {
            let (rules, errors) = parse_file(Path::new(name), text);
            // The built-in pack is tested (`leakaudit rules validate` / unit test below); an
            // error here is a build defect, not user input.
            assert!(
                errors.is_empty(),
                "built-in rule pack is invalid: {errors:?}"
            );
            all.extend(rules);
        }
        RulePack {
            rules: all,
            skipped: Vec::new(),
        }
    }

    /// Validated texts (`(file name, content)`), every error of every file collected.
    pub fn from_texts(files: &[(PathBuf, String)]) -> Result<RulePack, Vec<RuleError>> {
        let mut rules: Vec<Rule> = Vec::new();
        let mut errors = Vec::new();
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        for (path, text) in files {
            let (rs, errs) = parse_file(path, text);
            errors.extend(errs);
            for r in rs {
                if let Some(prev) = seen.get(&r.info.id) {
                    let (file, line) = r
                        .info
                        .source
                        .rsplit_once(':')
                        .unwrap_or((&r.info.source, "0"));
                    errors.push(RuleError {
                        file: PathBuf::from(file),
                        line: line.parse().unwrap_or(0),
                        col: 1,
                        message: format!(
                            "duplicate rule id `{}` (first defined at {prev})",
                            r.info.id
                        ),
                    });
                    continue;
                }
                seen.insert(r.info.id.clone(), r.info.source.clone());
                rules.push(r);
            }
        }
        if errors.is_empty() {
            Ok(RulePack {
                rules,
                skipped: Vec::new(),
            })
        } else {
            Err(errors)
        }
    }

    /// Every `*.toml` file of `dir` (not recursive, sorted by name), except the remediation
    /// policy. Returns every error of every file, each with file, line and column.
    pub fn load_dir(dir: &Path) -> Result<RulePack, Vec<RuleError>> {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                return Err(vec![RuleError::whole(
                    dir,
                    format!("cannot read rules folder: {e}"),
                )])
            }
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
            .collect();
        paths.sort();
        let mut skipped = Vec::new();
        let mut files = Vec::new();
        let mut errors = Vec::new();
        for p in paths {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if NOT_RULE_FILES.contains(&name) {
                skipped.push(p);
                continue;
            }
            match std::fs::read_to_string(&p) {
                Ok(t) => files.push((p, t)),
                Err(e) => errors.push(RuleError::whole(&p, format!("cannot read: {e}"))),
            }
        }
        if files.is_empty() && errors.is_empty() {
            errors.push(RuleError::whole(
                dir,
                "no rule files (*.toml) in this folder",
            ));
        }
        match RulePack::from_texts(&files) {
            Ok(mut pack) if errors.is_empty() => {
                pack.skipped = skipped;
                Ok(pack)
            }
            Ok(_) => Err(errors),
            Err(mut e) => {
                errors.append(&mut e);
                Err(errors)
            }
        }
    }

    /// Adds `other`'s rules; a rule of `other` with an id already present replaces it.
    pub fn extend(mut self, other: RulePack) -> RulePack {
        for r in other.rules {
            match self.rules.iter_mut().find(|x| x.info.id == r.info.id) {
                Some(slot) => *slot = r,
                None => self.rules.push(r),
            }
        }
        self.skipped.extend(other.skipped);
        self
    }

    /// The pack for `--rules DIR --rules-mode MODE` (built-in alone without a folder).
    pub fn resolve(dir: Option<&Path>, mode: RulesMode) -> Result<RulePack, Vec<RuleError>> {
        match dir {
            None => Ok(RulePack::builtin()),
            Some(d) => {
                let pack = RulePack::load_dir(d)?;
                Ok(match mode {
                    RulesMode::Replace => pack,
                    RulesMode::Extend => RulePack::builtin().extend(pack),
                })
            }
        }
    }

    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.info.id == id)
    }

    pub fn infos(&self) -> Vec<RuleInfo> {
        self.rules.iter().map(|r| r.info.clone()).collect()
    }
}

/// Collects errors for one file, converting byte spans to line and column.
pub(crate) struct Validator<'t> {
    pub file: &'t Path,
    pub text: &'t str,
    pub errors: Vec<RuleError>,
}

impl<'t> Validator<'t> {
    pub fn err(&mut self, span: Range<usize>, msg: impl Into<String>) {
        self.errors
            .push(RuleError::at(self.file, self.text, span.start, msg));
    }

    /// A positive integer parameter with a default.
    pub fn count(
        &mut self,
        v: &Option<Spanned<i64>>,
        name: &str,
        default: usize,
        min: i64,
    ) -> usize {
        match v {
            None => default,
            Some(s) if *s.get_ref() >= min && *s.get_ref() <= 1_000_000 => *s.get_ref() as usize,
            Some(s) => {
                self.err(
                    s.span(),
                    format!("`{name}` must be between {min} and 1000000"),
                );
                default
            }
        }
    }

    pub fn severity(&mut self, v: &Spanned<String>) -> Option<Severity> {
        match v.get_ref().parse::<Severity>() {
            Ok(s) => Some(s),
            Err(e) => {
                self.err(v.span(), e);
                None
            }
        }
    }

    pub fn regex(&mut self, v: &Spanned<String>) -> Option<regex::bytes::Regex> {
        match compile_regex(v.get_ref()) {
            Ok(r) => Some(r),
            Err(e) => {
                self.err(v.span(), e);
                None
            }
        }
    }

    pub fn tiers(&mut self, v: &Option<Spanned<Vec<RawTier>>>) -> Vec<(usize, Severity)> {
        let mut out = Vec::new();
        let Some(tiers) = v else { return out };
        let mut last = 0i64;
        for t in tiers.get_ref() {
            if *t.at_least.get_ref() < 1 || *t.at_least.get_ref() <= last {
                self.err(
                    t.at_least.span(),
                    "`at_least` must be positive and increase from one tier to the next",
                );
            }
            last = *t.at_least.get_ref();
            if let Some(s) = self.severity(&t.severity) {
                out.push((*t.at_least.get_ref() as usize, s));
            }
        }
        out
    }
}

/// Compiles a rule regex (bytes, Unicode-aware) with a size limit so that a rule file cannot
/// make the engine allocate without bound.
pub(crate) fn compile_regex(pattern: &str) -> Result<regex::bytes::Regex, String> {
    regex::bytes::RegexBuilder::new(pattern)
        .size_limit(4 << 20)
        .build()
        .map_err(|e| {
            let s = e.to_string();
            let one_line: Vec<&str> = s.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
            format!("regex does not compile: {}", one_line.join(" "))
        })
}

/// Parses and validates one rule file. Returns the valid rules and every error found.
pub fn parse_file(path: &Path, text: &str) -> (Vec<Rule>, Vec<RuleError>) {
    let mut v = Validator {
        file: path,
        text,
        errors: Vec::new(),
    };
    let (doc, syntax) = DeTable::parse_recoverable(text);
    for e in syntax {
        let off = e.span().map(|s| s.start).unwrap_or(0);
        v.err(off..off, format!("TOML syntax: {}", e.message().trim()));
    }
    if !v.errors.is_empty() {
        // Recovery may leave a half-built table; its type errors would only be noise.
        return (Vec::new(), v.errors);
    }
    let mut rules = Vec::new();
    let mut saw_rule_key = false;
    for (key, value) in doc.get_ref().iter() {
        if key.get_ref() != "rule" {
            v.err(
                key.span(),
                format!(
                    "unknown key `{}` (a rule file holds `[[rule]]` tables only)",
                    key.get_ref()
                ),
            );
            continue;
        }
        saw_rule_key = true;
        let DeValue::Array(items) = value.get_ref() else {
            v.err(
                value.span(),
                "`rule` must be an array of tables: write `[[rule]]`",
            );
            continue;
        };
        for item in items.iter() {
            if let Some(rule) = parse_rule(&mut v, item) {
                rules.push(rule);
            }
        }
    }
    if !saw_rule_key {
        v.err(0..0, "no `[[rule]]` table in this file");
    }
    (rules, v.errors)
}

fn parse_rule(v: &mut Validator<'_>, item: &Spanned<DeValue<'_>>) -> Option<Rule> {
    let DeValue::Table(table) = item.get_ref() else {
        v.err(item.span(), "each `[[rule]]` entry must be a table");
        return None;
    };
    // Report every unknown key ourselves (serde stops at the first one), then go on with
    // the known keys so that type and validation errors of the same rule are reported too.
    let mut known = DeTable::new();
    for (k, val) in table.iter() {
        if !RULE_KEYS.contains(&k.get_ref().as_ref()) {
            v.err(
                k.span(),
                format!(
                    "unknown key `{}` in a rule (expected one of: {})",
                    k.get_ref(),
                    RULE_KEYS.join(", ")
                ),
            );
            continue;
        }
        let val = match val.get_ref() {
            DeValue::Table(t) if k.get_ref() == "allow" => {
                let mut allow = DeTable::new();
                for (ak, av) in t.iter() {
                    if ALLOW_KEYS.contains(&ak.get_ref().as_ref()) {
                        allow.insert(ak.clone(), av.clone());
                    } else {
                        v.err(
                            ak.span(),
                            format!(
                                "unknown key `{}` in `allow` (expected one of: {})",
                                ak.get_ref(),
                                ALLOW_KEYS.join(", ")
                            ),
                        );
                    }
                }
                Spanned::new(val.span(), DeValue::Table(allow))
            }
            _ => val.clone(),
        };
        known.insert(k.clone(), val);
    }
    let known = Spanned::new(item.span(), DeValue::Table(known));
    let raw = match RawRule::deserialize(ValueDeserializer::from(known)) {
        Ok(r) => r,
        Err(e) => {
            let off = e.span().map(|s| s.start).unwrap_or(item.span().start);
            v.err(off..off, e.message().trim().to_string());
            return None;
        }
    };
    validate(v, raw, item.span())
}

/// Step 2: a raw rule becomes a rule, or errors are recorded.
fn validate(v: &mut Validator<'_>, raw: RawRule, span: Range<usize>) -> Option<Rule> {
    let before = v.errors.len();
    let id = raw.id.get_ref();
    if id.is_empty()
        || !id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        v.err(
            raw.id.span(),
            format!("rule id `{id}` must be lowercase letters, digits and `-`"),
        );
    }
    for (name, val) in [
        ("summary", &raw.summary),
        ("description", &raw.description),
        ("hint", &raw.hint),
    ] {
        if val.get_ref().trim().is_empty() {
            v.err(val.span(), format!("`{name}` must not be empty"));
        }
    }
    if raw.summary.get_ref().contains('\n') {
        v.err(raw.summary.span(), "`summary` must be one line");
    }
    let severity = v.severity(&raw.severity);
    let kind = rules::validate_kind(v, &raw);
    let allow = crate::allow::Allow::from_raw(v, raw.allow.as_ref(), raw.kind.get_ref());
    if v.errors.len() != before {
        return None;
    }
    let (line, _) = crate::error::line_col(v.text, span.start);
    Some(Rule {
        info: RuleInfo {
            id: id.clone(),
            kind: raw.kind.get_ref().clone(),
            severity: severity?,
            summary: raw.summary.get_ref().trim().to_string(),
            description: raw.description.get_ref().trim().to_string(),
            hint: raw.hint.get_ref().trim().to_string(),
            source: format!("{}:{}", v.file.display(), line),
        },
        enabled: raw.enabled.map(|e| *e.get_ref()).unwrap_or(true),
        kind: kind?,
        allow,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errs(text: &str) -> Vec<String> {
        let (_, e) = parse_file(Path::new("t.toml"), text);
        e.iter().map(|e| e.to_string()).collect()
    }

    const GOOD: &str = r#"
[[rule]]
id = "bcc"
kind = "bcc-header-leak"
severity = "high"
summary = "s"
description = "d"
hint = "h"
"#;

    #[test]
    fn builtin_pack_is_valid_and_has_every_kind() {
        let p = RulePack::builtin();
        for k in rules::KINDS {
            assert!(
                p.rules.iter().any(|r| r.info.kind == *k),
                "no builtin rule of kind {k}"
            );
        }
    }

    #[test]
    fn good_file_parses() {
        let (r, e) = parse_file(Path::new("t.toml"), GOOD);
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].info.source, "t.toml:2");
    }

    #[test]
    fn every_unknown_key_is_reported_with_its_line() {
        let text = format!(
            "{GOOD}colour = 1\n[rule.allow]\nsendrs = []\n\n[[rule]]\nid = \"x\"\nbogus = true\n"
        );
        let e = errs(&text);
        assert!(
            e.iter()
                .any(|m| m.starts_with("t.toml:9:1: unknown key `colour`")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.starts_with("t.toml:11:1: unknown key `sendrs`")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.starts_with("t.toml:15:1: unknown key `bogus`")),
            "{e:?}"
        );
    }

    #[test]
    fn bad_regex_bad_severity_and_wrong_kind_keys_are_all_reported() {
        let text = r#"
[[rule]]
id = "k"
kind = "content-regex"
severity = "urgent"
summary = "s"
description = "d"
hint = "h"
regex = "AKIA[0-9"
min_members = 3

[[rule]]
id = "k2"
kind = "no-such-kind"
severity = "low"
summary = "s"
description = "d"
hint = "h"
"#;
        let e = errs(text);
        assert!(
            e.iter()
                .any(|m| m.starts_with("t.toml:5:12: unknown severity")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.starts_with("t.toml:9:9: regex does not compile")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.starts_with("t.toml:10:15: `min_members` does not apply")),
            "{e:?}"
        );
        assert!(
            e.iter().any(|m| m.starts_with("t.toml:14:8: unknown kind")),
            "{e:?}"
        );
        assert_eq!(e.len(), 4, "{e:?}");
    }

    #[test]
    fn missing_field_and_type_errors_have_positions() {
        let e = errs("[[rule]]\nid = 3\n");
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("t.toml:2:6:"), "{e:?}");
        let e = errs("[[rule]]\nid = \"a\"\n");
        assert!(
            e[0].starts_with("t.toml:1:1:") && e[0].contains("missing field"),
            "{e:?}"
        );
    }

    #[test]
    fn unknown_keys_do_not_hide_other_errors_of_the_rule() {
        let text = format!("{}colour = 1\n", GOOD.replace("\"high\"", "\"urgent\""));
        let e = errs(&text);
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].starts_with("t.toml:9:1: unknown key `colour`"),
            "{e:?}"
        );
        assert!(
            e[1].starts_with("t.toml:5:12: unknown severity `urgent`"),
            "{e:?}"
        );
    }

    #[test]
    fn syntax_errors_are_reported() {
        let e = errs("[[rule]\nid = \n");
        assert!(!e.is_empty());
        assert!(e[0].starts_with("t.toml:1:"), "{e:?}");
    }

    #[test]
    fn duplicate_ids_across_files_are_errors() {
        let files = vec![
            (PathBuf::from("a.toml"), GOOD.to_string()),
            (PathBuf::from("b.toml"), GOOD.to_string()),
        ];
        let e = RulePack::from_texts(&files).unwrap_err();
        assert_eq!(e.len(), 1);
        assert!(
            e[0].to_string()
                .starts_with("b.toml:2:1: duplicate rule id `bcc`"),
            "{e:?}"
        );
    }

    #[test]
    fn extend_replaces_same_id_and_appends_new() {
        let base = RulePack::builtin();
        let n = base.rules.len();
        let (mine, e) = parse_file(
            Path::new("mine.toml"),
            &GOOD
                .replace("\"bcc\"", "\"bcc-header-leak\"")
                .replace("\"high\"", "\"low\""),
        );
        assert!(e.is_empty());
        let p = base.extend(RulePack {
            rules: mine,
            skipped: vec![],
        });
        assert_eq!(p.rules.len(), n);
        assert_eq!(
            p.get("bcc-header-leak").unwrap().info.severity,
            Severity::Low
        );
    }
}
