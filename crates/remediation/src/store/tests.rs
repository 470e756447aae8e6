//! The store test suite, generic over [`AccountStore`]: a new backend runs `suite` with its
//! own constructor and must pass unchanged.

use super::*;
use crate::matching::{fold, MatchMode};
use std::path::Path;

fn rec(id: &str, email: &str, has_2fa: bool, balance: f64) -> AccountRecord {
    AccountRecord {
        id: id.into(),
        email: email.into(),
        has_2fa,
        balance,
        locale: "en".into(),
        failed_logins: None,
        failed_logins_since: None,
    }
}

/// Runs every store check on a fresh store made by `make`; `reopen` opens a second handle
/// on the store of the first (another process's view, for the lock).
pub(crate) fn suite_with_lock<S: AccountStore + Send>(
    make: &dyn Fn() -> S,
    reopen: &dyn Fn(&S) -> S,
) {
    suite(make);
    let mut a = make();
    let mut b = reopen(&a);
    remediation_lock(&mut a, &mut b);
    let mut a = make();
    let mut b = reopen(&a);
    second_commit_of_done_actions_changes_nothing(&mut a, &mut b);
    concurrent_commits_reset_once(&mut a, &mut b);
    concurrent_claims_claim_once(&mut a, &mut b);
}

/// Runs every store check on a fresh store made by `make`.
pub(crate) fn suite<S: AccountStore>(make: &dyn Fn() -> S) {
    import_and_lookup(&mut make());
    folding(&mut make());
    find_many_answers_each_key_in_order(&mut make());
    identity(&make(), &make());
    reset_commit_is_complete(&mut make());
    action_states(&mut make());
    tokens_single_use(&mut make());
    audit_heads(&mut make());
    reset_base_is_pinned(&mut make());
    deliveries_are_claimed_once(&mut make());
    covered_actions_are_recorded_with_their_incident(&mut make());
}

/// A re-plan's rows: its incident, planned rows and covered ones (done, naming the plan that
/// did them) in one call; a second call changes nothing (a resumed apply).
fn covered_actions_are_recorded_with_their_incident<S: AccountStore>(s: &mut S) {
    let row = |id: &str, kind: &str, by: Option<&str>| PlannedRow {
        id: id.into(),
        account: "a1".into(),
        kind: kind.into(),
        covered_by: by.map(Into::into),
    };
    s.ensure_planned("p1", &[("n1".into(), "a1".into(), "notify".into())], 1)
        .unwrap();
    assert_eq!(s.plan_incident("p1").unwrap(), None, "a first plan");
    let rows = [
        row("r2", "force-password-reset", None),
        row("n2", "notify", Some("p1")),
    ];
    s.ensure_planned_in("p2", Some("p1"), &rows, 2).unwrap();
    s.ensure_planned_in("p2", Some("other"), &rows[..1], 3)
        .unwrap();
    assert_eq!(s.plan_incident("p2").unwrap().as_deref(), Some("p1"));
    let got: Vec<(String, ActionState, Option<String>)> = s
        .action_states("p2")
        .unwrap()
        .into_iter()
        .map(|r| (r.action_id, r.state, r.covered_by))
        .collect();
    assert_eq!(
        got,
        [
            ("n2".to_string(), ActionState::Done, Some("p1".to_string())),
            ("r2".to_string(), ActionState::Planned, None),
        ]
    );
    assert_eq!(s.action_states("p1").unwrap()[0].covered_by, None);
}

fn import_and_lookup<S: AccountStore>(s: &mut S) {
    let st = s
        .import(&[
            rec("a1", "anna@gmail.com", false, 5.0),
            rec("b2", "bob@shop.example", true, 0.0),
        ])
        .unwrap();
    assert_eq!(
        st,
        ImportStats {
            inserted: 2,
            updated: 0
        }
    );
    assert_eq!(s.account_count().unwrap(), 2);
    let st = s.import(&[rec("a1", "anna@gmail.com", true, 7.5)]).unwrap();
    assert_eq!(
        st,
        ImportStats {
            inserted: 0,
            updated: 1
        }
    );
    let a = s.account("a1").unwrap().unwrap();
    assert!(a.has_2fa);
    assert_eq!(a.balance, 7.5);
    assert!(s.account("zz").unwrap().is_none());
    let f = s
        .find_by_email("bob@shop.example", MatchMode::Canonical)
        .unwrap();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].id, "b2");
    // One id twice in one import: inserted, then updated, the later row wins.
    let st = s
        .import(&[
            rec("dup", "dup@x.example", false, 1.0),
            rec("dup", "dup@x.example", false, 2.0),
        ])
        .unwrap();
    assert_eq!((st.inserted, st.updated), (1, 1));
    assert_eq!(s.account("dup").unwrap().unwrap().balance, 2.0);
    // More rows than one batch of a backend that batches; optional fields kept.
    let many: Vec<AccountRecord> = (0..2500)
        .map(|i| AccountRecord {
            failed_logins: (i % 2 == 0).then_some(i),
            failed_logins_since: (i % 2 == 0).then(|| "2026-01-01".to_string()),
            ..rec(
                &format!("m{i}"),
                &format!("m{i}@x.example"),
                i % 3 == 0,
                0.5,
            )
        })
        .collect();
    let st = s.import(&many).unwrap();
    assert_eq!((st.inserted, st.updated), (2500, 0));
    assert_eq!(s.account_count().unwrap(), 2503);
    let m = s.account("m1998").unwrap().unwrap();
    assert_eq!(
        (m.failed_logins, m.failed_logins_since.as_deref(), m.has_2fa),
        (Some(1998), Some("2026-01-01"), true)
    );
    assert_eq!(s.account("m1999").unwrap().unwrap().failed_logins, None);
}

fn folding<S: AccountStore>(s: &mut S) {
    s.import(&[rec("g", "j.doe+news@googlemail.com", false, 1.0)])
        .unwrap();
    assert!(s
        .find_by_email("jdoe@gmail.com", MatchMode::Canonical)
        .unwrap()
        .is_empty());
    let f = s
        .find_by_email(&fold("j.d.o.e@gmail.com"), MatchMode::ProviderFolding)
        .unwrap();
    assert_eq!(f.len(), 1, "folding is opt-in and finds the account");
}

fn find_many_answers_each_key_in_order<S: AccountStore>(s: &mut S) {
    // Two accounts share an address; one key is missing; one is asked twice.
    s.import(&[
        rec("b2", "bob@shop.example", false, 1.0),
        rec("b1", "bob@shop.example", true, 0.0),
        rec("k", "kim@gmail.com", false, 2.0),
        rec("g", "j.doe+news@googlemail.com", false, 1.0),
    ])
    .unwrap();
    let keys = [
        "kim@gmail.com",
        "nobody@x.example",
        "bob@shop.example",
        "kim@gmail.com",
    ];
    let ids = |found: Vec<Vec<Account>>| -> Vec<Vec<String>> {
        found
            .into_iter()
            .map(|v| v.into_iter().map(|a| a.id).collect())
            .collect()
    };
    let got = ids(s.find_many(&keys, MatchMode::Canonical).unwrap());
    assert_eq!(got, vec![vec!["k"], vec![], vec!["b1", "b2"], vec!["k"]]);
    // The same answers as one lookup per key.
    let one_by_one: Vec<Vec<Account>> = keys
        .iter()
        .map(|k| s.find_by_email(k, MatchMode::Canonical).unwrap())
        .collect();
    assert_eq!(got, ids(one_by_one));
    let folded = fold("j.d.o.e@gmail.com");
    let got = ids(s
        .find_many(
            &[folded.as_str(), "jdoe@gmail.com"],
            MatchMode::ProviderFolding,
        )
        .unwrap());
    assert_eq!(got, vec![vec!["g"], vec!["g"]]);
    assert!(s.find_many(&[], MatchMode::Canonical).unwrap().is_empty());
}

fn identity<S: AccountStore>(a: &S, b: &S) {
    let ia = a.store_id().unwrap();
    assert_eq!(ia.len(), 36);
    assert_eq!(ia, a.store_id().unwrap(), "stable");
    assert_ne!(ia, b.store_id().unwrap(), "random per store");
}

fn reset_commit_is_complete<S: AccountStore>(s: &mut S) {
    s.import(&[rec("a", "a@x.example", false, 3.0)]).unwrap();
    s.set_password_hash("a", Some("$argon2id$old")).unwrap();
    s.add_session("a", "s1", 1).unwrap();
    s.add_session("a", "s2", 1).unwrap();
    s.ensure_planned(
        "p",
        &[(
            "force-password-reset:a".into(),
            "a".into(),
            "force-password-reset".into(),
        )],
        1,
    )
    .unwrap();
    let commit = |plan: &'static str, sel: &str, t: i64| AccountCommit {
        plan_hash: plan,
        account_id: "a",
        action_ids: vec!["force-password-reset:a".into()],
        reset: Some(NewToken {
            selector: sel.into(),
            token_hash: "$argon2id$h".into(),
            expires_at: t + 100,
        }),
        review: Some("rule: reason".into()),
        outcome: None,
        now: t,
    };
    s.commit_account(&commit("p", "t1", 10)).unwrap();
    assert_eq!(s.password_hash("a").unwrap(), None, "password invalidated");
    assert_eq!(s.active_sessions("a").unwrap(), 0, "sessions revoked");
    let acct = s.account("a").unwrap().unwrap();
    assert!(acct.password_reset_required && acct.review_required && !acct.has_password);
    let live: Vec<_> = s
        .tokens("a")
        .unwrap()
        .into_iter()
        .filter(|t| t.is_live(11))
        .collect();
    assert_eq!(live.len(), 1);
    // A reset of another plan revokes the first token: one live token at a time.
    s.ensure_planned(
        "p3",
        &[(
            "force-password-reset:a".into(),
            "a".into(),
            "force-password-reset".into(),
        )],
        1,
    )
    .unwrap();
    s.commit_account(&commit("p3", "t2", 20)).unwrap();
    let live: Vec<_> = s
        .tokens("a")
        .unwrap()
        .into_iter()
        .filter(|t| t.is_live(21))
        .collect();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].selector, "t2");
    // A failing commit (unknown account with a token: foreign key) changes nothing, not even
    // the state of its action.
    let bad = AccountCommit {
        plan_hash: "p2",
        account_id: "ghost",
        action_ids: vec!["x".into()],
        reset: Some(NewToken {
            selector: "t3".into(),
            token_hash: "h".into(),
            expires_at: 99,
        }),
        review: None,
        outcome: None,
        now: 30,
    };
    s.ensure_planned("p2", &[("x".into(), "a".into(), "notify".into())], 1)
        .unwrap();
    assert!(s.commit_account(&bad).is_err());
    assert!(s.token_by_selector("t3").unwrap().is_none());
    assert_eq!(
        s.action_states("p2").unwrap()[0].state,
        ActionState::Planned
    );
}

/// The reset of one plan's account, with its action planned in `s`.
fn planned_reset<'a, S: AccountStore>(
    s: &mut S,
    account: &'a str,
    action: &str,
    selector: &str,
) -> AccountCommit<'a> {
    s.ensure_planned(
        "p",
        &[(action.into(), account.into(), "force-password-reset".into())],
        1,
    )
    .unwrap();
    AccountCommit {
        plan_hash: "p",
        account_id: account,
        action_ids: vec![action.into()],
        reset: Some(NewToken {
            selector: selector.into(),
            token_hash: "$argon2id$h".into(),
            expires_at: 1000,
        }),
        review: None,
        outcome: None,
        now: 10,
    }
}

/// A second run committing actions another run (another handle: another process) already
/// committed is refused and changes nothing: no second token, the first one still live.
fn second_commit_of_done_actions_changes_nothing<S: AccountStore>(a: &mut S, b: &mut S) {
    a.import(&[rec("d", "d@x.example", false, 1.0)]).unwrap();
    let first = planned_reset(a, "d", "force-password-reset:d", "first");
    a.commit_account(&first).unwrap();
    let second = AccountCommit {
        reset: Some(NewToken {
            selector: "second".into(),
            token_hash: "$argon2id$h2".into(),
            expires_at: 1000,
        }),
        review: Some("late".into()),
        now: 20,
        ..first.clone()
    };
    match b.commit_account(&second) {
        Err(Error::AlreadyDone {
            plan_hash, account, ..
        }) => assert_eq!((plan_hash.as_str(), account.as_str()), ("p", "d")),
        other => panic!("expected AlreadyDone, got {other:?}"),
    }
    let tokens = a.tokens("d").unwrap();
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert!(tokens[0].is_live(11) && tokens[0].selector == "first");
    assert!(!a.account("d").unwrap().unwrap().review_required);
}

/// Two handles committing the same account's reset at the same instant, many times: exactly
/// one wins each time and the account has exactly one token.
fn concurrent_commits_reset_once<S: AccountStore + Send>(a: &mut S, b: &mut S) {
    for round in 0..10 {
        let acct = format!("race{round}");
        a.import(&[rec(&acct, &format!("{acct}@x.example"), false, 1.0)])
            .unwrap();
        let action = format!("force-password-reset:{acct}");
        let ca = planned_reset(a, &acct, &action, &format!("{acct}-a"));
        let cb = AccountCommit {
            reset: Some(NewToken {
                selector: format!("{acct}-b"),
                token_hash: "$argon2id$h".into(),
                expires_at: 1000,
            }),
            ..ca.clone()
        };
        let barrier = std::sync::Barrier::new(2);
        let (ra, rb) = std::thread::scope(|scope| {
            let ta = scope.spawn(|| {
                barrier.wait();
                a.commit_account(&ca)
            });
            let tb = scope.spawn(|| {
                barrier.wait();
                b.commit_account(&cb)
            });
            (ta.join().unwrap(), tb.join().unwrap())
        });
        let wins = [&ra, &rb].iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "round {round}: {ra:?} / {rb:?}");
        for r in [ra, rb] {
            assert!(
                matches!(r, Ok(()) | Err(Error::AlreadyDone { .. })),
                "round {round}: {r:?}"
            );
        }
        assert_eq!(a.tokens(&acct).unwrap().len(), 1, "round {round}");
    }
}

fn action_states<S: AccountStore>(s: &mut S) {
    s.import(&[rec("a", "a@x.example", false, 3.0)]).unwrap();
    let acts: Vec<(String, String, String)> = vec![
        ("notify:a".into(), "a".into(), "notify".into()),
        ("human-review:a".into(), "a".into(), "human-review".into()),
    ];
    s.ensure_planned("p", &acts, 1).unwrap();
    s.ensure_planned("p", &acts, 2).unwrap();
    let st = s.action_states("p").unwrap();
    assert_eq!(st.len(), 2);
    assert!(st.iter().all(|r| r.state == ActionState::Planned));
    s.mark_failed("p", &["notify:a".into()], "boom", 3).unwrap();
    let st = s.action_states("p").unwrap();
    let n = st.iter().find(|r| r.action_id == "notify:a").unwrap();
    assert_eq!(
        (n.state, n.detail.as_deref()),
        (ActionState::Failed, Some("boom"))
    );
    s.commit_account(&AccountCommit {
        plan_hash: "p",
        account_id: "a",
        action_ids: vec!["notify:a".into(), "human-review:a".into()],
        reset: None,
        review: Some("r".into()),
        outcome: Some("webhook 200: ok".into()),
        now: 4,
    })
    .unwrap();
    let st = s.action_states("p").unwrap();
    assert!(st.iter().all(|r| r.state == ActionState::Done));
    // The system of record's answer is kept with the done action (and replaces the failure).
    assert!(st
        .iter()
        .all(|r| r.detail.as_deref() == Some("webhook 200: ok")));
    // Done is final: a late failure does not overwrite it.
    s.mark_failed("p", &["notify:a".into()], "late", 5).unwrap();
    assert!(s
        .action_states("p")
        .unwrap()
        .iter()
        .all(|r| r.state == ActionState::Done));
    assert_eq!(s.plans().unwrap(), vec!["p".to_string()]);
}

fn tokens_single_use<S: AccountStore>(s: &mut S) {
    s.import(&[rec("a", "a@x.example", false, 3.0)]).unwrap();
    s.commit_account(&AccountCommit {
        plan_hash: "p",
        account_id: "a",
        action_ids: vec![],
        reset: Some(NewToken {
            selector: "sel".into(),
            token_hash: "h".into(),
            expires_at: 100,
        }),
        review: None,
        outcome: None,
        now: 10,
    })
    .unwrap();
    assert!(!s.mark_token_used("sel", 100).unwrap(), "expired");
    assert!(s.mark_token_used("sel", 50).unwrap());
    assert!(!s.mark_token_used("sel", 51).unwrap(), "single use");
}

fn audit_heads<S: AccountStore>(s: &mut S) {
    assert_eq!(s.audit_head("p").unwrap(), None);
    s.set_audit_head(
        "p",
        &AuditHead {
            seq: 3,
            hash: "h3".into(),
        },
    )
    .unwrap();
    s.set_audit_head(
        "p",
        &AuditHead {
            seq: 4,
            hash: "h4".into(),
        },
    )
    .unwrap();
    assert_eq!(
        s.audit_head("p").unwrap(),
        Some(AuditHead {
            seq: 4,
            hash: "h4".into()
        })
    );
    s.set_audit_head(
        "o",
        &AuditHead {
            seq: 1,
            hash: "o1".into(),
        },
    )
    .unwrap();
    let heads: Vec<(String, u64)> = s
        .audit_heads()
        .unwrap()
        .into_iter()
        .map(|(p, h)| (p, h.seq))
        .collect();
    assert_eq!(heads, vec![("o".to_string(), 1), ("p".to_string(), 4)]);
}

fn deliveries_are_claimed_once<S: AccountStore>(s: &mut S) {
    let claim = |s: &mut S, key: &str, retry: bool| {
        s.claim_delivery("p", key, "a@x.example", retry, 10)
            .unwrap()
    };
    assert_eq!(claim(s, "<m1@x>", false), DeliveryClaim::Claimed);
    // Claimed and never finished: a killed sender; the next run must not send it blindly.
    match claim(s, "<m1@x>", false) {
        DeliveryClaim::InDoubt(r) => assert_eq!((r.state, r.attempts), (DeliveryState::Sending, 1)),
        other => panic!("expected in doubt, got {other:?}"),
    }
    s.finish_delivery(
        "p",
        "<m1@x>",
        DeliveryState::Sent,
        Some("250 2.0.0 Ok: queued"),
        11,
    )
    .unwrap();
    assert_eq!(claim(s, "<m1@x>", true), DeliveryClaim::AlreadySent);
    // Deferred is retried; failed only on request.
    assert_eq!(claim(s, "<m2@x>", false), DeliveryClaim::Claimed);
    s.finish_delivery(
        "p",
        "<m2@x>",
        DeliveryState::Deferred,
        Some("451 try later"),
        12,
    )
    .unwrap();
    assert_eq!(claim(s, "<m2@x>", false), DeliveryClaim::Claimed);
    s.finish_delivery(
        "p",
        "<m2@x>",
        DeliveryState::Failed,
        Some("550 no such user"),
        13,
    )
    .unwrap();
    assert!(matches!(
        claim(s, "<m2@x>", false),
        DeliveryClaim::Failed(_)
    ));
    assert_eq!(claim(s, "<m2@x>", true), DeliveryClaim::Claimed);
    let rows = s.deliveries("p").unwrap();
    assert_eq!(
        rows.iter()
            .map(|r| (r.message_key.as_str(), r.state, r.attempts))
            .collect::<Vec<_>>(),
        vec![
            ("<m1@x>", DeliveryState::Sent, 1),
            ("<m2@x>", DeliveryState::Sending, 3)
        ]
    );
    assert_eq!(rows[0].reply.as_deref(), Some("250 2.0.0 Ok: queued"));
    assert!(s.deliveries("other").unwrap().is_empty());
    assert!(s
        .finish_delivery("p", "<never@x>", DeliveryState::Sent, None, 14)
        .is_err());
}

fn reset_base_is_pinned<S: AccountStore>(s: &mut S) {
    assert_eq!(s.reset_base("p").unwrap(), None);
    assert_eq!(
        s.pin_reset_base("p", "https://a.example/r").unwrap(),
        "https://a.example/r"
    );
    assert_eq!(
        s.pin_reset_base("p", "https://b.example/r").unwrap(),
        "https://a.example/r",
        "the first one stays"
    );
    assert_eq!(
        s.reset_base("p").unwrap().as_deref(),
        Some("https://a.example/r")
    );
}

/// One holder at a time, named to the others; re-entrant for its holder; free after unlock.
fn remediation_lock<S: AccountStore>(a: &mut S, b: &mut S) {
    let ha = LockHolder::this_process("apply", "sha256:aa");
    let hb = LockHolder {
        pid: 4242,
        host: "other-host".into(),
        ..LockHolder::this_process("release", "sha256:bb")
    };
    assert_eq!(a.try_lock(&ha).unwrap(), LockAttempt::Acquired);
    assert_eq!(
        b.try_lock(&hb).unwrap(),
        LockAttempt::Held(Some(ha.clone()))
    );
    assert_eq!(
        a.try_lock(&ha).unwrap(),
        LockAttempt::Acquired,
        "re-entrant"
    );
    match lock_store(b, &hb, Duration::from_millis(300)) {
        Err(Error::Locked {
            holder: Some(h),
            waited_secs: 0,
            ..
        }) => assert_eq!(h, ha),
        other => panic!("{other:?}"),
    }
    a.unlock().unwrap();
    a.unlock().unwrap();
    assert_eq!(b.try_lock(&hb).unwrap(), LockAttempt::Acquired);
    let e = lock_store(a, &ha, Duration::ZERO).unwrap_err().to_string();
    assert!(
        e.contains("another release of plan sha256:bb (pid 4242 on host other-host since "),
        "{e}"
    );
    b.unlock().unwrap();
    lock_store(a, &ha, Duration::from_secs(5)).unwrap();
    a.unlock().unwrap();
}

#[test]
fn sqlite_store_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    let n = std::cell::Cell::new(0);
    suite_with_lock(
        &|| {
            n.set(n.get() + 1);
            SqliteStore::open(&dir.path().join(format!("s{}.db", n.get()))).unwrap()
        },
        &|s| SqliteStore::open(Path::new(&s.describe())).unwrap(),
    );
}

#[test]
fn sqlite_lock_dies_with_its_handle() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.db");
    let holder = LockHolder::this_process("apply", "sha256:aa");
    let mut a = SqliteStore::open(&p).unwrap();
    assert_eq!(a.try_lock(&holder).unwrap(), LockAttempt::Acquired);
    assert!(a.lock_path().exists());
    drop(a);
    // The row of the dropped holder is still there; the lock is not.
    let mut b = SqliteStore::open(&p).unwrap();
    assert_eq!(b.try_lock(&holder).unwrap(), LockAttempt::Acquired);
}

#[test]
fn sqlite_file_is_0600_and_reopens() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("sub/accounts.db");
    let id = {
        let mut s = SqliteStore::open(&p).unwrap();
        s.import(&[rec("a", "a@x.example", false, 1.0)]).unwrap();
        s.store_id().unwrap()
    };
    let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let s = SqliteStore::open(&p).unwrap();
    assert_eq!(s.store_id().unwrap(), id);
    assert_eq!(s.account_count().unwrap(), 1);
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.db");
    drop(SqliteStore::open(&p).unwrap());
    let c = rusqlite::Connection::open(&p).unwrap();
    c.execute("UPDATE meta SET value='99' WHERE key='schema_version'", [])
        .unwrap();
    drop(c);
    let e = SqliteStore::open(&p).err().unwrap().to_string();
    assert!(e.contains("schema version 99"), "{e}");
}

/// Two senders (two handles) claiming the same new message at the same instant, many times:
/// exactly one gets it, the other finds it in flight.
fn concurrent_claims_claim_once<S: AccountStore + Send>(a: &mut S, b: &mut S) {
    for round in 0..10 {
        let key = format!("<race{round}@x>");
        let barrier = std::sync::Barrier::new(2);
        let claim = |s: &mut S| {
            barrier.wait();
            s.claim_delivery("p", &key, "r@x.example", false, 10)
                .unwrap()
        };
        let (ra, rb) = std::thread::scope(|scope| {
            let ta = scope.spawn(|| claim(a));
            let tb = scope.spawn(|| claim(b));
            (ta.join().unwrap(), tb.join().unwrap())
        });
        let claimed = [&ra, &rb]
            .iter()
            .filter(|c| ***c == DeliveryClaim::Claimed)
            .count();
        assert_eq!(claimed, 1, "round {round}: {ra:?} / {rb:?}");
        assert!(
            matches!(ra, DeliveryClaim::InDoubt(_)) || matches!(rb, DeliveryClaim::InDoubt(_)),
            "round {round}"
        );
        let rows = a.deliveries("p").unwrap();
        let row = rows.iter().find(|r| r.message_key == key).unwrap();
        assert_eq!(row.attempts, 1, "round {round}");
    }
}

/// The test server's URL (`LEAKAUDIT_TEST_PG_URL`, set by `scripts/test.sh` from
/// `scripts/pg.sh start`). Required under CI; elsewhere the PostgreSQL tests say they skipped.
fn pg_test_url() -> Option<String> {
    match std::env::var("LEAKAUDIT_TEST_PG_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run the PostgreSQL tests: LEAKAUDIT_TEST_PG_URL is unset (scripts/test.sh starts the server with scripts/pg.sh)"
            );
            eprintln!("skipped: LEAKAUDIT_TEST_PG_URL is unset (start a server with `scripts/pg.sh start`)");
            None
        }
    }
}

/// Fresh databases on the test server, dropped (with their connections) when this goes.
struct PgDatabases {
    admin_url: String,
    names: std::cell::RefCell<Vec<String>>,
}

impl PgDatabases {
    fn new(admin_url: String) -> PgDatabases {
        PgDatabases {
            admin_url,
            names: Default::default(),
        }
    }

    fn admin(&self) -> ::postgres::Client {
        ::postgres::Client::connect(&self.admin_url, ::postgres::NoTls).unwrap()
    }

    /// A new empty database; its URL.
    fn create(&self) -> String {
        let mut b = [0u8; 6];
        getrandom::fill(&mut b).unwrap();
        let name = format!("leakaudit_test_{}", hex::encode(b));
        self.admin()
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        self.names.borrow_mut().push(name.clone());
        let (base, query) = match self.admin_url.split_once('?') {
            Some((b, q)) => (b, format!("?{q}")),
            None => (self.admin_url.as_str(), String::new()),
        };
        let server = base.rsplit_once('/').map_or(base, |(s, _)| s);
        format!("{server}/{name}{query}")
    }
}

impl Drop for PgDatabases {
    fn drop(&mut self) {
        if let Ok(mut c) = ::postgres::Client::connect(&self.admin_url, ::postgres::NoTls) {
            for n in self.names.borrow().iter() {
                let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {n} WITH (FORCE)"));
            }
        }
    }
}

#[test]
fn postgres_store_passes_the_suite() {
    let Some(url) = pg_test_url() else { return };
    let dbs = PgDatabases::new(url);
    suite_with_lock(&|| PgStore::connect(&dbs.create()).unwrap(), &|s| {
        PgStore::connect(&s.describe()).unwrap()
    });
}

#[test]
fn postgres_lock_dies_with_its_session() {
    let Some(url) = pg_test_url() else { return };
    let dbs = PgDatabases::new(url);
    let db = dbs.create();
    let holder = LockHolder::this_process("apply", "sha256:aa");
    let mut a = PgStore::connect(&db).unwrap();
    let mut b = PgStore::connect(&db).unwrap();
    assert_eq!(a.try_lock(&holder).unwrap(), LockAttempt::Acquired);
    assert!(matches!(
        b.try_lock(&holder).unwrap(),
        LockAttempt::Held(Some(_))
    ));
    // The server ends the holder's session (as when its process is killed): the lock goes
    // with it, though its row stays until the next holder overwrites it.
    let pid: i32 = a
        .client
        .borrow_mut()
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    dbs.admin()
        .execute("SELECT pg_terminate_backend($1, 5000)", &[&pid])
        .unwrap();
    std::mem::forget(a);
    let start = std::time::Instant::now();
    loop {
        match b.try_lock(&holder).unwrap() {
            LockAttempt::Acquired => break,
            LockAttempt::Held(_) => {
                assert!(
                    start.elapsed().as_secs() < 30,
                    "the lock outlived its session"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    b.unlock().unwrap();
}

#[test]
fn postgres_store_reopens_and_refuses_a_newer_schema() {
    let Some(url) = pg_test_url() else { return };
    let dbs = PgDatabases::new(url);
    let db = dbs.create();
    let id = {
        let mut s = PgStore::connect(&db).unwrap();
        s.import(&[rec("a", "a@x.example", false, 1.0)]).unwrap();
        s.store_id().unwrap()
    };
    let s = PgStore::connect(&db).unwrap();
    assert_eq!(s.store_id().unwrap(), id);
    assert_eq!(s.account_count().unwrap(), 1);
    assert_eq!(
        s.describe(),
        db,
        "the description is the URL (no password here)"
    );
    s.client
        .borrow_mut()
        .execute(
            "UPDATE meta SET value = '99' WHERE key = 'schema_version'",
            &[],
        )
        .unwrap();
    drop(s);
    let e = PgStore::connect(&db).err().unwrap().to_string();
    assert!(e.contains("schema version 99"), "{e}");
}

#[test]
fn postgres_schema_is_created_once_by_concurrent_first_opens() {
    let Some(url) = pg_test_url() else { return };
    let dbs = PgDatabases::new(url);
    let db = dbs.create();
    let ids: Vec<String> = std::thread::scope(|scope| {
        let hs: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| PgStore::connect(&db).unwrap().store_id().unwrap()))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
}

#[test]
fn open_refuses_a_password_on_the_command_line() {
    let e = open(Path::new("postgresql://ann:hunter2@127.0.0.1:1/x"))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("PGPASSWORD") && !e.contains("hunter2"), "{e}");
    let e = open(Path::new("postgres://ann@127.0.0.1:1/x?password=hunter2"))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("PGPASSWORD") && !e.contains("hunter2"), "{e}");
}
