//! Loading a config file: TOML syntax, then every section on its own, then semantic checks,
//! collecting **all** problems with their FILE:LINE:COL before giving up.
//!
//! Each section (and each `[southbound.<id>]` table) is deserialized separately from the
//! span-preserving parse tree (`toml::de::DeTable`), so one mistake does not hide the others and
//! every serde error keeps its position. Validators return key paths; [`span_of`] maps them back
//! to positions.

use super::issue::ConfigIssue;
use super::report::{did_you_mean, hint_from_serde_message, ConfigReport};
use super::substitute::Substitutions;
use super::{validate, Config};
use crate::southbound::AdapterConfig;
use serde::de::DeserializeOwned;
use serde_spanned::Spanned;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::de::{DeTable, DeValue, ValueDeserializer};

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read config file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(ConfigReport),
}

/// Top-level sections, in the order the reference config shows them.
pub const SECTIONS: &[&str] = &[
    "gateway",
    "log",
    "telemetry",
    "buffer",
    "northbound",
    "southbound",
    "management",
];

/// Reads and checks a config file.
pub fn load(path: &Path) -> Result<Config, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    load_str(&text, path).map_err(LoadError::Invalid)
}

/// Parses and checks config text; `path` is only used in messages and to resolve nothing else.
/// `${NAME}` references are filled from the process environment.
pub fn load_str(text: &str, path: &Path) -> Result<Config, ConfigReport> {
    load_str_with_env(text, path, &crate::config::secret::env_value)
}

/// [`load_str`] with the variables for `${NAME}` read from `lookup` (tests, tools).
pub fn load_str_with_env(
    text: &str,
    path: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigReport> {
    let mut report = ConfigReport::new(path);
    let (mut root, syntax_errors) = DeTable::parse_recoverable(text);
    if !syntax_errors.is_empty() {
        for e in syntax_errors {
            report.push(text, e.span(), syntax_message(e.message()), None);
        }
        return Err(report.finish());
    }
    let (subs, sub_errors) = Substitutions::expand(&mut root, text, lookup);
    let mut failed = Vec::new();
    for e in sub_errors {
        report.push(text, Some(e.span), e.message, Some(e.hint));
        failed.push(e.value);
    }
    let mut cx = Loader {
        text,
        config_dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        report: &mut report,
        subs: &subs,
        failed,
    };
    let mut config = Config {
        source: path.to_path_buf(),
        ..Config::default()
    };
    for (key, value) in root.get_ref().iter() {
        match key.get_ref().as_ref() {
            "gateway" => {
                if let Some(v) = cx.section(value, super::GatewayConfig::validate) {
                    config.gateway = v;
                }
            }
            "log" => {
                if let Some(v) = cx.section(value, crate::telemetry::logging::LogConfig::validate) {
                    config.log = v;
                }
            }
            "telemetry" => {
                if let Some(v) = cx.section(value, crate::telemetry::TelemetryConfig::validate) {
                    config.telemetry = v;
                }
            }
            "buffer" => {
                if let Some(v) = cx.section(value, crate::buffer::BufferConfig::validate) {
                    config.buffer = v;
                }
            }
            "northbound" => {
                if let Some(v) = cx.section(value, crate::northbound::NorthboundConfig::validate) {
                    config.northbound = Some(v);
                }
            }
            "southbound" => config.southbound = cx.southbound(value),
            "management" => {
                if let Some(v) = cx.section(value, crate::management::ManagementConfig::validate) {
                    if v.enabled && !root.get_ref().contains_key("northbound") {
                        cx.push(
                            Some(span_of(value, "enabled")),
                            "[management] enabled = true needs a [northbound] section.".into(),
                            Some("the node and its mgmtObjs go to the CSE of [northbound]".into()),
                        );
                    }
                    if v.allow_restart && !commands_enabled(root.get_ref()) {
                        cx.push(
                            Some(span_of(value, "allow_restart")),
                            "[management] allow_restart = true needs [northbound.commands] enabled = true.".into(),
                            Some("the reboot request reaches the gateway as a notification, the way commands do (docs/management.md)".into()),
                        );
                    }
                    if v.remote_config && !commands_enabled(root.get_ref()) {
                        cx.push(
                            Some(span_of(value, "remote_config")),
                            "[management] remote_config = true needs [northbound.commands] enabled = true.".into(),
                            Some("a new config reaches the gateway as a notification, the way commands do (docs/management.md)".into()),
                        );
                    }
                    config.management = v;
                }
            }
            other => {
                let hint = match did_you_mean(other, SECTIONS) {
                    Some(s) => format!("did you mean `[{s}]`? sections: {}", SECTIONS.join(", ")),
                    None => format!("sections: {}", SECTIONS.join(", ")),
                };
                cx.push(
                    Some(key.span()),
                    format!("unknown section `{other}`"),
                    Some(hint),
                );
            }
        }
    }
    if cx.report.is_empty() {
        let spans = AdapterSpans(&root);
        for (id, issue) in validate::cross_checks(&config) {
            let span = match &id {
                Some(id) => spans.adapter(id, &issue.path),
                None => root.span(),
            };
            cx.push(Some(span), issue.message, issue.hint);
        }
    }
    if report.is_empty() {
        Ok(config)
    } else {
        Err(report.finish())
    }
}

/// `[northbound.commands] enabled = true` in the parse tree (other sections may need it).
fn commands_enabled(root: &DeTable<'_>) -> bool {
    let Some(DeValue::Table(nb)) = root.get("northbound").map(Spanned::get_ref) else {
        return false;
    };
    let Some(DeValue::Table(commands)) = nb.get("commands").map(Spanned::get_ref) else {
        return false;
    };
    match commands.get("enabled").map(Spanned::get_ref) {
        Some(DeValue::Boolean(b)) => *b,
        // `enabled = "${COMMANDS}"`: the substituted text, read as the boolean it stands for.
        Some(DeValue::String(s)) => s.trim() == "true",
        _ => false,
    }
}

/// The toml parser says "invalid …"; keep its words but make the first letter consistent.
fn syntax_message(m: &str) -> String {
    format!("TOML syntax error: {}", m.trim_end())
}

struct Loader<'a, 'r> {
    text: &'a str,
    /// Device profiles are looked up in `<config_dir>/profiles/`.
    config_dir: PathBuf,
    report: &'r mut ConfigReport,
    /// The `${NAME}` substitutions made, to say where a bad value came from.
    subs: &'a Substitutions,
    /// String values whose substitution failed (already reported; what follows from them is not).
    failed: Vec<Range<usize>>,
}

impl Loader<'_, '_> {
    fn push(&mut self, span: Option<Range<usize>>, message: String, hint: Option<String>) {
        let at = span.as_ref().map(|s| s.start);
        if at.is_some_and(|at| self.failed.iter().any(|f| f.contains(&at))) {
            return;
        }
        let message = match at.and_then(|at| self.subs.note(at)) {
            Some(note) => format!("{message} {note}"),
            None => message,
        };
        self.report.push(self.text, span, message, hint);
    }

    /// Deserializes one section and validates it. Returns `None` if anything was wrong.
    ///
    /// serde stops at the first error, so after each error the offending key is taken out
    /// and the section deserialized again: a technician sees every bad key in one run, and the
    /// validator still checks what is left.
    fn section<T: DeserializeOwned>(
        &mut self,
        value: &Spanned<DeValue<'_>>,
        validate: impl Fn(&T) -> Vec<ConfigIssue>,
    ) -> Option<T> {
        self.section_with(value, value, |de| T::deserialize(de), validate)
    }

    /// The retry loop behind [`Loader::section`]; `origin` is what validator paths are
    /// relative to.
    fn section_with<T>(
        &mut self,
        value: &Spanned<DeValue<'_>>,
        origin: &Spanned<DeValue<'_>>,
        de: impl Fn(ValueDeserializer<'_>) -> Result<T, toml::de::Error>,
        validate: impl Fn(&T) -> Vec<ConfigIssue>,
    ) -> Option<T> {
        let subs = self.subs;
        let mut current = value.clone();
        let mut clean = true;
        for _ in 0..32 {
            let fallback = current.span();
            match de(ValueDeserializer::from(current.clone())) {
                Ok(v) => {
                    let issues = validate(&v);
                    clean &= issues.is_empty();
                    self.issues(origin, "", issues);
                    return clean.then_some(v);
                }
                Err(e) => {
                    let span = e.span().unwrap_or(fallback.clone());
                    // `unit_id = "${UNIT}"`: the key wants a number; try the value as one.
                    if subs.retype(&mut current, &span) {
                        continue;
                    }
                    clean = false;
                    let full = e.message().trim_end();
                    let hint = hint_from_serde_message(full);
                    // The valid names move to the hint; the message stays one short sentence.
                    let message = match (&hint, full.split_once(", expected")) {
                        (Some(_), Some((head, _))) => head.to_owned(),
                        _ => full.to_owned(),
                    };
                    self.push(Some(span.clone()), message, hint);
                    if !remove_key_at(&mut current, span.start) {
                        return None;
                    }
                }
            }
        }
        None
    }

    /// Records validator issues, mapping their key paths below `value` to positions.
    fn issues(&mut self, value: &Spanned<DeValue<'_>>, prefix: &str, issues: Vec<ConfigIssue>) {
        for issue in issues {
            let path = join(prefix, &issue.path);
            self.push(Some(span_of(value, &path)), issue.message, issue.hint);
        }
    }

    /// `[southbound.<id>]` tables: dispatch on `type`, deserialize the rest into that variant.
    fn southbound(
        &mut self,
        value: &Spanned<DeValue<'_>>,
    ) -> indexmap::IndexMap<String, AdapterConfig> {
        let mut out = indexmap::IndexMap::new();
        let Some(table) = value.get_ref().as_table() else {
            self.push(
                Some(value.span()),
                "`southbound` must be a table of adapters".into(),
                Some("write each adapter as `[southbound.<id>]` with a `type` key".into()),
            );
            return out;
        };
        for (id, entry) in table.iter() {
            let id_str = id.get_ref().to_string();
            if let Some(problem) = check_id(&id_str) {
                self.push(
                    Some(id.span()),
                    problem,
                    Some("use letters, digits, `-` and `_`".into()),
                );
            }
            let Some(fields) = entry.get_ref().as_table() else {
                self.push(
                    Some(entry.span()),
                    format!("`southbound.{id_str}` must be a table"),
                    Some(format!(
                        "write it as `[southbound.{id_str}]` with a `type` key"
                    )),
                );
                continue;
            };
            let type_entry = fields.iter().find(|(k, _)| k.get_ref() == "type");
            let Some((type_key, type_value)) = type_entry else {
                self.push(
                    Some(entry.span()),
                    format!("adapter `{id_str}` has no `type`"),
                    Some(format!(
                        "add `type = \"…\"`, one of: {}",
                        AdapterConfig::TYPES.join(", ")
                    )),
                );
                continue;
            };
            let Some(type_name) = type_value.get_ref().as_str() else {
                self.push(
                    Some(type_value.span()),
                    "`type` must be a string".into(),
                    None,
                );
                continue;
            };
            if !AdapterConfig::TYPES.contains(&type_name) {
                let hint = match did_you_mean(type_name, AdapterConfig::TYPES) {
                    Some(s) => format!(
                        "did you mean `{s}`? types: {}",
                        AdapterConfig::TYPES.join(", ")
                    ),
                    None => format!("types: {}", AdapterConfig::TYPES.join(", ")),
                };
                self.push(
                    Some(type_value.span()),
                    format!("unknown adapter type `{type_name}`"),
                    Some(hint),
                );
                continue;
            }
            let mut rest: DeTable<'_> = fields.clone();
            rest.remove(&type_key.clone());
            let rest = Spanned::new(entry.span(), DeValue::Table(rest));
            let type_name = type_name.to_owned();
            let self_dir = self.config_dir.clone();
            let parsed = self.section_with(
                &rest,
                entry,
                |de| {
                    AdapterConfig::deserialize_typed(&type_name, de).map(|mut c| {
                        c.prepare(&self_dir);
                        c
                    })
                },
                AdapterConfig::validate,
            );
            if let Some(cfg) = parsed {
                out.insert(id_str, cfg);
            }
        }
        out
    }
}

/// Removes the key of `table` whose key or value contains byte `offset`. Returns whether a key
/// was removed (the retry loop stops otherwise).
fn remove_key_at(table: &mut Spanned<DeValue<'_>>, offset: usize) -> bool {
    let DeValue::Table(t) = table.get_mut() else {
        return false;
    };
    let hit = t
        .iter()
        .find(|(k, v)| {
            k.span().contains(&offset) || v.span().contains(&offset) || k.span().start == offset
        })
        .map(|(k, _)| k.clone());
    match hit {
        Some(k) => t.remove(&k).is_some(),
        None => false,
    }
}

/// Adapter ids become metric labels and container names: keep them tame.
fn check_id(id: &str) -> Option<String> {
    if id.is_empty() || id.len() > 64 {
        return Some(format!("adapter id `{id}` must be 1 to 64 characters"));
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Some(format!(
            "adapter id `{id}` contains characters other than letters, digits, `-`, `_`"
        ));
    }
    None
}

fn join(prefix: &str, path: &str) -> String {
    match (prefix.is_empty(), path.is_empty()) {
        (true, _) => path.to_owned(),
        (_, true) => prefix.to_owned(),
        _ => format!("{prefix}.{path}"),
    }
}

/// Finds the span of the value at a dotted key path (`devices.2.address`); stops at the deepest
/// part that exists, so a missing key points at its table.
pub fn span_of(value: &Spanned<DeValue<'_>>, path: &str) -> Range<usize> {
    let mut current = value;
    for seg in path.split('.').filter(|s| !s.is_empty()) {
        let next = match current.get_ref() {
            DeValue::Table(t) => t.iter().find(|(k, _)| k.get_ref() == seg).map(|(_, v)| v),
            DeValue::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        };
        match next {
            Some(v) => current = v,
            None => break,
        }
    }
    current.span()
}

/// Locates `[southbound.<id>]` tables for cross-section checks.
struct AdapterSpans<'a, 'i>(&'a Spanned<DeTable<'i>>);

impl AdapterSpans<'_, '_> {
    fn adapter(&self, id: &str, path: &str) -> Range<usize> {
        let root = self.0;
        let sb = root
            .get_ref()
            .iter()
            .find(|(k, _)| k.get_ref() == "southbound");
        match sb {
            Some((_, v)) => span_of(v, &join(id, path)),
            None => root.span(),
        }
    }
}
