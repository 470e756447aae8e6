//! The evaluation pass shared by `check`, `affected`, `incident` and `remediate plan`: every
//! message is evaluated by the configured engine on the worker threads and handed to the
//! command's sink (gate profile: in archive order; audit: see below).
//!
//! Under the audit profile the triage needs the archive's history, which is only complete
//! after the last message: one pass feeds the history and evaluates; messages with findings
//! (exposing ones with their envelope and quoted addresses) are held until the pass ends, then
//! their exposure findings are ranked (`Engine::retriage`, the same result as a second pass
//! would give) and handed over in archive order among themselves. Messages without findings go
//! to the sink at once, so under audit they come before the held ones. Reading the
//! archive once keeps standard input and compressed streams working and costs one scan.

use crate::config::RunConfig;
use crate::problems::Problems;
use crate::progress::Progress;
use anyhow::Context;
use leakaudit_policy::triage::{History, HistoryBuilder, HistoryOptions, Profile, TriageContext};
use leakaudit_policy::{Engine, Evaluation};
use leakaudit_scanner::scan::{Event, ScanStats, Scanner};
use leakaudit_scanner::{Address, Envelope, Location, Message};
use rayon::prelude::*;
use std::path::PathBuf;

/// One message, evaluated (and ranked) in full.
pub struct Evaluated<X> {
    pub location: Location,
    pub eval: Evaluation,
    /// What the command computed from the message on the worker thread.
    pub extra: X,
}

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

    fn load_history(&self) -> anyhow::Result<HistoryBuilder> {
        match &self.history_file {
            Some(p) if p.exists() => {
                let h = History::load(p, HistoryOptions::default())
                    .with_context(|| format!("reading the history {}", p.display()))?;
                Ok(HistoryBuilder::from_history(h))
            }
            _ => Ok(HistoryBuilder::new(HistoryOptions::default())),
        }
    }

    /// Scans `paths`, evaluates every message and hands each to `sink` (ranked under the audit
    /// profile; ordering as in the module doc). Problems go to `problems`. Saves the history
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
        mut sink: impl FnMut(Evaluated<X>),
    ) -> anyhow::Result<(ScanStats, Option<History>)> {
        if self.profile == Profile::Gate {
            let ctx = TriageContext::gate();
            let stats = scanner.scan(
                paths,
                |m| {
                    let eval = engine.evaluate_with(m, &ctx);
                    let x = extra(m, &eval);
                    (eval, x)
                },
                |ev| match ev {
                    Event::Message { location, item, .. } => {
                        report_incomplete(problems, &location, &item.0);
                        sink(Evaluated {
                            location,
                            eval: item.0,
                            extra: item.1,
                        })
                    }
                    Event::Problem(p) => problems.report(&p),
                    Event::Progress { bytes, messages } => progress.update(bytes, messages),
                },
            );
            return Ok((stats, None));
        }

        let builder = self.load_history()?;
        let org = engine.org();
        /// Held until the history is complete.
        type Held<X> = (Location, Evaluation, Option<(Envelope, Vec<Address>)>, X);
        let mut held: Vec<Held<X>> = Vec::new();
        let stats = scanner.scan(
            paths,
            |m| {
                let eval = engine.evaluate(m);
                builder.observe_analysed(&m.envelope, org, &eval.exposure);
                let x = extra(m, &eval);
                // The envelope is taken for the ranking, not copied; nothing reads the message
                // after this.
                let keep = eval.exposure.exposes().then(|| {
                    let quoted = leakaudit_policy::quoted::quoted_addresses(m);
                    (m.take_envelope(), quoted)
                });
                (eval, keep, x)
            },
            |ev| match ev {
                Event::Message { location, item, .. } => {
                    let (mut eval, keep, x) = item;
                    report_incomplete(problems, &location, &eval);
                    if eval.findings.is_empty() && keep.is_none() {
                        sink(Evaluated {
                            location,
                            eval,
                            extra: x,
                        });
                    } else {
                        for f in &mut eval.findings {
                            f.profile = Some(Profile::Audit);
                        }
                        held.push((location, eval, keep, x));
                    }
                }
                Event::Problem(p) => problems.report(&p),
                Event::Progress { bytes, messages } => progress.update(bytes, messages),
            },
        );
        let history = builder.finish();
        let ctx = TriageContext {
            profile: Profile::Audit,
            history: Some(&history),
            aliases: &self.aliases,
            is_customer,
            ..TriageContext::default()
        };
        // Ranked in parallel (each message on its own), handed over in archive order.
        held.par_iter_mut().for_each(|(_, eval, keep, _)| {
            if let Some((env, quoted)) = keep {
                engine.retriage(env, eval, quoted, &ctx);
            }
        });
        for (location, eval, keep, x) in held {
            // The envelope copy was for the ranking: freed before the sink grows its lists
            // (a `_` pattern would keep it to the end of the iteration: 64 MiB at 1,000,000).
            drop(keep);
            sink(Evaluated {
                location,
                eval,
                extra: x,
            });
        }
        if let Some(p) = &self.history_file {
            history
                .save(p)
                .with_context(|| format!("writing the history {}", p.display()))?;
        }
        Ok((stats, Some(history)))
    }
}

/// A message a decoding limit kept the content rules from seeing whole is a problem with its
/// location (a warning; an error for the gate, see `Problems::gate`).
fn report_incomplete(problems: &mut Problems<'_>, location: &Location, eval: &Evaluation) {
    if let Some(why) = &eval.not_fully_audited {
        problems.report(&not_fully_audited(location, why));
    }
}

/// The `not-fully-audited` problem of a message.
pub fn not_fully_audited(location: &Location, why: &str) -> leakaudit_scanner::Problem {
    leakaudit_scanner::Problem {
        location: location.clone(),
        level: leakaudit_scanner::ProblemLevel::Warning,
        kind: leakaudit_scanner::ProblemKind::NotFullyAudited,
        reason: format!("not fully audited: {why}; the content rules did not see the rest"),
        detail_code: None,
    }
}

/// Domains the archive's own senders use that are not configured as internal: likely the
/// organisation's other domains (subsidiaries), to add to `internal_domains`.
pub fn suggested_domains(history: Option<&History>, org: &leakaudit_scanner::Org) -> Vec<String> {
    let Some(h) = history else {
        return Vec::new();
    };
    let all: Vec<String> = h
        .suggested_internal_domains()
        .into_iter()
        .map(|(d, _)| d)
        .collect();
    // One sender domain is already internal in each of its messages (the From domain is);
    // a second one is external to the first's messages unless configured.
    if org.sender_domain_internal && all.len() < 2 {
        return Vec::new();
    }
    all.into_iter()
        .filter(|d| !org.is_internal_domain(d))
        .collect()
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
