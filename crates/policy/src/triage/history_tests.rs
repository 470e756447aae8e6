use super::*;
use leakaudit_scanner::headers::parse_envelope;

fn env(s: &str) -> Envelope {
    parse_envelope(s.as_bytes()).unwrap()
}

fn org() -> Org {
    let mut o = Org::with_defaults();
    o.add_internal_domain("shop.example");
    o
}

fn mail(id: &str, to: &str) -> Envelope {
    env(&format!(
        "Message-ID: <{id}>\nFrom: me@shop.example\nTo: {to}\nSubject: hello\n\n"
    ))
}

#[test]
fn pairs_are_known_only_from_another_message() {
    let o = org();
    let mut h = History::default();
    let m1 = mail("1@x", "a@acme.example, b@beta.example");
    h.observe(&m1, &o);
    let tag1 = message_tag(&m1);
    // Only m1 showed them together: for m1 itself they are strangers.
    assert!(!h.shared("acme.example", "beta.example", tag1));
    // The same message again (another copy, same Message-ID) is not new evidence.
    h.observe(&mail("1@x", "a@acme.example, b@beta.example"), &o);
    assert!(!h.shared("acme.example", "beta.example", tag1));
    h.observe(&mail("2@x", "b2@beta.example, a@acme.example"), &o);
    assert!(h.shared("beta.example", "acme.example", tag1));
    assert!(!h.shared("acme.example", "gamma.example", tag1));
    assert_eq!(h.messages(), 3);
}

#[test]
fn sender_and_recipient_wrote_to_each_other() {
    // A journal: the customer wrote to us with her partner in Cc.
    let o = org();
    let mut h = History::default();
    h.observe(
        &env("Message-ID: <in@x>\nFrom: jane@acme.example\nTo: help@shop.example\nCc: bob@gmail.com\n\n"),
        &o,
    );
    assert!(h.shared("acme.example", "bob@gmail.com", 7));
}

#[test]
fn large_messages_add_no_pairs() {
    let o = org();
    let mut h = History::default();
    let to: Vec<String> = (0..51).map(|i| format!("u{i}@gmail.com")).collect();
    h.observe(&mail("big@x", &to.join(", ")), &o);
    assert_eq!(h.pairs(), 0);
    let to: Vec<String> = (0..50).map(|i| format!("u{i}@gmail.com")).collect();
    h.observe(&mail("ok@x", &to.join(", ")), &o);
    assert_eq!(h.pairs(), 50 * 49 / 2);
}

#[test]
fn cap_drops_new_pairs_and_counts_them() {
    let o = org();
    let mut h = History::new(HistoryOptions {
        max_pairs: 3,
        ..HistoryOptions::default()
    });
    h.observe(
        &mail("1@x", "a@a.example, b@b.example, c@c.example, d@d.example"),
        &o,
    );
    assert_eq!(h.pairs(), 3);
    assert_eq!(h.dropped_pairs(), 3);
}

#[test]
fn merge_of_partials_equals_one_pass() {
    let o = org();
    let msgs: Vec<Envelope> = (0..20)
        .map(|i| {
            mail(
                &format!("{i}@x"),
                &format!("p{}@gmail.com, q{}@corp{}.example", i % 4, i % 3, i % 5),
            )
        })
        .collect();
    let mut one = History::default();
    for m in &msgs {
        one.observe(m, &o);
    }
    let (mut a, mut b) = (History::default(), History::default());
    for (i, m) in msgs.iter().enumerate() {
        if i % 2 == 0 {
            a.observe(m, &o)
        } else {
            b.observe(m, &o)
        }
    }
    a.merge(b);
    one.finish();
    a.finish();
    assert_eq!(a.messages(), one.messages());
    assert_eq!(a.pairs, one.pairs);
    assert_eq!(a.sender_domains, one.sender_domains);
}

#[test]
fn save_and_load_round_trip_and_refuse_bad_files() {
    let o = org();
    let mut h = History::default();
    h.observe(&mail("1@x", "a@acme.example, b@beta.example"), &o);
    h.observe(&mail("2@x", "a@acme.example, b@beta.example"), &o);
    h.observe(&env("From: x@sub.example\nTo: a@acme.example\n\n"), &o);
    h.finish();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("history.bin");
    h.save(&p).unwrap();
    let l = History::load(&p, HistoryOptions::default()).unwrap();
    assert_eq!(l.pairs, h.pairs);
    assert_eq!(l.sender_domains, h.sender_domains);
    assert_eq!(l.chunks, h.chunks);
    assert_eq!(l.messages(), 3);

    let bytes = std::fs::read(&p).unwrap();
    let bad = dir.path().join("bad");
    std::fs::write(&bad, &bytes[..bytes.len() - 3]).unwrap();
    assert!(matches!(
        History::load(&bad, HistoryOptions::default()),
        Err(HistoryError::Corrupt { .. })
    ));
    let mut v2 = bytes.clone();
    v2[MAGIC.len()] = 2;
    std::fs::write(&bad, &v2).unwrap();
    assert!(matches!(
        History::load(&bad, HistoryOptions::default()),
        Err(HistoryError::Version { found: 2, .. })
    ));
    // A huge count in a short file is refused before any allocation.
    let mut huge = bytes[..MAGIC.len() + 4 + 24].to_vec();
    huge.extend_from_slice(&u64::MAX.to_le_bytes());
    std::fs::write(&bad, &huge).unwrap();
    let e = History::load(&bad, HistoryOptions::default()).unwrap_err();
    assert!(e.to_string().contains("count larger than the file"), "{e}");
    std::fs::write(&bad, b"From: x\n").unwrap();
    assert!(matches!(
        History::load(&bad, HistoryOptions::default()),
        Err(HistoryError::NotHistory { .. })
    ));
    let missing = History::load(&dir.path().join("nope"), HistoryOptions::default()).unwrap_err();
    assert!(missing.to_string().contains("nope"), "{missing}");
}

#[test]
fn suggested_internal_domains_are_frequent_non_consumer_sender_domains() {
    let o = org();
    let mut h = History::default();
    for i in 0..10 {
        h.observe(
            &env(&format!("From: a{i}@shop.example\nTo: x@y.example\n\n")),
            &o,
        );
    }
    for i in 0..4 {
        h.observe(
            &env(&format!(
                "From: b{i}@shop-energy.example\nTo: x@y.example\n\n"
            )),
            &o,
        );
        h.observe(
            &env(&format!("From: me{i}@gmail.com\nTo: x@y.example\n\n")),
            &o,
        );
    }
    h.observe(&env("From: once@other.example\nTo: x@y.example\n\n"), &o);
    assert_eq!(
        h.suggested_internal_domains(),
        [
            ("shop.example".to_owned(), 10),
            ("shop-energy.example".to_owned(), 4)
        ]
    );
    assert!(h.is_org_domain("shop-energy.example"));
    assert!(!h.is_org_domain("other.example"));
    assert!(!h.is_org_domain("gmail.com"));
}

fn chunk(id: &str, date: &str, subject: &str, n: usize, base: usize) -> Envelope {
    let to: Vec<String> = (base..base + n)
        .map(|i| format!("c{i}@gmail.com"))
        .collect();
    env(&format!(
        "Message-ID: <{id}>\nDate: {date}\nFrom: news@shop.example\nSubject: {subject}\nTo: {}\n\n",
        to.join(", ")
    ))
}

#[test]
fn campaign_chunks_within_the_window_by_subject_and_language_variant() {
    let o = org();
    let t = Thresholds::default();
    let mut h = History::default();
    let msgs = [
        chunk(
            "1@x",
            "Fri, 1 Nov 2019 10:00:00 +0000",
            "Changes (batch 1/3)",
            20,
            0,
        ),
        chunk(
            "2@x",
            "Fri, 1 Nov 2019 10:05:00 +0000",
            "Changes (batch 2/3)",
            20,
            20,
        ),
        chunk(
            "3@x",
            "Fri, 1 Nov 2019 10:10:00 +0000",
            "Änderungen",
            20,
            40,
        ),
        // A week later: another mailing.
        chunk(
            "4@x",
            "Fri, 8 Nov 2019 10:00:00 +0000",
            "Changes (batch 3/3)",
            20,
            60,
        ),
        // Small slip with another subject: not a variant.
        chunk("5@x", "Fri, 1 Nov 2019 10:20:00 +0000", "Your order", 2, 80),
        // Another large mailing later that day: beyond the 30 min variant window.
        chunk(
            "6@x",
            "Fri, 1 Nov 2019 12:30:00 +0000",
            "Winter sale",
            20,
            100,
        ),
    ];
    for m in &msgs {
        h.observe(m, &o);
    }
    h.finish();
    let c = h.campaign(&msgs[0], 20, &t);
    assert_eq!(
        c,
        CampaignStats {
            chunks: 3,
            addresses: 60
        }
    );
    let c = h.campaign(&msgs[3], 20, &t);
    assert_eq!(c.chunks, 1);
    let c = h.campaign(&msgs[4], 2, &t);
    assert_eq!(
        c,
        CampaignStats {
            chunks: 1,
            addresses: 2
        }
    );
    assert_eq!(h.campaign(&msgs[5], 20, &t).chunks, 1);
    // Not in the history at all (another run): still counts itself. The German variant sent
    // at 10:10 is 50 min away: same mailing only by subject (chunks 1 and 2).
    let other = chunk(
        "9@x",
        "Fri, 1 Nov 2019 11:00:00 +0000",
        "Changes (batch 4/3)",
        20,
        90,
    );
    assert_eq!(h.campaign(&other, 20, &t).chunks, 3);
}

#[test]
fn builder_from_many_threads_equals_one_pass() {
    let o = org();
    let msgs: Vec<Envelope> = (0..64)
        .map(|i| {
            mail(
                &format!("{i}@x"),
                &format!("p{}@gmail.com, q{}@c{}.example", i % 7, i % 5, i % 3),
            )
        })
        .collect();
    let mut one = History::default();
    for m in &msgs {
        one.observe(m, &o);
    }
    one.finish();
    let b = HistoryBuilder::new(HistoryOptions::default());
    std::thread::scope(|s| {
        for part in msgs.chunks(16) {
            let (b, o) = (&b, &o);
            s.spawn(move || part.iter().for_each(|m| b.observe(m, o)));
        }
    });
    let h = b.finish();
    assert_eq!(h.messages(), 64);
    assert_eq!(h.pairs, one.pairs);
    assert_eq!(h.chunks, one.chunks);
}
