//! Argument groups shared by the commands (`#[command(flatten)]`), so that one option has one
//! name and one meaning everywhere. Old spellings stay accepted as hidden aliases for one
//! release (see the README's "Deprecated spellings").

use leakaudit_policy::RulesMode;
use leakaudit_scanner::{ArchiveKind, Format};
use std::path::PathBuf;

/// Container format, when detection from the content must be overridden.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    Mbox,
    Maildir,
    Eml,
    /// Exchange / Microsoft 365 envelope journal reports (any container, detected): every
    /// message must be one; without this flag a report is recognised by its
    /// `X-MS-Journal-Report` header.
    Journal,
    /// Amazon SES event logs (event publishing via Firehose as JSON Lines, SES or SNS
    /// notifications): detected without this flag too.
    Ses,
    /// Mailgun event logs (Events API pages or JSON Lines): detected without this flag too.
    Mailgun,
    /// Postmark outbound messages (Messages API search pages, details or JSON Lines):
    /// detected without this flag too.
    Postmark,
}

impl FormatArg {
    /// The container format it forces (`None`: detected from the content).
    pub fn container(self) -> Option<Format> {
        match self {
            FormatArg::Mbox => Some(Format::Mbox),
            FormatArg::Maildir => Some(Format::Maildir),
            FormatArg::Eml => Some(Format::Eml),
            FormatArg::Journal => None,
            FormatArg::Ses => Some(Format::Ses),
            FormatArg::Mailgun => Some(Format::Mailgun),
            FormatArg::Postmark => Some(Format::Postmark),
        }
    }
}

/// Where the archive comes from: decides whether a Bcc header is itself a leak.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ArchiveKindArg {
    /// Per message: a copy with transit traces (Received, Delivered-To, X-Original-To,
    /// Return-Path) that keeps a Bcc header leaked it; a sender's copy without them is normal.
    Auto,
    /// What recipients received (MTA journal, provider export): a Bcc header is a leak.
    Transmitted,
    /// The sender's "Sent" folder: a Bcc header is normal.
    Sent,
}

impl From<ArchiveKindArg> for ArchiveKind {
    fn from(k: ArchiveKindArg) -> ArchiveKind {
        match k {
            ArchiveKindArg::Auto => ArchiveKind::Auto,
            ArchiveKindArg::Transmitted => ArchiveKind::Transmitted,
            ArchiveKindArg::Sent => ArchiveKind::Sent,
        }
    }
}

/// How the archives are read.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ReadArgs {
    /// Read every file as this format instead of detecting it from the content.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub input_format: Option<FormatArg>,
    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

impl ReadArgs {
    /// Takes the deprecated `--format` spelling of `--input-format` (scan, incident), with the
    /// deprecation note; `--input-format` wins when both are given.
    pub fn take_deprecated_format(&mut self, old: Option<FormatArg>) {
        if let Some(f) = old {
            crate::deprecated("--format", "--input-format");
            self.input_format.get_or_insert(f);
        }
    }
}

/// The organisation: who is internal, where the archive comes from.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct OrgArgs {
    /// Organisation settings [default: ./leakaudit.toml when present].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A domain of the organisation (repeatable), besides the config's; the From domain of a
    /// message is internal too.
    #[arg(long = "internal-domain", value_name = "DOMAIN")]
    pub internal_domains: Vec<String>,
    /// Where the archive comes from: decides whether a Bcc header is itself a leak
    /// [default: the config's `archive_kind`, else auto].
    #[arg(long, value_enum, value_name = "KIND")]
    pub archive_kind: Option<ArchiveKindArg>,
}

/// The rule pack.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct RulesArgs {
    /// Folder of rule files (replaces or extends the built-in pack, see --rules-mode)
    /// [default: the config's `rules_dir`].
    #[arg(long, value_name = "DIR")]
    pub rules: Option<PathBuf>,
    /// How --rules combines with the built-in pack: extend or replace [default: the config's,
    /// else extend].
    #[arg(long, value_name = "MODE")]
    pub rules_mode: Option<RulesMode>,
}

/// What the terminal shows and where every problem goes.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct UiArgs {
    /// No progress bar, no summary, no warnings; errors are still printed.
    #[arg(long, short)]
    pub quiet: bool,
    /// Write every read problem (JSON Lines, mode 0600) to FILE; stderr shows the first ones.
    #[arg(long, value_name = "FILE")]
    pub problems: Option<PathBuf>,
}

/// Matching exposed addresses to accounts.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct MatchArgs {
    /// Match provider addresses folded (Gmail: dots and +tags ignored, googlemail.com =
    /// gmail.com) when matching accounts.
    #[arg(long, alias = "fold-provider-addresses")]
    pub provider_folding: bool,
}

impl MatchArgs {
    pub fn mode(&self) -> leakaudit_remediation::MatchMode {
        if self.provider_folding {
            leakaudit_remediation::MatchMode::ProviderFolding
        } else {
            leakaudit_remediation::MatchMode::Canonical
        }
    }
}

/// How exposures are ranked (see docs/check.md, "Tuning the triage").
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ProfileArg {
    /// A rendered outbound template that shows two external recipients is always a bug.
    Gate,
    /// Audits of real archives: a first pass learns the archive's history, then each
    /// exposing message is ranked from its signals.
    Audit,
}

impl From<ProfileArg> for leakaudit_policy::triage::Profile {
    fn from(p: ProfileArg) -> Self {
        match p {
            ProfileArg::Gate => leakaudit_policy::triage::Profile::Gate,
            ProfileArg::Audit => leakaudit_policy::triage::Profile::Audit,
        }
    }
}

/// The triage: profile and the archive's saved history.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct TriageArgs {
    /// How exposures are ranked: gate or audit [default: the config's `profile`, else gate
    /// for `check` and audit for the other commands].
    #[arg(long, value_enum, value_name = "PROFILE")]
    pub profile: Option<ProfileArg>,
    /// A saved triage history (audit profile): read when it exists, then written back with
    /// this run's messages added, for incremental runs [default: the config's `history`].
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,
}

/// Which exposures the response acts on.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct SelectArgs {
    /// Affected users and plans take exposures at or above this severity; the rest are
    /// counted and reported as left out [default: the config's `min_severity`, else medium].
    #[arg(long, value_name = "SEVERITY")]
    pub min_severity: Option<leakaudit_policy::Severity>,
}

/// A duration flag in seconds: `24h`, `90m`, `2d`, `3600s` or plain seconds.
pub fn parse_secs(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: i64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (24h, 90m, 2d, 3600s)"))?;
    let mul = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("`{s}`: unit must be s, m, h or d")),
    };
    let v = n * mul;
    if v <= 0 {
        return Err("the duration must be positive".into());
    }
    Ok(v)
}
