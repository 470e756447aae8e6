//! The webhook executor against a real HTTP server process (`tests/servers/webhook_server.py`,
//! Python 3 standard library, loopback): the demo plan through a flaky endpoint that is killed
//! midway and restarted (every action performed once by Idempotency-Key, every signature
//! verified by the server); a 4xx fails only its account; a wrong secret fails every remote
//! action and marks none done.
//!
//! The server needs `python3` (`scripts/webhook-test-deps.sh` installs it). Without it the tests skip
//! with a note; under `CI=true` they fail.

use crate::util::{fixture, leakaudit, repo_root, run, s, text};
use leakaudit_remediation::store::{AccountStore, ActionState};
use leakaudit_remediation::{read_plan, ActionKind, Plan, SqliteStore};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

const SECRET: &str = "whsec-integration-7f3a9c";

/// `python3` is there; else the test fails under CI and skips elsewhere.
fn python_or_skip() -> bool {
    let ok = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have python3 for the webhook server (scripts/webhook-test-deps.sh installs it)"
        );
        eprintln!("skipped: python3 is missing (scripts/webhook-test-deps.sh installs it)");
    }
    ok
}

/// The test server process; killed when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(secret_file: &Path, records: &Path, faults: &[&str]) -> Server {
        let mut child = Command::new("python3")
            .arg(repo_root().join("tests/servers/webhook_server.py"))
            .args(["--port", "0", "--secret-file", s(secret_file)])
            .args(["--records", s(records)])
            .args(faults)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line
            .trim()
            .strip_prefix("PORT ")
            .unwrap_or_else(|| panic!("server said {line:?}"))
            .parse()
            .unwrap();
        Server {
            child,
            url: format!("http://127.0.0.1:{port}/leakaudit/actions"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every line the server recorded.
fn records(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn events<'a>(recs: &'a [serde_json::Value], event: &str) -> Vec<&'a str> {
    recs.iter()
        .filter(|r| r["event"] == event)
        .map(|r| r["key"].as_str().unwrap())
        .collect()
}

/// A folder with the secret (0600) and a `leakaudit.toml` naming the webhook executor with
/// quick retries; `secret` is what leakaudit signs with.
struct Env {
    dir: tempfile::TempDir,
    secret_file: PathBuf,
    config: PathBuf,
    records: PathBuf,
}

fn env(secret: &str) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("webhook.secret");
    std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
    std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let server_secret = dir.path().join("server.secret");
    std::fs::write(&server_secret, SECRET).unwrap();
    let config = dir.path().join("leakaudit.toml");
    std::fs::write(
        &config,
        "[executor]\nkind = \"webhook\"\nsecret_file = \"webhook.secret\"\nsend_token = true\nmax_attempts = 8\nbackoff_base = \"20ms\"\nbackoff_max = \"200ms\"\n",
    )
    .unwrap();
    Env {
        records: dir.path().join("records.jsonl"),
        secret_file: server_secret,
        config,
        dir,
    }
}

/// The reset and review actions of a plan (what the webhook performs), by id.
fn remote_actions(plan: &Plan) -> BTreeMap<String, String> {
    plan.actions
        .iter()
        .filter(|a| {
            matches!(
                a.kind,
                ActionKind::ForcePasswordReset | ActionKind::HumanReview
            )
        })
        .map(|a| (a.id.clone(), a.account.clone()))
        .collect()
}

fn apply(e: &Env, plan: &Path, db: &Path, out: &Path, url: &str, extra: &[&str]) -> Output {
    leakaudit()
        .args(["remediate", "apply", "--plan", s(plan), "--db", s(db)])
        .args([
            "--outbox",
            s(&out.join("outbox")),
            "--log",
            s(&out.join("audit.jsonl")),
        ])
        .args(["--reset-base-url", "https://shop.example/reset"])
        .args(["--from", "Security <security@shop.example>"])
        .args(["--config", s(&e.config), "--webhook-url", url])
        .args(["--webhook-timeout", "1s"])
        .args(if extra.contains(&"--webhook-rate") {
            &[][..]
        } else {
            &["--webhook-rate", "500"]
        })
        .args(extra)
        .env_remove("LEAKAUDIT_WEBHOOK_SECRET")
        .output()
        .unwrap()
}

fn states(db: &Path, plan: &Plan) -> BTreeMap<String, (ActionState, Option<String>)> {
    SqliteStore::open(db)
        .unwrap()
        .action_states(&plan.content_hash)
        .unwrap()
        .into_iter()
        .map(|r| (r.action_id, (r.state, r.detail)))
        .collect()
}

#[test]
fn demo_plan_through_flaky_killed_webhook_performs_every_action_once() {
    if !python_or_skip() {
        return;
    }
    let e = env(SECRET);
    let out = e.dir.path().join("incident");
    let o = run(&[
        "incident",
        s(&fixture("demo/outbound.mbox")),
        "--accounts",
        s(&fixture("demo/accounts.csv")),
        "--out",
        s(&out),
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let plan_path = out.join("plan.json");
    let plan = read_plan(&plan_path).unwrap();
    let db = out.join("accounts.sqlite");
    let remote = remote_actions(&plan);
    assert!(remote.len() > 200, "{}", remote.len());

    // Every 3rd request 503, every 40th performed but answered after the client's timeout,
    // and the process SIGKILLed right after performing its 90th action (never answered).
    let faults = [
        "--fail-every",
        "3",
        "--slow-every",
        "40",
        "--slow-secs",
        "1.3",
    ];
    let mut server = Server::start(
        &e.secret_file,
        &e.records,
        &[&faults[..], &["--die-after", "90"]].concat(),
    );
    let o = apply(&e, &plan_path, &db, &out, &server.url, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("stopped, the webhook endpoint is unavailable"),
        "{}",
        text(&o)
    );
    assert!(
        !server.child.wait().unwrap().success(),
        "the server was killed"
    );
    let first = records(&e.records);
    let killed_at = *events(&first, "accepted").last().unwrap();
    let st = states(&db, &plan);
    let done = remote
        .keys()
        .filter(|id| st.get(*id).is_some_and(|(s, _)| *s == ActionState::Done))
        .count();
    assert!(done > 0 && done < remote.len(), "partially done: {done}");
    assert_ne!(st[killed_at].0, ActionState::Done, "its answer never came");
    drop(server);

    // Restarted (its records survive), the rerun finishes the plan.
    let server = Server::start(&e.secret_file, &e.records, &faults);
    let o = apply(&e, &plan_path, &db, &out, &server.url, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    let recs = records(&e.records);
    // The server verified every signature: none bad, none stale.
    for r in &recs {
        assert!(
            ["accepted", "duplicate", "injected-503"].contains(&r["event"].as_str().unwrap()),
            "{r}"
        );
    }
    assert!(!events(&recs, "injected-503").is_empty());
    // Exactly once by Idempotency-Key: every reset and review, none twice, nothing else.
    let accepted = events(&recs, "accepted");
    let unique: BTreeSet<&str> = accepted.iter().copied().collect();
    assert_eq!(unique.len(), accepted.len(), "an action performed twice");
    assert_eq!(unique, remote.keys().map(String::as_str).collect());
    // The one performed when the server died was resent with the same key and deduplicated.
    assert!(events(&recs, "duplicate").contains(&killed_at));
    // The store: every action done, the remote ones with the server's answer.
    let st = states(&db, &plan);
    assert!(st.values().all(|(s, _)| *s == ActionState::Done));
    for id in remote.keys() {
        let detail = st[id].1.as_deref().unwrap_or_default();
        assert!(detail.contains("webhook 200: {"), "{id}: {detail}");
    }
    // The link the server holds last for each reset is the notification's live token.
    let store = SqliteStore::open(&db).unwrap();
    let mut last_link: BTreeMap<&str, &str> = BTreeMap::new();
    for r in &recs {
        if let Some(link) = r["action"]["reset_link"].as_str() {
            last_link.insert(r["key"].as_str().unwrap(), link);
        }
    }
    for (id, account) in remote.iter().filter(|(id, _)| id.starts_with("force")) {
        let link = last_link[id.as_str()];
        assert!(
            link.starts_with("https://shop.example/reset?selector="),
            "{link}"
        );
        let live: Vec<_> = store
            .tokens(account)
            .unwrap()
            .into_iter()
            .filter(|t| t.is_live(chrono::Utc::now().timestamp()))
            .collect();
        assert_eq!(live.len(), 1, "{account}");
        assert!(
            link.contains(&format!("selector={}&", live[0].selector)),
            "{id}"
        );
    }
    // The audit log carries the outcome of each remote action, and verifies against the store.
    let log = std::fs::read_to_string(out.join("audit.jsonl")).unwrap();
    let with_outcome = log
        .lines()
        .filter(|l| l.contains("\"done\"") && l.contains("webhook 200: "))
        .count();
    assert_eq!(with_outcome, remote.len());
    let o = run(&[
        "remediate",
        "verify-log",
        s(&out.join("audit.jsonl")),
        "--db",
        s(&db),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // A third run sends nothing.
    let before = records(&e.records).len();
    let o = apply(&e, &plan_path, &db, &out, &server.url, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(records(&e.records).len(), before);
}

/// The small remediation fixture: accounts imported, plan written. Returns (plan, db).
fn small_plan(dir: &Path) -> (PathBuf, PathBuf) {
    let rem = |r: &str| fixture("remediation").join(r);
    let db = dir.join("accounts.db");
    let o = run(&[
        "accounts",
        "import",
        s(&rem("accounts.csv")),
        "--db",
        s(&db),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let plan = dir.join("plan.json");
    let o = run(&[
        "remediate",
        "plan",
        s(&rem("archive.mbox")),
        "--db",
        s(&db),
        "--out",
        s(&plan),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    (plan, db)
}

#[test]
fn webhook_4xx_fails_that_account_with_the_reason_and_the_rest_proceed() {
    if !python_or_skip() {
        return;
    }
    let e = env(SECRET);
    let (plan_path, db) = small_plan(e.dir.path());
    let plan = read_plan(&plan_path).unwrap();
    let server = Server::start(
        &e.secret_file,
        &e.records,
        &["--refuse-account", "acc-1005"],
    );
    let out = e.dir.path();
    let o = apply(&e, &plan_path, &db, out, &server.url, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("account acc-1005: force-password-reset:acc-1005: webhook 422: {\"error\": \"account under legal hold\"}"), "{}", text(&o));
    let st = states(&db, &plan);
    for (id, (state, detail)) in &st {
        if id.ends_with(":acc-1005") {
            assert_eq!(*state, ActionState::Failed, "{id}");
            assert!(detail.as_deref().unwrap().contains("webhook 422"), "{id}");
        } else {
            assert_eq!(*state, ActionState::Done, "{id}");
        }
    }
    let recs = records(&e.records);
    let accepted: BTreeSet<&str> = events(&recs, "accepted").into_iter().collect();
    let remote = remote_actions(&plan);
    let expected: BTreeSet<&str> = remote
        .keys()
        .map(String::as_str)
        .filter(|id| !id.ends_with(":acc-1005"))
        .collect();
    assert_eq!(accepted, expected);
}

#[test]
fn webhook_wrong_secret_all_401_nothing_remote_marked_done() {
    if !python_or_skip() {
        return;
    }
    let e = env("not-the-servers-secret");
    let (plan_path, db) = small_plan(e.dir.path());
    let plan = read_plan(&plan_path).unwrap();
    let server = Server::start(&e.secret_file, &e.records, &[]);
    let o = apply(&e, &plan_path, &db, e.dir.path(), &server.url, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let recs = records(&e.records);
    assert!(!recs.is_empty());
    assert!(
        recs.iter().all(|r| r["event"] == "bad-signature"),
        "{recs:?}"
    );
    let remote = remote_actions(&plan);
    let remote_accounts: BTreeSet<&str> = remote.values().map(String::as_str).collect();
    let st = states(&db, &plan);
    let store = SqliteStore::open(&db).unwrap();
    for a in &plan.actions {
        let (state, detail) = &st[&a.id];
        if remote_accounts.contains(a.account.as_str()) {
            assert_eq!(*state, ActionState::Failed, "{}", a.id);
            assert!(
                detail.as_deref().unwrap().contains("webhook 401"),
                "{}",
                a.id
            );
            assert!(store.tokens(&a.account).unwrap().is_empty(), "{}", a.id);
        } else {
            // Notify-only accounts involve no system of record.
            assert_eq!(*state, ActionState::Done, "{}", a.id);
        }
    }
}

#[test]
fn webhook_settings_are_validated_with_clear_errors() {
    let e = env(SECRET);
    let (plan_path, db) = small_plan(e.dir.path());
    let out = e.dir.path();
    for (url, extra, expect) in [
        (
            "http://hooks.example/x",
            &[][..],
            "plain http is allowed only to a loopback address",
        ),
        ("ftp://127.0.0.1/x", &[], "the scheme must be https"),
        (
            "https://hooks.example/x",
            &["--webhook-rate", "0"],
            "must be a positive number of requests per second",
        ),
        (
            "https://hooks.example/x",
            &["--webhook-secret-file", "/nonexistent/secret"],
            "/nonexistent/secret",
        ),
        (
            "https://hooks.example/x",
            &["--executor", "local"],
            "--webhook-url needs --executor webhook",
        ),
    ] {
        let o = apply(&e, &plan_path, &db, out, url, extra);
        assert_eq!(o.status.code(), Some(2), "{url} {extra:?}: {}", text(&o));
        assert!(text(&o).contains(expect), "{url} {extra:?}: {}", text(&o));
        assert!(!text(&o).contains("whsec"), "the secret is never printed");
    }
    // An empty secret file, and a config without any secret.
    std::fs::write(e.dir.path().join("webhook.secret"), "\n").unwrap();
    let o = apply(&e, &plan_path, &db, out, "https://hooks.example/x", &[]);
    assert!(text(&o).contains("is empty"), "{}", text(&o));
    std::fs::write(
        &e.config,
        "[executor]\nkind = \"webhook\"\nsecrets = \"x\"\n",
    )
    .unwrap();
    let o = apply(&e, &plan_path, &db, out, "https://hooks.example/x", &[]);
    assert!(text(&o).contains("unknown field `secrets`"), "{}", text(&o));
    std::fs::write(&e.config, "[executor]\nkind = \"webhook\"\n").unwrap();
    let o = apply(&e, &plan_path, &db, out, "https://hooks.example/x", &[]);
    assert!(text(&o).contains("needs its secret"), "{}", text(&o));
    // Resets whose notifications carry leakaudit's link need send_token.
    std::fs::write(e.dir.path().join("webhook.secret"), "k\n").unwrap();
    std::fs::write(
        &e.config,
        "[executor]\nkind = \"webhook\"\nsecret_file = \"webhook.secret\"\n",
    )
    .unwrap();
    let o = apply(&e, &plan_path, &db, out, "https://hooks.example/x", &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("set `send_token = true`"), "{}", text(&o));
    // Nothing was applied by any of them.
    let plan = read_plan(&plan_path).unwrap();
    assert!(states(&db, &plan).is_empty());
}

#[test]
fn incident_apply_takes_the_webhook_executor_with_the_secret_from_the_environment() {
    if !python_or_skip() {
        return;
    }
    let e = env(SECRET);
    let server = Server::start(&e.secret_file, &e.records, &["--fail-every", "4"]);
    let out = e.dir.path().join("incident");
    // No secret_file in this configuration: the secret comes from the environment only.
    std::fs::write(&e.config, "[executor]\nbackoff_base = \"20ms\"\n").unwrap();
    let o = leakaudit()
        .args(["incident", s(&fixture("remediation/archive.mbox"))])
        .args(["--accounts", s(&fixture("remediation/accounts.csv"))])
        .args(["--out", s(&out), "--apply", "--quiet"])
        .args(["--reset-base-url", "https://shop.example/reset"])
        .args(["--from", "Security <security@shop.example>"])
        .args(["--config", s(&e.config), "--executor", "webhook"])
        .args(["--webhook-url", &server.url, "--webhook-send-token"])
        .env("LEAKAUDIT_WEBHOOK_SECRET", SECRET)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(!text(&o).contains(SECRET), "the secret is never printed");
    let plan = read_plan(&out.join("plan.json")).unwrap();
    let recs = records(&e.records);
    let accepted: BTreeSet<&str> = events(&recs, "accepted").into_iter().collect();
    let remote = remote_actions(&plan);
    assert_eq!(accepted, remote.keys().map(String::as_str).collect());
    assert!(!events(&recs, "injected-503").is_empty());
    let st = states(&out.join("accounts.sqlite"), &plan);
    assert!(st.values().all(|(s, _)| *s == ActionState::Done));
    for id in remote.keys() {
        assert!(
            st[id].1.as_deref().unwrap().starts_with("webhook 200: "),
            "{id}"
        );
    }
}

/// The server really checks: a request signed with another secret, or with the right one but
/// a timestamp ten minutes old, is refused with 401 and performs nothing; the same request
/// signed now is accepted. (So "no bad-signature record" above means every signature held.)
#[test]
fn test_server_refuses_bad_and_stale_signatures() {
    use leakaudit_remediation::executor::sign::header_value;
    use std::io::{Read, Write};
    if !python_or_skip() {
        return;
    }
    let e = env(SECRET);
    let server = Server::start(&e.secret_file, &e.records, &[]);
    let addr = server
        .url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let body = br#"{"schema":"leakaudit-webhook-action","version":1,"action_id":"human-review:a1","account_id":"a1","kind":"human-review","plan_hash":"sha256:0"}"#;
    let post = |secret: &[u8], ts: i64| -> String {
        let mut c = std::net::TcpStream::connect(&addr).unwrap();
        write!(
            c,
            "POST /leakaudit/actions HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nX-Leakaudit-Timestamp: {ts}\r\nX-Leakaudit-Signature: {}\r\nIdempotency-Key: human-review:a1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            header_value(secret, ts, body),
            body.len()
        )
        .unwrap();
        c.write_all(body).unwrap();
        let mut answer = String::new();
        c.read_to_string(&mut answer).unwrap();
        answer
    };
    let now = chrono::Utc::now().timestamp();
    assert!(post(b"wrong", now).starts_with("HTTP/1.1 401"));
    assert!(post(SECRET.as_bytes(), now - 600).starts_with("HTTP/1.1 401"));
    assert!(post(SECRET.as_bytes(), now).starts_with("HTTP/1.1 200"));
    assert!(post(SECRET.as_bytes(), now).contains("duplicate"));
    let recs = records(&e.records);
    let kinds: Vec<&str> = recs.iter().map(|r| r["event"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["bad-signature", "stale", "accepted", "duplicate"]);
}
