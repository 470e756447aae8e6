//! The provider log readers (Amazon SES, Mailgun, Postmark) on arbitrary bytes, read as a whole
//! log (`scan_reader` forced to each: line splitting, values across lines, `}{` records, SES
//! dedup by message id, Mailgun grouping and pages) and event by event (`ses::message_of`,
//! `mailgun::message_of`): never panics; every message and problem names a line and offset
//! inside the input; every envelope address is canonical; a message made from an event parses
//! as mail.
#![no_main]

use leakaudit_scanner::read::{mailgun, postmark, ses};
use leakaudit_scanner::scan::{Event, ScanOptions, Scanner};
use leakaudit_scanner::{Address, Format, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for format in [Format::Ses, Format::Mailgun, Format::Postmark] {
        read_as(format, data);
    }
    if let Ok(m) = ses::message_of(data) {
        assert!(m.raw.ends_with(b"\r\n"));
        let _ = Message::from_bytes(&m.raw);
    }
    if let Ok(m) = postmark::message_of(data) {
        assert!(m.raw.ends_with(b"\r\n"));
        let _ = Message::from_bytes(&m.raw);
    }
    if let Ok(m) = mailgun::message_of(data, &["a@b.example".to_string()]) {
        assert!(m.raw.ends_with(b"\r\n"));
        let _ = Message::from_bytes(&m.raw);
    }
});

fn read_as(format: Format, data: &[u8]) {
    let scanner = Scanner::new(ScanOptions {
        format: Some(format),
        // The global pool: a pool per input would be torn down after it, which LeakSanitizer
        // reports as a leak.
        threads: None,
        ..ScanOptions::default()
    });
    let lines = data.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
    let check = |loc: &leakaudit_scanner::Location| {
        if let Some(l) = loc.line {
            assert!(l >= 1 && l <= lines, "line {l} of {lines}");
        }
        if let Some(o) = loc.offset {
            assert!(o <= data.len() as u64, "offset {o} past {}", data.len());
        }
    };
    scanner.scan_reader(
        "fuzz.jsonl",
        Box::new(std::io::Cursor::new(data.to_vec())),
        |m: &mut Message<'_>| {
            for r in &m.envelope.envelope_recipients {
                assert_eq!(Address::parse(r.address.as_str()).as_ref(), Some(&r.address));
            }
            m.location.clone()
        },
        |ev| match ev {
            Event::Message { location, .. } => check(&location),
            Event::Problem(p) => check(&p.location),
            _ => {}
        },
    );
}
