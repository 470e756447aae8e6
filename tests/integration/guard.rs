//! `leakaudit guard smtp` between real parts: Python's `smtplib` as the client, the guard
//! binary, Postfix's `smtp-sink` as the upstream (dumping what it accepts), on loopback
//! ports. Under `CI` a missing smtp-sink or python3 fails these tests.

use crate::send::{after_sink_headers, free_port, smtp_sink, Sink};
use crate::util::{fixture, leakaudit, repo_root};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The guard process, killed when dropped.
struct Guard {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Guard {
    fn start(dir: &Path, upstream: u16, extra: &[&str]) -> Guard {
        let port = free_port();
        let log = dir.join("verdicts.jsonl");
        let child = leakaudit()
            .current_dir(repo_root())
            .args(["guard", "smtp", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--upstream")
            .arg(format!("127.0.0.1:{upstream}"))
            .arg("--verdict-log")
            .arg(&log)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the guard did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Guard { child, port, log }
    }

    /// The verdict log, one JSON value per message.
    fn verdicts(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// smtp-sink on a free port dumping into `dir/dumps`, and a guard in front of it.
fn sink_and_guard(
    sink: &Path,
    dir: &Path,
    sink_args: &[&str],
    guard_args: &[&str],
) -> (Sink, Guard, PathBuf) {
    let dumps = dir.join("dumps");
    let up = free_port();
    let s = Sink::start(sink, up, &dumps, sink_args);
    (s, Guard::start(dir, up, guard_args), dumps)
}

/// Sends each `(file, recipients)` through `port` with smtplib, one session each (no
/// recipients given: those of To and Cc). Prints one JSON line per message: the final code
/// and reply, or the code that ended the session early.
const CLIENT: &str = r#"
import json, smtplib, sys, email.utils
port = int(sys.argv[1])
for job in json.load(open(sys.argv[2])):
    raw = open(job["file"], "rb").read()
    rcpts = job.get("rcpts") or []
    if not rcpts:
        head = raw.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
        values = [l.split(":", 1)[1] for l in head.replace("\r\n ", " ").replace("\r\n\t", " ").split("\r\n")
                  if l.lower().startswith(("to:", "cc:"))]
        rcpts = [a for _, a in email.utils.getaddresses(values) if "@" in a] or ["nobody@example.com"]
    out = {"file": job["file"]}
    try:
        s = smtplib.SMTP("127.0.0.1", port, timeout=60)
        s.ehlo("client.example")
        refused = s.sendmail("noreply@kestrelexchange.example", rcpts, raw)
        out.update(code=250, refused={k: v[0] for k, v in refused.items()})
        s.quit()
    except smtplib.SMTPDataError as e:
        out.update(code=e.smtp_code, reply=e.smtp_error.decode())
    except smtplib.SMTPRecipientsRefused as e:
        out.update(code=0, refused={k: v[0] for k, v in e.recipients.items()})
    except smtplib.SMTPConnectError as e:
        out.update(code=e.smtp_code, reply=str(e.smtp_error))
    except smtplib.SMTPResponseException as e:
        out.update(code=e.smtp_code, reply=str(e.smtp_error))
    except Exception as e:
        out.update(code=-1, reply=repr(e))
    print(json.dumps(out), flush=True)
"#;

fn python() -> Option<PathBuf> {
    let found = ["/usr/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .or_else(|| {
            Command::new("python3")
                .arg("--version")
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|_| PathBuf::from("python3"))
        });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "python3 is missing under CI"
        );
    }
    found
}

/// Sends `jobs` through the guard on `port`; one result per job, in order.
fn send(dir: &Path, port: u16, jobs: &[(PathBuf, Vec<&str>)]) -> Vec<Value> {
    let py = python().expect("python3");
    let list: Vec<Value> = jobs
        .iter()
        .map(|(f, r)| serde_json::json!({"file": f, "rcpts": r}))
        .collect();
    let jobs_file = dir.join("jobs.json");
    std::fs::write(&jobs_file, serde_json::to_vec(&list).unwrap()).unwrap();
    let o = Command::new(py)
        .arg("-c")
        .arg(CLIENT)
        .arg(port.to_string())
        .arg(&jobs_file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The messages of an mbox, `From ` lines dropped, line ends CRLF (as on the wire).
fn mbox_messages(path: &Path) -> Vec<Vec<u8>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    for part in text.split("\nFrom ") {
        let body = part.split_once('\n').map_or("", |(_, b)| b);
        let unquoted: Vec<&str> = body
            .lines()
            .map(|l| {
                l.strip_prefix('>')
                    .filter(|r| r.starts_with("From "))
                    .unwrap_or(l)
            })
            .collect();
        out.push(format!("{}\r\n", unquoted.join("\r\n")).into_bytes());
    }
    out
}

/// What smtp-sink received: the message after its own headers, the line ends it wrote (LF)
/// back to CRLF.
fn received(dumps: &Path) -> Vec<Vec<u8>> {
    let Ok(rd) = std::fs::read_dir(dumps) else {
        return Vec::new();
    };
    rd.map(|e| {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        let message = after_sink_headers(&text);
        // It ends each dump with one more line end of its own.
        let message = message.strip_suffix('\n').unwrap_or(message);
        message.replace('\n', "\r\n").into_bytes()
    })
    .collect()
}

fn sink_or_skip() -> Option<PathBuf> {
    let sink = smtp_sink();
    if sink.is_none() || python().is_none() {
        eprintln!("skipped: smtp-sink or python3 missing (scripts/smtp.sh installs them)");
    }
    sink.filter(|_| python().is_some())
}

/// The 2019 incident at the guard: the demo's mass mailing, 8 chunks with ~100 customers in
/// `To` each, every chunk refused inside the transaction with `550 5.7.1` and its rule id, not
/// one reaching the server; a one-recipient message, a Bcc mailing done right and internal
/// mail reach it exactly once, byte for byte.
#[test]
fn the_2019_chunks_are_refused_and_clean_mail_passes_once() {
    let Some(sink) = sink_or_skip() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (_sink, guard, dumps) = sink_and_guard(&sink, dir.path(), &[], &[]);

    let chunks: Vec<Vec<u8>> = mbox_messages(&fixture("demo/outbound.mbox"))
        .into_iter()
        .filter(|m| {
            let head = String::from_utf8_lossy(m);
            head.contains("Message-ID: <acct-terms-2019-11.b")
        })
        .collect();
    assert_eq!(chunks.len(), 8);
    let clean: [&[u8]; 3] = [
        b"From: noreply@kestrelexchange.example\r\nTo: a.anderson@gmail.com\r\nSubject: Your statement\r\nMessage-ID: <one@kestrelexchange.example>\r\n\r\nHello\r\n.a line with a dot\r\n",
        b"From: noreply@kestrelexchange.example\r\nTo: undisclosed-recipients:;\r\nSubject: News\r\nMessage-ID: <bcc@kestrelexchange.example>\r\n\r\nNews for all of you\r\n",
        b"From: alice@kestrelexchange.example\r\nTo: bob@kestrelexchange.example, carol@kestrelexchange.example\r\nSubject: Lunch\r\nMessage-ID: <internal@kestrelexchange.example>\r\n\r\nAt noon?\r\n",
    ];
    let mut jobs = Vec::new();
    for (i, c) in chunks.iter().enumerate() {
        let f = dir.path().join(format!("chunk{i}.eml"));
        std::fs::write(&f, c).unwrap();
        jobs.push((f, vec![]));
    }
    let bcc = vec!["a@gmail.com", "b@yahoo.com", "c@outlook.com"];
    for (i, c) in clean.iter().enumerate() {
        let f = dir.path().join(format!("clean{i}.eml"));
        std::fs::write(&f, c).unwrap();
        jobs.push((f, if i == 1 { bcc.clone() } else { vec![] }));
    }
    let results = send(dir.path(), guard.port, &jobs);
    for r in &results[..8] {
        assert_eq!(r["code"], 550, "{r}");
        let reply = r["reply"].as_str().unwrap();
        assert!(
            reply.starts_with("5.7.1 ") && reply.contains("recipient-exposure"),
            "{reply}"
        );
        assert!(!reply.contains('@'), "an address in the reply: {reply}");
    }
    for r in &results[8..] {
        assert_eq!(r["code"], 250, "{r}");
    }
    let mut got = received(&dumps);
    got.sort();
    let mut want: Vec<Vec<u8>> = clean.iter().map(|c| c.to_vec()).collect();
    want.sort();
    assert_eq!(got, want, "exactly the clean messages, once, byte for byte");
    let verdicts = guard.verdicts();
    let rejected = verdicts
        .iter()
        .filter(|v| v["verdict"] == "rejected")
        .count();
    let passed = verdicts.iter().filter(|v| v["verdict"] == "passed").count();
    assert_eq!((rejected, passed), (8, 3), "{verdicts:?}");
    let log = std::fs::read_to_string(&guard.log).unwrap();
    assert!(
        !log.contains("noreply@kestrelexchange.example") && !log.contains("gmail.com"),
        "addresses in the verdict log: {log}"
    );
}

/// Never accept and lose: with the server down a clean message gets a 4xx (the client keeps
/// it queued), never 250; a server that refuses a recipient with a 4xx: the client sees that
/// code for that recipient.
#[test]
fn upstream_down_is_a_tempfail_and_its_refusals_are_passed_on() {
    let Some(sink) = sink_or_skip() else { return };
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("clean.eml");
    std::fs::write(
        &f,
        b"From: noreply@kestrelexchange.example\r\nTo: a@gmail.com\r\nSubject: Hi\r\nMessage-ID: <x@kestrelexchange.example>\r\n\r\nHello\r\n",
    )
    .unwrap();
    let down = free_port();
    let guard = Guard::start(dir.path(), down, &[]);
    let r = &send(dir.path(), guard.port, &[(f.clone(), vec![])])[0];
    let code = r["code"].as_i64().unwrap();
    assert!((400..500).contains(&code), "{r}");
    drop(guard);

    let dumps = dir.path().join("dumps");
    let up = free_port();
    let _sink = Sink::start(&sink, up, &dumps, &["-r", "RCPT"]);
    let guard = Guard::start(dir.path(), up, &[]);
    let r = &send(dir.path(), guard.port, &[(f, vec![])])[0];
    let refused = r["refused"]["a@gmail.com"].as_i64();
    assert!(
        refused.is_some_and(|c| (400..500).contains(&c)),
        "the sink's own 4xx for the recipient: {r}"
    );
    assert!(received(&dumps).is_empty());
}

/// The guard and `check` give the same verdict, rule ids and fingerprints on the same bytes:
/// every rule fixture and every file of `fixtures/check`, as sent on the wire (CRLF).
#[test]
fn the_guard_and_check_agree_on_every_fixture() {
    let Some(sink) = sink_or_skip() else { return };
    let dir = tempfile::tempdir().unwrap();
    let wire = dir.path().join("wire");
    std::fs::create_dir(&wire).unwrap();
    let files = crate::util::verdict_fixtures();
    let mut jobs = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let text = std::fs::read(f).unwrap();
        let mut crlf = Vec::with_capacity(text.len() + 64);
        for (j, b) in text.iter().enumerate() {
            if *b == b'\n' && (j == 0 || text[j - 1] != b'\r') {
                crlf.push(b'\r');
            }
            crlf.push(*b);
        }
        let out = wire.join(format!("{i:03}.eml"));
        std::fs::write(&out, crlf).unwrap();
        jobs.push((out, vec!["x@gmail.com", "y@yahoo.com"]));
    }
    let o = leakaudit()
        .args(["check", "-q", "--format", "json"])
        .arg(&wire)
        .output()
        .unwrap();
    let check: Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut by_file: std::collections::BTreeMap<String, Vec<(String, String)>> = Default::default();
    for f in check["findings"].as_array().unwrap() {
        let path = f["location"]["path"].as_str().unwrap().to_string();
        by_file.entry(path).or_default().push((
            f["rule_id"].as_str().unwrap().to_string(),
            f["fingerprint"].as_str().unwrap().to_string(),
        ));
    }

    let dumps = dir.path().join("dumps");
    let up = free_port();
    let _sink = Sink::start(&sink, up, &dumps, &[]);
    let guard = Guard::start(dir.path(), up, &[]);
    let results = send(dir.path(), guard.port, &jobs);
    let verdicts = guard.verdicts();
    assert_eq!(verdicts.len(), jobs.len(), "one verdict per message");
    let (mut rejected, mut passed) = (0, 0);
    for ((file, _), (r, v)) in jobs.iter().zip(results.iter().zip(&verdicts)) {
        let key = file.display().to_string();
        let theirs = by_file.remove(&key).unwrap_or_default();
        let rules: Vec<String> = v["rules"]
            .as_array()
            .map(|a| a.iter().map(|x| x.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        let fps: Vec<String> = v["fingerprints"]
            .as_array()
            .map(|a| a.iter().map(|x| x.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        let mine: Vec<(String, String)> = rules.into_iter().zip(fps).collect();
        assert_eq!(mine, theirs, "{key}");
        let failing = theirs.iter().any(|(rule, _)| {
            check["findings"].as_array().unwrap().iter().any(|f| {
                f["location"]["path"] == key.as_str()
                    && f["rule_id"] == rule.as_str()
                    && matches!(f["severity"].as_str(), Some("high" | "critical"))
            })
        });
        match v["verdict"].as_str().unwrap() {
            "rejected" => {
                assert!(failing, "{key}");
                assert_eq!(r["code"], 550, "{r}");
                rejected += 1;
            }
            "passed" => {
                assert!(!failing, "{key}");
                assert_eq!(r["code"], 250, "{r}");
                passed += 1;
            }
            other => panic!("{key}: {other}"),
        }
    }
    assert!(
        rejected > 10 && passed > 10,
        "{rejected} rejected, {passed} passed"
    );
    assert_eq!(received(&dumps).len(), passed);
}

/// A guard listening beyond loopback without `--allow-client` would relay for anyone: it
/// refuses to start.
#[test]
fn a_public_listen_address_needs_allow_client() {
    let o = leakaudit()
        .args([
            "guard",
            "smtp",
            "--listen",
            "0.0.0.0:0",
            "--upstream",
            "127.0.0.1:25",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--allow-client"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A client that pipelines (RFC 2920) gets every reply in order; a bare-LF `.` inside the
/// data (SMTP smuggling) neither ends the message at the guard nor at the upstream: the sink
/// gets one message, with the smuggled lines inside it.
#[test]
fn pipelined_commands_and_a_smuggling_attempt() {
    use std::io::{BufRead, BufReader, Write};
    let Some(sink) = sink_or_skip() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (_sink, guard, dumps) = sink_and_guard(&sink, dir.path(), &[], &[]);
    let stream = std::net::TcpStream::connect(("127.0.0.1", guard.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    // One reply (the last line of a multi-line one): its code.
    let mut reply = || -> String {
        loop {
            let mut l = String::new();
            r.read_line(&mut l).unwrap();
            if l.as_bytes().get(3) != Some(&b'-') {
                return l;
            }
        }
    };
    assert!(reply().starts_with("220"));
    w.write_all(b"EHLO client.example\r\n").unwrap();
    assert!(reply().starts_with("250"));
    w.write_all(b"MAIL FROM:<news@kestrelexchange.example>\r\nRCPT TO:<a@gmail.com>\r\nRCPT TO:<b@yahoo.com>\r\nDATA\r\n")
        .unwrap();
    let codes: Vec<String> = (0..4).map(|_| reply()[..3].to_string()).collect();
    assert_eq!(codes, ["250", "250", "250", "354"]);
    w.write_all(b"From: news@kestrelexchange.example\r\nTo: undisclosed-recipients:;\r\nSubject: One\r\nMessage-ID: <one@kestrelexchange.example>\r\n\r\nHello\n.\r\nMAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\nSmuggled\r\n.\r\n")
        .unwrap();
    assert!(reply().starts_with("250"));
    w.write_all(b"QUIT\r\n").unwrap();
    assert!(reply().starts_with("221"));
    let got = received(&dumps);
    assert_eq!(got.len(), 1, "one message at the sink");
    let text = String::from_utf8_lossy(&got[0]);
    assert!(text.contains("MAIL FROM:<evil@example.com>"), "{text}");
}

/// `[guard]` of leakaudit.toml sets what the flags do: here the upstream and monitor mode, in
/// which a failing message is passed on with an `X-Leakaudit-Verdict` header (a trial before
/// rejecting); a misspelt key is an error with its line.
#[test]
fn guard_settings_from_the_config_file_and_monitor_mode() {
    let Some(sink) = sink_or_skip() else { return };
    let dir = tempfile::tempdir().unwrap();
    let dumps = dir.path().join("dumps");
    let up = free_port();
    let _sink = Sink::start(&sink, up, &dumps, &[]);
    let config = dir.path().join("leakaudit.toml");
    std::fs::write(
        &config,
        format!("[guard]\nupstream = \"127.0.0.1:{up}\"\non_violation = \"monitor\"\n"),
    )
    .unwrap();
    let port = free_port();
    let mut child = leakaudit()
        .args(["guard", "smtp", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--config")
        .arg(&config)
        .arg("--verdict-log")
        .arg(dir.path().join("v.jsonl"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the guard did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let leak = dir.path().join("leak.eml");
    std::fs::write(&leak, b"From: news@kestrelexchange.example\r\nTo: a@gmail.com, b@yahoo.com, c@outlook.com\r\nSubject: News\r\nMessage-ID: <m@kestrelexchange.example>\r\n\r\nHello\r\n").unwrap();
    let r = &send(dir.path(), port, &[(leak, vec![])])[0];
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(r["code"], 250, "{r}");
    let got = received(&dumps);
    assert_eq!(got.len(), 1);
    let text = String::from_utf8_lossy(&got[0]);
    assert!(
        text.starts_with("X-Leakaudit-Verdict: violation; rules=recipient-exposure; fingerprint="),
        "{text}"
    );

    std::fs::write(&config, "[guard]\nupstreem = \"127.0.0.1:25\"\n").unwrap();
    let o = leakaudit()
        .args(["guard", "smtp", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains(":2:") && err.contains("upstreem"), "{err}");
}

/// Limits: a message over `--max-size` gets `552 5.3.4` (and reaches nobody); a session
/// beyond `--max-sessions` gets `421 4.3.2` at once.
#[test]
fn size_and_session_limits() {
    use std::io::{BufRead, BufReader};
    let Some(sink) = sink_or_skip() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (_sink, guard, dumps) = sink_and_guard(
        &sink,
        dir.path(),
        &[],
        &["--max-size", "2000", "--max-sessions", "1"],
    );
    let big = dir.path().join("big.eml");
    let mut text = b"From: news@kestrelexchange.example\r\nTo: a@gmail.com\r\nSubject: Big\r\nMessage-ID: <big@kestrelexchange.example>\r\n\r\n".to_vec();
    for _ in 0..100 {
        text.extend_from_slice(b"0123456789012345678901234567890123456789\r\n");
    }
    std::fs::write(&big, text).unwrap();
    let r = &send(dir.path(), guard.port, &[(big, vec![])])[0];
    assert_eq!(r["code"], 552, "{r}");
    assert!(received(&dumps).is_empty());

    // One session held open: the next client is turned away, not queued behind it.
    let held = std::net::TcpStream::connect(("127.0.0.1", guard.port)).unwrap();
    let mut first = String::new();
    BufReader::new(held.try_clone().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("220"), "{first}");
    let other = std::net::TcpStream::connect(("127.0.0.1", guard.port)).unwrap();
    other
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut line = String::new();
    BufReader::new(other).read_line(&mut line).unwrap();
    assert!(line.starts_with("421 4.3.2"), "{line}");
    drop(held);
}
