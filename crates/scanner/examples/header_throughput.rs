//! Measures header parsing and the exposure analysis (run with `--release`):
//! `cargo run --release -p leakaudit-scanner --example header_throughput`
//!
//! Prints single-thread throughput of `parse_envelope` on synthetic typical messages
//! (2-4 KB, 8-20 header fields), and the time for 1,000- and 20,000-address headers, beside
//! mailparse's own `addrparse_header` on the same whole value (quadratic on one long line
//! with encoded words, which is why `headers/list.rs` splits lists itself).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use leakaudit_scanner::exposure::analyse;
use leakaudit_scanner::headers::parse_envelope;
use leakaudit_scanner::Org;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Deterministic xorshift so that runs compare.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn typical(rng: &mut Rng, i: usize) -> Vec<u8> {
    let mut m = String::new();
    let hops = 2 + rng.below(5);
    for h in 0..hops {
        m.push_str(&format!(
            "Received: from mx{h}.relay.example (mx{h}.relay.example [192.0.2.{h}])\r\n\tby mail.shop.example with ESMTPS id {i:x}{h}\r\n\tfor <user{i}@gmail.com>; Tue, 3 Mar 2026 10:00:{:02} +0100\r\n",
            h % 60
        ));
    }
    m.push_str(if i.is_multiple_of(2) {
        "From: \"Shop Support\" <support@shop.example>\r\n"
    } else {
        "From: Shop Support <support@shop.example>\r\n"
    });
    let n = 1 + rng.below(3);
    // A third each: RFC 2047 names (mailparse path), plain names and bare addresses (fast path).
    let to: Vec<String> = (0..n)
        .map(|k| match (i + k as usize) % 3 {
            0 => format!("=?utf-8?q?Kunde_{k}?= <kunde{i}.{k}@gmail.com>"),
            1 => format!("Kunde {k} <kunde{i}.{k}@gmail.com>"),
            _ => format!("kunde{i}.{k}@gmail.com"),
        })
        .collect();
    m.push_str(&format!("To: {}\r\n", to.join(", ")));
    if rng.below(3) == 0 {
        m.push_str(&format!("Cc: colleague{i}@acme.example\r\n"));
    }
    m.push_str(&format!(
        "Subject: =?utf-8?q?Ihre_Bestellung_Nr=2E_{i}_wurde_versandt?=\r\nDate: Tue, 3 Mar 2026 10:00:00 +0100\r\nMessage-ID: <{i}.{}@shop.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\nX-Mailer: shop 1.0\r\nList-Unsubscribe: <https://shop.example/u/{i}>\r\nDKIM-Signature: v=1; a=rsa-sha256; d=shop.example; s=s1; bh=abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG=;\r\n\tb=ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n\r\n",
        rng.next()
    ));
    let body = 1500 + rng.below(2000) as usize;
    while m.len() < body {
        m.push_str("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\r\n");
    }
    m.into_bytes()
}

fn batch(n: usize, sep: &str) -> String {
    let list: Vec<String> = (0..n)
        .map(|i| format!("=?utf-8?q?Kunde,_Nr_{i}?= <kunde{i}@gmail.com>"))
        .collect();
    format!(
        "From: news@shop.example\nTo: {}\nSubject: batch\n\n",
        list.join(&format!(",{sep}"))
    )
}

fn time<T>(f: impl Fn() -> T) -> Duration {
    let t = Instant::now();
    black_box(f());
    t.elapsed()
}

fn main() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // HEADER_BENCH_MSGS=2000 HEADER_BENCH_ROUNDS=1 for a quick run (e.g. under callgrind).
    let env_num = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let n_msgs = env_num("HEADER_BENCH_MSGS", 20_000);
    let rounds = env_num("HEADER_BENCH_ROUNDS", 3);
    let msgs: Vec<Vec<u8>> = (0..n_msgs).map(|i| typical(&mut rng, i)).collect();
    let bytes: usize = msgs.iter().map(Vec::len).sum();
    let org = Org::with_defaults();
    for round in 0..rounds {
        let t = Instant::now();
        let mut recips = 0;
        for m in &msgs {
            let e = parse_envelope(m).unwrap();
            recips += e.recipients.len();
        }
        let parse = t.elapsed();
        let t = Instant::now();
        let mut exposing = 0;
        for m in &msgs {
            let e = parse_envelope(m).unwrap();
            exposing += usize::from(analyse(&e, &org).exposes());
        }
        let both = t.elapsed();
        println!(
            "round {round}: {} messages, {:.1} MB, avg {} B: parse_envelope {:.0} MB/s {:.0} msg/s; \
             parse+analyse {:.0} MB/s {:.0} msg/s (single thread; {recips} recipients, {exposing} exposing)",
            msgs.len(),
            bytes as f64 / 1e6,
            bytes / msgs.len(),
            bytes as f64 / 1e6 / parse.as_secs_f64(),
            msgs.len() as f64 / parse.as_secs_f64(),
            bytes as f64 / 1e6 / both.as_secs_f64(),
            msgs.len() as f64 / both.as_secs_f64(),
        );
    }

    if rounds < 2 {
        return;
    }
    for n in [1_000usize, 5_000, 20_000] {
        for (label, sep) in [("one line", " "), ("folded", "\r\n ")] {
            let raw = batch(n, sep);
            let ours = time(|| parse_envelope(raw.as_bytes()).unwrap().recipients.len());
            let e = parse_envelope(raw.as_bytes()).unwrap();
            assert_eq!(e.recipients.len(), n);
            let ana = time(|| analyse(&e, &org).exposed.len());
            let (h, _) =
                mailparse::parse_header(&raw.as_bytes()[raw.find("To:").unwrap()..]).unwrap();
            let theirs = if n <= 5_000 || sep != " " {
                format!(
                    "{:?}",
                    time(|| mailparse::addrparse_header(&h).map(|l| l.len()))
                )
            } else {
                "skipped (quadratic)".into()
            };
            println!(
                "{n:>6} addresses, {label:8}: parse_envelope {ours:?}, analyse {ana:?}; mailparse addrparse_header on the whole value {theirs}"
            );
        }
    }
}
