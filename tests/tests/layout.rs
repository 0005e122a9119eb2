//! The workspace's layout rules, checked on its own files (README's layout table says the
//! same in words):
//! - which crate may depend on which of ours (`[dependencies]`, `[build-dependencies]` and
//!   `[dev-dependencies]` alike), and that every workspace member has a rule;
//! - that `core` depends on no I/O crate (an allowlist: adding one is a decision);
//! - that the crates without a reason for `unsafe` forbid it;
//! - that no source file imports a file that imports it back, directly or round a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each crate of ours, and the crates of ours it may depend on.
const MAY_DEPEND_ON: &[(&str, &[&str])] = &[
    ("flowcore-core", &[]),
    ("flowcore-feeds", &["flowcore-core"]),
    ("flowcore-shm", &["flowcore-core"]),
    ("flowcore-outputs", &["flowcore-core", "flowcore-shm"]),
    (
        "flowcore-runtime",
        &[
            "flowcore-core",
            "flowcore-feeds",
            "flowcore-shm",
            "flowcore-outputs",
        ],
    ),
    ("flowcore-sim", &["flowcore-core", "flowcore-feeds"]),
    ("flowcore-gateways", &["flowcore-core", "flowcore-shm"]),
    (
        "flowcore-tools",
        &[
            "flowcore-core",
            "flowcore-feeds",
            "flowcore-shm",
            "flowcore-outputs",
            "flowcore-runtime",
            "flowcore-sim",
            "flowcore-gateways",
        ],
    ),
    (
        "flowcore-tests",
        &[
            "flowcore-core",
            "flowcore-feeds",
            "flowcore-shm",
            "flowcore-outputs",
            "flowcore-runtime",
            "flowcore-sim",
            "flowcore-gateways",
            "flowcore-tools",
        ],
    ),
    (
        "flowcore-benches",
        &[
            "flowcore-core",
            "flowcore-feeds",
            "flowcore-shm",
            "flowcore-outputs",
            "flowcore-runtime",
            "flowcore-sim",
            "flowcore-gateways",
            "flowcore-tools",
            "flowcore-tests",
        ],
    ),
];

/// Everything `core` may depend on: computation only, no I/O, no threads, no clocks.
const CORE_MAY_USE: &[&str] = &["fixed", "thiserror", "proptest"];

/// Crates whose root must say `#![forbid(unsafe_code)]`: unsafe lives in `shm` and the
/// io_uring transport only (STYLE.md).
const FORBID_UNSAFE: &[&str] = &[
    "core/src/lib.rs",
    "outputs/src/lib.rs",
    "runtime/src/lib.rs",
    "tools/sim/src/lib.rs",
    "gateways/src/lib.rs",
    "tools/src/lib.rs",
    "tools/src/main.rs",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read_toml(path: &Path) -> toml::Table {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.parse()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The workspace members' directories, from the root manifest.
fn members() -> Vec<String> {
    let manifest = read_toml(&root().join("Cargo.toml"));
    manifest["workspace"]["members"]
        .as_array()
        .expect("workspace.members")
        .iter()
        .map(|m| m.as_str().expect("a member is a path").to_owned())
        .collect()
}

/// A member's package name and every dependency it names, with the table it is in.
fn dependencies(member: &str) -> (String, Vec<(String, &'static str)>) {
    let manifest = read_toml(&root().join(member).join("Cargo.toml"));
    let name = manifest["package"]["name"]
        .as_str()
        .expect("package.name")
        .to_owned();
    let mut deps = Vec::new();
    for table in ["dependencies", "dev-dependencies", "build-dependencies"] {
        if let Some(t) = manifest.get(table).and_then(|t| t.as_table()) {
            deps.extend(t.keys().map(|k| (k.clone(), table)));
        }
    }
    (name, deps)
}

#[test]
fn every_crate_depends_only_on_what_its_rule_allows() {
    let rules: BTreeMap<&str, &[&str]> = MAY_DEPEND_ON.iter().copied().collect();
    let mut broken = Vec::new();
    for member in members() {
        let (name, deps) = dependencies(&member);
        let Some(allowed) = rules.get(name.as_str()) else {
            broken.push(format!(
                "{name} ({member}) has no rule: add it to MAY_DEPEND_ON and README's layout table"
            ));
            continue;
        };
        for (dep, table) in deps {
            if dep.starts_with("flowcore-") && !allowed.contains(&dep.as_str()) {
                broken.push(format!("{name} must not depend on {dep} ([{table}])"));
            }
            if name == "flowcore-core" && !CORE_MAY_USE.contains(&dep.as_str()) {
                broken.push(format!(
                    "flowcore-core must stay free of I/O: {dep} ([{table}]) is not in CORE_MAY_USE"
                ));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "layout rules broken:\n{}",
        broken.join("\n")
    );
}

#[test]
fn crates_without_a_reason_for_unsafe_forbid_it() {
    for file in FORBID_UNSAFE {
        let text = std::fs::read_to_string(root().join(file)).expect(file);
        assert!(
            text.contains("#![forbid(unsafe_code)]"),
            "{file} must say #![forbid(unsafe_code)]"
        );
    }
}

/// One crate's source files as a module tree, and which file each file imports from.
#[derive(Debug, Default)]
struct ModuleGraph {
    /// Module path (`["binance", "fast"]`) -> its file.
    files: BTreeMap<Vec<String>, PathBuf>,
    /// File -> the files it names in `use` declarations and paths.
    edges: BTreeMap<PathBuf, BTreeSet<PathBuf>>,
}

impl ModuleGraph {
    fn of_crate(src_root: &Path) -> Self {
        let mut graph = Self::default();
        let mut pending = vec![(Vec::new(), src_root.to_path_buf())];
        let mut sources = Vec::new();
        while let Some((path, file)) = pending.pop() {
            let text = code_of(&std::fs::read_to_string(&file).expect("source file"));
            let dir = if path.is_empty() || file.ends_with("mod.rs") {
                file.parent().expect("a parent").to_path_buf()
            } else {
                file.with_extension("")
            };
            for child in declared_modules(&text) {
                let flat = dir.join(format!("{child}.rs"));
                let nested = dir.join(&child).join("mod.rs");
                let child_file = if flat.exists() { flat } else { nested };
                assert!(child_file.exists(), "mod {child} of {}", file.display());
                let mut child_path = path.clone();
                child_path.push(child);
                pending.push((child_path, child_file));
            }
            graph.files.insert(path.clone(), file.clone());
            sources.push((path, file, text));
        }
        for (path, file, text) in sources {
            let children = declared_modules(&text);
            let mut targets = BTreeSet::new();
            for named in named_paths(&text, &children) {
                if let Some(target) = graph.resolve(&path, &named) {
                    if target != file {
                        targets.insert(target);
                    }
                }
            }
            graph.edges.insert(file, targets);
        }
        graph
    }

    /// The file of the deepest module a path (relative to module `at`) names.
    fn resolve(&self, at: &[String], named: &[String]) -> Option<PathBuf> {
        let mut abs: Vec<String> = Vec::new();
        let mut rest = named;
        match named.first().map(String::as_str) {
            Some("crate") => rest = &named[1..],
            Some("self") => {
                abs = at.to_vec();
                rest = &named[1..];
            }
            Some("super") => {
                abs = at.to_vec();
                while rest.first().map(String::as_str) == Some("super") {
                    abs.pop()?;
                    rest = &rest[1..];
                }
            }
            // A child module named without a prefix.
            _ => abs = at.to_vec(),
        }
        abs.extend(rest.iter().filter(|s| *s != "self").cloned());
        (0..=abs.len())
            .rev()
            .find_map(|n| self.files.get(&abs[..n]))
            .cloned()
    }

    /// Every circle of imports, as the files round it.
    fn circles(&self) -> Vec<Vec<PathBuf>> {
        let mut found = Vec::new();
        let mut done = BTreeSet::new();
        for start in self.edges.keys() {
            let mut stack = vec![start.clone()];
            self.walk(&mut stack, &mut done, &mut found);
        }
        found
    }

    fn walk(
        &self,
        stack: &mut Vec<PathBuf>,
        done: &mut BTreeSet<PathBuf>,
        found: &mut Vec<Vec<PathBuf>>,
    ) {
        let here = stack.last().expect("non-empty").clone();
        if done.contains(&here) {
            return;
        }
        for next in self.edges.get(&here).into_iter().flatten() {
            if let Some(at) = stack.iter().position(|f| f == next) {
                found.push(stack[at..].to_vec());
            } else {
                stack.push(next.clone());
                self.walk(stack, done, found);
                stack.pop();
            }
        }
        done.insert(here);
    }
}

/// The source without comments and without its `#[cfg(test)]` module at the end (whose
/// `super` is the file itself).
fn code_of(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        if trimmed == "#[cfg(test)]"
            && lines
                .get(i + 1)
                .is_some_and(|next| next.trim_start().starts_with("mod ") && next.ends_with('{'))
        {
            break;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        out.push_str(line.split(" //").next().unwrap_or(line));
        out.push('\n');
    }
    out
}

/// `mod name;` declarations (files, not inline modules).
fn declared_modules(code: &str) -> Vec<String> {
    code.lines()
        .filter_map(|line| {
            let line = line.trim();
            let line = line.strip_prefix("pub ").unwrap_or(line);
            let line = line.strip_prefix("pub(crate) ").unwrap_or(line);
            let name = line.strip_prefix("mod ")?.strip_suffix(';')?;
            Some(name.trim().to_owned())
        })
        .collect()
}

/// Every module path the code names: each `use` tree expanded, and each inline path that
/// starts with `crate::`, `super::`, `self::` or a child module's name.
fn named_paths(code: &str, children: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = find_use(rest) {
        let tail = &rest[at..];
        let end = tail.find(';').unwrap_or(tail.len());
        expand_use("", tail[..end].trim(), &mut out);
        rest = &tail[end..];
    }
    let bytes = code.as_bytes();
    for (i, _) in code.match_indices("::") {
        let start = code[..i]
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .map_or(0, |p| p + 1);
        if start > 0 && bytes[start - 1] == b'$' {
            continue;
        }
        let path = &code[start..];
        let end = path
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(path.len());
        let segments: Vec<String> = path[..end]
            .split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let first = segments.first().map(String::as_str).unwrap_or("");
        if ["crate", "super", "self"].contains(&first) || children.iter().any(|c| c == first) {
            out.push(segments);
        }
    }
    out
}

/// Where the next `use` declaration's tree starts.
fn find_use(code: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = code[from..].find("use ") {
        let at = from + at;
        let before = code[..at].chars().next_back();
        if before.is_none_or(|c| c.is_whitespace()) {
            return Some(at + 4);
        }
        from = at + 4;
    }
    None
}

/// Expands `a::{b::C, d}` under `prefix` into `a::b::C` and `a::d`.
fn expand_use(prefix: &str, tree: &str, out: &mut Vec<Vec<String>>) {
    let tree = tree.trim();
    let full = |p: &str| {
        if prefix.is_empty() {
            p.to_owned()
        } else {
            format!("{prefix}::{p}")
        }
    };
    match tree.find('{') {
        Some(open) => {
            let close = tree.rfind('}').unwrap_or(tree.len());
            let head = full(tree[..open].trim_end_matches("::").trim());
            let body = &tree[open + 1..close];
            let mut depth = 0;
            let mut part_start = 0;
            for (i, c) in body.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        expand_use(&head, &body[part_start..i], out);
                        part_start = i + 1;
                    }
                    _ => {}
                }
            }
            expand_use(&head, &body[part_start..], out);
        }
        None => {
            let path = tree.split(" as ").next().unwrap_or(tree).trim();
            let path = path.trim_end_matches("::*");
            if path.is_empty() {
                return;
            }
            out.push(full(path).split("::").map(str::to_owned).collect());
        }
    }
}

/// Every crate root of the workspace's members (a library, and a binary with its own tree).
fn crate_roots() -> Vec<PathBuf> {
    let mut roots = Vec::new();
    for member in members() {
        for root_file in ["src/lib.rs", "src/main.rs"] {
            let file = root().join(&member).join(root_file);
            if file.exists() {
                roots.push(file);
            }
        }
    }
    roots
}

#[test]
fn no_source_file_imports_one_that_imports_it_back() {
    let mut circles = Vec::new();
    for crate_root in crate_roots() {
        let graph = ModuleGraph::of_crate(&crate_root);
        assert!(!graph.files.is_empty());
        for circle in graph.circles() {
            let names: Vec<String> = circle
                .iter()
                .map(|f| f.strip_prefix(root()).unwrap_or(f).display().to_string())
                .collect();
            circles.push(names.join(" -> "));
        }
    }
    circles.sort();
    circles.dedup();
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}

#[test]
fn the_circle_check_sees_a_circle() {
    // Two files that import each other, as a crate would hold them.
    let dir = std::env::temp_dir().join(format!("flowcore-layout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("lib.rs"), "mod a;\nmod b;\nmod c;\n").unwrap();
    std::fs::write(dir.join("a.rs"), "use crate::b::{x, Y};\npub fn z() {}\n").unwrap();
    std::fs::write(
        dir.join("b.rs"),
        "pub fn x() { super::a::z() }\npub struct Y;\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("c.rs"),
        "use crate::a;\n#[cfg(test)]\nmod tests {\n    use super::*;\n}\n",
    )
    .unwrap();
    let graph = ModuleGraph::of_crate(&dir.join("lib.rs"));
    let circles = graph.circles();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(circles.len(), 1, "{circles:?}");
    let names: BTreeSet<_> = circles[0]
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["a.rs".to_owned(), "b.rs".to_owned()])
    );
}
