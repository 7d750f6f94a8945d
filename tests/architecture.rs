//! The layers of `src/`, read from the code's own paths: the kernel and the node sit
//! below the `Process` handle and never name it, so no import cycle runs between
//! `process/` and `node/` (issue 19). `scripts/import_graph.py` draws the whole graph.

use std::path::{Path, PathBuf};

/// The `.rs` files under `dir`, recursively, in name order.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files.extend(sources(&path));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
    files
}

/// Every line of the files under `src/<layer>` that names one of `forbidden` (as
/// `crate::<name>`), comments left out: `file:line: text`.
fn lines_naming(layer: &str, forbidden: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    for file in sources(&root.join(layer)) {
        let text = std::fs::read_to_string(&file).expect("a readable source file");
        for (number, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            for name in forbidden {
                let path = format!("crate::{name}");
                let named = code.match_indices(&path).any(|(at, _)| {
                    // `crate::process::...` or `crate::Process`, not `crate::processes`.
                    !code[at + path.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
                });
                if named {
                    let shown = file.strip_prefix(&root).unwrap_or(&file).display();
                    found.push(format!("{shown}:{}: {}", number + 1, line.trim()));
                }
            }
        }
    }
    found
}

#[test]
fn the_node_never_names_the_process_layer() {
    let found = lines_naming("node", &["process", "Process"]);
    assert!(
        found.is_empty(),
        "node/ imports the process layer:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_kernel_names_neither_the_node_nor_the_process_layer() {
    let found = lines_naming("kernel", &["node", "process", "Process", "LocalNode"]);
    assert!(
        found.is_empty(),
        "kernel/ imports a layer above it:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_shared_vocabulary_names_no_layer_above_it() {
    let above = [
        "node",
        "kernel",
        "process",
        "Process",
        "LocalNode",
        "runtime",
        "wire",
    ];
    let found = lines_naming("types", &above);
    assert!(
        found.is_empty(),
        "types/ imports a layer above it:\n{}",
        found.join("\n")
    );
}
