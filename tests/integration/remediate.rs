//! `leakaudit remediate` end to end through the binary: fixture archive + accounts CSV ->
//! affected list -> plan -> apply (killed several times, at each crash window, and resumed)
//! -> exactly the expected accounts reset with one live token each, one notification per
//! notified user, a verifying audit log; tampering with the plan, the log or the outbox is
//! refused. Fixtures: `fixtures/remediation/` (see its README).

use crate::util::{leakaudit, rem, run, s, text};
use leakaudit_remediation::store::AccountStore;
use leakaudit_remediation::{audit, outbox, token, SqliteStore};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;

/// The accounts of the fixture plan (`fixtures/remediation/`) by action, shared with the
/// PostgreSQL module.
pub(crate) const RESET: [&str; 7] = [
    "acc-1001", "acc-1004", "acc-1005", "acc-1009", "acc-1010", "acc-1011", "acc-1015",
];
pub(crate) const REVIEW: [&str; 4] = ["acc-1005", "acc-1006", "acc-1008", "acc-1013"];
pub(crate) const NOTIFIED: [&str; 13] = [
    "acc-1001", "acc-1002", "acc-1003", "acc-1004", "acc-1005", "acc-1006", "acc-1008", "acc-1009",
    "acc-1010", "acc-1011", "acc-1012", "acc-1013", "acc-1015",
];
/// The fixture plan's notify-only notices (exposed addresses without an account).
pub(crate) const NOTICES: usize = 1;
pub(crate) const ALL: [&str; 15] = [
    "acc-1001", "acc-1002", "acc-1003", "acc-1004", "acc-1005", "acc-1006", "acc-1008", "acc-1009",
    "acc-1010", "acc-1011", "acc-1012", "acc-1013", "acc-1015", "acc-2001", "acc-2002",
];

struct Env {
    _dir: tempfile::TempDir,
    db: PathBuf,
    plan: PathBuf,
    outbox: PathBuf,
    log: PathBuf,
}

/// Accounts imported (each with a password and two sessions), affected list, plan.
fn setup() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let db = root.join("accounts.db");
    let o = run(&["accounts", "import", &rem("accounts.csv"), "--db", s(&db)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    {
        let mut st = SqliteStore::open(&db).unwrap();
        for a in ALL {
            st.set_password_hash(a, Some("$argon2id$v=19$m=19456,t=2,p=1$old$old"))
                .unwrap();
            st.add_session(a, &format!("{a}-s1"), 1).unwrap();
            st.add_session(a, &format!("{a}-s2"), 1).unwrap();
        }
    }
    let affected = root.join("affected.json");
    let o = run(&[
        "affected",
        &rem("archive.mbox"),
        "--accounts",
        s(&db),
        "--format",
        "json",
        "-o",
        s(&affected),
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let plan = root.join("plan.json");
    let o = run(&[
        "remediate",
        "plan",
        "--affected",
        s(&affected),
        "--db",
        s(&db),
        "--out",
        s(&plan),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    Env {
        db,
        plan,
        outbox: root.join("outbox"),
        log: root.join("audit.jsonl"),
        _dir: dir,
    }
}

fn apply(e: &Env, crash: Option<(usize, &str)>) -> Output {
    let mut cmd = apply_with_batch(e, "4", &[]);
    if let Some((n, point)) = crash {
        cmd.env("LEAKAUDIT_TEST_CRASH_AFTER", n.to_string())
            .env("LEAKAUDIT_TEST_CRASH_POINT", point);
    }
    cmd.output().unwrap()
}

fn staged(e: &Env) -> Vec<PathBuf> {
    let dir = e.outbox.join("staged/new");
    let mut v: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd.map(|x| x.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// `remediate release` of the environment's outbox against its store.
fn release(e: &Env) -> Output {
    run(&[
        "remediate",
        "release",
        "--outbox",
        s(&e.outbox),
        "--db",
        s(&e.db),
    ])
}

/// How many messages are in `released/new`.
fn released(e: &Env) -> usize {
    std::fs::read_dir(e.outbox.join("released/new"))
        .unwrap()
        .count()
}

/// (to, language, body, reset link) of each staged message.
fn messages(e: &Env) -> Vec<(String, String, String, Option<String>)> {
    staged(e)
        .iter()
        .map(|p| {
            let m = outbox::inspect(&std::fs::read(p).unwrap()).unwrap();
            assert_eq!(m.to.len(), 1, "{p:?}");
            assert_eq!(m.other_recipient_headers, 0, "no Cc, no Bcc");
            let link = m
                .body
                .split_whitespace()
                .find(|w| w.starts_with("https://shop.example/reset?"))
                .map(str::to_string);
            (m.to[0].clone(), m.language.unwrap(), m.body, link)
        })
        .collect()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn selector_and_secret(link: &str) -> (String, String) {
    let q = link.split_once('?').unwrap().1;
    let kv: BTreeMap<&str, &str> = q.split('&').filter_map(|p| p.split_once('=')).collect();
    (kv["selector"].to_string(), kv["token"].to_string())
}

#[test]
#[cfg_attr(
    not(feature = "crash-points"),
    ignore = "needs the crash points: scripts/test.sh (cargo test --features leakaudit/crash-points)"
)]
fn end_to_end_killed_at_every_window_and_resumed() {
    let e = setup();
    let plan: serde_json::Value = serde_json::from_slice(&std::fs::read(&e.plan).unwrap()).unwrap();
    assert_eq!(plan["totals"]["force_password_reset"], 7);
    assert_eq!(plan["totals"]["human_review"], 4);
    assert_eq!(plan["totals"]["notify"], 13);
    assert_eq!(plan["totals"]["unmatched_addresses"], 1);
    // Planning changed nothing.
    {
        let st = SqliteStore::open(&e.db).unwrap();
        assert!(st.password_hash("acc-1001").unwrap().is_some());
        assert!(st.plans().unwrap().is_empty());
    }

    let mut all_output = String::new();
    // Killed after the first message (acc-1001, a reset) is durable but before its commit:
    // the dead-link window...
    let o = apply(&e, Some((1, "staged")));
    assert!(
        o.status.code().is_none() || o.status.code() != Some(0),
        "must have died"
    );
    all_output += &text(&o);
    // ... after the 3rd commit of the next run, before its audit entries (log gap window)...
    let o = apply(&e, Some((3, "committed")));
    assert!(!o.status.success());
    all_output += &text(&o);
    let status = run(&[
        "remediate",
        "status",
        "--db",
        s(&e.db),
        "--plan",
        s(&e.plan),
    ]);
    let st = text(&status);
    assert!(
        st.contains("force-password-reset") && st.contains("planned"),
        "{st}"
    );
    // ... and once more after its audit entries.
    let o = apply(&e, Some((2, "logged")));
    assert!(!o.status.success());
    all_output += &text(&o);
    // The resumed run finishes the rest.
    let o = apply(&e, None);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    all_output += &text(&o);

    // Exactly the expected accounts were reset, each with one token (alive), none twice.
    let now = now();
    let st = SqliteStore::open(&e.db).unwrap();
    for a in ALL {
        let acct = st.account(a).unwrap().unwrap();
        let tokens = st.tokens(a).unwrap();
        if RESET.contains(&a) {
            assert!(!acct.has_password, "{a}: password invalidated");
            assert!(acct.password_reset_required);
            assert_eq!(st.active_sessions(a).unwrap(), 0, "{a}: sessions revoked");
            assert_eq!(
                tokens.len(),
                1,
                "{a}: one token ever stored (never reset twice)"
            );
            assert!(tokens[0].is_live(now));
            assert!(tokens[0]
                .token_hash
                .starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
            assert!(
                tokens[0].expires_at - now > 23 * 3600 && tokens[0].expires_at - now <= 24 * 3600
            );
        } else {
            assert!(acct.has_password, "{a}: untouched password");
            assert_eq!(st.active_sessions(a).unwrap(), 2, "{a}: sessions kept");
            assert!(tokens.is_empty(), "{a}: no token");
        }
        assert_eq!(
            acct.review_required,
            REVIEW.contains(&a),
            "{a}: review flag"
        );
    }

    // One message per notified user, to that user only, in their language, and one notice
    // to the exposed address without an account (issue 29).
    let msgs = messages(&e);
    assert_eq!(msgs.len(), NOTIFIED.len() + NOTICES);
    let tos: BTreeSet<&str> = msgs.iter().map(|m| m.0.as_str()).collect();
    assert_eq!(tos.len(), NOTIFIED.len() + NOTICES, "one message per user");
    assert!(!tos.contains("carol@bigcorp.example") && !tos.contains("quiet@gmail.com"));
    let by_to: BTreeMap<&str, &(String, String, String, Option<String>)> =
        msgs.iter().map(|m| (m.0.as_str(), m)).collect();
    let notice = by_to["frank.mueller@gmx.de"];
    assert_eq!(notice.1, "en", "no account, no known language");
    assert!(notice.3.is_none(), "no account, no link");
    assert!(
        notice.2.contains("You have no account with us"),
        "{}",
        notice.2
    );
    assert_eq!(by_to["anna.schmidt@web.de"].1, "de");
    assert!(by_to["anna.schmidt@web.de"]
        .2
        .contains("Passwort zurückgesetzt"));
    assert_eq!(by_to["marie.dubois@laposte.net"].1, "fr", "fr-CA uses fr");
    assert_eq!(
        by_to["hana.tanaka@yahoo.co.jp"].1, "en",
        "ja falls back to en"
    );
    assert_eq!(by_to["ivan.petrov@mail.ru"].1, "ru");
    assert_eq!(by_to["diego.garcia@yahoo.es"].1, "es");
    assert!(
        by_to["bob.jones@gmail.com"].3.is_none(),
        "no reset, no link"
    );
    assert!(by_to["grace.lee@hotmail.com"].2.contains("reviewing"));

    // The links are redeemed after the release below (release checks each one is live).
    let log_text = std::fs::read_to_string(&e.log).unwrap();
    let mut st = st;

    // The audit log verifies, one done entry per action.
    let o = run(&["remediate", "verify-log", s(&e.log), "--db", s(&e.db)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let done: BTreeSet<String> = log_text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["result"].as_str().unwrap().starts_with("done"))
        .map(|v| v["action_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(done.len(), 24 + NOTICES);
    assert!(
        !log_text.contains("frank.mueller"),
        "a notice's address never reaches the log"
    );
    // The run killed between commit and log left a gap that the next run filled.
    assert!(log_text.contains("done-logged-on-resume"));

    // Everything holding addresses or secrets is private to the user.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&e.log), 0o600);
    assert_eq!(mode(&e.plan), 0o600);
    assert_eq!(mode(&e.db), 0o600);
    assert_eq!(mode(&e.outbox.join("staged/new")), 0o700);
    assert!(staged(&e).iter().all(|p| mode(p) == 0o600));

    // Running apply again does nothing more.
    let o = apply(&e, None);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        text(&o).contains("0 done now, 13 already done"),
        "{}",
        text(&o)
    );
    assert!(
        text(&o)
            .contains("notices to addresses without an account: 0 staged now, 1 already staged"),
        "{}",
        text(&o)
    );
    assert_eq!(st.tokens("acc-1001").unwrap().len(), 1);
    assert_eq!(staged(&e).len(), 13 + NOTICES);

    let o = run(&["remediate", "status", "--db", s(&e.db)]);
    let out = text(&o);
    assert!(
        out.contains("force-password-reset") && out.contains("       7        0        0"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("notify-only")
                && l.contains("       1        0        0")),
        "{out}"
    );

    // Release: all pass, moved to released/new.
    let o = release(&e);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(released(&e), 13 + NOTICES);
    assert!(staged(&e).is_empty());

    // Every released reset link works exactly once (release checked each was live).
    let mut links = 0;
    for (to, _, _, link) in &msgs {
        let Some(link) = link else { continue };
        links += 1;
        let (sel, secret) = selector_and_secret(link);
        assert_eq!(secret.len(), 64);
        assert!(!all_output.contains(&secret) && !log_text.contains(&secret));
        let acct = token::redeem(&mut st, &sel, &secret, now).unwrap();
        let acct = acct.unwrap_or_else(|| panic!("link of {to} does not redeem"));
        assert!(RESET.contains(&acct.as_str()));
        assert_eq!(
            token::redeem(&mut st, &sel, &secret, now).unwrap(),
            None,
            "single use"
        );
    }
    assert_eq!(links, RESET.len());

    // Tampering with the log is detected and located.
    let lines: Vec<&str> = log_text.lines().collect();
    let mut altered = lines.clone();
    let changed = altered[4].replace("\"done\"", "\"failed\"");
    altered[4] = &changed;
    std::fs::write(&e.log, altered.join("\n") + "\n").unwrap();
    let o = run(&["remediate", "verify-log", s(&e.log)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains(":6:"), "{}", text(&o));
    let mut removed = lines.clone();
    removed.remove(10);
    std::fs::write(&e.log, removed.join("\n") + "\n").unwrap();
    let o = run(&["remediate", "verify-log", s(&e.log)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains(":11:") && text(&o).contains("removed"),
        "{}",
        text(&o)
    );
    let cut = &lines[..lines.len() - 1];
    std::fs::write(&e.log, cut.join("\n") + "\n").unwrap();
    let o = run(&["remediate", "verify-log", s(&e.log), "--db", s(&e.db)]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "a cut tail is caught with the store's head"
    );
    // A broken log is never appended to.
    let o = apply(&e, None);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn modified_plan_or_other_store_is_refused() {
    let e = setup();
    let original = std::fs::read_to_string(&e.plan).unwrap();
    // Drop the first reset from the plan.
    let edited = original.replacen(
        "\"kind\": \"force-password-reset\"",
        "\"kind\": \"notify\"",
        1,
    );
    assert_ne!(edited, original);
    std::fs::write(&e.plan, &edited).unwrap();
    let o = apply(&e, None);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("hash mismatch"), "{}", text(&o));
    std::fs::write(&e.plan, &original).unwrap();

    // The same plan against another store (same accounts, other identity).
    let other = e.db.with_file_name("other.db");
    let o = run(&[
        "accounts",
        "import",
        &rem("accounts.csv"),
        "--db",
        s(&other),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let o = leakaudit()
        .args([
            "remediate",
            "apply",
            "--plan",
            s(&e.plan),
            "--db",
            s(&other),
            "--outbox",
            s(&e.outbox),
            "--log",
            s(&e.log),
            "--reset-base-url",
            "https://shop.example/reset",
            "--from",
            "Security <security@shop.example>",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("different") || text(&o).contains("made for store"),
        "{}",
        text(&o)
    );
    assert!(!e.log.exists(), "nothing logged");

    // argon2 below the OWASP floor is refused.
    let o = leakaudit()
        .args([
            "remediate",
            "apply",
            "--plan",
            s(&e.plan),
            "--db",
            s(&e.db),
            "--outbox",
            s(&e.outbox),
            "--log",
            s(&e.log),
            "--argon2-m-kib",
            "4096",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("OWASP"));
}

#[test]
fn doctored_outbox_is_not_released() {
    let e = setup();
    // Release before apply: refused.
    let o = release(&e);
    assert_eq!(o.status.code(), Some(1));
    let o = apply(&e, None);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let files = staged(&e);
    let victim = &files[0];
    let raw = std::fs::read_to_string(victim).unwrap();
    let to_line = raw
        .lines()
        .find(|l| l.starts_with("To: "))
        .unwrap()
        .to_string();
    let doctored = raw.replacen(&to_line, &format!("{to_line}, <someone.else@gmail.com>"), 1);
    std::fs::write(victim, doctored).unwrap();
    let o = release(&e);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("2 recipients in To"), "{out}");
    assert!(
        out.contains("exposure model flags it") || out.contains("policy rule recipient-exposure"),
        "{out}"
    );
    assert!(out.contains("nothing released"));
    assert_eq!(staged(&e).len(), 13 + NOTICES, "nothing moved");
    assert!(
        !e.outbox.join("released/new").exists()
            || std::fs::read_dir(e.outbox.join("released/new"))
                .unwrap()
                .count()
                == 0
    );
    // Even with the recorded hash made to match, the recipient check still refuses it.
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(e.outbox.join("apply-state.json")).unwrap()).unwrap();
    let name = victim.file_name().unwrap().to_str().unwrap();
    let h = audit::line_hash(&std::fs::read(victim).unwrap())
        .trim_start_matches("sha256:")
        .to_string();
    for m in state["messages"].as_array_mut().unwrap() {
        if m["file"] == name {
            m["sha256"] = h.clone().into();
        }
    }
    std::fs::write(e.outbox.join("apply-state.json"), state.to_string()).unwrap();
    let o = release(&e);
    assert_eq!(o.status.code(), Some(1));
    assert!(!text(&o).contains("changed since apply"), "{}", text(&o));
    assert!(text(&o).contains("2 recipients in To"));
}

#[test]
fn sigkill_at_arbitrary_points_then_resume() {
    let e = setup();
    // SIGKILL at several points in time (wherever apply happens to be), then finish.
    for delay_ms in [150u64, 350, 550, 800, 1100] {
        let mut child = leakaudit()
            .args([
                "remediate",
                "apply",
                "--plan",
                s(&e.plan),
                "--db",
                s(&e.db),
                "--outbox",
                s(&e.outbox),
                "--log",
                s(&e.log),
                "--batch",
                "2",
                "-q",
                "--reset-base-url",
                "https://shop.example/reset",
                "--from",
                "Security <security@shop.example>",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
    }
    let o = apply(&e, None);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let st = SqliteStore::open(&e.db).unwrap();
    let now = now();
    for a in ALL {
        let live = st
            .tokens(a)
            .unwrap()
            .into_iter()
            .filter(|t| t.is_live(now))
            .count();
        assert_eq!(
            live,
            usize::from(RESET.contains(&a)),
            "{a}: one live token iff reset"
        );
        assert_eq!(st.tokens(a).unwrap().len(), live, "{a}: never reset twice");
    }
    assert_eq!(messages(&e).len(), NOTIFIED.len() + NOTICES);
    let o = run(&["remediate", "verify-log", s(&e.log), "--db", s(&e.db)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

/// A rules folder whose one rule fires on every notification (the apology in the closing of
/// every template): the outbox gate must use it wherever mail is staged or released.
fn strict_rules(root: &Path) -> PathBuf {
    let dir = root.join("strict-rules");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("strict.toml"),
        r#"[[rule]]
id = "no-apologies"
kind = "content-regex"
severity = "critical"
summary = "An apology"
description = "Test rule: fires on the notification template."
hint = "none"
keywords = ["apologise", "entschuldigen", "disculpas", "excuser", "извинения"]
regex = '(?P<keep>apologise|entschuldigen|disculpas|excuser|извинения)'
"#,
    )
    .unwrap();
    dir
}

#[test]
fn outbox_gate_differed_per_command_regression() {
    // `apply` and `release` used to check staged mail with the built-in pack and a default
    // organisation, `incident --apply` with the configured engine. Now all three refuse the
    // same message under the same configured rules.
    let e = setup();
    let rules = strict_rules(e._dir.path());
    let with_rules = |args: &[&str]| -> Output {
        leakaudit()
            .args(args)
            .args(["--rules", s(&rules)])
            .output()
            .unwrap()
    };

    // apply with the strict rules stages nothing: every notification is refused.
    let o = with_rules(&[
        "remediate",
        "apply",
        "--plan",
        s(&e.plan),
        "--db",
        s(&e.db),
        "--outbox",
        s(&e.outbox),
        "--log",
        s(&e.log),
        "--reset-base-url",
        "https://shop.example/reset",
        "--from",
        "Security <security@shop.example>",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("no-apologies"), "{}", text(&o));
    assert!(staged(&e).is_empty(), "nothing may be staged");

    // A fresh run without the rule stages every notification...
    let e = setup();
    let rules = strict_rules(e._dir.path());
    let o = apply(&e, None);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!staged(&e).is_empty());
    // ...and release under the strict rules refuses them all, releasing nothing.
    let o = leakaudit()
        .args([
            "remediate",
            "release",
            "--outbox",
            s(&e.outbox),
            "--db",
            s(&e.db),
        ])
        .args(["--rules", s(&rules)])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("no-apologies"), "{}", text(&o));
    assert!(
        !e.outbox.join("released/new").exists()
            || std::fs::read_dir(e.outbox.join("released/new"))
                .unwrap()
                .next()
                .is_none()
    );

    // incident --apply with the same rules refuses them too.
    let out = e._dir.path().join("incident");
    let o = leakaudit()
        .args([
            "incident",
            &rem("archive.mbox"),
            "--accounts",
            &rem("accounts.csv"),
            "--out",
            s(&out),
            "--apply",
            "--from",
            "Security <security@shop.example>",
            "--reset-base-url",
            "https://shop.example/reset",
            "-q",
        ])
        .args(["--rules", s(&rules)])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("no-apologies"), "{}", text(&o));
}

/// A fresh copy of `e`'s store (not yet applied to) and plan in `dir`, with its own outbox
/// and log: one round of a concurrency test.
fn round_env(e: &Env, dir: &Path) -> Env {
    std::fs::create_dir_all(dir).unwrap();
    let db = dir.join("accounts.db");
    std::fs::copy(&e.db, &db).unwrap();
    let wal = e.db.with_file_name("accounts.db-wal");
    if wal.exists() {
        std::fs::copy(&wal, dir.join("accounts.db-wal")).unwrap();
    }
    let plan = dir.join("plan.json");
    std::fs::copy(&e.plan, &plan).unwrap();
    Env {
        _dir: tempfile::tempdir().unwrap(),
        db,
        plan,
        outbox: dir.join("outbox"),
        log: dir.join("audit.jsonl"),
    }
}

fn apply_cmd(e: &Env, extra: &[&str]) -> std::process::Command {
    apply_with_batch(e, "2", extra)
}

/// `remediate apply` of the environment's plan with the test sender and reset page.
fn apply_with_batch(e: &Env, batch: &str, extra: &[&str]) -> std::process::Command {
    let mut cmd = leakaudit();
    cmd.args([
        "remediate",
        "apply",
        "--plan",
        s(&e.plan),
        "--db",
        s(&e.db),
        "--outbox",
        s(&e.outbox),
        "--log",
        s(&e.log),
        "--reset-base-url",
        "https://shop.example/reset",
        "--from",
        "Security <security@shop.example>",
        "--batch",
        batch,
    ])
    .args(extra);
    cmd
}

fn assert_applied_once(e: &Env, round: &str) {
    let st = SqliteStore::open(&e.db).unwrap();
    assert_applied_once_on(st, &e.log, s(&e.db), apply_cmd(e, &[]), round);
}

/// Exactly once, on any store: one token per reset account (none elsewhere), every action
/// logged done exactly once, `verify-log --db` passes, and another run (`apply`) is a no-op.
pub(crate) fn assert_applied_once_on(
    st: impl AccountStore,
    log: &Path,
    db: &str,
    mut apply: std::process::Command,
    round: &str,
) {
    for a in ALL {
        let n = st.tokens(a).unwrap().len();
        assert_eq!(
            n,
            usize::from(RESET.contains(&a)),
            "{round}: {a}: {n} tokens"
        );
    }
    drop(st); // closed before the other processes run
    let log_text = std::fs::read_to_string(log).unwrap();
    let mut done: BTreeMap<String, usize> = BTreeMap::new();
    for l in log_text.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        if v["result"].as_str().unwrap().starts_with("done") {
            *done
                .entry(v["action_id"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    let actions = RESET.len() + REVIEW.len() + NOTIFIED.len() + NOTICES;
    assert_eq!(done.len(), actions, "{round}: {done:?}");
    assert!(done.values().all(|n| *n == 1), "{round}: {done:?}");
    let o = run(&["remediate", "verify-log", s(log), "--db", db]);
    assert_eq!(o.status.code(), Some(0), "{round}: {}", text(&o));
    let o = apply.output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{round}: {}", text(&o));
    assert!(
        text(&o).contains("0 done now, 13 already done"),
        "{round}: {}",
        text(&o)
    );
}

#[test]
fn concurrent_applies_reset_twice_regression() {
    // Two `remediate apply` of one plan on one store at once used to reset the same accounts
    // twice and log every action twice. Now one holds the store's lock; the other exits 2
    // naming it (or, with --wait, waits and finds nothing left to do).
    let e = setup();
    let rounds = e._dir.path().join("rounds");
    let mut refused = 0;
    for round in 0..20 {
        let r = round_env(&e, &rounds.join(round.to_string()));
        let wait: &[&str] = if round % 2 == 1 {
            &["--wait", "120"]
        } else {
            &[]
        };
        let spawn = || {
            apply_cmd(&r, wait)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn(), spawn());
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        for o in [&a, &b] {
            match o.status.code() {
                Some(0) => {}
                Some(2) if wait.is_empty() => {
                    let t = text(o);
                    // The holder is named once it has recorded itself; a refusal in the
                    // instant between its lock and its record (seen under load) says so.
                    assert!(
                        ((t.contains("another apply of plan sha256:") && t.contains(" on host "))
                            || t.contains("holder not yet recorded"))
                            && t.contains("--wait SECS"),
                        "round {round}: {t}"
                    );
                    refused += 1;
                }
                other => panic!("round {round}: {other:?}: {}", text(o)),
            }
        }
        assert!(
            a.status.success() || b.status.success(),
            "round {round}: one of them ran"
        );
        assert_applied_once(&r, &format!("round {round}"));
    }
    eprintln!("{refused} of 10 rounds without --wait had the second apply refused");
}

#[test]
#[cfg_attr(
    not(feature = "crash-points"),
    ignore = "needs the crash points: scripts/test.sh (cargo test --features leakaudit/crash-points)"
)]
fn killed_lock_holder_does_not_block_the_next_apply() {
    let e = setup();
    // The holder stops (holding the lock) once its first message is staged...
    let mut holder = apply_cmd(&e, &[])
        .env("LEAKAUDIT_TEST_CRASH_AFTER", "1")
        .env("LEAKAUDIT_TEST_CRASH_POINT", "staged")
        .env("LEAKAUDIT_TEST_CRASH_MODE", "hang")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while staged(&e).is_empty() {
        assert!(start.elapsed().as_secs() < 120, "the holder never staged");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // ...a second apply is refused at once, naming it...
    let o = apply_cmd(&e, &[]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("apply of plan sha256:")
            && text(&o).contains(&format!("(pid {} on host ", holder.id())),
        "{}",
        text(&o)
    );
    let o = apply_cmd(&e, &["--wait", "1"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("waited 1 s"), "{}", text(&o));
    // ...release too (it takes the same lock)...
    let o = release(&e);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    // ...and once it is killed (SIGKILL), the next apply runs to the end.
    holder.kill().unwrap();
    holder.wait().unwrap();
    let o = apply_cmd(&e, &[]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_applied_once(&e, "after the kill");
}

#[test]
fn verify_log_passed_emptied_or_forged_log_regression() {
    let e = setup();
    let o = apply(&e, None);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let original = std::fs::read_to_string(&e.log).unwrap();
    // Emptied.
    std::fs::write(&e.log, "").unwrap();
    let o = run(&["remediate", "verify-log", s(&e.log), "--db", s(&e.db)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("not in the given log"), "{}", text(&o));
    // One entry of a made-up plan, correctly anchored.
    let fake = "sha256:".to_string() + &"ab".repeat(32);
    let line = serde_json::json!({
        "seq": 1, "time": "2026-11-30T00:00:00.000Z", "plan": fake,
        "action": "notify", "action_id": "notify:acc-1001", "account": "acc-1001",
        "result": "done", "prev": fake,
    });
    std::fs::write(&e.log, format!("{line}\n")).unwrap();
    let o = run(&["remediate", "verify-log", s(&e.log), "--db", s(&e.db)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("never applied"), "{}", text(&o));
    // The real log still verifies; a second plan applied to the store must be in a log too.
    std::fs::write(&e.log, &original).unwrap();
    let o = run(&["remediate", "verify-log", s(&e.log), "--db", s(&e.db)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let mut st = SqliteStore::open(&e.db).unwrap();
    st.set_audit_head(
        &fake,
        &leakaudit_remediation::store::AuditHead {
            seq: 1,
            hash: audit::line_hash(line.to_string().as_bytes()),
        },
    )
    .unwrap();
    drop(st);
    let o = run(&["remediate", "verify-log", s(&e.log), "--db", s(&e.db)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let other = e.log.with_file_name("other.jsonl");
    std::fs::write(&other, format!("{line}\n")).unwrap();
    let o = run(&[
        "remediate",
        "verify-log",
        s(&e.log),
        s(&other),
        "--db",
        s(&e.db),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn release_trusted_apply_state_regression() {
    // Changing a staged message's To to an attacker and updating its hash in
    // apply-state.json used to release it: the reset link went to the attacker.
    let e = setup();
    let o = apply(&e, None);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = run(&["remediate", "release", "--outbox", s(&e.outbox)]);
    assert_eq!(o.status.code(), Some(2), "--db is required: {}", text(&o));
    assert!(text(&o).contains("--db"), "{}", text(&o));
    let state_path = e.outbox.join("apply-state.json");
    let pristine_state = std::fs::read(&state_path).unwrap();
    let doctor = |victim: &Path, from: &str, to: &str| {
        let raw = std::fs::read_to_string(victim).unwrap();
        assert!(raw.contains(from), "{from}");
        let doctored = raw.replacen(from, to, 1);
        std::fs::write(victim, &doctored).unwrap();
        let name = victim.file_name().unwrap().to_str().unwrap();
        let mut state: serde_json::Value = serde_json::from_slice(&pristine_state).unwrap();
        for m in state["messages"].as_array_mut().unwrap() {
            if m["file"] == name {
                m["sha256"] = audit::line_hash(doctored.as_bytes())
                    .trim_start_matches("sha256:")
                    .into();
                m["to"] = "attacker@evil.example".into();
            }
        }
        std::fs::write(&state_path, state.to_string()).unwrap();
        raw
    };
    // The message with a reset link for acc-1001 (anna.schmidt@web.de).
    let victim = staged(&e)
        .into_iter()
        .find(|p| {
            let m = outbox::inspect(&std::fs::read(p).unwrap()).unwrap();
            m.to[0] == "anna.schmidt@web.de"
        })
        .unwrap();
    let raw = doctor(
        &victim,
        "To: <anna.schmidt@web.de>",
        "To: <attacker@evil.example>",
    );
    let o = release(&e);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("To is not the account's own address"),
        "{}",
        text(&o)
    );
    assert!(!e.outbox.join("released/new").exists() || staged(&e).len() == 13);
    // A link whose selector is not the account's live token (another account's) is refused.
    std::fs::write(&victim, &raw).unwrap();
    let other = staged(&e)
        .into_iter()
        .filter(|p| p != &victim)
        .find_map(|p| {
            let body = outbox::inspect(&std::fs::read(&p).unwrap()).unwrap().body;
            body.split_whitespace()
                .find(|w| w.starts_with("https://shop.example/reset?"))
                .map(|l| selector_and_secret(l).0)
        })
        .unwrap();
    let body = outbox::inspect(raw.as_bytes()).unwrap().body;
    let own = body
        .split_whitespace()
        .find(|w| w.starts_with("https://shop.example/reset?"))
        .map(|l| selector_and_secret(l).0)
        .unwrap();
    // The body is base64: rebuild the message with the other selector in a plain body.
    let (head, _) = raw.split_once("\n\n").unwrap();
    let plain = format!(
        "{}\n\n{}",
        head.replace(
            "Content-Transfer-Encoding: base64",
            "Content-Transfer-Encoding: 8bit"
        ),
        body.replace(&own, &other)
    );
    let _ = doctor(&victim, &raw, &plain);
    let o = release(&e);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("is not a live reset token of account acc-1001"),
        "{}",
        text(&o)
    );
    // The real link moved to another host (the token would go there) is refused.
    let phished = plain.replace(&other, &own).replace(
        "https://shop.example/reset?",
        "https://shop.example.evil.example/reset?",
    );
    let _ = doctor(&victim, &plain, &phished);
    let o = release(&e);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("does not go to the plan's reset page https://shop.example/reset"),
        "{}",
        text(&o)
    );
    // A resumed apply with another reset page is refused (its links would differ).
    let o = run(&[
        "remediate",
        "apply",
        "--plan",
        s(&e.plan),
        "--db",
        s(&e.db),
        "--outbox",
        s(&e.outbox),
        "--log",
        s(&e.log),
        "--reset-base-url",
        "https://other.example/reset",
        "--from",
        "Security <security@shop.example>",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("was applied with reset base URL `https://shop.example/reset`"),
        "{}",
        text(&o)
    );
    // Restored, everything is released.
    std::fs::write(&victim, &raw).unwrap();
    std::fs::write(&state_path, &pristine_state).unwrap();
    let o = release(&e);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(released(&e), 13 + NOTICES);
}

/// Issue 29 (4): one account whose address the mail builder cannot write (its store row was
/// changed to `"<v3@yahoo.com>"@gmail.com` after the plan) fails apply on every run; it used
/// to keep the plan from ever completing, so release refused all the others. Now it is
/// reported and skipped: release goes on for the rest and exits 2 naming it; once its
/// address is fixed, the next apply and release do it alone.
#[test]
fn one_account_the_mail_builder_cannot_write_never_blocks_the_others() {
    let e = setup();
    let csv = e._dir.path().join("changed.csv");
    let original = std::fs::read_to_string(rem("accounts.csv")).unwrap();
    std::fs::write(
        &csv,
        original.replace(
            "acc-1002,bob.jones@gmail.com,",
            "acc-1002,\"\"\"<v3@yahoo.com>\"\"@gmail.com\",",
        ),
    )
    .unwrap();
    let import = |file: &str| run(&["accounts", "import", file, "--db", s(&e.db)]);
    let o = import(s(&csv));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    let o = apply(&e, None);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("account acc-1002"), "{}", text(&o));
    assert_eq!(staged(&e).len(), NOTIFIED.len() - 1 + NOTICES);
    let o = release(&e);
    assert_eq!(
        o.status.code(),
        Some(2),
        "the exit code says so: {}",
        text(&o)
    );
    assert!(
        text(&o)
            .contains("1 account(s) or notice(s) failed in apply and were not released: acc-1002"),
        "{}",
        text(&o)
    );
    assert_eq!(
        released(&e),
        NOTIFIED.len() - 1 + NOTICES,
        "the others went on"
    );
    assert!(staged(&e).is_empty());

    // The address fixed: the next apply does acc-1002 alone, release adds its message.
    let o = import(&rem("accounts.csv"));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = apply(&e, None);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("1 done now, 12 already done"),
        "{}",
        text(&o)
    );
    assert_eq!(staged(&e).len(), 1);
    let o = release(&e);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(released(&e), NOTIFIED.len() + NOTICES);
}

/// Issue 29 (5): a plan made again after the accounts changed (one more account row, for the
/// exposed address that had none) has another hash; applied to the same store it reset the
/// same accounts again and notified everyone twice. Now it is refused before anything
/// changes, naming the earlier plan; `--new-incident` says it really is another incident.
#[test]
fn a_changed_plan_on_the_same_store_never_resets_or_notifies_twice() {
    let e = setup();
    let o = apply(&e, None);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let csv = e._dir.path().join("more.csv");
    let mut more = std::fs::read_to_string(rem("accounts.csv")).unwrap();
    more.push_str("acc-3000,frank.mueller@gmx.de,false,1.00,de,0\n");
    std::fs::write(&csv, more).unwrap();
    let o = run(&["accounts", "import", s(&csv), "--db", s(&e.db)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let affected = e._dir.path().join("affected2.json");
    let o = run(&[
        "affected",
        &rem("archive.mbox"),
        "--accounts",
        s(&e.db),
        "--format",
        "json",
        "-o",
        s(&affected),
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let plan2 = e._dir.path().join("plan2.json");
    let o = run(&[
        "remediate",
        "plan",
        "--affected",
        s(&affected),
        "--db",
        s(&e.db),
        "--out",
        s(&plan2),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let tokens = || {
        let st = SqliteStore::open(&e.db).unwrap();
        ALL.iter()
            .chain(&["acc-3000"])
            .map(|a| st.tokens(a).unwrap().len())
            .sum::<usize>()
    };
    let before = (tokens(), staged(&e).len());
    let apply2 = |outbox: &Path| {
        let mut cmd = leakaudit();
        cmd.args([
            "remediate",
            "apply",
            "--plan",
            s(&plan2),
            "--db",
            s(&e.db),
            "--outbox",
            s(outbox),
            "--log",
            s(&e._dir.path().join("audit2.jsonl")),
            "--reset-base-url",
            "https://shop.example/reset",
            "--from",
            "Security <security@shop.example>",
        ]);
        cmd.output().unwrap()
    };
    let o = apply2(&e.outbox);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("were already done by plan(s)")
            && text(&o).contains("nothing was changed")
            && text(&o).contains("--new-incident"),
        "{}",
        text(&o)
    );
    assert_eq!((tokens(), staged(&e).len()), before, "no token, no message");
    let st = SqliteStore::open(&e.db).unwrap();
    assert_eq!(
        st.plans().unwrap().len(),
        1,
        "the second plan left no trace"
    );
    drop(st);

    // Made as a re-plan of the incident, it is applied as a delta, in an outbox of its own.
    let o = run(&[
        "remediate",
        "plan",
        "--affected",
        s(&affected),
        "--db",
        s(&e.db),
        "--out",
        s(&plan2),
        "--replans",
        &e.plan.display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = apply2(&e.outbox);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("holds the messages of plan") && text(&o).contains("nothing was changed"),
        "{}",
        text(&o)
    );
    assert_eq!((tokens(), staged(&e).len()), before, "no token, no message");
    let outbox2 = e._dir.path().join("outbox2");
    let o = apply2(&outbox2);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let new: Vec<_> = std::fs::read_dir(outbox2.join("staged/new"))
        .unwrap()
        .map(|f| {
            outbox::inspect(&std::fs::read(f.unwrap().path()).unwrap())
                .unwrap()
                .to
        })
        .collect();
    assert_eq!(
        new,
        [["frank.mueller@gmx.de"]],
        "one message, to the new account: it carries the new reset link"
    );
    assert_eq!(tokens(), before.0 + 1, "one reset, of the new account only");
    assert_eq!(staged(&e).len(), before.1, "the first outbox as it was");
    let o = run(&["remediate", "status", "--db", s(&e.db)]);
    assert!(text(&o).contains("covered"), "{}", text(&o));
}

/// A notice deleted from the outbox after apply: release names it as missing and says how to
/// repair it; the next apply stages it anew (no token, nothing in the store changes), and
/// release then passes.
#[test]
fn a_deleted_notice_is_staged_anew_by_the_next_apply() {
    let e = setup();
    let o = apply(&e, None);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let notice = staged(&e)
        .into_iter()
        .find(|p| {
            outbox::inspect(&std::fs::read(p).unwrap()).unwrap().to == ["frank.mueller@gmx.de"]
        })
        .expect("the notice");
    std::fs::remove_file(&notice).unwrap();
    let o = release(&e);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("run `remediate apply` again, which stages a missing notice anew"),
        "{}",
        text(&o)
    );
    let o = apply(&e, None);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("(1 of them missing from the outbox, staged anew)"),
        "{}",
        text(&o)
    );
    assert!(notice.exists());
    let o = release(&e);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(released(&e), NOTIFIED.len() + NOTICES);
}
