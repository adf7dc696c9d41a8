//! `[southbound.<id>] type = "replay"`

use crate::config::issue::ConfigIssue;
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize, PartialEq)]
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
        if self.repeat && self.resume {
            issues.push(
                ConfigIssue::new("repeat", "`repeat = true` needs `resume = false`")
                    .hint("a repeating replay has no end to resume from"),
            );
        }
        issues
    }

    pub fn check_environment(&self) -> Vec<ConfigIssue> {
        match std::fs::metadata(&self.file) {
            Ok(m) if m.is_file() => Vec::new(),
            Ok(_) => vec![ConfigIssue::new(
                "file",
                format!("{} is not a file", self.file.display()),
            )],
            Err(e) => {
                vec![
                    ConfigIssue::new("file", format!("cannot read {}: {e}", self.file.display()))
                        .hint("paths are relative to the working directory"),
                ]
            }
        }
    }
}
