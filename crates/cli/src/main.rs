//! The `leakaudit` binary: clap structs -> validated config -> library calls -> renderers.
//!
//! Exit codes are a contract: 0 clean, 1 policy violation, 2 error (including any input that
//! could not be read or any message that could not be audited).

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod accounts;
mod affected;
mod apply_progress;
mod args;
mod check;
mod config;
mod evaluate;
mod executor;
mod guard;
mod incident;
mod notify;
mod outdir;
mod problems;
mod progress;
mod reissue;
mod remediate;
mod rules_cmd;
mod scan;
mod send;
mod term;

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
    /// Stop the leak before it leaves: audit mail in the live mail flow.
    #[command(subcommand)]
    Guard(guard::Command),
}

/// Says once on stderr that an old option spelling was used (still accepted for one release).
pub fn deprecated(old: &str, new: &str) {
    eprintln!(
        "note: {old} is deprecated, use {new} (the old spelling goes away in the next release)"
    );
}

/// Old spellings that clap accepts as hidden aliases: (old, new).
const DEPRECATED_ALIASES: &[(&str, &str)] = &[("--fold-provider-addresses", "--provider-folding")];

fn main() -> ExitCode {
    for arg in std::env::args().skip(1) {
        let name = arg.split('=').next().unwrap_or_default();
        if let Some((old, new)) = DEPRECATED_ALIASES.iter().find(|(old, _)| *old == name) {
            deprecated(old, new);
        }
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Scan(a) => scan::run(a),
        Command::Check(a) => check::run(a),
        Command::Rules(c) => rules_cmd::run(c),
        Command::Affected(a) => affected::run(a),
        Command::Accounts(c) => accounts::run(c),
        Command::Remediate(c) => remediate::run(c),
        Command::Incident(a) => incident::run(a),
        Command::Guard(c) => guard::run(c),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {}", term::clean_lines(&error_chain(&err)));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// The error and its causes, each said once: a library error that already prints its source
/// (`path: No such file or directory`) is not followed by that source again.
fn error_chain(err: &anyhow::Error) -> String {
    let mut out = err.to_string();
    for cause in err.chain().skip(1) {
        let c = cause.to_string();
        if !out.ends_with(&c) {
            out.push_str(": ");
            out.push_str(&c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::Cli;

    /// Issue 12: "No such file or directory (os error 2): No such file or directory (os
    /// error 2)".
    #[test]
    fn error_chain_says_an_io_error_once() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let e = leakaudit_remediation::Error::io("outbox/staged/new/m", io);
        let e = anyhow::Error::from(e).context("applying");
        let text = super::error_chain(&e);
        assert_eq!(text.matches("not found").count(), 1, "{text}");
        assert!(
            text.starts_with("applying: outbox/staged/new/m: "),
            "{text}"
        );
    }
    use clap::CommandFactory;
    use std::collections::BTreeMap;

    /// Every leaf subcommand with its path (`remediate apply`).
    fn leaves(cmd: &clap::Command, prefix: &str, out: &mut Vec<(String, clap::Command)>) {
        let name = format!("{prefix}{}", cmd.get_name());
        for sub in cmd.get_subcommands() {
            leaves(sub, &format!("{name} "), out);
        }
        if cmd.get_subcommands().next().is_none() {
            out.push((name, cmd.clone()));
        }
    }

    fn longs(cmd: &clap::Command) -> Vec<&str> {
        cmd.get_arguments()
            .filter(|a| !a.is_hide_set())
            .filter_map(|a| a.get_long())
            .collect()
    }

    #[test]
    fn clap_tree_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_scanning_command_takes_the_shared_groups() {
        let mut all = Vec::new();
        leaves(&Cli::command(), "", &mut all);
        let by_name: BTreeMap<_, _> = all.into_iter().collect();
        let reading = ["input-format", "threads", "quiet", "problems"];
        let org = ["config", "internal-domain", "archive-kind"];
        let rules = ["rules", "rules-mode"];
        for cmd in [
            "leakaudit scan",
            "leakaudit check",
            "leakaudit affected",
            "leakaudit incident",
            "leakaudit remediate plan",
        ] {
            let have = longs(&by_name[cmd]);
            for flag in reading.iter().chain(&org) {
                assert!(have.contains(flag), "{cmd} lacks --{flag}");
            }
        }
        for cmd in [
            "leakaudit check",
            "leakaudit affected",
            "leakaudit incident",
            "leakaudit remediate plan",
            "leakaudit remediate apply",
            "leakaudit remediate release",
        ] {
            let have = longs(&by_name[cmd]);
            for flag in rules.iter().chain(&org) {
                assert!(have.contains(flag), "{cmd} lacks --{flag}");
            }
        }
        for cmd in [
            "leakaudit affected",
            "leakaudit incident",
            "leakaudit remediate plan",
        ] {
            assert!(
                longs(&by_name[cmd]).contains(&"provider-folding"),
                "{cmd} lacks --provider-folding"
            );
        }
    }

    /// One option, one meaning: the same long flag has the same help on every command.
    #[test]
    fn a_shared_flag_means_the_same_everywhere() {
        let mut all = Vec::new();
        leaves(&Cli::command(), "", &mut all);
        let mut help: BTreeMap<String, (String, String)> = BTreeMap::new();
        // `rules test` evaluates fixtures under the built-in defaults unless given a config:
        // a fixture's verdict must not depend on the working directory.
        for (name, cmd) in all
            .iter()
            .filter(|(n, _)| !n.starts_with("leakaudit rules"))
        {
            for a in cmd.get_arguments() {
                let (Some(long), Some(h)) = (a.get_long(), a.get_help()) else {
                    continue;
                };
                // Output-shaped flags differ on purpose (a report format, a JSONL file...);
                // `--accounts` also takes a CSV on `incident`, which imports it into DIR.
                let own = [
                    "format", "output", "out", "db", "plan", "policy", "accounts", "help",
                ];
                if own.contains(&long) {
                    continue;
                }
                let h = h.to_string();
                match help.get(long) {
                    Some((first, other)) => {
                        assert_eq!(&h, first, "--{long} differs between {other} and {name}")
                    }
                    None => {
                        help.insert(long.to_string(), (h, name.clone()));
                    }
                }
            }
        }
    }

    /// Every argument of every subcommand says what it is for in `--help`.
    #[test]
    fn every_argument_has_help() {
        let mut all = Vec::new();
        leaves(&Cli::command(), "", &mut all);
        let mut blank = Vec::new();
        for (name, cmd) in &all {
            let mut cmd = cmd.clone();
            cmd.build();
            for a in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
                if a.get_help().is_none_or(|h| h.to_string().trim().is_empty()) {
                    blank.push(format!("{name} {}", a.get_id()));
                }
            }
        }
        assert!(blank.is_empty(), "arguments without help: {blank:#?}");
    }
}
