//! leakaudit-policy: rule files, their validation, evaluation of messages into findings, and
//! the gate's outputs (baseline, SARIF, JUnit).

pub mod finding;

pub use finding::{Finding, Severity};
