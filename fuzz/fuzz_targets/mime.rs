//! The MIME walker (content extraction for content rules): never panics on any message, a
//! verbatim segment is the slice of the input it claims to be, and the addresses found in the
//! text are canonical.
#![no_main]

use leakaudit_policy::content::{addresses, segments_with, Layout, Limits};
use leakaudit_scanner::Address;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    for layout in [Layout::Flat, Layout::Quoting] {
        for seg in segments_with(data, &limits, layout) {
            if let Some(off) = seg.raw_offset {
                assert_eq!(
                    data.get(off..off + seg.text.len()),
                    Some(&seg.text[..]),
                    "segment at {off} is not the input's bytes"
                );
            }
            let _ = seg.source().label();
            for (pos, a) in addresses(&seg.text) {
                assert!(pos < seg.text.len());
                assert_eq!(Address::parse(a.as_str()).as_ref(), Some(&a), "{a}");
            }
        }
    }
});
