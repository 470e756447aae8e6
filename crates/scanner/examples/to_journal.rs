//! Renders an mbox as an Exchange journal mailbox (one envelope journal report per message,
//! Microsoft's documented layout: see `read/journal.rs`), for tests and benchmarks.
//!
//! `cargo run --release -p leakaudit-scanner --example to_journal -- IN.mbox OUT.mbox [BCC...]`
//!
//! Each BCC address is added as a Bcc recipient to the envelope of every message that names
//! 10 recipients or more (a mailer's deliverability seeds on its bulk sends).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use leakaudit_scanner::read::journal;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output, bcc @ ..] = args.as_slice() else {
        eprintln!("usage: to_journal IN.mbox OUT.mbox [BCC...]");
        return ExitCode::from(2);
    };
    let bcc: Vec<&str> = bcc.iter().map(String::as_str).collect();
    let data = match std::fs::read(input) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{input}: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = std::fs::write(output, journal::render_mbox(&data, &bcc)) {
        eprintln!("{output}: {e}");
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}
