//! The mbox splitter: `split` yields ordered, disjoint spans inside the input, and the
//! streaming `Splitter` (small blocks, so messages straddle reads) finds the same messages
//! at the same offsets as one `split` of the whole input.
#![no_main]

use leakaudit_scanner::read::mbox::{split, SplitEvent, Splitter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let whole = split(data, true);
    let mut prev_end = 0;
    for s in &whole {
        assert!(s.start <= s.content && s.content <= s.end, "{s:?}");
        assert!(s.end <= data.len(), "{s:?} past {}", data.len());
        assert!(s.start >= prev_end, "{s:?} overlaps the previous span");
        prev_end = s.end;
    }

    // The smallest block the splitter allows; a limit no message reaches, so nothing is
    // skipped and every byte is seen.
    let splitter = Splitter::new(data, Vec::new(), 4096, usize::MAX);
    let mut streamed = Vec::new();
    let mut index = 1;
    for ev in splitter {
        match ev {
            SplitEvent::Block(b) => {
                assert_eq!(b.first_index, index, "block index");
                index += b.spans.len() as u64;
                let base = b.base as usize;
                for s in &b.spans {
                    streamed.push((base + s.start, base + s.content, base + s.end));
                    assert_eq!(
                        &b.data[s.content..s.end],
                        &data[base + s.content..base + s.end],
                        "block bytes differ from the input"
                    );
                }
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
    let expected: Vec<_> = whole.iter().map(|s| (s.start, s.content, s.end)).collect();
    assert_eq!(streamed, expected, "streamed and whole split differ");
});
