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
use crate::raw::{self, RawRule, Validator};
use crate::rules::{self, RuleKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::de::{DeTable, DeValue};
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

/// Files in a rules folder that are not rule packs (the remediation policy lives beside them).
const NOT_RULE_FILES: &[&str] = &["remediation.toml"];

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
    /// `override = true`: meant to replace the built-in rule of the same id.
    pub overrides: bool,
    /// Line and column of the `id` value, for errors about the rule as a whole.
    pub(crate) id_at: (usize, usize),
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
    /// The folder's rules are added; a rule with a built-in id replaces the built-in one
    /// only with `override = true` (otherwise an error).
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
    /// The default pack compiled into the binary. Its regexes compile on first use
    /// ([`crate::raw::RuleRegex`]); [`RulePack::builtin_checked`] compiles them all.
    pub fn builtin() -> RulePack {
        let files = BUILTIN.iter().map(|(name, text)| (Path::new(*name), *text));
        // The built-in pack is tested (`leakaudit rules validate` / unit test below); an
        // error here is a build defect, not user input.
        RulePack::from_files(files, true)
            .unwrap_or_else(|errors| panic!("built-in rule pack is invalid: {errors:?}"))
    }

    /// The default pack validated as a rule folder is (`rules validate` without a folder):
    /// every regex compiled now.
    pub fn builtin_checked() -> Result<RulePack, Vec<RuleError>> {
        let files = BUILTIN.iter().map(|(name, text)| (Path::new(*name), *text));
        RulePack::from_files(files, false)
    }

    /// Validated texts (`(file name, content)`), every error of every file collected.
    pub fn from_texts(files: &[(PathBuf, String)]) -> Result<RulePack, Vec<RuleError>> {
        RulePack::from_files(files.iter().map(|(p, t)| (p.as_path(), t.as_str())), false)
    }

    /// [`RulePack::from_texts`]; with `defer_regexes`, regexes are compiled on first use.
    fn from_files<'a>(
        files: impl Iterator<Item = (&'a Path, &'a str)>,
        defer_regexes: bool,
    ) -> Result<RulePack, Vec<RuleError>> {
        let mut rules: Vec<Rule> = Vec::new();
        let mut errors = Vec::new();
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        for (path, text) in files {
            let (rs, errs) = parse_file_with(path, text, defer_regexes);
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

    /// Extend mode's check of `user` against `self` (the built-in pack): a user rule with a
    /// built-in id must say `override = true` (silently replacing one downgraded AWS keys
    /// from critical to low), and `override = true` must name a built-in rule.
    pub fn check_overrides(&self, user: &RulePack) -> Vec<RuleError> {
        let mut errors = Vec::new();
        for r in &user.rules {
            let file = r
                .info
                .source
                .rsplit_once(':')
                .map_or(r.info.source.as_str(), |(f, _)| f);
            let (line, col) = r.id_at;
            let message = match (self.get(&r.info.id), r.overrides) {
                // The shipped `rules/` folder itself (same file, same definition).
                (Some(b), false) if b.info == r.info => continue,
                (Some(b), false) => format!(
                    "rule id `{}` is a built-in rule ({}, {}); add `override = true` to \
                     replace it, or choose another id",
                    r.info.id,
                    b.info.source,
                    b.info.severity.as_str()
                ),
                (None, true) => format!(
                    "`override = true` but there is no built-in rule `{}`",
                    r.info.id
                ),
                _ => continue,
            };
            errors.push(RuleError {
                file: PathBuf::from(file),
                line,
                col,
                message,
            });
        }
        errors
    }

    /// The ids of `user`'s rules that replace a rule of `self` (the built-in pack).
    pub fn overridden_by(&self, user: &RulePack) -> Vec<String> {
        user.rules
            .iter()
            .filter(|r| r.overrides && self.get(&r.info.id).is_some())
            .map(|r| r.info.id.clone())
            .collect()
    }

    /// Adds `other`'s rules; a rule of `other` with an id already present replaces it
    /// (`resolve` first requires `override = true` for that, see `check_overrides`).
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
                match mode {
                    RulesMode::Replace => Ok(pack),
                    RulesMode::Extend => {
                        let builtin = RulePack::builtin();
                        let errors = builtin.check_overrides(&pack);
                        if errors.is_empty() {
                            Ok(builtin.extend(pack))
                        } else {
                            Err(errors)
                        }
                    }
                }
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

/// Parses and validates one rule file. Returns the valid rules and every error found.
pub fn parse_file(path: &Path, text: &str) -> (Vec<Rule>, Vec<RuleError>) {
    parse_file_with(path, text, false)
}

/// [`parse_file`]; with `defer_regexes`, regexes are not compiled (nor checked) here.
fn parse_file_with(path: &Path, text: &str, defer_regexes: bool) -> (Vec<Rule>, Vec<RuleError>) {
    let mut v = Validator::new(path, text);
    v.defer_regexes = defer_regexes;
    let (doc, syntax) = DeTable::parse_recoverable(text);
    let mut broken_at = Vec::new();
    for e in syntax {
        let off = e.span().map(|s| s.start).unwrap_or(0);
        broken_at.push(off);
        v.err(off..off, format!("TOML syntax: {}", e.message().trim()));
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
        // A recovered table is half-built: its errors would be noise, so a rule whose text
        // (its `[[rule]]` line up to the next one) holds a syntax error is skipped and the
        // other rules of the file are still checked.
        let starts: Vec<usize> = items.iter().map(|i| i.span().start).collect();
        for (k, item) in items.iter().enumerate() {
            let region = starts[k]..starts.get(k + 1).copied().unwrap_or(usize::MAX);
            if broken_at.iter().any(|o| region.contains(o)) {
                continue;
            }
            if let Some(rule) = parse_rule(&mut v, item) {
                rules.push(rule);
            }
        }
    }
    if !saw_rule_key {
        v.err(0..0, "no `[[rule]]` table in this file");
    }
    // In file order, whichever check found them.
    v.errors.sort_by_key(|e| (e.line, e.col));
    (rules, v.errors)
}

fn parse_rule(v: &mut Validator<'_>, item: &Spanned<DeValue<'_>>) -> Option<Rule> {
    let raw = raw::read_rule(v, item)?;
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
    let id_at = crate::error::line_col(v.text, raw.id.span().start);
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
        overrides: raw.r#override.map(|e| *e.get_ref()).unwrap_or(false),
        id_at,
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
    fn builtin_pack_validates() {
        // Every regex compiled, as `builtin()` does not: its rules run them on first use.
        let checked = RulePack::builtin_checked().expect("the built-in pack validates");
        let lazy = RulePack::builtin();
        assert_eq!(checked.infos(), lazy.infos());
    }

    #[test]
    fn builtin_pack_is_valid_and_has_every_kind() {
        let p = RulePack::builtin();
        for k in rules::kind_names() {
            assert!(
                p.rules.iter().any(|r| r.info.kind == k),
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
        assert_eq!(e.len(), 6, "{e:?}");
        assert!(
            e[0].starts_with("t.toml:1:1: missing field `kind`"),
            "{e:?}"
        );
        assert!(e[5].starts_with("t.toml:2:6: invalid type"), "{e:?}");
    }

    #[test]
    fn rule_file_with_three_errors_gives_three_located_errors() {
        // One missing field, one type error, one bad value: all three in one run.
        let text = "[[rule]]\nid = \"a\"\nkind = \"seed-phrase\"\nseverity = \"high\"\n\
                    summary = \"s\"\ndescription = 7\n\n\
                    [[rule]]\nid = \"b\"\nkind = \"bcc-header-leak\"\nseverity = \"hgh\"\n\
                    summary = \"s\"\ndescription = \"d\"\nhint = \"h\"\n";
        let e = errs(text);
        assert_eq!(
            e,
            [
                "t.toml:1:1: missing field `hint`",
                "t.toml:6:15: invalid type: integer `7`, expected a string",
                "t.toml:11:12: unknown severity `hgh` (info, low, medium, high, critical)",
            ]
        );
    }

    #[test]
    fn unknown_keys_do_not_hide_other_errors_of_the_rule() {
        let text = format!("{}colour = 1\n", GOOD.replace("\"high\"", "\"urgent\""));
        let e = errs(&text);
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].starts_with("t.toml:5:12: unknown severity `urgent`"),
            "{e:?}"
        );
        assert!(
            e[1].starts_with("t.toml:9:1: unknown key `colour`"),
            "{e:?}"
        );
    }

    #[test]
    fn syntax_error_does_not_hide_the_other_rules_of_the_file() {
        // An unterminated string in the first rule, a bad severity in the second.
        let text = format!(
            "[[rule]]\nid = \"a\"\nhint = \"unterminated\n{}",
            GOOD.replace("\"high\"", "\"hgh\"")
        );
        let e = errs(&text);
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].starts_with("t.toml:3:21: TOML syntax:"), "{e:?}");
        assert!(
            e[1].starts_with("t.toml:8:12: unknown severity `hgh`"),
            "{e:?}"
        );
        // A broken value in a valid rule's file: no error is invented for the good rule.
        let text = format!("{GOOD}\n[[rule]]\nid = \"b\"\nhint = \n");
        let (rules, e) = parse_file(Path::new("t.toml"), &text);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(rules.len(), 1);
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

    #[test]
    fn custom_rule_silently_replaces_builtin_regression() {
        let dir = tempfile::tempdir().unwrap();
        let text = GOOD
            .replace("\"bcc\"", "\"bcc-header-leak\"")
            .replace("\"high\"", "\"low\"");
        std::fs::write(dir.path().join("mine.toml"), &text).unwrap();
        let e = RulePack::resolve(Some(dir.path()), RulesMode::Extend).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        let shown = e[0].to_string();
        assert!(
            shown.contains("mine.toml:3:6: rule id `bcc-header-leak` is a built-in"),
            "{shown}"
        );
        assert!(shown.contains("override = true"), "{shown}");
        // Replace mode has no built-in pack to shadow.
        assert!(RulePack::resolve(Some(dir.path()), RulesMode::Replace).is_ok());

        let over = text.replace("kind =", "override = true\nkind =");
        std::fs::write(dir.path().join("mine.toml"), &over).unwrap();
        let p = RulePack::resolve(Some(dir.path()), RulesMode::Extend).unwrap();
        assert_eq!(
            p.get("bcc-header-leak").unwrap().info.severity,
            Severity::Low
        );
        let user = RulePack::load_dir(dir.path()).unwrap();
        assert_eq!(
            RulePack::builtin().overridden_by(&user),
            vec!["bcc-header-leak"]
        );
    }

    #[test]
    fn override_of_no_builtin_rule_is_an_error() {
        let (mine, e) = parse_file(
            Path::new("mine.toml"),
            &GOOD.replace("kind =", "override = true\nkind ="),
        );
        assert!(e.is_empty(), "{e:?}");
        let user = RulePack {
            rules: mine,
            skipped: vec![],
        };
        let errs = RulePack::builtin().check_overrides(&user);
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].to_string().contains("no built-in rule `bcc`"),
            "{}",
            errs[0]
        );
    }
}
