use leakaudit_scanner::headers::parse_envelope;
use leakaudit_scanner::read::{journal, mbox};
use std::time::Instant;
fn main() {
    let data = std::fs::read(std::env::args().nth(1).unwrap()).unwrap();
    let spans = mbox::split(&data, true);
    let msgs: Vec<&[u8]> = spans.iter().map(|s| &data[s.content..s.end]).collect();
    let t = Instant::now();
    let mut n = 0;
    for m in &msgs {
        if parse_envelope(m).is_ok() {
            n += 1;
        }
    }
    println!(
        "outer parse_envelope: {:?} per msg ({n})",
        t.elapsed() / msgs.len() as u32
    );
    let t = Instant::now();
    let mut inner = Vec::new();
    for m in &msgs {
        if let Ok(r) = journal::unwrap(m) {
            inner.push(r);
        }
    }
    println!(
        "unwrap: {:?} per msg ({})",
        t.elapsed() / msgs.len() as u32,
        inner.len()
    );
    let t = Instant::now();
    for r in &inner {
        let _ = parse_envelope(&r.original);
    }
    println!(
        "inner parse_envelope: {:?} per msg",
        t.elapsed() / msgs.len() as u32
    );
    let t = Instant::now();
    for m in &msgs {
        let _ = mbox::split(m, true);
    }
    println!("split per msg: {:?}", t.elapsed() / msgs.len() as u32);
}
