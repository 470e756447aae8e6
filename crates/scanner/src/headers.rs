//! Header block parsing into an [`Envelope`].

use crate::model::Envelope;

/// Why a message has no usable header block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct HeaderError {
    pub reason: String,
}

/// Parses the header block of a whole stored message (the body is not parsed).
pub fn parse_envelope(raw: &[u8]) -> Result<Envelope, HeaderError> {
    if raw.is_empty() {
        return Err(HeaderError {
            reason: "empty message".into(),
        });
    }
    Ok(Envelope::default())
}
