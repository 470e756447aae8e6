//! The rule evaluation of `check`, `affected`, `incident` and `remediate plan` on the
//! library's archive audit (`leakaudit_policy::archive`: one read, the history, holding and
//! ranking): every message is evaluated by the configured engine on the worker threads
//! (under the audit profile, exposing messages keep their envelope and quoted addresses for
//! `Engine::retriage`) and handed to the command's sink. Under audit, messages without
//! findings come first, the ranked ones after them.

use crate::config::RunConfig;
use crate::problems::Problems;
use crate::progress::Progress;
use anyhow::Context;
use leakaudit_policy::archive::Evaluated;
use leakaudit_policy::archive::{ArchiveAudit, EvaluationSink};
use leakaudit_policy::triage::{History, Profile};
use leakaudit_policy::{Engine, Evaluation};
use leakaudit_scanner::scan::ScanStats;
use leakaudit_scanner::scan::Scanner;
use leakaudit_scanner::{Address, Location, Message, Problem};
use std::path::PathBuf;

/// The profile, history and aliases of one run.
pub struct Triage {
    pub profile: Profile,
    /// Where the history is read from (when it exists) and written back.
    pub history_file: Option<PathBuf>,
    pub aliases: Vec<Address>,
}

impl Triage {
    /// The command's default profile unless the flag or the config say otherwise.
    pub fn resolve(
        run: &RunConfig,
        args: &crate::args::TriageArgs,
        default: Profile,
    ) -> anyhow::Result<Triage> {
        let profile = args
            .profile
            .map(Into::into)
            .or(run.cfg.profile)
            .unwrap_or(default);
        let aliases = run
            .cfg
            .aliases
            .iter()
            .filter_map(|a| Address::parse(a))
            .collect();
        Ok(Triage {
            profile,
            history_file: args.history.clone().or_else(|| run.cfg.history.clone()),
            aliases,
        })
    }

    fn load_history(&self) -> anyhow::Result<Option<History>> {
        // The error names the file.
        History::load_if_present(self.history_file.as_deref()).context("reading the history")
    }

    /// The library's archive audit for this run (`leakaudit_policy::archive`), with the
    /// earlier history loaded under the audit profile.
    pub fn archive_audit<'a>(
        &'a self,
        is_customer: Option<&'a leakaudit_policy::triage::IsCustomer<'a>>,
    ) -> anyhow::Result<ArchiveAudit<'a>> {
        Ok(ArchiveAudit {
            profile: self.profile,
            history: match self.profile {
                Profile::Audit => self.load_history()?,
                Profile::Gate => None,
            },
            aliases: &self.aliases,
            is_customer,
        })
    }

    /// Saves the history when asked to.
    pub fn save_history(&self, history: Option<&History>) -> anyhow::Result<()> {
        if let (Some(p), Some(h)) = (&self.history_file, history) {
            h.save(p)
                .with_context(|| format!("writing the history {}", p.display()))?;
        }
        Ok(())
    }

    /// Scans `paths`, evaluates every message with the engine and hands each to `sink`
    /// (the library's [`ArchiveAudit::evaluate`]). Problems go to `problems`. Saves the history
    /// when asked to; returns it under the audit profile.
    #[allow(clippy::too_many_arguments)]
    pub fn evaluate<X: Send>(
        &self,
        scanner: &Scanner,
        engine: &Engine,
        paths: &[String],
        progress: &Progress,
        problems: &mut Problems<'_>,
        is_customer: Option<&leakaudit_policy::triage::IsCustomer<'_>>,
        extra: impl Fn(&Message<'_>, &Evaluation) -> X + Sync,
        sink: impl FnMut(Evaluated<X>),
    ) -> anyhow::Result<(ScanStats, Option<History>)> {
        let mut to = ToSink {
            problems,
            progress,
            sink,
        };
        let (stats, history) = self
            .archive_audit(is_customer)?
            .evaluate(scanner, paths, engine, extra, &mut to);
        self.save_history(history.as_ref())?;
        Ok((stats, history))
    }
}

/// The command's sink: problems reported and progress drawn in archive order, each message
/// to the command's closure.
struct ToSink<'p, 'q, F> {
    problems: &'p mut Problems<'q>,
    progress: &'p Progress,
    sink: F,
}

impl<X, F: FnMut(Evaluated<X>)> EvaluationSink<X> for ToSink<'_, '_, F> {
    fn seen(&mut self, location: &Location, eval: &Evaluation) {
        report_incomplete(self.problems, location, eval);
    }

    fn message(&mut self, message: Evaluated<X>) {
        (self.sink)(message);
    }

    fn problem(&mut self, p: &Problem) {
        self.problems.report(p);
    }

    fn progress(&mut self, bytes: u64, messages: u64) {
        self.progress.update(bytes, messages);
    }
}

/// A message a decoding limit kept the content rules from seeing whole is a problem with its
/// location (a warning; an error for the gate, see `Problems::gate`).
fn report_incomplete(problems: &mut Problems<'_>, location: &Location, eval: &Evaluation) {
    if let Some(why) = &eval.not_fully_audited {
        problems.report(&leakaudit_policy::audit::not_fully_audited(location, why));
    }
}

/// Domains the archive's own senders use that are not configured as internal (the
/// library's `History::unconfigured_sender_domains`), when there is a history.
pub fn suggested_domains(history: Option<&History>, org: &leakaudit_scanner::Org) -> Vec<String> {
    history.map_or_else(Vec::new, |h| h.unconfigured_sender_domains(org))
}

/// The line that suggests them, if any.
pub fn suggestion_note(domains: &[String]) -> Option<String> {
    (!domains.is_empty()).then(|| {
        format!(
            "note: the archive's own senders also use {}: if these are the organisation's, add them to internal_domains (or --internal-domain)",
            crate::term::clean(&domains.join(", "))
        )
    })
}
