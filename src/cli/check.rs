//! `citygate check`: every problem at once, FILE:LINE:COL, exit 78 if any.

use crate::config::issue::ConfigIssue;
use crate::config::load::span_of;
use crate::config::report::ConfigReport;
use crate::config::{self, Config, LoadError, EXIT_CONFIG};
use crate::southbound::AdapterConfig;
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
    // Checks against this machine (files and secrets the config points at), and warnings.
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let report = adapter_issues(path, &text, &cfg, AdapterConfig::check_environment, "");
    let mut warnings = adapter_issues(path, &text, &cfg, AdapterConfig::warnings, "warning: ");
    if let Some((message, hint)) = buffer_space_warning(&cfg) {
        let span = toml::de::DeTable::parse(&text).ok().and_then(|root| {
            root.get_ref()
                .iter()
                .find(|(k, _)| k.get_ref() == "buffer")
                .map(|(_, v)| span_of(v, "max_bytes"))
        });
        warnings.push(&text, span, format!("warning: {message}"), Some(hint));
    }
    let mut report = report;
    if let (Some(nb), Ok(root)) = (&cfg.northbound, toml::de::DeTable::parse(&text)) {
        let section = root
            .get_ref()
            .iter()
            .find(|(k, _)| k.get_ref() == "northbound")
            .map(|(_, v)| v.clone());
        for issue in nb.check_environment() {
            let span = section.as_ref().map(|v| span_of(v, &issue.path));
            report.push(&text, span, issue.message, issue.hint);
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

/// Runs `issues` on every adapter and places the results in the file.
fn adapter_issues(
    path: &Path,
    text: &str,
    cfg: &Config,
    issues: fn(&AdapterConfig) -> Vec<ConfigIssue>,
    prefix: &str,
) -> ConfigReport {
    let mut report = ConfigReport::new(path);
    let Ok(root) = toml::de::DeTable::parse(text) else {
        return report;
    };
    let southbound = root
        .get_ref()
        .iter()
        .find(|(k, _)| k.get_ref() == "southbound")
        .map(|(_, v)| v.clone());
    for (id, adapter) in &cfg.southbound {
        for issue in issues(adapter) {
            let span = southbound
                .as_ref()
                .map(|v| span_of(v, &format!("{id}.{}", issue.path)));
            report.push(text, span, format!("{prefix}{}", issue.message), issue.hint);
        }
    }
    report
}

/// Bytes the buffer at `db` may still grow into: free space of its file system (for an
/// unprivileged user) plus what the database and its WAL already take. `None` when no
/// existing ancestor directory can be examined.
pub fn buffer_room(db: &Path) -> Option<u64> {
    let dir = db
        .parent()
        .into_iter()
        .flat_map(Path::ancestors)
        .find(|d| d.is_dir())?;
    let st = rustix::fs::statvfs(dir).ok()?;
    let free = st.f_bavail.saturating_mul(st.f_frsize);
    let len = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    Some(free + len(db) + len(Path::new(&wal)))
}

/// `max_bytes` larger than the file system can give: the buffer would hit a full disk (and
/// drop records under `reason="disk_full"`) before its own bound.
fn buffer_space_warning(cfg: &Config) -> Option<(String, String)> {
    let db = cfg.buffer.db_path(&cfg.gateway.state_dir());
    let room = buffer_room(&db)?;
    (cfg.buffer.max_bytes > room).then(|| {
        (
            format!(
                "buffer max_bytes = {} bytes exceeds the {} bytes free for {} on its file system",
                cfg.buffer.max_bytes,
                room,
                db.display()
            ),
            format!(
                "the disk fills before the bound is reached (records then dropped as disk_full); lower max_bytes below {room} or free space"
            ),
        )
    })
}
