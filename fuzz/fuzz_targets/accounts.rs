//! The accounts CSV reader (`leakaudit accounts import`, `incident --accounts FILE.csv`): any
//! bytes either parse into validated records or give an error, never a panic; accepted emails
//! are canonical and every field respects the size limit.
#![no_main]

use leakaudit_remediation::import::{parse_accounts_csv, MAX_FIELD};
use leakaudit_scanner::Address;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(parsed) = parse_accounts_csv(Path::new("accounts.csv"), data) else {
        return;
    };
    assert_eq!(parsed.records.len(), parsed.lines.len());
    for r in &parsed.records {
        assert!(r.id.len() <= MAX_FIELD, "id of {} bytes", r.id.len());
        let a = Address::parse(&r.email).expect("accepted email does not parse");
        assert_eq!(a.as_str(), r.email, "accepted email not canonical");
    }
});
