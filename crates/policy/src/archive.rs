//! The archive audit: the one pass every archive command runs (`scan`, `check`, `affected`,
//! `incident`, `remediate plan`), as ripgrep's searcher hands matches to a sink.
//!
//! The archive is read once. On the worker threads the caller's `process` does its work on
//! each message and feeds the correspondence history (the [`Observer`]); the calling thread
//! hands every message to the [`AuditSink`] in archive order. Under the audit profile the
//! triage needs the whole history, known only after the last message: messages `process`
//! asks to hold (the exposing ones) wait until the pass ends, are then ranked in parallel by
//! the caller's `rank` (the same result a second pass would give) and handed over in archive
//! order among themselves, after the others. Reading once keeps standard input and compressed
//! streams working. Under the gate profile nothing is held and there is no history.

use crate::triage::{History, HistoryBuilder, HistoryOptions, IsCustomer, Profile, TriageContext};
use crate::{Engine, Evaluation};
use leakaudit_scanner::exposure::{Exposure, Org};
use leakaudit_scanner::scan::{Event, ScanStats, Scanner};
use leakaudit_scanner::{Address, Envelope, Location, Message, Problem};

/// What `process` returns for one message.
pub struct Step<T> {
    pub item: T,
    /// Under the audit profile: hold it for the ranking (ignored under the gate).
    pub hold: bool,
}

/// Handed to `process` on the workers: the profile, and the history being built.
pub struct Observer<'b> {
    profile: Profile,
    history: Option<&'b HistoryBuilder>,
}

impl Observer<'_> {
    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// Feeds the message into the history (under the audit profile; nothing under the gate).
    pub fn observe(&self, envelope: &Envelope, org: &Org, exposure: &Exposure) {
        if let Some(b) = self.history {
            b.observe_analysed(envelope, org, exposure);
        }
    }
}

/// Where the audited messages go, on the calling thread.
pub trait AuditSink<T> {
    /// Every message as read, in archive order, before any is held (count it, report its
    /// problems in archive order).
    fn seen(&mut self, _location: &Location, _item: &T) {}
    /// The messages held for the ranking, once the pass ended and before they are ranked
    /// (several journal reports of one message can be merged here).
    fn held(&mut self, _held: &mut Vec<(Location, T)>) {}
    /// A message handed over: at once, or ranked after the pass when it was held.
    fn message(&mut self, location: Location, item: T);
    fn problem(&mut self, problem: &Problem);
    fn progress(&mut self, _bytes: u64, _messages: u64) {}
}

/// One archive audit's settings.
pub struct ArchiveAudit<'a> {
    pub profile: Profile,
    /// The history of earlier runs to start from (audit profile; `None`: an empty one).
    pub history: Option<History>,
    /// The organisation's own people outside its domains: never a party.
    pub aliases: &'a [Address],
    /// With an account store: whether each address belongs to an account holder.
    pub is_customer: Option<&'a IsCustomer<'a>>,
}

impl ArchiveAudit<'_> {
    /// Reads `paths` once with `scanner`: `process` on the workers, `rank` on the held
    /// messages (in parallel) under the audit profile, everything to `sink` as the module doc
    /// says. Returns the scan's totals and, under the audit profile, the finished history.
    pub fn run<T: Send>(
        self,
        scanner: &Scanner,
        paths: &[String],
        process: impl Fn(&mut Message<'_>, &Observer<'_>) -> Step<T> + Sync,
        rank: impl Fn(&mut T, &TriageContext<'_>) + Sync,
        sink: &mut impl AuditSink<T>,
    ) -> (ScanStats, Option<History>) {
        let audit = self.profile == Profile::Audit;
        let builder = audit.then(|| match self.history {
            Some(h) => HistoryBuilder::from_history(h),
            None => HistoryBuilder::new(HistoryOptions::default()),
        });
        let observer = Observer {
            profile: self.profile,
            history: builder.as_ref(),
        };
        let mut held: Vec<(Location, T)> = Vec::new();
        let stats = scanner.scan(
            paths,
            |m| process(m, &observer),
            |ev| match ev {
                Event::Message { location, item, .. } => {
                    sink.seen(&location, &item.item);
                    if audit && item.hold {
                        held.push((location, item.item));
                    } else {
                        sink.message(location, item.item);
                    }
                }
                Event::Problem(p) => sink.problem(&p),
                Event::Progress { bytes, messages } => sink.progress(bytes, messages),
            },
        );
        let Some(builder) = builder else {
            return (stats, None);
        };
        let history = builder.finish();
        sink.held(&mut held);
        let ctx = TriageContext {
            profile: Profile::Audit,
            history: Some(&history),
            aliases: self.aliases,
            is_customer: self.is_customer,
            ..TriageContext::default()
        };
        hand_over_ranked(held, &rank, &ctx, sink);
        (stats, Some(history))
    }
}

/// Ranks the held messages on the pool (each on its own, first held first) and hands each to
/// `sink` in archive order as soon as it and those before it are ranked: the sink's work
/// (writing records) overlaps the ranking of the later ones instead of following all of it
/// on one core (a third of the audit's serial end).
fn hand_over_ranked<T: Send>(
    held: Vec<(Location, T)>,
    rank: &(impl Fn(&mut T, &TriageContext<'_>) + Sync),
    ctx: &TriageContext<'_>,
    sink: &mut impl AuditSink<T>,
) {
    let (tx, rx) = std::sync::mpsc::channel::<(usize, Location, T)>();
    rayon::in_place_scope_fifo(|s| {
        for (i, (location, mut item)) in held.into_iter().enumerate() {
            let tx = tx.clone();
            s.spawn_fifo(move |_| {
                rank(&mut item, ctx);
                let _ = tx.send((i, location, item));
            });
        }
        drop(tx);
        // Ranked out of order are kept until those before them arrive. A task that panics
        // sends nothing: the loop ends when the others are done, and the scope re-raises.
        let mut next = 0;
        let mut waiting = std::collections::BTreeMap::new();
        for (i, location, item) in rx {
            waiting.insert(i, (location, item));
            while let Some((location, item)) = waiting.remove(&next) {
                sink.message(location, item);
                next += 1;
            }
        }
    });
}

/// A message evaluated by the engine (ranked under the audit profile).
pub struct Evaluated<X> {
    pub location: Location,
    pub eval: Evaluation,
    /// What the caller computed from the message on the worker thread.
    pub extra: X,
}

/// Where [`ArchiveAudit::evaluate`] hands the evaluated messages, on the calling thread.
pub trait EvaluationSink<X> {
    /// Every message as read, in archive order, before any is held.
    fn seen(&mut self, _location: &Location, _eval: &Evaluation) {}
    /// A message handed over: at once, or ranked after the pass (under audit, the messages
    /// without findings come first, the ranked ones after them, each group in archive order).
    fn message(&mut self, message: Evaluated<X>);
    fn problem(&mut self, problem: &Problem);
    fn progress(&mut self, _bytes: u64, _messages: u64) {}
}

/// A message's evaluation, the envelope and quoted addresses kept for its ranking (exposing
/// messages under the audit profile), and the caller's part.
type Kept<X> = (Evaluation, Option<(Envelope, Vec<Address>)>, X);

struct Evaluating<'s, S>(&'s mut S);

impl<X, S: EvaluationSink<X>> AuditSink<Kept<X>> for Evaluating<'_, S> {
    fn seen(&mut self, location: &Location, item: &Kept<X>) {
        self.0.seen(location, &item.0);
    }

    fn message(&mut self, location: Location, item: Kept<X>) {
        let (eval, keep, extra) = item;
        // The envelope copy was for the ranking: freed before the sink grows its lists
        // (64 MiB at 1,000,000 recipients).
        drop(keep);
        self.0.message(Evaluated {
            location,
            eval,
            extra,
        });
    }

    fn problem(&mut self, problem: &Problem) {
        self.0.problem(problem);
    }

    fn progress(&mut self, bytes: u64, messages: u64) {
        self.0.progress(bytes, messages);
    }
}

impl ArchiveAudit<'_> {
    /// The rule audit of an archive: every message evaluated by `engine` (under the gate
    /// profile as [`crate::Auditor`] does; under audit, exposing messages are ranked with the
    /// history by [`Engine::retriage`], the result a second pass would give), `extra` run
    /// beside it on the worker, everything handed to `sink`.
    pub fn evaluate<X: Send>(
        self,
        scanner: &Scanner,
        paths: &[String],
        engine: &Engine,
        extra: impl Fn(&Message<'_>, &Evaluation) -> X + Sync,
        sink: &mut impl EvaluationSink<X>,
    ) -> (ScanStats, Option<History>) {
        let org = engine.org();
        let process = |m: &mut Message<'_>, obs: &Observer<'_>| {
            if obs.profile() == Profile::Gate {
                let eval = engine.evaluate_with(m, &TriageContext::gate());
                let x = extra(m, &eval);
                return Step {
                    item: (eval, None, x),
                    hold: false,
                };
            }
            let mut eval = engine.evaluate(m);
            obs.observe(&m.envelope, org, &eval.exposure);
            let x = extra(m, &eval);
            // The envelope is taken for the ranking, not copied; nothing reads the message
            // after this.
            let keep = eval.exposure.exposes().then(|| {
                let quoted = crate::quoted::quoted_addresses(m);
                (m.take_envelope(), quoted)
            });
            let hold = !eval.findings.is_empty() || keep.is_some();
            if hold {
                for f in &mut eval.findings {
                    f.profile = Some(Profile::Audit);
                }
            }
            Step {
                item: (eval, keep, x),
                hold,
            }
        };
        let rank = |item: &mut Kept<X>, ctx: &TriageContext<'_>| {
            if let Some((env, quoted)) = &item.1 {
                engine.retriage(env, &mut item.0, quoted, ctx);
            }
        };
        self.run(scanner, paths, process, rank, &mut Evaluating(sink))
    }
}
