//! The one problem printer of every scanning command: each problem goes to `--problems FILE`
//! (JSON Lines, written atomically, 0600) when given, and to stderr under one cap policy: the
//! first 20 errors always, the first 10 warnings unless `--quiet`, then one "N more" line.
//! The stable kebab-case code (`error[malformed]`) is the same on stderr and in JSON.

use crate::progress::Progress;
use crate::term::clean;
use anyhow::Context;
use leakaudit_scanner::io::AtomicFile;
use leakaudit_scanner::{Problem, ProblemLevel};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Errors shown on stderr before "N more".
pub const SHOWN_ERRORS: u64 = 20;
/// Warnings shown on stderr before "N more" (none with `--quiet`).
pub const SHOWN_WARNINGS: u64 = 10;

/// Collects, writes and shows the problems of one run.
pub struct Problems<'p> {
    progress: &'p Progress,
    quiet: bool,
    file: Option<(PathBuf, AtomicFile)>,
    write_error: Option<std::io::Error>,
    /// Where the problems are listed when another writes them (the incident library).
    listed_in: Option<PathBuf>,
    /// Error-level problems (the exit code becomes 2).
    pub errors: u64,
    pub warnings: u64,
    shown_errors: u64,
    shown_warnings: u64,
    /// The gate: a message not fully audited is an error (it cannot be called clean).
    gate: bool,
}

impl<'p> Problems<'p> {
    /// `file`: where every problem is written (`None`: stderr only).
    pub fn new(file: Option<&Path>, quiet: bool, progress: &'p Progress) -> anyhow::Result<Self> {
        let file = match file {
            Some(p) => Some((
                p.to_path_buf(),
                AtomicFile::create(p).with_context(|| format!("creating {}", p.display()))?,
            )),
            None => None,
        };
        Ok(Problems {
            progress,
            quiet,
            file,
            listed_in: None,
            write_error: None,
            errors: 0,
            warnings: 0,
            shown_errors: 0,
            shown_warnings: 0,
            gate: false,
        })
    }

    /// Shows problems that another writes to `path` (and says so in the "N more" line).
    pub fn listed_in(mut self, path: &Path) -> Self {
        self.listed_in = Some(path.to_path_buf());
        self
    }

    /// For the gate: a message a limit kept from being fully audited is an error.
    pub fn gate(mut self) -> Self {
        self.gate = true;
        self
    }

    /// Records one problem.
    pub fn report(&mut self, p: &Problem) {
        let escalated;
        let p = match self.gate {
            true if leakaudit_policy::Gate::level(p) != p.level => {
                escalated = Problem {
                    level: leakaudit_policy::Gate::level(p),
                    ..p.clone()
                };
                &escalated
            }
            _ => p,
        };
        if let Some((_, f)) = &mut self.file {
            if self.write_error.is_none() {
                let line = serde_json::to_string(p).unwrap_or_default();
                if let Err(e) = writeln!(f, "{line}") {
                    self.write_error = Some(e);
                }
            }
        }
        let show = match p.level {
            ProblemLevel::Error => {
                self.errors += 1;
                self.shown_errors < SHOWN_ERRORS && {
                    self.shown_errors += 1;
                    true
                }
            }
            ProblemLevel::Warning => {
                self.warnings += 1;
                !self.quiet && self.shown_warnings < SHOWN_WARNINGS && {
                    self.shown_warnings += 1;
                    true
                }
            }
        };
        if show {
            self.progress.println(&clean(&p.to_string()));
        }
    }

    /// Commits the problems file and prints how many were not shown.
    pub fn finish(self) -> anyhow::Result<()> {
        let hidden_errors = self.errors - self.shown_errors;
        let hidden_warnings = self.warnings - self.shown_warnings;
        let where_ = match self
            .file
            .as_ref()
            .map(|(p, _)| p)
            .or(self.listed_in.as_ref())
        {
            Some(p) => format!("all are in {}", clean(&p.display().to_string())),
            None => "use --problems FILE to list them all".into(),
        };
        if let Some((path, f)) = self.file {
            if let Some(e) = self.write_error {
                return Err(anyhow::Error::new(e).context(format!("writing {}", path.display())));
            }
            f.commit()
                .with_context(|| format!("writing {}", path.display()))?;
        }
        if hidden_errors > 0 || (!self.quiet && hidden_warnings > 0) {
            eprintln!(
                "... {hidden_errors} more error(s) and {hidden_warnings} more warning(s) not shown ({where_})"
            );
        }
        Ok(())
    }
}

/// A run that read no message audited nothing: an error (exit 2) with the reason, never a
/// clean summary. The files that were not mail were each reported as a problem already.
pub fn ensure_read(
    stats: &leakaudit_scanner::scan::ScanStats,
    paths: &[String],
) -> anyhow::Result<()> {
    match stats.nothing_read(paths) {
        Some(why) => anyhow::bail!("{}", clean(&why)),
        None => Ok(()),
    }
}
