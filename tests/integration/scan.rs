//! `leakaudit scan` through the binary: exit codes, JSON Lines content, stdin, compressed
//! input, unreadable inputs and the real corpus. Fixtures: `fixtures/readers/` (see its README).

use crate::util::{fixture, json_lines, leakaudit, shared_or_skip, stderr};
use leakaudit_policy::triage::HISTORY_VERSION;
use serde_json::Value;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Output, Stdio};

fn readers(rel: &str) -> String {
    fixture("readers").join(rel).to_string_lossy().into_owned()
}

fn run(args: &[&str]) -> Output {
    leakaudit().arg("scan").args(args).output().unwrap()
}

fn run_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = leakaudit()
        .arg("scan")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn exposed_addresses(r: &Value) -> Vec<String> {
    r["exposed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["address"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn clean_archive_exits_0_with_no_records() {
    let o = run(&[&readers("mboxrd.mbox")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    let err = stderr(&o);
    assert!(err.contains("messages read: 2 (mbox 2)"), "{err}");
    assert!(err.contains("messages that expose recipients: 0"), "{err}");
}

#[test]
fn exposing_messages_exit_1_with_one_record_each() {
    let path = readers("mboxo.mbox");
    // A journal of transmitted copies (the fixture has no transit headers for `auto` to see).
    let o = run(&[&path, "--archive-kind", "transmitted"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let recs = json_lines(&o.stdout);
    assert_eq!(recs.len(), 2);
    let r = &recs[0];
    assert_eq!(r["location"]["path"], path.as_str());
    assert_eq!(r["location"]["index"], 2);
    let data = std::fs::read(&path).unwrap();
    let off = r["location"]["offset"].as_u64().unwrap() as usize;
    assert!(data[off..].starts_with(b"From shop@shop.example Tue Jan  9"));
    assert_eq!(r["format"], "mbox");
    assert_eq!(r["message_id"], "m2@shop.example");
    assert_eq!(r["date"], "2024-01-09T10:30:00Z");
    assert_eq!(r["date_raw"], "Tue, 09 Jan 2024 10:30:00 +0000");
    assert_eq!(r["from"], "shop@shop.example");
    assert_eq!(r["subject"], "Your order");
    assert_eq!(exposed_addresses(r), ["alice@gmail.com", "bob@yahoo.com"]);
    assert_eq!(r["exposed"][0]["fields"], serde_json::json!(["To"]));
    assert_eq!(r["exposed"][0]["audience"], 1);
    assert_eq!(r["audience_size"], 2);
    assert_eq!(r["visible_parties"], 2);
    // Message 3: a Bcc header in a transmitted copy exposes both.
    assert_eq!(recs[1]["location"]["index"], 3);
    assert_eq!(
        exposed_addresses(&recs[1]),
        ["carol@gmail.com", "dave@gmail.com"]
    );
    let err = stderr(&o);
    assert!(err.contains("messages that expose recipients: 2"), "{err}");
    assert!(err.contains("addresses exposed (distinct): 4"), "{err}");
}

#[test]
fn archive_kind_sent_does_not_count_the_bcc_header_as_a_leak() {
    let o = run(&[&readers("mboxo.mbox"), "--archive-kind", "sent"]);
    let recs = json_lines(&o.stdout);
    let third = recs
        .iter()
        .find(|r| r["location"]["index"] == 3)
        .expect("the To recipient is still shown to the Bcc recipient");
    assert!(!exposed_addresses(third).contains(&"dave@gmail.com".to_string()));
}

#[test]
fn internal_domain_option() {
    let path = readers("exports/2024 Q1/one-message.txt");
    assert_eq!(run(&[&path]).status.code(), Some(1));
    let o = run(&[&path, "--internal-domain", "client-one.example"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = run(&[&path, "--internal-domain", "not a domain!"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn malformed_message_exits_2_after_scanning_the_rest() {
    let o = run(&[&readers("malformed.mbox")]);
    assert_eq!(o.status.code(), Some(2));
    let recs = json_lines(&o.stdout);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["message_id"], "mf3@corp.example");
    let err = stderr(&o);
    assert!(
        err.contains("malformed.mbox@141: error[malformed]"),
        "{err}"
    );
    assert!(err.contains("malformed: 1"), "{err}");
}

#[test]
fn unreadable_input_is_reported_and_the_rest_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.mbox");
    let o = run(&[missing.to_str().unwrap(), &readers("mboxo.mbox")]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(json_lines(&o.stdout).len(), 2);
    let err = stderr(&o);
    assert!(err.contains("missing.mbox: error[unreadable]"), "{err}");
    assert!(err.contains("unreadable: 1"), "{err}");
}

#[test]
fn stdin_plain_and_compressed() {
    let data = std::fs::read(readers("mboxo.mbox")).unwrap();
    let o = run_stdin(&["-"], &data);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let recs = json_lines(&o.stdout);
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0]["location"]["path"], "-");
    assert_eq!(recs[0]["location"]["index"], 2);

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&data).unwrap();
    let o = run_stdin(&["-", "--quiet"], &gz.finish().unwrap());
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(json_lines(&o.stdout), recs);
    assert!(o.stderr.is_empty(), "--quiet prints no summary");
}

#[test]
fn compressed_files_are_recognised_by_content() {
    let dir = tempfile::tempdir().unwrap();
    let data = std::fs::read(readers("mboxo.mbox")).unwrap();
    let p = dir.path().join("export.bin");
    std::fs::write(&p, zstd::stream::encode_all(&data[..], 3).unwrap()).unwrap();
    let o = run(&[p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(json_lines(&o.stdout).len(), 2);
    // Cut in half: the truncation is an error, what was read is still reported.
    let packed = std::fs::read(&p).unwrap();
    std::fs::write(&p, &packed[..packed.len() * 2 / 3]).unwrap();
    let o = run(&[p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("error[truncated]: zstd stream truncated"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn output_file_is_0600_jsonl_and_problems_file_lists_all() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("findings.jsonl");
    let problems = dir.path().join("problems.jsonl");
    let o = run(&[
        &readers(""),
        "--output",
        out.to_str().unwrap(),
        "--problems",
        problems.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "truncated and malformed fixtures are errors"
    );
    assert!(o.stdout.is_empty());
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let recs = json_lines(&std::fs::read(&out).unwrap());
    assert!(recs.len() >= 7, "{}", recs.len());
    // Deterministic archive order: paths never go backwards.
    let paths: Vec<&str> = recs
        .iter()
        .map(|r| r["location"]["path"].as_str().unwrap())
        .collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted);
    let probs = json_lines(&std::fs::read(&problems).unwrap());
    let kinds: Vec<&str> = probs.iter().map(|p| p["kind"].as_str().unwrap()).collect();
    for k in ["not-mail", "malformed", "truncated"] {
        assert!(kinds.contains(&k), "{kinds:?}");
    }
    assert!(probs
        .iter()
        .all(|p| p["location"]["path"].is_string() && p["reason"].is_string()));
}

#[test]
fn format_override_reads_an_mbox_as_one_message() {
    let o = run(&[&readers("mboxo.mbox"), "--format", "eml"]);
    // Message 1 alone (lunch with a colleague) exposes nobody.
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("messages read: 1 (eml 1)"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn maildir_and_threads_option() {
    let o = run(&[&readers("maildir"), "--threads", "1"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let recs = json_lines(&o.stdout);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["format"], "maildir");
    assert!(recs[0]["location"]["offset"].is_null());
}

/// Real mail through the binary: no panic, every file accounted for. The subset shipped in
/// `fixtures/corpus/` always, the whole corpus in `../shared` when present.
#[test]
fn spamassassin_corpus_through_the_binary() {
    corpus_through_the_binary(&fixture("corpus/spamassassin"));
    if let Some(root) = shared_or_skip("corpora/spamassassin") {
        corpus_through_the_binary(&root);
    }
}

fn corpus_through_the_binary(root: &Path) {
    let files = walk_count(root);
    let dir = tempfile::tempdir().unwrap();
    let problems = dir.path().join("p.jsonl");
    let o = run(&[
        root.to_str().unwrap(),
        "--problems",
        problems.to_str().unwrap(),
        "--output",
        dir.path().join("f.jsonl").to_str().unwrap(),
    ]);
    let code = o.status.code();
    assert!(
        matches!(code, Some(0..=2)),
        "crashed: {code:?} {}",
        stderr(&o)
    );
    let err = stderr(&o);
    assert!(err.contains(&format!("scanned {files} files")), "{err}");
    let read: u64 = line_number(&err, "messages read: ");
    assert!(read > 0, "{err}");
    let probs = json_lines(&std::fs::read(&problems).unwrap());
    let file_level = probs
        .iter()
        .filter(|p| {
            matches!(
                p["kind"].as_str(),
                Some("malformed" | "not-mail" | "unreadable")
            )
        })
        .count() as u64;
    assert!(
        read + file_level >= files,
        "{read} + {file_level} < {files}"
    );
    for p in &probs {
        assert!(p["location"]["path"]
            .as_str()
            .unwrap()
            .contains("spamassassin"));
    }
    // Any error-level problem must show in the exit code.
    let errors = probs.iter().any(|p| p["level"] == "error");
    assert_eq!(errors, code == Some(2));
}

fn walk_count(root: &Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(root).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            n += walk_count(&p);
        } else {
            n += 1;
        }
    }
    n
}

fn line_number(text: &str, prefix: &str) -> u64 {
    let line = text.lines().find(|l| l.starts_with(prefix)).unwrap();
    line[prefix.len()..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Regression: `scan` ignored `leakaudit.toml`, so a partner domain listed as internal there
/// still counted as an audience. The file in the working directory and `--config` both apply.
#[test]
fn scan_honours_leakaudit_toml_internal_domains() {
    let dir = tempfile::tempdir().unwrap();
    let msg = dir.path().join("partner.eml");
    std::fs::write(
        &msg,
        "From: Support <help@shop.example>\r\nTo: ann@partner.example, bob@gmail.com\r\n\
         Subject: shipment\r\nMessage-ID: <p1@shop.example>\r\n\r\nhello\r\n",
    )
    .unwrap();
    let path = msg.to_string_lossy().into_owned();
    // Without configuration: two external parties see each other.
    let o = leakaudit()
        .current_dir(dir.path())
        .args(["scan", "-q", &path])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));

    std::fs::write(
        dir.path().join("leakaudit.toml"),
        "internal_domains = [\"partner.example\"]\n",
    )
    .unwrap();
    let o = leakaudit()
        .current_dir(dir.path())
        .args(["scan", "-q", &path])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    // The same file named explicitly from elsewhere.
    let cfg = dir
        .path()
        .join("leakaudit.toml")
        .to_string_lossy()
        .into_owned();
    let o = leakaudit()
        .args(["scan", "-q", "--config", &cfg, &path])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    // An unknown key is an error with its line, not silently ignored.
    std::fs::write(
        dir.path().join("bad.toml"),
        "internal_domain = [\"x.example\"]\n",
    )
    .unwrap();
    let bad = dir.path().join("bad.toml").to_string_lossy().into_owned();
    let o = leakaudit()
        .args(["scan", "-q", "--config", &bad, &path])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("bad.toml:1"), "{}", stderr(&o));
}

/// `scan --history FILE` built an empty history and ignored the flag; on the library's archive
/// audit it starts from FILE and writes it back, as `check` and `incident` do.
#[test]
fn scan_history_flag_was_ignored_regression() {
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history.json");
    let demo = fixture("demo/outbound.mbox").to_string_lossy().into_owned();
    let args = ["-q", "--history", history.to_str().unwrap(), demo.as_str()];
    let first = run(&args);
    assert_eq!(first.status.code(), Some(1), "{}", stderr(&first));
    assert!(std::fs::metadata(&history).unwrap().len() > 0);
    let again = run(&args);
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    assert!(!json_lines(&again.stdout).is_empty());
    assert!(std::fs::metadata(&history).unwrap().len() > 0);
}

/// A history saved by an older version (version 3 refuses version 2's SHA-256 hashes) was
/// refused as "writing OUTPUT: reading the history ...", as if writing the records had
/// failed: it is read before the output is opened, refused with its path and version, and no
/// output is created.
#[test]
fn regression_an_older_history_was_reported_as_an_output_error() {
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history.bin");
    let out = dir.path().join("records.jsonl");
    let demo = fixture("demo/outbound.mbox").to_string_lossy().into_owned();
    let first = run(&["-q", "--history", history.to_str().unwrap(), demo.as_str()]);
    assert_eq!(first.status.code(), Some(1), "{}", stderr(&first));
    // The version follows the 18-byte magic.
    let (current, older) = (HISTORY_VERSION, HISTORY_VERSION - 1);
    let mut bytes = std::fs::read(&history).unwrap();
    bytes[18..22].copy_from_slice(&older.to_le_bytes());
    std::fs::write(&history, &bytes).unwrap();
    let o = run(&[
        "-q",
        "--history",
        history.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        demo.as_str(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    let refused =
        format!("history.bin: history version {older}, this build reads version {current} only");
    assert!(err.contains(&refused), "{err}");
    assert!(!err.contains("writing"), "{err}");
    assert!(!out.exists(), "no output for a run that did not start");
}

/// `scan` reads only the triage thresholds of the rule pack (it no longer builds the whole
/// engine for them): they still come from the pack, and a bad pack or override still stops it.
#[test]
fn scan_takes_the_thresholds_of_the_rule_pack_and_checks_it() {
    let dir = tempfile::tempdir().unwrap();
    let msg = dir.path().join("two.eml");
    std::fs::write(
        &msg,
        "From: Support <help@shop.example>\r\nTo: ann@gmail.com, bob@yahoo.com\r\n\
         Subject: shipment\r\nMessage-ID: <t1@shop.example>\r\n\r\nhello\r\n",
    )
    .unwrap();
    let path = msg.to_string_lossy().into_owned();
    let scan = |extra: &[&str]| {
        (leakaudit().args(["scan", "-q", "--profile", "gate"]))
            .args(extra)
            .arg(&path)
            .output()
            .unwrap()
    };
    let severity = |o: &Output| json_lines(&o.stdout)[0]["triage"]["severity"].clone();
    let o = scan(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(severity(&o), "high");

    // Two parties are already a mass exposure under this pack.
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    let pack =
        std::fs::read_to_string(crate::util::repo_root().join("rules/exposure.toml")).unwrap();
    assert!(pack.contains("critical_parties = 25 ") && pack.contains("high_parties = 6 "));
    let pack = pack
        .replace("critical_parties = 25 ", "critical_parties = 2 ")
        .replace("high_parties = 6 ", "high_parties = 2 ");
    std::fs::write(rules.join("exposure.toml"), &pack).unwrap();
    let rules_arg = rules.to_string_lossy().into_owned();
    let with_pack = ["--rules", &rules_arg, "--rules-mode", "replace"];
    let o = scan(&with_pack);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(severity(&o), "critical");

    // An override naming no rule of the pack, and a broken rule file: errors, nothing read.
    let cfg = dir.path().join("cfg.toml");
    std::fs::write(&cfg, "[severity_overrides]\nno-such-rule = \"low\"\n").unwrap();
    let o = scan(&["--config", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no-such-rule"), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    let broken = pack.replace("[[rule]]", "[[rul]]");
    std::fs::write(rules.join("exposure.toml"), broken).unwrap();
    let o = scan(&with_pack);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("exposure.toml"), "{}", stderr(&o));
}

/// Under audit the ranked records are written as lines where they are ranked, except one too
/// large to hold as a line (over 10,000 addresses), which is streamed: both kinds come out
/// whole, ranked and in archive order.
#[test]
fn audit_records_small_and_too_large_to_hold_as_a_line_keep_archive_order() {
    let dir = tempfile::tempdir().unwrap();
    let mbox = dir.path().join("mixed.mbox");
    let message = |i: usize, n: usize| {
        let to: Vec<String> = (0..n).map(|k| format!("user{i}x{k}@gmail.com")).collect();
        format!(
            "From news@shop.example Mon Jan  1 00:00:00 2024\nFrom: news@shop.example\n\
             To: {}\nSubject: batch {i}\nMessage-ID: <b{i}@shop.example>\n\
             Date: Mon, 01 Jan 2024 00:00:0{i} +0000\n\nhello\n\n",
            to.join(",\n ")
        )
    };
    let sizes = [3, 12_000, 2, 40];
    let text: String = (sizes.iter().enumerate())
        .map(|(i, &n)| message(i, n))
        .collect();
    std::fs::write(&mbox, text).unwrap();
    let o = run(&["-q", mbox.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let recs = json_lines(&o.stdout);
    let got: Vec<(String, usize)> = recs
        .iter()
        .map(|r| {
            assert_eq!(r["triage"]["profile"], "audit", "{}", r["subject"]);
            (
                r["subject"].as_str().unwrap().to_string(),
                exposed_addresses(r).len(),
            )
        })
        .collect();
    let want: Vec<(String, usize)> = (sizes.iter().enumerate())
        .map(|(i, &n)| (format!("batch {i}"), n))
        .collect();
    assert_eq!(got, want);
    assert_eq!(exposed_addresses(&recs[1])[11_999], "user1x11999@gmail.com");
}
