//! `leakaudit remediate send` against a real SMTP server process: Postfix's `smtp-sink` on a
//! loopback port, dumping every message it accepts to a folder, and for TLS (which smtp-sink
//! lacks) a small Python standard-library relay (both installed by `scripts/smtp.sh`). Each
//! test applies and releases a plan, sends, and counts what the server received by
//! Message-ID: every released message exactly once, after kills, a server that is down,
//! transient and permanent refusals; placeholders, stale messages and canaries refused.

use crate::util::{fixture, leakaudit, run, s, text};
use leakaudit_remediation::store::{AccountStore, DeliveryState};
use leakaudit_remediation::{audit, outbox, SqliteStore};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The smtp-sink binary, or `None` (a skip outside CI; under `CI` its absence fails).
pub(crate) fn smtp_sink() -> Option<PathBuf> {
    // Debian puts it outside a user's PATH.
    tool_in("smtp-sink", &["/usr/sbin", "/usr/lib/postfix"])
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One smtp-sink process on 127.0.0.1, dumping each accepted message into `dumps`; stopped
/// (by its pid) when dropped.
pub(crate) struct Sink {
    child: Child,
}

impl Sink {
    pub(crate) fn start(bin: &Path, port: u16, dumps: &Path, extra: &[&str]) -> Sink {
        Sink::start_logged(bin, port, dumps, extra, None)
    }

    /// With `log`, the SMTP conversation (`-v`) goes to that file.
    fn start_logged(
        bin: &Path,
        port: u16,
        dumps: &Path,
        extra: &[&str],
        log: Option<&Path>,
    ) -> Sink {
        std::fs::create_dir_all(dumps).unwrap();
        let mut cmd = Command::new(bin);
        if is_root() {
            // smtp-sink refuses to run as root; `nobody` must be able to write the dumps.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dumps, std::fs::Permissions::from_mode(0o777)).unwrap();
            if let Some(parent) = dumps.parent() {
                std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o711)).unwrap();
            }
            cmd.args(["-u", "nobody"]);
        }
        if log.is_some() {
            cmd.arg("-v");
        }
        cmd.args(extra)
            .arg("-d")
            .arg(format!("{}/%Y%m%d%H%M%S.", dumps.display()))
            .arg(format!("127.0.0.1:{port}"))
            .arg("64")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(log) = log {
            let f = std::fs::File::create(log).unwrap();
            cmd.stdout(f.try_clone().unwrap()).stderr(f);
        }

        let child = cmd.spawn().expect("start smtp-sink");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "smtp-sink did not start on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Sink { child }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_root() -> bool {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() == 0 }
}

/// One message as the server received it.
#[derive(Debug)]
struct Dumped {
    rcpt: String,
    message_id: Option<String>,
    /// The message after smtp-sink's own headers.
    message: String,
}

fn dumps(dir: &Path) -> Vec<Dumped> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        let rcpt = text
            .lines()
            .find_map(|l| l.strip_prefix("X-Rcpt-Args: "))
            .unwrap_or("")
            .trim_matches(['<', '>'])
            .to_string();
        let message = after_sink_headers(&text).to_string();
        let message_id = message
            .lines()
            .take_while(|l| !l.is_empty())
            .find_map(|l| l.strip_prefix("Message-ID: "))
            .map(str::to_string);
        out.push(Dumped {
            rcpt,
            message_id,
            message,
        });
    }
    out
}

/// A message as smtp-sink dumped it, after the sink's own headers (its Received header, three
/// lines, ends them).
pub(crate) fn after_sink_headers(text: &str) -> &str {
    let start = text.find("\nReceived: from ").map_or(0, |i| {
        let mut pos = i + 1;
        for _ in 0..3 {
            pos += text[pos..].find('\n').map_or(text.len() - pos, |n| n + 1);
        }
        pos
    });
    &text[start..]
}

/// Received copies per Message-ID.
pub(crate) fn counts(dir: &Path) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for d in dumps(dir) {
        if let Some(id) = d.message_id {
            *m.entry(id).or_default() += 1;
        }
    }
    m
}

struct Env {
    dir: tempfile::TempDir,
    db: PathBuf,
    outbox: PathBuf,
    log: PathBuf,
}

impl Env {
    fn dumps(&self) -> PathBuf {
        self.dir.path().join("dumps")
    }

    /// (Message-ID, recipient, bytes) of every released message, by file name.
    fn released(&self) -> Vec<(String, String, Vec<u8>)> {
        let dir = self.outbox.join("released/new");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| {
                let bytes = std::fs::read(p).unwrap();
                let raw = String::from_utf8_lossy(&bytes).into_owned();
                let id = raw
                    .lines()
                    .find_map(|l| l.strip_prefix("Message-ID: "))
                    .unwrap()
                    .to_string();
                let to = outbox::inspect(&bytes).unwrap().to[0].clone();
                (id, to, bytes)
            })
            .collect()
    }

    fn states(&self) -> BTreeMap<String, (DeliveryState, Option<String>)> {
        let store = SqliteStore::open(&self.db).unwrap();
        let plan = store.plans().unwrap().pop().unwrap();
        store
            .deliveries(&plan)
            .unwrap()
            .into_iter()
            .map(|d| (d.message_key, (d.state, d.reply)))
            .collect()
    }

    fn send(&self, port: u16, extra: &[&str]) -> Output {
        self.send_cmd(port, extra).output().unwrap()
    }

    fn send_cmd(&self, port: u16, extra: &[&str]) -> Command {
        let mut cmd = leakaudit();
        cmd.current_dir(self.dir.path())
            .args(["remediate", "send", "--outbox", s(&self.outbox)])
            .args(["--db", s(&self.db), "--log", s(&self.log)])
            .args(["--smtp", &format!("127.0.0.1:{port}"), "--tls", "none"])
            .args(extra)
            .env_remove("LEAKAUDIT_SMTP_USER")
            .env_remove("LEAKAUDIT_SMTP_PASSWORD");
        cmd
    }

    fn verify_log(&self) {
        let o = run(&["remediate", "verify-log", s(&self.log), "--db", s(&self.db)]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }
}

/// Accounts, affected list, plan and apply of `archive` + `accounts` with `from` and
/// `reset_base`; released by `remediate release` when `release`.
fn applied(archive: &Path, accounts: &Path, from: &str, reset_base: &str, release: bool) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let db = root.join("accounts.db");
    let o = run(&["accounts", "import", s(accounts), "--db", s(&db)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let affected = root.join("affected.json");
    let o = run(&[
        "affected",
        s(archive),
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
    let env = Env {
        outbox: root.join("outbox"),
        log: root.join("audit.jsonl"),
        db,
        dir,
    };
    let o = run(&[
        "remediate",
        "apply",
        "--plan",
        s(&plan),
        "--db",
        s(&env.db),
        "--outbox",
        s(&env.outbox),
        "--log",
        s(&env.log),
        "--reset-base-url",
        reset_base,
        "--from",
        from,
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    if release {
        let o = run(&[
            "remediate",
            "release",
            "--outbox",
            s(&env.outbox),
            "--db",
            s(&env.db),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }
    env
}

/// The small fixture (13 notifications, 7 with a reset link, and 1 notice to an exposed
/// address without an account), applied and released.
fn small() -> Env {
    applied(
        &fixture("remediation/archive.mbox"),
        &fixture("remediation/accounts.csv"),
        "Security <security@shop.example>",
        "https://shop.example/reset",
        true,
    )
}

/// Every released message was received exactly once, by its recipient, as released; the
/// store says sent for each; the audit log verifies against the store.
fn assert_delivered_once(e: &Env) {
    let got = counts(&e.dumps());
    let released = e.released();
    for (id, _, _) in &released {
        assert_eq!(
            got.get(id),
            Some(&1),
            "{id} received {:?} times",
            got.get(id)
        );
    }
    let states = e.states();
    for (id, _, _) in &released {
        assert_eq!(
            states.get(id).map(|s| s.0),
            Some(DeliveryState::Sent),
            "{id}"
        );
    }
    let real: Vec<_> = got.keys().filter(|k| !k.contains("<canary.")).collect();
    assert_eq!(real.len(), released.len(), "nothing else was sent");
    e.verify_log();
}

#[test]
fn demo_outbox_canary_then_every_message_exactly_once() {
    let Some(bin) = smtp_sink() else { return };
    let e = applied(
        &fixture("demo/outbound.mbox"),
        &fixture("demo/accounts.csv"),
        "Security <security@shop.example>",
        "https://shop.example/reset",
        true,
    );
    let port = free_port();
    let _sink = Sink::start(&bin, port, &e.dumps(), &[]);
    let released = e.released();
    // 597 account holders and 202 exposed addresses without an account (issue 29).
    assert_eq!(released.len(), 597 + 202);

    // No real send before a decision on the canary step.
    let o = e.send(port, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("send a canary first"), "{}", text(&o));
    let o = e.send(port, &["--canary-confirmed"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("no canary copy"), "{}", text(&o));
    assert!(dumps(&e.dumps()).is_empty());

    // The canary step: redacted copies, only to the canaries, then it stops.
    let canaries = ["team@shop.example", "lead@shop.example"];
    let o = e.send(port, &["--canary", &canaries.join(",")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("--canary-confirmed"), "{}", text(&o));
    let copies = dumps(&e.dumps());
    // One copy per (language, with/without link) and one of the notice without an account
    // (English, no link): 5 languages x 2 + 1, to each canary.
    assert_eq!(copies.len(), 22, "{copies:#?}");
    let store = SqliteStore::open(&e.db).unwrap();
    let plan = store.plans().unwrap().pop().unwrap();
    let tokens: Vec<String> = store
        .action_states(&plan)
        .unwrap()
        .iter()
        .flat_map(|a| store.tokens(&a.account_id).unwrap())
        .map(|t| t.selector)
        .collect();
    assert!(tokens.len() >= 204);
    let mut with_link_removed = 0;
    for c in &copies {
        assert!(canaries.contains(&c.rcpt.as_str()), "{}", c.rcpt);
        let m = outbox::inspect(c.message.as_bytes()).unwrap();
        assert_eq!(m.to, vec![c.rcpt.clone()]);
        assert!(m.subject.starts_with("[CANARY]"), "{}", m.subject);
        assert!(m.body.contains("CANARY COPY"));
        assert!(
            !m.body.contains("token="),
            "a canary got a token: {}",
            m.body
        );
        assert!(!m.body.contains("selector="), "{}", m.body);
        assert!(tokens
            .iter()
            .all(|t| !c.message.contains(t) && !m.body.contains(t)));
        with_link_removed += m.body.contains(outbox::send::REDACTED_LINK) as usize;
    }
    assert_eq!(with_link_removed, 10);
    let langs: BTreeSet<String> = copies
        .iter()
        .map(|c| {
            outbox::inspect(c.message.as_bytes())
                .unwrap()
                .language
                .unwrap()
        })
        .collect();
    assert_eq!(langs.len(), 5, "{langs:?}");
    assert!(copies.iter().all(|c| !released
        .iter()
        .any(|(_, to, _)| c.message.contains(to.as_str()))));

    // The real send: every message once, as released (CRLF on the wire, LF in the dump).
    let o = e.send(port, &["--canary-confirmed"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("799 message(s): sent 799, already sent 0"),
        "{}",
        text(&o)
    );
    assert_delivered_once(&e);
    let by_id: BTreeMap<String, Dumped> = dumps(&e.dumps())
        .into_iter()
        .filter_map(|d| d.message_id.clone().map(|id| (id, d)))
        .collect();
    for (id, to, bytes) in &released {
        let d = &by_id[id];
        assert_eq!(&d.rcpt, to);
        let sent = d.message.strip_suffix('\n').unwrap_or(&d.message);
        assert_eq!(sent.as_bytes(), &bytes[..], "{id} changed on the way");
    }
    let o = run(&["remediate", "status", "--db", s(&e.db)]);
    assert!(
        text(&o).contains("send: sent 799, deferred 0, failed 0, in doubt 0 (canary copies 22)"),
        "{}",
        text(&o)
    );
    // Sent once, never again.
    let o = e.send(port, &["--canary-confirmed"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("sent 0, already sent 799"),
        "{}",
        text(&o)
    );
    assert_delivered_once(&e);
    let entries = audit::read_entries(&e.log).unwrap();
    assert_eq!(
        entries
            .iter()
            .filter(|x| x.action == "send" && x.result == "sent")
            .count(),
        799
    );
    assert!(entries
        .iter()
        .all(|x| !x.detail.clone().unwrap_or_default().contains('@')));
}

/// Waits until `dir` holds a dump with `n` distinct Message-IDs (or `n` files when `files`),
/// then kills `child` with SIGKILL.
pub(crate) fn kill_when(child: &mut Child, dir: &Path, n: usize, files: bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let have = if files {
            std::fs::read_dir(dir).map_or(0, |r| r.count())
        } else {
            counts(dir).len()
        };
        if have >= n {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the send never reached message {n}"
        );
        assert!(child.try_wait().unwrap().is_none(), "send exited early");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
}

#[test]
fn killed_send_leaves_messages_in_doubt_until_a_responder_decides() {
    let Some(bin) = smtp_sink() else { return };
    let e = small();
    let released = e.released();
    assert_eq!(released.len(), 14);
    let port = free_port();
    {
        let _sink = Sink::start(&bin, port, &e.dumps(), &[]);
        let o = e.send(port, &["--no-canary", "--limit", "3"]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains("sent 3, already sent 0"), "{}", text(&o));
    }
    // Killed while the server holds the 4th message's data but has not answered: it has it.
    let taken = released[3].0.clone();
    {
        let _sink = Sink::start(&bin, port, &e.dumps(), &["-W", ".:120"]);
        let mut child = e
            .send_cmd(port, &["--no-canary"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        kill_when(&mut child, &e.dumps(), 4, false);
    }
    assert_eq!(counts(&e.dumps()).get(&taken), Some(&1));
    // Killed while waiting for the answer to DATA: the 5th message never went out.
    let lost = released[4].0.clone();
    {
        let _sink = Sink::start(&bin, port, &e.dumps(), &["-W", "data:120"]);
        let mut child = e
            .send_cmd(port, &["--no-canary"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        kill_when(&mut child, &e.dumps(), 5, true);
    }
    assert_eq!(counts(&e.dumps()).get(&lost), None);
    let states = e.states();
    assert_eq!(states[&taken].0, DeliveryState::Sending);
    assert_eq!(states[&lost].0, DeliveryState::Sending);

    let _sink = Sink::start(&bin, port, &e.dumps(), &[]);
    // Never resent on its own: the rest goes, the two are reported.
    let o = e.send(port, &["--no-canary"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("sent 9, already sent 3, deferred 0, failed 0, in doubt 2"),
        "{t}"
    );
    assert!(
        t.contains("in doubt: account") && t.contains(&taken) && t.contains(&lost),
        "{t}"
    );
    assert!(t.contains("--resolve-in-doubt sent"), "{t}");
    let o = run(&["remediate", "status", "--db", s(&e.db)]);
    assert!(
        text(&o).contains("send: sent 12, deferred 0, failed 0, in doubt 2"),
        "{}",
        text(&o)
    );
    assert_eq!(counts(&e.dumps()).get(&taken), Some(&1));
    assert_eq!(counts(&e.dumps()).get(&lost), None);
    // A decision naming no in-doubt message is refused.
    let o = e.send(
        port,
        &["--resolve-in-doubt", "sent", "--message-id", &released[0].0],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("no message of plan"), "{}", text(&o));
    // The relay's log shows the 4th: recorded as sent, nothing sent.
    let o = e.send(
        port,
        &["--resolve-in-doubt", "sent", "--message-id", &taken],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("in doubt 1"), "{}", text(&o));
    assert_eq!(e.states()[&taken].0, DeliveryState::Sent);
    // The 5th is not in it: sent again, once.
    let o = e.send(port, &["--resolve-in-doubt", "resend", "--no-canary"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("sent 1, already sent 13"), "{}", text(&o));
    assert_delivered_once(&e);
    let results: Vec<String> = audit::read_entries(&e.log)
        .unwrap()
        .into_iter()
        .map(|x| x.result)
        .collect();
    assert!(results.contains(&"in-doubt-resolved-sent".to_string()));
    assert!(results.contains(&"in-doubt-resolved-resend".to_string()));
}

#[test]
fn server_down_defers_and_the_rerun_sends() {
    let Some(bin) = smtp_sink() else { return };
    let e = small();
    let port = free_port();
    let o = e.send(port, &["--no-canary"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("cannot connect to 127.0.0.1"), "{t}");
    assert!(
        t.contains("sent 0, already sent 0, deferred 1, failed 0, in doubt 0, not attempted 13"),
        "{t}"
    );
    let states = e.states();
    assert_eq!(states.len(), 1);
    let (state, reply) = states.values().next().unwrap();
    assert_eq!(*state, DeliveryState::Deferred);
    assert!(reply.as_deref().unwrap().contains("cannot connect"));
    let _sink = Sink::start(&bin, port, &e.dumps(), &[]);
    let o = e.send(port, &["--no-canary"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("sent 14"), "{}", text(&o));
    assert_delivered_once(&e);
}

#[test]
fn refusals_classified_permanent_failed_with_reply_transient_deferred() {
    let Some(bin) = smtp_sink() else { return };
    let e = small();
    let released = e.released();
    let port = free_port();
    {
        let reply = "550 5.1.1 Recipient address rejected: User unknown";
        let _sink = Sink::start(&bin, port, &e.dumps(), &["-f", "rcpt", "-B", reply]);
        let o = e.send(port, &["--no-canary", "--limit", "1"]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains("failed: account"), "{}", text(&o));
    }
    {
        let _sink = Sink::start(&bin, port, &e.dumps(), &["-r", "rcpt"]);
        let o = e.send(port, &["--no-canary", "--limit", "1"]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    }
    let states = e.states();
    let (first, second) = (&released[0].0, &released[1].0);
    assert_eq!(states[first].0, DeliveryState::Failed);
    assert_eq!(
        states[first].1.as_deref(),
        Some("550 5.1.1 Recipient address rejected: User unknown")
    );
    assert_eq!(states[second].0, DeliveryState::Deferred);
    assert!(
        states[second].1.as_deref().unwrap().starts_with("450 "),
        "{states:?}"
    );
    let _sink = Sink::start(&bin, port, &e.dumps(), &[]);
    let o = e.send(port, &["--no-canary"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("sent 13, already sent 0, deferred 0, failed 1"),
        "{t}"
    );
    assert!(t.contains("550 5.1.1 Recipient address rejected"), "{t}");
    assert_eq!(counts(&e.dumps()).get(first), None);
    let o = e.send(port, &["--no-canary", "--retry-failed"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_delivered_once(&e);
}

#[test]
fn placeholder_sender_and_links_are_refused_before_anything_is_sent() {
    let Some(bin) = smtp_sink() else { return };
    // What `apply` stages with the built-in placeholders, released by hand (or by an older
    // release): nothing of it may reach a user.
    let e = applied(
        &fixture("remediation/archive.mbox"),
        &fixture("remediation/accounts.csv"),
        "Security Team <security@example.invalid>",
        "https://example.invalid/account/reset",
        false,
    );
    let released = e.outbox.join("released/new");
    std::fs::create_dir_all(&released).unwrap();
    for f in std::fs::read_dir(e.outbox.join("staged/new")).unwrap() {
        let f = f.unwrap().path();
        std::fs::rename(&f, released.join(f.file_name().unwrap())).unwrap();
    }
    let port = free_port();
    let _sink = Sink::start(&bin, port, &e.dumps(), &[]);
    for extra in [&["--no-canary"][..], &["--canary", "team@shop.example"][..]] {
        let o = e.send(port, extra);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        let t = text(&o);
        assert!(
            t.contains("placeholder sender security@example.invalid"),
            "{t}"
        );
        assert!(t.contains("placeholder host example.invalid"), "{t}");
        assert!(t.contains("nothing sent: 14 message(s)"), "{t}");
    }
    assert!(dumps(&e.dumps()).is_empty());
    assert!(e.states().is_empty());
}

#[test]
fn unencrypted_smtp_to_another_host_and_argv_secrets_are_refused() {
    let e = small();
    let o = leakaudit()
        .args([
            "remediate",
            "send",
            "--outbox",
            s(&e.outbox),
            "--db",
            s(&e.db),
        ])
        .args([
            "--log",
            s(&e.log),
            "--smtp",
            "192.0.2.1:25",
            "--tls",
            "none",
        ])
        .args(["--no-canary"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("only to a loopback address"),
        "{}",
        text(&o)
    );
    // There is no flag taking a password.
    let o = run(&["remediate", "send", "--help"]);
    let help = text(&o);
    assert!(!help.contains("--password") && !help.contains("--smtp-password"));
    assert!(help.contains("LEAKAUDIT_SMTP_PASSWORD"));
}

#[test]
fn smtp_table_in_config_and_credentials_from_env_or_file_never_shown() {
    use base64::Engine as _;
    let Some(bin) = smtp_sink() else { return };
    let e = small();
    let port = free_port();
    let conversation = e.dir.path().join("smtp-sink.log");
    let sink = Sink::start_logged(&bin, port, &e.dumps(), &[], Some(&conversation));
    let config = e.dir.path().join("leakaudit.toml");
    std::fs::write(
        &config,
        format!("[smtp]\nserver = \"127.0.0.1:{port}\"\ntls = \"none\"\nrate = \"50/s\"\n"),
    )
    .unwrap();
    let password = "S3cret-pw-9f1c";
    let send = |extra: &[&str], env: &[(&str, &str)]| {
        let mut cmd = leakaudit();
        cmd.current_dir(e.dir.path())
            .args([
                "remediate",
                "send",
                "--outbox",
                s(&e.outbox),
                "--db",
                s(&e.db),
            ])
            .args(["--log", s(&e.log), "--no-canary"])
            .args(extra)
            .env_remove("LEAKAUDIT_SMTP_USER")
            .env_remove("LEAKAUDIT_SMTP_PASSWORD")
            .envs(env.iter().copied());
        cmd.output().unwrap()
    };
    // Server, security and rate from ./leakaudit.toml; the login from the environment.
    let o = send(
        &["--limit", "2"],
        &[
            ("LEAKAUDIT_SMTP_USER", "relay-user"),
            ("LEAKAUDIT_SMTP_PASSWORD", password),
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("sent 2, already sent 0"), "{}", text(&o));
    assert!(!text(&o).contains(password));
    let plain = |user: &str, pass: &str| {
        base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{pass}"))
    };
    let said = std::fs::read_to_string(&conversation).unwrap();
    assert!(said.contains(&plain("relay-user", password)), "{said}");
    // One of the two without the other is an error, not an anonymous send.
    let o = send(&[], &[("LEAKAUDIT_SMTP_USER", "relay-user")]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("or neither"), "{}", text(&o));
    // A credentials file: refused while others can read it, used once it is private.
    let creds = e.dir.path().join("smtp-credentials");
    std::fs::write(&creds, format!("file-user\n{password}-2\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = send(&["--smtp-credentials", s(&creds)], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("chmod 600"), "{}", text(&o));
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = send(&["--smtp-credentials", s(&creds)], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!text(&o).contains(password));
    drop(sink);
    let said = std::fs::read_to_string(&conversation).unwrap();
    assert!(said.contains(&plain("file-user", &format!("{password}-2"))));
    assert_delivered_once(&e);
    for f in [&e.log, &e.db] {
        let bytes = std::fs::read(f).unwrap();
        assert!(
            !bytes
                .windows(password.len())
                .any(|w| w == password.as_bytes()),
            "{} holds the password",
            f.display()
        );
    }
    // A misspelt key of [smtp] is reported where it is.
    std::fs::write(&config, "[smtp]\nservr = \"127.0.0.1:25\"\n").unwrap();
    let o = send(&[], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("leakaudit.toml:2:1"), "{}", text(&o));
    assert!(text(&o).contains("servr"), "{}", text(&o));
}

#[test]
fn starttls_asked_of_a_relay_without_it_sends_nothing() {
    let Some(bin) = smtp_sink() else { return };
    let e = small();
    let port = free_port();
    let _sink = Sink::start(&bin, port, &e.dumps(), &[]);
    // The relay offers no STARTTLS: nothing may go out in clear instead.
    let o = leakaudit()
        .args([
            "remediate",
            "send",
            "--outbox",
            s(&e.outbox),
            "--db",
            s(&e.db),
        ])
        .args(["--log", s(&e.log), "--no-canary", "--tls", "starttls"])
        .args(["--smtp", &format!("127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("does not offer STARTTLS"), "{t}");
    assert!(
        t.contains("deferred 1, failed 0, in doubt 0, not attempted 13"),
        "{t}"
    );
    assert!(dumps(&e.dumps()).is_empty());
}

/// A small SMTP server (Python's standard library) that speaks TLS, which smtp-sink cannot:
/// STARTTLS (`starttls`: DATA refused before it) or TLS from the first byte (`implicit`);
/// accepts any AUTH; writes each message to DUMPS as received (dot-unstuffed).
const TLS_SERVER: &str = r#"
import os, socket, ssl, sys, threading, itertools
port, mode, cert, key, dumps = sys.argv[1:6]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
seq = itertools.count()
def serve(conn):
    tls = False
    if mode == "implicit":
        conn = ctx.wrap_socket(conn, server_side=True); tls = True
    f = conn.makefile("rwb")
    def say(s):
        f.write(s.encode() + b"\r\n"); f.flush()
    say("220 tls-test ESMTP")
    rcpt = ""
    while True:
        line = f.readline()
        if not line:
            return
        cmd = line.decode("utf-8", "replace").strip(); up = cmd.upper()
        if up.startswith("EHLO"):
            say("250-tls-test"); say("250-AUTH PLAIN LOGIN")
            say("250 STARTTLS" if not tls else "250 8BITMIME")
        elif up == "STARTTLS" and not tls:
            say("220 2.0.0 Ready to start TLS")
            conn = ctx.wrap_socket(conn, server_side=True); tls = True
            f = conn.makefile("rwb")
        elif up.startswith("AUTH"):
            say("235 2.7.0 Authentication successful")
        elif up.startswith("RCPT"):
            rcpt = cmd[8:].strip(); say("250 2.1.5 Ok")
        elif up.startswith(("MAIL", "RSET", "NOOP")):
            say("250 2.0.0 Ok")
        elif up == "DATA":
            if not tls:
                say("530 5.7.0 Must issue a STARTTLS command first"); continue
            say("354 End data with <CR><LF>.<CR><LF>")
            data = []
            while True:
                l = f.readline()
                if not l or l == b".\r\n":
                    break
                data.append(l[1:] if l.startswith(b"..") else l)
            body = b"X-Rcpt-Args: " + rcpt.encode() + b"\nReceived: from tls-test\n\tby tls-test\n\tnow\n"
            body += b"".join(data).replace(b"\r\n", b"\n") + b"\n"
            with open(os.path.join(dumps, "m%d.%d" % (os.getpid(), next(seq))), "wb") as out:
                out.write(body)
            say("250 2.0.0 Ok: queued")
        elif up == "QUIT":
            say("221 2.0.0 Bye"); return
        else:
            say("502 5.5.2 Error: command not recognized")
def guarded(conn):
    try:
        serve(conn)
    except (OSError, ssl.SSLError):
        pass
    finally:
        conn.close()
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(port))); srv.listen(16)
while True:
    c, _ = srv.accept()
    threading.Thread(target=guarded, args=(c,), daemon=True).start()
"#;

/// `program` on PATH, or `None` (a skip outside CI; under `CI` its absence fails).
fn tool(program: &str) -> Option<PathBuf> {
    tool_in(program, &[])
}

/// `program` on PATH or in one of `extra` folders, or `None` (a skip outside CI; under `CI`
/// its absence fails).
fn tool_in(program: &str, extra: &[&str]) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain(extra.iter().map(PathBuf::from))
        .map(|d| d.join(program))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have {program}: scripts/smtp.sh installs it"
        );
        eprintln!("skipped: {program} is not installed (run scripts/smtp.sh)");
    }
    found
}

/// A test CA and a server certificate it signed for 127.0.0.1: (ca.pem, cert.pem, key.pem).
fn test_pki(openssl: &Path, dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let p = |n: &str| dir.join(n);
    let ok = |args: &[&str]| {
        let o = Command::new(openssl).args(args).output().unwrap();
        assert!(o.status.success(), "openssl {args:?}: {}", text(&o));
    };
    ok(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=leakaudit test CA",
        "-keyout",
        s(&p("ca.key")),
        "-out",
        s(&p("ca.pem")),
    ]);
    ok(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        s(&p("key.pem")),
        "-out",
        s(&p("server.csr")),
    ]);
    std::fs::write(
        p("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    ok(&[
        "x509",
        "-req",
        "-in",
        s(&p("server.csr")),
        "-CA",
        s(&p("ca.pem")),
        "-CAkey",
        s(&p("ca.key")),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        s(&p("ext.cnf")),
        "-out",
        s(&p("cert.pem")),
    ]);
    (p("ca.pem"), p("cert.pem"), p("key.pem"))
}

/// The Python TLS server on `port`, killed (by pid) when dropped.
struct TlsServer(Child);

impl TlsServer {
    fn start(python: &Path, port: u16, mode: &str, cert: &Path, key: &Path, dumps: &Path) -> Self {
        std::fs::create_dir_all(dumps).unwrap();
        let child = Command::new(python)
            .args([
                "-c",
                TLS_SERVER,
                &port.to_string(),
                mode,
                s(cert),
                s(key),
                s(dumps),
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the TLS test server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        TlsServer(child)
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn starttls_and_implicit_tls_verify_the_relay_certificate() {
    let (Some(python), Some(openssl)) = (tool("python3"), tool("openssl")) else {
        return;
    };
    let e = small();
    let pki = e.dir.path().join("pki");
    std::fs::create_dir_all(&pki).unwrap();
    let (ca, cert, key) = test_pki(&openssl, &pki);
    let send = |port: u16, tls: &str, extra: &[&str]| {
        leakaudit()
            .args([
                "remediate",
                "send",
                "--outbox",
                s(&e.outbox),
                "--db",
                s(&e.db),
            ])
            .args(["--log", s(&e.log), "--no-canary", "--tls", tls])
            .args(["--smtp", &format!("127.0.0.1:{port}")])
            .args(extra)
            .env("LEAKAUDIT_SMTP_USER", "relay-user")
            .env("LEAKAUDIT_SMTP_PASSWORD", "relay-password")
            .output()
            .unwrap()
    };
    let port = free_port();
    {
        let _srv = TlsServer::start(&python, port, "starttls", &cert, &key, &e.dumps());
        // A certificate no trusted CA signed: refused, nothing sent in clear instead.
        let o = send(port, "starttls", &[]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains("STARTTLS with 127.0.0.1"), "{}", text(&o));
        assert!(text(&o).contains("deferred 1"), "{}", text(&o));
        assert!(dumps(&e.dumps()).is_empty());
        // Trusting the test CA: STARTTLS, then the messages (the server takes DATA only
        // over TLS).
        let o = send(port, "starttls", &["--smtp-ca", s(&ca), "--limit", "6"]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains("sent 6"), "{}", text(&o));
    }
    let port = free_port();
    let _srv = TlsServer::start(&python, port, "implicit", &cert, &key, &e.dumps());
    let o = send(port, "tls", &["--smtp-ca", s(&ca)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("sent 8, already sent 6"), "{}", text(&o));
    assert_delivered_once(&e);
}

#[test]
fn released_message_changed_readdressed_or_unreleased_is_refused() {
    let Some(bin) = smtp_sink() else { return };
    let e = small();
    let port = free_port();
    let _sink = Sink::start(&bin, port, &e.dumps(), &[]);
    let released = e.outbox.join("released/new");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&released)
        .unwrap()
        .map(|f| f.unwrap().path())
        .collect();
    files.sort();
    let refused = |expect: &str| {
        let o = e.send(port, &["--no-canary"]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(text(&o).contains(expect), "{}", text(&o));
        assert!(text(&o).contains("nothing sent"), "{}", text(&o));
        assert!(dumps(&e.dumps()).is_empty());
        assert!(e.states().is_empty());
    };
    // Edited after release (a header added): the hash apply recorded no longer matches.
    let original = std::fs::read(&files[0]).unwrap();
    let mut edited = b"X-Edited: yes\n".to_vec();
    edited.extend_from_slice(&original);
    std::fs::write(&files[0], &edited).unwrap();
    refused("changed since apply wrote it");
    std::fs::write(&files[0], &original).unwrap();
    // A file release never moved there.
    std::fs::write(released.join("extra.leakaudit"), &original).unwrap();
    refused("not written by apply");
    std::fs::remove_file(released.join("extra.leakaudit")).unwrap();
    // Moved back to staged: not released.
    let staged = e
        .outbox
        .join("staged/new")
        .join(files[1].file_name().unwrap());
    std::fs::rename(&files[1], &staged).unwrap();
    refused("is not released: run `remediate release` first");
    std::fs::rename(&staged, &files[1]).unwrap();
    // The account's address changed in the store since release: the message's To is stale.
    let to = outbox::inspect(&original).unwrap().to[0].clone();
    {
        let mut store = SqliteStore::open(&e.db).unwrap();
        let acct = store
            .find_by_email(&to, leakaudit_remediation::MatchMode::Canonical)
            .unwrap()
            .pop()
            .unwrap();
        store
            .import(&[leakaudit_remediation::store::AccountRecord {
                id: acct.id,
                email: "moved.elsewhere@example.org".into(),
                has_2fa: acct.has_2fa,
                balance: acct.balance,
                locale: acct.locale,
                failed_logins: acct.failed_logins,
                failed_logins_since: acct.failed_logins_since,
            }])
            .unwrap();
    }
    refused("To is not the account's own address");
}
