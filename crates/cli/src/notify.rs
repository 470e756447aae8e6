//! The notification settings shared by `remediate apply`, `remediate reissue` and
//! `incident --apply`: sender, reset page and templates, from the flags over the
//! `[notifications]` table of `leakaudit.toml`. There is no built-in sender or reset page:
//! a placeholder default once reset 443 accounts and staged 950 mails nobody could receive.

use crate::config::RunConfig;
use anyhow::Context;
use leakaudit_remediation::outbox::{
    check_reset_base_url, is_placeholder_host, url_host, Sender, Templates,
};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args, Clone, Debug, Default)]
pub struct NotifyArgs {
    /// The sender (From) of the notifications: one mailbox, ASCII address [default: `from`
    /// under [notifications] in leakaudit.toml].
    #[arg(long, value_name = "MAILBOX")]
    pub from: Option<String>,
    /// The password-reset page of the notifications; `?selector=...&token=...` is appended
    /// [default: `reset_base_url` under [notifications] in leakaudit.toml].
    #[arg(long, value_name = "URL")]
    pub reset_base_url: Option<String>,
    /// Folder of notification templates (`en.toml`, `de.toml`...) overriding the shipped
    /// ones per language [default: `templates` under [notifications] in leakaudit.toml].
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
}

/// The resolved notification settings.
pub struct Notify {
    pub sender: Sender,
    /// Empty when the command takes the reset page from the store (reissue).
    pub reset_base_url: String,
    pub templates: Arc<Templates>,
}

impl NotifyArgs {
    /// Flags over the configuration; `reset_page` says whether this command needs one.
    pub fn resolve(&self, run: &RunConfig, reset_page: bool) -> anyhow::Result<Notify> {
        let settings = run.settings()?.notifications;
        let from = self.from.clone().or(settings.from);
        let base = self.reset_base_url.clone().or(settings.reset_base_url);
        let (from, base) = match (from, base) {
            (Some(f), Some(b)) => (f, b),
            (Some(f), None) if !reset_page => (f, String::new()),
            _ => anyhow::bail!(
                "the notifications need a real sender and reset page, and there are no defaults: \
                 pass --from MAILBOX (or set `from` under [notifications] in leakaudit.toml){}",
                if reset_page {
                    " and --reset-base-url URL (or `reset_base_url` under [notifications])"
                } else {
                    ""
                }
            ),
        };
        let sender = Sender::new(&from)?;
        if !base.is_empty() {
            // Before anything is written: the links of every notification are made from it.
            check_reset_base_url(&base)?;
        }
        if is_placeholder_host(&sender.from_domain) {
            eprintln!(
                "note: the sender {from} is a .invalid placeholder: release will refuse these notifications"
            );
        }
        if url_host(&base).is_some_and(is_placeholder_host) {
            eprintln!(
                "note: the reset page {base} is on a .invalid placeholder host: release will refuse these notifications"
            );
        }
        let dir = self.templates.clone().or(settings.templates);
        let mut branding = settings.branding;
        // A template may link to the reset page's host (and the allowed ones) only.
        branding.reset_base_url = (!base.is_empty()).then(|| base.clone());
        let templates = Templates::load(dir.as_deref(), branding)
            .with_context(|| "loading the notification templates")?;
        Ok(Notify {
            sender,
            reset_base_url: base,
            templates: Arc::new(templates),
        })
    }
}
