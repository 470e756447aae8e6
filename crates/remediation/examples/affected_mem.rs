//! Peak memory of the affected list for one message with N visible addresses (issue 9).
//!
//! `cargo run --release -p leakaudit-remediation --example affected_mem -- N [pipeline|record|direct] OUT.csv`
//!
//! * `pipeline`: the message is built (N consumer addresses in Cc, two colleagues of one
//!   business in To), parsed by the scanner, evaluated by the built-in policy engine, and its
//!   findings fed to the accumulator, as `affected ARCHIVE` does;
//! * `record`: the message is parsed and its scan record (exposure model) fed;
//! * `direct`: no message; N addresses fed as content exposures of one finding whose party
//!   list has them all: the accumulator's own memory plus the N input strings.
//!
//! Then the list is streamed to OUT.csv. Run it under `/usr/bin/time -v` for the peak RSS
//! (bench/affected.sh does). Prints rows and whether every audience is right (N).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use leakaudit_policy::{Engine, RulePack};
use leakaudit_remediation::affected::{write_file, AffectedFormat, ListMeta};
use leakaudit_remediation::AffectedAccumulator;
use leakaudit_scanner::{Location, Message, Org};
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

fn message(n: usize) -> Vec<u8> {
    let mut m = String::with_capacity(n * 24 + 512);
    m.push_str("From: shop@shop.example\r\nTo: ann@acme.example, ben@acme.example\r\n");
    m.push_str("Date: Fri, 01 Nov 2019 09:00:00 +0000\r\nMessage-ID: <big@shop.example>\r\n");
    m.push_str("Subject: Important: changes to your account\r\nCc: ");
    for i in 0..n {
        if i > 0 {
            m.push_str(",\r\n ");
        }
        m.push_str(&format!("user{i}@gmail.com"));
    }
    m.push_str("\r\n\r\nHello.\r\n");
    m.into_bytes()
}

/// Counts live heap bytes, so the accumulator's own share can be told from the inputs'.
struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(l.size(), Ordering::Relaxed) + l.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn mib(b: usize) -> String {
    format!("{:.1} MiB", b as f64 / 1048576.0)
}

/// Live and peak heap, VmRSS and VmHWM (peak RSS) of this process.
fn status() -> String {
    let heap = format!(
        "heap live {}, heap peak {}",
        mib(LIVE.load(Ordering::Relaxed)),
        mib(PEAK.load(Ordering::Relaxed))
    );
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .filter(|l| l.starts_with("VmRSS") || l.starts_with("VmHWM"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .chain([heap])
        .collect::<Vec<_>>()
        .join(", ")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args
        .get(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let mode = args.get(2).map(String::as_str).unwrap_or("pipeline");
    let out = PathBuf::from(
        args.get(3)
            .map(String::as_str)
            .unwrap_or("affected-mem.csv"),
    );
    let mut acc = AffectedAccumulator::new();
    if mode == "direct" {
        let mut parties: Vec<String> = (0..n).map(|i| format!("user{i}@gmail.com")).collect();
        parties.push("acme.example".into());
        let mut f: leakaudit_policy::Finding = serde_json::from_str(
            r#"{"rule_id":"recipient-exposure","severity":"high","message":"","evidence":"",
                "fingerprint":"","location":{"path":"big.eml"},"message_id":"big@shop.example"}"#,
        )?;
        f.audience_parties = parties.into_iter().map(Into::into).collect();
        eprintln!("inputs built: {}", status());
        let colleagues = ["ann@acme.example", "ben@acme.example"];
        let addrs = f.audience_parties[..n]
            .iter()
            .map(|p| p.as_str())
            .chain(colleagues);
        acc.add_with_content(&f, addrs.map(|a| (a, "body")));
        eprintln!("after add: {}", status());
    } else {
        let raw = message(n);
        let msg = Message::from_bytes_at(&raw, Location::file("big.eml")).map_err(|p| p.reason)?;
        let org = Org::with_defaults();
        eprintln!("message parsed: {}", status());
        if mode == "pipeline" {
            let engine = Engine::new(RulePack::builtin(), org, &Default::default());
            for f in &engine.evaluate(&msg).findings {
                acc.add(f);
            }
        } else {
            let exposure = leakaudit_scanner::exposure::analyse(&msg.envelope, &org);
            let record = leakaudit_scanner::ExposureRecord::new(&msg, &exposure);
            acc.add_record(&record);
        }
        eprintln!("after add: {}", status());
    }
    eprintln!("inputs dropped: {}", status());
    let mut right = 0usize;
    let rows = acc
        .rows_iter()
        .inspect(|r| right += usize::from(r.audience == n));
    let written = write_file(&out, AffectedFormat::Csv, &ListMeta::default(), rows)?;
    eprintln!("after rows: {}", status());
    println!(
        "{written} rows, {right} with audience {n}, per-address state {} bytes",
        acc.per_address_state_bytes()
    );
    if written != n + 2 || right != n + 2 {
        return Err("wrong rows or audiences".into());
    }
    Ok(())
}
