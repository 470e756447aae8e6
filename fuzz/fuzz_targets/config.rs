//! The `leakaudit.toml` loader (`OrgConfig::parse`, the library part of `--config`): any text
//! either parses or gives one error with its file, line and column; a parsed configuration
//! yields an organisation and checks against the built-in rules without panicking.
#![no_main]

use leakaudit_policy::{ConfigError, OrgConfig, RulePack};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("leakaudit.toml");
    match OrgConfig::parse(path, text) {
        Ok(cfg) => {
            let _ = cfg.org();
            let _ = cfg.check_overrides(&RulePack::builtin());
        }
        Err(ConfigError::Invalid {
            path: p, line, col, ..
        }) => {
            assert_eq!(p, path);
            let lines = text.lines().count().max(1);
            assert!(line >= 1 && line <= lines + 1, "line {line} of {lines}");
            assert!(col >= 1, "column {col}");
        }
        Err(_) => {}
    }
});
