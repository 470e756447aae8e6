//! OWNER: see ARCHITECTURE.md. Integration tests for header forms through the binary.
