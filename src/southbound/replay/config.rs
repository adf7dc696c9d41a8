//! `[southbound.<id>] type = "replay"`

use crate::config::issue::ConfigIssue;
use crate::config::units;
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReplayConfig {
    /// The JSON-lines file to read.
    pub file: PathBuf,
    /// Records per second; 0 = as fast as the buffer takes them.
    #[serde(default = "default_rate")]
    pub rate: f64,
    /// Start again at the top when the file ends (for demos and soak tests).
    #[serde(default)]
    pub repeat: bool,
    /// Remember how far the file was replayed (in the buffer's state) so a restart continues
    /// instead of injecting the same lines again.
    #[serde(default = "yes")]
    pub resume: bool,
    /// Longest line accepted (`"1MiB"`); a longer one is skipped and counted, never held whole
    /// in memory. Zero bytes around a line's content do not count.
    #[serde(default = "default_max_line_bytes", deserialize_with = "units::size")]
    #[schemars(with = "crate::config::units::SizeText")]
    pub max_line_bytes: u64,
}

/// Default `max_line_bytes`: far above any real record, far below a cabinet's memory.
pub const DEFAULT_MAX_LINE_BYTES: u64 = 1 << 20;
/// Bounds of `max_line_bytes`: the shortest useful record, and what one record may cost.
pub const MIN_MAX_LINE_BYTES: u64 = 64;
pub const MAX_MAX_LINE_BYTES: u64 = 16 << 20;

fn default_max_line_bytes() -> u64 {
    DEFAULT_MAX_LINE_BYTES
}

fn default_rate() -> f64 {
    10.0
}

fn yes() -> bool {
    true
}

impl ReplayConfig {
    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        if self.file.as_os_str().is_empty() {
            issues.push(
                ConfigIssue::new("file", "`file` is empty").hint("the path of a .jsonl capture"),
            );
        }
        if !self.rate.is_finite() || self.rate < 0.0 {
            issues.push(
                ConfigIssue::new("rate", format!("rate = {} is not a usable rate", self.rate))
                    .hint("records per second, 0 for as fast as possible"),
            );
        }
        if !(MIN_MAX_LINE_BYTES..=MAX_MAX_LINE_BYTES).contains(&self.max_line_bytes) {
            issues.push(
                ConfigIssue::new(
                    "max_line_bytes",
                    format!("max_line_bytes = {} is out of range", self.max_line_bytes),
                )
                .hint("between \"64B\" and \"16MiB\"; the default \"1MiB\" suits any real capture"),
            );
        }
        if self.repeat && self.resume {
            issues.push(
                ConfigIssue::new("repeat", "`repeat = true` needs `resume = false`")
                    .hint("a repeating replay has no end to resume from"),
            );
        }
        issues
    }

    /// Whether `file` is a regular file this process can see (`check`, `run` and the adapter
    /// itself ask). A FIFO or a device such as `/dev/zero` never ends and is refused.
    pub fn check_environment(&self) -> Vec<ConfigIssue> {
        match std::fs::metadata(&self.file) {
            Ok(m) if m.is_file() => Vec::new(),
            Ok(_) => vec![ConfigIssue::new(
                "file",
                format!("{} is not a regular file", self.file.display()),
            )
            .hint("replay reads a captured .jsonl file, not a directory, FIFO or device")],
            Err(e) => {
                vec![
                    ConfigIssue::new("file", format!("cannot read {}: {e}", self.file.display()))
                        .hint("paths are relative to the working directory"),
                ]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &str) -> ReplayConfig {
        toml::from_str(&format!("file = \"capture.jsonl\"\n{extra}")).unwrap()
    }

    #[test]
    fn max_line_bytes_has_a_default_takes_units_and_is_bounded() {
        assert_eq!(parse("").max_line_bytes, DEFAULT_MAX_LINE_BYTES);
        assert_eq!(parse("max_line_bytes = \"64KiB\"").max_line_bytes, 64 << 10);
        let c = parse("max_line_bytes = \"64KiB\"\nresume = true");
        assert!(c.validate().is_empty());
        for bad in ["max_line_bytes = 0", "max_line_bytes = \"1GiB\""] {
            let issues = parse(bad).validate();
            assert_eq!(issues.len(), 1, "{bad}");
            assert_eq!(issues[0].path, "max_line_bytes");
        }
    }

    #[test]
    fn only_regular_files_are_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = parse("");
        c.file = dir.path().to_path_buf();
        let issues = c.check_environment();
        assert_eq!(issues.len(), 1);
        assert!(issues[0].message.contains("is not a regular file"));
        c.file = "/dev/zero".into();
        assert_eq!(c.check_environment().len(), 1);
        c.file = dir.path().join("capture.jsonl");
        std::fs::write(&c.file, "").unwrap();
        assert!(c.check_environment().is_empty());
    }
}
