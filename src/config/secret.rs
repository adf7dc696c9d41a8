//! The one rule for every secret in the config (CSE passwords and tokens, broker passwords,
//! LoRaWAN session and root keys, BTHome bindkeys).
//!
//! A secret called `NAME` comes from **exactly one** of:
//! - `NAME_file`: a file holding it (recommended: a root-only file outside the config),
//! - `NAME_env`: an environment variable holding it (systemd `Environment=`/`LoadCredential=`),
//! - `NAME`: the value inline, only where the section allows it (`check` warns about it).
//!
//! The value read is trimmed of surrounding whitespace (so `echo secret > file` works) and must
//! not be empty. Giving two sources is an error, never "the first one wins". Validation
//! ([`SecretFields::issues`]) is pure; reading ([`SecretFields::read`]) touches the file system
//! and the environment and runs in `check` and when a component is built.

use super::issue::ConfigIssue;
use std::path::{Path, PathBuf};

/// The config fields of one secret, borrowed from a config section.
#[derive(Debug, Clone, Copy)]
pub struct SecretFields<'a> {
    /// The key name without suffix (`"password"`, `"app_key"`).
    pub name: &'static str,
    /// Whether this section accepts the value inline (`NAME = "..."`).
    pub inline_allowed: bool,
    pub inline: Option<&'a str>,
    pub file: Option<&'a Path>,
    pub env: Option<&'a str>,
}

/// Where a secret comes from, once the choice is known to be unambiguous.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretSource<'a> {
    Inline(&'a str),
    File(&'a Path),
    Env(&'a str),
}

/// Why a secret could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("more than one source is given for `{0}`")]
    Choice(&'static str),
    #[error("no `{0}` is given: set `{0}_file` or `{0}_env`")]
    Missing(&'static str),
    #[error("cannot read secret file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("environment variable {0} is not set (or not UTF-8)")]
    Env(String),
    #[error("the secret from {0} is empty")]
    Empty(String),
}

impl<'a> SecretFields<'a> {
    /// Fields of a secret that has no inline form (`NAME_file` / `NAME_env` only).
    pub fn external(name: &'static str, file: Option<&'a PathBuf>, env: Option<&'a str>) -> Self {
        SecretFields {
            name,
            inline_allowed: false,
            inline: None,
            file: file.map(PathBuf::as_path),
            env,
        }
    }

    /// Fields of a secret that may also be written inline.
    pub fn with_inline(
        name: &'static str,
        inline: Option<&'a str>,
        file: Option<&'a PathBuf>,
        env: Option<&'a str>,
    ) -> Self {
        SecretFields {
            inline_allowed: true,
            inline,
            ..SecretFields::external(name, file, env)
        }
    }

    /// The keys a technician may use, for messages.
    fn choices(&self) -> String {
        let n = self.name;
        if self.inline_allowed {
            format!("`{n}_file`, `{n}_env` or `{n}`")
        } else {
            format!("`{n}_file` or `{n}_env`")
        }
    }

    /// True when any of the fields is set.
    pub fn given(&self) -> bool {
        self.inline.is_some() || self.file.is_some() || self.env.is_some()
    }

    /// The chosen source: `Ok(None)` when none is given, an error when more than one is.
    pub fn source(&self) -> Result<Option<SecretSource<'a>>, SecretError> {
        match (self.inline, self.file, self.env) {
            (None, None, None) => Ok(None),
            (Some(v), None, None) => Ok(Some(SecretSource::Inline(v))),
            (None, Some(f), None) => Ok(Some(SecretSource::File(f))),
            (None, None, Some(e)) => Ok(Some(SecretSource::Env(e))),
            _ => Err(SecretError::Choice(self.name)),
        }
    }

    /// The config key of the chosen source (`password_file`), or the bare name.
    pub fn key(&self) -> String {
        match self.source() {
            Ok(Some(SecretSource::File(_))) => format!("{}_file", self.name),
            Ok(Some(SecretSource::Env(_))) => format!("{}_env", self.name),
            _ => self.name.to_owned(),
        }
    }

    /// Pure checks, for `validate`: the choice, an empty file path, a malformed variable name.
    /// `table` is the key path of the table holding the fields ("" for the section itself).
    pub fn issues(&self, table: &str, required: bool) -> Vec<ConfigIssue> {
        let at = |key: String| {
            if table.is_empty() {
                key
            } else {
                format!("{table}.{key}")
            }
        };
        let name = self.name;
        let mut issues = Vec::new();
        match self.source() {
            Err(_) => issues.push(
                ConfigIssue::new(
                    at(name.to_owned()),
                    format!("Give exactly one of {}.", self.choices()),
                )
                .hint(format!("keep one, e.g. {name}_file = \"/etc/citygate/{name}\"")),
            ),
            Ok(None) if required => issues.push(
                ConfigIssue::new(
                    at(name.to_owned()),
                    format!("A secret `{name}` is required here."),
                )
                .hint(format!(
                    "{name}_file = \"/etc/citygate/{name}\" (a root-only file) or {name}_env = \"VAR\""
                )),
            ),
            Ok(_) => {}
        }
        if self.file.is_some_and(|f| f.as_os_str().is_empty()) {
            issues.push(ConfigIssue::new(
                at(format!("{name}_file")),
                "The secret file path is empty.",
            ));
        }
        if let Some(var) = self.env {
            if var.is_empty() || var.contains(['=', '\0']) {
                issues.push(ConfigIssue::new(
                    at(format!("{name}_env")),
                    format!("`{var}` is not an environment variable name."),
                ));
            }
        }
        if self.inline.is_some_and(|v| v.trim().is_empty()) {
            issues.push(ConfigIssue::new(
                at(name.to_owned()),
                "The secret is empty.",
            ));
        }
        issues
    }

    /// Reads the secret: `Ok(None)` when none is given. Trimmed; empty is an error.
    pub fn read(&self) -> Result<Option<String>, SecretError> {
        let Some(source) = self.source()? else {
            return Ok(None);
        };
        let (raw, from) = match source {
            SecretSource::Inline(v) => (v.to_owned(), format!("`{}`", self.name)),
            SecretSource::File(path) => (
                std::fs::read_to_string(path).map_err(|source| SecretError::File {
                    path: path.to_path_buf(),
                    source,
                })?,
                format!("file {}", path.display()),
            ),
            SecretSource::Env(var) => (
                std::env::var(var).map_err(|_| SecretError::Env(var.to_owned()))?,
                format!("environment variable {var}"),
            ),
        };
        let value = raw.trim();
        if value.is_empty() {
            return Err(SecretError::Empty(from));
        }
        Ok(Some(value.to_owned()))
    }

    /// For a config that arrives over the network (remote config): a secret written inline
    /// travels through the platform and is refused; it must stay in a file (or the
    /// environment) on the gateway. The issue sits at the inline key.
    pub fn inline_refused(&self, table: &str) -> Option<ConfigIssue> {
        self.inline?;
        let name = self.name;
        let key = if table.is_empty() {
            name.to_owned()
        } else {
            format!("{table}.{name}")
        };
        Some(
            ConfigIssue::new(
                key,
                format!("The secret `{name}` is written inline; a remote config may not carry secrets."),
            )
            .hint(format!(
                "put the secret in a root-only file on the gateway and write {name}_file = \"/etc/citygate/{name}\""
            )),
        )
    }

    /// Reads a secret that must be there.
    pub fn read_required(&self) -> Result<String, SecretError> {
        self.read()?.ok_or(SecretError::Missing(self.name))
    }

    /// For `check` on the machine: reads the secret and runs `parse` on it; a failure becomes
    /// an issue at the key of the chosen source. An ambiguous or missing choice is `validate`'s
    /// to report, so it is not repeated here.
    pub fn check_environment(
        &self,
        table: &str,
        parse: impl FnOnce(&str) -> Result<(), String>,
    ) -> Option<ConfigIssue> {
        if self.source().is_err() {
            return None;
        }
        let key = if table.is_empty() {
            self.key()
        } else {
            format!("{table}.{}", self.key())
        };
        match self.read() {
            Ok(None) => None,
            Ok(Some(v)) => parse(&v).err().map(|m| ConfigIssue::new(key, m)),
            Err(e) => Some(ConfigIssue::new(key, e.to_string())),
        }
    }
}

/// The one place the config reads the process environment: secrets named by `NAME_env`
/// (above) and `${NAME}` per-site values (`crate::config::substitute`). An unset or non-UTF-8
/// variable is `None`.
pub fn env_value(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields<'a>(
        inline: Option<&'a str>,
        file: Option<&'a PathBuf>,
        env: Option<&'a str>,
    ) -> SecretFields<'a> {
        SecretFields::with_inline("app_key", inline, file, env)
    }

    #[test]
    fn exactly_one_source() {
        let f = PathBuf::from("/k");
        assert!(matches!(fields(None, None, None).source(), Ok(None)));
        assert!(matches!(
            fields(Some("x"), Some(&f), None).source(),
            Err(SecretError::Choice("app_key"))
        ));
        assert!(matches!(
            fields(None, Some(&f), Some("V")).source(),
            Err(SecretError::Choice(_))
        ));
        let issues = fields(None, Some(&f), Some("V")).issues("devices.0.otaa", false);
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].path, "devices.0.otaa.app_key");
        assert!(
            issues[0].message.starts_with("Give exactly one of"),
            "{}",
            issues[0].message
        );
    }

    #[test]
    fn required_and_malformed() {
        let empty = PathBuf::new();
        let i = fields(None, None, None).issues("", true);
        assert_eq!(i[0].path, "app_key");
        let i = fields(None, Some(&empty), None).issues("", true);
        assert_eq!(i[0].path, "app_key_file");
        let i = fields(None, None, Some("A=B")).issues("", true);
        assert_eq!(i[0].path, "app_key_env");
        let i = fields(Some("  "), None, None).issues("", true);
        assert_eq!(i[0].message, "The secret is empty.");
    }

    #[test]
    fn read_trims_and_refuses_empty() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good");
        std::fs::write(&good, "  s3cret \r\n").unwrap();
        assert_eq!(
            fields(None, Some(&good), None).read().unwrap().as_deref(),
            Some("s3cret")
        );
        let blank = dir.path().join("blank");
        std::fs::write(&blank, "\n").unwrap();
        assert!(matches!(
            fields(None, Some(&blank), None).read(),
            Err(SecretError::Empty(_))
        ));
        let missing = dir.path().join("missing");
        assert!(matches!(
            fields(None, Some(&missing), None).read(),
            Err(SecretError::File { .. })
        ));
        assert!(matches!(
            fields(None, None, Some("CITYGATE_TEST_SURELY_UNSET_VAR")).read(),
            Err(SecretError::Env(_))
        ));
        assert!(matches!(
            fields(None, None, None).read_required(),
            Err(SecretError::Missing(_))
        ));
    }

    #[test]
    fn inline_secrets_are_refused_for_remote_config() {
        let f = PathBuf::from("/etc/citygate/k");
        let issue = fields(Some("00112233"), None, None)
            .inline_refused("devices.0.otaa")
            .unwrap();
        assert_eq!(issue.path, "devices.0.otaa.app_key");
        assert!(issue.message.contains("inline"), "{}", issue.message);
        assert!(fields(None, Some(&f), None).inline_refused("").is_none());
        assert!(fields(None, None, Some("KEY")).inline_refused("").is_none());
    }

    #[test]
    fn check_environment_points_at_the_chosen_key() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("k");
        std::fs::write(&f, "zz").unwrap();
        let issue = fields(None, Some(&f), None)
            .check_environment("devices.1.abp", |v| Err(format!("{v} is not hex")))
            .unwrap();
        assert_eq!(issue.path, "devices.1.abp.app_key_file");
        assert_eq!(issue.message, "zz is not hex");
    }
}
