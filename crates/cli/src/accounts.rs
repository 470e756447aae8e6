//! `leakaudit accounts`: manage the account store (SQLite file, created on first use, 0600).

use crate::EXIT_CLEAN;
use leakaudit_remediation::store;
use leakaudit_remediation::EmptyBalance;
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Import an accounts CSV (id, email, has_2fa, balance, locale, and optionally
    /// failed_logins_since_incident, or failed_logins + failed_logins_since). All rows or
    /// none: any bad row is reported by line and nothing is imported.
    Import {
        /// The accounts export (CSV with a header row).
        #[arg(value_name = "ACCOUNTS.csv")]
        csv: PathBuf,
        /// The store file (created with its schema on first use).
        #[arg(long, value_name = "FILE")]
        db: PathBuf,
        /// Column mapping for an export with other column names, EXPORT=ACCOUNT pairs:
        /// `user_id=id,email_address=email,mfa_enabled=has_2fa,balance_usd=balance`
        /// (repeatable; over `[accounts.map]` in leakaudit.toml).
        #[arg(long, value_name = "PAIRS")]
        map: Vec<String>,
        /// An empty balance: `error` refuses the file, `zero` imports it as 0 [default: the
        /// config's `empty_balance` under [accounts], else error].
        #[arg(long, value_name = "POLICY")]
        empty_balance: Option<EmptyBalance>,
        /// Organisation settings [default: ./leakaudit.toml when present].
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Print the store's identity and size.
    Info {
        /// The store file.
        #[arg(long, value_name = "FILE")]
        db: PathBuf,
    },
}

pub fn run(cmd: Command) -> anyhow::Result<u8> {
    match cmd {
        Command::Import {
            csv,
            db,
            map,
            empty_balance,
            config,
        } => {
            let org = crate::args::OrgArgs {
                config,
                ..Default::default()
            };
            let run =
                crate::config::RunConfig::resolve(&org, &Default::default(), &Default::default())?;
            let mut opts = run.settings()?.accounts;
            if !map.is_empty() {
                // The flags replace the configured mapping as a whole.
                opts.map.clear();
                for m in &map {
                    opts.add_map(m)
                        .map_err(|why| anyhow::anyhow!("--map {why}"))?;
                }
            }
            if let Some(p) = empty_balance {
                opts.empty_balance = p;
            }
            let (store, report) = leakaudit_remediation::import::import_into(&db, &csv, &opts)?;
            if !report.ignored_columns.is_empty() {
                eprintln!(
                    "warning: ignored column(s): {}",
                    report.ignored_columns.join(", ")
                );
            }
            eprintln!(
                "imported {} account(s) into {} ({} new, {} updated); store now holds {}",
                report.rows,
                db.display(),
                report.stats.inserted,
                report.stats.updated,
                store.account_count()?
            );
            Ok(EXIT_CLEAN)
        }
        Command::Info { db } => {
            let store = store::open(&db)?;
            println!("store {}", store.store_id()?);
            println!("accounts {}", store.account_count()?);
            println!("plans {}", store.plans()?.len());
            Ok(EXIT_CLEAN)
        }
    }
}
