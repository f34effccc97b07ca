//! The shape of src/: the modules import each other without cycles, and
//! the leaves (host, kernel, error types, Prometheus text) import nothing
//! above them. Read from the source, the way `use crate::…` and
//! `crate::…` paths name modules; test code is left out, since tests may
//! reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::util::repo;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// `check/settings.rs` -> `check::settings`, `check/mod.rs` -> `check`,
/// `lib.rs` -> `` (the crate root).
fn module_of(rel: &Path) -> String {
    let mut parts: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts == ["lib"] || parts == ["main"] {
        parts.clear();
    }
    parts.join("::")
}

fn sources(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).unwrap();
            out.push((module_of(rel), std::fs::read_to_string(&path).unwrap()));
        }
    }
}

/// Production code only, without comments, `super::` spelled out.
fn production(module: &str, text: &str) -> String {
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    let code: String = code
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let parent = module.rsplit_once("::").map_or("", |(p, _)| p);
    let sup = if parent.is_empty() {
        "crate::".to_string()
    } else {
        format!("crate::{parent}::")
    };
    let mut out = String::with_capacity(code.len());
    let mut rest = code.as_str();
    while let Some(i) = rest.find("super::") {
        let before = &rest[..i];
        let word_start = before
            .chars()
            .last()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        out.push_str(before);
        out.push_str(if word_start { &sup } else { "super::" });
        rest = &rest[i + "super::".len()..];
    }
    out.push_str(rest);
    out
}

/// `a::{b, c::{d, e}}` -> `a::b`, `a::c::d`, `a::c::e`.
fn expand(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    if let Some(inner) = tree.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
        let (mut depth, mut cur) = (0, String::new());
        for ch in inner.chars() {
            match ch {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            if ch == ',' && depth == 0 {
                expand(prefix, &cur, out);
                cur.clear();
            } else {
                cur.push(ch);
            }
        }
        expand(prefix, &cur, out);
    } else if let Some((head, tail)) = tree.split_once("::{") {
        expand(&format!("{prefix}{head}::"), &format!("{{{tail}"), out);
    } else if !tree.is_empty() {
        let path = tree.split(" as ").next().unwrap_or(tree).trim();
        let full = format!("{prefix}{path}");
        out.push(full.trim_end_matches("::self").to_string());
    }
}

/// Every `crate::` path the code names.
fn paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("use crate::") {
        let start = &rest[i + "use crate::".len()..];
        let end = start.find(';').unwrap_or(start.len());
        let tree: String = start[..end].split_whitespace().collect();
        expand("", &tree, &mut out);
        rest = &start[end..];
    }
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let start = &rest[i + "crate::".len()..];
        let end = start
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(start.len());
        out.push(start[..end].trim_end_matches(':').to_string());
        rest = &start[end..];
    }
    out
}

/// Each module and the modules it imports (not counting its own
/// submodules, which a parent may always use).
fn graph() -> Graph {
    let src = repo().join("src");
    let mut files = Vec::new();
    sources(&src, &src, &mut files);
    let known: BTreeSet<String> = files.iter().map(|(m, _)| m.clone()).collect();
    let resolve = |path: &str| -> Option<String> {
        let parts: Vec<&str> = path.split("::").collect();
        (1..=parts.len())
            .rev()
            .map(|n| parts[..n].join("::"))
            .find(|m| known.contains(m))
    };
    let mut g = Graph::new();
    for (m, text) in &files {
        let targets = paths(&production(m, text))
            .iter()
            .filter_map(|p| resolve(p))
            .filter(|t| t != m && !t.is_empty())
            // A parent may always use its own submodules.
            .filter(|t| m.is_empty() || !t.starts_with(&format!("{m}::")))
            .collect();
        g.insert(m.clone(), targets);
    }
    g
}

/// The modules on a cycle, one list per strongly connected component.
fn cycles(g: &Graph) -> Vec<Vec<String>> {
    // Two modules are on one cycle when each reaches the other.
    let reach = |from: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(m) = todo.pop() {
            for t in g.get(&m).into_iter().flatten() {
                if seen.insert(t.clone()) {
                    todo.push(t.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> = g.keys().map(|m| (m, reach(m))).collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for (m, r) in &reaches {
        if done.contains(*m) || !r.contains(*m) {
            continue;
        }
        let comp: Vec<String> = r
            .iter()
            .filter(|o| reaches.get(o).is_some_and(|ro| ro.contains(*m)))
            .cloned()
            .collect();
        done.extend(comp.iter().cloned());
        out.push(comp);
    }
    out
}

#[test]
fn modules_import_each_other_without_cycles() {
    let g = graph();
    assert!(g.contains_key("config") && g.contains_key("udplogger::settings"));
    let found = cycles(&g);
    let mut report = String::new();
    for c in &found {
        report.push_str(&format!("cycle: {}\n", c.join(", ")));
        for a in c {
            for b in g[a].iter().filter(|b| c.contains(b)) {
                report.push_str(&format!("   {a} -> {b}\n"));
            }
        }
    }
    assert!(found.is_empty(), "{report}");
}

#[test]
fn leaves_import_nothing_above_them() {
    let g = graph();
    let allowed = |leaf: &str, t: &str| match leaf {
        // The kernel parsers may share helpers; the tracefs locator reads
        // through the host.
        l if l == "kernel" || l.starts_with("kernel::") => {
            t == "kernel" || t.starts_with("kernel::") || t == "host"
        }
        _ => false,
    };
    let mut wrong = Vec::new();
    for (m, targets) in &g {
        let leaf = ["host", "error", "metrics", "output", "sys", "events"].contains(&m.as_str())
            || m == "kernel"
            || m.starts_with("kernel::");
        if leaf {
            wrong.extend(
                targets
                    .iter()
                    .filter(|t| !allowed(m, t))
                    .map(|t| format!("{m} -> {t}")),
            );
        }
    }
    assert!(wrong.is_empty(), "leaf modules import upward: {wrong:?}");
}

#[test]
fn the_graph_reader_sees_imports_and_cycles() {
    let code = production(
        "a::b",
        "use crate::x::{y::Z, w::{self, V}};\nuse super::c;\n// crate::commented\nfn f() { crate::q::r(); }\n#[cfg(test)]\nmod tests { use crate::t; }\n",
    );
    let p: BTreeSet<String> = paths(&code).into_iter().collect();
    let want = ["a::c", "q::r", "x", "x::w", "x::w::V", "x::y::Z"];
    assert_eq!(p, want.iter().map(|s| s.to_string()).collect());
    assert_eq!(module_of(Path::new("check/mod.rs")), "check");
    assert_eq!(module_of(Path::new("check/settings.rs")), "check::settings");
    let mut g = Graph::new();
    g.insert("a".into(), ["b".to_string()].into());
    g.insert("b".into(), ["a".to_string(), "c".to_string()].into());
    g.insert("c".into(), BTreeSet::new());
    assert_eq!(cycles(&g), [["a", "b"]]);
}
