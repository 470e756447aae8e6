use super::*;
use leakaudit_policy::Finding;
use serde_json::{json, Value};

/// A finding built through its serde contract (so new defaulted fields do not break tests).
fn finding_json(
    rule: &str,
    id: Option<&str>,
    date: i64,
    exposed: &[(&str, &str)],
    parties: &[&str],
) -> Value {
    let exposed: Vec<Value> = exposed
        .iter()
        .map(|(a, p)| {
            json!({"address": a, "fields": ["Cc"], "party": p,
                   "audience": parties.len().saturating_sub(1)})
        })
        .collect();
    let mut v = json!({
        "rule_id": rule, "severity": "high", "message": "", "evidence": "", "fingerprint": "",
        "location": {"path": format!("a.eml#{date}")}, "date": date,
        "exposed": exposed, "audience_parties": parties,
    });
    if let Some(id) = id {
        v["message_id"] = json!(id);
    }
    v
}

fn finding(
    rule: &str,
    id: Option<&str>,
    date: i64,
    exposed: &[(&str, &str)],
    parties: &[&str],
) -> Finding {
    serde_json::from_value(finding_json(rule, id, date, exposed, parties)).unwrap()
}

#[test]
fn order_independent_and_capped() {
    let mut fs = Vec::new();
    for i in 0..8 {
        fs.push(finding(
            "recipient-exposure",
            Some(&format!("m{i}")),
            1_000 + i,
            &[
                ("x@gmail.com", "x@gmail.com"),
                (&format!("p{i}@yahoo.com"), &format!("p{i}@yahoo.com")),
            ],
            &["x@gmail.com", &format!("p{i}@yahoo.com")],
        ));
    }
    // A message without Message-ID is keyed by its location.
    fs.push(finding(
        "bcc-header-leak",
        None,
        5,
        &[("x@gmail.com", "x@gmail.com")],
        &["x@gmail.com", "z.example"],
    ));
    // The same message again (another rule): counted once.
    fs.push(finding(
        "group-members-visible",
        Some("m3"),
        1_003,
        &[("x@gmail.com", "x@gmail.com")],
        &["x@gmail.com", "p3@yahoo.com"],
    ));
    let mut a = AffectedAccumulator::new();
    fs.iter().for_each(|f| a.add(f));
    let mut b = AffectedAccumulator::new();
    fs.iter().rev().for_each(|f| b.add(f));
    assert_eq!(a.rows(), b.rows());
    assert_eq!(a.findings_seen(), 10);
    let rows = a.rows();
    let x = rows.iter().find(|r| r.address == "x@gmail.com").unwrap();
    assert_eq!(x.messages, 9);
    assert_eq!(x.audience, 9, "8 yahoo users and z.example");
    assert_eq!(
        x.message_ids,
        vec!["m0", "m1", "m2", "m3", "m4"],
        "the 5 earliest"
    );
    assert_eq!(x.first_exposed.as_deref(), Some("1970-01-01T00:00:05Z"));
    assert_eq!(x.last_exposed.as_deref(), Some("1970-01-01T00:16:47Z"));
    assert_eq!(
        x.rule_ids,
        vec![
            "bcc-header-leak",
            "group-members-visible",
            "recipient-exposure"
        ]
    );
    assert_eq!(x.fields, vec!["Cc"]);
    let p3 = rows.iter().find(|r| r.address == "p3@yahoo.com").unwrap();
    assert_eq!((p3.messages, p3.audience), (1, 1));
}

#[test]
fn audience_of_address_in_several_messages_is_the_union_without_its_own_domain() {
    // bob@acme.example is in two messages; acme.example is his own party (a colleague is a
    // recipient of the second one), so it is not audience. Shared parties count once.
    let mut a = AffectedAccumulator::new();
    a.add(&finding(
        "recipient-exposure",
        Some("m1"),
        10,
        &[
            ("bob@acme.example", "acme.example"),
            ("c@gmail.com", "c@gmail.com"),
        ],
        &[
            "acme.example",
            "c@gmail.com",
            "d@gmail.com",
            "other.example",
        ],
    ));
    a.add(&finding(
        "recipient-exposure",
        Some("m2"),
        20,
        &[
            ("bob@acme.example", "acme.example"),
            ("e@gmail.com", "e@gmail.com"),
        ],
        &["acme.example", "c@gmail.com", "e@gmail.com"],
    ));
    // Same two messages: the cached union must still subtract each address's own party.
    let rows = a.rows();
    let get = |s: &str| rows.iter().find(|r| r.address == s).unwrap().clone();
    let bob = get("bob@acme.example");
    assert_eq!(
        (bob.messages, bob.audience),
        (2, 4),
        "c, d, e, other.example"
    );
    assert_eq!(get("c@gmail.com").audience, 3);
    assert_eq!(get("e@gmail.com").audience, 2);
    assert_eq!(a.len(), 3);
}

#[test]
fn addresses_sharing_a_message_set_share_the_union_but_not_the_own_party() {
    // A mass mail sent twice to the same list: every address is in both messages.
    let n = 50;
    let addrs: Vec<String> = (0..n).map(|i| format!("u{i}@gmail.com")).collect();
    let refs: Vec<&str> = addrs.iter().map(String::as_str).collect();
    let exposed: Vec<(&str, &str)> = refs.iter().map(|a| (*a, *a)).collect();
    let mut acc = AffectedAccumulator::new();
    for (id, date) in [("first", 1), ("resend", 2)] {
        acc.add(&finding(
            "recipient-exposure",
            Some(id),
            date,
            &exposed,
            &refs,
        ));
    }
    let rows = acc.rows();
    assert_eq!(rows.len(), n);
    assert!(rows.iter().all(|r| r.messages == 2 && r.audience == n - 1));
}

/// One message with `n` consumer addresses in Cc (each its own party) and colleagues at one
/// business domain: every address is listed once with the audience of the message.
fn huge_message(n: usize) -> Finding {
    let mut exposed = String::with_capacity(n * 90);
    let mut parties = String::with_capacity(n * 24);
    for i in 0..n {
        if i > 0 {
            exposed.push(',');
            parties.push(',');
        }
        exposed.push_str(&format!(
            r#"{{"address":"user{i}@gmail.com","fields":["Cc"],"party":"user{i}@gmail.com","audience":{n}}}"#
        ));
        parties.push_str(&format!(r#""user{i}@gmail.com""#));
    }
    exposed.push_str(&format!(
        r#",{{"address":"ann@acme.example","fields":["To"],"party":"acme.example","audience":{n}}},{{"address":"ben@acme.example","fields":["To"],"party":"acme.example","audience":{n}}}"#
    ));
    let line = format!(
        r#"{{"rule_id":"recipient-exposure","severity":"critical","message":"","evidence":"","fingerprint":"","location":{{"path":"big.eml"}},"message_id":"big@shop.example","date":1572598800,"exposed":[{exposed}],"audience_parties":[{parties},"acme.example"]}}"#
    );
    serde_json::from_str(&line).unwrap()
}

fn check_huge(n: usize) -> usize {
    let f = huge_message(n);
    let mut acc = AffectedAccumulator::new();
    acc.add(&f);
    drop(f);
    check_rows(&acc, n)
}

fn check_rows(acc: &AffectedAccumulator, n: usize) -> usize {
    assert_eq!(acc.len(), n + 2);
    let mut seen = 0;
    for r in acc.rows_iter() {
        // n consumer parties + acme.example, minus the address's own party.
        assert_eq!(r.audience, n, "{}", r.address);
        assert_eq!(r.messages, 1);
        seen += 1;
    }
    assert_eq!(seen, n + 2);
    acc.per_address_state_bytes() / acc.len()
}

#[test]
fn quadratic_memory_on_one_message_with_20000_addresses() {
    // Per-address state is a constant few bytes, whatever the message size (it used to be
    // the set of every other party: 8.3 GiB at 10,000 addresses).
    let small = check_huge(1_000);
    let big = check_huge(20_000);
    assert!(big <= 64, "{big} bytes per address");
    assert!(
        big <= small + 16,
        "{small} -> {big}: grows with the message"
    );
}

#[test]
fn one_message_with_1_000_000_addresses() {
    // Fed through the accumulator's message entry point rather than a parsed finding: a
    // million-entry JSON finding takes minutes in a debug build; the finding path is the
    // 20,000 test above, and the same size through the binary is in bench/affected.sh.
    use super::accumulator::{Exposed, MessageInput};
    let n = 1_000_000;
    let mut parties: Vec<String> = (0..n).map(|i| format!("user{i}@gmail.com")).collect();
    parties.push("acme.example".into());
    let location = leakaudit_scanner::Location::file("big.eml");
    let m = MessageInput {
        message_id: Some("big@shop.example"),
        location: &location,
        date: None,
        rule_id: "recipient-exposure",
        parties: &parties,
        party_count: None,
    };
    let exposed = parties[..n]
        .iter()
        .map(|p| p.as_str())
        .chain(["ann@acme.example", "ben@acme.example"])
        .map(|address| Exposed {
            address,
            fields: 2,
            source: None,
        });
    let mut acc = AffectedAccumulator::new();
    acc.add_message(&m, exposed, &[]);
    drop(parties);
    let per = check_rows(&acc, n);
    assert!(per <= 64, "{per} bytes per address");
}

#[test]
fn content_exposures_are_affected_users() {
    let mut a = AffectedAccumulator::new();
    // A list mailed in an attachment and the body to one customer of acme.example, with a
    // colleague of one listed address in Cc.
    let f = finding(
        "address-list-in-content",
        Some("leak@shop.example"),
        100,
        &[],
        &["acme.example", "z@gmail.com"],
    );
    let content = [
        ("x@gmail.com", "attachment:clients.csv"),
        ("X@Gmail.com", "body"),
        ("kim@acme.example", "attachment:list;v2.csv"),
    ];
    a.add_with_content(&f, content.iter().copied());
    let rows = a.rows();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let x = &rows[1];
    assert_eq!(x.address, "x@gmail.com");
    assert_eq!(x.fields, vec!["attachment:clients.csv", "body"]);
    assert_eq!(x.audience, 2, "everyone who received the message");
    assert_eq!(x.rule_ids, vec!["address-list-in-content"]);
    let kim = &rows[0];
    assert_eq!(
        kim.fields,
        vec!["attachment:list_v2.csv"],
        "no `;` in a list cell"
    );
    assert_eq!(kim.audience, 1, "her own company is not audience");
}

#[test]
fn jsonl_findings_and_scan_records_read_through_the_typed_contracts() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("f.jsonl");
    let f = finding_json(
        "recipient-exposure",
        Some("m1"),
        10,
        &[
            ("a@gmail.com", "a@gmail.com"),
            ("b@gmail.com", "b@gmail.com"),
        ],
        &["a@gmail.com", "b@gmail.com", "hidden.example"],
    );
    let mut content = finding_json(
        "address-list-in-content",
        Some("m2"),
        20,
        &[],
        &["q@gmail.com"],
    );
    content["content_exposed"] = json!([{"address": "c@gmail.com", "source": "body"}]);
    // A scan record with a Bcc'd viewer known only by count (audience_size 3).
    let record = json!({
        "record": 1, "location": {"path": "r.eml"}, "format": "eml", "message_id": "m3",
        "date": "2019-11-01T09:00:00Z", "date_raw": null, "from": null, "subject": null,
        "exposed": [{"address": "a@gmail.com", "fields": ["To"], "party": "a@gmail.com", "audience": 2},
                    {"address": "d@yahoo.com", "fields": ["To"], "party": "d@yahoo.com", "audience": 2}],
        "audience_size": 3, "visible_parties": 2,
    });
    let text = format!("{f}\n\n{content}\n{record}\n");
    std::fs::write(&p, text).unwrap();
    let mut acc = AffectedAccumulator::new();
    assert_eq!(acc.add_jsonl_file(&p).unwrap(), 3);
    let rows = acc.rows();
    let get = |s: &str| rows.iter().find(|r| r.address == s).unwrap().clone();
    let a = get("a@gmail.com");
    assert_eq!(a.messages, 2);
    assert_eq!(a.rule_ids, vec!["recipient-exposure", SCAN_RULE_ID]);
    assert_eq!(a.fields, vec!["To", "Cc"]);
    // b, hidden.example; d, the hidden viewer of m3.
    assert_eq!(a.audience, 4);
    assert_eq!(get("d@yahoo.com").audience, 2);
    assert_eq!(
        get("d@yahoo.com").first_exposed.as_deref(),
        Some("2019-11-01T09:00:00Z")
    );
    let c = get("c@gmail.com");
    assert_eq!(
        (c.fields.clone(), c.audience),
        (vec!["body".to_string()], 1)
    );
}

#[test]
fn bad_jsonl_lines_are_reported_with_their_line_and_nothing_is_added() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("bad.jsonl");
    let good = finding_json(
        "r",
        Some("m"),
        1,
        &[("a@gmail.com", "a@gmail.com")],
        &["a@gmail.com", "b.example"],
    );
    let mut wrong_type = good.clone();
    wrong_type["date"] = json!("yesterday");
    let mut bytes = format!("{good}\n{{\"rule_id\": 3}}\n{wrong_type}\n").into_bytes();
    bytes.extend_from_slice(b"\xff\xfe\n");
    std::fs::write(&p, bytes).unwrap();
    let mut acc = AffectedAccumulator::new();
    let err = acc.add_jsonl_file(&p).unwrap_err();
    match &err {
        crate::Error::BadLines { errors, .. } => {
            let lines: Vec<u64> = errors.iter().map(|e| e.line).collect();
            assert_eq!(lines, vec![2, 3, 4], "{err}");
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("bad.jsonl:3:"), "{err}");
    assert!(acc.is_empty());
}

#[test]
fn csv_and_json_round_trip_with_the_store_they_were_matched_against() {
    let mut a = AffectedAccumulator::new();
    a.add(&finding(
        "r",
        Some("m"),
        10,
        &[
            ("a@gmail.com", "a@gmail.com"),
            ("b@gmail.com", "b@gmail.com"),
        ],
        &["a@gmail.com", "b@gmail.com"],
    ));
    let mut list = AffectedList::new(a.rows());
    list.rows[0].account_ids = vec!["acc-1".into()];
    let d = tempfile::tempdir().unwrap();
    for matched in [false, true] {
        if matched {
            list.store_id = Some("store-123".into());
            list.match_mode = Some(MatchMode::ProviderFolding);
        }
        for (name, fmt) in [
            ("x.csv", AffectedFormat::Csv),
            ("x.json", AffectedFormat::Json),
        ] {
            let p = d.path().join(name);
            assert_eq!(write_file(&p, fmt, &list.meta(), &list.rows).unwrap(), 2);
            let back = read_file(&p).unwrap();
            assert_eq!(back, list, "{name} matched={matched}");
        }
    }
    let csv = std::fs::read_to_string(d.path().join("x.csv")).unwrap();
    assert!(
        csv.starts_with(
            "# leakaudit-affected/1 store_id=store-123 match_mode=provider-folding\naddress,"
        ),
        "{csv}"
    );
    // An empty list is valid JSON too.
    let p = d.path().join("empty.json");
    write_file(
        &p,
        AffectedFormat::Json,
        &ListMeta::default(),
        Vec::<AffectedRow>::new(),
    )
    .unwrap();
    assert_eq!(read_file(&p).unwrap().total, 0);
}

#[test]
fn pseudonyms_are_keyed() {
    let p1 = pseudonym(b"key-one-0123456789", "a@gmail.com");
    assert_eq!(p1, pseudonym(b"key-one-0123456789", "a@gmail.com"));
    assert_ne!(p1, pseudonym(b"key-two-0123456789", "a@gmail.com"));
    assert_eq!(p1.len(), PSEUDONYM_PREFIX.len() + 64);
}

/// Issue 29 (6): a CSV error is reported at the line where its record starts, with no second,
/// different position from the csv crate in the reason.
#[test]
fn a_csv_error_is_reported_at_the_line_where_its_record_starts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("aff.csv");
    std::fs::write(
        &path,
        "# leakaudit-affected/1\naddress,account_id,messages,audience,first_exposed,last_exposed,rule_ids,fields,message_ids\n\
         a@x.example,,1,2,2019-11-01T09:00:00Z,2019-11-01T09:00:00Z,r,To,m1\n\
         \"b\n@x.example\",,1,2,2019-11-01T09:00:00Z,2019-11-01T09:00:00Z,r,To,m1\n\
         c@x.example,,1,2\n",
    )
    .unwrap();
    let e = crate::affected::io::read_file(&path)
        .unwrap_err()
        .to_string();
    assert!(e.contains("aff.csv:6: 4 fields, the header has 9"), "{e}");
    assert!(!e.contains("line: 5"), "{e}");
}
