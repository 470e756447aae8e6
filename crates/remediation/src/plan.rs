//! The remediation plan: every action with its account, reason and rule, totals, the store it
//! was made against, and a content hash. Building a plan changes nothing.
//!
//! Content hash: `sha256:` + hex SHA-256 of the compact JSON (serde_json, fields in declared
//! order, no whitespace) of `{"store_id": ..., "actions": [...]}`. Binding the store id into
//! the hash means neither the actions nor the target store can be edited without `apply`
//! refusing the plan. Plans carry account ids, not addresses.

use crate::affected::{AffectedRow, PSEUDONYM_PREFIX};
use crate::error::{Error, Result};
use crate::matching::{match_key, MatchMode};
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

/// Counts for summaries (the incident report reads these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PlanTotals {
    pub affected_addresses: usize,
    pub unmatched_addresses: usize,
    pub accounts: usize,
    pub force_password_reset: usize,
    pub human_review: usize,
    pub notify: usize,
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
    pub content_hash: String,
}

#[derive(Serialize)]
struct Hashed<'a> {
    store_id: &'a str,
    actions: &'a [Action],
}

/// The content hash of `actions` for `store_id` (see the module doc).
pub fn content_hash(store_id: &str, actions: &[Action]) -> String {
    let bytes =
        serde_json::to_vec(&Hashed { store_id, actions }).expect("plan actions always serialise");
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes)))
}

impl Plan {
    /// Recomputes the content hash.
    pub fn computed_hash(&self) -> String {
        content_hash(&self.store.id, &self.actions)
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

struct AccountAgg {
    account: Account,
    messages: usize,
    audience: usize,
    first: Option<String>,
}

/// Builds the plan for `rows` against `store`. Pseudonymised rows cannot be matched and are
/// refused (an error), because silently skipping them would miss users.
pub fn build_plan(
    rows: &[AffectedRow],
    store: &dyn AccountStore,
    policy: &RemediationPolicy,
    mode: MatchMode,
) -> Result<Plan> {
    if let Some(r) = rows
        .iter()
        .find(|r| r.address.starts_with(PSEUDONYM_PREFIX))
    {
        return Err(Error::Setting(format!(
            "the affected list is pseudonymised ({}...): plan from the clear list or the findings",
            &r.address[..PSEUDONYM_PREFIX.len() + 8.min(r.address.len() - PSEUDONYM_PREFIX.len())]
        )));
    }
    let mut accounts: BTreeMap<String, AccountAgg> = BTreeMap::new();
    let mut unmatched = 0;
    for row in rows {
        let found = store.find_by_email(&match_key(&row.address, mode), mode)?;
        if found.is_empty() {
            unmatched += 1;
        }
        for acct in found {
            let e = accounts.entry(acct.id.clone()).or_insert(AccountAgg {
                account: acct,
                messages: 0,
                audience: 0,
                first: None,
            });
            // With folding two spellings can map to one account: add their messages.
            e.messages += row.messages;
            e.audience = e.audience.max(row.audience);
            e.first = match (e.first.take(), row.first_exposed.clone()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
    }
    let mut actions = Vec::new();
    for (id, agg) in &accounts {
        let facts = Facts {
            account: &agg.account,
            messages: agg.messages,
            audience: agg.audience,
        };
        let mut decided: Vec<(ActionKind, String, String)> = policy
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
        affected_addresses: rows.len(),
        unmatched_addresses: unmatched,
        accounts: accounts.len(),
        force_password_reset: count(ActionKind::ForcePasswordReset),
        human_review: count(ActionKind::HumanReview),
        notify: count(ActionKind::Notify),
        actions: actions.len(),
    };
    let store_id = store.store_id()?;
    let content_hash = content_hash(&store_id, &actions);
    Ok(Plan {
        schema: PLAN_SCHEMA.into(),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        store: StoreRef {
            id: store_id,
            description: store.describe(),
            accounts: store.account_count()?,
        },
        policy: PolicyRef {
            source: policy.source.clone(),
            sha256: policy.digest.clone(),
        },
        match_mode: match mode {
            MatchMode::Canonical => "canonical".into(),
            MatchMode::ProviderFolding => "provider-folding".into(),
        },
        totals,
        actions,
        content_hash,
    })
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
