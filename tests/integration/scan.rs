//! OWNER: see ARCHITECTURE.md. Integration tests for `scan`.
