//! Header facts (`Envelope::facts`) through the library, one fixture under
//! `fixtures/headers/facts-*.eml` per kind of message: a reply in a thread, a bulk mailing,
//! a transmitted (delivered) copy.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use leakaudit_scanner::exposure::analyse;
use leakaudit_scanner::headers::parse_envelope;
use leakaudit_scanner::scan::{Event, ScanOptions, Scanner};
use leakaudit_scanner::{Envelope, HeaderFacts, Org};
use std::path::PathBuf;

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/headers")
        .join(name)
}

fn env(name: &str) -> Envelope {
    let raw = std::fs::read(fixture_path(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    parse_envelope(&raw).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn reply_has_thread_facts_and_reply_to_addresses() {
    let e = env("facts-reply.eml");
    let f = &e.facts;
    assert_eq!(
        f.in_reply_to.as_deref(),
        Some("CAF+dave.2@mail.outlook.com")
    );
    assert_eq!(f.references, 3);
    let reply_to: Vec<&str> = f.reply_to.iter().map(|a| a.as_str()).collect();
    assert_eq!(
        reply_to,
        ["support@shop.example", "buero@xn--bcher-kva.example"]
    );
    assert_eq!(f.mailer.as_deref(), Some("Mozilla/5.0 Thunderbird/128.4.0"));
    assert_eq!(f.content_language.as_deref(), Some("en-GB"));
    // Nothing of a transmitted copy or of bulk mail.
    assert_eq!(f.received, 0);
    assert!(!f.delivered_to && !f.x_original_to && !f.return_path && !f.list_unsubscribe);
    assert_eq!(
        (&f.precedence, &f.list_id, &f.auto_submitted),
        (&None, &None, &None)
    );
    // Reply-To is a fact, not a recipient: the audience is To only.
    assert_eq!(e.recipients.len(), 1);
    assert!(e.warnings.is_empty(), "{:?}", e.warnings);
}

#[test]
fn bulk_mail_has_lowercased_markers_and_unfolded_values() {
    let e = env("facts-bulk.eml");
    let f = &e.facts;
    assert_eq!(f.precedence.as_deref(), Some("bulk"));
    assert_eq!(f.auto_submitted.as_deref(), Some("auto-generated"));
    assert_eq!(
        f.list_id.as_deref(),
        Some("Shop newsletter <news.shop.example>")
    );
    assert!(f.list_unsubscribe);
    assert_eq!(f.mailer.as_deref(), Some("MassMailer 4.2 (build 17)"));
    assert_eq!(f.content_language.as_deref(), Some("de-CH"));
    assert_eq!((f.in_reply_to.as_deref(), f.references), (None, 0));
    assert!(f.reply_to.is_empty());
    assert!(e.warnings.is_empty(), "{:?}", e.warnings);
}

#[test]
fn transmitted_copy_has_hops_and_delivery_traces() {
    let e = env("facts-transmitted.eml");
    assert_eq!(
        e.facts,
        HeaderFacts {
            received: 3,
            delivered_to: true,
            x_original_to: true,
            return_path: true,
            ..HeaderFacts::default()
        }
    );
    // The fact fields did not disturb the audited ones (CRLF, folded Received).
    assert_eq!(e.recipients[0].mailbox.address.as_str(), "alice@gmail.com");
    assert_eq!(
        e.message_id.as_deref(),
        Some("facts-transmitted@shop.example")
    );
    assert!(e.date.is_some());
}

#[test]
fn facts_round_trip_through_json_and_old_envelopes_still_read() {
    let e = env("facts-reply.eml");
    let back: Envelope = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
    assert_eq!(back, e);
    // An envelope serialised before `facts` existed reads with default facts.
    let mut v = serde_json::to_value(env("folded-lf.eml")).unwrap();
    v.as_object_mut().unwrap().remove("facts");
    let old: Envelope = serde_json::from_value(v).unwrap();
    assert_eq!(old.facts, HeaderFacts::default());
}

#[test]
fn fact_fixtures_are_read_as_mail_and_expose_no_one() {
    // Each has one external recipient: the whole-folder CLI test counts exposing fixtures.
    let inputs: Vec<String> = ["facts-reply.eml", "facts-bulk.eml", "facts-transmitted.eml"]
        .iter()
        .map(|n| fixture_path(n).to_string_lossy().into_owned())
        .collect();
    let org = Org::with_defaults();
    let mut exposing = Vec::new();
    let mut problems = Vec::new();
    let stats = Scanner::new(ScanOptions::default()).scan(
        &inputs,
        |m| analyse(&m.envelope, &org).exposes(),
        |ev| match ev {
            Event::Message { item, .. } => exposing.push(item),
            Event::Problem(p) => problems.push(p),
            Event::Progress { .. } => {}
        },
    );
    assert_eq!(stats.messages, 3);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(exposing, [false, false, false]);
}

/// Facts and subject of every message under `corpora/<sub>`.
/// `None` (with a printed note) when `../shared` is absent, as on a fresh clone; under CI
/// (`CI` set) a missing corpus is a failure.
fn corpus_facts(sub: &str) -> Option<Vec<(HeaderFacts, Option<String>)>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpora")
        .join(sub);
    if !root.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "the shared corpus is missing at {}",
            root.display()
        );
        eprintln!("skipped: {} is not present (a fresh clone)", root.display());
        return None;
    }
    let mut all = Vec::new();
    Scanner::new(ScanOptions::default()).scan(
        &[root.to_string_lossy().into_owned()],
        |m| (m.envelope.facts.clone(), m.envelope.subject.clone()),
        |ev| {
            if let Event::Message { item, .. } = ev {
                all.push(item)
            }
        },
    );
    Some(all)
}

#[test]
fn delivered_ham_carries_transit_thread_and_list_facts() {
    let Some(all) = corpus_facts("spamassassin/easy-ham-1") else {
        return;
    };
    let count = |f: &dyn Fn(&HeaderFacts) -> bool| all.iter().filter(|(x, _)| f(x)).count();
    assert_eq!(all.len(), 2500);
    // Every copy was stored by a delivery agent; most came through MTAs.
    assert_eq!(count(&|f| f.return_path), 2500);
    assert_eq!(count(&|f| f.received > 0), 2365);
    assert_eq!(count(&|f| f.delivered_to), 2365);
    assert_eq!(count(&|f| f.delivered_to && f.received == 0), 0);
    // Mailing-list traffic.
    assert_eq!(count(&|f| f.list_id.is_some()), 1495);
    assert_eq!(count(&|f| f.precedence.is_some()), 1695);
    for (f, _) in &all {
        if let Some(p) = &f.precedence {
            assert!(["bulk", "list", "normal"].contains(&p.as_str()), "{p}");
        }
        if let Some(id) = &f.in_reply_to {
            assert!(!id.contains(['<', '>', ' ']) && id.len() <= 256, "{id}");
        }
    }
    // Threads: most In-Reply-To messages are "Re:" replies.
    let replies = count(&|f| f.in_reply_to.is_some());
    assert_eq!(replies, 1019);
    let re_subject = all
        .iter()
        .filter(|(f, s)| {
            f.in_reply_to.is_some()
                && s.as_deref()
                    .is_some_and(|s| s.to_ascii_lowercase().starts_with("re:"))
        })
        .count();
    assert!(re_subject * 10 > replies * 7, "{re_subject} of {replies}");
    assert_eq!(count(&|f| !f.reply_to.is_empty()), 683);
}

#[test]
fn sent_folder_export_has_no_transit_or_bulk_facts() {
    // The Enron Sent items were exported from the sender's mailbox, never transmitted to
    // us: no Received, Delivered-To, list or bulk header; nothing may be invented.
    let Some(all) = corpus_facts("enron-sent") else {
        return;
    };
    assert_eq!(all.len(), 610);
    assert!(all.iter().all(|(f, _)| *f == HeaderFacts::default()));
}
