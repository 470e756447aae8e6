//! Release: re-check every staged message against the account store (which messages the
//! plan's done notify actions must have produced, each account's current address, each reset
//! link's selector a live token of that account), through the [`OutboxGate`], and against
//! `apply-state.json`; then move them all to `released/new`, or none. `apply-state.json` sits
//! in the same folder as the messages, so it only names the plan: whoever can edit a message
//! can edit it too.

use super::check::{inspect, OutboxGate};
use super::compose::RESET_LINK;
use super::maildir::{make_maildir, sync_dir, ApplyState, Outbox};
use crate::error::{Error, Result};
use crate::plan::NOTIFY_ONLY;
use crate::policy::ActionKind;
use crate::store::{lock_store, AccountStore, ActionState, LockHolder};
use sha2::Digest;
use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::time::Duration;

/// One message the release gate refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub path: PathBuf,
    pub reasons: Vec<String>,
    pub kind: RefusalKind,
}

/// Why a message was refused: the CLI tells a possible leak apart from a repair to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// It could expose someone, or was not written by apply as the store says (or the plan
    /// is not completely applied).
    Unsafe,
    /// The store says the message exists, but its file is gone (`remediate reissue`).
    Missing,
    /// It carries a `.invalid` placeholder sender or reset page: it can never reach anyone.
    Placeholder,
}

/// A host under the reserved `.invalid` top-level domain (RFC 2606): never deliverable,
/// only ever a placeholder.
pub fn is_placeholder_host(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == "invalid" || h.ends_with(".invalid")
}

/// The reset page every link is made from, checked before anything changes: `https://` only
/// (the token must not cross the network in clear), no user info (`https://shop.example@evil`
/// sends it to evil), no fragment, no spaces; its host ASCII, or internationalised with one
/// script per label (a label mixing scripts, `shоp` with a Cyrillic о, is a look-alike).
pub fn check_reset_base_url(url: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::Setting(format!("reset base URL `{url}`: {why}")));
    let Some(rest) = url.strip_prefix("https://") else {
        return bad("must be an https:// URL (the link carries a password-reset token)");
    };
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("no spaces or control characters");
    }
    if url.contains('#') {
        return bad("no fragment (#...): the token is appended as a query");
    }
    let auth = authority(rest);
    if auth.contains('@') {
        return bad("no user information (user:password@): it can send the link to another host");
    }
    let host = auth.rsplit_once(':').map_or(auth, |(h, port)| {
        if port.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            auth
        }
    });
    if host.is_empty() {
        return bad("no host");
    }
    let (unicode, result) = idna::domain_to_unicode(host);
    if result.is_err() {
        return bad("the host is not a valid domain name");
    }
    if let Some(label) = unicode.split('.').find(|l| mixed_scripts(l)) {
        return bad(&format!(
            "its host label `{label}` mixes scripts (a look-alike of another host)"
        ));
    }
    Ok(())
}

/// Letters of more than one script in one label (Latin, Greek, Cyrillic, Armenian, Hebrew,
/// Arabic, CJK and the rest by Unicode block); digits and `-` belong to none.
fn mixed_scripts(label: &str) -> bool {
    let script = |c: char| -> Option<u32> {
        if !c.is_alphabetic() {
            return None;
        }
        Some(match c as u32 {
            0..=0x024F | 0x1E00..=0x1EFF => 0,      // Latin
            0x0370..=0x03FF | 0x1F00..=0x1FFF => 1, // Greek
            0x0400..=0x052F => 2,                   // Cyrillic
            0x0530..=0x058F => 3,                   // Armenian
            0x0590..=0x05FF => 4,                   // Hebrew
            0x0600..=0x06FF => 5,                   // Arabic
            0x3040..=0x30FF | 0x4E00..=0x9FFF => 6, // Japanese and Han
            0xAC00..=0xD7AF => 7,                   // Hangul
            n => 0x100 + (n >> 7),                  // any other block: its own
        })
    };
    let mut seen = None;
    for s in label.chars().filter_map(script) {
        match seen {
            None => seen = Some(s),
            Some(x) if x != s => return true,
            _ => {}
        }
    }
    false
}

/// The host of an `http(s)://` URL (no user info, port, path or query).
pub fn url_host(url: &str) -> Option<&str> {
    Some(host_of(authority(url.split_once("://")?.1)))
}

/// The authority (`user@host:port`) of what follows a URL's `scheme://`.
pub(crate) fn authority(after_scheme: &str) -> &str {
    after_scheme.split(['/', '?', '#']).next().unwrap_or("")
}

/// The host of an authority: no user information, no port.
pub(crate) fn host_of(authority: &str) -> &str {
    let host = authority.rsplit('@').next().unwrap_or(authority);
    host.split(':').next().unwrap_or(host)
}

/// Placeholder sender or link host in a message, one reason each: `.invalid` is reserved
/// (RFC 2606), the built-in placeholder of an apply run without `--from` /
/// `--reset-base-url`, which no user can answer or open. Every From address, the plan's pinned
/// reset page and every link of the body are looked at. Release and send both ask this.
pub(super) fn placeholder_reasons(
    raw: &[u8],
    account: &str,
    reset_base: Option<&str>,
) -> Vec<String> {
    let mut why = Vec::new();
    if let Ok((headers, _)) = mailparse::parse_headers(raw) {
        for h in headers
            .iter()
            .filter(|h| h.get_key().eq_ignore_ascii_case("From"))
        {
            let Ok(list) = mailparse::addrparse_header(h) else {
                continue;
            };
            let addrs = list.iter().flat_map(|a| match a {
                mailparse::MailAddr::Single(s) => vec![s.addr.clone()],
                mailparse::MailAddr::Group(g) => g.addrs.iter().map(|s| s.addr.clone()).collect(),
            });
            for addr in addrs {
                let domain = addr.rsplit('@').next().unwrap_or("");
                if is_placeholder_host(domain) {
                    why.push(format!(
                        "placeholder sender {addr}: apply ran without --from; stage it again with `leakaudit remediate reissue --account {account} --from MAILBOX` (or `from` under [notifications] in leakaudit.toml)"
                    ));
                }
            }
        }
    }
    let mut hosts: Vec<String> = reset_base
        .and_then(url_host)
        .map(str::to_string)
        .into_iter()
        .collect();
    if let Ok(msg) = inspect(raw) {
        hosts.extend(
            URL.find_iter(&msg.body)
                .filter_map(|m| url_host(m.as_str()).map(str::to_string)),
        );
    }
    let mut hosts: Vec<String> = hosts
        .into_iter()
        .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
        .collect();
    hosts.sort();
    hosts.dedup();
    for h in hosts.iter().filter(|h| is_placeholder_host(h)) {
        why.push(format!(
            "link to the placeholder host {h}: apply ran without --reset-base-url, the link cannot work; make and apply a new plan with --reset-base-url URL (or `reset_base_url` under [notifications] in leakaudit.toml)"
        ));
    }
    why
}

/// Any http(s) link in a message body.
static URL: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r#"(?i)\bhttps?://[^\s<>"']+"#).expect("constant regex")
});

/// What `release` did or would not do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseOutcome {
    /// `count` messages moved to `dir`; `failed` names the accounts (and notices) whose
    /// actions failed in apply: nothing of theirs is released (a message apply staged
    /// before the failure stays in `staged`), and the next apply retries them.
    Released {
        count: usize,
        dir: PathBuf,
        failed: Vec<String>,
    },
    Refused(Vec<Refusal>),
}

/// Checks every staged message and, only if all pass, moves them to `released/new`; a failed
/// account's message stays staged and is named in the outcome.
/// Refuses when an action of the plan is not yet done or failed in the store, when a message
/// is not one the plan's done notify actions and notices produced, is missing or changed since apply wrote it, is not
/// addressed to its account's current address, carries a reset link that is not a live token
/// of that account, or fails the `gate` (built from the configured policy engine, the same
/// one `apply` checked the messages with). Holds the store's remediation lock meanwhile, so
/// it never runs beside an apply.
pub fn release(
    outbox: &Outbox,
    store: &mut dyn AccountStore,
    gate: &OutboxGate<'_>,
) -> Result<ReleaseOutcome> {
    outbox.prepare()?;
    let state = outbox.read_state()?;
    let plan = state.as_ref().map_or("(none applied)", |s| s.plan.as_str());
    lock_store(
        store,
        &LockHolder::this_process("release", plan),
        Duration::ZERO,
    )?;
    let outcome = match state.filter(|s| s.complete) {
        Some(state) => release_locked(outbox, store, gate, &state),
        None => Ok(ReleaseOutcome::Refused(vec![Refusal {
            path: outbox.state_path(),
            reasons: vec![
                "the plan is not completely applied: run `remediate apply` to the end first".into(),
            ],
            kind: RefusalKind::Unsafe,
        }])),
    };
    let unlocked = store.unlock();
    let outcome = outcome?;
    unlocked?;
    Ok(outcome)
}

/// What the store says one message must be: for which account, and whether it carries a
/// reset link.
pub(super) struct Expected {
    /// The account id, or the notice's id (`notify-only:<n>`).
    pub(super) account: String,
    pub(super) reset: bool,
    /// A notify-only notice: the key its recipient's address must have
    /// ([`crate::plan::notice_key`]).
    pub(super) notice_key: Option<String>,
}

/// The messages the store's done actions of `plan` must have produced, by file name: one per
/// notify action (to the account) and one per notify-only notice (to its address). Release
/// and send both check against this.
pub(super) fn expected_messages(
    plan: &str,
    actions: &[crate::store::ActionRow],
) -> BTreeMap<String, Expected> {
    let mut expected = BTreeMap::new();
    // What an earlier plan of the incident did has its message in that plan's outbox.
    let own = || actions.iter().filter(|a| a.covered_by.is_none());
    for a in own() {
        if a.kind == ActionKind::Notify.as_str() {
            let reset = own().any(|r| {
                r.account_id == a.account_id && r.kind == ActionKind::ForcePasswordReset.as_str()
            });
            expected.insert(
                Outbox::file_name(plan, &a.account_id),
                Expected {
                    account: a.account_id.clone(),
                    reset,
                    notice_key: None,
                },
            );
        } else if a.kind == NOTIFY_ONLY {
            expected.insert(
                Outbox::notice_file_name(plan, &a.action_id),
                Expected {
                    account: a.action_id.clone(),
                    reset: false,
                    notice_key: Some(a.account_id.clone()),
                },
            );
        }
    }
    expected
}

/// The address a message must go to: its account's current address, or, for a notice, the
/// one address of its To field when that is the notice's (by its key). `Ok(Err(why))` when
/// there is none.
pub(super) fn recipient(
    store: &dyn AccountStore,
    plan: &str,
    exp: &Expected,
    raw: &[u8],
) -> Result<std::result::Result<String, String>> {
    let Some(key) = &exp.notice_key else {
        return Ok(match store.account(&exp.account)? {
            Some(acct) => Ok(acct.email),
            None => Err(format!("account {} is no longer in the store", exp.account)),
        });
    };
    let to = inspect(raw).map(|m| m.to).unwrap_or_default();
    Ok(match to.as_slice() {
        [one] if crate::plan::notice_key(plan, one) == *key => Ok(one.clone()),
        _ => Err(format!(
            "notice {} is not addressed to the one address it was made for",
            exp.account
        )),
    })
}

fn release_locked(
    outbox: &Outbox,
    store: &dyn AccountStore,
    gate: &OutboxGate<'_>,
    state: &ApplyState,
) -> Result<ReleaseOutcome> {
    let mut refusals = Vec::new();
    let plan = state.plan.as_str();
    let all = store.action_states(plan)?;
    if let Some(r) = unfinished(
        outbox,
        plan,
        &all,
        "run `remediate apply` to the end against this store first",
    ) {
        refusals.push(r);
        return Ok(ReleaseOutcome::Refused(refusals));
    }
    let (actions, held) = done_and_held(plan, all);
    let reset_base = store.reset_base(plan)?;
    let expected = expected_messages(plan, &actions);
    let new_dir = outbox.staged().join("new");
    // A link is never followed (it could point at a file of someone else's choosing): it
    // is refused like any file apply did not write.
    let mut files: Vec<PathBuf> = match fs::read_dir(&new_dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file() || t.is_symlink()))
            // A failed account's message (staged before its failure) stays where it is.
            .filter(|e| {
                !held
                    .files
                    .contains(&e.file_name().to_string_lossy().to_string())
            })
            .map(|e| e.path())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::io(&new_dir, e)),
    };
    files.sort();
    let now = chrono::Utc::now().timestamp();
    for f in &files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        if fs::symlink_metadata(f).is_ok_and(|m| m.file_type().is_symlink()) {
            refusals.push(Refusal {
                path: f.clone(),
                reasons: vec!["is a symbolic link, not a message apply wrote".into()],
                kind: RefusalKind::Unsafe,
            });
            continue;
        }
        let bytes = fs::read(f).map_err(|e| Error::io(f, e))?;
        let mut reasons = Vec::new();
        let Some(exp) = expected.get(&name) else {
            reasons.push(format!(
                "not written by apply (unknown file: no notify action of plan {plan} has this name)"
            ));
            reasons.extend(gate.check(&bytes, None));
            refusals.push(Refusal {
                path: f.clone(),
                reasons,
                kind: RefusalKind::Unsafe,
            });
            continue;
        };
        let (more, _) = recheck(
            store,
            gate,
            state,
            &name,
            exp,
            &bytes,
            reset_base.as_deref(),
            now,
        )?;
        reasons.extend(more);
        if !reasons.is_empty() {
            refusals.push(Refusal {
                path: f.clone(),
                reasons,
                kind: RefusalKind::Unsafe,
            });
        } else {
            let why = placeholder_reasons(&bytes, &exp.account, reset_base.as_deref());
            if !why.is_empty() {
                refusals.push(Refusal {
                    path: f.clone(),
                    reasons: why,
                    kind: RefusalKind::Placeholder,
                });
            }
        }
    }
    for (name, exp) in &expected {
        let staged = new_dir.join(name);
        let released = outbox.released().join("new").join(name);
        if !staged.exists() && !released.exists() {
            let reason = if exp.notice_key.is_some() {
                format!(
                    "notice {} (to an exposed address without an account) is missing from the outbox (deleted after apply?): run `remediate apply` again, which stages a missing notice anew",
                    exp.account
                )
            } else {
                format!(
                    "the notification of account {} is missing from the outbox (deleted after apply?): stage a new one with `leakaudit remediate reissue --account {}`",
                    exp.account, exp.account
                )
            };
            refusals.push(Refusal {
                path: staged,
                reasons: vec![reason],
                kind: RefusalKind::Missing,
            });
        }
    }
    if !refusals.is_empty() {
        return Ok(ReleaseOutcome::Refused(refusals));
    }
    let rel = outbox.released();
    make_maildir(&rel)?;
    for f in &files {
        let dst = rel
            .join("new")
            .join(f.file_name().expect("listed files have names"));
        fs::rename(f, &dst).map_err(|e| Error::io(&dst, e))?;
    }
    sync_dir(&rel.join("new"))?;
    sync_dir(&new_dir)?;
    Ok(ReleaseOutcome::Released {
        count: files.len(),
        dir: rel.join("new"),
        failed: held.ids,
    })
}

/// What release and send check of one message apply wrote (`name`, expected as `exp`):
/// recorded in `apply-state.json` and unchanged since, addressed to its account's current
/// address (or the notice's one address), passing the gate against that recipient, its reset
/// link the account's own live token on the plan's page. The reasons it fails, and its
/// recipient when there is one.
#[allow(clippy::too_many_arguments)]
pub(super) fn recheck(
    store: &dyn AccountStore,
    gate: &OutboxGate<'_>,
    state: &ApplyState,
    name: &str,
    exp: &Expected,
    bytes: &[u8],
    reset_base: Option<&str>,
    now: i64,
) -> Result<(Vec<String>, Option<String>)> {
    let mut reasons = Vec::new();
    match state.messages.iter().find(|m| m.file == name) {
        None => reasons.push("not recorded in apply-state.json".to_string()),
        Some(m) if hex::encode(sha2::Sha256::digest(bytes)) != m.sha256 => {
            reasons.push("changed since apply wrote it".to_string())
        }
        Some(_) => {}
    }
    let to = match recipient(store, &state.plan, exp, bytes)? {
        Err(why) => {
            reasons.push(why);
            None
        }
        Ok(to) => {
            reasons.extend(gate.check(bytes, Some(&to)));
            Some(to)
        }
    };
    reasons.extend(link_reasons(store, bytes, exp, reset_base, now)?);
    Ok((reasons, to))
}

/// Release and send start here: no action of `plan` may still be planned (apply has not run to
/// the end), and a plan the store never saw has nothing to release. `next` says what to do.
pub(super) fn unfinished(
    outbox: &Outbox,
    plan: &str,
    all: &[crate::store::ActionRow],
    next: &str,
) -> Option<Refusal> {
    let pending = all
        .iter()
        .filter(|a| a.state == ActionState::Planned)
        .count();
    (all.is_empty() || pending > 0).then(|| Refusal {
        path: outbox.state_path(),
        reasons: vec![format!(
            "the store has {pending} of {} actions of plan {plan} not yet applied: {next}",
            all.len()
        )],
        kind: RefusalKind::Unsafe,
    })
}

/// What apply could not do for some accounts: their ids and the file names their messages
/// would have.
pub(super) struct Held {
    pub(super) ids: Vec<String>,
    pub(super) files: std::collections::BTreeSet<String>,
}

/// The done actions, and the accounts (and notices) with a failed action: nothing of theirs
/// goes out.
pub(super) fn done_and_held(
    plan: &str,
    all: Vec<crate::store::ActionRow>,
) -> (Vec<crate::store::ActionRow>, Held) {
    // (is a notice, account id or notice id): all of an account's actions move together.
    let key = |a: &crate::store::ActionRow| {
        if a.kind == NOTIFY_ONLY {
            (true, a.action_id.clone())
        } else {
            (false, a.account_id.clone())
        }
    };
    let failed: std::collections::BTreeSet<(bool, String)> = all
        .iter()
        .filter(|a| a.state == ActionState::Failed)
        .map(key)
        .collect();
    let files = failed
        .iter()
        .map(|(notice, id)| {
            if *notice {
                Outbox::notice_file_name(plan, id)
            } else {
                Outbox::file_name(plan, id)
            }
        })
        .collect();
    let done = all
        .into_iter()
        .filter(|a| !failed.contains(&key(a)))
        .collect();
    let ids = failed.into_iter().map(|(_, id)| id).collect();
    (done, Held { ids, files })
}

/// The reset link of a message must be the account's own live token on the plan's reset
/// page: every `selector=` in the decoded body names a live token of the account, and a reset
/// message has its link, which starts with the reset base URL the store recorded for the plan.
pub(super) fn link_reasons(
    store: &dyn AccountStore,
    raw: &[u8],
    exp: &Expected,
    reset_base: Option<&str>,
    now: i64,
) -> Result<Vec<String>> {
    let Ok(msg) = inspect(raw) else {
        // The gate already reports an unparseable message.
        return Ok(Vec::new());
    };
    let mut why = Vec::new();
    let links = RESET_LINK.find_iter(&msg.body).count();
    if exp.reset && links == 0 {
        why.push("the reset link is missing".to_string());
    }
    if !exp.reset && links > 0 {
        why.push(format!(
            "a reset link, but the plan resets no password of account {}",
            exp.account
        ));
    }
    for link in RESET_LINK.find_iter(&msg.body).map(|m| m.as_str()) {
        let on_base = reset_base.is_some_and(|base| {
            link.strip_prefix(base).is_some_and(|rest| {
                rest.starts_with("?selector=") || rest.starts_with("&selector=")
            })
        });
        if !on_base {
            why.push(match reset_base {
                Some(base) => format!("the reset link does not go to the plan's reset page {base}"),
                None => "the store has no reset base URL for this plan (applied by an older leakaudit): run `remediate apply` again to record it".to_string(),
            });
        }
    }
    for (i, _) in msg.body.match_indices("selector=") {
        let sel: String = msg.body[i + "selector=".len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .take(64)
            .collect();
        let live = store
            .token_by_selector(&sel)?
            .is_some_and(|t| t.account_id == exp.account && t.is_live(now));
        if !live {
            why.push(format!(
                "reset link selector {sel} is not a live reset token of account {}",
                exp.account
            ));
        }
    }
    Ok(why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_base_must_be_an_https_url_on_a_plain_host() {
        assert!(check_reset_base_url("https://shop.example/account/reset").is_ok());
        assert!(check_reset_base_url("https://shop.example:8443/r?lang=de").is_ok());
        assert!(
            check_reset_base_url("https://bücher.example/reset").is_ok(),
            "one script"
        );
        assert!(check_reset_base_url("https://xn--bcher-kva.example/reset").is_ok());
        for (bad, why) in [
            ("", "https"),
            ("https://", "host"),
            ("shop.example/reset", "https"),
            ("http://shop.example/reset", "https"),
            ("https://shop.example/a b", "spaces"),
            ("https://user:pw@shop.example/reset", "user"),
            ("https://shop.example@evil.example/reset", "user"),
            ("https://shop.example/reset#x", "fragment"),
            // Cyrillic а and о among Latin letters: a look-alike of shop.example.
            ("https://sh\u{43e}p.ex\u{430}mple/reset", "mixes scripts"),
            // Punycode of `shpе` (a Cyrillic е).
            ("https://xn--shp-tdd.example/reset", "mixes scripts"),
        ] {
            match check_reset_base_url(bad) {
                Err(Error::Setting(m)) => assert!(m.contains(why), "{bad}: {m}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
    use crate::outbox::check::tests::configured;
    use crate::outbox::compose::tests::notice;
    use crate::outbox::{build_message, ApplyState, Sender, StagedMessage};
    use crate::store::{AccountCommit, AccountRecord, NewToken, SqliteStore};
    use leakaudit_policy::{Engine, RulePack};
    use leakaudit_scanner::Org;

    const TO: &str = "anna@gmail.com";

    fn builtin() -> Engine {
        Engine::new(
            RulePack::builtin(),
            Org::with_defaults(),
            &Default::default(),
        )
    }

    fn notification() -> String {
        let sender = Sender::new("Security <security@shop.example>").unwrap();
        let raw = build_message(
            &notice(TO, "en", true),
            &sender,
            "m@shop.example",
            "Sat, 28 Nov 2026 10:00:00 +0000",
        );
        String::from_utf8(raw).unwrap()
    }

    const PLAN: &str = "sha256:00aa";

    /// A store where plan [`PLAN`] reset and notified acc-1 (anna@gmail.com) with the token
    /// of the test link, and an outbox holding `raw` as that notification, recorded in
    /// apply-state.json with its own hash: only the gate and the store checks stand between
    /// it and release.
    fn outbox_with(raw: &[u8]) -> (tempfile::TempDir, Outbox, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(&dir.path().join("accounts.db")).unwrap();
        store
            .import(&[AccountRecord {
                id: "acc-1".into(),
                email: TO.into(),
                has_2fa: false,
                balance: 0.0,
                locale: "en".into(),
                failed_logins: None,
                failed_logins_since: None,
            }])
            .unwrap();
        let ids = ["notify:acc-1", "force-password-reset:acc-1"];
        let planned: Vec<(String, String, String)> = ids
            .iter()
            .map(|id| {
                let kind = id.split(':').next().unwrap();
                (id.to_string(), "acc-1".into(), kind.into())
            })
            .collect();
        store.ensure_planned(PLAN, &planned, 1).unwrap();
        store
            .pin_reset_base(PLAN, "https://example.com/reset")
            .unwrap();
        let now = chrono::Utc::now().timestamp();
        store
            .commit_account(&AccountCommit {
                plan_hash: PLAN,
                account_id: "acc-1",
                action_ids: ids.iter().map(|s| s.to_string()).collect(),
                reset: Some(NewToken {
                    selector: "ab".repeat(16),
                    token_hash: "$argon2id$h".into(),
                    expires_at: now + 3600,
                }),
                review: None,
                outcome: None,
                now,
            })
            .unwrap();
        let outbox = Outbox::new(&dir.path().join("outbox"));
        let name = Outbox::file_name(PLAN, "acc-1");
        outbox.stage(&name, raw).unwrap();
        outbox
            .write_state(&ApplyState {
                plan: PLAN.into(),
                complete: true,
                messages: vec![StagedMessage {
                    file: name,
                    sha256: hex::encode(sha2::Sha256::digest(raw)),
                    account: "acc-1".into(),
                    to: TO.into(),
                }],
                failed: Vec::new(),
            })
            .unwrap();
        (dir, outbox, store)
    }

    fn refused(outcome: ReleaseOutcome) -> Vec<String> {
        match outcome {
            ReleaseOutcome::Refused(list) => list.into_iter().flat_map(|r| r.reasons).collect(),
            other => panic!("released: {other:?}"),
        }
    }

    #[test]
    fn untouched_notification_is_released() {
        let engine = builtin();
        let (_dir, outbox, mut store) = outbox_with(notification().as_bytes());
        match release(&outbox, &mut store, &OutboxGate::new(&engine)).unwrap() {
            ReleaseOutcome::Released { count, dir, .. } => {
                assert_eq!(count, 1);
                assert_eq!(fs::read_dir(dir).unwrap().count(), 1);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            fs::read_dir(outbox.staged().join("new")).unwrap().count(),
            0
        );
    }

    /// Issue 12: 950 mails from security@example.invalid were released.
    #[test]
    fn placeholder_sender_is_refused_per_message() {
        let engine = builtin();
        // As apply writes it with that sender: the Message-ID on the sender's domain too.
        let raw = notification()
            .replace(
                "From: Security <security@shop.example>",
                "From: Security Team <security@example.invalid>",
            )
            .replace("<m@shop.example>", "<m@example.invalid>");
        let (_dir, outbox, mut store) = outbox_with(raw.as_bytes());
        match release(&outbox, &mut store, &OutboxGate::new(&engine)).unwrap() {
            ReleaseOutcome::Refused(list) => {
                assert_eq!(list.len(), 1, "{list:?}");
                assert_eq!(list[0].kind, RefusalKind::Placeholder);
                assert!(
                    list[0].reasons[0].contains("placeholder sender security@example.invalid"),
                    "{list:?}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(is_placeholder_host("Example.INVALID."));
        assert!(!is_placeholder_host("invalid.example"));
        assert_eq!(
            url_host("https://u:p@x.invalid:8443/r?a"),
            Some("x.invalid")
        );
    }

    #[test]
    fn missing_message_is_reported_as_missing_not_as_a_leak() {
        let engine = builtin();
        let (_dir, outbox, mut store) = outbox_with(notification().as_bytes());
        for f in fs::read_dir(outbox.staged().join("new")).unwrap() {
            fs::remove_file(f.unwrap().path()).unwrap();
        }
        match release(&outbox, &mut store, &OutboxGate::new(&engine)).unwrap() {
            ReleaseOutcome::Refused(list) => {
                assert_eq!(list.len(), 1, "{list:?}");
                assert_eq!(list[0].kind, RefusalKind::Missing);
                assert!(
                    list[0].reasons[0].contains("account acc-1 is missing"),
                    "{list:?}"
                );
                assert!(list[0].reasons[0].contains("remediate reissue --account acc-1"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn second_external_recipient_refused_by_the_configured_engine() {
        let engine = builtin();
        let doctored = notification().replace(
            "To: <anna@gmail.com>",
            "To: <anna@gmail.com>, <bob@yahoo.com>",
        );
        let (_dir, outbox, mut store) = outbox_with(doctored.as_bytes());
        let why = refused(release(&outbox, &mut store, &OutboxGate::new(&engine)).unwrap());
        for rule in ["recipient-exposure", "password-reset-link"] {
            assert!(
                why.iter()
                    .any(|w| w.starts_with(&format!("policy rule {rule} fires"))),
                "{rule}: {why:?}"
            );
        }
        assert_eq!(
            fs::read_dir(outbox.released().join("new"))
                .ok()
                .map(|d| d.count()),
            None
        );
    }

    #[test]
    fn pasted_secret_refused_by_the_configured_engine() {
        let engine = builtin();
        let doctored = plain_body(&format!(
            "{}\naws_access_key_id = AKIA0000EXAMPLE00000\n",
            crate::outbox::compose::tests::link()
        ));
        let (_dir, outbox, mut store) = outbox_with(&doctored);
        let why = refused(release(&outbox, &mut store, &OutboxGate::new(&engine)).unwrap());
        assert!(
            why.iter()
                .any(|w| w.starts_with("policy rule aws-access-key fires")),
            "{why:?}"
        );
    }

    /// The notification's header with a plain-text body instead of the base64 one.
    fn plain_body(body: &str) -> Vec<u8> {
        let text = notification();
        let (head, _) = text.split_once("\n\n").unwrap();
        let head = head.replace(
            "Content-Transfer-Encoding: base64",
            "Content-Transfer-Encoding: 8bit",
        );
        format!("{head}\n\n{body}").into_bytes()
    }

    #[test]
    fn user_rule_refuses_what_the_builtin_pack_lets_through() {
        let doctored = plain_body(&format!(
            "{}\nYour case number is TICKET-004711.\n",
            crate::outbox::compose::tests::link()
        ));
        let builtin = builtin();
        let (_dir, outbox, mut store) = outbox_with(&doctored);
        assert!(matches!(
            release(&outbox, &mut store, &OutboxGate::new(&builtin)).unwrap(),
            ReleaseOutcome::Released { count: 1, .. }
        ));
        let user = configured(
            r#"
[[rule]]
id = "internal-ticket"
kind = "content-regex"
severity = "medium"
summary = "An internal ticket reference"
description = "What: TICKET- and six digits."
hint = "Keep ticket numbers internal."
keywords = ["TICKET-"]
regex = 'TICKET-[0-9]{6}'
"#,
        );
        let (_dir, outbox, mut store) = outbox_with(&doctored);
        let why = refused(release(&outbox, &mut store, &OutboxGate::new(&user)).unwrap());
        assert!(
            why.iter()
                .any(|w| w.starts_with("policy rule internal-ticket fires")),
            "{why:?}"
        );
    }

    #[test]
    fn incomplete_apply_and_unknown_or_changed_files_refused() {
        let engine = builtin();
        let gate = OutboxGate::new(&engine);
        let raw = notification();
        let (_dir, outbox, mut store) = outbox_with(raw.as_bytes());
        let name = Outbox::file_name(PLAN, "acc-1");
        outbox.stage("stray.leakaudit", raw.as_bytes()).unwrap();
        outbox
            .stage(&name, raw.replace("Sat, 28 Nov", "Sun, 29 Nov").as_bytes())
            .unwrap();
        let why = refused(release(&outbox, &mut store, &gate).unwrap());
        assert!(
            why.iter()
                .any(|w| w.starts_with("not written by apply (unknown file")),
            "{why:?}"
        );
        assert!(
            why.iter().any(|w| w == "changed since apply wrote it"),
            "{why:?}"
        );
        let mut state = outbox.read_state().unwrap().unwrap();
        state.complete = false;
        outbox.write_state(&state).unwrap();
        let why = refused(release(&outbox, &mut store, &gate).unwrap());
        assert!(
            why[0].starts_with("the plan is not completely applied"),
            "{why:?}"
        );
    }

    /// Rewrites the one staged message and its apply-state.json record (hash and `to`), as
    /// anyone who can write the outbox folder can.
    fn doctor(outbox: &Outbox, raw: &[u8]) {
        let name = Outbox::file_name(PLAN, "acc-1");
        outbox.stage(&name, raw).unwrap();
        let mut state = outbox.read_state().unwrap().unwrap();
        state.messages[0].sha256 = hex::encode(sha2::Sha256::digest(raw));
        state.messages[0].to = "mallory@evil.example".into();
        outbox.write_state(&state).unwrap();
    }

    #[test]
    fn release_trusted_apply_state_regression() {
        let engine = builtin();
        let gate = OutboxGate::new(&engine);
        let (_dir, outbox, mut store) = outbox_with(notification().as_bytes());
        // Redirected to another address, state updated to match: the store's address wins.
        doctor(
            &outbox,
            notification()
                .replace("To: <anna@gmail.com>", "To: <mallory@evil.example>")
                .as_bytes(),
        );
        let why = refused(release(&outbox, &mut store, &gate).unwrap());
        assert!(
            why.iter()
                .any(|w| w == "To is not the account's own address"),
            "{why:?}"
        );
        // A link whose selector is no live token of the account (made up, then revoked).
        let other = plain_body(&crate::outbox::compose::reset_link(
            "https://example.com/reset",
            &"ef".repeat(16),
            &"cd".repeat(32),
        ));
        doctor(&outbox, &other);
        let why = refused(release(&outbox, &mut store, &gate).unwrap());
        assert!(
            why.iter().any(|w| w
                == &format!(
                    "reset link selector {} is not a live reset token of account acc-1",
                    "ef".repeat(16)
                )),
            "{why:?}"
        );
        // The account's own live token, on another host.
        doctor(
            &outbox,
            &plain_body(&crate::outbox::compose::reset_link(
                "https://example.com.evil.example/reset",
                &"ab".repeat(16),
                &"cd".repeat(32),
            )),
        );
        let why = refused(release(&outbox, &mut store, &gate).unwrap());
        assert!(
            why.iter().any(|w| w
                == "the reset link does not go to the plan's reset page https://example.com/reset"),
            "{why:?}"
        );
        doctor(&outbox, notification().as_bytes());
        let now = chrono::Utc::now().timestamp();
        store
            .commit_account(&AccountCommit {
                plan_hash: PLAN,
                account_id: "acc-1",
                action_ids: vec![],
                reset: Some(NewToken {
                    selector: "ee".repeat(16),
                    token_hash: "$argon2id$h".into(),
                    expires_at: now + 3600,
                }),
                review: None,
                outcome: None,
                now,
            })
            .unwrap();
        let why = refused(release(&outbox, &mut store, &gate).unwrap());
        assert!(
            why.iter()
                .any(|w| w.contains("is not a live reset token of account acc-1")),
            "revoked: {why:?}"
        );
        // A state naming a plan the store never applied.
        let mut state = outbox.read_state().unwrap().unwrap();
        state.plan = "sha256:ffff".into();
        outbox.write_state(&state).unwrap();
        let why = refused(release(&outbox, &mut store, &gate).unwrap());
        assert!(
            why[0].starts_with("the store has 0 of 0 actions"),
            "{why:?}"
        );
    }
}
