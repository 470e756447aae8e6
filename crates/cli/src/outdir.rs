//! Output folders that will hold addresses and live reset links: the check itself is
//! `leakaudit_scanner::safefs::private_dir`, shared with the outbox and the audit log.

use anyhow::anyhow;
use std::path::Path;

/// Makes sure `dir` is a private folder of ours (created 0700 when missing); the error names
/// the flag it came from.
pub fn private_dir(dir: &Path, flag: &str) -> anyhow::Result<()> {
    leakaudit_scanner::safefs::private_dir(dir)
        .map_err(|e| anyhow!("{flag} {}", crate::term::clean(&e.to_string())))
}
