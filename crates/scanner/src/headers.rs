//! OWNER: exposure/headers helper. Header block parsing into an Envelope.
