//! Issue 27: nothing read must never look clean. Every command that reads mail, given an
//! empty folder, a provider's JSON log or a saved HTML error page, exits 2 and names the file
//! and what it looked like; a folder with mail and one non-mail file still audits the mail.

use crate::util::{fixture, leakaudit, rem, stderr, stdout};
use std::path::Path;
use std::process::Output;

/// The three inputs a new user gives by mistake, each in a folder of its own.
fn bad_inputs(root: &Path) -> Vec<(String, &'static str)> {
    let empty = root.join("empty");
    std::fs::create_dir(&empty).unwrap();
    // JSON Lines of no provider leakaudit reads (an SES log is read: tests/integration/providers.rs).
    let json = root.join("events.json");
    std::fs::write(
        &json,
        "{\"event\":\"opened\",\"user\":\"a@gmail.com\"}\n\
         {\"event\":\"clicked\",\"user\":\"a@gmail.com\"}\n",
    )
    .unwrap();
    let html = root.join("export.eml");
    std::fs::write(
        &html,
        "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head></html>\n",
    )
    .unwrap();
    vec![
        (empty.display().to_string(), "no file found"),
        (json.display().to_string(), "looks like JSON Lines"),
        (html.display().to_string(), "looks like an HTML page"),
    ]
}

/// `leakaudit <cmd> <input> <extra...>`, with outputs under `out`.
fn run(cmd: &str, input: &str, out: &Path) -> Output {
    let mut c = leakaudit();
    c.arg(cmd).arg(input);
    match cmd {
        "scan" => c.arg("--output").arg(out.join("records.jsonl")),
        "affected" => c.arg("--output").arg(out.join("affected.csv")),
        "incident" => c
            .arg("--accounts")
            .arg(fixture("demo/accounts.csv"))
            .arg("--out")
            .arg(out.join("incident")),
        _ => &mut c,
    };
    c.output().unwrap()
}

#[test]
fn every_reading_command_exits_2_on_nothing_read_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = bad_inputs(dir.path());
    for cmd in ["scan", "check", "affected", "incident"] {
        for (i, (input, looked_like)) in inputs.iter().enumerate() {
            let out = dir.path().join(format!("out-{cmd}-{i}"));
            std::fs::create_dir(&out).unwrap();
            let o = run(cmd, input, &out);
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(2), "{cmd} {input}: {err}");
            assert!(err.contains(looked_like), "{cmd} {input}: {err}");
            assert!(err.contains(input.as_str()), "{cmd} names {input}: {err}");
            assert!(
                err.contains("no message was read from"),
                "{cmd} {input}: {err}"
            );
            // Nothing that looks like a result of an audit was written.
            if cmd == "incident" {
                let inc = out.join("incident");
                assert!(!inc.join("report.html").exists(), "{cmd} {input}");
                assert!(!inc.join("plan.json").exists(), "{cmd} {input}");
            }
            if cmd == "affected" {
                assert!(!out.join("affected.csv").exists(), "{cmd} {input}");
            }
        }
    }
}

#[test]
fn a_folder_with_mail_and_one_non_mail_file_audits_the_mail_then_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("archive");
    std::fs::create_dir(&folder).unwrap();
    std::fs::copy(rem("archive.mbox"), folder.join("archive.mbox")).unwrap();
    std::fs::write(folder.join("events.json"), "[{\"event\":\"delivered\"}]\n").unwrap();
    let whole = leakaudit()
        .args(["scan", "--output", "-", "-q"])
        .arg(rem("archive.mbox"))
        .output()
        .unwrap();
    assert_eq!(whole.status.code(), Some(1), "{}", stderr(&whole));
    let o = leakaudit()
        .args(["scan", "--output", "-", "-q"])
        .arg(&folder)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // The same records as the mbox alone: the mail was audited in full.
    assert_eq!(
        stdout(&o).lines().count(),
        stdout(&whole).lines().count(),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).lines().count() > 0);
    let err = stderr(&o);
    assert!(
        err.contains("events.json: error[not-mail]: not mail: looks like JSON ("),
        "{err}"
    );
    assert!(!err.contains("no message was read"), "{err}");
}
