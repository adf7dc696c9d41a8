//! Guards the "one way of doing each thing" rules of docs/architecture.md: a second backoff or
//! a second secret reader coming back fails here, with the file to look at.

use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// (file, line number, line) of every non-comment line of `src/` matching `pred`, outside the
/// files in `allowed`.
fn offenders(pred: impl Fn(&str) -> bool, allowed: &[&str]) -> Vec<String> {
    let mut files = Vec::new();
    sources(Path::new("src"), &mut files);
    let mut found = Vec::new();
    for f in files {
        let name = f.to_string_lossy().replace('\\', "/");
        if allowed.iter().any(|a| name.ends_with(a)) {
            continue;
        }
        let text = std::fs::read_to_string(&f).expect("read source");
        for (i, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if !code.starts_with("//") && pred(code) {
                found.push(format!("{name}:{}: {code}", i + 1));
            }
        }
    }
    found
}

#[test]
fn one_backoff() {
    let found = offenders(
        |l| {
            l.contains("struct Backoff ")
                || l.contains("struct Backoff{")
                || l.contains("fn next_delay")
                || l.contains(" * 2).min(")
        },
        &["src/backoff.rs"],
    );
    assert!(
        found.is_empty(),
        "retry delays come from crate::backoff::Backoff only:\n{}",
        found.join("\n")
    );
}

#[test]
fn one_secret_reader() {
    let found = offenders(|l| l.contains("env::var("), &["src/config/secret.rs"]);
    assert!(
        found.is_empty(),
        "secrets are read through crate::config::secret::SecretFields only:\n{}",
        found.join("\n")
    );
}

#[test]
fn adapter_errors_are_typed() {
    let found = offenders(|l| l.contains("AdapterError(format!"), &[]);
    assert!(
        found.is_empty(),
        "an AdapterError names its kind (Config, Transport, Buffer, Io, Panic):\n{}",
        found.join("\n")
    );
}

/// The module path of a source file (`src/a/b.rs` and `src/a/b/mod.rs` → `["a", "b"]`).
fn module_of(file: &Path) -> Vec<String> {
    let rel = file.strip_prefix("src").expect("under src");
    let mut parts: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts
        .last()
        .is_some_and(|p| p == "mod" || p == "lib" || p == "main")
    {
        parts.pop();
    }
    parts
}

/// Every `crate::…` / `super::…` path in `code`, resolved to the deepest module that is a file.
fn referenced_modules(
    code: &str,
    here: &[String],
    modules: &std::collections::BTreeSet<Vec<String>>,
) -> Vec<Vec<String>> {
    let is_path_char = |c: char| c.is_alphanumeric() || c == '_' || c == ':';
    let mut out = Vec::new();
    for keyword in ["crate::", "super::"] {
        for (at, _) in code.match_indices(keyword) {
            if code[..at].chars().next_back().is_some_and(is_path_char) {
                continue; // inside a longer path (`super::super::`), counted from its start
            }
            let end = code[at..]
                .find(|c: char| !is_path_char(c))
                .map_or(code.len(), |p| at + p);
            let segs: Vec<&str> = code[at..end]
                .split("::")
                .filter(|s| !s.is_empty())
                .collect();
            let (base, rest) = if segs[0] == "crate" {
                (Vec::new(), &segs[1..])
            } else {
                let ups = segs.iter().take_while(|s| **s == "super").count();
                let mut b = here.to_vec();
                for _ in 0..ups {
                    b.pop();
                }
                (b, &segs[ups..])
            };
            let found = (0..=rest.len()).rev().find_map(|k| {
                let mut cand = base.clone();
                cand.extend(rest[..k].iter().map(|s| s.to_string()));
                modules.contains(&cand).then_some(cand)
            });
            if let Some(m) = found.filter(|m| m != here) {
                out.push(m);
            }
        }
    }
    out
}

#[test]
fn no_file_level_cycles() {
    let mut files = Vec::new();
    sources(Path::new("src"), &mut files);
    files.retain(|f| {
        let name = f.file_name().map(|n| n.to_string_lossy().into_owned());
        !name
            .is_some_and(|n| n.ends_with("_tests.rs") || n == "tests.rs" || n.starts_with("tests_"))
    });
    let modules: std::collections::BTreeSet<Vec<String>> =
        files.iter().map(|f| module_of(f)).collect();
    let mut edges: std::collections::BTreeMap<
        Vec<String>,
        std::collections::BTreeSet<Vec<String>>,
    > = Default::default();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read source");
        let body = text.split("#[cfg(test)]").next().unwrap_or("");
        let code: String = body
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let here = module_of(f);
        for m in referenced_modules(&code, &here, &modules) {
            edges.entry(here.clone()).or_default().insert(m);
        }
    }
    // A cycle shows as a module that reaches itself.
    let mut cycles = Vec::new();
    for start in edges.keys() {
        let mut seen = std::collections::BTreeSet::new();
        let mut stack: Vec<&Vec<String>> = edges[start].iter().collect();
        while let Some(m) = stack.pop() {
            if m == start {
                cycles.push(start.join("::"));
                break;
            }
            if seen.insert(m.clone()) {
                if let Some(next) = edges.get(m) {
                    stack.extend(next.iter());
                }
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "files that depend on themselves through other files (break the cycle): {cycles:?}"
    );
}
