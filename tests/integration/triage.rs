//! The triage through the binary: profiles, the ranking in every output, --min-severity, and
//! the true numbers of a Sent-style archive with default flags.

use crate::util::{json_lines, run, s, shared_or_skip, stderr};
use std::fmt::Write as _;
use std::path::Path;

/// A reply-all to two people at other companies: a bug in a rendered template (gate), an
/// ordinary thread in an archive (audit).
const REPLY_ALL: &str = "From: ann@shop.example\nTo: bob@acme.example\nCc: carol@globex.example\nSubject: Re: meeting\nIn-Reply-To: <x@acme.example>\nMessage-ID: <r1@shop.example>\nDate: Mon, 02 Mar 2026 10:00:00 +0000\n\nSee you.\n";

/// A sender's Sent folder: marketing sent by Bcc whose copies keep the Bcc header (normal in
/// a Sent folder), support replies to one customer, and one incident: a mailing in 5 chunks
/// of 200 visible addresses.
fn sent_style_archive(path: &Path) {
    let mut m = String::new();
    let mut n = 0;
    let mut msg = |m: &mut String, from: &str, hdrs: &str, subject: &str, day: u32, hour: u32| {
        n += 1;
        let _ = write!(
            m,
            "From {from} Mon Mar  {day} {hour:02}:00:00 2026\nFrom: {from}\n{hdrs}Subject: {subject}\nDate: Mon, {day:02} Mar 2026 {hour:02}:00:00 +0000\nMessage-ID: <m{n}@shop.example>\n\nHello.\n\n"
        );
    };
    for i in 0..30 {
        let bcc: Vec<String> = (0..50)
            .map(|j| format!("fan{}@gmail.com", i * 50 + j))
            .collect();
        let hdrs = format!(
            "To: undisclosed-recipients:;\nBcc: {}\nList-Unsubscribe: <mailto:unsub@shop.example>\n",
            bcc.join(", ")
        );
        msg(
            &mut m,
            "news@shop.example",
            &hdrs,
            &format!("Spring offers {i}"),
            2,
            9,
        );
    }
    for i in 0..20 {
        let hdrs = format!(
            "To: client{i}@yahoo.com\nCc: agent@shop.example\nIn-Reply-To: <q{i}@yahoo.com>\n"
        );
        msg(
            &mut m,
            "support@shop.example",
            &hdrs,
            &format!("Re: order {i}"),
            3,
            10,
        );
    }
    for c in 0..5 {
        let to: Vec<String> = (0..200)
            .map(|j| format!("user{}@gmail.com", c * 200 + j))
            .collect();
        let hdrs = format!("To: {}\n", to.join(", "));
        msg(
            &mut m,
            "noreply@shop.example",
            &hdrs,
            "Important: new terms",
            4,
            9 + c,
        );
    }
    std::fs::write(path, m).unwrap();
}

#[test]
fn sent_style_archive_inflated_the_numbers_regression() {
    let dir = tempfile::tempdir().unwrap();
    let mbox = dir.path().join("sent.mbox");
    sent_style_archive(&mbox);
    // scan, default flags: the 5 chunks only, ranked critical as one campaign.
    let o = run(&["scan", s(&mbox), "-q"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let recs = json_lines(&o.stdout);
    assert_eq!(recs.len(), 5, "{recs:?}");
    let exposed: usize = recs
        .iter()
        .map(|r| r["exposed"].as_array().unwrap().len())
        .sum();
    assert_eq!(exposed, 1000);
    for r in &recs {
        assert_eq!(r["triage"]["profile"], "audit");
        assert_eq!(r["triage"]["severity"], "critical", "{r}");
        let signals: Vec<&str> = r["triage"]["signals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap())
            .collect();
        assert!(signals.contains(&"campaign"), "{signals:?}");
        assert!(!r["triage"]["reasons"].as_array().unwrap().is_empty());
    }
    // incident, default flags: the report and the breach record get the true numbers.
    let accounts = dir.path().join("accounts.csv");
    std::fs::write(
        &accounts,
        "id,email,has_2fa,balance,locale\nu1,user1@gmail.com,false,10,en\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let o = run(&[
        "incident",
        s(&mbox),
        "--accounts",
        s(&accounts),
        "--out",
        s(&out),
        "-q",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let h = &summary["headline"];
    assert_eq!(h["exposing_messages"], 5, "{h}");
    assert_eq!(h["addresses_exposed"], 1000, "{h}");
    assert_eq!(summary["triage"]["profile"], "audit");
}

#[test]
fn check_keeps_the_gate_and_audit_ranks_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let eml = dir.path().join("reply.eml");
    // A reply-all to two people at other companies: a bug in a rendered template (gate), an
    // ordinary thread in an archive (audit).
    std::fs::write(&eml, REPLY_ALL).unwrap();
    let gate = run(&["check", s(&eml), "--format", "jsonl"]);
    assert_eq!(gate.status.code(), Some(1), "{}", stderr(&gate));
    let f = &json_lines(&gate.stdout)[0];
    assert_eq!(f["severity"], "high");
    assert_eq!(f["profile"], "gate");
    let audit = run(&["check", s(&eml), "--format", "jsonl", "--profile", "audit"]);
    assert_eq!(audit.status.code(), Some(0), "{}", stderr(&audit));
    let f = &json_lines(&audit.stdout)[0];
    assert_eq!(f["profile"], "audit");
    assert!(
        ["low", "medium"].contains(&f["severity"].as_str().unwrap()),
        "{f}"
    );
    assert!(!f["signals"].as_array().unwrap().is_empty(), "{f}");
    assert!(!f["reasons"].as_array().unwrap().is_empty(), "{f}");
    // The human report says why.
    let human = run(&["check", s(&eml), "--profile", "audit", "--fail-on", "info"]);
    assert!(
        String::from_utf8_lossy(&human.stdout).contains("why"),
        "{}",
        String::from_utf8_lossy(&human.stdout)
    );
}

#[test]
fn min_severity_leaves_low_exposures_out_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let eml = dir.path().join("reply.eml");
    std::fs::write(&eml, REPLY_ALL).unwrap();
    let all = run(&["affected", s(&eml), "--min-severity", "info"]);
    assert_eq!(all.status.code(), Some(1), "{}", stderr(&all));
    assert_eq!(
        String::from_utf8_lossy(&all.stdout).lines().count(),
        3,
        "header + 2 rows"
    );
    let strict = run(&["affected", s(&eml), "--min-severity", "critical"]);
    assert_eq!(strict.status.code(), Some(0), "{}", stderr(&strict));
    assert!(
        stderr(&strict).contains("2 exposed address(es) left out"),
        "{}",
        stderr(&strict)
    );
}

/// The measure on real corporate Sent mail, through the binary.
#[test]
fn enron_sent_audit_fails_at_most_0_3_percent() {
    let Some(dir) = shared_or_skip("corpora/enron-sent") else {
        return;
    };
    let o = run(&[
        "check",
        s(&dir),
        "--profile",
        "audit",
        "--archive-kind",
        "sent",
        "--internal-domain",
        "enron.com",
        "--format",
        "json",
        "-q",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let msgs = v["summary"]["messages"].as_u64().unwrap();
    let failing_messages = {
        let mut locs: Vec<String> = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| ["high", "critical"].contains(&f["severity"].as_str().unwrap()))
            .map(|f| f["location"].to_string())
            .collect();
        locs.dedup();
        locs.len() as u64
    };
    assert_eq!(msgs, 610);
    assert!(
        failing_messages * 1000 <= 3 * msgs,
        "{failing_messages} of {msgs} fail"
    );
    assert!(o.status.code().is_some_and(|c| c <= 1), "{}", stderr(&o));
    // The facts stay complete: the exposing messages are still reported, ranked lower.
    assert!(v["summary"]["findings"].as_u64().unwrap() >= 15);
}
