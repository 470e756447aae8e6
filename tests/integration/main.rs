//! One integration-test binary, a module per feature. Run with `cargo test --workspace`.

mod util;

mod affected;
mod check;
mod golden;
mod guard;
mod hardening;
mod hardening2;
mod headers;
mod incident;
mod journal;
mod layout;
mod memory;
mod nothing_read;
mod options;
mod postgres;
mod providers;
mod records;
mod remediate;
mod repair;
mod rules;
mod scan;
mod send;
mod triage;
mod webhook;
