//! The guard's errors: configuration, and what stops it from listening. A session's own
//! troubles never surface here: they become SMTP replies (tempfail when unsure).

#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error("{0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Log {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("the async runtime: {0}")]
    Runtime(std::io::Error),
}
