//! `leakaudit incident` on the shipped demo (fixtures/demo, made by
//! `cargo run -p leakaudit-report --example gen_demo`): the numbers of report.html,
//! summary.json, the affected list and the plan agree; addresses stay pseudonymised; files are
//! private; the breach record carries the deadline; the report renders in headless Chromium.

use crate::util::{fixture, leakaudit};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const DETECTED: &str = "2019-11-04T08:30:00Z";

/// `incident --apply --quiet` on the demo into `out`, with this sender and reset page.
fn run_applied(out: &Path, from: &str, base: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "--apply",
        "--quiet",
        "--from",
        from,
        "--reset-base-url",
        base,
    ];
    args.extend(extra);
    run_incident(out, &args)
}

fn run_incident(out: &Path, extra: &[&str]) -> Output {
    run_incident_on(&fixture("demo/outbound.mbox"), out, extra)
}

/// `incident INPUT` with the demo's accounts, detected at [`DETECTED`].
fn run_incident_on(input: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut cmd = leakaudit();
    cmd.arg("incident")
        .arg(input)
        .arg("--accounts")
        .arg(fixture("demo/accounts.csv"))
        .arg("--out")
        .arg(out)
        .args(["--detected-at", DETECTED])
        .args(extra);
    let o = cmd.output().expect("run leakaudit");
    assert!(
        o.status.code().is_some(),
        "killed by a signal: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// A finished demo run, shared by the read-only tests.
fn demo() -> &'static (tempfile::TempDir, Output) {
    static DEMO: std::sync::OnceLock<(tempfile::TempDir, Output)> = std::sync::OnceLock::new();
    DEMO.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let o = run_incident(&dir.path().join("out"), &[]);
        (dir, o)
    })
}

fn demo_out() -> PathBuf {
    let (dir, o) = demo();
    assert_eq!(
        o.status.code(),
        Some(1),
        "the demo has violations: exit 1\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    dir.path().join("out")
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every `data-<attr>="NAME" data-value="N">TEXT<` of the page: name -> (value, text).
fn metrics(html: &str) -> BTreeMap<String, (u64, String)> {
    let mut out = BTreeMap::new();
    for part in html.split("data-metric=\"").skip(1) {
        let name = part.split('"').next().unwrap().to_string();
        let value: u64 = part
            .split("data-value=\"")
            .nth(1)
            .and_then(|v| v.split('"').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("metric {name} has no data-value"));
        let text = part
            .split_once('>')
            .map(|(_, t)| t.split('<').next().unwrap().to_string())
            .unwrap();
        assert!(
            out.insert(name.clone(), (value, text)).is_none(),
            "{name} twice"
        );
    }
    out
}

/// Minimal RFC 4180 reader (quoted fields, doubled quotes): enough for our own CSV output.
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    // A matched affected list starts with `# leakaudit-affected/1 store_id=.. match_mode=..`.
    let text = match text.strip_prefix("# leakaudit-affected/") {
        Some(rest) => rest.split_once('\n').map_or("", |(_, t)| t),
        None => text,
    };
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, '\r') => {}
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

fn by_header(rows: &[Vec<String>]) -> Vec<BTreeMap<String, String>> {
    let header = &rows[0];
    rows[1..]
        .iter()
        .map(|r| header.iter().cloned().zip(r.iter().cloned()).collect())
        .collect()
}

#[test]
fn demo_numbers_agree_across_report_summary_affected_list_and_plan() {
    let out = demo_out();
    let summary: Value = serde_json::from_str(&read(&out.join("summary.json"))).unwrap();
    let html = read(&out.join("report.html"));
    let h = &summary["headline"];
    assert_eq!(summary["schema"], "leakaudit-incident-summary");
    assert_eq!(summary["version"], 2);

    // Every number the page marks as a metric equals summary.json, in data-value and in text.
    let m = metrics(&html);
    for name in [
        "messages_scanned",
        "exposing_messages",
        "campaigns",
        "addresses_exposed",
        "accounts_affected",
        "resets_planned",
        "reviews_planned",
        "notifications_planned",
        "address_exposures",
        "exposed_without_account",
        "findings",
        "single_messages",
    ] {
        let (value, text) = m
            .get(name)
            .unwrap_or_else(|| panic!("no metric {name} in the page"));
        assert_eq!(
            Some(*value),
            h[name].as_u64(),
            "{name}: page vs summary.json"
        );
        assert_eq!(
            text.replace(',', ""),
            value.to_string(),
            "{name}: shown text"
        );
    }
    assert_eq!(m.len(), 12, "a metric without a check: {:?}", m.keys());

    // The demo's ground truth (see the generator): 378 messages; the roundtable invitation
    // (5 customers) and the 8 batches of 100 with 6 addresses repeated across two batches.
    assert_eq!(h["messages_scanned"], 378);
    assert_eq!(h["exposing_messages"], 9);
    assert_eq!(
        h["campaigns"], 1,
        "the 8 batches; the invitation is a single message"
    );
    assert_eq!(h["single_messages"], 1);
    assert_eq!(summary["singles"]["messages"], 1);
    assert_eq!(summary["singles"]["addresses_exposed"], 5);
    assert_eq!(h["addresses_exposed"], 799);
    assert_eq!(h["address_exposures"], 805);
    let campaigns = summary["campaigns"].as_array().unwrap();
    assert_eq!(campaigns.len(), 1);
    assert_eq!(campaigns[0]["id"], "C1");
    assert_eq!(campaigns[0]["chunks"], 8);
    assert_eq!(campaigns[0]["addresses_exposed"], 794);
    assert_eq!(
        campaigns[0]["subjects"].as_array().unwrap().len(),
        6,
        "one subject per language, one campaign"
    );
    // The headline sentence names it, in summary.json and at the top of the page.
    let sentence = h["sentence"].as_str().unwrap();
    let subject = campaigns[0]["subjects"][0].as_str().unwrap();
    for part in [
        format!("Mass mailing \"{subject}\""),
        "794 addresses in 8 chunks".to_string(),
        campaigns[0]["first"].as_str().unwrap().to_string(),
        campaigns[0]["last"].as_str().unwrap().to_string(),
        "1 single message exposing 5 addresses".to_string(),
    ] {
        assert!(sentence.contains(&part), "{part:?} not in {sentence:?}");
    }
    let lead = html
        .split("<p class=\"lead\" data-headline>")
        .nth(1)
        .and_then(|p| p.split("</p>").next())
        .expect("the page leads with the headline sentence");
    assert!(lead.contains("794 addresses in 8 chunks"), "{lead}");
    assert!(
        html.find("data-headline").unwrap() < html.find("data-metric").unwrap(),
        "the sentence comes before the numbers"
    );
    assert!(campaigns[0]["subjects"]
        .as_array()
        .unwrap()
        .contains(&Value::from("Важно: изменения в вашем аккаунте")));
    // The page lists the same campaigns with the same sizes.
    for c in campaigns {
        let id = c["id"].as_str().unwrap();
        let row = html
            .split(&format!("<tr data-campaign=\"{id}\">"))
            .nth(1)
            .unwrap_or_else(|| panic!("campaign {id} not in the page"));
        let row = row.split("</tr>").next().unwrap();
        assert!(
            row.contains(&format!("data-chunks=\"{}\"", c["chunks"])),
            "{row}"
        );
        assert!(row.contains(&format!("data-addresses=\"{}\"", c["addresses_exposed"])));
    }
    let chunks: u64 = campaigns
        .iter()
        .map(|c| c["chunks"].as_u64().unwrap())
        .sum();
    assert_eq!(
        chunks + h["single_messages"].as_u64().unwrap(),
        h["exposing_messages"].as_u64().unwrap()
    );
    // campaigns.csv: one row per exposing message, as many per campaign as it has chunks.
    let chunk_rows = by_header(&csv_rows(&read(&out.join("campaigns.csv"))));
    assert_eq!(
        chunk_rows.len() as u64,
        h["exposing_messages"].as_u64().unwrap()
    );
    for c in campaigns {
        let n = chunk_rows
            .iter()
            .filter(|r| r["campaign"] == c["id"].as_str().unwrap())
            .count();
        assert_eq!(Some(n as u64), c["chunks"].as_u64());
    }
    assert_eq!(chunk_rows[0]["campaign"], "C1", "the campaign first");
    assert_eq!(chunk_rows[8]["campaign"], "S1", "then the single message");
    let c2: Vec<_> = chunk_rows
        .iter()
        .filter(|r| r["campaign"] == "C1")
        .collect();
    assert!(
        c2.iter().all(|r| r["addresses_exposed"] == "100"),
        "8 batches of 100"
    );

    // The affected list: one row per exposed address; accounts as counted.
    let rows = by_header(&csv_rows(&read(&out.join("affected.csv"))));
    assert_eq!(rows.len() as u64, h["addresses_exposed"].as_u64().unwrap());
    let ids: BTreeSet<&str> = rows
        .iter()
        .flat_map(|r| r["account_id"].split(';').filter(|s| !s.is_empty()))
        .collect();
    assert_eq!(ids.len() as u64, h["accounts_affected"].as_u64().unwrap());
    let unmatched = rows.iter().filter(|r| r["account_id"].is_empty()).count();
    assert_eq!(
        unmatched as u64,
        h["exposed_without_account"].as_u64().unwrap()
    );
    // People without an account are data subjects too: each gets a notice (policy default).
    assert_eq!(
        unmatched as u64,
        h["notices_without_account_planned"].as_u64().unwrap()
    );
    let plan: Value = serde_json::from_str(&read(&out.join("plan.json"))).unwrap();
    assert_eq!(plan["notices"].as_array().unwrap().len(), unmatched);
    // Audience histogram sums to the list, bin by bin.
    for bin in summary["audience_histogram"].as_array().unwrap() {
        let min = bin["min"].as_u64().unwrap();
        let max = bin["max"].as_u64().unwrap_or(u64::MAX);
        let n = rows
            .iter()
            .filter(|r| (min..=max).contains(&r["audience"].parse::<u64>().unwrap()))
            .count();
        assert_eq!(
            Some(n as u64),
            bin["addresses"].as_u64(),
            "bin {}",
            bin["label"]
        );
    }

    // Independently: exposed addresses that are in the accounts CSV (any case).
    let exposed: BTreeSet<String> = rows.iter().map(|r| r["address"].clone()).collect();
    let accounts = by_header(&csv_rows(&read(&fixture("demo/accounts.csv"))));
    let with_account = accounts
        .iter()
        .filter(|a| exposed.contains(&a["email"].to_lowercase()))
        .count();
    assert_eq!(
        with_account as u64,
        h["accounts_affected"].as_u64().unwrap()
    );
    assert!(
        with_account < exposed.len(),
        "the demo has exposed addresses without account"
    );
    assert!(
        with_account < accounts.len(),
        "the demo has accounts never exposed"
    );

    // The plan file agrees with the page and the summary.
    let plan: Value = serde_json::from_str(&read(&out.join("plan.json"))).unwrap();
    let t = &plan["totals"];
    assert_eq!(t["force_password_reset"], h["resets_planned"]);
    assert_eq!(t["human_review"], h["reviews_planned"]);
    assert_eq!(t["notify"], h["notifications_planned"]);
    assert_eq!(t["accounts"], h["accounts_affected"]);
    assert_eq!(plan["content_hash"], summary["plan"]["hash"]);
    assert!(h["resets_planned"].as_u64().unwrap() > 0);
    assert_eq!(summary["plan"]["applied"], false);

    // Findings per rule add up.
    let per_rule: u64 = summary["findings_by_rule"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["findings"].as_u64().unwrap())
        .sum();
    assert_eq!(per_rule, h["findings"].as_u64().unwrap());
    let jsonl = read(&out.join("findings.jsonl"));
    assert_eq!(jsonl.lines().count() as u64, per_rule);

    // The timeline counts every dated exposing message once.
    let on_chart: u64 = summary["timeline"]["bins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["exposing_messages"].as_u64().unwrap())
        .sum();
    assert_eq!(on_chart, 9);
}

#[test]
fn demo_report_is_pseudonymised_and_private() {
    let out = demo_out();
    let html = read(&out.join("report.html")).to_lowercase();
    let summary = read(&out.join("summary.json")).to_lowercase();
    let record = read(&out.join("breach-record.md")).to_lowercase();
    let accounts = by_header(&csv_rows(&read(&fixture("demo/accounts.csv"))));
    let affected = by_header(&csv_rows(&read(&out.join("affected.csv"))));
    let mut addresses: BTreeSet<String> =
        accounts.iter().map(|a| a["email"].to_lowercase()).collect();
    addresses.extend(affected.iter().map(|r| r["address"].clone()));
    assert!(addresses.len() > 900);
    for a in &addresses {
        assert!(!html.contains(a.as_str()), "{a} in clear in report.html");
        assert!(
            !summary.contains(a.as_str()),
            "{a} in clear in summary.json"
        );
        assert!(
            !record.contains(a.as_str()),
            "{a} in clear in breach-record.md"
        );
    }
    // Local parts alone do not leak either (the mask keeps one letter).
    let local = affected[0]["address"]
        .split('@')
        .next()
        .unwrap()
        .to_string();
    assert!(local.len() > 3 && !html.contains(&format!(">{local}@")));
    assert!(html.contains("***@"), "masked addresses are shown");

    // The folder is 0700 and every file in it 0600.
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&out), 0o700);
    let mut names = Vec::new();
    for e in std::fs::read_dir(&out).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            assert_eq!(mode(&p), 0o600, "{}", p.display());
            names.push(p.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    for want in [
        "report.html",
        "summary.json",
        "breach-record.md",
        "affected.csv",
        "plan.json",
        "accounts.sqlite",
        "findings.jsonl",
        "campaigns.csv",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
    }
    assert!(
        !names.iter().any(|n| n.starts_with(".leakaudit-")),
        "temp file left"
    );

    // The command says what it wrote.
    let stderr = String::from_utf8_lossy(&demo().1.stderr);
    assert!(
        stderr.contains("report.html") && stderr.contains("dry run"),
        "{stderr}"
    );
}

#[test]
fn demo_breach_record_has_the_72_hour_deadline() {
    let out = demo_out();
    let record = read(&out.join("breach-record.md"));
    let summary: Value = serde_json::from_str(&read(&out.join("summary.json"))).unwrap();
    assert_eq!(summary["detected_at"], DETECTED);
    assert_eq!(summary["notification_deadline"], "2019-11-07T08:30:00Z");
    assert!(record.contains("2019-11-07T08:30:00Z"), "{record}");
    assert!(record.contains("72 hours after detection"));
    assert!(
        record.contains("Mon 14 Oct 2019, 14:32 UTC"),
        "first exposing message"
    );
    assert!(record.contains("**799** distinct e-mail addresses"));
    assert!(record.contains("**805** address exposures"));
    assert!(
        record.contains("[TO BE COMPLETED:"),
        "fields for a person are marked"
    );
    assert!(record.contains("Art. 33(3)(d)"));
    let html = read(&out.join("report.html"));
    assert!(html.contains("data-deadline=\"2019-11-07T08:30:00Z\""));
}

#[test]
fn show_addresses_puts_addresses_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("clear");
    let o = run_incident(&out, &["--show-addresses", "--quiet"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        o.stderr.is_empty(),
        "--quiet: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let html = read(&out.join("report.html"));
    let affected = by_header(&csv_rows(&read(&out.join("affected.csv"))));
    let shown = affected
        .iter()
        .filter(|r| html.contains(&r["address"]))
        .count();
    assert!(
        shown >= 10,
        "the most exposed addresses are listed in clear ({shown})"
    );
    assert!(html.contains("addresses in clear"));
}

/// A one-message archive whose subject and display names try to inject markup.
fn hostile(dir: &Path) -> (PathBuf, PathBuf) {
    let mbox = dir.join("hostile.mbox");
    std::fs::write(
        &mbox,
        "From x@shop.example Fri Nov  1 09:00:00 2019\n\
         From: Shop <news@shop.example>\n\
         To: \"<img src=x onerror=alert(2)>\" <alice@gmail.com>, bob@yahoo.com,\n \
         carol@outlook.com\n\
         Subject: <script>alert(1)</script> & \"quotes\" ]]> --> <!--\n\
         Date: Fri, 01 Nov 2019 09:00:00 +0000\n\
         Message-ID: <a\"><script>alert(3)</script>@shop.example>\n\n\
         Hello.\n\n",
    )
    .unwrap();
    let csv = dir.join("accounts.csv");
    std::fs::write(
        &csv,
        "id,email,has_2fa,balance,locale\nA1,alice@gmail.com,false,10.5,en\nA2,dave@gmail.com,true,0,de\n",
    )
    .unwrap();
    (mbox, csv)
}

#[test]
fn hostile_subject_is_escaped_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let (mbox, csv) = hostile(dir.path());
    let out = dir.path().join("out");
    let o = leakaudit()
        .arg("incident")
        .arg(&mbox)
        .arg("--accounts")
        .arg(&csv)
        .arg("--out")
        .arg(&out)
        .arg("--quiet")
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let html = read(&out.join("report.html"));
    assert_eq!(
        html.matches("<script").count(),
        1,
        "only the report's own probe script"
    );
    assert!(!html.contains("<img"));
    assert!(!html.contains("<!--"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;"));
    let m = metrics(&html);
    assert_eq!(m["exposing_messages"].0, 1);
    assert_eq!(m["addresses_exposed"].0, 3);
    assert_eq!(m["accounts_affected"].0, 1);
    let record = read(&out.join("breach-record.md"));
    assert!(!record.contains("<script>"), "{record}");
    assert!(record.contains("&lt;script&gt;"));
    // JSON carries the subject as data, intact.
    let summary: Value = serde_json::from_str(&read(&out.join("summary.json"))).unwrap();
    assert_eq!(
        summary["top_messages"][0]["subject"],
        "<script>alert(1)</script> & \"quotes\" ]]> --> <!--"
    );
    if let Some(dom) = render_dom(&out.join("report.html"), "hostile") {
        assert!(
            dom.contains("data-js-errors=\"0\""),
            "no script ran: {}",
            &dom[..300.min(dom.len())]
        );
    }
}

#[test]
fn clean_archive_exits_zero_with_an_empty_report() {
    let dir = tempfile::tempdir().unwrap();
    let mbox = dir.path().join("clean.mbox");
    std::fs::write(
        &mbox,
        "From a@kx.example Fri Nov  1 09:00:00 2019\nFrom: a@kx.example\nTo: one@gmail.com\nSubject: Your receipt\nDate: Fri, 01 Nov 2019 09:00:00 +0000\n\nThanks.\n\n",
    )
    .unwrap();
    let (_, csv) = hostile(dir.path());
    let out = dir.path().join("out");
    let o = leakaudit()
        .arg("incident")
        .arg(&mbox)
        .arg("--accounts")
        .arg(&csv)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let html = read(&out.join("report.html"));
    let m = metrics(&html);
    assert_eq!(m["messages_scanned"].0, 1);
    assert_eq!(m["exposing_messages"].0, 0);
    assert_eq!(m["campaigns"].0, 0);
    assert!(html.contains("No message exposed anyone."));
}

#[test]
fn unreadable_input_and_bad_accounts_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (mbox, csv) = hostile(dir.path());
    // A missing archive next to a good one: the rest is still reported, exit 2.
    let out = dir.path().join("out");
    let o = leakaudit()
        .arg("incident")
        .arg(&mbox)
        .arg(dir.path().join("missing.mbox"))
        .arg("--accounts")
        .arg(&csv)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.join("report.html").exists(),
        "the report is still written"
    );
    let summary: Value = serde_json::from_str(&read(&out.join("summary.json"))).unwrap();
    assert_eq!(summary["scan"]["errors"], 1);
    assert_eq!(summary["headline"]["exposing_messages"], 1);

    // A bad accounts CSV stops before anything is planned.
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "id,email\nA1,not-an-address\n").unwrap();
    let out2 = dir.path().join("out2");
    let o = leakaudit()
        .arg("incident")
        .arg(&mbox)
        .arg("--accounts")
        .arg(&bad)
        .arg("--out")
        .arg(&out2)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(!out2.join("plan.json").exists());
}

/// The Chromium binary, or `None` (skip) outside CI; in CI a missing browser fails.
fn chromium() -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| {
            std::env::var_os("PATH")
                .map(|p| {
                    std::env::split_paths(&p)
                        .map(|d| d.join(name))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
        .find(|p| p.is_file());
    if found.is_none() {
        if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
            panic!("chromium is not installed: CI must install it (apt-get install -y chromium)");
        }
        eprintln!("NOTICE: chromium not installed; skipping the browser rendering check");
    }
    found
}

/// Runs headless Chromium on `page` with `mode` (`--dump-dom` or `--screenshot=...`);
/// returns stdout and stderr. Fails on a hang.
fn run_chromium(bin: &Path, page: &Path, mode: &str, profile: &Path) -> (String, String) {
    run_chromium_sized(bin, page, mode, profile, "1280,2400")
}

/// [`run_chromium`] with a window of `size` (`width,height`).
fn run_chromium_sized(
    bin: &Path,
    page: &Path,
    mode: &str,
    profile: &Path,
    size: &str,
) -> (String, String) {
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--window-size={size}"))
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(mode)
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).ok();
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut s).ok();
        s
    });
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(120) {
            child.kill().ok();
            child.wait().ok();
            panic!("chromium did not finish in 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    (out_t.join().unwrap(), err_t.join().unwrap())
}

/// The rendered DOM of `page`, after asserting the browser logged no console message.
fn render_dom(page: &Path, what: &str) -> Option<String> {
    let bin = chromium()?;
    let profile = tempfile::tempdir().unwrap();
    let (dom, log) = run_chromium(&bin, page, "--dump-dom", profile.path());
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(
        console.is_empty(),
        "{what}: console messages (errors, CSP violations): {console:#?}"
    );
    assert!(
        dom.contains("</html>"),
        "{what}: no DOM dumped; log:\n{log}"
    );
    Some(dom)
}

#[test]
fn report_renders_in_headless_chromium_without_console_errors() {
    let out = demo_out();
    let page = out.join("report.html");
    let Some(dom) = render_dom(&page, "demo report") else {
        return;
    };
    // The probe script ran (DOMContentLoaded), saw both charts, and caught no error.
    assert!(
        dom.contains("data-charts=\"2\""),
        "charts not in the rendered DOM"
    );
    assert!(dom.contains("data-js-errors=\"0\""));
    assert!(dom.contains("data-chart=\"timeline\"") && dom.contains("data-chart=\"audience\""));
    assert_eq!(
        dom.matches("class=\"bar-exposing\"").count(),
        2,
        "two bars: 14 Oct and 1 Nov"
    );
    assert!(dom.matches("class=\"bar-audience\"").count() >= 8);

    // A screenshot: the page paints (a PNG of the requested size, not blank).
    let bin = chromium().unwrap();
    let shot = out.join("..").join("report.png");
    let profile = tempfile::tempdir().unwrap();
    let (_, log) = run_chromium(
        &bin,
        &page,
        &format!("--screenshot={}", shot.display()),
        profile.path(),
    );
    let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot ({e}); log:\n{log}"));
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    assert_eq!(width, 1280);
    assert!(
        png.len() > 50_000,
        "a blank page compresses to almost nothing ({} bytes)",
        png.len()
    );

    // Issue 27: the first screen names the incident. The page's probe records where the
    // headline sentence ends; it must lie inside a laptop's first screen (1280x800), and it
    // must name campaign 1 (the mass mail: its chunks and addresses).
    let bottom: u32 = dom
        .split("data-headline-bottom=\"")
        .nth(1)
        .and_then(|v| v.split('"').next())
        .and_then(|v| v.parse().ok())
        .expect("the probe measured the headline");
    assert!(bottom > 0 && bottom <= 800, "headline ends at {bottom} px");
    let lead = dom
        .split("class=\"lead\"")
        .nth(1)
        .and_then(|p| p.split("</p>").next())
        .unwrap();
    assert!(
        lead.contains("Mass mailing") && lead.contains("794 addresses in 8 chunks"),
        "{lead}"
    );
    // The first screen as a person sees it (kept beside the report for a look).
    let first = out.join("..").join("report-first-screen.png");
    let profile = tempfile::tempdir().unwrap();
    let (_, log) = run_chromium_sized(
        &bin,
        &page,
        &format!("--screenshot={}", first.display()),
        profile.path(),
        "1280,800",
    );
    let png = std::fs::read(&first).unwrap_or_else(|e| panic!("no screenshot ({e}); log:\n{log}"));
    assert_eq!(u32::from_be_bytes(png[20..24].try_into().unwrap()), 800);
}

#[test]
fn apply_executes_the_plan_once() {
    let dir = tempfile::tempdir().unwrap();
    let (mbox, csv) = hostile(dir.path());
    let out = dir.path().join("out");
    let run = || {
        leakaudit()
            .arg("incident")
            .arg(&mbox)
            .arg("--accounts")
            .arg(&csv)
            .arg("--out")
            .arg(&out)
            .args(["--apply", "--from", "Security <security@shop.example>"])
            .args(["--reset-base-url", "https://shop.example/reset"])
            .output()
            .unwrap()
    };
    let o = run();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("applied: 1 accounts done now"), "{stderr}");
    let summary: Value = serde_json::from_str(&read(&out.join("summary.json"))).unwrap();
    assert_eq!(summary["plan"]["applied"], true);
    // alice: no 2FA and a balance -> reset + notify; dave was never exposed.
    assert_eq!(summary["headline"]["resets_planned"], 1);
    assert_eq!(summary["headline"]["notifications_planned"], 1);
    assert_eq!(summary["plan"]["failed"], 0);
    let staged: Vec<_> = std::fs::read_dir(out.join("outbox/staged/new"))
        .unwrap()
        .collect();
    // One for alice's account, one per exposed address without an account (issue 29).
    assert_eq!(summary["headline"]["notices_without_account_planned"], 2);
    assert_eq!(
        staged.len(),
        1 + 2,
        "one notification per account and per notice"
    );
    assert!(read(&out.join("audit.jsonl")).lines().count() >= 2);
    let html = read(&out.join("report.html"));
    assert!(
        html.contains("Applied: 2 actions done, 0 failed."),
        "reset + notify"
    );
    // The notices without an account are counted apart, in the page, summary.json and the
    // breach record.
    assert!(
        html.contains(
            r#"without an account: <span data-plan="notices_staged">2</span> staged, 0 failed."#
        ),
        "{html}"
    );
    assert_eq!(summary["plan"]["notices"], 2);
    assert_eq!(summary["plan"]["notices_done"], 2);
    assert_eq!(summary["plan"]["notices_failed"], 0);
    let record = read(&out.join("breach-record.md"));
    assert!(
        record.contains("1 notifications to data subjects with an account and 2 to exposed addresses without one")
            && record.contains("Notices to exposed addresses without an account staged: 2; failed: 0."),
        "{record}"
    );
    assert!(!html.contains("token="), "no reset link in the report");

    // The same command again: the same plan (same store), nothing done twice.
    let o = run();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("0 accounts done now, 1 already done"),
        "{stderr}"
    );
    let staged: Vec<_> = std::fs::read_dir(out.join("outbox/staged/new"))
        .unwrap()
        .collect();
    assert_eq!(staged.len(), 3, "no notice staged twice");
}

#[test]
fn apply_needs_a_sender_and_a_reset_page() {
    let dir = tempfile::tempdir().unwrap();
    let (mbox, csv) = hostile(dir.path());
    let o = leakaudit()
        .arg("incident")
        .arg(&mbox)
        .arg("--accounts")
        .arg(&csv)
        .arg("--out")
        .arg(dir.path().join("out"))
        .arg("--apply")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--reset-base-url"));
    assert!(
        !dir.path().join("out").exists(),
        "nothing written before the arguments are checked"
    );
}

#[test]
fn organisation_settings_reach_the_exposure_model() {
    let dir = tempfile::tempdir().unwrap();
    let mbox = dir.path().join("partner.mbox");
    std::fs::write(
        &mbox,
        "From a@kx.example Fri Nov  1 09:00:00 2019\nFrom: a@kx.example\nTo: alice@gmail.com, bob@partner.example\nSubject: Contract\nDate: Fri, 01 Nov 2019 09:00:00 +0000\n\nHi.\n\n",
    )
    .unwrap();
    let (_, csv) = hostile(dir.path());
    let run = |out: &str, extra: &[&str]| {
        leakaudit()
            .arg("incident")
            .arg(&mbox)
            .arg("--accounts")
            .arg(&csv)
            .arg("--out")
            .arg(dir.path().join(out))
            .arg("--quiet")
            .args(extra)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    // Two external parties see each other: a violation.
    assert_eq!(run("a", &[]).status.code(), Some(1));
    // The partner is the organisation's own domain: nobody is exposed.
    let o = run("b", &["--internal-domain", "partner.example"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The same from ./leakaudit.toml in the working directory.
    std::fs::write(
        dir.path().join("leakaudit.toml"),
        "internal_domains = [\"partner.example\"]\n",
    )
    .unwrap();
    assert_eq!(run("c", &[]).status.code(), Some(0));
    let summary: Value = serde_json::from_str(&read(&dir.path().join("c/summary.json"))).unwrap();
    assert_eq!(summary["headline"]["exposing_messages"], 0);
}

#[test]
fn the_same_archive_twice_counts_each_message_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = leakaudit()
        .arg("incident")
        .arg(fixture("demo/outbound.mbox"))
        .arg(fixture("demo/outbound.mbox"))
        .arg("--accounts")
        .arg(fixture("demo/accounts.csv"))
        .arg("--out")
        .arg(&out)
        .arg("--quiet")
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let s: Value = serde_json::from_str(&read(&out.join("summary.json"))).unwrap();
    let h = &s["headline"];
    assert_eq!(h["messages_scanned"], 756, "every copy is read");
    assert_eq!(h["exposing_messages"], 9, "but counted once");
    assert_eq!(h["duplicate_copies"], 9);
    assert_eq!(h["campaigns"], 1);
    assert_eq!(s["campaigns"][0]["chunks"], 8);
    assert_eq!(h["addresses_exposed"], 799);
    assert_eq!(h["address_exposures"], 805);
    assert!(read(&out.join("report.html")).contains("9 further copies"));
}

/// Issue 27: on a journal with hundreds of single exposing messages and one chunked mass mail,
/// the report listed the groups by date and the mass mail came late. It must be campaign 1 in
/// summary.json, campaigns.csv and report.html, and the headline sentence names it.
#[test]
fn the_chunked_mass_mail_leads_the_report_among_hundreds_of_single_messages() {
    use std::fmt::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let mbox = dir.path().join("journal.mbox");
    let words = [
        "invoice", "order", "meeting", "contract", "offer", "renewal", "visit", "quote",
        "shipment", "payment", "survey", "ticket", "upgrade", "welcome", "reminder",
    ];
    assert_eq!(rfc2822(1_572_000_000), "Fri, 25 Oct 2019 10:40:00 +0000");
    let mut m = String::new();
    let day = 86_400i64;
    let t0 = 1_572_000_000i64; // late Oct 2019
                               // The separator's date is not read: the Date header is.
    let date = |_t: i64| "From x@shop.example Mon Jan  1 00:00:00 2019\n";
    // 300 single messages, each from its own sender, to 2-4 strangers; one a day or so.
    for n in 0..300i64 {
        let t = t0 - (300 - n) * 3600 * 7;
        let to: Vec<String> = (0..2 + n % 3)
            .map(|k| format!("cust{n}x{k}@gmail.com"))
            .collect();
        let subject = format!(
            "{} {} {}",
            words[(n % 15) as usize],
            words[((n / 15) % 15) as usize],
            words[((n / 7) % 15) as usize]
        );
        let _ = write!(
            m,
            "{}From: rep{n}@shop.example\nTo: {}\nSubject: {subject}\nDate: {}\nMessage-ID: <s{n}@shop.example>\n\nHello\n\n",
            date(t),
            to.join(", "),
            rfc2822(t)
        );
    }
    // The mass mail, sent last: 27 chunks of 40 customers in To.
    for c in 0..27i64 {
        let t = t0 + day + c * 120;
        let to: Vec<String> = (0..40).map(|k| format!("u{c}y{k}@yahoo.com")).collect();
        let _ = write!(
            m,
            "{}From: Exchange <noreply@shop.example>\nTo: {}\nSubject: Important changes to your account\nDate: {}\nMessage-ID: <mass{c}@shop.example>\n\nNew terms\n\n",
            date(t),
            to.join(", "),
            rfc2822(t)
        );
    }
    std::fs::write(&mbox, m).unwrap();
    let out = dir.path().join("out");
    let o = run_incident_on(&mbox, &out, &["--quiet"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let s: Value = serde_json::from_str(&read(&out.join("summary.json"))).unwrap();
    let h = &s["headline"];
    assert_eq!(h["exposing_messages"], 327);
    assert_eq!(h["campaigns"], 1, "{}", s["campaigns"]);
    assert_eq!(h["single_messages"], 300);
    let c1 = &s["campaigns"][0];
    assert_eq!(c1["id"], "C1");
    assert_eq!(c1["chunks"], 27);
    assert_eq!(c1["addresses_exposed"], 1080);
    assert_eq!(c1["subjects"][0], "Important changes to your account");
    let singles_addresses: u64 = (0..300).map(|n| 2 + n % 3).sum();
    assert_eq!(s["singles"]["addresses_exposed"], singles_addresses);
    let sentence = h["sentence"].as_str().unwrap();
    assert!(
        sentence.starts_with(
            "Mass mailing \"Important changes to your account\" from noreply@shop.example exposed 1,080 addresses in 27 chunks, sent "
        ),
        "{sentence}"
    );
    assert!(
        sentence.ends_with(&format!(
            "Besides: 300 single messages exposing {singles_addresses} addresses."
        )),
        "{sentence}"
    );
    // campaigns.csv: the 27 chunks first, then the single messages.
    let rows = by_header(&csv_rows(&read(&out.join("campaigns.csv"))));
    assert_eq!(rows.len(), 327);
    assert!(rows[..27].iter().all(|r| r["campaign"] == "C1"));
    assert_eq!(rows[27]["campaign"], "S1");
    assert_eq!(
        rows[27]["addresses_exposed"], "4",
        "the largest single message first"
    );
    // report.html: the headline, then the campaigns table starting with C1 and the fold.
    let html = read(&out.join("report.html"));
    let lead = html
        .split("<p class=\"lead\" data-headline>")
        .nth(1)
        .and_then(|p| p.split("</p>").next())
        .unwrap();
    assert!(
        lead.contains("&quot;Important changes to your account&quot;"),
        "{lead}"
    );
    assert!(lead.contains("1,080 addresses in 27 chunks"), "{lead}");
    let table = html.split("data-table=\"campaigns\"").nth(1).unwrap();
    let first_row = table.split("<tr data-campaign=\"").nth(1).unwrap();
    assert!(first_row.starts_with("C1\""), "{}", &first_row[..40]);
    assert_eq!(
        table
            .split("</table>")
            .next()
            .unwrap()
            .matches("<tr data-campaign=")
            .count(),
        1
    );
    assert!(
        html.contains("and <span data-metric=\"single_messages\" data-value=\"300\">300</span> single messages exposing"),
        "the long tail is folded"
    );
}

/// `Fri, 01 Nov 2019 09:00:00 +0000` for a Date header (days to civil date: H. Hinnant).
fn rfc2822(t: i64) -> String {
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let wd = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let mon = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(m - 1) as usize];
    format!(
        "{wd}, {d:02} {mon} {y} {:02}:{:02}:{:02} +0000",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Issue 29 (2): a second leak through the notification itself. A sender whose display name
/// is a customer's address, or a template whose subject names one, is refused before
/// anything is written (the outbox gate would refuse every message too).
#[test]
fn a_customer_address_in_the_sender_or_a_template_never_reaches_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let run = |out: &str, from: &str, extra: &[&str]| {
        run_applied(
            &dir.path().join(out),
            from,
            "https://shop.example/reset",
            extra,
        )
    };
    let o = run(
        "from",
        "\"c.anderson@gmail.com\" <security@shop.example>",
        &[],
    );
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("holds another address"), "{err}");
    assert!(
        !dir.path().join("from").exists(),
        "nothing written before the sender is checked"
    );

    let templates = dir.path().join("templates");
    std::fs::create_dir(&templates).unwrap();
    for subject in [
        "Notice for c.anderson@gmail.com",
        "Notice for c.anderson\u{ff20}gmail.com",
        "Notice: mailto:c.anderson%40gmail.com",
    ] {
        std::fs::write(
            templates.join("en.toml"),
            format!("subject = \"{subject}\"\n"),
        )
        .unwrap();
        let o = run(
            "subject",
            "Security <security@shop.example>",
            &["--templates", templates.to_str().unwrap()],
        );
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(2), "{subject}: {err}");
        assert!(
            err.contains("en.toml:1: `subject`: an email address"),
            "{subject}: {err}"
        );
        assert!(
            !dir.path().join("subject").exists(),
            "{subject}: nothing written before the templates are checked"
        );
    }
}

/// Issue 29 (3): a template wrapping `{link}` in a foreign URL, or with a separate foreign
/// link, and a reset page that is not plain https, are refused when the command starts:
/// nothing is written, no store exists, so no token and no state.
#[test]
fn templates_and_the_reset_page_are_checked_before_anything_changes() {
    let dir = tempfile::tempdir().unwrap();
    let templates = dir.path().join("templates");
    std::fs::create_dir(&templates).unwrap();
    std::fs::write(
        templates.join("en.toml"),
        "reset_done = \"Choose a new password: https://evil.example/r?next={link}\"\n",
    )
    .unwrap();
    std::fs::write(
        templates.join("fr.toml"),
        "no_change = \"Confirmez ici : https://evil.example/verify\"\n",
    )
    .unwrap();
    let run = |out: &str, base: &str, extra: &[&str]| {
        let from = "Security <security@shop.example>";
        run_applied(&dir.path().join(out), from, base, extra)
    };
    let o = run(
        "templates-out",
        "https://shop.example/reset",
        &["--templates", templates.to_str().unwrap()],
    );
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("en.toml:1: `reset_done`: a link to evil.example")
            && err.contains("fr.toml:1: `no_change`: a link to evil.example"),
        "both files at once: {err}"
    );
    assert!(
        !dir.path().join("templates-out").exists(),
        "nothing written before the templates are checked"
    );
    for (base, why) in [
        ("http://shop.example/reset", "https"),
        (
            "https://shop.example@evil.example/reset",
            "user information",
        ),
        ("https://sh\u{43e}p.example/reset", "mixes scripts"),
    ] {
        let out = format!("base-{}", why.replace(' ', "-"));
        let o = run(&out, base, &[]);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(2), "{base}: {err}");
        assert!(err.contains(why), "{base}: {err}");
        assert!(
            !dir.path().join(&out).exists(),
            "{base}: nothing written before the reset page is checked"
        );
    }
}

/// Issue 29 (5): a rerun with changed inputs (two more account rows, for addresses that had
/// none) used to overwrite plan.json, affected.csv and findings.jsonl of the applied incident,
/// and its plan reset the 204 accounts again and notified everyone twice. Now the earlier
/// outputs are kept whole in `earlier/<hash>/`, the new plan re-plans the incident and is
/// applied as a delta: one new reset (the new account without 2FA, with its notification:
/// the link reaches it only so), no second message to anyone notified already (the account
/// with 2FA had its notice), and the report says what the delta added. The same inputs again
/// resume (nothing new).
#[test]
fn a_rerun_with_changed_inputs_is_applied_as_a_delta_of_the_incident() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("accounts.csv");
    std::fs::copy(fixture("demo/accounts.csv"), &csv).unwrap();
    let out = dir.path().join("out");
    let run = || {
        leakaudit()
            .arg("incident")
            .arg(fixture("demo/outbound.mbox"))
            .arg("--accounts")
            .arg(&csv)
            .arg("--out")
            .arg(&out)
            .args([
                "--apply",
                "--quiet",
                "--from",
                "Security <security@shop.example>",
            ])
            .args(["--reset-base-url", "https://shop.example/reset"])
            .args(["--detected-at", "2019-11-04T08:30:00Z"])
            .output()
            .unwrap()
    };
    let o = run();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let files = [
        "plan.json",
        "affected.csv",
        "findings.jsonl",
        "summary.json",
    ];
    let snapshot = |dir: &Path| -> Vec<Vec<u8>> {
        files
            .iter()
            .map(|f| std::fs::read(dir.join(f)).unwrap())
            .collect()
    };
    let json = |p: PathBuf| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    };
    let count = |d: PathBuf| std::fs::read_dir(d).map_or(0, |r| r.count());
    let tokens = || -> usize {
        use leakaudit_remediation::store::{AccountStore, SqliteStore};
        let st = SqliteStore::open(&out.join("accounts.sqlite")).unwrap();
        let ids = std::fs::read_to_string(&csv).unwrap();
        ids.lines()
            .skip(1)
            .filter_map(|l| l.split(',').next())
            .map(|id| st.tokens(id).unwrap().len())
            .sum()
    };
    // The same inputs: a resumed run, nothing to do, the outputs kept in place.
    let first = json(out.join("plan.json"));
    let o = run();
    assert_eq!(o.status.code(), Some(1));
    assert!(!out.join(".rerun").exists() && !out.join("earlier").exists());
    assert_eq!(
        json(out.join("plan.json"))["content_hash"],
        first["content_hash"]
    );
    let before = snapshot(&out);
    assert_eq!(tokens(), 204);

    let mut text = std::fs::read_to_string(&csv).unwrap();
    text.push_str("KX-999998,aiko.ito67@yahoo.co.jp,false,5.00,en,0,2019-11-01\n");
    text.push_str("KX-999997,aiko.sato@outlook.com,true,0.00,en,0,2019-11-01\n");
    std::fs::write(&csv, text).unwrap();
    let o = run();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{err}");
    let hash = first["content_hash"].as_str().unwrap();
    let earlier = out
        .join("earlier")
        .join(&hash["sha256:".len().."sha256:".len() + 12]);
    assert_eq!(
        snapshot(&earlier),
        before,
        "the first run's outputs, kept whole"
    );
    let plan = json(out.join("plan.json"));
    assert_eq!(
        plan["incident"], first["content_hash"],
        "a re-plan of the incident"
    );
    let h2 = plan["content_hash"].as_str().unwrap();
    let tag = &h2["sha256:".len().."sha256:".len() + 12];
    assert_eq!(tokens(), 205, "one new reset, none repeated");
    assert_eq!(
        count(out.join("outbox/staged/new")),
        597 + 202,
        "the first outbox as it was"
    );
    assert_eq!(
        count(out.join(format!("outbox-{tag}/staged/new"))),
        1,
        "one message: the new reset's link; the 2FA account had its notice"
    );
    let summary = json(out.join("summary.json"));
    let delta = &summary["plan"]["delta"];
    assert_eq!(delta["incident"], first["content_hash"]);
    assert_eq!(delta["covered"]["force-password-reset"], 204);
    assert_eq!(delta["covered"]["notify"], 598);
    assert_eq!(delta["covered"]["notify-only"], 200);
    let record = std::fs::read_to_string(out.join("breach-record.md")).unwrap();
    assert!(
        record.contains("It adds 1 password reset") && record.contains("1 notification"),
        "{record}"
    );
    // The re-plan's outbox passes release on its own.
    let o = leakaudit()
        .args(["remediate", "release", "--outbox"])
        .arg(out.join(format!("outbox-{tag}")))
        .arg("--db")
        .arg(out.join("accounts.sqlite"))
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // The same changed inputs again: the re-plan resumes, nothing new.
    let o = run();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        json(out.join("plan.json"))["content_hash"],
        plan["content_hash"]
    );
    assert_eq!(tokens(), 205);
    assert_eq!(count(out.join("earlier")), 1);

    // A re-plan that adds nothing (the new account has 2FA and had its notice) is still an
    // applied plan: the report says so, with everything covered.
    let mut text = std::fs::read_to_string(&csv).unwrap();
    text.push_str("KX-999996,aiko.takahashi63@outlook.com,true,0.00,en,0,2019-11-01\n");
    std::fs::write(&csv, text).unwrap();
    let o = run();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let summary = json(out.join("summary.json"));
    assert_eq!(summary["plan"]["applied"], true, "{}", summary["plan"]);
    assert_eq!(summary["plan"]["done"], 0);
    assert_eq!(tokens(), 205);
    assert_eq!(count(out.join("earlier")), 2);
}

/// Issue 29 (6): a right-to-left override in an archive subject reached report.html and
/// breach-record.md raw (`evil\u{202e}gpj.exe` reads as `evilexe.jpg`); it is shown as its
/// code, as on the terminal and in the CSV files.
#[test]
fn a_bidi_override_in_a_subject_is_shown_as_its_code_in_the_report_and_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let mbox = dir.path().join("rlo.mbox");
    std::fs::write(
        &mbox,
        "From a@kx.example Fri Nov  1 09:00:00 2019\nFrom: a@kx.example\nTo: alice@gmail.com, bob@yahoo.com, carol@web.de\nSubject: invoice\u{202e}fdp.exe\nDate: Fri, 01 Nov 2019 09:00:00 +0000\n\nHi.\n\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let o = run_incident_on(&mbox, &out, &["--quiet"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let record = std::fs::read_to_string(out.join("breach-record.md")).unwrap();
    for (name, text) in [("report.html", &html), ("breach-record.md", &record)] {
        assert!(!text.contains('\u{202e}'), "{name} holds the override raw");
    }
    assert!(html.contains("invoice\\u{202e}fdp.exe"), "{html}");
    assert!(record.contains("invoice\\\\u\\{202e\\}fdp.exe"), "{record}");
}
