//! Checks on the shape of the code itself (issue 7's rules), run with the unit
//! tests: the top-level modules import each other without a circle, and no
//! non-test source file is over 800 lines. Reads `src/` as text.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src") {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            src_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn is_test_file(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name == "tests.rs"
        || name.ends_with("_tests.rs")
        || name == "testutil.rs"
        || name == "arch_tests.rs"
}

/// The code of a file without its `#[cfg(test)] mod tests { .. }` block and comments.
fn non_test_code(text: &str) -> String {
    let cut = text.find("#[cfg(test)]\nmod tests {").unwrap_or(text.len());
    text[..cut]
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The crate's top-level modules and the others each one names as `crate::x`.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    src_files(src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files.iter().filter(|f| !is_test_file(f)) {
        let rel = f.strip_prefix(src).expect("under src");
        let top = rel.iter().next().and_then(|c| c.to_str()).unwrap_or("");
        let top = top.trim_end_matches(".rs").to_string();
        if top == "bin" || top == "lib" {
            continue;
        }
        let code = non_test_code(&std::fs::read_to_string(f).expect("read"));
        let deps = graph.entry(top.clone()).or_default();
        let mut names = Vec::new();
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                // `use crate::{a, b::c}`
                let inner = &group[..group.find("};").unwrap_or(group.len())];
                names.extend(
                    inner
                        .split(',')
                        .map(|s| s.trim().split("::").next().unwrap_or("")),
                );
            } else {
                names.push(
                    rest.split(|c: char| !c.is_alphanumeric() && c != '_')
                        .next()
                        .unwrap_or(""),
                );
            }
        }
        deps.extend(
            names
                .into_iter()
                .filter(|n| !n.is_empty() && *n != top)
                .map(String::from),
        );
    }
    let tops: BTreeSet<String> = graph.keys().cloned().collect();
    for deps in graph.values_mut() {
        deps.retain(|d| tops.contains(d));
    }
    graph
}

#[test]
fn no_import_circle_between_modules() {
    let graph = module_graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(
        graph.contains_key("session") && graph["session"].contains("fsm"),
        "{graph:?}"
    );
    // Depth-first search for a back edge.
    fn visit(
        g: &BTreeMap<String, BTreeSet<String>>,
        n: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if let Some(i) = path.iter().position(|p| p == n) {
            panic!("import circle: {} -> {n}", path[i..].join(" -> "));
        }
        if !done.insert(n.to_string()) {
            return;
        }
        path.push(n.to_string());
        for d in &g[n] {
            visit(g, d, path, done);
        }
        path.pop();
    }
    let mut done = BTreeSet::new();
    for n in graph.keys() {
        visit(&graph, n, &mut Vec::new(), &mut done);
    }
}

#[test]
fn no_source_file_over_800_lines() {
    let mut files = Vec::new();
    src_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let long: Vec<String> = files
        .iter()
        .filter(|f| !is_test_file(f))
        .filter_map(|f| {
            let n = non_test_code(&std::fs::read_to_string(f).ok()?)
                .lines()
                .count();
            (n > 800).then(|| format!("{}: {n}", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "files over 800 lines: {long:?}");
}
