//! The header parser on arbitrary bytes: never panics, and every address it returns is in
//! canonical form (parses back to itself).
#![no_main]

use leakaudit_scanner::headers::parse_envelope;
use leakaudit_scanner::Address;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(env) = parse_envelope(data) else {
        return;
    };
    assert!(env.header_len <= data.len(), "header_len past the input");
    let addresses = env
        .from
        .iter()
        .chain(env.recipients.iter().map(|r| &r.mailbox))
        .map(|m| &m.address)
        .chain(&env.facts.reply_to);
    for a in addresses {
        assert_eq!(
            Address::parse(a.as_str()).as_ref(),
            Some(a),
            "not canonical: {a}"
        );
    }
    for r in &env.recipients {
        if let Some(g) = r.group {
            assert!(g < env.groups.len(), "group index out of range");
        }
    }
    // 32 warnings plus one too-many-warnings marker.
    assert!(env.warnings.len() <= 33, "{} warnings", env.warnings.len());
});
