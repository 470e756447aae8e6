//! The remediation plan: every action with its account, reason and rule, totals, the store it
//! was made against, and a content hash. Building a plan changes nothing.
//!
//! Content hash: `sha256:` + hex SHA-256 of the compact JSON (serde_json, fields in declared
//! order, no whitespace) of `{"store_id": ..., "actions": [...], "notices": [...]}`
//! (`notices` left out when empty). Binding the store id into the hash means neither the
//! actions nor the target store can be edited without `apply` refusing the plan. Actions
//! carry account ids, not addresses; only notices (addresses without an account) carry an
//! address, since there is no account to reach them through.
//!
//! One matching decision: the plan takes the affected list's `account_ids` as written, and
//! only from a list matched against this very store (`store_id`).

use crate::affected::{AffectedList, AffectedRow, ListMeta, PSEUDONYM_PREFIX};
use crate::error::{Error, Result};
use crate::matching::MatchMode;
use crate::policy::{ActionKind, Facts, RemediationPolicy};
use crate::store::{Account, AccountStore};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::collections::BTreeMap;
use std::path::Path;

pub const PLAN_SCHEMA: &str = "leakaudit-remediation-plan/1";

/// One action on one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// `<kind>:<account id>`: stable, so state can be keyed by it.
    pub id: String,
    pub account: String,
    pub kind: ActionKind,
    /// The policy rule that chose it (`implied-by-reset` for a notification a reset forces).
    pub rule: String,
    pub reason: String,
    /// Exposure facts the notification tells the user.
    pub messages: usize,
    pub audience: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_exposed: Option<String>,
}

/// Kind of a [`Notice`] (and the prefix of its id): a notification to an exposed address
/// with no account. No token, nothing changes in the store.
pub const NOTIFY_ONLY: &str = "notify-only";

/// A notify-only action: an exposed address without an account is still a data subject the
/// notice is owed to. Its id is `notify-only:<n>` (n = 1-based position among the plan's
/// notices), so the address never reaches the audit log or the store's action table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub id: String,
    /// The canonical address the notification goes to.
    pub address: String,
    pub messages: usize,
    pub audience: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_exposed: Option<String>,
}

/// The key that stands for a notice's address in the store's action table and the audit log
/// (`address-sha256:` + the first 32 hex digits of SHA-256 over the plan hash, a NUL and the
/// address): release and send check a staged notice's recipient against it, and neither
/// table ever holds the address.
pub fn notice_key(plan_hash: &str, address: &str) -> String {
    let mut h = sha2::Sha256::new();
    h.update(plan_hash.as_bytes());
    h.update([0]);
    h.update(address.as_bytes());
    format!("address-sha256:{}", &hex::encode(h.finalize())[..32])
}

/// Counts for summaries (the incident report reads these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PlanTotals {
    pub affected_addresses: usize,
    pub unmatched_addresses: usize,
    pub accounts: usize,
    pub force_password_reset: usize,
    pub human_review: usize,
    pub notify: usize,
    /// Notify-only actions for exposed addresses without an account ([`Notice`]s).
    #[serde(default)]
    pub notify_only: usize,
    /// Actions on accounts (notices not included).
    pub actions: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreRef {
    pub id: String,
    pub description: String,
    pub accounts: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRef {
    pub source: String,
    pub sha256: String,
}

/// A plan file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub schema: String,
    pub created_at: String,
    pub store: StoreRef,
    pub policy: PolicyRef,
    /// `canonical` or `provider-folding`.
    pub match_mode: String,
    pub totals: PlanTotals,
    pub actions: Vec<Action>,
    /// Notify-only actions for addresses without an account.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<Notice>,
    /// The incident this plan re-plans (the content hash of its first plan), when it is not
    /// the first: apply then does only what the incident's earlier plans have not done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    pub content_hash: String,
}

#[derive(Serialize)]
struct Hashed<'a> {
    store_id: &'a str,
    // Absent for a first plan; bound into the hash so that no edit moves a plan into
    // another incident (whose earlier work apply would then skip).
    #[serde(skip_serializing_if = "Option::is_none")]
    incident: Option<&'a str>,
    actions: &'a [Action],
    // Absent when empty, so plans without notices keep the hash they always had.
    #[serde(skip_serializing_if = "<[Notice]>::is_empty")]
    notices: &'a [Notice],
}

/// The content hash of `actions` and `notices` for `store_id` (see the module doc).
pub fn content_hash(
    store_id: &str,
    incident: Option<&str>,
    actions: &[Action],
    notices: &[Notice],
) -> String {
    /// The JSON goes straight into the digest: a plan with 1,000,000 notices is ~150 MB of it.
    struct Digesting(sha2::Sha256);
    impl std::io::Write for Digesting {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut d = Digesting(sha2::Sha256::new());
    serde_json::to_writer(
        &mut d,
        &Hashed {
            store_id,
            incident,
            actions,
            notices,
        },
    )
    .expect("plan actions always serialise");
    format!("sha256:{}", hex::encode(d.0.finalize()))
}

impl Plan {
    /// Recomputes the content hash.
    pub fn computed_hash(&self) -> String {
        content_hash(
            &self.store.id,
            self.incident.as_deref(),
            &self.actions,
            &self.notices,
        )
    }

    /// The incident this plan belongs to: the one it re-plans, or itself.
    pub fn incident_id(&self) -> &str {
        self.incident.as_deref().unwrap_or(&self.content_hash)
    }

    /// Makes this plan a re-plan of `incident` (or a first plan, with `None`) and rehashes it.
    pub fn set_incident(&mut self, incident: Option<String>) {
        self.incident = incident;
        self.content_hash = self.computed_hash();
    }

    /// Before acting on `store`: the plan is unmodified (its content hash) and was made for
    /// this store (its id). `read_plan` checked the hash already; a plan built in memory or
    /// edited since is checked here.
    pub fn check_against(&self, store: &dyn AccountStore) -> Result<()> {
        let computed = self.computed_hash();
        if computed != self.content_hash {
            return Err(Error::PlanHashMismatch {
                path: std::path::PathBuf::from("<plan>"),
                stated: self.content_hash.clone(),
                computed,
            });
        }
        let store_id = store.store_id()?;
        if store_id != self.store.id {
            return Err(Error::WrongStore {
                path: std::path::PathBuf::from(store.describe()),
                plan_store: self.store.id.clone(),
                store_id,
            });
        }
        Ok(())
    }

    /// The actions grouped by account, accounts in id order.
    pub fn by_account(&self) -> BTreeMap<&str, Vec<&Action>> {
        let mut m: BTreeMap<&str, Vec<&Action>> = BTreeMap::new();
        for a in &self.actions {
            m.entry(a.account.as_str()).or_default().push(a);
        }
        m
    }
}

/// A [`Notice`] while the plan is built: ~70 bytes instead of ~190 (a million addresses
/// without an account is the shape of a mass-mail leak to non-customers). The address moves
/// into the notice without a copy; consecutive rows usually share their first exposure.
struct PendingNotice {
    address: Box<str>,
    messages: usize,
    audience: usize,
    first: Option<std::sync::Arc<str>>,
}

struct AccountAgg {
    account: Account,
    messages: usize,
    audience: usize,
    first: Option<String>,
}

/// Builds a plan row by row (rows may be streamed from the accumulator): memory is one
/// entry per matched account plus one [`Notice`] per address without an account.
pub struct PlanBuilder<'a> {
    store: &'a dyn AccountStore,
    policy: &'a RemediationPolicy,
    store_id: String,
    mode: MatchMode,
    accounts: BTreeMap<String, AccountAgg>,
    notices: Vec<PendingNotice>,
    rows: usize,
    unmatched: usize,
}

impl<'a> PlanBuilder<'a> {
    /// Checks that the rows were matched against `store` (`meta.store_id`), so the plan
    /// uses their `account_ids` as written: one matching decision.
    pub fn new(
        store: &'a dyn AccountStore,
        policy: &'a RemediationPolicy,
        meta: &ListMeta,
    ) -> Result<PlanBuilder<'a>> {
        let store_id = store.store_id()?;
        match &meta.store_id {
            None => return Err(Error::ListNotMatched),
            Some(id) if *id != store_id => {
                return Err(Error::ListWrongStore {
                    list_store: id.clone(),
                    store_id,
                })
            }
            Some(_) => {}
        }
        if meta.pseudonymised {
            return Err(Error::Setting(
                "the affected list is pseudonymised: plan from the clear list or the findings"
                    .into(),
            ));
        }
        Ok(PlanBuilder {
            store,
            policy,
            store_id,
            mode: meta.match_mode.unwrap_or_default(),
            accounts: BTreeMap::new(),
            notices: Vec::new(),
            rows: 0,
            unmatched: 0,
        })
    }

    /// Adds one row of the matched list.
    pub fn add(&mut self, row: &AffectedRow) -> Result<()> {
        self.rows += 1;
        if row.address.starts_with(PSEUDONYM_PREFIX) {
            return Err(Error::Setting(format!(
                "row {}: the affected list is pseudonymised: plan from the clear list or the findings",
                self.rows
            )));
        }
        if row.account_ids.is_empty() {
            self.unmatched += 1;
            if self.policy.notify_unmatched {
                let first = match (&row.first_exposed, self.notices.last()) {
                    (Some(f), Some(PendingNotice { first: Some(p), .. })) if **p == **f => {
                        Some(p.clone())
                    }
                    (f, _) => f.as_deref().map(std::sync::Arc::from),
                };
                self.notices.push(PendingNotice {
                    address: row.address.as_str().into(),
                    messages: row.messages,
                    audience: row.audience,
                    first,
                });
            }
            return Ok(());
        }
        for id in &row.account_ids {
            if let Some(e) = self.accounts.get_mut(id) {
                // With folding two spellings can map to one account: add their messages.
                e.messages += row.messages;
                e.audience = e.audience.max(row.audience);
                e.first = match (e.first.take(), row.first_exposed.clone()) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                continue;
            }
            let account = self
                .store
                .account(id)?
                .ok_or_else(|| Error::ListUnknownAccount {
                    account: id.clone(),
                    row: self.rows,
                    store_id: self.store_id.clone(),
                })?;
            self.accounts.insert(
                id.clone(),
                AccountAgg {
                    account,
                    messages: row.messages,
                    audience: row.audience,
                    first: row.first_exposed.clone(),
                },
            );
        }
        Ok(())
    }

    /// The plan: actions per account from the policy, notices, totals, content hash.
    pub fn finish(self) -> Result<Plan> {
        let mut actions = Vec::new();
        for (id, agg) in &self.accounts {
            let facts = Facts {
                account: &agg.account,
                messages: agg.messages,
                audience: agg.audience,
            };
            let mut decided: Vec<(ActionKind, String, String)> = self
                .policy
                .decide(&facts)
                .into_iter()
                .map(|(k, r, why)| (k, r.id.clone(), why))
                .collect();
            let resets = decided
                .iter()
                .any(|(k, _, _)| *k == ActionKind::ForcePasswordReset);
            if resets && !decided.iter().any(|(k, _, _)| *k == ActionKind::Notify) {
                decided.push((
                    ActionKind::Notify,
                    "implied-by-reset".into(),
                    "the reset link reaches the user only by notification".into(),
                ));
            }
            decided.sort_by_key(|(k, _, _)| *k);
            for (kind, rule, reason) in decided {
                actions.push(Action {
                    id: format!("{}:{id}", kind.as_str()),
                    account: id.clone(),
                    kind,
                    rule,
                    reason,
                    messages: agg.messages,
                    audience: agg.audience,
                    first_exposed: agg.first.clone(),
                });
            }
        }
        let count = |k| actions.iter().filter(|a| a.kind == k).count();
        let totals = PlanTotals {
            affected_addresses: self.rows,
            unmatched_addresses: self.unmatched,
            accounts: self.accounts.len(),
            force_password_reset: count(ActionKind::ForcePasswordReset),
            human_review: count(ActionKind::HumanReview),
            notify: count(ActionKind::Notify),
            notify_only: self.notices.len(),
            actions: actions.len(),
        };
        // Ids are 1-based positions among the notices (see [`Notice`]).
        let notices: Vec<Notice> = self
            .notices
            .into_iter()
            .enumerate()
            .map(|(i, n)| Notice {
                id: format!("{NOTIFY_ONLY}:{}", i + 1),
                address: n.address.into(),
                messages: n.messages,
                audience: n.audience,
                first_exposed: n.first.map(|f| f.to_string()),
            })
            .collect();
        let content_hash = content_hash(&self.store_id, None, &actions, &notices);
        Ok(Plan {
            schema: PLAN_SCHEMA.into(),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            store: StoreRef {
                id: self.store_id,
                description: self.store.describe(),
                accounts: self.store.account_count()?,
            },
            policy: PolicyRef {
                source: self.policy.source.clone(),
                sha256: self.policy.digest.clone(),
            },
            match_mode: self.mode.as_str().into(),
            totals,
            actions,
            notices,
            incident: None,
            content_hash,
        })
    }
}

/// Builds the plan for a matched affected list (see [`PlanBuilder`]): the rows'
/// `account_ids` are used as written; a list never matched, matched against another store,
/// or pseudonymised is refused. Rows without an account get a [`Notice`] when the policy's
/// `notify_unmatched` is on.
pub fn build_plan(
    list: &AffectedList,
    store: &dyn AccountStore,
    policy: &RemediationPolicy,
) -> Result<Plan> {
    let mut b = PlanBuilder::new(store, policy, &list.meta())?;
    for row in &list.rows {
        b.add(row)?;
    }
    b.finish()
}

/// Writes the plan atomically (0600).
pub fn write_plan(path: &Path, plan: &Plan) -> Result<()> {
    leakaudit_scanner::io::write_atomic(path, |w| {
        serde_json::to_writer_pretty(&mut *w, plan)?;
        w.write_all(b"\n")
    })
    .map_err(|e| Error::io(path, e))
}

/// Reads a plan and checks its content hash; a modified plan is an error.
pub fn read_plan(path: &Path) -> Result<Plan> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let plan: Plan = serde_json::from_str(&text).map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        line: Some(e.line() as u64),
        reason: e.to_string(),
    })?;
    if plan.schema != PLAN_SCHEMA {
        return Err(Error::Parse {
            path: path.to_path_buf(),
            line: None,
            reason: format!("unknown plan schema `{}`", plan.schema),
        });
    }
    let computed = plan.computed_hash();
    if computed != plan.content_hash {
        return Err(Error::PlanHashMismatch {
            path: path.to_path_buf(),
            stated: plan.content_hash.clone(),
            computed,
        });
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::affected::fold_hint;
    use crate::affected::match_list;
    use crate::store::{AccountRecord, SqliteStore};

    fn store(dir: &Path, name: &str) -> SqliteStore {
        let mut s = SqliteStore::open(&dir.join(name)).unwrap();
        let acct = |id: &str, email: &str, balance: f64| AccountRecord {
            id: id.into(),
            email: email.into(),
            has_2fa: false,
            balance,
            locale: "en".into(),
            failed_logins: None,
            failed_logins_since: None,
        };
        s.import(&[
            acct("acc-1", "jdoe@gmail.com", 10.0),
            acct("acc-2", "ann@acme.example", 0.0),
            acct("acc-3", "kim@gmail.com", 5.0),
        ])
        .unwrap();
        s
    }

    fn row(address: &str) -> AffectedRow {
        AffectedRow {
            address: address.into(),
            account_ids: Vec::new(),
            messages: 1,
            audience: 3,
            first_exposed: Some("2026-03-02T09:00:00Z".into()),
            last_exposed: Some("2026-03-02T09:00:00Z".into()),
            rule_ids: vec!["recipient-exposure".into()],
            fields: vec!["To".into()],
            message_ids: vec!["m@shop.example".into()],
        }
    }

    /// `j.doe+shop@gmail.com` is acc-1 only with provider folding; `nobody@yahoo.com` has no
    /// account either way.
    fn rows() -> Vec<AffectedRow> {
        [
            "ann@acme.example",
            "j.doe+shop@gmail.com",
            "nobody@yahoo.com",
        ]
        .into_iter()
        .map(row)
        .collect()
    }

    #[test]
    fn plan_from_a_folded_affected_list_keeps_its_matches() {
        let d = tempfile::tempdir().unwrap();
        let st = store(d.path(), "a.db");
        let mut list = AffectedList::new(rows());
        match_list(&mut list, &st, MatchMode::ProviderFolding).unwrap();
        assert_eq!(list.rows[1].account_ids, vec!["acc-1"]);
        // Written and read back, as `remediate plan --affected` does.
        let p = d.path().join("affected.csv");
        crate::affected::write_file(&p, crate::AffectedFormat::Csv, &list.meta(), &list.rows)
            .unwrap();
        let back = crate::affected::read_file(&p).unwrap();
        let plan = build_plan(&back, &st, &RemediationPolicy::builtin()).unwrap();
        assert_eq!(plan.match_mode, "provider-folding");
        let accounts: Vec<&str> = plan.by_account().keys().copied().collect();
        assert_eq!(accounts, vec!["acc-1", "acc-2"]);
        assert!(plan
            .actions
            .iter()
            .any(|a| a.id == "force-password-reset:acc-1"));
        assert_eq!(plan.totals.accounts, 2);
        assert_eq!(plan.totals.unmatched_addresses, 1);
    }

    #[test]
    fn list_matched_against_another_store_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (store(d.path(), "a.db"), store(d.path(), "b.db"));
        let mut list = AffectedList::new(rows());
        match_list(&mut list, &a, MatchMode::Canonical).unwrap();
        let err = build_plan(&list, &b, &RemediationPolicy::builtin()).unwrap_err();
        assert!(matches!(err, Error::ListWrongStore { .. }), "{err}");
        let never = AffectedList::new(rows());
        let err = build_plan(&never, &a, &RemediationPolicy::builtin()).unwrap_err();
        assert!(matches!(err, Error::ListNotMatched), "{err}");
        // An account id the store does not have (a hand-edited list) is an error, not a skip.
        list.rows[2].account_ids = vec!["acc-404".into()];
        let err = build_plan(&list, &a, &RemediationPolicy::builtin()).unwrap_err();
        assert!(
            matches!(&err, Error::ListUnknownAccount { row: 3, .. }),
            "{err}"
        );
    }

    #[test]
    fn unmatched_addresses_get_notify_only_actions() {
        let d = tempfile::tempdir().unwrap();
        let st = store(d.path(), "a.db");
        let mut list = AffectedList::new(rows());
        match_list(&mut list, &st, MatchMode::Canonical).unwrap();
        let plan = build_plan(&list, &st, &RemediationPolicy::builtin()).unwrap();
        let notices: Vec<(&str, &str)> = plan
            .notices
            .iter()
            .map(|n| (n.id.as_str(), n.address.as_str()))
            .collect();
        assert_eq!(
            notices,
            vec![
                ("notify-only:1", "j.doe+shop@gmail.com"),
                ("notify-only:2", "nobody@yahoo.com")
            ]
        );
        assert_eq!(plan.totals.notify_only, 2);
        assert_eq!(plan.totals.unmatched_addresses, 2);
        assert!(plan.actions.iter().all(|a| a.account == "acc-2"));
        // The notices are bound by the content hash.
        let p = d.path().join("plan.json");
        write_plan(&p, &plan).unwrap();
        assert_eq!(read_plan(&p).unwrap(), plan);
        let edited = std::fs::read_to_string(&p)
            .unwrap()
            .replace("nobody@yahoo.com", "attacker@evil.example");
        std::fs::write(&p, edited).unwrap();
        assert!(matches!(
            read_plan(&p).unwrap_err(),
            Error::PlanHashMismatch { .. }
        ));
        // Turned off in the policy: none.
        let mut off = RemediationPolicy::builtin();
        off.notify_unmatched = false;
        let plan = build_plan(&list, &st, &off).unwrap();
        assert!(plan.notices.is_empty());
        assert_eq!(plan.totals.notify_only, 0);
    }

    #[test]
    fn plan_without_notices_keeps_the_old_content_hash() {
        let a = Action {
            id: "notify:acc-1".into(),
            account: "acc-1".into(),
            kind: ActionKind::Notify,
            rule: "notify-exposed".into(),
            reason: "r".into(),
            messages: 1,
            audience: 2,
            first_exposed: None,
        };
        let old = format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(
                format!(
                    "{{\"store_id\":\"s\",\"actions\":[{}]}}",
                    serde_json::to_string(&a).unwrap()
                )
                .as_bytes()
            ))
        );
        assert_eq!(content_hash("s", None, &[a], &[]), old);
    }

    #[test]
    fn fold_hint_counts_unmatched_rows_that_folding_would_match() {
        let d = tempfile::tempdir().unwrap();
        let st = store(d.path(), "a.db");
        let mut list = AffectedList::new(rows());
        list.rows.push(row("k.i.m@googlemail.com"));
        match_list(&mut list, &st, MatchMode::Canonical).unwrap();
        assert_eq!(fold_hint(&list.rows, &st).unwrap(), 2, "j.doe+shop, k.i.m");
        match_list(&mut list, &st, MatchMode::ProviderFolding).unwrap();
        assert_eq!(fold_hint(&list.rows, &st).unwrap(), 0);
    }
}
