//! The crate's shape: its modules import one another in no circle, and it does not depend on the
//! model crates (the customer-table writers take the model columns as plain values).

use std::collections::BTreeMap;
use std::path::Path;

/// Each module of `src/` with the modules it names as `crate::…` (outside its tests).
fn imports() -> BTreeMap<String, Vec<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph = BTreeMap::new();
    for entry in std::fs::read_dir(&src).expect("src/ lists") {
        let path = entry.expect("src/ lists").path();
        let name = path.file_stem().and_then(|n| n.to_str()).expect("a module name").to_owned();
        if name == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("a module reads");
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let mut named: Vec<String> = code
            .match_indices("crate::")
            .map(|(at, _)| {
                code[at + "crate::".len()..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()
            })
            .filter(|m: &String| *m != name && !m.is_empty() && m.chars().next().is_some_and(char::is_lowercase))
            .collect();
        named.sort();
        named.dedup();
        graph.insert(name, named);
    }
    graph
}

#[test]
fn the_modules_import_one_another_in_no_circle() {
    let graph = imports();
    assert!(graph.contains_key("rows") && graph.contains_key("read"), "{graph:?}");
    // Depth-first search; a module met again while it is on the path closes a circle.
    fn visit<'a>(
        graph: &'a BTreeMap<String, Vec<String>>,
        module: &'a str,
        path: &mut Vec<&'a str>,
        done: &mut Vec<&'a str>,
    ) {
        if done.contains(&module) {
            return;
        }
        if let Some(at) = path.iter().position(|m| *m == module) {
            panic!("a circle: {} → {module}", path[at..].join(" → "));
        }
        path.push(module);
        for next in graph.get(module).into_iter().flatten() {
            visit(graph, next, path, done);
        }
        path.pop();
        done.push(module);
    }
    let mut done = Vec::new();
    for module in graph.keys() {
        visit(&graph, module, &mut Vec::new(), &mut done);
    }
    // The readers' base depends on no reader.
    for reader in ["read", "text", "parquet", "pipeline", "lines", "summary"] {
        assert!(!graph["rows"].contains(&reader.to_owned()), "rows imports {reader}");
    }
}

#[test]
fn the_crate_does_not_depend_on_the_models() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).expect("Cargo.toml");
    for crate_name in ["kanta-score", "kanta-models"] {
        assert!(!manifest.contains(crate_name), "kanta-io depends on {crate_name}");
    }
}
