//! Notification templates: the shipped ones (`templates/<lang>.toml`, compiled in) and a
//! folder overriding them per locale (`DIR/<lang>.toml`), with the organisation's name and
//! signature. Everything is validated when loaded, with file and line: unknown keys, unknown
//! placeholders, a reset text without `{link}`, a counted phrase lacking a plural form the
//! language needs, `{organisation}` without an organisation configured. Rendering substitutes
//! in one pass, so a value (an organisation name holding `{link}`) is never expanded again.

use crate::error::{Error, Result};
use regex::Regex;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};
use toml::Spanned;

/// Shipped template sources by language.
pub const TEMPLATES: [(&str, &str); 5] = [
    ("en", include_str!("../../templates/en.toml")),
    ("de", include_str!("../../templates/de.toml")),
    ("fr", include_str!("../../templates/fr.toml")),
    ("es", include_str!("../../templates/es.toml")),
    ("ru", include_str!("../../templates/ru.toml")),
];

/// Text keys of a template, each with the placeholders it may use (`{organisation}` is
/// allowed everywhere) and the one it must use.
const KEYS: [(&str, &[&str], Option<&str>); 10] = [
    ("subject", &[], None),
    ("greeting", &[], None),
    ("happened", &["first_exposed", "messages", "audience"], None),
    ("reset_done", &["expires", "link"], Some("link")),
    ("review_done", &[], None),
    ("no_change", &[], None),
    ("no_account", &[], None),
    ("closing", &["signature"], None),
    ("signature", &[], None),
    ("unknown_date", &[], None),
];

/// The counted phrases (`[plural.<name>]`), each form with `{n}`.
const COUNTED: [&str; 2] = ["messages", "audience"];

/// CLDR plural category of a whole number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PluralForm {
    One,
    Few,
    Many,
    Other,
}

impl PluralForm {
    pub fn as_str(self) -> &'static str {
        match self {
            PluralForm::One => "one",
            PluralForm::Few => "few",
            PluralForm::Many => "many",
            PluralForm::Other => "other",
        }
    }
}

/// The CLDR cardinal rule for whole numbers of `lang` (East Slavic: one/few/many; French:
/// 0 and 1 are singular; the others shipped or likely: one for exactly 1).
pub fn plural_form(lang: &str, n: usize) -> PluralForm {
    match lang {
        "ru" | "uk" | "be" => {
            let (m10, m100) = (n % 10, n % 100);
            if m10 == 1 && m100 != 11 {
                PluralForm::One
            } else if (2..=4).contains(&m10) && !(12..=14).contains(&m100) {
                PluralForm::Few
            } else {
                PluralForm::Many
            }
        }
        "fr" | "pt" => {
            if n <= 1 {
                PluralForm::One
            } else {
                PluralForm::Other
            }
        }
        _ => {
            if n == 1 {
                PluralForm::One
            } else {
                PluralForm::Other
            }
        }
    }
}

/// The forms a language's counted phrases must define.
fn forms_needed(lang: &str) -> &'static [PluralForm] {
    match lang {
        "ru" | "uk" | "be" => &[PluralForm::One, PluralForm::Few, PluralForm::Many],
        _ => &[PluralForm::One, PluralForm::Other],
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPlural {
    one: Option<Spanned<String>>,
    few: Option<Spanned<String>>,
    many: Option<Spanned<String>>,
    other: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplate {
    subject: Option<Spanned<String>>,
    greeting: Option<Spanned<String>>,
    happened: Option<Spanned<String>>,
    reset_done: Option<Spanned<String>>,
    review_done: Option<Spanned<String>>,
    no_change: Option<Spanned<String>>,
    no_account: Option<Spanned<String>>,
    closing: Option<Spanned<String>>,
    signature: Option<Spanned<String>>,
    unknown_date: Option<Spanned<String>>,
    #[serde(default)]
    plural: BTreeMap<String, Spanned<RawPlural>>,
}

impl RawTemplate {
    fn text(&self, key: &str) -> Option<&Spanned<String>> {
        match key {
            "subject" => self.subject.as_ref(),
            "greeting" => self.greeting.as_ref(),
            "happened" => self.happened.as_ref(),
            "reset_done" => self.reset_done.as_ref(),
            "review_done" => self.review_done.as_ref(),
            "no_change" => self.no_change.as_ref(),
            "no_account" => self.no_account.as_ref(),
            "closing" => self.closing.as_ref(),
            "signature" => self.signature.as_ref(),
            "unknown_date" => self.unknown_date.as_ref(),
            _ => None,
        }
    }
}

/// One language's notification texts, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub lang: String,
    pub subject: String,
    pub greeting: String,
    pub happened: String,
    pub reset_done: String,
    pub review_done: String,
    pub no_change: String,
    /// Instead of `no_change`, to an exposed address without an account (a notify-only
    /// notice: no link, nothing changed).
    pub no_account: String,
    pub closing: String,
    pub signature: String,
    pub unknown_date: String,
    /// Counted phrase -> plural form -> text with `{n}`.
    pub plural: BTreeMap<String, BTreeMap<PluralForm, String>>,
}

impl Template {
    fn text(&self, key: &str) -> &str {
        match key {
            "subject" => &self.subject,
            "greeting" => &self.greeting,
            "happened" => &self.happened,
            "reset_done" => &self.reset_done,
            "review_done" => &self.review_done,
            "no_change" => &self.no_change,
            "no_account" => &self.no_account,
            "closing" => &self.closing,
            "signature" => &self.signature,
            _ => &self.unknown_date,
        }
    }

    fn set_text(&mut self, key: &str, v: String) {
        let slot = match key {
            "subject" => &mut self.subject,
            "greeting" => &mut self.greeting,
            "happened" => &mut self.happened,
            "reset_done" => &mut self.reset_done,
            "review_done" => &mut self.review_done,
            "no_change" => &mut self.no_change,
            "no_account" => &mut self.no_account,
            "closing" => &mut self.closing,
            "signature" => &mut self.signature,
            _ => &mut self.unknown_date,
        };
        *slot = v;
    }

    /// `count` in words: the plural form of `name` for it, `{n}` replaced.
    pub fn counted(&self, name: &str, count: usize) -> String {
        let form = plural_form(&self.lang, count);
        self.plural
            .get(name)
            .and_then(|forms| forms.get(&form).or_else(|| forms.get(&PluralForm::Other)))
            .map(|t| t.replace("{n}", &count.to_string()))
            .unwrap_or_else(|| count.to_string())
    }
}

static PLACEHOLDER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\{([A-Za-z0-9_]*)\}").expect("constant regex"));

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> u64 {
    text.get(..offset.min(text.len()))
        .map_or(1, |t| t.matches('\n').count() as u64 + 1)
}

/// What one template file is checked against.
struct Check<'a> {
    path: &'a Path,
    src: &'a str,
    organisation: bool,
    branding: &'a Branding,
    errors: Vec<(u64, String)>,
}

impl Check<'_> {
    fn err(&mut self, offset: usize, msg: String) {
        let line = line_of(self.src, offset);
        self.errors.push((line, msg));
    }

    /// The line of `{name}` inside the value at `span` (the value's own line if not found).
    fn placeholder_at(&self, span: &std::ops::Range<usize>, name: &str) -> usize {
        let raw = self.src.get(span.clone()).unwrap_or("");
        raw.find(&format!("{{{name}}}"))
            .map_or(span.start, |i| span.start + i)
    }

    fn placeholders(&mut self, key: &str, v: &Spanned<String>, allowed: &[&str]) {
        for c in PLACEHOLDER.captures_iter(v.get_ref()) {
            let name = &c[1];
            let at = self.placeholder_at(&v.span(), name);
            if name == "organisation" {
                if !self.organisation {
                    self.err(
                        at,
                        format!("`{key}` uses {{organisation}}, but no `organisation` is set under [notifications] in leakaudit.toml"),
                    );
                }
            } else if !allowed.contains(&name) {
                let mut known: Vec<&str> = allowed.to_vec();
                known.push("organisation");
                self.err(
                    at,
                    format!(
                        "`{key}`: unknown placeholder {{{name}}} (allowed here: {})",
                        known
                            .iter()
                            .map(|k| format!("{{{k}}}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
        }
    }

    fn finish(self) -> Result<()> {
        if self.errors.is_empty() {
            return Ok(());
        }
        Err(Error::BadLines {
            path: self.path.to_path_buf(),
            errors: self
                .errors
                .into_iter()
                .map(|(line, reason)| crate::error::LineError { line, reason })
                .collect(),
        })
    }
}

/// Parses one template file over `base` (the shipped template of its language, or `None`
/// for a new language, which must then define every key).
fn parse_template(
    path: &Path,
    src: &str,
    lang: &str,
    base: Option<&Template>,
    branding: &Branding,
) -> Result<Template> {
    let raw: RawTemplate = toml::from_str(src).map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        line: Some(e.span().map_or(1, |s| line_of(src, s.start))),
        reason: e.message().trim().to_string(),
    })?;
    let mut check = Check {
        path,
        src,
        organisation: branding.organisation.is_some(),
        branding,
        errors: Vec::new(),
    };
    let mut t = base.cloned().unwrap_or_else(|| Template {
        lang: lang.to_string(),
        subject: String::new(),
        greeting: String::new(),
        happened: String::new(),
        reset_done: String::new(),
        review_done: String::new(),
        no_change: String::new(),
        no_account: String::new(),
        closing: String::new(),
        signature: String::new(),
        unknown_date: String::new(),
        plural: BTreeMap::new(),
    });
    t.lang = lang.to_string();
    for (key, allowed, required) in KEYS {
        match raw.text(key) {
            Some(v) => {
                check.placeholders(key, v, allowed);
                if let Some(req) = required {
                    let n = v.get_ref().matches(&format!("{{{req}}}")).count();
                    if n != 1 {
                        check.err(
                            v.span().start,
                            format!("`{key}` must contain {{{req}}} exactly once (it has {n})"),
                        );
                    }
                }
                for why in content_problems(v.get_ref(), check.branding) {
                    check.err(v.span().start, format!("`{key}`: {why}"));
                }
                if key == "subject" && v.get_ref().chars().any(char::is_control) {
                    check.err(v.span().start, "`subject` must be one line".into());
                }
                t.set_text(key, v.get_ref().clone());
            }
            None if base.is_none() => check.err(
                0,
                format!(
                    "missing `{key}` (a language without a shipped template defines every key)"
                ),
            ),
            None => {}
        }
    }
    for (name, forms) in &raw.plural {
        if !COUNTED.contains(&name.as_str()) {
            check.err(
                forms.span().start,
                format!(
                    "[plural.{name}]: unknown counted phrase (known: {})",
                    COUNTED.join(", ")
                ),
            );
            continue;
        }
        let f = forms.get_ref();
        let mut map = BTreeMap::new();
        for (form, v) in [
            (PluralForm::One, &f.one),
            (PluralForm::Few, &f.few),
            (PluralForm::Many, &f.many),
            (PluralForm::Other, &f.other),
        ] {
            if let Some(v) = v {
                check.placeholders(&format!("plural.{name}.{}", form.as_str()), v, &["n"]);
                map.insert(form, v.get_ref().clone());
            }
        }
        for need in forms_needed(lang) {
            if !map.contains_key(need) {
                check.err(
                    forms.span().start,
                    format!(
                        "[plural.{name}]: language `{lang}` needs the form `{}`",
                        need.as_str()
                    ),
                );
            }
        }
        t.plural.insert(name.clone(), map);
    }
    for name in COUNTED {
        if !t.plural.contains_key(name) {
            check.err(0, format!("missing [plural.{name}]"));
        }
    }
    check.finish()?;
    Ok(t)
}

/// The organisation's own settings for every notification (`[notifications]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Branding {
    /// `{organisation}` in templates.
    pub organisation: Option<String>,
    /// Replaces every template's `signature` (the closing's `{signature}`).
    pub signature: Option<String>,
    /// Hosts a template may link to besides the reset page's (`allowed_hosts`).
    pub allowed_hosts: Vec<String>,
    /// The reset page of this run (its host is the one a template may always link to);
    /// `None` when the command has none (reissue takes the plan's from the store).
    pub reset_base_url: Option<String>,
}

impl Branding {
    /// Whether a template may link to `host`.
    fn host_allowed(&self, host: &str) -> bool {
        let reset = self.reset_base_url.as_deref().and_then(super::url_host);
        reset.is_some_and(|r| r.eq_ignore_ascii_case(host))
            || self
                .allowed_hosts
                .iter()
                .any(|h| h.trim_end_matches('.').eq_ignore_ascii_case(host))
    }
}

/// Every problem of a text that goes to every recipient: a link to a host that is neither the
/// reset page's nor allowed (a phishing link, or `{link}` wrapped in a foreign URL), an email
/// address, something that looks like a secret.
fn content_problems(text: &str, branding: &Branding) -> Vec<String> {
    static URL: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"(?i)\b(?:[a-z][a-z0-9+.-]*://|www\.)[^\s<>"'()\[\]{}]*"#)
            .expect("constant regex")
    });
    static SECRET: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)\b(?:selector|token|key|secret|password)=[^\s&{]+|\b[0-9a-f]{32,}\b|[A-Za-z0-9+/_-]{40,}")
            .expect("constant regex")
    });
    let mut out = Vec::new();
    for m in URL.find_iter(text) {
        let url = m.as_str();
        let auth = super::release::authority(url.split_once("://").map_or(url, |(_, r)| r));
        if auth.contains('@') {
            out.push(format!(
                "a link with user information ({url}): it can lead anywhere"
            ));
            continue;
        }
        let host = super::release::host_of(auth).trim_end_matches('.');
        let scheme_ok = url
            .get(..8)
            .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
            || url.get(..4).is_some_and(|s| s.eq_ignore_ascii_case("www."));
        if !scheme_ok {
            out.push(format!("a link that is not https:// ({url})"));
        } else if !branding.host_allowed(host) {
            out.push(format!(
                "a link to {host}, which is neither the reset page's host nor in [notifications] allowed_hosts"
            ));
        }
    }
    if super::check::foreign_addresses(text, &|_| false) > 0 {
        out.push("an email address (a template goes to every recipient)".into());
    }
    if SECRET.is_match(text) {
        out.push("something that looks like a secret (a token, key or password)".into());
    }
    out
}

/// The templates of a run: shipped, overridden per language from a folder, with branding.
#[derive(Debug, Clone)]
pub struct Templates {
    by_lang: BTreeMap<String, Template>,
    branding: Branding,
    /// The folder the overrides came from.
    pub dir: Option<PathBuf>,
}

static BUILTIN: LazyLock<Arc<Templates>> = LazyLock::new(|| {
    Arc::new(
        Templates::load(None, Branding::default()).expect("shipped templates are valid (tested)"),
    )
});

/// The shipped templates, borrowed for the life of the program.
pub(crate) fn builtin_ref() -> &'static Templates {
    &BUILTIN
}

impl Templates {
    /// The shipped templates, no branding.
    pub fn builtin() -> Arc<Templates> {
        Arc::clone(&BUILTIN)
    }

    /// The shipped templates, then every `DIR/<lang>.toml` over them (a new language needs
    /// every key). Other files in `DIR` are ignored; a missing or unreadable `DIR` is an
    /// error. Every problem of every file is reported (file:line).
    pub fn load(dir: Option<&Path>, branding: Branding) -> Result<Templates> {
        for (key, v) in [
            ("organisation", &branding.organisation),
            ("signature", &branding.signature),
        ] {
            // The organisation can reach the Subject header: one line, no control character.
            let bad = |c: char| c.is_control() && (key == "organisation" || c != '\n');
            if let Some(v) = v
                .as_deref()
                .filter(|v| v.trim().is_empty() || v.chars().any(bad))
            {
                return Err(Error::Setting(format!(
                    "[notifications] {key} {v:?}: must be non-empty text{}",
                    if key == "organisation" {
                        " on one line"
                    } else {
                        ""
                    }
                )));
            }
            // Both reach every notification, as a template does.
            if let Some(why) = v
                .as_deref()
                .and_then(|v| content_problems(v, &branding).into_iter().next())
            {
                return Err(Error::Setting(format!("[notifications] {key}: {why}")));
            }
        }
        let mut by_lang = BTreeMap::new();
        for (lang, src) in TEMPLATES {
            let path = PathBuf::from(format!("templates/{lang}.toml"));
            by_lang.insert(
                lang.to_string(),
                parse_template(&path, src, lang, None, &branding)?,
            );
        }
        if let Some(dir) = dir {
            let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
            let mut files: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            files.sort();
            // Every file's problems at once: an operator under pressure fixes them in one go.
            let mut errors = Vec::new();
            for path in files {
                let lang = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().to_ascii_lowercase())
                    .unwrap_or_default();
                if !(2..=3).contains(&lang.len()) || !lang.chars().all(|c| c.is_ascii_lowercase()) {
                    errors.push(Error::Parse {
                        path,
                        line: None,
                        reason:
                            "a template file is named after its language: en.toml, de.toml, pt.toml"
                                .into(),
                    });
                    continue;
                }
                let src = match std::fs::read_to_string(&path) {
                    Ok(s) => s,
                    Err(e) => {
                        errors.push(Error::io(&path, e));
                        continue;
                    }
                };
                match parse_template(&path, &src, &lang, by_lang.get(&lang), &branding) {
                    Ok(t) => {
                        by_lang.insert(lang, t);
                    }
                    Err(e) => errors.push(e),
                }
            }
            match errors.len() {
                0 => {}
                1 => return Err(errors.remove(0)),
                _ => return Err(Error::Several(errors)),
            }
        }
        Ok(Templates {
            by_lang,
            branding,
            dir: dir.map(Path::to_path_buf),
        })
    }

    /// The template language used for `locale`: its primary subtag when there is a template
    /// for it, else `en`.
    pub fn language(&self, locale: &str) -> &str {
        let lang = locale
            .split(['-', '_'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        self.by_lang
            .get_key_value(&lang)
            .map_or("en", |(k, _)| k.as_str())
    }

    /// The template for `locale` (English fallback).
    pub fn get(&self, locale: &str) -> &Template {
        &self.by_lang[self.language(locale)]
    }

    /// Languages with a template.
    pub fn languages(&self) -> impl Iterator<Item = &str> {
        self.by_lang.keys().map(String::as_str)
    }

    /// Substitutes every placeholder of `text` in one pass.
    fn fill(&self, text: &str, t: &Template, n: &super::Notice<'_>) -> String {
        PLACEHOLDER
            .replace_all(text, |c: &regex::Captures<'_>| match &c[1] {
                "first_exposed" => n
                    .first_exposed
                    .map(|d| d.get(..10).unwrap_or(d).to_string())
                    .unwrap_or_else(|| t.unknown_date.clone()),
                "messages" => t.counted("messages", n.messages),
                "audience" => t.counted("audience", n.audience),
                "expires" => n.reset.as_ref().map(|r| r.1.clone()).unwrap_or_default(),
                "link" => n.reset.as_ref().map(|r| r.0.clone()).unwrap_or_default(),
                "organisation" => self.branding.organisation.clone().unwrap_or_default(),
                "signature" => {
                    let s = self.branding.signature.as_deref().unwrap_or(&t.signature);
                    // The signature may name the organisation; nothing else is expanded.
                    s.replace(
                        "{organisation}",
                        self.branding.organisation.as_deref().unwrap_or(""),
                    )
                }
                _ => c[0].to_string(),
            })
            .into_owned()
    }

    /// The subject of a notice.
    pub fn subject(&self, n: &super::Notice<'_>) -> String {
        let t = self.get(n.locale);
        self.fill(&t.subject, t, n)
    }

    /// The text body of a notice.
    pub fn body_text(&self, n: &super::Notice<'_>) -> String {
        let t = self.get(n.locale);
        let mut parts = vec![self.fill(&t.greeting, t, n), self.fill(&t.happened, t, n)];
        if n.reset.is_some() {
            parts.push(self.fill(&t.reset_done, t, n));
        }
        if n.review {
            parts.push(self.fill(&t.review_done, t, n));
        }
        if !n.account {
            parts.push(self.fill(&t.no_account, t, n));
        } else if n.reset.is_none() && !n.review {
            parts.push(self.fill(&t.no_change, t, n));
        }
        parts.push(self.fill(&t.closing, t, n));
        parts.join("\n\n") + "\n"
    }

    /// Every text of every language, for checks that look at the words themselves.
    pub fn texts(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.by_lang.iter().flat_map(|(lang, t)| {
            KEYS.iter()
                .map(move |(k, _, _)| (lang.as_str(), *k, t.text(k)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::Notice;

    fn notice(locale: &str, messages: usize, audience: usize) -> Notice<'_> {
        Notice {
            to: "anna@gmail.com",
            locale,
            first_exposed: Some("2026-03-01T09:00:00Z"),
            messages,
            audience,
            reset: Some((
                "https://shop.example/r?selector=1&token=2".into(),
                "2026-03-02T09:00:00Z".into(),
            )),
            review: false,
            account: true,
        }
    }

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    fn load_err(text: &str, branding: Branding) -> String {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "en.toml", text);
        Templates::load(Some(d.path()), branding)
            .unwrap_err()
            .to_string()
    }

    /// A notify-only notice (no account) has its own paragraph, in every shipped language,
    /// and neither the reset nor the no-change text.
    #[test]
    fn a_notice_without_account_has_its_own_text() {
        let t = Templates::builtin();
        for (lang, _) in TEMPLATES {
            let mut n = notice(lang, 2, 7);
            n.reset = None;
            n.account = false;
            let body = t.body_text(&n);
            let tpl = t.get(lang);
            assert!(!tpl.no_account.is_empty(), "{lang}");
            assert!(body.contains(&tpl.no_account), "{lang}: {body}");
            assert!(!body.contains(&tpl.no_change), "{lang}");
            assert!(!body.contains("https://"), "{lang}");
        }
    }

    #[test]
    fn plural_rules_of_the_shipped_languages() {
        let forms = |lang, ns: &[usize]| -> Vec<&str> {
            ns.iter().map(|&n| plural_form(lang, n).as_str()).collect()
        };
        assert_eq!(
            forms("en", &[0, 1, 2, 166]),
            ["other", "one", "other", "other"]
        );
        assert_eq!(forms("fr", &[0, 1, 2]), ["one", "one", "other"]);
        assert_eq!(
            forms("ru", &[1, 2, 5, 11, 21, 22, 25, 112, 166]),
            ["one", "few", "many", "many", "one", "few", "many", "many", "many"]
        );
    }

    /// Issue 11: "166 other recipient(s)" counted parties and called them recipients.
    #[test]
    fn notification_counts_parties_with_correct_plural() {
        let t = Templates::builtin();
        let body = t.body_text(&notice("en", 1, 166));
        assert!(
            body.contains("visible in 1 message to recipients from 166 other organisations or private mailboxes"),
            "{body}"
        );
        let body = t.body_text(&notice("en", 2, 1));
        assert!(
            body.contains(
                "in 2 messages to recipients from 1 other organisation or private mailbox."
            ),
            "{body}"
        );
        let cases = [
            (
                "de",
                1,
                "in 1 Nachricht für Empfänger aus 166 anderen Organisationen",
            ),
            (
                "fr",
                2,
                "dans 2 messages pour des destinataires de 166 autres organisations",
            ),
            (
                "es",
                1,
                "en 1 mensaje para destinatarios de 166 otras organizaciones",
            ),
            ("ru", 2, "в 2 письмах получателям из 166 других организаций"),
        ];
        for (lang, m, want) in cases {
            let body = t.body_text(&notice(lang, m, 166));
            assert!(body.contains(want), "{lang}: {body}");
        }
        let ru = t.body_text(&notice("ru", 21, 1));
        assert!(
            ru.contains("в 21 письме получателям из 1 другой организации"),
            "{ru}"
        );
        for (lang, key, text) in t.texts() {
            assert!(
                !text.contains("(s)") && !text.contains("(en)") && !text.contains("(ах)"),
                "{lang} {key}: {text}"
            );
        }
    }

    #[test]
    fn every_shipped_template_has_every_key_and_the_link() {
        let t = Templates::builtin();
        assert_eq!(
            t.languages().collect::<Vec<_>>(),
            ["de", "en", "es", "fr", "ru"]
        );
        for (lang, _) in TEMPLATES {
            let body = t.body_text(&notice(lang, 2, 7));
            assert!(
                body.contains("https://shop.example/r?selector=1&token=2"),
                "{lang}"
            );
            assert!(
                body.contains("2026-03-01") && body.contains("2026-03-02"),
                "{lang}"
            );
            assert!(!body.contains('{'), "{lang}: {body}");
        }
        assert_eq!(t.language("de-CH"), "de");
        assert_eq!(t.language("pt_BR"), "en");
    }

    #[test]
    fn folder_overrides_a_language_and_adds_one_with_branding() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "en.toml",
            "subject = \"{organisation}: about your address\"\nsignature = \"The {organisation} team\"\n",
        );
        let mut pt = String::from(TEMPLATES[0].1);
        pt = pt.replace("Hello,", "Olá,");
        write(d.path(), "pt.toml", &pt);
        write(d.path(), "README.md", "not a template");
        let t = Templates::load(
            Some(d.path()),
            Branding {
                organisation: Some("Shop {link}".into()),
                signature: None,
                ..Branding::default()
            },
        )
        .unwrap();
        let n = notice("en-GB", 1, 2);
        assert_eq!(t.subject(&n), "Shop {link}: about your address");
        let body = t.body_text(&n);
        assert!(body.ends_with("The Shop {link} team\n"), "{body}");
        assert!(body.contains("Hello,"), "unset keys keep the shipped text");
        assert_eq!(t.language("pt-BR"), "pt");
        assert!(t.body_text(&notice("pt-BR", 1, 2)).starts_with("Olá,"));
        // The configured signature replaces every language's.
        let t = Templates::load(
            None,
            Branding {
                organisation: None,
                signature: Some("Shop Security".into()),
                ..Branding::default()
            },
        )
        .unwrap();
        assert!(t
            .body_text(&notice("de", 1, 2))
            .ends_with("\nShop Security\n"));
    }

    /// Issue 29 (3): a template links only to the reset page's host or an allowed one, holds
    /// `{link}` exactly once, no address and no secret; every file's problems at once.
    #[test]
    fn template_links_addresses_and_secrets_are_checked_in_every_file_at_once() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "en.toml",
            "reset_done = \"Reset it here: https://evil.example/go?u={link}\"\n",
        );
        write(
            d.path(),
            "de.toml",
            "no_change = \"Bitte bestätigen: https://evil.example/verify\"\n\
             review_done = \"Fragen an c.anderson&#64;gmail.com\"\n\
             closing = \"token=0123456789abcdef0123456789abcdef {signature}\"\n\
             reset_done = \"{link} {link}\"\n",
        );
        let branding = Branding {
            reset_base_url: Some("https://shop.example/reset".into()),
            allowed_hosts: vec!["help.shop.example".into()],
            ..Branding::default()
        };
        let e = Templates::load(Some(d.path()), branding.clone())
            .unwrap_err()
            .to_string();
        for want in [
            "de.toml:1: `no_change`: a link to evil.example",
            "de.toml:2: `review_done`: an email address",
            "de.toml:3: `closing`: something that looks like a secret",
            "de.toml:4: `reset_done` must contain {link} exactly once (it has 2)",
            "en.toml:1: `reset_done`: a link to evil.example",
        ] {
            assert!(e.contains(want), "missing `{want}` in:\n{e}");
        }
        // The reset page's host and the allowed ones are fine, in any case.
        write(
            d.path(),
            "en.toml",
            "no_change = \"Help: https://HELP.shop.example/faq and https://shop.example/account\"\n",
        );
        std::fs::remove_file(d.path().join("de.toml")).unwrap();
        Templates::load(Some(d.path()), branding).unwrap();
        // Without a reset page (reissue) only the allowed hosts are.
        let e = Templates::load(Some(d.path()), Branding::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("a link to HELP.shop.example"), "{e}");
    }

    /// The shipped example folder loads, and its messages pass the outbox gate.
    #[test]
    fn example_folder_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/templates-example");
        let e = Templates::load(Some(&dir), Branding::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("en.toml:5:") && e.contains("no `organisation`"),
            "{e}"
        );
        let t = Templates::load(
            Some(&dir),
            Branding {
                organisation: Some("Shop".into()),
                signature: None,
                ..Branding::default()
            },
        )
        .unwrap();
        let engine = leakaudit_policy::Engine::new(
            leakaudit_policy::RulePack::builtin(),
            leakaudit_scanner::Org::with_defaults(),
            &Default::default(),
        );
        let gate = crate::outbox::OutboxGate::new(&engine);
        let sender = crate::outbox::Sender::new("Sec <sec@shop.example>").unwrap();
        for (locale, want) in [("pt-PT", "Olá,"), ("en", "Dear Shop customer,")] {
            let mut n = notice(locale, 3, 40);
            n.reset = Some((
                crate::outbox::compose::tests::link(),
                "2026-03-02T09:00:00Z".into(),
            ));
            let raw = t.build_message(
                &n,
                &sender,
                "m@shop.example",
                "Sat, 28 Nov 2026 10:00:00 +0000",
            );
            assert_eq!(
                gate.check(&raw, Some("anna@gmail.com")),
                Vec::<String>::new(),
                "{locale}"
            );
            let m = crate::outbox::inspect(&raw).unwrap();
            assert!(m.body.starts_with(want), "{}", m.body);
            assert_eq!(m.language.as_deref(), Some(&locale[..2]));
        }
    }

    #[test]
    fn unknown_placeholder_is_refused_with_its_line() {
        let e = load_err(
            "subject = \"Notice\"\n\nhappened = \"\"\"\nYou were seen by {audiance}.\"\"\"\n",
            Branding::default(),
        );
        assert!(
            e.contains("en.toml:4: `happened`: unknown placeholder {audiance}"),
            "{e}"
        );
    }

    #[test]
    fn reset_text_without_link_is_refused_with_its_line() {
        let e = load_err(
            "greeting = \"Hi\"\nreset_done = \"We reset it, valid until {expires}.\"\n",
            Branding::default(),
        );
        assert!(
            e.contains("en.toml:2: `reset_done` must contain {link}"),
            "{e}"
        );
    }

    #[test]
    fn organisation_placeholder_needs_an_organisation() {
        let e = load_err("subject = \"{organisation} notice\"\n", Branding::default());
        assert!(
            e.contains("en.toml:1:") && e.contains("no `organisation`"),
            "{e}"
        );
    }

    #[test]
    fn unknown_key_and_missing_plural_form_are_refused() {
        let e = load_err("subjet = \"x\"\n", Branding::default());
        assert!(e.contains("en.toml:1") && e.contains("subjet"), "{e}");
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "ru.toml",
            "[plural.messages]\none = \"{n} письме\"\nother = \"{n} письмах\"\n",
        );
        let e = Templates::load(Some(d.path()), Branding::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ru.toml:1: [plural.messages]: language `ru` needs the form `few`"),
            "{e}"
        );
        // A new language must be complete.
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "it.toml", "subject = \"Avviso\"\n");
        let e = Templates::load(Some(d.path()), Branding::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("it.toml") && e.contains("missing `greeting`"),
            "{e}"
        );
    }
}
