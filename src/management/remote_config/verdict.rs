//! What a config instance from the platform asks, and whether it may have it: who wrote it
//! (`cr`), what it holds (a TOML config or a rollback request), and the verdict of `check`
//! on the TOML plus the one rule `check` does not have: no secret inline.
use super::status::{problems_of, Problem};
use crate::config::check::{adapter_issues, check_str};
use crate::config::Config;
use serde_json::Value;
use std::path::Path;

/// Longest config text accepted (a cabinet's config is a few KiB).
pub const MAX_CONFIG_BYTES: usize = 1 << 20;

/// What an instance's content (`con`) asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// A whole new config file (TOML).
    Config(String),
    /// `{"action": "rollback"}`: the previous config back.
    Rollback,
}

/// Reads `con`: a JSON object (or a string holding one) is a request, any other string is a
/// TOML config. A TOML file never starts with `{`, so the two cannot be confused.
pub fn parse_content(con: &Value) -> Result<Content, String> {
    let request = match con {
        Value::String(s) if s.trim_start().starts_with('{') => serde_json::from_str::<Value>(s)
            .map_err(|e| format!("the content starts with `{{` but is not JSON: {e}"))?,
        Value::String(s) if s.len() > MAX_CONFIG_BYTES => {
            return Err(format!(
                "the config is {} bytes; at most {MAX_CONFIG_BYTES} are accepted",
                s.len()
            ))
        }
        Value::String(s) => return Ok(Content::Config(s.clone())),
        Value::Object(_) => con.clone(),
        other => {
            return Err(format!(
                "the content is a JSON {} and neither a TOML text nor a request",
                kind(other)
            ))
        }
    };
    match request.get("action").and_then(Value::as_str) {
        Some("rollback") => Ok(Content::Rollback),
        Some(other) => Err(format!(
            "unknown action {other:?}; the only request is {{\"action\": \"rollback\"}}"
        )),
        None => Err(
            "a JSON request needs \"action\"; the only one is {\"action\": \"rollback\"}".into(),
        ),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Object(_) => "object",
    }
}

/// The creator must be one of `originators`; the CSE records it only when the platform
/// creates the instance with `"cr": null`.
pub fn authorise(creator: Option<&str>, originators: &[String]) -> Result<(), String> {
    match creator {
        None => Err("the instance names no creator (cr), so its sender cannot be checked; create it with \"cr\": null".into()),
        Some(c) if originators.iter().any(|o| o == c) => Ok(()),
        Some(c) => Err(format!(
            "{c:?} may not write this gateway's config (not in [management] remote_config_originators)"
        )),
    }
}

/// The verdict on a config text: the config, or every problem; warnings either way.
#[derive(Debug)]
pub struct Verdict {
    pub config: Option<Config>,
    pub problems: Vec<Problem>,
    pub warnings: Vec<Problem>,
}

/// Checks `text` exactly as `citygate check` would check it as the file `target` (paths
/// such as profiles resolve next to it), reporting positions in the file `name`
/// (`remote:<instance>`), then refuses inline secrets.
pub fn check_remote(text: &str, target: &Path, name: &str) -> Verdict {
    let mut checked = check_str(text, target);
    let shown = Path::new(name);
    checked.problems.file = shown.to_path_buf();
    checked.warnings.file = shown.to_path_buf();
    let warnings = problems_of(&checked.warnings);
    let Some(config) = checked.config else {
        return Verdict {
            config: None,
            problems: problems_of(&checked.problems),
            warnings,
        };
    };
    let inline = adapter_issues(
        shown,
        text,
        &config,
        |adapter| {
            adapter
                .secrets()
                .into_iter()
                .filter_map(|(table, secret)| secret.inline_refused(&table))
                .collect()
        },
        "",
    )
    .finish();
    if inline.is_empty() {
        Verdict {
            config: Some(config),
            problems: Vec::new(),
            warnings,
        }
    } else {
        Verdict {
            config: None,
            problems: problems_of(&inline),
            warnings,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_is_a_config_or_a_rollback_request() {
        assert_eq!(
            parse_content(&json!("[gateway]\nname = \"x\"\n")).unwrap(),
            Content::Config("[gateway]\nname = \"x\"\n".into())
        );
        assert_eq!(
            parse_content(&json!(" {\"action\": \"rollback\"}")).unwrap(),
            Content::Rollback
        );
        assert_eq!(
            parse_content(&json!({"action": "rollback"})).unwrap(),
            Content::Rollback
        );
        for bad in [
            json!("{\"action\": \"reboot\"}"),
            json!("{not json"),
            json!({"x": 1}),
            json!(42),
            json!(null),
            json!("x".repeat(MAX_CONFIG_BYTES + 1)),
        ] {
            assert!(parse_content(&bad).is_err(), "{bad:.40}");
        }
    }

    #[test]
    fn only_named_originators_may_write() {
        let allowed = vec!["Cplatform".to_string()];
        assert!(authorise(Some("Cplatform"), &allowed).is_ok());
        assert!(authorise(Some("Cother"), &allowed)
            .unwrap_err()
            .contains("Cother"));
        assert!(authorise(None, &allowed).unwrap_err().contains("cr"));
    }

    #[test]
    fn an_inline_secret_is_refused_at_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("citygate.toml");
        let text = format!(
            "[gateway]\nstate_dir = {:?}\n[southbound.lora]\ntype = \"lorawan_udp\"\nbind = \"127.0.0.1:1700\"\n\
             [[southbound.lora.devices]]\ndev_eui = \"0004a30b001c0530\"\n\
             otaa = {{ join_eui = \"70b3d57ed0000000\", app_key = \"2b7e151628aed2a6abf7158809cf4f3c\" }}\n",
            dir.path().join("state")
        );
        // `check` itself accepts it (with a warning): the refusal is remote config's own rule.
        assert!(check_str(&text, &target).config.is_some());
        let v = check_remote(&text, &target, "remote:cin-1");
        assert!(v.config.is_none());
        assert_eq!(v.problems.len(), 1, "{:?}", v.problems);
        let p = &v.problems[0];
        assert_eq!((p.file.as_str(), p.line), ("remote:cin-1", 8));
        assert!(p.message.contains("app_key"), "{}", p.message);
        assert!(p.hint.as_deref().unwrap().contains("app_key_file"));
    }

    #[test]
    fn a_good_config_passes_and_a_broken_one_lists_every_problem() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("citygate.toml");
        let good = format!("[gateway]\nstate_dir = {:?}\n", dir.path().join("state"));
        let v = check_remote(&good, &target, "remote:a");
        assert!(
            v.config.is_some() && v.problems.is_empty(),
            "{:?}",
            v.problems
        );
        let v = check_remote("[gateway]\nnam = 1\n[bufer]\n", &target, "remote:b");
        assert!(v.config.is_none());
        let lines: Vec<_> = v
            .problems
            .iter()
            .map(|p| (p.line, p.file.as_str()))
            .collect();
        assert_eq!(lines, [(2, "remote:b"), (3, "remote:b")]);
    }
}
