//! The repository explains itself: the documentation it points to exists, and stays current.
//!
//! - No comment cites a design document that is not in the repository (`DESIGN §…`, `NOTES`):
//!   the design rules the code relies on live in `docs/`.
//! - Every `docs/*.md` that code, tests, benches or the README name exists.
//! - Every environment variable the binary reads (`env = "…"` on a flag) is documented in
//!   `docs/configuration.md`.
//! - The README stays an entry point: at most 150 lines, and its links resolve.

use std::fs;
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Every file under `dir` (relative to the repository) whose name ends with one of `exts`,
/// skipping dependency and build folders.
fn files(dir: &str, exts: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![Path::new(ROOT).join(dir)];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if !matches!(name.as_str(), "node_modules" | "target" | ".git") {
                    stack.push(path);
                }
            } else if exts.iter().any(|ext| name.ends_with(ext)) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn relative(path: &Path) -> String {
    path.strip_prefix(ROOT)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The sources a reader meets: code, tests, benches, migrations, scripts, docs.
fn sources() -> Vec<PathBuf> {
    let mut all = Vec::new();
    for dir in ["src", "tests", "bench", "migrations", "docs", ".ci"] {
        all.extend(files(
            dir,
            &[".rs", ".sql", ".sh", ".md", ".js", ".graphql", "run"],
        ));
    }
    all.push(Path::new(ROOT).join("README.md"));
    all
}

#[test]
fn no_comment_cites_a_document_outside_the_repository() {
    let mut cites = Vec::new();
    for path in sources() {
        if path.ends_with("tests/docs.rs") {
            continue;
        }
        for (n, line) in read(&path).lines().enumerate() {
            if line.contains("DESIGN §") || line.contains("DESIGN.md") || line.contains(" NOTES") {
                cites.push(format!("{}:{}: {}", relative(&path), n + 1, line.trim()));
            }
        }
    }
    assert!(
        cites.is_empty(),
        "cite docs/ instead of documents outside the repository:\n{}",
        cites.join("\n")
    );
}

/// `docs/<name>.md` as named in `text`.
fn doc_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("docs/") {
        let tail = &rest[at + 5..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
            .unwrap_or(tail.len());
        let name = tail[..end].trim_end_matches('.');
        if name.ends_with(".md") {
            names.push(name.to_owned());
        }
        rest = &tail[end..];
    }
    names
}

#[test]
fn every_document_named_exists() {
    let mut missing = Vec::new();
    for path in sources() {
        for name in doc_names(&read(&path)) {
            if !Path::new(ROOT).join("docs").join(&name).is_file() {
                missing.push(format!("{} names docs/{name}", relative(&path)));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "missing documents:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_setting_is_documented() {
    let config = read(&Path::new(ROOT).join("docs/configuration.md"));
    let mut undocumented = Vec::new();
    for path in files("src", &[".rs"]) {
        let text = read(&path);
        let mut rest = text.as_str();
        while let Some(at) = rest.find("env = \"") {
            let tail = &rest[at + 7..];
            let end = tail.find('"').unwrap_or(tail.len());
            let var = &tail[..end];
            if !config.contains(&format!("`{var}`")) {
                undocumented.push(format!("{var} ({})", relative(&path)));
            }
            rest = &tail[end..];
        }
    }
    assert!(
        undocumented.is_empty(),
        "settings missing from docs/configuration.md:\n{}",
        undocumented.join("\n")
    );
}

#[test]
fn the_readme_is_an_entry_point_whose_links_resolve() {
    let readme = read(&Path::new(ROOT).join("README.md"));
    let lines = readme.lines().count();
    assert!(
        lines <= 150,
        "README.md has {lines} lines; move detail into docs/"
    );
    let mut broken = Vec::new();
    let mut rest = readme.as_str();
    while let Some(at) = rest.find("](") {
        let tail = &rest[at + 2..];
        let end = tail.find(')').unwrap_or(tail.len());
        let target = tail[..end].split('#').next().unwrap_or_default();
        if !target.is_empty() && !target.contains("://") && !Path::new(ROOT).join(target).exists() {
            broken.push(target.to_owned());
        }
        rest = &tail[end..];
    }
    assert!(
        broken.is_empty(),
        "README links to missing files: {broken:?}"
    );
}
