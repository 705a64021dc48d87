//! The module map as a test: every `crate::` path in `src/` must point down
//! the layer order (README, "Design decisions"), no two areas or sibling
//! files may import each other, and no route handler lives below `http`.
//! A failure names the file and line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each top-level area and its layer; an area may import only lower layers,
/// and only the domain areas (layer 2) may import one another (without a cycle).
const LAYERS: &[(&str, u8)] = &[
    ("core", 0),
    ("metrics", 0),
    ("config", 1),
    ("store", 1),
    ("telemetry", 2),
    ("auth", 2),
    ("workspaces", 2),
    ("jobs", 2),
    ("http", 3),
    ("api", 4),
    ("dashboard", 4),
    ("housekeeping", 5),
    ("startup", 6),
    ("cli", 7),
];
const DOMAIN: u8 = 2;

/// Words that mark a route handler or its wiring; none may appear below
/// the `http` layer.
const HANDLER_MARKS: &[&str] = &["HttpResponse", "ServiceConfig", "utoipa::path", "web::Data"];

struct Import {
    file: String,
    line: usize,
    path: Vec<String>,
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// Source without `//` comments (doc comments included), lines kept. A
/// `//` inside a string literal (`"http://…"`) is not a comment, so what
/// follows it on the line is still read.
fn without_comments(text: &str) -> String {
    text.lines()
        .map(|line| match comment_start(line) {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Where a `//` comment starts on `line`, outside string literals (a
/// string is taken to end on its line; `'"'` is a character, not a quote).
fn comment_start(line: &str) -> Option<usize> {
    let bytes = line.as_bytes();
    let mut in_string = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_string => i += 1,
            b'"' => in_string = !in_string,
            b'\''
                if !in_string
                    && bytes.get(i + 1) == Some(&b'"')
                    && bytes.get(i + 2) == Some(&b'\'') =>
            {
                i += 2
            }
            b'/' if !in_string && bytes.get(i + 1) == Some(&b'/') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// The paths after `prefix` (`crate::` or `super::`), a `{..}` group
/// expanded into one path per top-level item.
fn paths_after(text: &str, prefix: &str) -> Vec<(usize, Vec<String>)> {
    let mut found = Vec::new();
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(at) = text[from..].find(prefix).map(|i| i + from) {
        from = at + prefix.len();
        let before = at.checked_sub(1).map(|i| bytes[i]);
        if before.is_some_and(|b| b == b'$' || b == b'_' || b.is_ascii_alphanumeric()) {
            continue;
        }
        if prefix == "super::" && before == Some(b':') {
            continue;
        }
        let line = text[..at].matches('\n').count() + 1;
        let rest = &text[from..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut end = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                if depth == 0 {
                    end = i;
                    break;
                }
            }
            let mut depth = 0;
            let mut item = String::new();
            for c in group[..end].chars().chain([',']) {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                if c == ',' && depth == 0 {
                    found.push((line, segments(&item)));
                    item.clear();
                } else {
                    item.push(c);
                }
            }
        } else {
            found.push((line, segments(rest)));
        }
    }
    found.retain(|(_, path)| !path.is_empty());
    found
}

fn segments(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text.trim_start();
    loop {
        let len = rest
            .find(|c: char| !(c == '_' || c.is_ascii_alphanumeric()))
            .unwrap_or(rest.len());
        if len == 0 {
            break;
        }
        out.push(rest[..len].to_owned());
        match rest[len..].strip_prefix("::") {
            Some(next) if !next.starts_with('{') => rest = next,
            _ => break,
        }
    }
    out
}

/// The file a module path leads to, from directory `dir`: the deepest
/// `seg.rs` or `seg/mod.rs` along the path; an item a `mod.rs` re-exports
/// (`pub use worker::Worker;`) leads on to the file that defines it.
fn resolve(mut dir: PathBuf, path: &[String]) -> Option<PathBuf> {
    let mut file = None;
    for (at, seg) in path.iter().enumerate() {
        let flat = dir.join(format!("{seg}.rs"));
        let nested = dir.join(seg).join("mod.rs");
        if flat.is_file() {
            file = Some(flat);
        } else if nested.is_file() {
            file = Some(nested);
        } else {
            if file.as_ref().is_some_and(|f| f.ends_with("mod.rs")) {
                if let Some(child) = reexported_from(&dir, seg) {
                    let mut rest = vec![child];
                    rest.extend_from_slice(&path[at..]);
                    return resolve(dir, &rest).or(file);
                }
            }
            break;
        }
        dir = dir.join(seg);
    }
    file
}

/// The child module of `dir/mod.rs` whose `pub use` re-exports `name`.
fn reexported_from(dir: &Path, name: &str) -> Option<String> {
    let text = without_comments(&std::fs::read_to_string(dir.join("mod.rs")).ok()?);
    let is_ident = |c: char| c == '_' || c.is_ascii_alphanumeric();
    text.split(';').find_map(|statement| {
        let rest = statement.trim().strip_prefix("pub use ")?;
        let rest = rest.strip_prefix("self::").unwrap_or(rest);
        let names = rest.split(|c: char| !is_ident(c));
        if !names.clone().skip(1).any(|word| word == name) {
            return None;
        }
        let child = names.into_iter().next()?.to_owned();
        let exists =
            dir.join(format!("{child}.rs")).is_file() || dir.join(&child).join("mod.rs").is_file();
        exists.then_some(child)
    })
}

fn relative(path: &Path) -> String {
    path.strip_prefix(src_dir())
        .expect("under src")
        .display()
        .to_string()
}

fn area_of(file: &str) -> Option<&str> {
    let first = file.split('/').next()?;
    let area = first.strip_suffix(".rs").unwrap_or(first);
    (area != "lib" && area != "main").then_some(area)
}

fn layer(area: &str) -> u8 {
    LAYERS
        .iter()
        .find(|(name, _)| *name == area)
        .unwrap_or_else(|| panic!("the area '{area}' is missing from the layer table"))
        .1
}

/// Every group of nodes that reach one another (a strongly connected
/// component of more than one node), as `cycle: a <-> b <-> c`.
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<String> {
    let reach = |start: &String| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![start.clone()];
        while let Some(node) = todo.pop() {
            for next in edges.get(&node).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let reachable: BTreeMap<&String, BTreeSet<String>> =
        edges.keys().map(|node| (node, reach(node))).collect();
    let mut found = BTreeSet::new();
    for (node, seen) in &reachable {
        let group: Vec<&str> = seen
            .iter()
            .filter(|other| {
                reachable
                    .get(other)
                    .is_some_and(|back| back.contains(*node))
            })
            .map(String::as_str)
            .collect();
        if group.len() > 1 {
            found.insert(format!("cycle: {}", group.join(" <-> ")));
        }
    }
    found
}

/// Whether `path` is compiled only for tests: its `mod` line (or an
/// ancestor's) follows `#[cfg(test)]`. Test code may reach up the layers
/// (a store's conformance suite builds an area's records).
fn is_test_only(path: &Path) -> bool {
    let Some(parent) = path.parent() else {
        return false;
    };
    if parent == src_dir() || !parent.starts_with(src_dir()) {
        return false;
    }
    let stem = path.file_stem().expect("a file name").to_string_lossy();
    let (declaring, name) = if stem == "mod" {
        let name = parent.file_name().expect("a directory").to_string_lossy();
        let grand = parent.parent().expect("under src");
        (grand.join("mod.rs"), name.into_owned())
    } else {
        (parent.join("mod.rs"), stem.into_owned())
    };
    let declaring = if declaring.is_file() {
        declaring
    } else {
        declaring.with_file_name("lib.rs")
    };
    let text = std::fs::read_to_string(&declaring).unwrap_or_default();
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let declared_for_tests = lines.iter().enumerate().any(|(i, line)| {
        let declares = line.ends_with(&format!("mod {name};"));
        declares && i > 0 && lines[i - 1].starts_with("#[cfg(test)]")
    });
    declared_for_tests || (declaring != path && is_test_only(&declaring))
}

/// The module path of each file that a `#[path = "…"]` attribute declares
/// (its declaring file's module path plus the `mod` name), keyed by the
/// file relative to `src/`.
fn declared_by_path_attribute(files: &[PathBuf]) -> BTreeMap<String, Vec<String>> {
    let mut declared = BTreeMap::new();
    // Twice, so a `#[path]` module declared inside another one resolves.
    for _ in 0..2 {
        for path in files {
            let text = std::fs::read_to_string(path).expect("readable");
            let file = relative(path);
            let dir = Path::new(&file).parent().expect("in src").to_path_buf();
            let mut pending: Option<String> = None;
            for line in text.lines().map(str::trim) {
                if let Some(target) = line
                    .strip_prefix("#[path = \"")
                    .and_then(|rest| rest.strip_suffix("\"]"))
                {
                    pending = Some(target.to_owned());
                } else if let Some(target) = pending.take() {
                    let name = line
                        .strip_suffix(';')
                        .and_then(|l| l.rsplit_once("mod "))
                        .map(|(_, name)| name.trim().to_owned());
                    match name {
                        Some(name) => {
                            let mut module = module_path(&file, &declared);
                            module.push(name);
                            let target = dir.join(target).display().to_string();
                            declared.insert(target, module);
                        }
                        // Another attribute between `#[path]` and `mod`.
                        None if line.starts_with("#[") => pending = Some(target),
                        None => {}
                    }
                }
            }
        }
    }
    declared
}

/// The module path of `file` (relative to `src/`): `a/b.rs` and
/// `a/b/mod.rs` are `a::b`, `lib.rs` the crate root.
fn module_path(file: &str, declared: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    if let Some(module) = declared.get(file) {
        return module.clone();
    }
    let mut module: Vec<String> = file
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_owned)
        .collect();
    if module.last().is_some_and(|last| {
        last == "mod" || (module.len() == 1 && (last == "lib" || last == "main"))
    }) {
        module.pop();
    }
    module
}

/// The crate paths a file's text imports: `crate::` paths as written,
/// `super::` paths (any number of `super`s, from `mod.rs` files too) made
/// absolute from the file's module path.
fn imports_of(
    file: &str,
    text: &str,
    declared: &BTreeMap<String, Vec<String>>,
) -> Vec<(usize, Vec<String>)> {
    let text = without_comments(text);
    let mut found = paths_after(&text, "crate::");
    let module = module_path(file, declared);
    for (line, rest) in paths_after(&text, "super::") {
        // `super::` is the parent module; each further `super` one more up.
        let ups = 1 + rest.iter().take_while(|seg| *seg == "super").count();
        let Some(base) = module.len().checked_sub(ups) else {
            continue;
        };
        let mut path = module[..base].to_vec();
        path.extend(rest.into_iter().skip(ups - 1));
        found.push((line, path));
    }
    found.retain(|(_, path)| !path.is_empty());
    found
}

fn imports() -> Vec<Import> {
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    let declared = declared_by_path_attribute(&files);
    files.retain(|path| !is_test_only(path));
    let mut all = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("readable");
        let file = relative(&path);
        for (line, path) in imports_of(&file, &text, &declared) {
            all.push(Import {
                file: file.clone(),
                line,
                path,
            });
        }
    }
    all
}

fn violations() -> BTreeMap<String, Vec<String>> {
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut area_edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut file_edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for import in imports() {
        let Some(from) = area_of(&import.file) else {
            continue;
        };
        let to = import.path[0].as_str();
        if to != from && LAYERS.iter().any(|(name, _)| *name == to) {
            area_edges
                .entry(from.to_owned())
                .or_default()
                .insert(to.to_owned());
            let (up, down) = (layer(from), layer(to));
            if down > up || (down == up && up != DOMAIN) {
                found
                    .entry(format!("{from} -> {to}"))
                    .or_default()
                    .push(format!(
                        "src/{}:{}: {from} (layer {up}) imports {to} (layer {down})",
                        import.file, import.line
                    ));
            }
        }
        if let Some(target) = resolve(src_dir(), &import.path) {
            let target = relative(&target);
            let same_dir = Path::new(&target).parent() == Path::new(&import.file).parent();
            let is_mod = |f: &str| f.ends_with("mod.rs") || !f.contains('/');
            if same_dir && target != import.file && !is_mod(&target) && !is_mod(&import.file) {
                file_edges
                    .entry(import.file.clone())
                    .or_default()
                    .insert(target);
            }
        }
    }
    for cycle in cycles(&area_edges).into_iter().chain(cycles(&file_edges)) {
        found.entry(cycle.clone()).or_default().push(cycle);
    }
    found
}

#[test]
fn every_import_points_down_the_layer_order_and_nothing_imports_in_a_cycle() {
    let found: Vec<String> = violations().into_values().flatten().collect();
    assert!(
        found.is_empty(),
        "imports against the module map (README, Design decisions):\n{}",
        found.join("\n")
    );
}

#[test]
fn no_route_handler_lives_below_the_http_layer() {
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    let mut found = Vec::new();
    for path in files {
        let file = relative(&path);
        if area_of(&file).is_none_or(|area| layer(area) >= layer("http")) {
            continue;
        }
        let text = without_comments(&std::fs::read_to_string(&path).expect("readable"));
        for (number, line) in text.lines().enumerate() {
            if let Some(mark) = HANDLER_MARKS.iter().find(|mark| line.contains(*mark)) {
                found.push(format!("src/{file}:{}: {mark}", number + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "route handlers belong in api/ or dashboard/, not in the layers below http:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_checker_finds_grouped_and_relative_imports() {
    let text = "use crate::{jobs, auth::{gate, Principal}};\nlet x = crate::store::read(); // crate::api\nuse super::pages::nav;";
    let crate_paths = paths_after(&without_comments(text), "crate::");
    let firsts: Vec<(usize, &str)> = crate_paths
        .iter()
        .map(|(line, path)| (*line, path[0].as_str()))
        .collect();
    assert_eq!(firsts, [(1, "jobs"), (1, "auth"), (2, "store")]);
    let relative = paths_after(text, "super::");
    assert_eq!(relative, [(3, vec!["pages".to_owned(), "nav".to_owned()])]);
}

#[test]
fn the_checker_resolves_super_from_mod_files_chains_and_path_modules() {
    let mut declared = BTreeMap::new();
    declared.insert(
        "jobs/engine/index_build.rs".to_owned(),
        vec![
            "jobs".to_owned(),
            "engine".to_owned(),
            "index".to_owned(),
            "build".to_owned(),
        ],
    );
    let firsts = |file: &str, text: &str| -> Vec<Vec<String>> {
        imports_of(file, text, &declared)
            .into_iter()
            .map(|(_, path)| path)
            .collect()
    };
    let path = |segs: &[&str]| segs.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    // From a `mod.rs`, `super::` is the area's parent: here the crate root.
    assert_eq!(
        firsts("dashboard/mod.rs", "use super::api::jobs;"),
        [path(&["api", "jobs"])]
    );
    assert_eq!(
        firsts("dashboard/jobs.rs", "use super::super::api::jobs;"),
        [path(&["api", "jobs"])]
    );
    assert_eq!(
        firsts("dashboard/jobs.rs", "use super::pages::nav;"),
        [path(&["dashboard", "pages", "nav"])]
    );
    assert_eq!(
        firsts(
            "jobs/engine/index_build.rs",
            "use super::super::builtin::walker;"
        ),
        [path(&["jobs", "engine", "builtin", "walker"])]
    );
    // A `//` in a string does not hide the rest of the line.
    assert_eq!(
        firsts(
            "dashboard/jobs.rs",
            "let u = \"http://x\"; crate::api::jobs::f(u); // crate::store"
        ),
        [path(&["api", "jobs", "f"])]
    );
}

#[test]
fn the_checker_follows_a_reexport_to_the_file_that_defines_it() {
    let worker = resolve(src_dir(), &["jobs".to_owned(), "Worker".to_owned()]);
    assert_eq!(
        worker.map(|file| relative(&file)),
        Some("jobs/worker.rs".to_owned())
    );
}
