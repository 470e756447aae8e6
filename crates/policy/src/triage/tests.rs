use super::*;
use crate::severity::Severity;
use leakaudit_scanner::exposure::analyse;
use leakaudit_scanner::headers::parse_envelope;

fn org() -> Org {
    let mut o = Org::with_defaults();
    o.add_internal_domain("enron.com");
    o.archive_kind = leakaudit_scanner::ArchiveKind::Sent;
    o
}

fn run(raw: &str, ctx: &TriageContext<'_>, quoted: &[Address]) -> Assessment {
    let env = parse_envelope(raw.as_bytes()).unwrap();
    let o = org();
    let x = analyse(&env, &o);
    assert!(x.exposes(), "fixture must expose: {raw}");
    assess(&env, &x, &o, quoted, ctx, &Thresholds::default())
}

fn audit() -> TriageContext<'static> {
    TriageContext {
        profile: Profile::Audit,
        ..TriageContext::default()
    }
}

#[test]
fn sender_copying_his_own_personal_mailbox_is_info() {
    let a = run(
        "From: John Smith <john.smith@enron.com>\nTo: jane@acme.example\nCc: jsmith@aol.com\n\n",
        &audit(),
        &[],
    );
    assert_eq!(a.severity, Severity::Info, "{a:?}");
    assert!(a.signals.contains(&Signal::OwnAddresses));
}

#[test]
fn one_person_at_work_and_home_is_one_party() {
    let a = run(
        "From: john.smith@enron.com\nTo: Mary Jones <mary@acme.example>, \"Jones, Mary\" <mjones77@yahoo.com>\n\n",
        &audit(),
        &[],
    );
    assert_eq!(a.severity, Severity::Info, "{a:?}");
    assert!(a.reasons.iter().any(|r| r.contains("same person")), "{a:?}");
}

#[test]
fn aliases_are_never_parties() {
    let alias = [Address::parse("boss@home.example").unwrap()];
    let ctx = TriageContext {
        aliases: &alias,
        ..audit()
    };
    let raw = "From: x@enron.com\nTo: a@acme.example, boss@home.example\n\n";
    assert_eq!(run(raw, &ctx, &[]).severity, Severity::Info);
    assert_eq!(run(raw, &audit(), &[]).severity, Severity::Medium);
}

#[test]
fn quoted_original_makes_reply_all_low() {
    let raw = "From: x@enron.com\nSubject: budget\nTo: a@acme.example, b@beta.example, c@gamma.example\n\n";
    let q: Vec<Address> = [
        "a@acme.example",
        "b@beta.example",
        "c@gamma.example",
        "z@z.example",
    ]
    .iter()
    .map(|s| Address::parse(s).unwrap())
    .collect();
    let a = run(raw, &audit(), &q);
    assert_eq!(a.severity, Severity::Low, "{a:?}");
    assert!(a.signals.contains(&Signal::QuotedOriginal));
    // One address that was not on the original: the sender added a stranger.
    let a = run(raw, &audit(), &q[..2]);
    assert_eq!(a.severity, Severity::Medium, "{a:?}");
}

#[test]
fn customers_are_counted_by_party() {
    let is_customer =
        |v: &[&Address]| -> Vec<bool> { v.iter().map(|a| a.domain() == "gmail.com").collect() };
    let ctx = TriageContext {
        is_customer: Some(&is_customer),
        ..audit()
    };
    let a = run(
        "From: noreply@enron.com\nTo: a@gmail.com, b@gmail.com\n\n",
        &ctx,
        &[],
    );
    assert_eq!(a.severity, Severity::High, "{a:?}");
    assert!(a.signals.contains(&Signal::Customers) && a.signals.contains(&Signal::SystemSender));
}

// ---- fixtures/triage: one flagged and one clean message per signal ----

use crate::engine::Engine;
use crate::pack::RulePack;
use leakaudit_scanner::{Format, HeaderFacts, Location, Message};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn triage_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/triage")
}

fn emls(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    v.sort();
    v
}

/// The header facts the triage reads, for envelopes whose facts the scanner did not fill
/// (test input only; the scanner's header parser is the real source).
fn facts_from_headers(raw: &[u8]) -> HeaderFacts {
    let (hs, _) = mailparse::parse_headers(raw).unwrap();
    let get = |n: &str| {
        hs.iter()
            .find(|h| h.get_key().eq_ignore_ascii_case(n))
            .map(|h| h.get_value().trim().to_owned())
    };
    let count = |n: &str| {
        hs.iter()
            .filter(|h| h.get_key().eq_ignore_ascii_case(n))
            .count()
    };
    HeaderFacts {
        in_reply_to: get("In-Reply-To").map(|v| v.trim_matches(['<', '>']).to_owned()),
        references: get("References").map_or(0, |v| v.split_whitespace().count() as u32),
        received: count("Received") as u32,
        delivered_to: count("Delivered-To") > 0,
        x_original_to: count("X-Original-To") > 0,
        return_path: count("Return-Path") > 0,
        precedence: get("Precedence").map(|v| v.to_ascii_lowercase()),
        list_id: get("List-Id"),
        list_unsubscribe: count("List-Unsubscribe") > 0,
        auto_submitted: get("Auto-Submitted").map(|v| v.to_ascii_lowercase()),
        mailer: get("X-Mailer").or_else(|| get("User-Agent")),
        content_language: get("Content-Language"),
        journal_report: count("X-MS-Journal-Report") > 0,
        reply_to: Vec::new(),
    }
}

fn envelope(raw: &[u8]) -> Envelope {
    let mut env = parse_envelope(raw).unwrap();
    if env.facts == HeaderFacts::default() {
        env.facts = facts_from_headers(raw);
    }
    env
}

/// Addresses on `>` lines: enough for these fixtures (the real detection is `quoted.rs`).
fn quoted_in_fixture(msg: &Message<'_>) -> Vec<Address> {
    let text = String::from_utf8_lossy(&msg.raw);
    text.lines()
        .filter(|l| l.starts_with('>'))
        .flat_map(|l| l.split([' ', ',', '<', '>']))
        .filter(|w| w.contains('@'))
        .filter_map(Address::parse)
        .collect()
}

fn fixture_org() -> Org {
    let mut o = Org::with_defaults();
    o.add_internal_domain("shop.example");
    o
}

#[test]
fn every_signal_fixture_gets_its_severity_and_signals() {
    let dir = triage_dir();
    let org = fixture_org();
    let files: Vec<PathBuf> = emls(&dir.join("history"))
        .into_iter()
        .chain(emls(&dir))
        .collect();
    let mut history = History::default();
    for f in &files {
        history.observe(&envelope(&std::fs::read(f).unwrap()), &org);
    }
    history.finish();
    let engine = Engine::new(RulePack::builtin(), org, &BTreeMap::new());
    let is_customer =
        |v: &[&Address]| -> Vec<bool> { v.iter().map(|a| a.local().starts_with("cust")).collect() };
    let ctx = TriageContext {
        profile: Profile::Audit,
        history: Some(&history),
        is_customer: Some(&is_customer),
        aliases: &[],
        quoted: Some(quoted_in_fixture),
    };
    let mut covered: BTreeMap<(Signal, bool), Vec<String>> = BTreeMap::new();
    let mut failures = Vec::new();
    for path in emls(&dir) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let raw = std::fs::read(&path).unwrap();
        let expect = String::from_utf8_lossy(&raw)
            .lines()
            .find_map(|l| {
                l.strip_prefix("X-Triage-Expect:")
                    .map(|v| v.trim().to_owned())
            })
            .unwrap_or_else(|| panic!("{name}: no X-Triage-Expect"));
        let msg = Message {
            location: Location::file(name.clone()),
            format: Format::Eml,
            raw: raw.as_slice().into(),
            mbox_quoted: false,
            envelope: envelope(&raw),
            parts: Default::default(),
        };
        let ev = engine.evaluate_with(&msg, &ctx);
        let f = ev
            .findings
            .iter()
            .find(|f| f.rule_id == "recipient-exposure");
        let (sev, signals) = match f {
            Some(f) => {
                assert_eq!(f.profile, Some(Profile::Audit), "{name}");
                assert!(!f.reasons.is_empty(), "{name}: no reasons");
                (f.severity.as_str().to_owned(), f.signals.clone())
            }
            None => ("ok".to_owned(), Vec::new()),
        };
        let (want_sev, want_sig) = expect.split_once(';').unwrap_or((expect.as_str(), ""));
        if sev != want_sev.trim() {
            failures.push(format!(
                "{name}: severity {sev}, expected {want_sev} ({signals:?}, {f:?})"
            ));
        }
        for s in want_sig.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if !signals.iter().any(|x| x.code() == s) {
                failures.push(format!("{name}: missing signal {s} in {signals:?}"));
            }
        }
        // The file is named after its signal: present when flagged, absent when clean.
        let signal = Signal::ALL
            .into_iter()
            .filter(|s| name.starts_with(&format!("{}-", s.code())))
            .max_by_key(|s| s.code().len())
            .unwrap_or_else(|| panic!("{name} is not named after a signal"));
        let flagged = name.contains("-flagged");
        assert!(flagged || name.ends_with("-clean.eml"), "{name}");
        if signals.contains(&signal) != flagged {
            failures.push(format!("{name}: signal {signal} present = {}", !flagged));
        }
        covered.entry((signal, flagged)).or_default().push(name);
    }
    for s in Signal::ALL {
        if s == Signal::NoHistory {
            continue; // a property of the run, not of a message: see no_history_counts_as_new
        }
        for flagged in [true, false] {
            if !covered.contains_key(&(s, flagged)) {
                failures.push(format!(
                    "no {} fixture for {s}",
                    if flagged { "flagged" } else { "clean" }
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn gate_profile_keeps_todays_severity_and_states_why() {
    let dir = triage_dir();
    let engine = Engine::new(RulePack::builtin(), fixture_org(), &BTreeMap::new());
    let raw = std::fs::read(dir.join("reply-flagged.eml")).unwrap();
    let msg = Message {
        location: Location::file("reply-flagged.eml"),
        format: Format::Eml,
        raw: raw.as_slice().into(),
        mbox_quoted: false,
        envelope: envelope(&raw),
        parts: Default::default(),
    };
    let plain = engine.evaluate(&msg);
    let f = &plain.findings[0];
    assert_eq!(
        (f.severity, f.profile, f.signals.len()),
        (Severity::High, None, 0)
    );
    let gated = engine.evaluate_with(&msg, &TriageContext::gate());
    let f = &gated.findings[0];
    assert_eq!(f.severity, Severity::High);
    assert_eq!(f.profile, Some(Profile::Gate));
    assert_eq!(f.signals, [Signal::FewParties]);
    assert!(f.reasons[0].starts_with("gate profile"), "{:?}", f.reasons);
    // The audit profile without a history: a reply among strangers is low.
    let audit = engine.evaluate_with(
        &msg,
        &TriageContext {
            profile: Profile::Audit,
            ..TriageContext::default()
        },
    );
    assert_eq!(audit.findings[0].severity, Severity::Low);
    assert!(audit.findings[0].signals.contains(&Signal::NoHistory));
    // Facts stay complete: the exposure is the same under every profile.
    assert_eq!(plain.exposure, audit.exposure);
}

#[test]
fn severity_override_wins_over_the_triage() {
    let dir = triage_dir();
    let mut ov = BTreeMap::new();
    ov.insert("recipient-exposure".to_owned(), Severity::Critical);
    let engine = Engine::new(RulePack::builtin(), fixture_org(), &ov);
    let raw = std::fs::read(dir.join("reply-flagged.eml")).unwrap();
    let msg = Message {
        location: Location::file("x.eml"),
        format: Format::Eml,
        raw: raw.as_slice().into(),
        mbox_quoted: false,
        envelope: envelope(&raw),
        parts: Default::default(),
    };
    let ctx = TriageContext {
        profile: Profile::Audit,
        ..TriageContext::default()
    };
    let f = &engine.evaluate_with(&msg, &ctx).findings[0];
    assert_eq!(f.severity, Severity::Critical);
    assert!(!f.signals.is_empty());
}

#[test]
fn auto_archive_kind_keeps_every_rule_fixture_passing() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/rules");
    let report = crate::fixtures::run(
        &RulePack::builtin(),
        &dir,
        &crate::config::OrgConfig::default(),
    )
    .unwrap();
    assert!(report.passed(), "{}", report.table());
}

#[test]
fn retriage_after_a_single_pass_equals_evaluate_with() {
    let dir = triage_dir();
    let org = fixture_org();
    let engine = Engine::new(RulePack::builtin(), org.clone(), &BTreeMap::new());
    let mut raws = Vec::new();
    for f in emls(&dir.join("history")).into_iter().chain(emls(&dir)) {
        raws.push(std::fs::read(f).unwrap());
    }
    let msg = |raw: &[u8]| {
        let raw = raw.to_vec();
        (envelope(&raw), raw)
    };
    // Single pass, as the audit makes it: evaluate (no ranking yet; archive kind per message,
    // not the gate's reading) and observe at once, keep the exposing messages.
    let mut history = History::default();
    let mut kept = Vec::new();
    for raw in &raws {
        let (env, raw) = msg(raw);
        history.observe(&env, &org);
        let m = Message {
            location: Location::file("x.eml"),
            format: Format::Eml,
            raw: raw.as_slice().into(),
            mbox_quoted: false,
            envelope: env.clone(),
            parts: Default::default(),
        };
        let eval = engine.evaluate(&m);
        if eval.exposure.exposes() {
            kept.push((env, eval, quoted_in_fixture(&m), raw.clone()));
        }
    }
    history.finish();
    let ctx = TriageContext {
        profile: Profile::Audit,
        history: Some(&history),
        quoted: Some(quoted_in_fixture),
        ..TriageContext::default()
    };
    assert!(kept.len() > 20);
    for (env, mut eval, quoted, raw) in kept {
        engine.retriage(&env, &mut eval, &quoted, &ctx);
        let m = Message {
            location: Location::file("x.eml"),
            format: Format::Eml,
            raw: raw.as_slice().into(),
            mbox_quoted: false,
            envelope: env,
            parts: Default::default(),
        };
        let direct = engine.evaluate_with(&m, &ctx);
        assert_eq!(eval.findings, direct.findings, "{:?}", m.envelope.subject);
    }
}

/// Severity and signals of the recipient-exposure finding of `raw` under `history`.
fn exposure_triage(raw: &[u8], history: &History) -> (Severity, Vec<Signal>) {
    let engine = Engine::new(RulePack::builtin(), fixture_org(), &BTreeMap::new());
    let msg = Message {
        location: Location::file("repeated.eml"),
        format: Format::Eml,
        raw: raw.into(),
        mbox_quoted: false,
        envelope: envelope(raw),
        parts: Default::default(),
    };
    let ctx = TriageContext {
        profile: Profile::Audit,
        history: Some(history),
        ..TriageContext::default()
    };
    let ev = engine.evaluate_with(&msg, &ctx);
    let f = ev
        .findings
        .iter()
        .find(|f| f.rule_id == "recipient-exposure")
        .expect("the fixture exposes");
    (f.severity, f.signals.clone())
}

/// The defect: both messages of an exposure repeated to the same three customers saw the
/// other one as shared history, so the first leak dropped to known-group (low) with its
/// repeat. The first must stay new (medium), only the repeat is a known group.
#[test]
fn repeated_exposure_does_not_hide_the_first_one() {
    let dir = triage_dir().join("repeated");
    let first = std::fs::read(dir.join("first.eml")).unwrap();
    let repeat = std::fs::read(dir.join("repeat.eml")).unwrap();
    let org = fixture_org();
    let check = |h: &History, how: &str| {
        let (sev, sig) = exposure_triage(&first, h);
        assert_eq!(sev, Severity::Medium, "{how}: first {sig:?}");
        assert!(sig.contains(&Signal::NewContacts), "{how}: first {sig:?}");
        let (sev, sig) = exposure_triage(&repeat, h);
        assert_eq!(sev, Severity::Low, "{how}: repeat {sig:?}");
        assert!(sig.contains(&Signal::KnownGroup), "{how}: repeat {sig:?}");
    };
    for (how, order) in [
        ("in order", [&first, &repeat]),
        ("reversed", [&repeat, &first]),
    ] {
        let mut h = History::default();
        order.iter().for_each(|raw| h.observe(&envelope(raw), &org));
        h.finish();
        check(&h, how);
        // The parallel first pass: one thread per message.
        let b = HistoryBuilder::default();
        std::thread::scope(|s| {
            for raw in order {
                let (b, org) = (&b, &org);
                s.spawn(move || b.observe(&envelope(raw), org));
            }
        });
        check(&b.finish(), &format!("builder, {how}"));
    }
    // Incremental: the history saved by a run over the first message makes the repeat,
    // scanned in a later run, a known group (and keeps the first new if it is read again).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.bin");
    let b = HistoryBuilder::default();
    b.observe(&envelope(&first), &org);
    b.finish().save(&path).unwrap();
    let b = HistoryBuilder::from_history(History::load(&path, HistoryOptions::default()).unwrap());
    b.observe(&envelope(&repeat), &org);
    let h = b.finish();
    assert_eq!(exposure_triage(&repeat, &h).0, Severity::Low);
    // The first run alone: no repeat yet, the first is new.
    let alone = History::load(&path, HistoryOptions::default()).unwrap();
    assert_eq!(exposure_triage(&first, &alone).0, Severity::Medium);
}

#[test]
fn a_party_lists_each_address_once_however_often_it_is_repeated() {
    // The sender's home address in To and again in Cc is one own address; four listings of
    // three addresses at one business are one party (the flat grouping that replaced a
    // per-party search, quadratic in one domain's size).
    let raw = "From: John Smith <john.smith@enron.com>\nTo: jsmith@aol.com, a@acme.example, b@acme.example\nCc: jsmith@aol.com, A@acme.example, c@acme.example, kim@gmail.com\n\n";
    let env = parse_envelope(raw.as_bytes()).unwrap();
    let o = org();
    let x = analyse(&env, &o);
    let (f, notes) = facts(&env, &x, &o, &[], &audit(), &Thresholds::default());
    assert_eq!(f.own_addresses, 1, "{notes:?}");
    assert_eq!(f.raw_parties, 3, "aol, acme.example, gmail");
    assert_eq!(f.parties, 2, "acme.example and kim");
    assert_eq!(f.exposed, 4, "a, b, c at acme and kim");
}
