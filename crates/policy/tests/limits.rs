//! Silent limits (issue 10, item 8): a decoding limit that keeps the content rules from
//! seeing part of a message marks the evaluation `not_fully_audited`, naming the limit; just
//! inside the limits the same key is found. Fixtures: `fixtures/hardening/limits/`.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use leakaudit_policy::content::{self, Layout, Limits};
use leakaudit_policy::{Engine, RulePack};
use leakaudit_scanner::{Location, Message, Org};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/hardening/limits")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// (rule ids found, not_fully_audited) of the fixture under the built-in rules.
fn evaluate(name: &str) -> (Vec<String>, Option<String>) {
    let raw = fixture(name);
    let msg = Message::from_bytes_at(&raw, Location::file(name)).unwrap();
    let engine = Engine::new(RulePack::builtin(), Org::default(), &BTreeMap::new());
    let eval = engine.evaluate(&msg);
    let ids = eval.findings.iter().map(|f| f.rule_id.clone()).collect();
    (ids, eval.not_fully_audited)
}

#[test]
fn aws_key_at_mime_depth_9_passed_as_ok_regression() {
    let (ids, cut) = evaluate("aws-key-at-mime-depth-9.eml");
    assert!(ids.is_empty(), "{ids:?}");
    let cut = cut.expect("depth 9 must be reported as not fully audited");
    assert!(cut.contains("mime-depth"), "{cut}");
    let (ids, cut) = evaluate("aws-key-at-mime-depth-8.eml");
    assert_eq!((ids, cut), (vec!["aws-access-key".to_string()], None));
}

#[test]
fn aws_key_in_part_71_passed_as_ok_regression() {
    let (ids, cut) = evaluate("aws-key-in-part-71.eml");
    assert!(ids.is_empty(), "{ids:?}");
    let cut = cut.expect("part 71 must be reported as not fully audited");
    assert!(cut.contains("mime-parts"), "{cut}");
    let (ids, cut) = evaluate("aws-key-in-part-60.eml");
    assert_eq!((ids, cut), (vec!["aws-access-key".to_string()], None));
}

#[test]
fn decoded_size_limit_is_reported() {
    let raw = fixture("aws-key-in-part-60.eml");
    let small = Limits {
        max_decoded: 1000,
        ..Limits::default()
    };
    let (_, hit) = content::segments_checked(&raw, &small, Layout::Flat);
    assert!(hit.decoded && !hit.parts && !hit.depth, "{hit:?}");
    assert!(hit.describe(&small).contains("decoded-size"));
    let (_, hit) = content::segments_checked(&raw, &Limits::default(), Layout::Flat);
    assert!(!hit.any(), "{hit:?}");
}

#[test]
fn scan_side_check_agrees_with_the_engine() {
    let l = Limits::default();
    let hit = |n: &str| content::limits_hit(&fixture(n), &l);
    assert!(hit("aws-key-at-mime-depth-9.eml").depth);
    assert!(hit("aws-key-in-part-71.eml").parts);
    assert!(!hit("aws-key-at-mime-depth-8.eml").any());
    assert!(!hit("aws-key-in-part-60.eml").any());
    // Nine attached messages, no multipart at all: still found.
    let mut nested = String::from("Subject: inner\n\nAKIAZZZZZLEAKEXAMPLE\n");
    for _ in 0..9 {
        nested = format!("Content-Type: message/rfc822\n\n{nested}");
    }
    let raw = format!("From: a@b.example\n{nested}");
    assert!(content::limits_hit(raw.as_bytes(), &l).depth);
}

/// The address-list rule stopped counting at 100,000 addresses and said nothing: the
/// affected list of such a message missed everyone past the cap. Now the cap is a limit like
/// the others (`max_content_addresses`) and reaching it marks the message not fully audited.
#[test]
fn content_address_cap_was_silent_regression() {
    let body: String = (0..40).map(|i| format!("c{i}@gmail.com\n")).collect();
    let raw = format!(
        "From: ana@shop.example\nTo: dave@agency.example\nSubject: list\nMessage-ID: <cap@shop.example>\n\n{body}"
    );
    let msg = Message::from_bytes_at(raw.as_bytes(), Location::file("cap.eml")).unwrap();
    let run = |max: usize| {
        let limits = Limits {
            max_content_addresses: max,
            ..Limits::default()
        };
        let engine =
            Engine::new(RulePack::builtin(), Org::default(), &BTreeMap::new()).with_limits(limits);
        let eval = engine.evaluate(&msg);
        let listed = eval
            .findings
            .iter()
            .filter(|f| f.rule_id == "address-list-in-content")
            .map(|f| f.exposed.len())
            .sum::<usize>();
        (listed, eval.not_fully_audited)
    };
    assert_eq!(run(40), (40, None), "every address counted, just inside");
    let (listed, cut) = run(25);
    assert_eq!(listed, 25);
    let cut = cut.expect("a count stopped at the cap is not a full audit");
    assert!(
        cut.contains("more than 25 addresses in the content"),
        "{cut}"
    );
    assert!(cut.contains("content-addresses"), "{cut}");
}
