//! The structure is the architecture: no module of src/ imports a module that
//! imports it back (directly or around a cycle), every module lives in a folder
//! named for its stage or role, and the README's Layout names every folder and
//! module there is.

use crate::common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path ("context::node") → its source, comments and unit tests removed.
fn modules() -> BTreeMap<String, String> {
    let src = repo().join("src");
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(&src).into_iter().flatten() {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "rs") || path.ends_with("main.rs") {
            continue;
        }
        let rel = path.strip_prefix(&src).unwrap().with_extension("");
        let mut name = rel.to_string_lossy().replace('/', "::");
        if let Some(parent) = name.strip_suffix("::mod") {
            name = parent.to_string();
        }
        if name == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(path).unwrap();
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
        let code: String = code
            .lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        out.insert(name, code);
    }
    out
}

/// Which modules each module uses (`crate::a::b`, and `super::x` in a folder).
fn imports(mods: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut names: Vec<&String> = mods.keys().collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    let mut graph = BTreeMap::new();
    for (m, code) in mods {
        let mut uses = BTreeSet::new();
        let parent = m.rsplit_once("::").map(|p| p.0.to_string());
        for (prefix, base) in [("crate::", None), ("super::", parent.as_deref())] {
            for (i, _) in code.match_indices(prefix) {
                let rest: String = code[i + prefix.len()..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                let path = match base {
                    Some(b) => format!("{b}::{rest}"),
                    None if prefix == "super::" => continue,
                    None => rest,
                };
                if let Some(target) = names
                    .iter()
                    .find(|n| path == ***n || path.starts_with(&format!("{n}::")))
                {
                    // A module may use its own children and itself.
                    if *target != m && !target.starts_with(&format!("{m}::")) {
                        uses.insert((*target).clone());
                    }
                }
            }
        }
        graph.insert(m.clone(), uses);
    }
    graph
}

/// A cycle through `start`, if there is one.
fn cycle_from(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_string(), vec![start.to_string()])];
    let mut seen = BTreeSet::new();
    while let Some((at, path)) = stack.pop() {
        for next in &graph[&at] {
            if next == start {
                let mut c = path.clone();
                c.push(start.to_string());
                return Some(c);
            }
            if seen.insert(next.clone()) {
                let mut p = path.clone();
                p.push(next.clone());
                stack.push((next.clone(), p));
            }
        }
    }
    None
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let mods = modules();
    assert!(mods.len() > 40, "{} modules read", mods.len());
    let graph = imports(&mods);
    // The check sees real imports (it would see a cycle if there were one).
    assert!(graph["run::pass"].contains("receive") && graph["receive"].contains("context::node"));
    let cycles: Vec<String> = graph
        .keys()
        .filter_map(|m| cycle_from(&graph, m))
        .map(|c| c.join(" → "))
        .collect();
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
    // Context sits below the stages and the orchestration above them.
    for (m, uses) in &graph {
        if m.starts_with("context") || m.starts_with("domain") || m.starts_with("wire") {
            for u in uses {
                for above in ["send", "receive", "run", "tools"] {
                    assert!(
                        !(u == above || u.starts_with(&format!("{above}::"))),
                        "{m} (below the stages) imports {u}"
                    );
                }
            }
        }
        for u in uses {
            assert!(
                !(u.starts_with("run") || u.starts_with("tools"))
                    || m.starts_with("run")
                    || m.starts_with("tools"),
                "{m} imports {u}, which is above it"
            );
        }
    }
}

#[test]
fn every_module_is_in_a_folder_the_readme_names() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let layout = &readme[readme.find("## Layout").unwrap()..];
    let src = repo().join("src");
    for e in std::fs::read_dir(&src).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if e.path().is_dir() {
            assert!(
                layout.contains(&format!("`src/{name}/`")),
                "README's Layout lacks src/{name}/"
            );
        } else {
            assert!(
                ["lib.rs", "main.rs"].contains(&name.as_str()),
                "src/{name} is not in a folder named for its stage or role"
            );
        }
    }
    for (m, _) in modules() {
        let leaf = m.rsplit("::").next().unwrap();
        if Path::new(&src).join(m.replace("::", "/")).is_dir() {
            continue; // a folder's mod.rs: the folder is named above
        }
        assert!(
            layout.contains(&format!("`{leaf}`")),
            "README's Layout does not name module {m}"
        );
    }
}
