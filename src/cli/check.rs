//! `citygate check`: every problem at once, FILE:LINE:COL, exit 78 if any. The verdict is
//! [`crate::config::check::check_str`], the same one remote config applies.

use crate::config::check::check_str;
use crate::config::EXIT_CONFIG;
use std::path::Path;
use std::process::ExitCode;

pub fn check(path: &Path) -> ExitCode {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(source) => {
            let e = crate::config::LoadError::Io {
                path: path.to_path_buf(),
                source,
            };
            eprintln!("citygate: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let checked = check_str(&text, path);
    if !checked.warnings.is_empty() {
        eprintln!("{}", checked.warnings);
    }
    let Some(cfg) = checked.config else {
        let report = checked.problems;
        eprintln!("{report}");
        eprintln!("{} problem(s) in {}", report.issues.len(), path.display());
        return ExitCode::from(EXIT_CONFIG);
    };
    if cfg.southbound.is_empty() {
        println!("{}: ok (no adapters configured)", path.display());
        return ExitCode::SUCCESS;
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
