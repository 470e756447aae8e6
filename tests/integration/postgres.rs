//! The PostgreSQL store end to end through the binary (`--db postgresql://...`): accounts
//! import, affected list, plan, apply, release; two `remediate apply` processes at once on one
//! store, round after round; an apply killed (SIGKILL) midway, then rerun. Each test works in
//! its own fresh database on the server of `LEAKAUDIT_TEST_PG_URL` (`scripts/pg.sh start`),
//! dropped afterwards. Required under CI; skipped with a note elsewhere.

use crate::remediate::{self, assert_applied_once_on, ALL, RESET, REVIEW};
use crate::util::{leakaudit, rem, run, s, text};
use leakaudit_remediation::outbox;
use leakaudit_remediation::store::AccountStore;
use leakaudit_remediation::store::PgStore;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Notified accounts of the fixture plan.
/// Messages of the fixture plan: one per notified account and one per notice.
const NOTIFIED: usize = remediate::NOTIFIED.len() + remediate::NOTICES;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The test server, or `None` (with a note) outside CI.
fn server() -> Option<String> {
    match std::env::var("LEAKAUDIT_TEST_PG_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run the PostgreSQL tests: LEAKAUDIT_TEST_PG_URL is unset (scripts/test.sh starts the server with scripts/pg.sh)"
            );
            eprintln!(
                "skipped: LEAKAUDIT_TEST_PG_URL is unset (start a server with `scripts/pg.sh start`)"
            );
            None
        }
    }
}

/// A database of its own on the test server, dropped (connections and all) at the end.
struct Db {
    admin: String,
    name: String,
    url: String,
}

impl Db {
    /// A new database, empty or a copy of `template` (store id included).
    fn new(admin: &str, template: Option<&Db>) -> Db {
        let mut b = [0u8; 6];
        getrandom_fill(&mut b);
        let name = format!("leakaudit_it_{}", hex(&b));
        let sql = match template {
            Some(t) => format!("CREATE DATABASE {name} TEMPLATE {}", t.name),
            None => format!("CREATE DATABASE {name}"),
        };
        admin_client(admin).batch_execute(&sql).unwrap();
        let (base, query) = match admin.split_once('?') {
            Some((b, q)) => (b, format!("?{q}")),
            None => (admin, String::new()),
        };
        let server = base.rsplit_once('/').map_or(base, |(s, _)| s);
        Db {
            admin: admin.to_string(),
            url: format!("{server}/{name}{query}"),
            name,
        }
    }

    fn store(&self) -> PgStore {
        PgStore::connect(&self.url).unwrap()
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

fn admin_client(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).unwrap()
}

fn getrandom_fill(b: &mut [u8]) {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(b)
        .unwrap();
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// One run's files (outbox, log) beside the plan.
struct Run {
    url: String,
    plan: PathBuf,
    outbox: PathBuf,
    log: PathBuf,
}

impl Run {
    fn new(url: &str, plan: &Path, dir: &Path) -> Run {
        std::fs::create_dir_all(dir).unwrap();
        Run {
            url: url.to_string(),
            plan: plan.to_path_buf(),
            outbox: dir.join("outbox"),
            log: dir.join("audit.jsonl"),
        }
    }

    fn apply(&self, extra: &[&str]) -> Command {
        let mut cmd = leakaudit();
        cmd.args([
            "remediate",
            "apply",
            "--plan",
            s(&self.plan),
            "--db",
            &self.url,
            "--outbox",
            s(&self.outbox),
            "--log",
            s(&self.log),
            "--reset-base-url",
            "https://shop.example/reset",
            "--from",
            "Security <security@shop.example>",
            "--batch",
            "2",
        ])
        .args(extra);
        cmd
    }

    fn staged(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = match std::fs::read_dir(self.outbox.join("staged/new")) {
            Ok(rd) => rd.map(|x| x.unwrap().path()).collect(),
            Err(_) => Vec::new(),
        };
        v.sort();
        v
    }
}

/// Accounts imported into `db` through the binary (each with a password and two sessions),
/// the affected list matched against it and the plan made for it.
fn prepare(db: &Db, dir: &Path) -> PathBuf {
    let o = run(&["accounts", "import", &rem("accounts.csv"), "--db", &db.url]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    {
        let mut st = db.store();
        for a in ALL {
            st.set_password_hash(a, Some("$argon2id$v=19$m=19456,t=2,p=1$old$old"))
                .unwrap();
            st.add_session(a, &format!("{a}-s1"), 1).unwrap();
            st.add_session(a, &format!("{a}-s2"), 1).unwrap();
        }
    }
    let o = run(&["accounts", "info", "--db", &db.url]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let affected = dir.join("affected.json");
    let o = run(&[
        "affected",
        &rem("archive.mbox"),
        "--accounts",
        &db.url,
        "--format",
        "json",
        "-o",
        s(&affected),
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let plan = dir.join("plan.json");
    let o = run(&[
        "remediate",
        "plan",
        "--affected",
        s(&affected),
        "--db",
        &db.url,
        "--out",
        s(&plan),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    plan
}

fn assert_applied_once(r: &Run, round: &str) {
    let st = PgStore::connect(&r.url).unwrap();
    assert_applied_once_on(st, &r.log, &r.url, r.apply(&[]), round);
}

#[test]
fn postgres_whole_flow_import_plan_apply_release() {
    let Some(admin) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = Db::new(&admin, None);
    let plan = prepare(&db, dir.path());
    let r = Run::new(&db.url, &plan, dir.path());
    let o = r.apply(&[]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // The store says what happened: passwords gone and sessions revoked for the resets, one
    // live token each, review flags, nothing for the others.
    let st = db.store();
    let now = now();
    for a in ALL {
        let acct = st.account(a).unwrap().unwrap();
        let reset = RESET.contains(&a);
        assert_eq!(acct.has_password, !reset, "{a}");
        assert_eq!(acct.password_reset_required, reset, "{a}");
        assert_eq!(acct.review_required, REVIEW.contains(&a), "{a}");
        assert_eq!(
            st.active_sessions(a).unwrap(),
            if reset { 0 } else { 2 },
            "{a}"
        );
        let live = st
            .tokens(a)
            .unwrap()
            .iter()
            .filter(|t| t.is_live(now))
            .count();
        assert_eq!(live, usize::from(reset), "{a}");
    }
    drop(st);
    let staged = r.staged();
    assert_eq!(staged.len(), NOTIFIED);
    for p in &staged {
        let m = outbox::inspect(&std::fs::read(p).unwrap()).unwrap();
        assert_eq!(m.to.len(), 1, "{p:?}");
    }
    let o = run(&["remediate", "status", "--db", &db.url, "--plan", s(&plan)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = run(&[
        "remediate",
        "release",
        "--outbox",
        s(&r.outbox),
        "--db",
        &db.url,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let released = std::fs::read_dir(r.outbox.join("released/new"))
        .unwrap()
        .count();
    assert_eq!(released, NOTIFIED);
    assert_applied_once(&r, "whole flow");
    // The incident command reads the same store: its report counts the applied plan's store.
    let out = dir.path().join("incident");
    let o = run(&[
        "incident",
        &rem("archive.mbox"),
        "--accounts",
        &db.url,
        "--out",
        s(&out),
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["headline"]["accounts_affected"], 13, "{summary}");
    // The password stays off the command line; what is shown never carries one.
    let o = run(&[
        "accounts",
        "info",
        "--db",
        &db.url.replacen("://", "://x:hunter2@", 1),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("PGPASSWORD") && !text(&o).contains("hunter2"),
        "{}",
        text(&o)
    );
}

#[test]
fn postgres_concurrent_applies_reset_twice_regression() {
    // Two `remediate apply` processes of one plan on one PostgreSQL store at once, ten times:
    // one holds the store's advisory lock, the other is refused naming it (or, with --wait,
    // waits and finds nothing left); never two tokens for an account, never an action logged
    // twice.
    let Some(admin) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let base = Db::new(&admin, None);
    let plan = prepare(&base, dir.path());
    for round in 0..10 {
        // A copy of the prepared store (same store id, so the same plan applies).
        let db = Db::new(&admin, Some(&base));
        let r = Run::new(&db.url, &plan, &dir.path().join(format!("round{round}")));
        let wait: &[&str] = if round % 2 == 1 {
            &["--wait", "120"]
        } else {
            &[]
        };
        let spawn = || {
            r.apply(wait)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
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
                    assert!(
                        (t.contains("another apply of plan sha256:") && t.contains(" on host "))
                            || t.contains("holder not yet recorded"),
                        "round {round}: {t}"
                    );
                    assert!(!t.contains("hunter2"));
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
}

#[test]
#[cfg_attr(
    not(feature = "crash-points"),
    ignore = "needs the crash points: scripts/test.sh (cargo test --features leakaudit/crash-points)"
)]
fn postgres_apply_killed_midway_then_rerun() {
    let Some(admin) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = Db::new(&admin, None);
    let plan = prepare(&db, dir.path());
    let r = Run::new(&db.url, &plan, dir.path());
    // The holder stops for good after its third commit (before logging it), lock held...
    let mut holder = r
        .apply(&[])
        .env("LEAKAUDIT_TEST_CRASH_AFTER", "3")
        .env("LEAKAUDIT_TEST_CRASH_POINT", "committed")
        .env("LEAKAUDIT_TEST_CRASH_MODE", "hang")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let st = db.store();
    let start = Instant::now();
    loop {
        let done = st
            .plans()
            .unwrap()
            .iter()
            .map(|p| {
                st.action_states(p)
                    .unwrap()
                    .iter()
                    .filter(|a| a.state == leakaudit_remediation::store::ActionState::Done)
                    .map(|a| a.account_id.clone())
                    .collect::<std::collections::BTreeSet<_>>()
                    .len()
            })
            .sum::<usize>();
        if done >= 3 {
            break;
        }
        assert!(
            start.elapsed().as_secs() < 180,
            "the holder never committed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(st);
    // ...a second apply is refused at once, naming it...
    let o = r.apply(&[]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("(pid {} on host ", holder.id())),
        "{}",
        text(&o)
    );
    // ...release too (the same lock)...
    let o = run(&[
        "remediate",
        "release",
        "--outbox",
        s(&r.outbox),
        "--db",
        &r.url,
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    // ...and once it is killed (SIGKILL: its session ends, the server frees the lock), the
    // next apply finishes: the third account's commit is logged on resume, not redone.
    holder.kill().unwrap();
    holder.wait().unwrap();
    // Killed again at arbitrary points in time, wherever it is.
    for delay_ms in [300u64, 900] {
        let mut child = r
            .apply(&["--wait", "30"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
    }
    let o = r.apply(&["--wait", "30"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(r.staged().len(), NOTIFIED);
    assert_applied_once(&r, "after the kills");
    // Every live link in the outbox is the one stored token of its account.
    let st = db.store();
    for p in r.staged() {
        let m = outbox::inspect(&std::fs::read(&p).unwrap()).unwrap();
        if let Some(link) = m
            .body
            .split_whitespace()
            .find(|w| w.starts_with("https://shop.example/reset?"))
        {
            let sel = link
                .split(['?', '&'])
                .find_map(|kv| kv.strip_prefix("selector="))
                .unwrap();
            let t = st.token_by_selector(sel).unwrap().expect("stored token");
            assert!(t.is_live(now()), "{p:?}");
        }
    }
}

/// The last step on PostgreSQL: `remediate send` to a real SMTP server (smtp-sink), killed
/// midway, then rerun: every released message reaches the server exactly once, the store
/// says `sent` for each, and in-doubt messages (killed mid-transaction) are only settled by
/// an explicit decision checked against what the server holds.
#[test]
fn postgres_send_killed_midway_then_rerun_mails_each_once() {
    use crate::send::{counts, free_port, kill_when, smtp_sink, Sink};
    use leakaudit_remediation::store::DeliveryState;
    let Some(admin) = server() else { return };
    let Some(sink) = smtp_sink() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = Db::new(&admin, None);
    let plan = prepare(&db, dir.path());
    let r = Run::new(&db.url, &plan, dir.path());
    let o = r.apply(&[]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = run(&[
        "remediate",
        "release",
        "--outbox",
        s(&r.outbox),
        "--db",
        &db.url,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let dumps = dir.path().join("dumps");
    let port = free_port();
    let send = |extra: &[&str]| {
        let mut cmd = leakaudit();
        cmd.args([
            "remediate",
            "send",
            "--outbox",
            s(&r.outbox),
            "--db",
            &db.url,
        ])
        .args(["--log", s(&r.log), "--smtp", &format!("127.0.0.1:{port}")])
        .args(["--tls", "none", "--no-canary"])
        .args(extra)
        .env_remove("LEAKAUDIT_SMTP_USER")
        .env_remove("LEAKAUDIT_SMTP_PASSWORD");
        cmd
    };
    {
        let _server = Sink::start(&sink, port, &dumps, &[]);
        let mut child = send(&[]).stderr(Stdio::null()).spawn().unwrap();
        kill_when(&mut child, &dumps, 4, false);
    }
    let _server = Sink::start(&sink, port, &dumps, &[]);
    let o = send(&[]).output().unwrap();
    assert!(matches!(o.status.code(), Some(0 | 2)), "{}", text(&o));
    // Settle what the kill left in doubt by what the server holds, as a responder would.
    let key_of = |st: &PgStore| {
        let plan_hash = st.plans().unwrap().pop().unwrap();
        st.deliveries(&plan_hash).unwrap()
    };
    let in_doubt: Vec<String> = key_of(&db.store())
        .into_iter()
        .filter(|d| d.state == DeliveryState::Sending)
        .map(|d| d.message_key)
        .collect();
    let got = counts(&dumps);
    for key in &in_doubt {
        let decision = if got.contains_key(key) {
            "sent"
        } else {
            "resend"
        };
        let o = send(&["--resolve-in-doubt", decision, "--message-id", key])
            .output()
            .unwrap();
        assert!(matches!(o.status.code(), Some(0 | 2)), "{}", text(&o));
    }
    let o = send(&[]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let got = counts(&dumps);
    let rows = key_of(&db.store());
    assert_eq!(rows.len(), NOTIFIED);
    for d in &rows {
        assert_eq!(d.state, DeliveryState::Sent, "{}", d.message_key);
        assert_eq!(got.get(&d.message_key), Some(&1), "{}", d.message_key);
    }
    assert_eq!(got.len(), NOTIFIED, "nothing else was sent");
    let o = run(&["remediate", "verify-log", s(&r.log), "--db", &db.url]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}
