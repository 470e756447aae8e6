//! The notification outbox: one message per user, exactly one address in To, no Cc, no Bcc,
//! in the account's language, written as a Maildir; and the release gate that re-checks
//! every message so the tool never repeats the leak.
//!
//! Layout of an outbox `DIR`:
//! * `DIR/staged/{tmp,new,cur}`: what `apply` writes (tmp/ then rename to new/, fsynced).
//!   File names are deterministic per (plan, account), so a resumed apply replaces a message
//!   instead of adding a second one.
//! * `DIR/apply-state.json`: written when every action of a plan is done or failed: every
//!   done message's file with its SHA-256 and its one expected recipient, and the accounts
//!   (and notices) that failed.
//! * `DIR/released/{tmp,new,cur}`: where `release` moves the messages once all pass the
//!   check; the mail system picks them up from there.
//!
//! Modules, in the order a notification goes through them:
//! * [`compose`]: templates, [`Notice`] -> message bytes, the reset link format.
//! * [`check`]: the [`OutboxGate`] (structure, body, exposure model, every rule of the
//!   configured policy engine) and [`inspect`].
//! * [`maildir`]: the [`Outbox`] folders, durable staging, `apply-state.json`.
//! * [`release`](mod@release): re-checks every staged message, then moves them all or none.
//! * [`send`](mod@send): re-checks every released message and delivers it over SMTP, once.
//!
//! Templates live in `crates/remediation/templates/<lang>.toml` (en, de, fr, es, ru), compiled
//! in, and may be overridden per language from a folder ([`templates`]); a locale `de-CH`
//! uses `de`, a language without a template falls back to `en`.

pub mod check;
pub mod compose;
pub mod maildir;
pub mod release;
pub mod send;
pub mod templates;

pub use check::{inspect, Inspected, OutboxGate};
pub use compose::{
    body_text, build_message, encode_header_value, reset_link, template, template_language, Notice,
    Sender, Template, Templates, TEMPLATES,
};
pub use maildir::{ApplyState, Outbox, StagedMessage};
pub use release::{
    check_reset_base_url, is_placeholder_host, release, url_host, Refusal, RefusalKind,
    ReleaseOutcome,
};
pub use templates::Branding;
