//! The architecture, checked: the server crates depend on each other only
//! downward (the io_uring loop, the RESP codec and the cache engine know
//! nothing above them), and no two modules of a crate import each other
//! in a loop, except the command table, which names its handlers (whose
//! subcommand tables use the table's types).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use citadel_tests::workspace_root;

/// Each server-side crate and the workspace crates it may depend on.
const LAYERS: &[(&str, &[&str])] = &[
    ("server/cache", &[]),
    ("server/net", &[]),
    ("server/resp", &[]),
    ("server/settings", &[]),
    ("proto", &[]),
    (
        "server/supervisor",
        &["citadel-proto", "citadel-settings", "citadel-telemetry"],
    ),
    ("server/cluster", &["citadel-proto"]),
    ("server/collections", &[]),
    ("server/membership", &["citadel-proto"]),
    ("server/telemetry", &[]),
    ("server/top", &["citadel-telemetry"]),
    (
        "server/citadel",
        &[
            "citadel-cache",
            "citadel-net",
            "citadel-resp",
            "citadel-settings",
            "citadel-supervisor",
            "citadel-cluster",
            "citadel-collections",
            "citadel-membership",
            "citadel-proto",
            "citadel-telemetry",
        ],
    ),
];

/// Allowed module loops: the command table and the handler modules.
fn allowed(a: &str, b: &str) -> bool {
    let table = "command::table";
    (a == table || b == table) && a.starts_with("command::") && b.starts_with("command::")
}

#[test]
fn crates_depend_only_downward() {
    let root = workspace_root();
    for (dir, may) in LAYERS {
        let manifest = std::fs::read_to_string(root.join(dir).join("Cargo.toml")).unwrap();
        let table: toml_lite::Deps = toml_lite::deps(&manifest);
        for dep in table.iter().filter(|d| d.starts_with("citadel-")) {
            assert!(
                may.contains(&dep.as_str()),
                "{dir} depends on {dep}, which is not below it"
            );
        }
    }
}

#[test]
fn no_module_import_cycles() {
    let root = workspace_root();
    for (dir, _) in LAYERS {
        let src = root.join(dir).join("src");
        let graph = module_graph(&src);
        for (from, tos) in &graph {
            for to in tos {
                if from == to || allowed(from, to) {
                    continue;
                }
                if let Some(path) = reaches(&graph, to, from) {
                    panic!(
                        "{dir}: module cycle {from} -> {to} -> {}",
                        path.join(" -> ")
                    );
                }
            }
        }
    }
}

/// Module (path below the crate root, e.g. `command::session`) → the
/// modules it names through `crate::`, `super::` or `self::` paths,
/// reduced to siblings: a reference to `crate::a::b` from `c::d` is an
/// edge `c` → `a` (the first components that differ).
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(src) {
        let module = module_of(src, &file);
        let text = strip_comments(&std::fs::read_to_string(&file).unwrap());
        for target in referenced(&module, &text) {
            let (a, b) = split_at_divergence(&module, &target);
            if let (Some(a), Some(b)) = (a, b) {
                graph.entry(a).or_default().insert(b);
            }
        }
    }
    graph
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// `src/command/session.rs` → `command::session`; `mod.rs`/`lib.rs` name their folder.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// Absolute module paths named in `text` (by `crate::`, `super::`, `self::`).
fn referenced(module: &[String], text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    for start in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(i) = text[from..].find(start).map(|i| i + from) {
            from = i + start.len();
            // Inside a longer path (`a::super::x`, the second `super::` of
            // `super::super::x`, which the loop below walks): not a start.
            if i > 0
                && (bytes[i - 1].is_ascii_alphanumeric() || matches!(bytes[i - 1], b'_' | b':'))
            {
                continue;
            }
            let mut base: Vec<String> = match start {
                "crate::" => Vec::new(),
                "super::" => module[..module.len().saturating_sub(1)].to_vec(),
                _ => module.to_vec(),
            };
            let mut rest = &text[from..];
            // `super::super::x`
            while let Some(r) = rest.strip_prefix("super::") {
                base.pop();
                rest = r;
            }
            for path in expand(rest) {
                let mut full = base.clone();
                full.extend(path);
                out.push(full);
            }
        }
    }
    out
}

/// The module paths at the start of `rest`: `a::b::C` → [a, b] (lowercase
/// components only), `{a, b::c}` → [a], [b].
fn expand(rest: &str) -> Vec<Vec<String>> {
    if let Some(inner) = rest.strip_prefix('{') {
        let end = matching_brace(inner);
        return split_top(&inner[..end])
            .iter()
            .flat_map(|part| expand(part.trim()))
            .collect();
    }
    let mut path = Vec::new();
    let mut rest = rest;
    loop {
        let n = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let word = &rest[..n];
        if word.is_empty() || !word.starts_with(|c: char| c.is_ascii_lowercase()) {
            break;
        }
        path.push(word.to_string());
        match rest[n..].strip_prefix("::") {
            Some(r) if r.starts_with('{') => {
                return expand(r)
                    .into_iter()
                    .map(|p| path.iter().cloned().chain(p).collect())
                    .collect();
            }
            Some(r) => rest = r,
            None => break,
        }
    }
    vec![path]
}

fn matching_brace(s: &str) -> usize {
    let mut depth = 0;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return i,
            '}' => depth -= 1,
            _ => {}
        }
    }
    s.len()
}

fn split_top(s: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// For modules `from` and `to`, the first components where they differ,
/// prefixed with their common parent (`command::session` vs
/// `command::table::X` → `command::session`, `command::table`).
fn split_at_divergence(from: &[String], to: &[String]) -> (Option<String>, Option<String>) {
    let common = from.iter().zip(to).take_while(|(a, b)| a == b).count();
    if common >= from.len() || common >= to.len() {
        return (None, None); // one contains the other: not a sibling edge
    }
    let a = from[..=common].join("::");
    let b = to[..=common].join("::");
    (Some(a), Some(b))
}

fn reaches(
    graph: &BTreeMap<String, BTreeSet<String>>,
    from: &str,
    to: &str,
) -> Option<Vec<String>> {
    let mut stack = vec![(from.to_string(), vec![from.to_string()])];
    let mut seen = BTreeSet::new();
    while let Some((node, path)) = stack.pop() {
        if node == to {
            return Some(path);
        }
        if !seen.insert(node.clone()) {
            continue;
        }
        for next in graph.get(&node).into_iter().flatten() {
            if allowed(&node, next) {
                continue;
            }
            let mut p = path.clone();
            p.push(next.clone());
            stack.push((next.clone(), p));
        }
    }
    None
}

/// Drops `//` comments (doc comments included) so prose naming a module
/// is not an import.
fn strip_comments(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The `[dependencies]` names of a manifest (enough TOML for Cargo.toml).
mod toml_lite {
    pub type Deps = Vec<String>;

    pub fn deps(manifest: &str) -> Deps {
        let mut out = Vec::new();
        let mut in_deps = false;
        for line in manifest.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                in_deps = line == "[dependencies]";
                continue;
            }
            if in_deps {
                if let Some((name, _)) = line.split_once('=') {
                    out.push(name.trim().trim_end_matches(".workspace").to_string());
                }
            }
        }
        out
    }
}
