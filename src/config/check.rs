//! What `citygate check` decides about a config, as a value: every problem placed in the file
//! (FILE:LINE:COL), the warnings, and the config when there is no problem.
//!
//! One function for every caller: `citygate check` prints it, remote config
//! (`crate::management::remote_config`) sends it to the platform. Beyond loading
//! ([`super::load_str`]), it checks against this machine: files and secrets the config points
//! at, and the room for the buffer.

use super::issue::ConfigIssue;
use super::load::span_of;
use super::report::ConfigReport;
use super::{load_str, Config};
use crate::southbound::AdapterConfig;
use serde_spanned::Spanned;
use std::path::Path;
use toml::de::{DeTable, DeValue};

/// The verdict of `check` on one config text.
#[derive(Debug)]
pub struct Checked {
    /// The config, when `problems` is empty.
    pub config: Option<Config>,
    /// What makes the config unusable (sorted by position).
    pub problems: ConfigReport,
    /// Allowed but worth a second look (messages start with `warning: `).
    pub warnings: ConfigReport,
}

/// Checks config `text` as if it were the file `path` (profiles are looked up next to it).
pub fn check_str(text: &str, path: &Path) -> Checked {
    let cfg = match load_str(text, path) {
        Ok(c) => c,
        Err(report) => {
            return Checked {
                config: None,
                problems: report,
                warnings: ConfigReport::new(path),
            }
        }
    };
    let root = DeTable::parse(text).ok();
    let mut report = adapter_issues(path, text, &cfg, AdapterConfig::check_environment, "");
    let mut warnings = adapter_issues(path, text, &cfg, AdapterConfig::warnings, "warning: ");
    if let Some((message, hint)) = buffer_space_warning(&cfg) {
        let span = section(root.as_ref(), "buffer").map(|v| span_of(v, "max_bytes"));
        warnings.push(text, span, format!("warning: {message}"), Some(hint));
    }
    if let Some(nb) = &cfg.northbound {
        let sect = section(root.as_ref(), "northbound");
        for issue in nb.check_environment() {
            let span = sect.map(|v| span_of(v, &issue.path));
            report.push(text, span, issue.message, issue.hint);
        }
    }
    let problems = report.finish();
    Checked {
        config: problems.is_empty().then_some(cfg),
        problems,
        warnings: warnings.finish(),
    }
}

/// The parse tree of a top-level section.
fn section<'a, 'i>(
    root: Option<&'a Spanned<DeTable<'i>>>,
    name: &str,
) -> Option<&'a Spanned<DeValue<'i>>> {
    root?
        .get_ref()
        .iter()
        .find(|(k, _)| k.get_ref() == name)
        .map(|(_, v)| v)
}

/// Runs `issues` on every adapter and places the results in the file.
pub fn adapter_issues(
    path: &Path,
    text: &str,
    cfg: &Config,
    issues: impl Fn(&AdapterConfig) -> Vec<ConfigIssue>,
    prefix: &str,
) -> ConfigReport {
    let mut report = ConfigReport::new(path);
    let root = DeTable::parse(text).ok();
    let southbound = section(root.as_ref(), "southbound");
    for (id, adapter) in &cfg.southbound {
        for issue in issues(adapter) {
            let span = southbound.map(|v| span_of(v, &format!("{id}.{}", issue.path)));
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
