//! The allow-list entry of one writable point: what a command may write to it.
//!
//! Adapters build a [`WriteRule`] from the same keys on their point tables (a plain field list,
//! since `#[serde(flatten)]` cannot be combined with `deny_unknown_fields`), so every adapter
//! spells them the same way:
//!
//! ```toml
//! { name = "dim_level", ..., writable = true, min = 0, max = 100 }
//! { name = "mode", ..., writable = true, allowed = [0, 1, 2], idempotent = true }
//! ```
//!
//! A point without `writable = true` cannot be written by any command. `idempotent` declares
//! that writing the same value twice has the same effect as once (an absolute set point); only
//! such points are re-executed after a crash in the middle of a write.
use crate::record::Value;
use serde::Deserialize;

/// Keys a writable point adds to its point table.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, schemars::JsonSchema)]
pub struct WriteRule {
    #[serde(default)]
    pub writable: bool,
    /// Smallest value a command may write (in engineering units, before scale/offset).
    pub min: Option<f64>,
    /// Largest value a command may write.
    pub max: Option<f64>,
    /// If set, the only values a command may write.
    #[schemars(with = "Option<Vec<serde_json::Value>>")]
    pub allowed: Option<Vec<toml::Value>>,
    /// Writing the same value again is harmless (re-executed after a crash mid-write).
    #[serde(default)]
    pub idempotent: bool,
}

/// The kind of value a point holds, as the adapter knows it from its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Bool,
    /// A number; whether it fits the wire type after scale and offset is the adapter's check.
    Number,
}

impl WriteRule {
    /// Config problems of the rule itself (key path relative to the point), for `validate`.
    pub fn issues(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let limits = self.min.is_some() || self.max.is_some() || self.allowed.is_some();
        if !self.writable && (limits || self.idempotent) {
            out.push((
                "writable",
                "min, max, allowed and idempotent only apply to a point with writable = true"
                    .to_string(),
            ));
        }
        if let (Some(min), Some(max)) = (self.min, self.max) {
            if min > max {
                out.push(("min", format!("min {min} is greater than max {max}")));
            }
        }
        if let Some(allowed) = &self.allowed {
            if allowed.is_empty() {
                out.push((
                    "allowed",
                    "an empty allowed list forbids every value; remove writable instead".into(),
                ));
            }
            if let Some(bad) = allowed.iter().find(|v| rule_value(v).is_none()) {
                out.push(("allowed", format!("{bad} is not a number or boolean")));
            }
        }
        out
    }

    /// Checks `value` for a point of `kind`; the error is the `rejected` reason.
    pub fn check(&self, point: &str, kind: ValueKind, value: &Value) -> Result<(), String> {
        if !self.writable {
            return Err(format!(
                "point {point:?} is not writable (the config does not mark it writable = true)"
            ));
        }
        let number = match (kind, value) {
            (ValueKind::Bool, Value::Bool(b)) => f64::from(u8::from(*b)),
            (ValueKind::Bool, Value::I64(i @ (0 | 1))) => *i as f64,
            (ValueKind::Bool, _) => {
                return Err(format!(
                    "point {point:?} takes true or false, not {}",
                    show(value)
                ))
            }
            (ValueKind::Number, Value::I64(i)) => *i as f64,
            (ValueKind::Number, Value::F64(f)) => *f,
            (_, _) => {
                return Err(format!(
                    "point {point:?} takes a number, not {}",
                    show(value)
                ))
            }
        };
        if let Some(allowed) = &self.allowed {
            if !allowed.iter().filter_map(rule_value).any(|a| a == number) {
                return Err(format!(
                    "{} is not one of the values allowed for point {point:?}",
                    show(value)
                ));
            }
        }
        if let Some(min) = self.min.filter(|min| number < *min) {
            return Err(format!(
                "{} is below the minimum {min} of point {point:?}",
                show(value)
            ));
        }
        if let Some(max) = self.max.filter(|max| number > *max) {
            return Err(format!(
                "{} is above the maximum {max} of point {point:?}",
                show(value)
            ));
        }
        Ok(())
    }
}

fn rule_value(v: &toml::Value) -> Option<f64> {
    match v {
        toml::Value::Integer(i) => Some(*i as f64),
        toml::Value::Float(f) => Some(*f),
        toml::Value::Boolean(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

fn show(value: &Value) -> String {
    match value {
        Value::Str(s) => format!("\"{}\"", crate::telemetry::untrusted::snippet(s.as_bytes())),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

#[cfg(test)]
#[path = "rule_tests.rs"]
mod tests;
