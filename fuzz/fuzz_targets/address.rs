//! The address canonicaliser and the address-list splitter. The splitter is reached through
//! the public header parser with the input as the value of a `To:` field (folded lines stay
//! inside the field); every address it yields, and every address `Address::parse` accepts,
//! must be a fixed point of the canonical form.
#![no_main]

use leakaudit_scanner::address::canonical_domain;
use leakaudit_scanner::headers::parse_envelope;
use leakaudit_scanner::{Address, Field};
use libfuzzer_sys::fuzz_target;

fn assert_canonical(a: &Address) {
    assert_eq!(
        Address::parse(a.as_str()).as_ref(),
        Some(a),
        "not a fixed point: {a}"
    );
    assert!(
        !a.local().is_empty() && !a.domain().is_empty(),
        "empty part: {a}"
    );
}

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Some(a) = Address::parse(s) {
            assert_canonical(&a);
        }
        if let Some(d) = canonical_domain(s) {
            assert_eq!(
                canonical_domain(&d).as_deref(),
                Some(d.as_str()),
                "domain {d}"
            );
        }
    }
    let mut raw = Vec::with_capacity(data.len() + 32);
    raw.extend_from_slice(b"From: a@example.com\r\nTo: ");
    raw.extend_from_slice(data);
    raw.extend_from_slice(b"\r\n\r\n");
    let Ok(env) = parse_envelope(&raw) else {
        return;
    };
    for r in &env.recipients {
        assert_canonical(&r.mailbox.address);
        assert!(
            matches!(r.field, Field::To),
            "a To value produced a {:?} recipient",
            r.field
        );
    }
});
