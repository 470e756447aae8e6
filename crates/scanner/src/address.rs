//! OWNER: exposure/headers helper. Address canonicalisation (lowercase, IDNA ASCII domain).
