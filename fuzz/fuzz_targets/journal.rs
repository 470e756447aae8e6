//! The journal-report reader on arbitrary bytes: never panics; the fast path and the general
//! (mailparse) path give the same answer; an original it borrows is a slice of the input;
//! every envelope address is canonical; what `render` writes, `unwrap` reads back with the
//! same recipients; reusing the original's header addresses changes no recipient.
#![no_main]

use leakaudit_scanner::headers::parse_envelope;
use leakaudit_scanner::read::journal::{locate, render, unwrap, unwrap_general};
use leakaudit_scanner::Address;
use libfuzzer_sys::fuzz_target;
use std::borrow::Cow;

fuzz_target!(|data: &[u8]| {
    let got = unwrap(data);
    assert_eq!(got, unwrap_general(data), "the fast path disagrees");
    if let Ok(located) = locate(data) {
        if let Some(Ok(env)) = located.original().map(parse_envelope) {
            assert_eq!(located.report(&env.recipients), got, "reused addresses differ");
        }
    }
    if let Ok(r) = got {
        if let Cow::Borrowed(o) = &r.original {
            let start = (o.as_ptr() as usize).wrapping_sub(data.as_ptr() as usize);
            assert!(start + o.len() <= data.len(), "original outside the input");
        }
        for rc in &r.recipients {
            assert_eq!(Address::parse(rc.address.as_str()).as_ref(), Some(&rc.address));
        }
        // Round trip: the original wrapped again yields the same envelope.
        let again = render(&r.original, &r.recipients, 1);
        if let Ok(back) = unwrap(&again) {
            assert_eq!(back.recipients, r.recipients);
        }
    }
});
