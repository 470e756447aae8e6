//! Loading leakaudit.toml / --config into the organisation settings. OWNER: policy helper.
