//! `leakaudit accounts`: manage the account store (SQLite file, created on first use, 0600).

use crate::EXIT_CLEAN;
use leakaudit_remediation::{import_accounts, store};
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
        Command::Import { csv, db } => {
            let mut store = store::open(&db)?;
            let report = import_accounts(&mut *store, &csv)?;
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
