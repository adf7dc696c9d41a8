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
