//! `citygate check`: every problem at once, FILE:LINE:COL, exit 78 if any.

use crate::config::load::span_of;
use crate::config::report::ConfigReport;
use crate::config::{self, LoadError, EXIT_CONFIG};
use std::path::Path;
use std::process::ExitCode;

pub fn check(path: &Path) -> ExitCode {
    let cfg = match config::load(path) {
        Ok(c) => c,
        Err(LoadError::Invalid(report)) => {
            eprintln!("{report}");
            eprintln!("{} problem(s) in {}", report.issues.len(), path.display());
            return ExitCode::from(EXIT_CONFIG);
        }
        Err(e) => {
            eprintln!("citygate: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    // Checks against this machine: files and secrets the config points at.
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut report = ConfigReport::new(path);
    if let Ok(root) = toml::de::DeTable::parse(&text) {
        let sb = root
            .get_ref()
            .iter()
            .find(|(k, _)| k.get_ref() == "southbound")
            .map(|(_, v)| v.clone());
        for (id, adapter) in &cfg.southbound {
            for issue in adapter.check_environment() {
                let span = sb
                    .as_ref()
                    .map(|v| span_of(v, &format!("{id}.{}", issue.path)));
                report.push(&text, span, issue.message, issue.hint);
            }
        }
    }
    let mut warnings = ConfigReport::new(path);
    if let Ok(root) = toml::de::DeTable::parse(&text) {
        let sb = root
            .get_ref()
            .iter()
            .find(|(k, _)| k.get_ref() == "southbound")
            .map(|(_, v)| v.clone());
        for (id, adapter) in &cfg.southbound {
            for issue in adapter.warnings() {
                let span = sb
                    .as_ref()
                    .map(|v| span_of(v, &format!("{id}.{}", issue.path)));
                warnings.push(
                    &text,
                    span,
                    format!("warning: {}", issue.message),
                    issue.hint,
                );
            }
        }
    }
    if !warnings.is_empty() {
        eprintln!("{}", warnings.finish());
    }
    if !report.is_empty() {
        let report = report.finish();
        eprintln!("{report}");
        eprintln!("{} problem(s) in {}", report.issues.len(), path.display());
        return ExitCode::from(EXIT_CONFIG);
    }
    println!(
        "{}: ok ({} adapter(s): {})",
        path.display(),
        cfg.southbound.len(),
        cfg.southbound
            .iter()
            .map(|(id, a)| format!("{id} ({})", a.type_name()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    ExitCode::SUCCESS
}
