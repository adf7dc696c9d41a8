//! Rendering config problems as `FILE:LINE:COL: message` plus a hint, all at once.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A config problem placed in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocatedIssue {
    pub line: usize,
    pub col: usize,
    pub message: String,
    pub hint: Option<String>,
}

/// Every problem found in one config file. Displayed one per line (plus hints), in file order.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigReport {
    pub file: PathBuf,
    pub issues: Vec<LocatedIssue>,
}

impl ConfigReport {
    pub fn new(file: &Path) -> Self {
        ConfigReport {
            file: file.to_path_buf(),
            issues: Vec::new(),
        }
    }

    /// Adds an issue at a byte span of `text` (the file's contents).
    pub fn push(
        &mut self,
        text: &str,
        span: Option<Range<usize>>,
        message: String,
        hint: Option<String>,
    ) {
        let (line, col) = span.map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        self.issues.push(LocatedIssue {
            line,
            col,
            message,
            hint,
        });
    }

    pub fn is_empty(&self) -> bool {
        self.issues.is_empty()
    }

    /// Sorts by position and removes exact repeats (one root cause reported twice).
    pub fn finish(mut self) -> Self {
        self.issues.sort_by_key(|a| (a.line, a.col));
        self.issues.dedup();
        self
    }
}

impl fmt::Display for ConfigReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.issues.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                issue.line,
                issue.col,
                issue.message
            )?;
            if let Some(h) = &issue.hint {
                write!(f, "\n    hint: {h}")?;
            }
        }
        Ok(())
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// "did you mean `x`?" for a misspelt name among the valid ones.
pub fn did_you_mean(given: &str, valid: &[&str]) -> Option<String> {
    valid
        .iter()
        .map(|v| (strsim::jaro_winkler(given, v), *v))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, v)| v.to_owned())
}

/// Turns serde's "unknown field `x`, expected one of `a`, `b`" (or "unknown variant") into a
/// hint naming the closest valid value and listing them all.
pub fn hint_from_serde_message(message: &str) -> Option<String> {
    let given = message.split('`').nth(1)?;
    let rest = message
        .split_once("expected one of ")
        .map(|(_, r)| r)
        .or_else(|| message.split_once("expected ").map(|(_, r)| r))?;
    let valid: Vec<&str> = rest
        .split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s)
        .collect();
    if valid.is_empty() {
        return None;
    }
    let list = valid
        .iter()
        .map(|v| format!("`{v}`"))
        .collect::<Vec<_>>()
        .join(", ");
    Some(match did_you_mean(given, &valid) {
        Some(best) => format!("did you mean `{best}`? valid: {list}"),
        None => format!("valid: {list}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let t = "a = 1\nbb = 2\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 6), (2, 1));
        assert_eq!(line_col(t, 9), (2, 4));
    }

    #[test]
    fn suggests_closest() {
        let h = hint_from_serde_message(
            "unknown variant `dorp_oldest`, expected one of `drop_oldest`, `drop_newest`, `block`",
        )
        .unwrap();
        assert!(h.starts_with("did you mean `drop_oldest`?"), "{h}");
        let h = hint_from_serde_message(
            "unknown field `max_byte`, expected one of `max_bytes`, `path`",
        )
        .unwrap();
        assert!(h.contains("`max_bytes`"), "{h}");
    }
}
