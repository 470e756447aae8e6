//! One integration-test binary, a module per feature. Run with `cargo test --workspace`.

mod util;

mod affected;
mod check;
mod hardening;
mod headers;
mod incident;
mod memory;
mod options;
mod remediate;
mod rules;
mod scan;
mod triage;
