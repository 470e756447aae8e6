//! The guard's settings, validated before anything listens.

use crate::error::GuardError;
use ipnet::IpNet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// What happens to a message the policy fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnViolation {
    /// `550 5.7.1` inside the transaction: the client keeps the message and reports it.
    Reject,
    /// Relayed with an `X-Leakaudit-Verdict` header (for a trial run before rejecting).
    Monitor,
}

/// What happens to a message the guard cannot fully audit (unreadable, a decoding limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnUnaudited {
    /// `451 4.7.0`: the client keeps it queued and retries (Postfix's rule: when unsure,
    /// tempfail).
    Tempfail,
    /// `550 5.7.1`.
    Reject,
}

/// RFC 5321 section 4.5.3.2 server timeouts, and the guard's own towards the upstream.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Waiting for the client's next command (5 minutes).
    pub command: Duration,
    /// Waiting for the next block of message data (3 minutes).
    pub data_block: Duration,
    /// Connecting to the upstream and waiting for its reply to a command.
    pub upstream: Duration,
    /// Waiting for the upstream's reply to the end of the data (10 minutes).
    pub upstream_data: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            command: Duration::from_secs(300),
            data_block: Duration::from_secs(180),
            upstream: Duration::from_secs(60),
            upstream_data: Duration::from_secs(600),
        }
    }
}

/// The guard's configuration (flags, or `[guard]` of `leakaudit.toml`).
#[derive(Debug, Clone)]
pub struct GuardConfig {
    pub listen: SocketAddr,
    pub upstream: SocketAddr,
    pub on_violation: OnViolation,
    pub on_unaudited: OnUnaudited,
    /// Concurrent sessions; beyond them a client gets `421 4.3.2`.
    pub max_sessions: usize,
    /// Largest message accepted (`SIZE`), bytes; beyond it `552 5.3.4`.
    pub max_size: usize,
    /// Clients allowed besides loopback; required to listen on another address.
    pub allow_clients: Vec<IpNet>,
    pub timeouts: Timeouts,
    /// Where the one JSON line per message goes (`None`: standard error).
    pub log: Option<PathBuf>,
    /// Log envelope senders in clear (default: pseudonymised).
    pub show_addresses: bool,
}

/// Longest command line read from a client (RFC 5321 allows 512 with extensions' room).
pub const MAX_COMMAND_LINE: usize = 4096;

impl GuardConfig {
    /// The defaults for `listen` and `upstream`.
    pub fn new(listen: SocketAddr, upstream: SocketAddr) -> GuardConfig {
        GuardConfig {
            listen,
            upstream,
            on_violation: OnViolation::Reject,
            on_unaudited: OnUnaudited::Tempfail,
            max_sessions: 100,
            max_size: 50 << 20,
            allow_clients: Vec::new(),
            timeouts: Timeouts::default(),
            log: None,
            show_addresses: false,
        }
    }

    /// Refuses what would expose the guard or cannot work: a non-loopback `listen` without
    /// `allow_clients` (an open relay into the upstream), zero sessions or size.
    pub fn validate(&self) -> Result<(), GuardError> {
        if !self.listen.ip().is_loopback() && self.allow_clients.is_empty() {
            return Err(GuardError::Config(format!(
                "--listen {} is not a loopback address: name the clients that may connect with --allow-client CIDR",
                self.listen
            )));
        }
        if self.max_sessions == 0 || self.max_size == 0 {
            return Err(GuardError::Config(
                "--max-sessions and --max-size must be at least 1".into(),
            ));
        }
        if self.listen == self.upstream {
            return Err(GuardError::Config(
                "--listen and --upstream are the same address".into(),
            ));
        }
        Ok(())
    }

    /// Loopback clients always; others only inside `allow_clients`.
    pub fn allows(&self, client: std::net::IpAddr) -> bool {
        client.is_loopback() || self.allow_clients.iter().any(|n| n.contains(&client))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_listen_address_needs_allowed_clients() {
        let up = "127.0.0.1:10026".parse().unwrap();
        let mut c = GuardConfig::new("0.0.0.0:10025".parse().unwrap(), up);
        assert!(c.validate().is_err());
        c.allow_clients = vec!["10.0.0.0/8".parse().unwrap()];
        assert!(c.validate().is_ok());
        assert!(c.allows("10.1.2.3".parse().unwrap()));
        assert!(c.allows("127.0.0.1".parse().unwrap()));
        assert!(!c.allows("192.0.2.1".parse().unwrap()));
        let local = GuardConfig::new("127.0.0.1:10025".parse().unwrap(), up);
        assert!(local.validate().is_ok());
        assert!(!local.allows("192.0.2.1".parse().unwrap()));
    }
}
