//! Peak memory of the affected list for one message with N visible addresses (issue 9).
//!
//! `cargo run --release -p leakaudit-remediation --example affected_mem -- N [pipeline|accumulator] OUT.csv`
//!
//! * `pipeline`: the message is built (N consumer addresses in Cc, two colleagues of one
//!   business in To), parsed by the scanner, evaluated by the built-in policy engine, and its
//!   findings fed to the accumulator, as `affected ARCHIVE` does;
//! * `accumulator`: only the findings (built from the exposure model) are fed.
//!
//! Then the list is streamed to OUT.csv. Run it under `/usr/bin/time -v` for the peak RSS
//! (bench/affected.sh does). Prints rows and whether every audience is right (N).

use leakaudit_policy::{Engine, RulePack};
use leakaudit_remediation::affected::{write_file, AffectedFormat, ListMeta};
use leakaudit_remediation::AffectedAccumulator;
use leakaudit_scanner::headers::parse_envelope;
use leakaudit_scanner::{Format, Location, Message, Org};
use std::path::PathBuf;

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
    {
        let raw = message(n);
        let envelope = parse_envelope(&raw)?;
        let msg = Message {
            location: Location::file("big.eml"),
            format: Format::Eml,
            raw: &raw,
            mbox_quoted: false,
            envelope,
        };
        let org = Org::with_defaults();
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
    }
    let mut right = 0usize;
    let rows = acc
        .rows_iter()
        .inspect(|r| right += usize::from(r.audience == n));
    let written = write_file(&out, AffectedFormat::Csv, &ListMeta::default(), rows)?;
    println!(
        "{written} rows, {right} with audience {n}, per-address state {} bytes",
        acc.per_address_state_bytes()
    );
    if written != n + 2 || right != n + 2 {
        return Err("wrong rows or audiences".into());
    }
    Ok(())
}
