//! leakaudit-incident: the first hour of an incident as one library call. Scans the archives,
//! evaluates the rules (ranked under the triage profile, the account store answering "are
//! these customers"), builds the affected-user list matched against the store, writes the
//! remediation plan (and, when asked, applies it) and writes the report, all into one private
//! folder. `leakaudit incident`, and next the Python package, only turn their options into an
//! [`IncidentConfig`] and show what an [`Observer`] is told.
//!
//! ```text
//! Incident::open   the store (opened, or a CSV imported into OUT/accounts.sqlite); the folder
//!                  (0700); where this run writes (OUT, or OUT/.rerun over an applied plan)
//! Incident::run    scan + rules -> findings.jsonl, problems.jsonl
//!                  affected users, matched a batch at a time -> affected.csv, saw-others.csv
//!                  plan -> plan.json (a re-plan follows the folder's applied plan: a delta)
//!                  apply (optional) -> outbox, audit log, the store
//!                  report -> report.html, summary.json, breach-record.md, campaigns.csv
//! ```
//!
//! Every file is written atomically, 0600. A run that read no message is an error before any
//! list, plan or report is written: an incident of nothing read must not look clean.

mod error;

pub use error::IncidentError;

use leakaudit_policy::archive::{ArchiveAudit, Evaluated, EvaluationSink};
use leakaudit_policy::audit::Outcome;
use leakaudit_policy::triage::{History, IsCustomer, Profile};
use leakaudit_policy::{Engine, Evaluation, Severity};
use leakaudit_remediation::affected::Matcher;
use leakaudit_remediation::affected::{self, AffectedFormat, SawOthers, Selection};
use leakaudit_remediation::apply::PlanRecord;
use leakaudit_remediation::executor::ExecutorConfig;
use leakaudit_remediation::folder;
use leakaudit_remediation::import::{ImportReport, OpenedStore};
use leakaudit_remediation::outbox::{OutboxGate, Sender, Templates};
use leakaudit_remediation::plan::PlanBuilder;
use leakaudit_remediation::store::{AccountStore, FIND_BATCH};
use leakaudit_remediation::{
    AffectedRow, ApplyEvent, ApplyOptions, ApplyReport, ImportOptions, MatchMode, Plan,
    RemediationPolicy,
};
use leakaudit_report::{
    AffectedTotals, AffectedUser, IncidentData, MessageRecord, PlanDelta, PlanTotals,
    ReportOptions, ScanTotals, Summary, TriageTotals, Written,
};
use leakaudit_scanner::io::{write_json_line, AtomicFile};
use leakaudit_scanner::scan::{ScanStats, Scanner};
use leakaudit_scanner::{Address, Location, Message, Problem};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The account store of a run, whatever its backend.
type Store = Box<dyn AccountStore + Send>;

/// Everything one incident run needs, validated by the caller.
pub struct IncidentConfig {
    /// mbox files, Maildirs, `.eml` files or folders of them.
    pub archives: Vec<String>,
    /// An accounts CSV (imported into `OUT/accounts.sqlite`), an SQLite store or a PostgreSQL
    /// URL.
    pub accounts: PathBuf,
    /// The output folder (created 0700).
    pub out: PathBuf,
    pub scanner: Scanner,
    pub engine: Engine,
    pub triage: TriageSettings,
    /// The response takes exposures at or above this severity.
    pub min_severity: Severity,
    pub match_mode: MatchMode,
    /// How an accounts CSV is read.
    pub import: ImportOptions,
    pub remediation: RemediationPolicy,
    /// `Some`: execute the plan; `None`: a dry run (the plan is only written).
    pub apply: Option<ApplySettings>,
    /// Where every problem is written (default: `problems.jsonl` in the run's folder).
    pub problems_file: Option<PathBuf>,
    pub generated_at: i64,
    /// When the incident was detected (the 72-hour deadline runs from here).
    pub detected_at: i64,
    pub report: ReportOptions,
    /// Named in the report.
    pub tool_version: String,
}

/// The triage profile and its history.
pub struct TriageSettings {
    pub profile: Profile,
    /// Read when it exists (audit profile) and written back after the scan.
    pub history_file: Option<PathBuf>,
    /// The organisation's own people outside its domains: never a party.
    pub aliases: Vec<Address>,
}

/// What an applying run needs besides the plan.
pub struct ApplySettings {
    pub reset_base_url: String,
    pub sender: Sender,
    pub templates: Arc<Templates>,
    pub executor: ExecutorConfig,
    /// Apply although another plan of this store already did some of the same actions.
    pub new_incident: bool,
}

/// A stage of the run, for the caller's progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Accounts,
    Affected,
    Plan,
    Report,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Accounts => "accounts",
            Stage::Affected => "affected",
            Stage::Plan => "plan",
            Stage::Report => "report",
        }
    }
}

/// What the run tells its caller while it runs (on the calling thread, in order).
pub trait Observer {
    /// A stage starts; `detail` says what it does.
    fn stage(&mut self, _stage: Stage, _detail: &str) {}
    fn stage_done(&mut self, _stage: Stage) {}
    /// A problem with an input or a message (also written to the problems file).
    fn problem(&mut self, _problem: &Problem) {}
    /// Bytes and messages read so far.
    fn progress(&mut self, _bytes: u64, _messages: u64) {}
    /// The scan is over.
    fn scanned(&mut self) {}
    fn apply_event(&mut self, _event: &ApplyEvent<'_>) {}
}

/// An observer that wants to be told nothing.
pub struct Silent;
impl Observer for Silent {}

/// An opened incident: the store, the folder and where this run writes.
pub struct Incident {
    cfg: IncidentConfig,
    store: Store,
    store_path: PathBuf,
    imported: Option<ImportReport>,
    /// The folder's applied plan, when there is one: this run is a resume or a re-plan.
    applied_before: Option<Plan>,
    write_dir: PathBuf,
}

/// What a run did and wrote.
pub struct IncidentOutcome {
    pub summary: Summary,
    pub report_files: Written,
    /// `affected.csv`, `saw-others.csv` (when written), `plan.json`, `findings.jsonl`,
    /// `problems.jsonl`, in the folder.
    pub affected_file: PathBuf,
    pub saw_others_file: Option<PathBuf>,
    pub plan_file: PathBuf,
    pub findings_file: PathBuf,
    pub problems_file: PathBuf,
    pub stats: ScanStats,
    /// Problems reported (errors and warnings).
    pub problems: u64,
    pub scan_secs: f64,
    /// Recipients who saw exposed addresses without being shown (journal envelopes).
    pub saw_others: usize,
    /// Unmatched addresses that would match an account with provider folding.
    pub fold_hint: usize,
    /// Domains the archive's own senders use that are not configured as internal.
    pub suggested_domains: Vec<String>,
    /// Where the accounts are (the given store, or the run's import of a CSV).
    pub store_path: PathBuf,
    /// The apply of this run, when asked for.
    pub apply: Option<ApplyReport>,
    /// The plan's outbox and audit log.
    pub outbox: PathBuf,
    pub audit_log: PathBuf,
    /// The store's record of the plan over every run (`None`: never applied).
    pub record: Option<PlanRecord>,
    /// Clean, violation, or error (an input or message not audited, or an apply that did not
    /// finish).
    pub outcome: Outcome,
}

impl Incident {
    /// Opens the store (importing a CSV), creates the folder and decides where this run
    /// writes: a folder whose plan was applied to this store gets the new outputs in a
    /// staging folder first (the same plan again is a resumed run; another one is a re-plan,
    /// applied as a delta, the earlier outputs kept in `earlier/`).
    pub fn open(
        cfg: IncidentConfig,
        observer: &mut dyn Observer,
    ) -> Result<Incident, IncidentError> {
        leakaudit_scanner::safefs::private_dir(&cfg.out)?;
        observer.stage(
            Stage::Accounts,
            &format!("opening {}", cfg.accounts.display()),
        );
        let OpenedStore {
            store,
            path: store_path,
            imported,
        } = leakaudit_remediation::import::open_or_import(
            &cfg.accounts,
            &cfg.out.join("accounts.sqlite"),
            &cfg.import,
        )?;
        observer.stage_done(Stage::Accounts);
        let applied_before = folder::applied_plan_in(&cfg.out, &*store)?;
        let write_dir = match &applied_before {
            Some(_) => {
                let d = cfg.out.join(".rerun");
                if d.exists() {
                    std::fs::remove_dir_all(&d).map_err(|source| IncidentError::Io {
                        path: d.clone(),
                        source,
                    })?;
                }
                leakaudit_scanner::safefs::private_dir(&d)?;
                d
            }
            None => cfg.out.clone(),
        };
        Ok(Incident {
            cfg,
            store,
            store_path,
            imported,
            applied_before,
            write_dir,
        })
    }

    /// Where the accounts are: the given store, or the run's import of a CSV.
    pub fn store_path(&self) -> &Path {
        &self.store_path
    }

    /// The import's report, when the accounts were a CSV.
    pub fn imported(&self) -> Option<&ImportReport> {
        self.imported.as_ref()
    }

    /// Where the run's problems file is written.
    pub fn problems_file(&self) -> PathBuf {
        self.cfg
            .problems_file
            .clone()
            .unwrap_or_else(|| self.write_dir.join("problems.jsonl"))
    }

    /// Runs the incident: see the crate documentation.
    pub fn run(self, observer: &mut dyn Observer) -> Result<IncidentOutcome, IncidentError> {
        let Incident {
            cfg,
            store,
            store_path,
            imported: _,
            applied_before,
            write_dir,
        } = self;
        let out = cfg.out.clone();
        let problems_file = cfg
            .problems_file
            .clone()
            .unwrap_or_else(|| write_dir.join("problems.jsonl"));

        // The triage weighs exposures among account holders higher: the store answers "are
        // these customers" for each ranked message, a batch per lookup (behind a lock: the
        // store is one connection). A failed lookup counts as "not a customer": it only
        // lowers a ranking.
        let locked = Mutex::new(store);
        let is_customer = |addresses: &[&Address]| -> Vec<bool> {
            let Ok(st) = locked.lock() else {
                return vec![false; addresses.len()];
            };
            let mut found_all = Vec::with_capacity(addresses.len());
            for chunk in addresses.chunks(FIND_BATCH) {
                let keys: Vec<&str> = chunk.iter().map(|a| a.as_str()).collect();
                match st.find_many(&keys, MatchMode::Canonical) {
                    Ok(found) => found_all.extend(found.iter().map(|f| !f.is_empty())),
                    Err(_) => found_all.resize(found_all.len() + chunk.len(), false),
                }
            }
            found_all
        };
        let scanned = scan(&cfg, &write_dir, &problems_file, &is_customer, observer);
        let mut store = locked.into_inner().map_err(|_| IncidentError::Poisoned)?;
        let mut scanned = scanned?;
        observer.scanned();
        // Before any list, plan or report: an incident of nothing read must not look clean.
        if let Some(why) = scanned.stats.nothing_read(&cfg.archives) {
            return Err(IncidentError::NothingRead(why));
        }

        // Affected users, matched against the store, streamed row by row into the list file,
        // the plan and the report (a million-address list is never held twice).
        observer.stage(
            Stage::Affected,
            &format!(
                "matching {} addresses against the accounts",
                scanned.acc.len()
            ),
        );
        let mut matcher = Matcher::new(&*store, cfg.match_mode)?;
        let meta = matcher.meta.clone();
        let mut planner = PlanBuilder::new(&*store, &cfg.remediation, &meta)?;
        let mut plan_error = None;
        // The report needs aggregates only (counts, histogram, top 10), not the rows.
        let mut users = AffectedTotals::default();
        let rows = matcher.match_iter(scanned.acc.rows_iter()).inspect(|r| {
            if plan_error.is_none() {
                if let Err(e) = planner.add(r) {
                    plan_error = Some(e);
                }
            }
            users.add(affected_user(r));
        });
        affected::write_file(
            &write_dir.join("affected.csv"),
            AffectedFormat::Csv,
            &meta,
            rows,
        )?;
        // Holders of the exposed data, not data subjects: a list of their own, only when a
        // journal's envelopes named any.
        let saw_path = write_dir.join("saw-others.csv");
        if !scanned.saw.is_empty() {
            scanned.saw.write_csv(&saw_path)?;
        } else if saw_path.exists() {
            // An earlier run's list in the same folder would describe another archive.
            std::fs::remove_file(&saw_path).map_err(|source| IncidentError::Io {
                path: saw_path.clone(),
                source,
            })?;
        }
        let fold_hint = matcher.finish()?;
        if let Some(e) = plan_error {
            return Err(e.into());
        }
        // The rows are written and summed up in `users`: the accumulator is not needed past
        // this point.
        drop(std::mem::take(&mut scanned.acc));
        observer.stage_done(Stage::Affected);

        // The plan (and, when asked, its execution).
        observer.stage(Stage::Plan, "writing the plan");
        let mut plan = planner.finish()?;
        if let Some(old) = &applied_before {
            folder::follow(
                &mut plan,
                old,
                cfg.apply.as_ref().is_some_and(|a| a.new_incident),
            );
        }
        leakaudit_remediation::write_plan(&write_dir.join("plan.json"), &plan)?;
        if let Some(old) = &applied_before {
            folder::settle(&out, &write_dir, old, &plan)?;
        }
        observer.stage_done(Stage::Plan);
        let mut plan_totals = plan_totals(&plan);
        plan_totals.failed_login_data = failed_login_data(&*store, &users)?;
        let (outbox, audit_log) = folder::plan_files(&out, &plan);
        let apply = match &cfg.apply {
            Some(settings) => Some(apply_plan(
                settings,
                &cfg.engine,
                &plan,
                &mut *store,
                (&outbox, &audit_log),
                observer,
            )?),
            None => None,
        };
        let apply_failed = apply
            .as_ref()
            .is_some_and(|r| !r.failed.is_empty() || !r.complete || !r.missing_messages.is_empty());
        // The store's totals, not this run's: a second run finds everything done and must not
        // report fewer actions than the first.
        let record = leakaudit_remediation::apply::record(&*store, &plan)?;
        if let Some(r) = &record {
            plan_totals.applied = true;
            plan_totals.done = Some(r.done);
            plan_totals.failed = Some(r.failed);
            plan_totals.notices_done = Some(r.notices_done);
            plan_totals.notices_failed = Some(r.notices_failed);
        }
        plan_totals.delta = plan_delta(&*store, &plan)?;
        // Written (and applied): the report needs only its totals. A plan of 1,000,000
        // notices is ~200 MB.
        drop(plan);

        // The report.
        observer.stage(Stage::Report, "writing the report");
        let mut scan_totals = ScanTotals::from(&scanned.stats);
        scan_totals.problems = scanned.problems;
        let data = IncidentData {
            tool_version: cfg.tool_version.clone(),
            inputs: cfg.archives.clone(),
            accounts_store: Some(store_path.display().to_string()),
            generated_at: cfg.generated_at,
            detected_at: cfg.detected_at,
            scan: scan_totals,
            message_dates: std::mem::take(&mut scanned.dates),
            messages: std::mem::take(&mut scanned.records),
            affected: users,
            plan: plan_totals,
            triage: TriageTotals {
                profile: cfg.triage.profile.to_string(),
                min_severity: cfg.min_severity.to_string(),
                addresses_below_min_severity: scanned.below_only,
                suggested_internal_domains: scanned.suggested.clone(),
            },
        };
        let (summary, report_files) = leakaudit_report::write_report(&out, data, &cfg.report)?;
        observer.stage_done(Stage::Report);

        let h = &summary.headline;
        let outcome = if scanned.stats.had_errors() || apply_failed {
            Outcome::Error
        } else if h.findings > 0 || h.exposing_messages > 0 {
            Outcome::Violation
        } else {
            Outcome::Clean
        };
        let in_folder = |name: &str| out.join(name);
        Ok(IncidentOutcome {
            summary,
            report_files,
            affected_file: in_folder("affected.csv"),
            saw_others_file: (!scanned.saw.is_empty()).then(|| in_folder("saw-others.csv")),
            plan_file: in_folder("plan.json"),
            findings_file: in_folder("findings.jsonl"),
            problems_file: match &cfg.problems_file {
                Some(p) => p.clone(),
                None => in_folder("problems.jsonl"),
            },
            stats: scanned.stats,
            problems: scanned.problems,
            scan_secs: scanned.secs,
            saw_others: scanned.saw.len(),
            fold_hint,
            suggested_domains: scanned.suggested,
            store_path,
            apply,
            outbox,
            audit_log,
            record,
            outcome,
        })
    }
}

/// What the scan stage gathered.
struct Scanned {
    stats: ScanStats,
    acc: leakaudit_remediation::AffectedAccumulator,
    records: Vec<MessageRecord>,
    dates: Vec<i64>,
    problems: u64,
    /// Exposed addresses left out by the minimum severity.
    below_only: usize,
    suggested: Vec<String>,
    saw: SawOthers,
    secs: f64,
}

/// The run's sink: problems to the file and the observer, findings to `findings.jsonl`, each
/// message to the selection and the report's records.
struct Collect<'a> {
    observer: &'a mut dyn Observer,
    problems: AtomicFile,
    problem_count: u64,
    findings: std::io::BufWriter<AtomicFile>,
    write_error: Option<(PathBuf, std::io::Error)>,
    findings_path: &'a Path,
    problems_path: &'a Path,
    sel: Selection,
    records: Vec<MessageRecord>,
    dates: Vec<i64>,
}

type Extra = (Option<i64>, Option<MessageRecord>);

impl Collect<'_> {
    fn report(&mut self, p: &Problem) {
        self.problem_count += 1;
        if self.write_error.is_none() {
            if let Err(e) = write_json_line(&mut self.problems, p) {
                self.write_error = Some((self.problems_path.to_path_buf(), e));
            }
        }
        self.observer.problem(p);
    }
}

impl EvaluationSink<Extra> for Collect<'_> {
    fn seen(&mut self, location: &Location, eval: &Evaluation) {
        // A message a decoding limit kept the content rules from seeing whole is a problem
        // with its location.
        if let Some(why) = &eval.not_fully_audited {
            let p = leakaudit_policy::audit::not_fully_audited(location, why);
            self.report(&p);
        }
    }

    fn message(&mut self, mut m: Evaluated<Extra>) {
        let (date, record) = m.extra;
        if let Some(d) = date {
            self.dates.push(d);
        }
        self.sel.add(&m.location, &m.eval);
        for f in &m.eval.findings {
            if self.write_error.is_none() {
                if let Err(e) = write_json_line(&mut self.findings, f) {
                    self.write_error = Some((self.findings_path.to_path_buf(), e));
                }
            }
        }
        if let Some(mut r) = record {
            r.exposed = std::mem::take(&mut m.eval.exposure.exposed);
            r.set_findings(&m.eval.findings);
            self.records.push(r);
        }
    }

    fn problem(&mut self, problem: &Problem) {
        self.report(problem);
    }

    fn progress(&mut self, bytes: u64, messages: u64) {
        self.observer.progress(bytes, messages);
    }
}

/// Scans and evaluates (workers, ranked under the profile), collects in archive order (this
/// thread); findings and problems are streamed into their files, committed when the scan ends.
fn scan(
    cfg: &IncidentConfig,
    write_dir: &Path,
    problems_path: &Path,
    is_customer: &IsCustomer<'_>,
    observer: &mut dyn Observer,
) -> Result<Scanned, IncidentError> {
    let started = Instant::now();
    let findings_path = write_dir.join("findings.jsonl");
    let create = |path: &Path| {
        AtomicFile::create(path).map_err(|source| IncidentError::Io {
            path: path.to_path_buf(),
            source,
        })
    };
    let history = match cfg.triage.profile {
        Profile::Audit => History::load_if_present(cfg.triage.history_file.as_deref())?,
        Profile::Gate => None,
    };
    let mut sink = Collect {
        observer,
        problems: create(problems_path)?,
        problem_count: 0,
        findings: std::io::BufWriter::with_capacity(1 << 16, create(&findings_path)?),
        write_error: None,
        findings_path: &findings_path,
        problems_path,
        sel: Selection::new(cfg.min_severity),
        records: Vec::new(),
        dates: Vec::new(),
    };
    let audit = ArchiveAudit {
        profile: cfg.triage.profile,
        history,
        aliases: &cfg.triage.aliases,
        is_customer: Some(is_customer),
    };
    // The report's record is built on the worker; its severities after the ranking, its
    // exposed addresses moved in from the evaluation (not copied while the scan runs).
    let (stats, history) = audit.evaluate(
        &cfg.scanner,
        &cfg.archives,
        &cfg.engine,
        |msg: &Message<'_>, ev: &Evaluation| {
            (
                msg.envelope.date,
                MessageRecord::without_exposed(msg, &ev.exposure, &ev.findings),
            )
        },
        &mut sink,
    );
    if let (Some(p), Some(h)) = (&cfg.triage.history_file, &history) {
        h.save(p)?;
    }
    let suggested = history.as_ref().map_or_else(Vec::new, |h| {
        h.unconfigured_sender_domains(cfg.engine.org())
    });
    let Collect {
        problems,
        problem_count,
        findings,
        write_error,
        sel,
        records,
        dates,
        ..
    } = sink;
    if let Some((path, source)) = write_error {
        return Err(IncidentError::Io { path, source });
    }
    let commit = |path: &Path, r: std::io::Result<()>| {
        r.map_err(|source| IncidentError::Io {
            path: path.to_path_buf(),
            source,
        })
    };
    let findings = findings.into_inner().map_err(|e| IncidentError::Io {
        path: findings_path.clone(),
        source: e.into_error(),
    })?;
    commit(&findings_path, findings.commit())?;
    commit(problems_path, problems.commit())?;
    let below_only = sel.below_only();
    let Selection { acc, saw, .. } = sel;
    Ok(Scanned {
        stats,
        acc,
        records,
        dates,
        problems: problem_count,
        below_only,
        suggested,
        saw,
        secs: started.elapsed().as_secs_f64(),
    })
}

/// The report's view of an affected row (the report crate knows nothing of remediation).
fn affected_user(r: &AffectedRow) -> AffectedUser {
    let secs = |t: &Option<String>| {
        t.as_deref()
            .and_then(leakaudit_scanner::time::parse_rfc3339)
    };
    AffectedUser {
        address: r.address.clone(),
        account_ids: r.account_ids.clone(),
        messages: r.messages,
        audience: r.audience,
        first: secs(&r.first_exposed),
        last: secs(&r.last_exposed),
    }
}

/// The report's totals of a plan written as `plan.json` beside it, not (yet) applied.
fn plan_totals(plan: &Plan) -> PlanTotals {
    PlanTotals {
        resets: plan.totals.force_password_reset,
        reviews: plan.totals.human_review,
        notifications: plan.totals.notify,
        notify_only: plan.totals.notify_only,
        applied: false,
        file: Some("plan.json".into()),
        hash: Some(plan.content_hash.clone()),
        ..PlanTotals::default()
    }
}

/// Whether the store has a failed-login count for any exposed account.
fn failed_login_data(
    store: &dyn AccountStore,
    users: &AffectedTotals,
) -> Result<bool, IncidentError> {
    for id in &users.accounts {
        if store
            .account(id)?
            .is_some_and(|a| a.failed_logins.is_some())
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// For a re-plan: what the incident's earlier plans did of this plan's actions (recorded as
/// covered when it was applied, foreseen when not).
fn plan_delta(store: &dyn AccountStore, plan: &Plan) -> Result<Option<PlanDelta>, IncidentError> {
    let d = leakaudit_remediation::apply::delta(plan, store)?;
    if d.earlier.is_empty() {
        return Ok(None);
    }
    Ok(Some(PlanDelta {
        incident: plan.incident_id().to_string(),
        covered: d.covered_by_kind(plan),
        earlier_plans: d.earlier,
    }))
}

fn apply_plan(
    settings: &ApplySettings,
    engine: &Engine,
    plan: &Plan,
    store: &mut dyn AccountStore,
    (outbox, log): (&Path, &Path),
    observer: &mut dyn Observer,
) -> Result<ApplyReport, IncidentError> {
    // The outbox is refused when the configured policy finds anything in a notification.
    let opts = ApplyOptions::new(
        outbox.to_path_buf(),
        log.to_path_buf(),
        settings.reset_base_url.clone(),
        settings.sender.clone(),
        OutboxGate::new(engine),
    )
    .with_templates(settings.templates.clone())
    .with_executor(settings.executor.clone());
    let opts = ApplyOptions {
        new_incident: settings.new_incident,
        ..opts
    };
    let mut on_event = |ev: ApplyEvent<'_>| observer.apply_event(&ev);
    Ok(leakaudit_remediation::apply(
        plan,
        store,
        &opts,
        &mut on_event,
    )?)
}
