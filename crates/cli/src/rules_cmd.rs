//! `leakaudit rules validate|test|list`: check rule files, run their fixtures, list rules.

use crate::term::{clean, clean_lines};
use crate::{EXIT_CLEAN, EXIT_ERROR, EXIT_VIOLATION};
use leakaudit_policy::{fixtures, OrgConfig, RulePack, RulesMode};
use std::path::{Path, PathBuf};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Validate rule files: every error of every file, each with file:line:col (exit 2 on
    /// any error). Without DIR, the built-in pack.
    Validate {
        /// Folder of rule files (*.toml; remediation.toml is skipped).
        dir: Option<PathBuf>,
        /// How the folder will be used: in extend mode a rule with a built-in id must say
        /// `override = true`.
        #[arg(long, value_name = "MODE", default_value = "extend")]
        rules_mode: RulesMode,
    },
    /// Run rule fixtures and print TP/FP/FN/TN per rule (exit 1 on any mismatch or a rule
    /// without leaking and clean fixtures).
    ///
    /// A fixture is one message file in `<fixtures>/<rule-id>/` with a header
    /// `X-Leakaudit-Expect: <rule-id>[, <rule-id>...]` (every rule that must fire on it) or
    /// `X-Leakaudit-Expect: ok` / `clean` (no rule may fire). Optional:
    /// `X-Leakaudit-Archive-Kind: auto|sent|transmitted`,
    /// `X-Leakaudit-Internal-Domains: a.example, b.example`. Every rule needs a leaking and a
    /// clean fixture in its own folder.
    ///
    /// With DIR, the fixtures are `--fixtures`, else `DIR/fixtures/`, else `fixtures/rules/`.
    /// Without DIR (the built-in pack), `--fixtures` or `fixtures/rules/` of a leakaudit
    /// checkout; elsewhere the built-in fixtures are skipped with a statement (exit 0).
    Test {
        /// Folder of rule files tested alone; without it, the built-in pack.
        dir: Option<PathBuf>,
        /// Fixture folder (one sub-folder per rule id).
        #[arg(long, value_name = "DIR")]
        fixtures: Option<PathBuf>,
        /// Organisation settings for the fixtures (default: built-in defaults only).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Print the result of every fixture.
        #[arg(long, short)]
        verbose: bool,
    },
    /// List the rules of a pack (id, kind, severity, summary).
    List {
        /// Folder of rule files to list; without it, the built-in pack.
        dir: Option<PathBuf>,
        /// How the folder will be used (extend: overrides of built-in rules are checked and
        /// shown).
        #[arg(long, value_name = "MODE", default_value = "extend")]
        rules_mode: RulesMode,
    },
}

fn pack_of(dir: Option<&Path>) -> Result<RulePack, Vec<leakaudit_policy::RuleError>> {
    match dir {
        Some(d) => RulePack::load_dir(d),
        // Validated as a folder is: `builtin()` leaves its regexes to their first use.
        None => RulePack::builtin_checked(),
    }
}

/// Where `rules test` finds fixtures; `Err` is the statement to print when there are none
/// (for the built-in pack outside a checkout, a skip; for a user folder, an error).
fn fixtures_dir(dir: Option<&Path>, given: Option<PathBuf>) -> Result<PathBuf, String> {
    if let Some(f) = given {
        return Ok(f);
    }
    let checkout = PathBuf::from("fixtures/rules");
    match dir {
        Some(d) => {
            let next = d.join("fixtures");
            if next.is_dir() {
                Ok(next)
            } else if checkout.is_dir() {
                Ok(checkout)
            } else {
                Err(format!(
                    "no fixtures for {}: put them in {}/<rule-id>/ or pass --fixtures DIR",
                    d.display(),
                    next.display()
                ))
            }
        }
        None if checkout.is_dir() => Ok(checkout),
        None => Err(
            "built-in rules: their fixtures are not shipped in the binary and there \
                     is no fixtures/rules/ here; skipped (they are tested in the leakaudit \
                     repository). Test your own rules with `leakaudit rules test DIR`."
                .to_string(),
        ),
    }
}

/// The folder's rules and, in extend mode, the ids replacing a built-in rule; a built-in id
/// without `override = true` is an error like any other.
fn user_pack(
    dir: Option<&Path>,
    mode: RulesMode,
) -> Result<(RulePack, Vec<String>), Vec<leakaudit_policy::RuleError>> {
    let pack = pack_of(dir)?;
    if dir.is_none() || mode == RulesMode::Replace {
        return Ok((pack, Vec::new()));
    }
    let builtin = RulePack::builtin();
    let errors = builtin.check_overrides(&pack);
    if !errors.is_empty() {
        return Err(errors);
    }
    let overrides = builtin.overridden_by(&pack);
    Ok((pack, overrides))
}

pub fn run(cmd: Command) -> anyhow::Result<u8> {
    match cmd {
        Command::Validate { dir, rules_mode } => match user_pack(dir.as_deref(), rules_mode) {
            Ok((pack, overrides)) => {
                for s in &pack.skipped {
                    eprintln!(
                        "skipped {} (not a rule file)",
                        clean(&s.display().to_string())
                    );
                }
                for id in &overrides {
                    println!("override: `{id}` replaces the built-in rule");
                }
                println!(
                    "{} rule{} ok{}",
                    pack.rules.len(),
                    if pack.rules.len() == 1 { "" } else { "s" },
                    match overrides.len() {
                        0 => String::new(),
                        n => format!(" ({n} overriding a built-in rule)"),
                    }
                );
                Ok(EXIT_CLEAN)
            }
            Err(errs) => {
                for e in &errs {
                    println!("{}", clean_lines(&e.to_string()));
                }
                eprintln!(
                    "{} error{} in rule files",
                    errs.len(),
                    if errs.len() == 1 { "" } else { "s" }
                );
                Ok(EXIT_ERROR)
            }
        },
        Command::Test {
            dir,
            fixtures: fdir,
            config,
            verbose,
        } => {
            let pack = match pack_of(dir.as_deref()) {
                Ok(p) => p,
                Err(errs) => {
                    for e in &errs {
                        println!("{}", clean_lines(&e.to_string()));
                    }
                    return Ok(EXIT_ERROR);
                }
            };
            let fdir = match fixtures_dir(dir.as_deref(), fdir) {
                Ok(d) => d,
                Err(statement) => {
                    println!("{statement}");
                    return Ok(if dir.is_none() {
                        EXIT_CLEAN
                    } else {
                        EXIT_ERROR
                    });
                }
            };
            let base = match &config {
                Some(c) => OrgConfig::load(c)?,
                None => OrgConfig::default(),
            };
            let report = fixtures::run(&pack, &fdir, &base)
                .map_err(|e| anyhow::anyhow!("{}: {e}", fdir.display()))?;
            for f in &report.fixtures {
                if verbose || !f.passed() {
                    let status = if f.passed() { "ok  " } else { "FAIL" };
                    let show = |s: &std::collections::BTreeSet<String>| {
                        if s.is_empty() {
                            "ok".to_string()
                        } else {
                            s.iter().cloned().collect::<Vec<_>>().join(", ")
                        }
                    };
                    match &f.error {
                        Some(e) => println!(
                            "{status} {}: {}",
                            clean(&f.path.display().to_string()),
                            clean(&e.to_string())
                        ),
                        None => println!(
                            "{status} {}: expected {}, fired {}",
                            clean(&f.path.display().to_string()),
                            show(&f.expected),
                            show(&f.fired)
                        ),
                    }
                }
            }
            print!("{}", clean_lines(&report.table()));
            for p in &report.problems {
                println!("problem: {}", clean(&p.to_string()));
            }
            let failed = report.fixtures.iter().filter(|f| !f.passed()).count();
            println!(
                "{} fixtures, {} failed, {} problems",
                report.fixtures.len(),
                failed,
                report.problems.len()
            );
            Ok(if report.passed() {
                EXIT_CLEAN
            } else {
                EXIT_VIOLATION
            })
        }
        Command::List { dir, rules_mode } => match user_pack(dir.as_deref(), rules_mode) {
            Ok((pack, overrides)) => {
                for r in &pack.rules {
                    println!(
                        "{:<26} {:<24} {:<8} {}{}{}",
                        r.info.id,
                        r.info.kind,
                        r.info.severity.as_str(),
                        r.info.summary,
                        if r.enabled { "" } else { " (disabled)" },
                        if overrides.contains(&r.info.id) {
                            " (overrides built-in)"
                        } else {
                            ""
                        }
                    );
                }
                Ok(EXIT_CLEAN)
            }
            Err(errs) => {
                for e in &errs {
                    println!("{}", clean_lines(&e.to_string()));
                }
                Ok(EXIT_ERROR)
            }
        },
    }
}
