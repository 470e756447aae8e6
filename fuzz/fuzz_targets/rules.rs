//! The rule file loader: any text either loads into a pack or gives errors that point into
//! the file (line 1.. and within the text), never a panic.
#![no_main]

use leakaudit_policy::RulePack;
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = PathBuf::from("fuzz.toml");
    match RulePack::from_texts(&[(path.clone(), text.to_string())]) {
        Ok(pack) => {
            let infos = pack.infos();
            for i in &infos {
                assert!(pack.get(&i.id).is_some(), "rule {} not found by id", i.id);
            }
            // Built-in rules overridden by the user's file: must not panic either.
            let _ = RulePack::builtin().check_overrides(&pack);
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "Err without errors");
            let lines = text.lines().count().max(1);
            for e in &errors {
                assert_eq!(e.file, path, "error names another file: {e:?}");
                assert!(
                    e.line <= lines + 1,
                    "error line {} past the {lines} lines of the text",
                    e.line
                );
            }
        }
    }
});
