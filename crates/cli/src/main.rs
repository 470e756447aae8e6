//! The `leakaudit` binary: clap structs -> validated config -> library calls -> renderers.
//!
//! Exit codes are a contract: 0 clean, 1 policy violation, 2 error (including any input that
//! could not be read or any message that could not be audited).

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod accounts;
mod affected;
mod check;
mod config;
mod incident;
mod progress;
mod remediate;
mod rules_cmd;
mod scan;

// mimalloc: the scan allocates many small strings per message; glibc malloc cost ~15% of CPU.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code: nothing to report.
pub const EXIT_CLEAN: u8 = 0;
/// Exit code: a policy violation (an exposing message, a finding at or above --fail-on).
pub const EXIT_VIOLATION: u8 = 1;
/// Exit code: an error (bad arguments, unreadable input, malformed messages, failed action).
pub const EXIT_ERROR: u8 = 2;

#[derive(Parser)]
#[command(
    name = "leakaudit",
    version,
    about = "Audit outgoing mail for exposed recipients and drive the incident response"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Scan archives and list every message that exposes recipients to each other.
    Scan(scan::Args),
    /// Evaluate the rules on archives or fixtures: the CI gate.
    Check(check::Args),
    /// Validate or test rule files.
    #[command(subcommand)]
    Rules(rules_cmd::Command),
    /// Write the list of affected users (one row per exposed address).
    Affected(affected::Args),
    /// Manage the account store.
    #[command(subcommand)]
    Accounts(accounts::Command),
    /// Plan, apply and verify the remediation.
    #[command(subcommand)]
    Remediate(remediate::Command),
    /// Run the whole incident response: scan, rules, affected users, plan, report.
    Incident(incident::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Scan(a) => scan::run(a),
        Command::Check(a) => check::run(a),
        Command::Rules(c) => rules_cmd::run(c),
        Command::Affected(a) => affected::run(a),
        Command::Accounts(c) => accounts::run(c),
        Command::Remediate(c) => remediate::run(c),
        Command::Incident(a) => incident::run(a),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}
