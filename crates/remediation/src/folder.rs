//! An incident's output folder across runs. The same inputs make the same plan: the run
//! resumes it. Other inputs (accounts or archives changed) make a re-plan of the incident
//! (`Plan::incident`), applied as a delta: the earlier run's outputs are kept whole in
//! `earlier/<hash>/` first, and each plan has its own outbox and audit log (release and send
//! check one plan's messages; a log is one plan's chain).

use crate::error::{Error, Result};
use crate::outbox::Outbox;
use crate::plan::Plan;
use crate::store::AccountStore;
use leakaudit_scanner::safefs::private_dir;
use std::path::{Path, PathBuf};

/// The outputs a run writes before its plan is known to be the folder's (staged, then moved).
pub const RUN_OUTPUTS: [&str; 5] = [
    "findings.jsonl",
    "problems.jsonl",
    "affected.csv",
    "saw-others.csv",
    "plan.json",
];

/// The report's files, written after the plan.
pub const REPORT_OUTPUTS: [&str; 4] = [
    "report.html",
    "summary.json",
    "breach-record.md",
    "campaigns.csv",
];

/// The first 12 hex digits of a plan hash: its tag in file and folder names.
pub fn short_hash(hash: &str) -> &str {
    let h = hash.trim_start_matches("sha256:");
    h.get(..12).unwrap_or(h)
}

/// `out/plan.json` when the folder holds an applied incident: the store has actions of that
/// plan, or it is a re-plan (a run killed after moving it into place must make it again as a
/// re-plan, not as a first plan).
pub fn applied_plan_in(out: &Path, store: &dyn AccountStore) -> Result<Option<Plan>> {
    let path = out.join("plan.json");
    if !path.exists() {
        return Ok(None);
    }
    let plan = crate::plan::read_plan(&path)?;
    let applied = plan.incident.is_some() || !store.action_states(&plan.content_hash)?.is_empty();
    Ok(applied.then_some(plan))
}

/// Makes `plan` the folder's next plan after `old`: the same inputs keep `old`'s incident
/// field (the same hash: a resumed run); other inputs make a re-plan of `old`'s incident,
/// unless this is a new incident.
pub fn follow(plan: &mut Plan, old: &Plan, new_incident: bool) {
    plan.set_incident(old.incident.clone());
    if plan.content_hash != old.content_hash && !new_incident {
        plan.set_incident(Some(old.incident_id().to_string()));
    }
}

/// Moves a run's outputs, staged in `staged`, into `out`. When they make another plan than
/// `old`, the earlier outputs are first copied to `out/earlier/<hash>/` (a folder that appears
/// whole: a killed run loses nothing and replaces nothing).
pub fn settle(out: &Path, staged: &Path, old: &Plan, plan: &Plan) -> Result<()> {
    if plan.content_hash != old.content_hash {
        let earlier = out.join("earlier");
        let keep = earlier.join(short_hash(&old.content_hash));
        private_dir(&earlier)?;
        if !keep.exists() {
            let part = earlier.join(".moving");
            if part.exists() {
                std::fs::remove_dir_all(&part).map_err(|e| Error::io(&part, e))?;
            }
            private_dir(&part)?;
            for f in RUN_OUTPUTS.iter().chain(&REPORT_OUTPUTS) {
                let from = out.join(f);
                if from.exists() {
                    std::fs::copy(&from, part.join(f)).map_err(|e| Error::io(&from, e))?;
                }
            }
            std::fs::rename(&part, &keep).map_err(|e| Error::io(&keep, e))?;
        }
    }
    for f in RUN_OUTPUTS {
        let from = staged.join(f);
        let to = out.join(f);
        if from.exists() {
            std::fs::rename(&from, &to).map_err(|e| Error::io(&to, e))?;
        } else if f == "saw-others.csv" && to.exists() {
            // An earlier run's list in the same folder would describe another archive.
            std::fs::remove_file(&to).map_err(|e| Error::io(&to, e))?;
        }
    }
    std::fs::remove_dir_all(staged).map_err(|e| Error::io(staged, e))
}

/// The plan's outbox and audit log: `out/outbox` and `out/audit.jsonl` while they hold no
/// other plan (the folder's first plan), else `out/outbox-<hash>` and `out/audit-<hash>.jsonl`
/// (a re-plan, or a new incident over an applied folder).
pub fn plan_files(out: &Path, plan: &Plan) -> (PathBuf, PathBuf) {
    let hash = &plan.content_hash;
    let (outbox, log) = (out.join("outbox"), out.join("audit.jsonl"));
    let outbox_free = matches!(Outbox::new(&outbox).other_plan(hash), Ok(None));
    let log_free = match std::fs::read_to_string(&log) {
        Err(_) => true,
        Ok(text) => text.lines().next().is_none_or(|first| {
            serde_json::from_str::<crate::audit::Entry>(first).is_ok_and(|e| e.plan == *hash)
        }),
    };
    if outbox_free && log_free {
        return (outbox, log);
    }
    let tag = short_hash(hash);
    (
        out.join(format!("outbox-{tag}")),
        out.join(format!("audit-{tag}.jsonl")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plans_tag_is_its_hash_prefix() {
        assert_eq!(short_hash("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(short_hash("abc"), "abc");
    }

    /// A folder whose outbox and log hold another plan gives a re-plan files of its own; an
    /// empty folder gives the plain names.
    #[test]
    fn plan_files_follow_what_the_folder_holds() {
        let dir = tempfile::tempdir().unwrap();
        let plan = |hash: &str| -> Plan {
            let mut p: Plan = serde_json::from_value(serde_json::json!({
                "schema": crate::plan::PLAN_SCHEMA, "created_at": "",
                "store": {"id": "s", "description": "", "accounts": 0},
                "policy": {"source": "", "sha256": ""}, "match_mode": "canonical",
                "totals": {"affected_addresses": 0, "unmatched_addresses": 0, "accounts": 0,
                    "force_password_reset": 0, "human_review": 0, "notify": 0, "actions": 0},
                "actions": [], "content_hash": hash
            }))
            .unwrap();
            p.content_hash = hash.to_string();
            p
        };
        let first = plan("sha256:aaaaaaaaaaaa1111");
        assert_eq!(
            plan_files(dir.path(), &first),
            (dir.path().join("outbox"), dir.path().join("audit.jsonl"))
        );
        let outbox = Outbox::new(&dir.path().join("outbox"));
        outbox.prepare().unwrap();
        outbox
            .stage(&Outbox::file_name(&first.content_hash, "acc"), b"m")
            .unwrap();
        let second = plan("sha256:bbbbbbbbbbbb2222");
        assert_eq!(
            plan_files(dir.path(), &second),
            (
                dir.path().join("outbox-bbbbbbbbbbbb"),
                dir.path().join("audit-bbbbbbbbbbbb.jsonl")
            )
        );
        assert_eq!(plan_files(dir.path(), &first).0, dir.path().join("outbox"));
    }
}
