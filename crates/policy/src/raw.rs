//! Rule files as written ([`RawRule`]) and the [`Validator`] that collects their errors.
//!
//! This module is a leaf: it knows TOML, positions and severities, nothing about kinds or
//! packs, so every rule kind (`rules/<kind>.rs`) and the pack loader (`pack.rs`) can use it
//! without importing each other.
//!
//! Tables are read field by field from the parsed document (not with one serde call, which
//! stops at the first error): every unknown key, every missing field and every type error of
//! every table is reported, each at its own position.
//!
//! Adding a rule parameter: one line in the `params` section of [`RawRule`] below, then the
//! key in the kind's `KEYS` and its use in the kind's `from_raw` (`rules/<kind>.rs`).

use crate::error::RuleError;
use crate::severity::Severity;
use serde::de::DeserializeOwned;
use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;
use toml::de::{DeValue, ValueDeserializer};
use toml::Spanned;

/// Collects errors for one file, converting byte spans to line and column.
pub(crate) struct Validator<'t> {
    pub file: &'t Path,
    pub text: &'t str,
    pub errors: Vec<RuleError>,
    /// Regexes compile on first use, not here: for the built-in pack only (see [`RuleRegex`]).
    pub defer_regexes: bool,
}

impl<'t> Validator<'t> {
    pub fn new(file: &'t Path, text: &'t str) -> Validator<'t> {
        Validator {
            file,
            text,
            errors: Vec::new(),
            defer_regexes: false,
        }
    }

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
        self.count_in(v, name, default, min, 1_000_000)
    }

    /// An integer parameter in `min..=max` with a default.
    pub fn count_in(
        &mut self,
        v: &Option<Spanned<i64>>,
        name: &str,
        default: usize,
        min: i64,
        max: i64,
    ) -> usize {
        match v {
            None => default,
            Some(s) if (min..=max).contains(s.get_ref()) => *s.get_ref() as usize,
            Some(s) => {
                self.err(
                    s.span(),
                    format!("`{name}` must be between {min} and {max}"),
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

    pub fn regex(&mut self, v: &Spanned<String>) -> Option<RuleRegex> {
        if self.defer_regexes {
            return Some(RuleRegex {
                source: v.get_ref().clone(),
                compiled: OnceLock::new(),
            });
        }
        match RuleRegex::new(v.get_ref()) {
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

/// A rule's regex. A rule file's regexes compile when the file is validated, so that a bad
/// one is an error with its file:line. The built-in pack's compile on first use (its tests
/// compile every one: `builtin_pack_validates`): `scan` builds the pack for its thresholds
/// alone and never runs a content rule, and compiling them was ~1 ms of every run.
#[derive(Debug, Clone)]
pub struct RuleRegex {
    source: String,
    compiled: OnceLock<regex::bytes::Regex>,
}

impl RuleRegex {
    /// Compiled now ([`compile_regex`]'s limits and messages).
    pub(crate) fn new(pattern: &str) -> Result<RuleRegex, String> {
        let compiled = OnceLock::new();
        let _ = compiled.set(compile_regex(pattern)?);
        Ok(RuleRegex {
            source: pattern.to_owned(),
            compiled,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn regex(&self) -> &regex::bytes::Regex {
        self.compiled.get_or_init(|| {
            // Only the built-in pack defers, and its tests compile every one of its regexes.
            compile_regex(&self.source).expect("a built-in rule regex compiles")
        })
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

/// A value read from the parsed document; errors go to the validator (all of them, not the
/// first), and `None` means at least one was recorded.
pub(crate) trait FromDe: Sized {
    fn from_de(v: &mut Validator<'_>, value: &Spanned<DeValue<'_>>) -> Option<Self>;
}

/// Scalars go through serde, so messages and integer forms (`0x10`, `1_000`) are toml's.
fn scalar<T: DeserializeOwned>(v: &mut Validator<'_>, value: &Spanned<DeValue<'_>>) -> Option<T> {
    match T::deserialize(ValueDeserializer::from(value.clone())) {
        Ok(x) => Some(x),
        Err(e) => {
            let off = e.span().map(|s| s.start).unwrap_or(value.span().start);
            v.err(off..off, e.message().trim().to_string());
            None
        }
    }
}

impl FromDe for String {
    fn from_de(v: &mut Validator<'_>, value: &Spanned<DeValue<'_>>) -> Option<Self> {
        scalar(v, value)
    }
}

impl FromDe for i64 {
    fn from_de(v: &mut Validator<'_>, value: &Spanned<DeValue<'_>>) -> Option<Self> {
        scalar(v, value)
    }
}

impl FromDe for bool {
    fn from_de(v: &mut Validator<'_>, value: &Spanned<DeValue<'_>>) -> Option<Self> {
        scalar(v, value)
    }
}

impl<T: FromDe> FromDe for Spanned<T> {
    fn from_de(v: &mut Validator<'_>, value: &Spanned<DeValue<'_>>) -> Option<Self> {
        T::from_de(v, value).map(|x| Spanned::new(value.span(), x))
    }
}

impl<T: FromDe> FromDe for Vec<T> {
    fn from_de(v: &mut Validator<'_>, value: &Spanned<DeValue<'_>>) -> Option<Self> {
        let DeValue::Array(items) = value.get_ref() else {
            v.err(
                value.span(),
                format!("expected an array, found {}", value.get_ref().type_str()),
            );
            return None;
        };
        // Every element is read, so each bad one is reported.
        let all: Vec<Option<T>> = items.iter().map(|x| T::from_de(v, x)).collect();
        all.into_iter().collect()
    }
}

/// A table of string keys to values (`[rule.triage.severity]`): every entry read, each bad
/// one reported.
impl<T: FromDe> FromDe for std::collections::BTreeMap<String, T> {
    fn from_de(v: &mut Validator<'_>, value: &Spanned<DeValue<'_>>) -> Option<Self> {
        let DeValue::Table(table) = value.get_ref() else {
            v.err(
                value.span(),
                format!("expected a table, found {}", value.get_ref().type_str()),
            );
            return None;
        };
        let all: Vec<Option<(String, T)>> = table
            .iter()
            .map(|(k, x)| T::from_de(v, x).map(|x| (k.get_ref().to_string(), x)))
            .collect();
        all.into_iter().collect()
    }
}

/// The TOML key of a field: its name, without `r#` for keywords (`r#override` -> `override`).
macro_rules! key_name {
    ($f:ident) => {
        strip_raw(stringify!($f))
    };
}

const fn strip_raw(s: &'static str) -> &'static str {
    match s.as_bytes() {
        [b'r', b'#', rest @ ..] => match std::str::from_utf8(rest) {
            Ok(k) => k,
            Err(_) => s,
        },
        _ => s,
    }
}

/// A table type read field by field. Sections: `required` (missing -> error), `optional`
/// (`Option`), `defaulted` (`Default` when absent) and `params` (optional, kind-specific:
/// listed by `PARAM_KEYS` and `params_given`).
macro_rules! raw_table {
    (
        $(#[$meta:meta])*
        $name:ident ($what:literal) {
            required { $( $(#[$rm:meta])* $r:ident : $rt:ty, )* }
            optional { $( $(#[$om:meta])* $o:ident : $ot:ty, )* }
            defaulted { $( $(#[$dm:meta])* $d:ident : $dt:ty, )* }
            params { $( $(#[$pm:meta])* $p:ident : $pt:ty, )* }
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        pub struct $name {
            $( $(#[$rm])* pub $r: Spanned<$rt>, )*
            $( $(#[$om])* pub $o: Option<Spanned<$ot>>, )*
            $( $(#[$dm])* pub $d: $dt, )*
            $( $(#[$pm])* pub $p: Option<Spanned<$pt>>, )*
        }

        impl $name {
            /// Every key this table accepts.
            pub const KEYS: &'static [&'static str] = &[
                $( key_name!($r), )* $( key_name!($o), )* $( key_name!($d), )* $( key_name!($p), )*
            ];
            /// The kind-specific keys.
            #[allow(dead_code)]
            pub const PARAM_KEYS: &'static [&'static str] = &[ $( key_name!($p), )* ];

            /// The kind-specific keys present, with the spans of their values.
            #[allow(dead_code)]
            pub fn params_given(&self) -> Vec<(&'static str, Range<usize>)> {
                #[allow(unused_mut)]
                let mut out = Vec::new();
                $( if let Some(x) = &self.$p { out.push((key_name!($p), x.span())); } )*
                out
            }
        }

        impl FromDe for $name {
            fn from_de(v: &mut Validator<'_>, value: &Spanned<DeValue<'_>>) -> Option<Self> {
                let DeValue::Table(table) = value.get_ref() else {
                    v.err(
                        value.span(),
                        format!("{} must be a table, found {}", $what, value.get_ref().type_str()),
                    );
                    return None;
                };
                for (k, _) in table.iter() {
                    if !Self::KEYS.contains(&k.get_ref().as_ref()) {
                        v.err(
                            k.span(),
                            format!(
                                "unknown key `{}` in {} (expected one of: {})",
                                k.get_ref(),
                                $what,
                                Self::KEYS.join(", ")
                            ),
                        );
                    }
                }
                let get = |key: &str| {
                    table.iter().find(|(k, _)| k.get_ref() == key).map(|(_, x)| x)
                };
                #[allow(unused_mut)]
                let mut ok = true;
                $(
                    let $r = match get(key_name!($r)) {
                        Some(x) => <Spanned<$rt>>::from_de(v, x),
                        None => {
                            let at = value.span().start;
                            v.err(at..at, format!("missing field `{}`", key_name!($r)));
                            None
                        }
                    };
                    ok &= $r.is_some();
                )*
                $(
                    let $o = get(key_name!($o)).map(|x| <Spanned<$ot>>::from_de(v, x));
                    ok &= !matches!($o, Some(None));
                )*
                $(
                    let $d = get(key_name!($d)).map(|x| <$dt>::from_de(v, x));
                    ok &= !matches!($d, Some(None));
                )*
                $(
                    let $p = get(key_name!($p)).map(|x| <Spanned<$pt>>::from_de(v, x));
                    ok &= !matches!($p, Some(None));
                )*
                if !ok {
                    return None;
                }
                Some($name {
                    $( $r: $r?, )*
                    $( $o: $o.flatten(), )*
                    $( $d: $d.flatten().unwrap_or_default(), )*
                    $( $p: $p.flatten(), )*
                })
            }
        }
    };
}

raw_table! {
    /// One rule as written. Every field keeps its position for error messages.
    RawRule ("a rule") {
        required {
            id: String,
            kind: String,
            severity: String,
            summary: String,
            description: String,
            hint: String,
        }
        optional {
            enabled: bool,
            /// `override = true`: replaces the built-in rule of the same id (extend mode).
            r#override: bool,
            allow: RawAllow,
        }
        defaulted {}
        params {
            min_parties: i64,
            tiers: Vec<RawTier>,
            min_members: i64,
            min_addresses: i64,
            keywords: Vec<Spanned<String>>,
            regex: String,
            keep_prefix: i64,
            min_recipients: i64,
            min_words: i64,
            wordlist: String,
            /// `[rule.triage]` (recipient-exposure only), validated in `triage::config`.
            triage: RawTriage,
        }
    }
}

raw_table! {
    /// `[rule.triage]` of the recipient-exposure rule: thresholds and outcome severities.
    RawTriage ("`triage`") {
        required {}
        optional {
            critical_parties: i64,
            high_parties: i64,
            campaign_window_hours: i64,
            campaign_min_addresses: i64,
            variant_min_addresses: i64,
            variant_window_minutes: i64,
        }
        defaulted {
            /// `outcome = "severity"` (see `triage/severity.rs`).
            severity: std::collections::BTreeMap<String, Spanned<String>>,
        }
        params {}
    }
}

raw_table! {
    /// `tiers = [{ at_least = 25, severity = "critical" }]`: severity by count.
    RawTier ("a tier") {
        required {
            at_least: i64,
            severity: String,
        }
        optional {}
        defaulted {}
        params {}
    }
}

raw_table! {
    /// `[rule.allow]`: exceptions scoped to one rule.
    RawAllow ("`allow`") {
        required {}
        optional {}
        defaulted {
            /// Sender addresses (`news@example.com`) or domains (`example.com`).
            senders: Vec<Spanned<String>>,
            /// Recipient domains: addresses there never count for this rule.
            recipient_domains: Vec<Spanned<String>>,
            /// Regexes on the decoded Subject.
            subjects: Vec<Spanned<String>>,
            /// Exact Message-IDs (without angle brackets).
            message_ids: Vec<Spanned<String>>,
            /// `{ name = "X-Mailer", value = "regex" }`.
            headers: Vec<Spanned<RawHeaderMatch>>,
            /// Content rules only: regexes on the matched text (e.g. documented example keys).
            values: Vec<Spanned<String>>,
        }
        params {}
    }
}

raw_table! {
    /// `{ name = "X-Campaign", value = '^internal-' }` in `allow.headers`.
    RawHeaderMatch ("a header match") {
        required {
            name: String,
            value: String,
        }
        optional {}
        defaulted {}
        params {}
    }
}

/// Reads one `[[rule]]` entry; every error of it is recorded.
pub(crate) fn read_rule(v: &mut Validator<'_>, item: &Spanned<DeValue<'_>>) -> Option<RawRule> {
    RawRule::from_de(v, item)
}

#[cfg(test)]
mod tests {
    use super::*;
    use toml::de::DeTable;

    /// Every error of the first `[[rule]]` of `text`, as `line:col: message`.
    fn read(text: &str) -> (Option<RawRule>, Vec<String>) {
        let mut v = Validator::new(Path::new("t.toml"), text);
        let doc = DeTable::parse(text).expect("valid TOML");
        let rules = doc.get_ref().get("rule").expect("[[rule]]");
        let DeValue::Array(items) = rules.get_ref() else {
            panic!("not an array")
        };
        let raw = read_rule(&mut v, &items.iter().next().expect("one rule").clone());
        v.errors.sort_by_key(|e| (e.line, e.col));
        let errs = v
            .errors
            .iter()
            .map(|e| format!("{}:{}: {}", e.line, e.col, e.message))
            .collect();
        (raw, errs)
    }

    #[test]
    fn every_missing_field_is_reported_at_the_rule() {
        let (raw, e) = read("[[rule]]\nid = \"a\"\nkind = \"bcc-header-leak\"\n");
        assert!(raw.is_none());
        assert_eq!(
            e,
            [
                "1:1: missing field `severity`",
                "1:1: missing field `summary`",
                "1:1: missing field `description`",
                "1:1: missing field `hint`",
            ]
        );
    }

    #[test]
    fn every_type_error_of_a_rule_is_reported_at_its_value() {
        let text = "[[rule]]\nid = 3\nkind = \"k\"\nseverity = \"low\"\nsummary = \"s\"\n\
                    description = \"d\"\nhint = true\nmin_words = \"twelve\"\n\
                    keywords = [\"ok\", 5, \"fine\", false]\n";
        let (raw, e) = read(text);
        assert!(raw.is_none());
        assert_eq!(e.len(), 5, "{e:?}");
        for (got, at) in e.iter().zip(["2:6:", "7:8:", "8:13:", "9:19:", "9:30:"]) {
            assert!(got.starts_with(at), "{got} should be at {at}: {e:?}");
        }
    }

    #[test]
    fn errors_inside_tiers_and_allow_are_all_reported() {
        let text = "[[rule]]\nid = \"a\"\nkind = \"k\"\nseverity = \"low\"\nsummary = \"s\"\n\
                    description = \"d\"\nhint = \"h\"\n\
                    tiers = [{ at_least = \"x\" }, { at_least = 2, severity = \"low\", extra = 1 }]\n\
                    [rule.allow]\nsenders = [1]\nheaders = [{ name = \"X\" }]\n";
        let (_, e) = read(text);
        let want = [
            "8:23: invalid type",
            "8:10: missing field `severity`",
            "8:64: unknown key `extra` in a tier",
            "10:12: invalid type",
            "11:12: missing field `value`",
        ];
        assert_eq!(e.len(), want.len(), "{e:?}");
        for w in want {
            assert!(e.iter().any(|m| m.starts_with(w)), "no `{w}` in {e:?}");
        }
    }

    #[test]
    fn params_given_lists_only_present_kind_keys() {
        let text = "[[rule]]\nid = \"a\"\nkind = \"k\"\nseverity = \"low\"\nsummary = \"s\"\n\
                    description = \"d\"\nhint = \"h\"\nenabled = false\nmin_words = 12\n\
                    regex = \"x\"\n";
        let (raw, e) = read(text);
        assert!(e.is_empty(), "{e:?}");
        let given: Vec<&str> = raw.unwrap().params_given().iter().map(|g| g.0).collect();
        assert_eq!(given, ["regex", "min_words"]);
    }
}
