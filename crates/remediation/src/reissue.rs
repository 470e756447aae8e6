//! Reissue: one account's notification again, when its outbox file was deleted after apply
//! or its link expired. The live token is revoked and a new one issued (argon2id hash only),
//! the new message checked by the gate and staged under the same file name, all under a new
//! action `reissue:<account>:<n>` of the same plan, committed with the account's changes in
//! one store transaction and audit-logged in the plan's chain.
//!
//! Crash windows are those of apply: killed after staging but before the commit, the staged
//! link is dead and the next reissue replaces it (the planned action is reused, not a second
//! one); killed between the commit and the log, the next reissue logs the done action first.

use crate::apply::{ApplyOptions, DEFAULT_TOKEN_TTL_SECS};
use crate::audit::AuditLog;
use crate::error::{Error, Result};
use crate::outbox::{reset_link, Notice, Outbox, StagedMessage};
use crate::plan::Plan;
use crate::policy::ActionKind;
use crate::store::{lock_store, AccountCommit, AccountStore, ActionState, LockHolder, NewToken};
use crate::token::issue;
use std::path::PathBuf;

/// The action kind recorded in the store and the log.
pub const REISSUE_KIND: &str = "reissue";

/// What a reissue did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reissued {
    pub account: String,
    pub action_id: String,
    /// The staged message.
    pub file: PathBuf,
    /// A new reset link was issued (the older live one revoked).
    pub reset: bool,
    /// Done reissue actions whose log entries a killed run had not written.
    pub recovered_log_entries: usize,
}

fn refused(account: &str, reason: impl Into<String>) -> Error {
    Error::NotReissuable {
        account: account.to_string(),
        reason: reason.into(),
    }
}

/// Reissues the notification of `account` under `plan` (which `apply` completed for it),
/// with the apply settings `opts` (outbox, log, sender, templates, gate, token TTL, argon2).
/// The reset page is the one the store pinned for the plan.
pub fn reissue(
    plan: &Plan,
    store: &mut dyn AccountStore,
    account: &str,
    opts: &ApplyOptions<'_>,
) -> Result<Reissued> {
    plan.check_against(store)?;
    let hash = plan.content_hash.as_str();
    lock_store(
        store,
        &LockHolder::this_process("reissue", hash),
        opts.lock_wait,
    )?;
    let done = reissue_locked(plan, store, account, opts);
    let unlocked = store.unlock();
    let r = done?;
    unlocked?;
    Ok(r)
}

fn reissue_locked(
    plan: &Plan,
    store: &mut dyn AccountStore,
    account: &str,
    opts: &ApplyOptions<'_>,
) -> Result<Reissued> {
    let hash = plan.content_hash.as_str();
    let actions: Vec<_> = plan
        .actions
        .iter()
        .filter(|a| a.account == account)
        .collect();
    let Some(first) = actions.first() else {
        return Err(refused(
            account,
            format!("the plan {hash} has no action for this account"),
        ));
    };
    if !actions.iter().any(|a| a.kind == ActionKind::Notify) {
        return Err(refused(
            account,
            "the plan sends this account no notification",
        ));
    }
    let states = store.action_states(hash)?;
    if let Some(by) = states
        .iter()
        .filter(|r| r.account_id == account && r.kind == ActionKind::Notify.as_str())
        .find_map(|r| r.covered_by.as_deref())
    {
        return Err(refused(
            account,
            format!("plan {by} of this incident notified this account: reissue its message from that plan"),
        ));
    }
    let state_of = |id: &str| states.iter().find(|r| r.action_id == id).map(|r| r.state);
    if let Some(a) = actions
        .iter()
        .find(|a| state_of(&a.id) != Some(ActionState::Done))
    {
        return Err(refused(
            account,
            format!(
                "action {} is not done: run `remediate apply` for the plan first",
                a.id
            ),
        ));
    }
    let Some(acct) = store.account(account)? else {
        return Err(refused(account, "the account is not in the store"));
    };
    let reset = actions
        .iter()
        .any(|a| a.kind == ActionKind::ForcePasswordReset);
    let now = chrono::Utc::now().timestamp();
    if reset {
        if let Some(used) = store.tokens(account)?.iter().find_map(|t| t.used_at) {
            // A new token would invalidate the password the user just chose.
            return Err(refused(
                account,
                format!(
                    "the user already chose a new password with the reset link at {}",
                    crate::affected::rfc3339(used)
                ),
            ));
        }
    }
    let base = match store.reset_base(hash)? {
        Some(b) => b,
        None if reset => return Err(refused(
            account,
            "the store has no reset page for this plan: run `remediate apply` again to record it",
        )),
        None => String::new(),
    };

    let prefix = format!("{REISSUE_KIND}:{account}:");
    let ours: Vec<_> = states
        .iter()
        .filter(|r| r.action_id.starts_with(&prefix))
        .collect();
    let head = store.audit_head(hash)?;
    let mut log = AuditLog::open(&opts.log, hash, head.as_ref())?;
    let logged: std::collections::BTreeSet<String> = log.done_actions()?.into_iter().collect();
    let mut recovered = 0;
    for r in ours
        .iter()
        .filter(|r| r.state == ActionState::Done && !logged.contains(&r.action_id))
    {
        let h = log.append(
            REISSUE_KIND,
            &r.action_id,
            account,
            "done-logged-on-resume",
            Some("the previous reissue stopped between the store commit and the log".into()),
        )?;
        store.set_audit_head(hash, &h)?;
        recovered += 1;
    }
    // An unfinished reissue (killed before its commit) is finished, not duplicated.
    let action_id = match ours.iter().find(|r| r.state != ActionState::Done) {
        Some(r) => r.action_id.clone(),
        None => format!("{prefix}{}", ours.len() + 1),
    };
    let ttl = if opts.token_ttl_secs > 0 {
        opts.token_ttl_secs
    } else {
        DEFAULT_TOKEN_TTL_SECS
    };
    let expires_at = now + ttl;
    let token = reset.then(|| issue(&opts.argon2)).transpose()?;
    let notice = Notice {
        to: &acct.email,
        locale: &acct.locale,
        first_exposed: first.first_exposed.as_deref(),
        messages: first.messages,
        audience: first.audience,
        reset: token.as_ref().map(|t| {
            (
                reset_link(&base, &t.selector, t.secret()),
                crate::affected::rfc3339(expires_at),
            )
        }),
        review: actions.iter().any(|a| a.kind == ActionKind::HumanReview),
        account: true,
    };
    let name = Outbox::file_name(hash, account);
    // A new Message-ID: a delivery record keyed by the old one must not swallow this one.
    let number = action_id.rsplit(':').next().unwrap_or("1");
    let message_id = crate::apply::message_id(&name, opts, Some(number));
    let raw = crate::apply::checked_notification(opts, &notice, &message_id, now)
        .map_err(|why| refused(account, why))?;
    // Recorded only once the message passed the gate: a refused reissue leaves no pending
    // action behind (release waits for every action of the plan to be done).
    store.ensure_planned(
        hash,
        &[(action_id.clone(), account.to_string(), REISSUE_KIND.into())],
        now,
    )?;
    let outbox = Outbox::new(&opts.outbox);
    let file = outbox.stage(&name, &raw)?;
    store.commit_account(&AccountCommit {
        plan_hash: hash,
        account_id: account,
        action_ids: vec![action_id.clone()],
        reset: token.as_ref().map(|t| NewToken {
            selector: t.selector.clone(),
            token_hash: t.token_hash.clone(),
            expires_at,
        }),
        review: None,
        outcome: None,
        now,
    })?;
    let h = log.append(REISSUE_KIND, &action_id, account, "done", None)?;
    store.set_audit_head(hash, &h)?;

    // The release gate compares every message with apply-state.json.
    if let Some(mut state) = outbox.read_state()?.filter(|s| s.plan == hash) {
        let entry = StagedMessage::of(name.clone(), &raw, account, acct.email.clone());
        match state.messages.iter_mut().find(|m| m.file == name) {
            Some(m) => *m = entry,
            None => state.messages.push(entry),
        }
        outbox.write_state(&state)?;
    }
    Ok(Reissued {
        account: account.to_string(),
        action_id,
        file,
        reset,
        recovered_log_entries: recovered,
    })
}
