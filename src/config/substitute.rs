//! Per-site values in one template: `${NAME}` in a config string is replaced by the environment
//! variable `NAME`, so one config file serves a whole fleet and each gateway differs only by its
//! environment (systemd `EnvironmentFile=`).
//!
//! - `${NAME}`: the variable; unset is an error at the `${` in the file the technician edits;
//! - `${NAME:-default}`: the default when the variable is unset or empty (as in the shell);
//! - `$${`: a literal `${`.
//!
//! Substitution happens in string values only (never in keys, comments or bare numbers), after
//! TOML parsing, so a value cannot inject TOML syntax and every position stays the template's.
//! A string that is exactly one reference (`unit = "${UNIT}"`) may stand for a number or a
//! boolean: the loader retypes it when the key wants one ([`Substitutions::retype`]).
//!
//! Secrets are not filled in this way: a reference in an inline secret key (`app_key`, …) is an
//! error, because the secret rule ([`super::secret`]) already has `NAME_env` for secrets from the
//! environment, which keeps them out of the config text and its messages.

use serde_spanned::Spanned;
use std::ops::Range;
use toml::de::{DeTable, DeValue};

/// Keys whose value is a secret written inline (see [`super::secret::SecretFields`]).
pub const SECRET_KEYS: &[&str] = &[
    "password",
    "token",
    "bindkey",
    "app_key",
    "app_s_key",
    "nwk_s_key",
    "nwk_key",
];

/// One string value of the template that contained references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Substitution {
    /// Span of the string value in the template.
    pub span: Range<usize>,
    /// The value after substitution.
    pub expanded: String,
    /// The string was exactly one reference: the value may stand for a number or a boolean.
    pub whole: bool,
    /// `(variable, value used, from its default)`, in order.
    pub vars: Vec<(String, String, bool)>,
}

/// A reference that could not be substituted, placed at its `${` in the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubstitutionError {
    /// The `${` of the reference.
    pub span: Range<usize>,
    /// The whole string value it is in (other problems there are consequences of this one).
    pub value: Range<usize>,
    pub message: String,
    pub hint: String,
}

/// Every substitution made in one config file.
#[derive(Debug, Clone, Default)]
pub struct Substitutions {
    pub list: Vec<Substitution>,
}

impl Substitutions {
    /// Replaces every reference in the string values of `root`, reading variables with
    /// `lookup`. Returns what was substituted and every reference that failed.
    pub fn expand(
        root: &mut Spanned<DeTable<'_>>,
        text: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> (Substitutions, Vec<SubstitutionError>) {
        let mut walk = Walk {
            text,
            lookup,
            subs: Substitutions::default(),
            errors: Vec::new(),
        };
        walk.table(root.get_mut(), None);
        (walk.subs, walk.errors)
    }

    /// The substitution whose string contains byte `offset` of the template.
    pub fn at(&self, offset: usize) -> Option<&Substitution> {
        self.list.iter().find(|s| s.span.contains(&offset))
    }

    /// A note for a message about the value at `offset`: which variables it came from.
    pub fn note(&self, offset: usize) -> Option<String> {
        let sub = self.at(offset)?;
        let parts: Vec<String> = sub
            .vars
            .iter()
            .map(|(name, value, default)| {
                if *default {
                    format!("{value:?} is the default of ${{{name}}}, which is not set")
                } else {
                    format!("{value:?} came from ${{{name}}}")
                }
            })
            .collect();
        Some(format!(
            "(value {:?} after substitution: {})",
            sub.expanded,
            parts.join(", ")
        ))
    }

    /// When deserializing failed at `span` and that is a whole-value reference whose value reads
    /// as a TOML integer, float or boolean, puts that typed value into `tree` and returns true
    /// (the caller tries again). `unit_id = "${UNIT}"` with `UNIT=7` becomes `unit_id = 7`.
    pub fn retype<'v>(&'v self, tree: &mut Spanned<DeValue<'v>>, span: &Range<usize>) -> bool {
        let Some(sub) = self.list.iter().find(|s| s.whole && s.span == *span) else {
            return false;
        };
        let Ok(typed) = DeValue::parse(sub.expanded.trim()) else {
            return false;
        };
        if !(typed.get_ref().is_integer()
            || typed.get_ref().is_float()
            || typed.get_ref().is_bool())
        {
            return false;
        }
        match find_mut(tree, span) {
            Some(node) if node.get_ref().is_str() => {
                *node = Spanned::new(span.clone(), typed.into_inner());
                true
            }
            _ => false,
        }
    }
}

/// The node of `tree` whose span is `span`.
fn find_mut<'t, 'v>(
    tree: &'t mut Spanned<DeValue<'v>>,
    span: &Range<usize>,
) -> Option<&'t mut Spanned<DeValue<'v>>> {
    if tree.span() == *span {
        return Some(tree);
    }
    // No pruning by span: tables made of `[[array]]` headers and dotted keys do not enclose
    // their values, and a config is small.
    match tree.get_mut() {
        DeValue::Table(t) => t.iter_mut().find_map(|(_, v)| find_mut(v, span)),
        DeValue::Array(a) => a.iter_mut().find_map(|v| find_mut(v, span)),
        _ => None,
    }
}

struct Walk<'a> {
    text: &'a str,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    subs: Substitutions,
    errors: Vec<SubstitutionError>,
}

impl Walk<'_> {
    fn table(&mut self, table: &mut DeTable<'_>, _key: Option<&str>) {
        for (k, v) in table.iter_mut() {
            let key = k.get_ref().to_string();
            self.value(v, &key);
        }
    }

    fn value(&mut self, value: &mut Spanned<DeValue<'_>>, key: &str) {
        let span = value.span();
        match value.get_mut() {
            DeValue::Table(t) => self.table(t, Some(key)),
            DeValue::Array(a) => {
                for v in a.iter_mut() {
                    self.value(v, key);
                }
            }
            DeValue::String(s) => {
                if !s.contains('$') {
                    return;
                }
                let raw = self.text.get(span.clone()).unwrap_or("");
                if let Some(expanded) = self.string(s, &span, raw, key) {
                    *s = std::borrow::Cow::Owned(expanded);
                }
            }
            _ => {}
        }
    }

    /// Expands one string; `None` when it has no reference (escapes alone are still applied).
    fn string(&mut self, s: &str, span: &Range<usize>, raw: &str, key: &str) -> Option<String> {
        let mut out = String::with_capacity(s.len());
        let mut vars = Vec::new();
        let mut changed = false;
        let mut refs = 0usize; // how many `${` were seen, to find each one in the raw text
        let mut rest = s;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let after = &rest[i..];
            if let Some(tail) = after.strip_prefix("$${") {
                out.push_str("${");
                rest = tail;
                refs += 1;
                changed = true;
                continue;
            }
            if !after.starts_with("${") {
                out.push('$');
                rest = &after[1..];
                continue;
            }
            let at = (self.position(raw, span, refs), span.clone());
            refs += 1;
            changed = true;
            let Some(end) = after.find('}') else {
                self.error(
                    at.clone(),
                    "`${` is not closed by `}`".into(),
                    "write `${NAME}`, or `$${` for a literal `${`".into(),
                );
                return None;
            };
            let inner = &after[2..end];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            if !is_name(name) {
                self.error(
                    at.clone(),
                    format!("`${{{inner}}}` is not a variable reference"),
                    "variable names are letters, digits and `_` (not starting with a digit); write `$${` for a literal `${`".into(),
                );
                return None;
            }
            if SECRET_KEYS.contains(&key) {
                self.error(
                    at.clone(),
                    format!("the secret `{key}` cannot be filled in from ${{{name}}}"),
                    format!("write `{key}_env = \"{name}\"` instead: secrets from the environment go through `{key}_env` (or `{key}_file`), which keeps them out of the config text"),
                );
                return None;
            }
            let value = (self.lookup)(name).filter(|v| default.is_none() || !v.is_empty());
            match (value, default) {
                (Some(v), _) => {
                    out.push_str(&v);
                    vars.push((name.to_owned(), v, false));
                }
                (None, Some(d)) => {
                    out.push_str(d);
                    vars.push((name.to_owned(), d.to_owned(), true));
                }
                (None, None) => {
                    self.error(
                        at,
                        format!("environment variable `{name}` is not set"),
                        format!("set {name} for citygate (systemd: `EnvironmentFile=` in a drop-in, see docs/config.md), or give a default: `${{{name}:-value}}`"),
                    );
                    return None;
                }
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        if !changed {
            return None;
        }
        if !vars.is_empty() {
            let whole = vars.len() == 1 && is_one_reference(s);
            self.subs.list.push(Substitution {
                span: span.clone(),
                expanded: out.clone(),
                whole,
                vars,
            });
        }
        Some(out)
    }

    /// Span of the `n`th `${` of the string in the raw template text (its escapes decoded the
    /// same way in all but exotic cases); the string's start otherwise.
    fn position(&self, raw: &str, span: &Range<usize>, n: usize) -> Range<usize> {
        match raw.match_indices("${").nth(n) {
            Some((i, _)) => {
                // `$${` counts as a reference position at its second `$`.
                let start = span.start + i;
                start..start + 2
            }
            None => span.clone(),
        }
    }

    fn error(&mut self, at: (Range<usize>, Range<usize>), message: String, hint: String) {
        self.errors.push(SubstitutionError {
            span: at.0,
            value: at.1,
            message,
            hint,
        });
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`, the names a shell and systemd accept.
fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The whole string is one `${…}`.
fn is_one_reference(s: &str) -> bool {
    s.starts_with("${") && s.ends_with('}') && s.find('}') == Some(s.len() - 1)
}

#[cfg(test)]
#[path = "substitute_tests.rs"]
mod tests;
