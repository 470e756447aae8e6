//! The incident run through the library alone (no command line): the demo archive and
//! accounts, an observer that records what it is told.

use leakaudit_incident::{
    Incident, IncidentConfig, IncidentError, Observer, Stage, TriageSettings,
};
use leakaudit_policy::audit::{engine, Outcome};
use leakaudit_policy::config::OrgConfig;
use leakaudit_policy::triage::Profile;
use leakaudit_policy::{RulePack, Severity};
use leakaudit_remediation::{ImportOptions, MatchMode, RemediationPolicy};
use leakaudit_report::ReportOptions;
use leakaudit_scanner::scan::{ScanOptions, Scanner};
use leakaudit_scanner::Problem;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

fn config(archives: Vec<String>, out: &Path) -> IncidentConfig {
    let org = OrgConfig::default();
    IncidentConfig {
        archives,
        accounts: fixture("fixtures/demo/accounts.csv"),
        out: out.to_path_buf(),
        scanner: Scanner::new(ScanOptions::default()),
        engine: engine(RulePack::builtin(), &org, None).unwrap(),
        triage: TriageSettings {
            profile: Profile::Audit,
            history_file: None,
            aliases: Vec::new(),
        },
        min_severity: Severity::Medium,
        match_mode: MatchMode::Canonical,
        import: ImportOptions::default(),
        remediation: RemediationPolicy::builtin(),
        apply: None,
        problems_file: None,
        generated_at: 1_800_000_000,
        detected_at: 1_800_000_000,
        report: ReportOptions::default(),
        tool_version: "test".into(),
    }
}

#[derive(Default)]
struct Recorded {
    stages: Vec<(Stage, bool)>,
    problems: Vec<Problem>,
    progress: u64,
    scanned: bool,
}

impl Observer for Recorded {
    fn stage(&mut self, stage: Stage, _detail: &str) {
        self.stages.push((stage, false));
    }
    fn stage_done(&mut self, stage: Stage) {
        self.stages.push((stage, true));
    }
    fn problem(&mut self, problem: &Problem) {
        self.problems.push(problem.clone());
    }
    fn progress(&mut self, _bytes: u64, messages: u64) {
        self.progress = messages;
    }
    fn scanned(&mut self) {
        self.scanned = true;
    }
}

#[test]
fn the_demo_incident_runs_through_the_library_alone() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let archive = fixture("fixtures/demo/outbound.mbox").display().to_string();
    let mut seen = Recorded::default();
    let incident = Incident::open(config(vec![archive], &out), &mut seen).unwrap();
    assert_eq!(incident.store_path(), out.join("accounts.sqlite"));
    assert_eq!(incident.imported().map(|r| r.rows), Some(719));
    let o = incident.run(&mut seen).unwrap();

    assert_eq!(o.outcome, Outcome::Violation);
    assert_eq!(o.outcome.exit_code(), 1);
    let h = &o.summary.headline;
    assert_eq!(o.stats.messages, 378);
    assert_eq!(
        (h.exposing_messages, h.campaigns, h.single_messages),
        (9, 1, 1)
    );
    assert_eq!((h.addresses_exposed, h.accounts_affected), (799, 597));
    assert_eq!(
        (h.resets_planned, h.reviews_planned, h.notifications_planned),
        (204, 41, 597)
    );
    assert!(o.apply.is_none() && o.record.is_none(), "a dry run");
    assert_eq!(o.problems, 0);
    assert!(seen.problems.is_empty());
    assert!(seen.scanned);
    assert_eq!(seen.progress, 378);
    let order: Vec<_> = seen
        .stages
        .iter()
        .map(|(s, done)| (s.name(), *done))
        .collect();
    assert_eq!(
        order,
        [
            ("accounts", false),
            ("accounts", true),
            ("affected", false),
            ("affected", true),
            ("plan", false),
            ("plan", true),
            ("report", false),
            ("report", true)
        ]
    );

    let w = &o.report_files;
    for f in [
        &w.html,
        &w.summary,
        &w.breach_record,
        &w.campaigns,
        &o.affected_file,
        &o.plan_file,
        &o.findings_file,
        &o.problems_file,
    ] {
        let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", f.display());
        assert!(f.starts_with(&out), "{}", f.display());
    }
    let dir_mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700);
    // One affected.csv row per exposed address, after the header (and any # lines).
    let rows = std::fs::read_to_string(&o.affected_file).unwrap();
    assert_eq!(
        rows.lines().filter(|l| !l.starts_with('#')).count(),
        799 + 1
    );
}

#[test]
fn an_incident_of_nothing_read_is_an_error_before_any_plan() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let empty = dir.path().join("empty.mbox");
    std::fs::write(&empty, b"").unwrap();
    let mut seen = Recorded::default();
    let incident =
        Incident::open(config(vec![empty.display().to_string()], &out), &mut seen).unwrap();
    match incident.run(&mut seen) {
        Err(IncidentError::NothingRead(why)) => {
            assert!(why.contains("nothing was audited"), "{why}");
            assert!(why.contains("empty.mbox"), "{why}");
        }
        Err(e) => panic!("expected nothing read, got {e}"),
        Ok(_) => panic!("expected nothing read, got an outcome"),
    }
    for f in ["plan.json", "affected.csv", "summary.json", "report.html"] {
        assert!(
            !out.join(f).exists(),
            "{f} written for an incident of nothing"
        );
    }
}
