//! Generates a large synthetic outgoing-mail mbox for the benchmark, deterministically
//! (the same size argument gives the same bytes on every machine).
//!
//! `cargo run --release -p leakaudit-scanner --example gen_bench -- [SIZE_MB] [OUT]`
//! (defaults: 1024 MB into `bench-data/bench-1024mb.mbox`). Also writes `OUT.meta` with the
//! message count, read by `bench/run.sh`.
//!
//! The mix imitates a company's sent mail: mostly 1:1 mail to customers (consumer and
//! corporate domains), support threads with several people at one client and colleagues in
//! Cc, internal mail, some base64 attachments, a few mass mails of 1,000 recipients in To
//! (the incident), RFC 2047 subjects, Received chains, bodies of 1-4 KB, mboxrd `>From `
//! lines (some after a blank line, as a writer quotes them).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

mod generate;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let size_mb: u64 = match args.next() {
        Some(s) => s.parse().map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "SIZE_MB must be a number")
        })?,
        None => 1024,
    };
    let out_path = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(format!("bench-data/bench-{size_mb}mb.mbox")));
    if let Some(dir) = out_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let target = size_mb * 1_000_000;
    // Write to a temporary name so an interrupted run never leaves a short archive behind.
    let tmp = out_path.with_extension("partial");
    let mut w = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
    let (messages, written) = generate::generate(target, &mut w)?;
    w.flush()?;
    drop(w);
    std::fs::rename(&tmp, &out_path)?;
    let meta = format!("messages={messages}\nbytes={written}\n");
    std::fs::write(format!("{}.meta", out_path.display()), meta)?;
    println!(
        "{}: {messages} messages, {written} bytes",
        out_path.display()
    );
    Ok(())
}
