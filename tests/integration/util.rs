//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root (tests run with the cli crate as the working directory).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// `fixtures/...` inside the repository.
pub fn fixture(rel: &str) -> PathBuf {
    repo_root().join("fixtures").join(rel)
}

/// `../shared/...` beside the repository root (read-only test data).
pub fn shared(rel: &str) -> PathBuf {
    repo_root().join("../shared").join(rel)
}

/// A `leakaudit` command ready to run, with a clean working directory.
pub fn leakaudit() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_leakaudit"));
    cmd.env_remove("RUST_LOG");
    cmd
}
