//! Who holds a store's remediation lock (a leaf: the store records it, errors name it).

/// Who holds a store's remediation lock: what a second process is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHolder {
    /// `apply` or `release`.
    pub operation: String,
    pub plan_hash: String,
    pub pid: u32,
    pub host: String,
    /// When the lock was taken (seconds since the epoch).
    pub since: i64,
}

impl LockHolder {
    /// This process, now.
    pub fn this_process(operation: &str, plan_hash: &str) -> LockHolder {
        LockHolder {
            operation: operation.into(),
            plan_hash: plan_hash.into(),
            pid: std::process::id(),
            host: host_name(),
            since: chrono::Utc::now().timestamp(),
        }
    }
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} of plan {} (pid {} on host {} since {})",
            self.operation,
            self.plan_hash,
            self.pid,
            self.host,
            leakaudit_scanner::time::rfc3339(self.since).unwrap_or_else(|| self.since.to_string())
        )
    }
}

/// The kernel's host name (Linux), else `unknown`: only for telling people who holds a lock.
fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}
