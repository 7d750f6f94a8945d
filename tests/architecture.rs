//! The layers of `src/`, read from the code's own paths (issue 19): the top-level
//! modules import each other in no cycle, every import points down [`LAYERS`], and the
//! kernel and the node sit below the `Process` handle and never name it.
//! `scripts/import_graph.py` draws the same graph (and the file-level one) for people.

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

// ----- the module graph: no cycle, every import down the layers -----

/// The top-level modules of `src/`, bottom to top: a module may name only modules of
/// the layers below its own (never one of its own layer, never one above). A module not
/// listed fails `every_import_points_down_the_layers` until it is placed here.
///
/// - leaves: varint, build_id, clock, notice (terminal lines), planted, probe;
/// - `message` (envelope, fingerprints), then `types` (ids, reasons, signals, closures);
/// - the network: `wire` (bytes), then `transport` (TCP);
/// - execution: `kernel` (process table, ready queue, timers), `bus` (the management
///   bus and its events), `node` (LocalNode: the kernel with links, registry, routing);
/// - `process` (the `Process` handle);
/// - what processes build: `closure` (RemoteTable), `concurrency` (Async), `mx`
///   (agents), `store` (results);
/// - `remote` (services, workers, remote calls);
/// - programs: `launch` (launchers), `runtime` (Node on its thread, the driver),
///   `status` (the status server); then `cluster` (the master/worker entry point).
const LAYERS: &[&[&str]] = &[
    &["build_id", "clock", "notice", "planted", "probe", "varint"],
    &["message"],
    &["types"],
    &["wire"],
    &["transport"],
    &["kernel"],
    &["bus"],
    &["node"],
    &["process"],
    &["closure", "concurrency", "mx", "store"],
    &["remote"],
    &["launch", "runtime", "status"],
    &["cluster"],
];

/// One import of a top-level module by another: `from` names `to` at `place`.
#[derive(Clone, Debug)]
struct Import {
    from: String,
    to: String,
    place: String,
}

/// The code of a source file without its comments and without its unit tests (by
/// convention the file's last module, `#[cfg(test)] mod ...`, which may reach any
/// layer), as `scripts/import_graph.py` reads it. Lines are kept, so that positions
/// still give line numbers.
fn code_of(text: &str) -> String {
    let mut text = text.to_string();
    if let Some(at) = find_test_module(&text) {
        text.truncate(at);
    }
    // Block comments, replaced by as many newlines as they held.
    while let Some(open) = text.find("/*") {
        let close = text[open..]
            .find("*/")
            .map_or(text.len(), |at| open + at + 2);
        let newlines = "\n".repeat(text[open..close].matches('\n').count());
        text.replace_range(open..close, &newlines);
    }
    text.lines()
        .map(|line| {
            if line.trim_start().starts_with("//") {
                ""
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Where `#[cfg(test)]` followed by `mod NAME` begins, if anywhere.
fn find_test_module(text: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = text[from..].find("#[cfg(test)]") {
        let at = from + at;
        let after = text[at + "#[cfg(test)]".len()..].trim_start();
        if after.starts_with("mod ") {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The paths a use tree or a path expression starting at `text` names, each as its
/// segments: `a::b::{c, d::e}` gives `a::b::c` and `a::b::d::e`. Stops where the path
/// ends; `self` in a group stands for the group's prefix.
fn paths_at(text: &str) -> Vec<Vec<String>> {
    let mut segments = Vec::new();
    let mut rest = text;
    loop {
        let rest_trimmed = rest.trim_start();
        if let Some(group) = rest_trimmed.strip_prefix('{') {
            let mut depth = 1;
            let mut end = group.len();
            for (at, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                if depth == 0 {
                    end = at;
                    break;
                }
            }
            let mut items = Vec::new();
            let (mut depth, mut start) = (0, 0);
            for (at, c) in group[..end].char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        items.push(&group[start..at]);
                        start = at + 1;
                    }
                    _ => {}
                }
            }
            items.push(&group[start..end]);
            let mut out = Vec::new();
            for item in items.into_iter().map(str::trim).filter(|i| !i.is_empty()) {
                for tail in paths_at(item) {
                    let mut path: Vec<String> = segments.clone();
                    path.extend(tail.into_iter().filter(|s| s != "self"));
                    out.push(path);
                }
            }
            return out;
        }
        let length = rest_trimmed
            .find(|c: char| !is_ident(c))
            .unwrap_or(rest_trimmed.len());
        if length == 0 {
            break;
        }
        segments.push(rest_trimmed[..length].to_string());
        match rest_trimmed[length..].strip_prefix("::") {
            Some(next) => rest = next,
            None => break,
        }
    }
    vec![segments]
}

/// The names the crate root re-exports (`crate::Process`), each with the top-level
/// module it comes from.
fn root_names(lib: &str) -> std::collections::BTreeMap<String, String> {
    let mut names = std::collections::BTreeMap::new();
    let mut rest = lib;
    while let Some(at) = rest.find("pub use ") {
        let statement = &rest[at + "pub use ".len()..];
        let end = statement.find(';').unwrap_or(statement.len());
        for path in paths_at(&statement[..end]) {
            if let (Some(first), Some(last)) = (path.first(), path.last()) {
                let name = last.split(" as ").last().unwrap_or(last).trim();
                names.insert(name.to_string(), first.clone());
            }
        }
        rest = &statement[end..];
    }
    names
}

/// Every import of one top-level module by another in `src/`, in file order: the
/// `crate::`, `super::` and `self::` paths of the code (use lines and inline paths),
/// each resolved to the top-level module it names (a name the crate root re-exports
/// counts as the module it comes from).
fn imports() -> Vec<Import> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = code_of(&std::fs::read_to_string(root.join("lib.rs")).expect("src/lib.rs"));
    let roots = root_names(&lib);
    let mut found = Vec::new();
    for file in sources(&root) {
        let relative = file.strip_prefix(&root).expect("under src/");
        let parts: Vec<String> = relative
            .with_extension("")
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        if parts == ["lib"] {
            continue;
        }
        let from = parts[0].clone();
        // The file's module path: `node/mod.rs` is `node`, `node/local.rs` is `node::local`.
        let mut module = parts.clone();
        if module.last().is_some_and(|last| last == "mod") {
            module.pop();
        }
        let text = std::fs::read_to_string(&file).expect("a readable source file");
        let code = code_of(&text);
        for (at, _) in code.match_indices("::") {
            let before = &code[..at];
            let keyword = ["crate", "super", "self"].into_iter().find(|k| {
                before.ends_with(k) && !before[..before.len() - k.len()].ends_with(is_ident)
            });
            let Some(keyword) = keyword else { continue };
            // `super::super::x`: handled once, at its first `super`.
            if keyword == "super" && before[..before.len() - 5].ends_with("super::") {
                continue;
            }
            let mut rest = &code[at + 2..];
            let mut base: Vec<String> = match keyword {
                "crate" => Vec::new(),
                "self" => module.clone(),
                _ => module[..module.len() - 1].to_vec(),
            };
            while let Some(next) = rest.strip_prefix("super::") {
                base.pop();
                rest = next;
            }
            for path in paths_at(rest) {
                let mut full = base.clone();
                full.extend(path);
                let Some(first) = full.first() else { continue };
                let to = if root.join(first).is_dir() || root.join(format!("{first}.rs")).is_file()
                {
                    first.clone()
                } else if let Some(module) = roots.get(first) {
                    module.clone()
                } else {
                    continue; // a macro at the root (`crate::buggify!`), or not a path
                };
                if to != from && to != "lib" {
                    let line = code[..at].matches('\n').count() + 1;
                    found.push(Import {
                        from: from.clone(),
                        to,
                        place: format!("{}:{line}", relative.display()),
                    });
                }
            }
        }
    }
    found
}

/// A cycle of top-level modules, if the imports close one: its modules in order, each
/// with one place that imports the next.
fn a_cycle(imports: &[Import]) -> Option<Vec<String>> {
    use std::collections::{BTreeMap, BTreeSet};
    let mut graph: BTreeMap<&str, BTreeMap<&str, &str>> = BTreeMap::new();
    for import in imports {
        graph
            .entry(&import.from)
            .or_default()
            .entry(&import.to)
            .or_insert(&import.place);
    }
    // Depth-first from each module in name order; a module met again on the current
    // path closes a cycle.
    fn visit<'a>(
        module: &'a str,
        graph: &BTreeMap<&'a str, BTreeMap<&'a str, &'a str>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|m| *m == module) {
            let cycle = &path[start..];
            return Some(
                cycle
                    .iter()
                    .enumerate()
                    .map(|(i, m)| {
                        let next = cycle.get(i + 1).copied().unwrap_or(module);
                        format!("{m} -> {next} ({})", graph[m][next])
                    })
                    .collect(),
            );
        }
        if !done.insert(module) {
            return None;
        }
        path.push(module);
        for next in graph.get(module).into_iter().flat_map(|n| n.keys()) {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        if let Some(cycle) = visit(module, &graph, &mut Vec::new(), &mut done) {
            return Some(cycle);
        }
    }
    None
}

#[test]
fn the_top_level_modules_import_each_other_in_no_cycle() {
    let imports = imports();
    assert!(
        imports.len() > 100,
        "the scan found only {} imports between modules: it reads src/ wrong",
        imports.len()
    );
    if let Some(cycle) = a_cycle(&imports) {
        panic!(
            "the modules of src/ import each other in a cycle:\n  {}",
            cycle.join("\n  ")
        );
    }
}

#[test]
fn every_import_points_down_the_layers() {
    let layer_of = |module: &str| LAYERS.iter().position(|layer| layer.contains(&module));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut unplaced = Vec::new();
    for entry in std::fs::read_dir(&root).expect("src/") {
        let path = entry.expect("a directory entry").path();
        let name = path
            .file_stem()
            .expect("a name")
            .to_string_lossy()
            .into_owned();
        if name != "lib" && layer_of(&name).is_none() {
            unplaced.push(name);
        }
    }
    unplaced.sort();
    unplaced.dedup();
    assert!(
        unplaced.is_empty(),
        "modules in no layer (place them in LAYERS): {unplaced:?}"
    );
    let upward: Vec<String> = imports()
        .into_iter()
        .filter(|i| layer_of(&i.to) >= layer_of(&i.from))
        .map(|i| format!("{}: {} names {} (not below it)", i.place, i.from, i.to))
        .collect();
    assert!(
        upward.is_empty(),
        "imports that do not point down the layers:\n{}",
        upward.join("\n")
    );
}
