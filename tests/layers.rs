//! The import graph of `src/`: no circles between files, and no arrow from a lower layer to a
//! higher one (`docs/architecture.md` explains the layers).
//!
//! Every path a file names (`use crate::…`, `crate::…` in code, `super::…`, `self::…`, and a
//! module's own children named in its code) is resolved to the deepest module file it reaches:
//! that file is imported. A module's front door (its `mod.rs`, or `lib.rs`) declaring its own
//! parts (`mod child;`) or naming what they hold (`pub use child::Item`, a registry listing
//! them) is not an import: the parts may use the front door's items. Everything else counts,
//! between siblings and across modules.
//!
//! Plain Rust over the source text, no dependency: a small lexer skips comments, strings and
//! character literals, so only code counts (a path written inside a string, such as
//! `#[graphql(remote = "crate::…")]`, is not seen).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The layers, lowest first: a file may import files of its own layer or of lower ones. A
/// module is placed by its longest listed prefix.
const LAYERS: &[&[&str]] = &[
    &["allocator", "crypto", "telemetry", "metrics"],
    &["db"],
    &["error"],
    &["events"],
    &["auth", "security", "net"],
    &["sync", "health", "notify"],
    &["graphql"],
    &["config"],
    &["app"],
    &["http"],
    &["router", "server"],
    &["devkit"],
    &["cli"],
];

/// Files outside the library's module tree (the binary and the build script).
const NOT_MODULES: &[&str] = &["main.rs", "build.rs"];

#[test]
fn the_import_graph_has_no_circles_and_no_upward_arrows() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = Graph::read(&src);
    let mut problems = Vec::new();
    problems.extend(graph.cycles());
    problems.extend(graph.upward_arrows());
    assert!(
        problems.is_empty(),
        "the import graph of src/ breaks its rules:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_checker_sees_paths_in_use_trees_code_and_relative_forms() {
    let code = r#"
        use crate::a::{b::{self, C}, d};
        use super::e::F as G;
        // use crate::commented;
        fn f() { let s = "crate::in_string"; crate::h::i::j(); self::k::l(); }
        #[cfg(test)] mod tests { use super::*; use crate::m; }
    "#;
    let found: Vec<String> = paths_in(code, &["x".into(), "y".into()], &BTreeSet::new())
        .into_iter()
        .map(|(path, _)| path.join("::"))
        .collect();
    assert_eq!(
        found,
        [
            "a::b",
            "a::b::C",
            "a::d",
            "x::e::F",
            "h::i::j",
            "x::y::k::l",
            "x::y",
            "m"
        ]
    );
}

/// Files and the files each imports (with the line of the first import).
struct Graph {
    edges: BTreeMap<String, BTreeMap<String, usize>>,
}

impl Graph {
    fn read(src: &Path) -> Self {
        let mut files = Vec::new();
        rust_files(src, &mut files);
        let modules: BTreeMap<Vec<String>, String> = files
            .iter()
            .filter_map(|f| module_of(src, f).map(|m| (m, display(src, f))))
            .collect();
        let mut edges = BTreeMap::new();
        for (module, file) in &modules {
            let text = fs::read_to_string(src.join(file.trim_start_matches("src/")))
                .expect("readable source");
            let children: BTreeSet<String> = modules
                .keys()
                .filter(|m| m.len() == module.len() + 1 && m.starts_with(module))
                .map(|m| m[module.len()].clone())
                .collect();
            let mut imports = BTreeMap::new();
            let front_door = file.ends_with("mod.rs") || file == "src/lib.rs";
            for (path, line) in paths_in(&text, module, &children) {
                let own_part = front_door && path.len() > module.len() && path.starts_with(module);
                if let Some(target) = deepest_file(&modules, &path)
                    && target != *file
                    && !own_part
                {
                    imports.entry(target).or_insert(line);
                }
            }
            edges.insert(file.clone(), imports);
        }
        Self { edges }
    }

    /// One circle per strongly connected component of more than one file, with the
    /// component's other files.
    fn cycles(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for start in self.edges.keys() {
            if seen.contains(start) {
                continue;
            }
            let reach = self.reachable(start);
            let component: BTreeSet<String> = reach
                .into_iter()
                .filter(|f| self.reachable(f).contains(start))
                .collect();
            seen.extend(component.iter().cloned());
            if component.len() > 1 {
                let circle = self.circle_through(start, &component);
                let mut line = format!("circle: {}", circle.join(" -> "));
                if component.len() + 1 > circle.len() {
                    let all: Vec<&str> = component.iter().map(String::as_str).collect();
                    line.push_str(&format!(" (its tangle: {})", all.join(", ")));
                }
                out.push(line);
            }
        }
        out
    }

    fn reachable(&self, from: &str) -> BTreeSet<String> {
        let mut done = BTreeSet::new();
        let mut todo = vec![from.to_owned()];
        while let Some(f) = todo.pop() {
            for next in self.edges.get(&f).into_iter().flat_map(|e| e.keys()) {
                if done.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        done
    }

    /// A shortest circle from `start` back to itself inside `component`, with import lines.
    fn circle_through(&self, start: &str, component: &BTreeSet<String>) -> Vec<String> {
        let mut parent: BTreeMap<String, String> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start.to_owned()]);
        while let Some(f) = queue.pop_front() {
            for next in self.edges[&f].keys().filter(|n| component.contains(*n)) {
                if next == start {
                    let mut path = vec![f.clone()];
                    while let Some(p) = parent.get(path.last().expect("non-empty")) {
                        path.push(p.clone());
                    }
                    path.reverse();
                    path.push(start.to_owned());
                    return path
                        .windows(2)
                        .map(|w| format!("{}:{}", w[0], self.edges[&w[0]][&w[1]]))
                        .chain([start.to_owned()])
                        .collect();
                }
                if next != start && !parent.contains_key(next) {
                    parent.insert(next.clone(), f.clone());
                    queue.push_back(next.clone());
                }
            }
        }
        vec![start.to_owned()]
    }

    fn upward_arrows(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (file, imports) in &self.edges {
            for (target, line) in imports {
                let (from, to) = (layer_of(file), layer_of(target));
                if to > from {
                    out.push(format!(
                        "upward arrow: {file}:{line} imports {target} (layer {} above {})",
                        LAYERS[to].join("/"),
                        LAYERS[from].join("/")
                    ));
                }
            }
        }
        out
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("readable directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn display(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    format!("src/{}", rel.to_string_lossy().replace('\\', "/"))
}

/// `src/a/b.rs` → `[a, b]`, `src/a/mod.rs` → `[a]`, `src/lib.rs` → `[]`.
fn module_of(src: &Path, file: &Path) -> Option<Vec<String>> {
    let rel = file.strip_prefix(src).ok()?;
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop()?;
    if parts.is_empty() && NOT_MODULES.contains(&last.as_str()) {
        return None;
    }
    match last.as_str() {
        "lib.rs" if parts.is_empty() => {}
        "mod.rs" => {}
        name => parts.push(name.trim_end_matches(".rs").to_owned()),
    }
    Some(parts)
}

/// The file of the longest prefix of `path` that is a module file.
fn deepest_file(modules: &BTreeMap<Vec<String>, String>, path: &[String]) -> Option<String> {
    (0..=path.len())
        .rev()
        .find_map(|n| modules.get(&path[..n]).cloned())
}

fn layer_of(file: &str) -> usize {
    let module = file
        .trim_start_matches("src/")
        .trim_end_matches(".rs")
        .trim_end_matches("/mod");
    let top = module.split('/').next().unwrap_or_default();
    LAYERS
        .iter()
        .position(|layer| layer.contains(&top))
        .unwrap_or_else(|| panic!("{file}: module `{top}` is in no layer of tests/layers.rs"))
}

#[derive(Debug, PartialEq)]
enum Token {
    Ident(String),
    Punct(char),
    PathSep,
}

/// Identifiers, `::` and single punctuation of `text`, with their lines; comments, strings,
/// character literals and lifetimes are skipped.
fn tokens(text: &str) -> Vec<(Token, usize)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let start_line = line;
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i = skip_block_comment(&chars, i, &mut line);
        } else if c == '"' {
            i = skip_string(&chars, i + 1, 0, &mut line);
        } else if (c == 'r' || c == 'b') && raw_string_hashes(&chars, i).is_some() {
            let (hashes, body) = raw_string_hashes(&chars, i).expect("checked");
            i = skip_string(&chars, body, hashes, &mut line);
        } else if c == 'b' && next == Some('"') {
            i = skip_string(&chars, i + 2, 0, &mut line);
        } else if c == '\'' {
            i = skip_quote(&chars, i);
        } else if c.is_alphanumeric() || c == '_' {
            let s = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[s..i].iter().collect();
            out.push((Token::Ident(word), start_line));
        } else if c == ':' && next == Some(':') {
            out.push((Token::PathSep, line));
            i += 2;
        } else {
            out.push((Token::Punct(c), line));
            i += 1;
        }
    }
    out
}

fn skip_block_comment(chars: &[char], mut i: usize, line: &mut usize) -> usize {
    let mut depth = 0;
    while i < chars.len() {
        match (chars[i], chars.get(i + 1)) {
            ('/', Some('*')) => {
                depth += 1;
                i += 2;
            }
            ('*', Some('/')) => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            }
            (c, _) => {
                *line += usize::from(c == '\n');
                i += 1;
            }
        }
    }
    i
}

/// `r"`, `r#"`, `br#"`…: the number of hashes and where the body starts.
fn raw_string_hashes(chars: &[char], mut i: usize) -> Option<(usize, usize)> {
    if i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_') {
        return None;
    }
    if chars[i] == 'b' {
        i += 1;
    }
    if chars.get(i) != Some(&'r') {
        return None;
    }
    i += 1;
    let mut hashes = 0;
    while chars.get(i) == Some(&'#') {
        hashes += 1;
        i += 1;
    }
    (chars.get(i) == Some(&'"')).then_some((hashes, i + 1))
}

/// From inside a string body to just after its end (`hashes` > 0: a raw string).
fn skip_string(chars: &[char], mut i: usize, hashes: usize, line: &mut usize) -> usize {
    let raw = hashes > 0 || (i >= 2 && chars[i - 2] == 'r');
    while i < chars.len() {
        match chars[i] {
            '\\' if !raw => i += 2,
            '"' if (1..=hashes).all(|h| chars.get(i + h) == Some(&'#')) => return i + 1 + hashes,
            c => {
                *line += usize::from(c == '\n');
                i += 1;
            }
        }
    }
    i
}

/// A character literal (`'a'`, `'\n'`, `'\u{1F600}'`) or a lifetime (`'a`).
fn skip_quote(chars: &[char], i: usize) -> usize {
    if chars.get(i + 1) == Some(&'\\') {
        let mut j = i + 2;
        while j < chars.len() && chars[j] != '\'' {
            j += 1;
        }
        return j + 1;
    }
    if chars.get(i + 2) == Some(&'\'') {
        return i + 3;
    }
    i + 1
}

/// Every module path `text` (the file of `module`, whose child modules are `children`) names,
/// made absolute, with its line.
fn paths_in(
    text: &str,
    module: &[String],
    children: &BTreeSet<String>,
) -> Vec<(Vec<String>, usize)> {
    let toks = tokens(text);
    let inline = inline_module_depths(&toks);
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let after_sep = i > 0 && toks[i - 1].0 == Token::PathSep;
        let is_path = toks.get(i + 1).map(|t| &t.0) == Some(&Token::PathSep);
        let base = match &toks[i].0 {
            Token::Ident(first) if is_path && !after_sep => {
                base_of(first, module, inline[i], children)
            }
            _ => None,
        };
        let Some((base, start)) = base else {
            i += 1;
            continue;
        };
        let (mut found, end) = use_tree(&toks, i + start, base);
        out.append(&mut found);
        i = end.max(i + 1);
    }
    out
}

/// Where a path starting with `first` is rooted and how many tokens of it that consumes
/// (`crate::`, `self::`, `super::`), or `None` when it names no module of ours.
fn base_of(
    first: &str,
    module: &[String],
    inline_depth: usize,
    children: &BTreeSet<String>,
) -> Option<(Vec<String>, usize)> {
    match first {
        "crate" => Some((Vec::new(), 2)),
        "self" => Some((module.to_vec(), 2)),
        // `super` inside an inline module (`mod tests`) names the file's own module.
        "super" if inline_depth > 0 => Some((module.to_vec(), 2)),
        "super" => Some((module[..module.len().saturating_sub(1)].to_vec(), 2)),
        child if children.contains(child) => Some((module.to_vec(), 0)),
        _ => None,
    }
}

/// Reads the path (or `use` tree) starting at `i` under `base`; the leaves and where it ends.
/// The caller consumed a leading `crate::`, `self::` or `super::`; further `super`s climb on.
fn use_tree(
    toks: &[(Token, usize)],
    mut i: usize,
    mut path: Vec<String>,
) -> (Vec<(Vec<String>, usize)>, usize) {
    let line = toks.get(i).map_or(0, |t| t.1);
    loop {
        match toks.get(i).map(|t| &t.0) {
            Some(Token::Ident(word)) if word == "super" => {
                path.pop();
            }
            Some(Token::Ident(word)) if word == "self" => {}
            Some(Token::Ident(word)) => path.push(word.clone()),
            Some(Token::Punct('{')) => return group(toks, i + 1, path),
            _ => return (vec![(path, line)], i),
        }
        i += 1;
        if toks.get(i).map(|t| &t.0) != Some(&Token::PathSep) {
            return (vec![(path, line)], i);
        }
        i += 1;
    }
}

/// The items of a `{…}` group of a `use` tree, each under `path`.
fn group(
    toks: &[(Token, usize)],
    mut i: usize,
    path: Vec<String>,
) -> (Vec<(Vec<String>, usize)>, usize) {
    let mut out = Vec::new();
    while i < toks.len() {
        match &toks[i].0 {
            Token::Punct('}') => return (out, i + 1),
            Token::Punct(',') => i += 1,
            Token::Ident(word) if word == "as" => i += 2,
            Token::Punct('*') => i += 1,
            Token::Ident(_) | Token::Punct('{') => {
                let (mut found, end) = use_tree(toks, i, path.clone());
                out.append(&mut found);
                i = end.max(i + 1);
            }
            _ => i += 1,
        }
    }
    (out, i)
}

/// For each token, how many inline `mod name { … }` blocks enclose it.
fn inline_module_depths(toks: &[(Token, usize)]) -> Vec<usize> {
    let mut depths = Vec::with_capacity(toks.len());
    let mut braces = 0usize;
    let mut opened: Vec<usize> = Vec::new();
    for (i, (tok, _)) in toks.iter().enumerate() {
        match tok {
            Token::Punct('{') => {
                braces += 1;
                let is_mod = i >= 2
                    && toks[i - 2].0 == Token::Ident("mod".into())
                    && matches!(toks[i - 1].0, Token::Ident(_));
                if is_mod {
                    opened.push(braces);
                }
            }
            Token::Punct('}') => {
                if opened.last() == Some(&braces) {
                    opened.pop();
                }
                braces = braces.saturating_sub(1);
            }
            _ => {}
        }
        depths.push(opened.len());
    }
    depths
}
