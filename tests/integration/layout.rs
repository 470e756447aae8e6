//! The source tree's shape: inside each crate the top-level modules depend on one another
//! without a cycle (a cycle is two modules that can only be understood, and moved, together).
//! Edges are the `crate::<module>` paths a module names outside its comments and inline test
//! modules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "tests") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs")
            && path.file_name().is_some_and(|n| n != "tests.rs")
        {
            out.push(path);
        }
    }
}

/// The identifiers after `crate::` in `text`, and each first segment of a `use crate::{...}`
/// group.
fn crate_refs(text: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut refs = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                let name = ident(item.trim());
                if !name.is_empty() && name != "self" {
                    refs.insert(name);
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                refs.insert(name);
            }
        }
    }
    refs
}

/// The module graph of one crate's `src`: top-level module -> the ones it names.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut graph: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        // Inline test modules (`#[cfg(test)]` then `mod name {`) may use anything; a
        // `mod tests;` declaration is a file of its own, skipped above.
        let inline_tests = text.match_indices("#[cfg(test)]\n").find(|(i, m)| {
            let next = text[i + m.len()..].lines().next().unwrap_or("").trim();
            next.starts_with("mod ") && next.ends_with('{')
        });
        let code = match inline_tests {
            Some((i, _)) => &text[..i],
            None => &text[..],
        };
        let code: String = code
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for r in crate_refs(&code) {
            if r != module {
                graph
                    .entry(module.clone())
                    .or_default()
                    .entry(r)
                    .or_default()
                    .insert(rel.display().to_string());
            }
        }
    }
    graph
}

/// A cycle through `start`, if any: the modules in order.
fn cycle_from(
    graph: &BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    start: &str,
) -> Option<Vec<String>> {
    let mut path = vec![start.to_string()];
    let mut seen = BTreeSet::new();
    fn walk(
        graph: &BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
        start: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        let here = path.last().unwrap().clone();
        for next in graph.get(&here).map(|m| m.keys()).into_iter().flatten() {
            if next == start {
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(graph, start, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    walk(graph, start, &mut path, &mut seen).then_some(path)
}

#[test]
fn no_module_cycle_inside_a_crate() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crates");
    let mut cycles = Vec::new();
    let mut checked = 0;
    for entry in std::fs::read_dir(&crates).unwrap() {
        let src = entry.unwrap().path().join("src");
        if !src.is_dir() {
            continue;
        }
        checked += 1;
        let graph = module_graph(&src);
        for module in graph.keys() {
            if let Some(path) = cycle_from(&graph, module) {
                let via: Vec<String> = path
                    .iter()
                    .zip(path.iter().cycle().skip(1))
                    .map(|(a, b)| {
                        let files = graph.get(a).and_then(|m| m.get(b));
                        format!(
                            "{a} -> {b} ({})",
                            files
                                .map(|f| f.iter().cloned().collect::<Vec<_>>().join(", "))
                                .unwrap_or_default()
                        )
                    })
                    .collect();
                cycles.push(format!("{}: {}", src.display(), via.join("; ")));
                break;
            }
        }
    }
    assert!(checked >= 7, "only {checked} crates found under {crates:?}");
    assert!(cycles.is_empty(), "module cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_cycle_check_sees_a_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::write(src.join("lib.rs"), "pub mod a;\npub mod b;\n").unwrap();
    std::fs::write(
        src.join("a.rs"),
        "use crate::b::B;\n// crate::c in a comment\n",
    )
    .unwrap();
    std::fs::create_dir(src.join("b")).unwrap();
    std::fs::write(
        src.join("b/mod.rs"),
        "#[cfg(test)]\nmod tests;\nuse crate::{a::A, self};\n#[cfg(test)]\nmod tests {\n    use crate::c;\n}\n",
    )
    .unwrap();
    let graph = module_graph(src);
    assert_eq!(
        cycle_from(&graph, "a"),
        Some(vec!["a".to_string(), "b".to_string()])
    );
    assert!(!graph["a"].contains_key("c"), "a comment is not an edge");
    assert!(
        !graph["b"].contains_key("c"),
        "a test module is not an edge"
    );
}
