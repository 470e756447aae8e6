//! leakaudit-scanner: archive readers and the message model.
//!
//! Readers turn paths into [`model::Message`]s; [`headers`] parses the header block into an
//! [`model::Envelope`]; [`exposure`] computes who was shown to whom. The scanner never prints:
//! results go to the caller's callbacks (see [`scan`]).
#![cfg_attr(test, allow(clippy::print_stdout, clippy::print_stderr))]

pub mod address;
pub mod compact;
pub mod csv;
pub mod exposure;
pub mod headers;
pub mod html;
pub mod io;
pub mod model;
pub mod read;
pub mod record;
pub mod safefs;
pub mod scan;
pub mod text;
pub mod time;

pub use compact::{Fields, PartyKey};
pub use exposure::{ArchiveKind, ExposedAddress, Exposure, Org};
pub use model::*;
pub use record::{ExposureRecord, RecordTriage, RECORD_VERSION};
