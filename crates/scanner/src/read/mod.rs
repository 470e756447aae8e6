//! Archive readers: everything between a path on the command line and a message's bytes.
//!
//! - [`walk`] turns the inputs into files (recursively, symlink loops detected, Maildir `tmp/`
//!   skipped, Maildir files labelled as such), in a deterministic (sorted) order.
//! - [`compress`] recognises gzip and zstd by their magic bytes and decodes them as streams.
//! - [`detect`] decides by content whether a file is an mbox, a single message, or not mail.
//! - [`mbox`] finds the `From ` separator lines that start messages and cuts a stream into
//!   blocks at message boundaries, so that memory stays bounded whatever the archive size.
//!
//! The parallel pipeline that drives them lives in [`crate::scan`].

pub mod compress;
pub mod detect;
pub mod journal;
pub mod mailgun;
pub mod mbox;
pub mod postmark;
pub mod provider;
pub mod ses;
pub mod walk;

#[cfg(test)]
mod tests;
