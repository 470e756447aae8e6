//! Renders an mbox as an Exchange journal mailbox (one envelope journal report per message,
//! Microsoft's documented layout: see `read/journal.rs`), for tests and benchmarks.
//!
//! `cargo run --release -p leakaudit-scanner --example to_journal -- IN.mbox OUT.mbox`

use leakaudit_scanner::read::journal;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = args.as_slice() else {
        eprintln!("usage: to_journal IN.mbox OUT.mbox");
        return ExitCode::from(2);
    };
    let data = match std::fs::read(input) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{input}: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = std::fs::write(output, journal::render_mbox(&data)) {
        eprintln!("{output}: {e}");
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}
