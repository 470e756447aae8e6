//! leakaudit-guard: `leakaudit guard smtp`, an SMTP proxy that refuses a leaking message
//! inside the SMTP transaction, with the same verdict as `leakaudit check` (the library's
//! [`Auditor`]).
//!
//! One code path for both deployments: Postfix's before-queue content filter
//! (`smtpd_proxy_filter`) and a relay in front of a smarthost for mailers that speak SMTP
//! themselves. Parts: [`config`] (settings, validated before listening), [`session`] (one
//! client: the transaction proxy), [`log`] (one JSON line per message). Built on tokio's
//! current-thread runtime: a session spends its time waiting on two sockets, and one thread
//! serving every session wakes up once for many of them (the multi-threaded runtime's
//! cross-thread wake-ups measured 61-67% of the direct path against 57-76% on one thread, on a
//! noisy 2-core host: bench/RESULTS.md).
//! A message over 64 KiB is decided on tokio's blocking pool, so a big one does not stall
//! the others.
#![cfg_attr(test, allow(clippy::print_stdout, clippy::print_stderr))]

pub mod config;
pub mod error;
pub mod log;
mod session;

pub use config::{GuardConfig, OnUnaudited, OnViolation, Timeouts};
pub use error::GuardError;

use leakaudit_policy::audit::Auditor;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// A message that exercises the exposure rules, decided once before listening.
const WARM_UP: &[u8] =
    b"From: news@shop.example\r\nTo: a@gmail.com, b@yahoo.com, c@hotmail.com\r\n\
Subject: warm-up\r\nMessage-ID: <warm-up@leakaudit.invalid>\r\n\r\nHello\r\n";

/// A bound guard, ready to serve.
pub struct Guard {
    listener: TcpListener,
    shared: Arc<session::Shared>,
    sessions: Arc<Semaphore>,
}

impl Guard {
    /// Validates `cfg`, opens the log and binds the listening socket.
    pub async fn bind(cfg: GuardConfig, auditor: Arc<Auditor>) -> Result<Guard, GuardError> {
        cfg.validate()?;
        // The first verdict pays one-time set-up (the rules' lazily built matchers): pay it
        // here, not in the first client's transaction.
        let _ = auditor.verdict(WARM_UP);
        let log = log::Log::open(cfg.log.as_deref(), cfg.show_addresses)?;
        let listener =
            TcpListener::bind(cfg.listen)
                .await
                .map_err(|source| GuardError::Listen {
                    addr: cfg.listen,
                    source,
                })?;
        Ok(Guard {
            listener,
            sessions: Arc::new(Semaphore::new(cfg.max_sessions)),
            shared: Arc::new(session::Shared { cfg, auditor, log }),
        })
    }

    /// The address it listens on (its port when `listen` asked for port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until the process ends: one task per session; a client that is not allowed
    /// gets `554 5.7.1`, one beyond `max_sessions` gets `421 4.3.2`.
    pub async fn serve(self) -> Result<(), GuardError> {
        loop {
            let (mut stream, peer) = match self.listener.accept().await {
                Ok(c) => c,
                // A client that went away between SYN and accept, or no file descriptor left
                // for a moment: the listener itself is fine.
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            if !self.shared.cfg.allows(peer.ip()) {
                tokio::spawn(async move {
                    let _ = stream
                        .write_all(b"554 5.7.1 this client is not allowed to relay here\r\n")
                        .await;
                });
                continue;
            }
            let Ok(permit) = self.sessions.clone().try_acquire_owned() else {
                tokio::spawn(async move {
                    let _ = stream
                        .write_all(b"421 4.3.2 too many sessions, try again later\r\n")
                        .await;
                });
                continue;
            };
            let shared = self.shared.clone();
            tokio::spawn(async move {
                session::run(stream, peer, shared).await;
                drop(permit);
            });
        }
    }
}

/// Binds and serves on a runtime of its own (what the command line calls); `on_ready` gets
/// the bound address before the first client is accepted.
pub fn run(
    cfg: GuardConfig,
    auditor: Auditor,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<(), GuardError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(GuardError::Runtime)?;
    rt.block_on(async move {
        let guard = Guard::bind(cfg, Arc::new(auditor)).await?;
        if let Ok(addr) = guard.local_addr() {
            on_ready(addr);
        }
        guard.serve().await
    })
}
