//! Secrets (passwords, keys, tokens) in the config.
//!
//! A secret can be written inline, read from a file (`*_file`, e.g. a systemd credential or a
//! root-only file) or from an environment variable (`*_env`). Exactly one source per secret;
//! `citygate check` reports both a missing source and a missing file or variable.

use serde::Deserialize;
use std::path::PathBuf;

/// Where a secret comes from. Embedded in config structs as `#[serde(flatten)]`-free fields:
/// `password`, `password_file`, `password_env` are mapped by the owning struct to this type.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretSource {
    Inline(String),
    File(PathBuf),
    Env(String),
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read secret file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("environment variable {0} is not set")]
    Env(String),
    #[error("secret {0} is empty")]
    Empty(String),
}

impl SecretSource {
    /// Builds the source from the three optional fields of a config struct. Returns `None`
    /// when none is set and `Err(message)` when more than one is.
    pub fn from_fields(
        name: &str,
        inline: Option<&str>,
        file: Option<&PathBuf>,
        env: Option<&str>,
    ) -> Result<Option<SecretSource>, String> {
        let set = [inline.is_some(), file.is_some(), env.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        if set > 1 {
            return Err(format!(
                "set only one of `{name}`, `{name}_file` and `{name}_env`"
            ));
        }
        Ok(if let Some(v) = inline {
            Some(SecretSource::Inline(v.to_owned()))
        } else if let Some(p) = file {
            Some(SecretSource::File(p.clone()))
        } else {
            env.map(|e| SecretSource::Env(e.to_owned()))
        })
    }

    /// Reads the secret now. File contents are trimmed of surrounding whitespace.
    pub fn resolve(&self) -> Result<String, SecretError> {
        let value = match self {
            SecretSource::Inline(v) => v.clone(),
            SecretSource::File(path) => std::fs::read_to_string(path)
                .map_err(|source| SecretError::File {
                    path: path.clone(),
                    source,
                })?
                .trim()
                .to_owned(),
            SecretSource::Env(var) => {
                std::env::var(var).map_err(|_| SecretError::Env(var.clone()))?
            }
        };
        if value.is_empty() {
            return Err(SecretError::Empty(self.describe()));
        }
        Ok(value)
    }

    /// Where the secret comes from, never its value (safe to log).
    pub fn describe(&self) -> String {
        match self {
            SecretSource::Inline(_) => "(inline)".into(),
            SecretSource::File(p) => format!("file {}", p.display()),
            SecretSource::Env(v) => format!("env {v}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_source_only() {
        let p = PathBuf::from("/x");
        assert!(SecretSource::from_fields("password", Some("a"), Some(&p), None).is_err());
        assert_eq!(
            SecretSource::from_fields("password", None, None, Some("PW")).unwrap(),
            Some(SecretSource::Env("PW".into()))
        );
        assert_eq!(
            SecretSource::from_fields("password", None, None, None).unwrap(),
            None
        );
    }

    #[test]
    fn file_is_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::write(&p, "s3cret\n").unwrap();
        assert_eq!(SecretSource::File(p).resolve().unwrap(), "s3cret");
        assert!(SecretSource::Env("CITYGATE_SURELY_UNSET_VAR".into())
            .resolve()
            .is_err());
    }
}
