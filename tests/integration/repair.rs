//! Safety and repair through the binary (issue 12): no placeholder sender or reset page,
//! `incident --apply` run again reports the store's totals, a deleted notification is named
//! as missing and reissued (the audit chain still verifies), accounts exports with other
//! column names, and notification templates from a folder and `leakaudit.toml`.

use crate::util::{leakaudit, rem, run, s, text};
use leakaudit_remediation::outbox;
use leakaudit_remediation::store::AccountStore;
use leakaudit_remediation::SqliteStore;
use std::path::{Path, PathBuf};
use std::process::Output;

const FROM: &str = "Security <security@shop.example>";
const RESET: &str = "https://shop.example/reset";

struct Env {
    dir: tempfile::TempDir,
    db: PathBuf,
    plan: PathBuf,
    outbox: PathBuf,
    log: PathBuf,
}

/// Accounts imported, plan written (nothing applied).
fn setup() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let db = root.join("accounts.db");
    let o = run(&["accounts", "import", &rem("accounts.csv"), "--db", s(&db)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let plan = root.join("plan.json");
    let o = run(&[
        "remediate",
        "plan",
        &rem("archive.mbox"),
        "--db",
        s(&db),
        "--out",
        s(&plan),
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    Env {
        db,
        plan,
        outbox: root.join("outbox"),
        log: root.join("audit.jsonl"),
        dir,
    }
}

fn apply(e: &Env, extra: &[&str]) -> Output {
    leakaudit()
        .current_dir(e.dir.path())
        .args(["remediate", "apply", "--plan", s(&e.plan), "--db", s(&e.db)])
        .args(["--outbox", s(&e.outbox), "--log", s(&e.log), "-q"])
        .args(extra)
        .output()
        .unwrap()
}

fn release(e: &Env) -> Output {
    leakaudit()
        .current_dir(e.dir.path())
        .args([
            "remediate",
            "release",
            "--outbox",
            s(&e.outbox),
            "--db",
            s(&e.db),
        ])
        .output()
        .unwrap()
}

fn staged(e: &Env) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = match std::fs::read_dir(e.outbox.join("staged/new")) {
        Ok(rd) => rd.map(|x| x.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// Issue 12: `remediate apply` without --from/--reset-base-url reset accounts and staged
/// mail from security@example.invalid.
#[test]
fn apply_without_sender_or_reset_page_is_refused_naming_both_settings() {
    let e = setup();
    let o = apply(&e, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    for want in [
        "--from",
        "`from` under [notifications]",
        "--reset-base-url",
        "`reset_base_url`",
    ] {
        assert!(t.contains(want), "{want}: {t}");
    }
    assert!(staged(&e).is_empty() && !e.log.exists(), "nothing done");
    let st = SqliteStore::open(&e.db).unwrap();
    assert!(st.plans().unwrap().is_empty(), "nothing recorded: {t}");
}

#[test]
fn sender_reset_page_branding_and_templates_come_from_leakaudit_toml() {
    let e = setup();
    let tpl = e.dir.path().join("tpl");
    std::fs::create_dir(&tpl).unwrap();
    std::fs::write(
        tpl.join("en.toml"),
        "subject = \"{organisation}: your address was exposed\"\ngreeting = \"Dear {organisation} customer,\"\n",
    )
    .unwrap();
    std::fs::write(
        e.dir.path().join("leakaudit.toml"),
        format!(
            "[notifications]\nfrom = \"Shop Security <security@shop.example>\"\nreset_base_url = \"{RESET}\"\norganisation = \"Shop\"\nsignature = \"Shop Security, +1 555 0100\"\ntemplates = \"tpl\"\n"
        ),
    )
    .unwrap();
    let o = apply(&e, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let mut english = 0;
    for p in staged(&e) {
        let raw = std::fs::read(&p).unwrap();
        let head = String::from_utf8_lossy(&raw);
        assert!(head.contains("From: Shop Security <security@shop.example>"));
        let m = outbox::inspect(&raw).unwrap();
        assert!(
            m.body.ends_with("Shop Security, +1 555 0100\n"),
            "{}",
            m.body
        );
        if m.language.as_deref() == Some("en") {
            english += 1;
            assert_eq!(m.subject, "Shop: your address was exposed");
            assert!(m.body.starts_with("Dear Shop customer,"), "{}", m.body);
        }
    }
    assert!(english > 0);
    let o = release(&e);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn bad_template_is_refused_with_file_and_line_before_anything_is_done() {
    let e = setup();
    let tpl = e.dir.path().join("tpl");
    std::fs::create_dir(&tpl).unwrap();
    std::fs::write(
        tpl.join("de.toml"),
        "greeting = \"Hallo,\"\nreset_done = \"Neues Passwort bis {expires}: {lnk}\"\n",
    )
    .unwrap();
    let o = apply(
        &e,
        &[
            "--from",
            FROM,
            "--reset-base-url",
            RESET,
            "--templates",
            s(&tpl),
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("de.toml:2: `reset_done`: unknown placeholder {lnk}"),
        "{t}"
    );
    assert!(
        t.contains("de.toml:2: `reset_done` must contain {link}"),
        "{t}"
    );
    assert!(staged(&e).is_empty() && !e.log.exists());
}

/// A template is no way around the outbox gate: one that shows another address is refused
/// when the command starts (issue 29), before any account is touched; the gate would refuse
/// every message it renders too.
#[test]
fn template_showing_another_address_is_refused_at_start() {
    let e = setup();
    let tpl = e.dir.path().join("tpl");
    std::fs::create_dir(&tpl).unwrap();
    std::fs::write(
        tpl.join("en.toml"),
        "greeting = \"Hello, (cc: partner-desk@reseller.example)\"\n",
    )
    .unwrap();
    let o = apply(
        &e,
        &[
            "--from",
            FROM,
            "--reset-base-url",
            RESET,
            "--templates",
            s(&tpl),
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("en.toml:1: `greeting`: an email address"), "{t}");
    assert!(
        !t.contains("partner-desk"),
        "the address is never repeated: {t}"
    );
    assert!(staged(&e).is_empty() && !e.log.exists());
    let st = SqliteStore::open(&e.db).unwrap();
    assert!(st.tokens("acc-1015").unwrap().is_empty());
    assert!(
        !st.account("acc-1015")
            .unwrap()
            .unwrap()
            .password_reset_required
    );
}

/// Issue 12: `release` let 950 placeholder mails out.
#[test]
fn release_refuses_placeholder_messages_with_exit_2() {
    let e = setup();
    let o = apply(
        &e,
        &[
            "--from",
            "Security Team <security@example.invalid>",
            "--reset-base-url",
            "https://example.invalid/account/reset",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("release will refuse"), "{}", text(&o));
    let n = staged(&e).len();
    assert!(n > 0);
    let o = release(&e);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert_eq!(
        t.matches("placeholder: ").count(),
        n,
        "one reason per message: {t}"
    );
    assert!(
        t.contains("placeholder sender security@example.invalid"),
        "{t}"
    );
    assert!(t.contains("placeholder host example.invalid"), "{t}");
    assert!(!t.contains("would expose"), "{t}");
    assert_eq!(staged(&e).len(), n, "nothing released");
}

/// Issue 12: a deleted notification made apply fail with a doubled "No such file or
/// directory", release blamed a leak, and nothing could re-issue it.
#[test]
fn deleted_notification_is_reported_missing_and_reissued() {
    let e = setup();
    let args = ["--from", FROM, "--reset-base-url", RESET];
    let o = apply(&e, &args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let before = staged(&e);
    // acc-1001 is reset and notified (fixtures/remediation/README.md).
    let victim = before
        .iter()
        .find(|p| {
            let m = outbox::inspect(&std::fs::read(p).unwrap()).unwrap();
            m.to[0] == "anna.schmidt@web.de"
        })
        .unwrap()
        .clone();
    let old_link = outbox::inspect(&std::fs::read(&victim).unwrap())
        .unwrap()
        .body
        .split_whitespace()
        .find(|w| w.starts_with(RESET))
        .unwrap()
        .to_string();
    std::fs::remove_file(&victim).unwrap();

    let o = apply(&e, &args);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("notification of account acc-1001 is missing"),
        "{t}"
    );
    assert!(!t.contains("os error 2"), "{t}");
    let o = release(&e);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("missing: ") && t.contains("account acc-1001"),
        "{t}"
    );
    assert!(!t.contains("would expose"), "{t}");

    // Not in the plan: refused, nothing changed.
    let reissue = |account: &str| {
        leakaudit()
            .current_dir(e.dir.path())
            .args(["remediate", "reissue", "--account", account])
            .args(["--db", s(&e.db), "--outbox", s(&e.outbox)])
            .args(["--plan", s(&e.plan), "--log", s(&e.log), "--from", FROM])
            .output()
            .unwrap()
    };
    let o = reissue("acc-9999");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("cannot reissue"), "{}", text(&o));

    let st = SqliteStore::open(&e.db).unwrap();
    let tokens_before = st.tokens("acc-1001").unwrap();
    drop(st);
    let o = reissue("acc-1001");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(victim.exists(), "staged again under the same name");
    let m = outbox::inspect(&std::fs::read(&victim).unwrap()).unwrap();
    let new_link = m
        .body
        .split_whitespace()
        .find(|w| w.starts_with(RESET))
        .unwrap();
    assert_ne!(new_link, old_link);
    let st = SqliteStore::open(&e.db).unwrap();
    let now = chrono::Utc::now().timestamp();
    let tokens = st.tokens("acc-1001").unwrap();
    assert_eq!(tokens.len(), tokens_before.len() + 1);
    let live: Vec<_> = tokens.iter().filter(|t| t.is_live(now)).collect();
    assert_eq!(live.len(), 1, "the old token revoked, one live");
    assert!(new_link.contains(&format!("selector={}", live[0].selector)));
    assert!(live[0].token_hash.starts_with("$argon2id$"));
    drop(st);

    let o = run(&["remediate", "verify-log", s(&e.log), "--db", s(&e.db)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let log = std::fs::read_to_string(&e.log).unwrap();
    assert!(
        log.contains("\"action_id\":\"reissue:acc-1001:1\""),
        "{log}"
    );
    assert!(!log.contains(new_link), "no token in the log");
    let o = run(&["remediate", "status", "--db", s(&e.db)]);
    assert!(stdout_has(&o, "reissue"), "{}", text(&o));
    let o = release(&e);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        std::fs::read_dir(e.outbox.join("released/new"))
            .unwrap()
            .count(),
        before.len()
    );
}

/// A reissue killed after recording its action but before the commit: the next one finishes
/// that action instead of adding a second.
#[test]
fn reissue_killed_before_commit_is_finished_not_duplicated() {
    let e = setup();
    let o = apply(&e, &["--from", FROM, "--reset-base-url", RESET]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&e.plan).unwrap()).unwrap();
    let hash = plan["content_hash"].as_str().unwrap().to_string();
    {
        let mut st = SqliteStore::open(&e.db).unwrap();
        let id = "reissue:acc-1002:1".to_string();
        st.ensure_planned(&hash, &[(id, "acc-1002".into(), "reissue".into())], 1)
            .unwrap();
    }
    let o = leakaudit()
        .current_dir(e.dir.path())
        .args(["remediate", "reissue", "--account", "acc-1002"])
        .args(["--db", s(&e.db), "--outbox", s(&e.outbox)])
        .args(["--plan", s(&e.plan), "--log", s(&e.log), "--from", FROM])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let st = SqliteStore::open(&e.db).unwrap();
    let ours: Vec<_> = st
        .action_states(&hash)
        .unwrap()
        .into_iter()
        .filter(|r| r.kind == "reissue")
        .map(|r| (r.action_id, r.state.as_str()))
        .collect();
    assert_eq!(ours, [("reissue:acc-1002:1".to_string(), "done")]);
    drop(st);
    let o = run(&["remediate", "verify-log", s(&e.log), "--db", s(&e.db)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = release(&e);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

fn stdout_has(o: &Output, what: &str) -> bool {
    String::from_utf8_lossy(&o.stdout).contains(what)
}

/// Issue 12: re-running `incident --apply` rewrote the report to "0 actions done".
#[test]
fn incident_apply_twice_reports_the_store_totals() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let go = || {
        let o = leakaudit()
            .current_dir(dir.path())
            .args([
                "incident",
                &rem("archive.mbox"),
                "--accounts",
                &rem("accounts.csv"),
            ])
            .args(["--out", s(&out), "--apply", "--from", FROM])
            .args(["--reset-base-url", RESET, "--quiet"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap())
                .unwrap();
        let html = std::fs::read_to_string(out.join("report.html")).unwrap();
        let breach = std::fs::read_to_string(out.join("breach-record.md")).unwrap();
        (summary["plan"]["done"].as_u64().unwrap(), html, breach)
    };
    let (first, html1, breach1) = go();
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("plan.json")).unwrap()).unwrap();
    let actions = plan["actions"].as_array().unwrap().len() as u64;
    assert_eq!(first, actions, "every planned action done");
    let (second, html2, breach2) = go();
    assert_eq!(second, first, "the second run shows the store's totals");
    let line = format!("Applied: {first} actions done, 0 failed.");
    assert!(html1.contains(&line) && html2.contains(&line), "{line}");
    let line = format!("Actions done: {first}; failed: 0.");
    assert!(breach1.contains(&line) && breach2.contains(&line), "{line}");
}

fn export(dir: &Path) -> PathBuf {
    let p = dir.join("export.csv");
    std::fs::write(
        &p,
        "user_id,email_address,mfa_enabled,balance_usd,locale\n\
         u1,anna@web.de,Enabled,10.50,de\n\
         u2,bob@gmail.com,off,,en\n\
         u3,carl@gmail.com,YES,3,en\n",
    )
    .unwrap();
    p
}

/// Issue 12: an export named `user_id,email_address,mfa_enabled,balance_usd` was refused.
#[test]
fn export_with_other_column_names_imports_with_map() {
    let dir = tempfile::tempdir().unwrap();
    let csv = export(dir.path());
    let db = dir.path().join("a.db");
    let map = "user_id=id,email_address=email,mfa_enabled=has_2fa,balance_usd=balance";
    let o = run(&["accounts", "import", s(&csv), "--db", s(&db), "--map", map]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("export.csv:3: column `balance_usd` (balance): empty")
            && t.contains("--empty-balance zero"),
        "{t}"
    );
    let o = run(&[
        "accounts",
        "import",
        s(&csv),
        "--db",
        s(&db),
        "--map",
        map,
        "--empty-balance",
        "zero",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let st = SqliteStore::open(&db).unwrap();
    let bob = st.account("u2").unwrap().unwrap();
    assert_eq!((bob.balance, bob.has_2fa), (0.0, false));
    assert!(st.account("u1").unwrap().unwrap().has_2fa);
}

#[test]
fn accounts_table_of_leakaudit_toml_maps_the_export() {
    let dir = tempfile::tempdir().unwrap();
    let csv = export(dir.path());
    std::fs::write(
        dir.path().join("leakaudit.toml"),
        "[accounts]\nempty_balance = \"zero\"\n[accounts.map]\nuser_id = \"id\"\nemail_address = \"email\"\nmfa_enabled = \"has_2fa\"\nbalance_usd = \"balance\"\n",
    )
    .unwrap();
    let o = leakaudit()
        .current_dir(dir.path())
        .args(["accounts", "import", s(&csv), "--db", "a.db"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let st = SqliteStore::open(&dir.path().join("a.db")).unwrap();
    assert_eq!(st.account_count().unwrap(), 3);
}

/// Issue 12: a refused export still left an empty store behind.
#[test]
fn failed_import_leaves_no_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("new.db");
    let o = run(&[
        "accounts",
        "import",
        &rem("accounts-bad.csv"),
        "--db",
        s(&db),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // An existing store is left as it was.
    let o = run(&["accounts", "import", &rem("accounts.csv"), "--db", s(&db)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let n = SqliteStore::open(&db).unwrap().account_count().unwrap();
    let o = run(&[
        "accounts",
        "import",
        &rem("accounts-bad.csv"),
        "--db",
        s(&db),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(db.exists());
    assert_eq!(SqliteStore::open(&db).unwrap().account_count().unwrap(), n);
}

/// `incident --accounts EXPORT.csv` reads `[accounts]` too, and a refused export leaves no
/// `DIR/accounts.sqlite` behind.
#[test]
fn incident_imports_a_mapped_export_and_leaves_no_store_on_failure() {
    let dir = tempfile::tempdir().unwrap();
    let original = std::fs::read_to_string(rem("accounts.csv")).unwrap();
    let (head, rows) = original.split_once('\n').unwrap();
    assert!(head.starts_with("id,email,has_2fa,balance,"), "{head}");
    let csv = dir.path().join("export.csv");
    let renamed = head.replacen(
        "id,email,has_2fa,balance,",
        "user_id,email_address,mfa_enabled,balance_usd,",
        1,
    );
    std::fs::write(&csv, format!("{renamed}\n{rows}")).unwrap();
    let incident = |out: &Path| {
        leakaudit()
            .current_dir(dir.path())
            .args(["incident", &rem("archive.mbox"), "--accounts", s(&csv)])
            .args(["--out", s(out), "--quiet"])
            .output()
            .unwrap()
    };
    let out = dir.path().join("refused");
    let o = incident(&out);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("missing required column(s)"),
        "{}",
        text(&o)
    );
    assert!(!out.join("accounts.sqlite").exists());
    std::fs::write(
        dir.path().join("leakaudit.toml"),
        "[accounts.map]\nuser_id = \"id\"\nemail_address = \"email\"\nmfa_enabled = \"has_2fa\"\nbalance_usd = \"balance\"\n",
    )
    .unwrap();
    let out = dir.path().join("mapped");
    let o = incident(&out);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let st = SqliteStore::open(&out.join("accounts.sqlite")).unwrap();
    assert_eq!(st.account_count().unwrap() as usize, rows.lines().count());
}
