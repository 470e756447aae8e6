//! One JSON line per message decided: when, from which client, the envelope sender
//! (pseudonymised unless asked otherwise), how many recipients, the Message-ID, the verdict,
//! rule ids, fingerprints, and how long the guard took. Never a recipient address.

use crate::error::GuardError;
use sha2::Digest;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

/// The decision on one message, as logged.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Entry {
    pub time: String,
    pub client: String,
    pub sender: String,
    pub recipients: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// `passed`, `rejected`, `monitored`, `tempfailed`, `too-big`, `upstream-refused`,
    /// `upstream-unavailable`.
    pub verdict: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fingerprints: Vec<String>,
    /// The reply the client got.
    pub reply: String,
    pub latency_ms: f64,
}

pub struct Log {
    out: Mutex<Box<dyn Write + Send>>,
    show_addresses: bool,
}

impl Log {
    /// Appends to `path` (created 0600), or writes to standard error.
    pub fn open(path: Option<&Path>, show_addresses: bool) -> Result<Log, GuardError> {
        let out: Box<dyn Write + Send> = match path {
            None => Box::new(std::io::stderr()),
            Some(p) => {
                use std::os::unix::fs::OpenOptionsExt;
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o600)
                    .open(p)
                    .map_err(|source| GuardError::Log {
                        path: p.to_path_buf(),
                        source,
                    })?;
                Box::new(f)
            }
        };
        Ok(Log {
            out: Mutex::new(out),
            show_addresses,
        })
    }

    /// The envelope sender as logged: in clear with `--show-addresses`, else a keyed-free
    /// hash that still tells one sender from another.
    pub fn sender(&self, address: &str) -> String {
        if self.show_addresses || address.is_empty() {
            return address.to_string();
        }
        let digest = sha2::Sha256::digest(address.to_ascii_lowercase().as_bytes());
        format!("sha256:{}", &hex::encode(digest)[..16])
    }

    pub fn write(&self, entry: &Entry) {
        let Ok(mut line) = serde_json::to_vec(entry) else {
            return;
        };
        line.push(b'\n');
        if let Ok(mut out) = self.out.lock() {
            // A log that cannot be written does not stop the mail flow; the reply stands.
            let _ = out.write_all(&line);
            let _ = out.flush();
        }
    }
}
