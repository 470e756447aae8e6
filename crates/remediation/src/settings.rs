//! The remediation tables of `leakaudit.toml` (the rest of the file is the organisation's,
//! read by `leakaudit_policy::OrgConfig`):
//!
//! ```toml
//! [accounts]
//! empty_balance = "zero"            # or "error" (default)
//! [accounts.map]                    # export column = account column
//! user_id = "id"
//! email_address = "email"
//!
//! [notifications]
//! from = "Shop Security <security@shop.example>"
//! reset_base_url = "https://shop.example/account/reset"
//! organisation = "Shop"
//! signature = "The Shop security team"
//! templates = "templates"           # folder of <lang>.toml, relative to this file
//! ```
//! Unknown keys and bad values are errors with the file and line.

use crate::error::{Error, Result};
use crate::import::ImportOptions;
use crate::outbox::Branding;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::Spanned;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawFile {
    accounts: Option<RawAccounts>,
    notifications: Option<RawNotifications>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawAccounts {
    map: BTreeMap<String, Spanned<String>>,
    empty_balance: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawNotifications {
    from: Option<Spanned<String>>,
    reset_base_url: Option<Spanned<String>>,
    organisation: Option<String>,
    signature: Option<String>,
    templates: Option<PathBuf>,
    /// Hosts a template may link to besides the reset page's.
    allowed_hosts: Vec<String>,
}

/// `[notifications]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotificationSettings {
    pub from: Option<String>,
    pub reset_base_url: Option<String>,
    /// Template folder, made relative to the configuration file's folder.
    pub templates: Option<PathBuf>,
    pub branding: Branding,
}

/// The remediation settings of a configuration file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// `[accounts]`: the column mapping and the empty-balance policy.
    pub accounts: ImportOptions,
    pub notifications: NotificationSettings,
}

fn line_of(text: &str, offset: usize) -> u64 {
    text.get(..offset.min(text.len()))
        .map_or(1, |t| t.matches('\n').count() as u64 + 1)
}

impl Settings {
    /// Reads `path`; relative paths in it are relative to its folder.
    pub fn load(path: &Path) -> Result<Settings> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Settings::from_text(path, &text)
    }

    /// The remediation settings of a file already read (`path` names it in errors and
    /// anchors its relative paths).
    pub fn from_text(path: &Path, text: &str) -> Result<Settings> {
        let mut s = Settings::parse(path, text)?;
        if let Some(t) = &s.notifications.templates {
            if t.is_relative() {
                let base = path.parent().unwrap_or(Path::new("."));
                s.notifications.templates = Some(base.join(t));
            }
        }
        Ok(s)
    }

    /// Parses `text` (named `path` in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Settings> {
        let err = |offset: usize, reason: String| Error::Parse {
            path: path.to_path_buf(),
            line: Some(line_of(text, offset)),
            reason,
        };
        let raw: RawFile = toml::from_str(text)
            .map_err(|e| err(e.span().map_or(0, |s| s.start), e.message().trim().into()))?;
        let mut out = Settings::default();
        if let Some(a) = raw.accounts {
            for (from, to) in &a.map {
                out.accounts
                    .add_map(&format!("{from}={}", to.get_ref()))
                    .map_err(|why| err(to.span().start, format!("[accounts.map]: {why}")))?;
            }
            if let Some(p) = &a.empty_balance {
                out.accounts.empty_balance = p.get_ref().parse().map_err(|why| {
                    err(p.span().start, format!("[accounts] empty_balance {why}"))
                })?;
            }
        }
        if let Some(n) = raw.notifications {
            if let Some(f) = &n.from {
                crate::outbox::Sender::new(f.get_ref())
                    .map_err(|e| err(f.span().start, format!("[notifications] from: {e}")))?;
            }
            out.notifications = NotificationSettings {
                from: n.from.map(Spanned::into_inner),
                reset_base_url: n.reset_base_url.map(Spanned::into_inner),
                templates: n.templates,
                branding: Branding {
                    organisation: n.organisation,
                    signature: n.signature,
                    allowed_hosts: n.allowed_hosts,
                    reset_base_url: None,
                },
            };
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_read_and_checked_with_lines() {
        let text = "internal_domains = [\"shop.example\"]\n\n[accounts]\nempty_balance = \"zero\"\n[accounts.map]\nuser_id = \"id\"\n\n[notifications]\nfrom = \"Sec <sec@shop.example>\"\norganisation = \"Shop\"\ntemplates = \"tpl\"\n";
        let s = Settings::parse(Path::new("leakaudit.toml"), text).unwrap();
        assert_eq!(
            s.accounts.map.get("user_id").map(String::as_str),
            Some("id")
        );
        assert_eq!(s.accounts.empty_balance, crate::EmptyBalance::Zero);
        assert_eq!(
            s.notifications.from.as_deref(),
            Some("Sec <sec@shop.example>")
        );
        assert_eq!(
            s.notifications.branding.organisation.as_deref(),
            Some("Shop")
        );
        let bad = |t: &str| {
            Settings::parse(Path::new("leakaudit.toml"), t)
                .unwrap_err()
                .to_string()
        };
        let e = bad("[accounts.map]\n\nuser_id = \"identifier\"\n");
        assert!(e.starts_with("leakaudit.toml:3: [accounts.map]"), "{e}");
        let e = bad("[notifications]\nfrom = \"a@x.example, b@y.example\"\n");
        assert!(
            e.starts_with("leakaudit.toml:2: [notifications] from"),
            "{e}"
        );
        let e = bad("[notifications]\nsender = \"a@x.example\"\n");
        assert!(
            e.starts_with("leakaudit.toml:2:") && e.contains("sender"),
            "{e}"
        );
        let e = bad("[accounts]\nempty_balance = \"none\"\n");
        assert!(e.starts_with("leakaudit.toml:2:"), "{e}");
    }
}
