//! The `writable_points` entries of a device table: profile points a command may write.
//! Only the config's shape lives here (the config types use it); what a writable point
//! allows is decided in [`super::writable`].
use crate::commands::WriteRule;
use serde::Deserialize;

/// One entry of a device's `writable_points`: a profile point commands may write.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WritablePointConfig {
    /// The profile point's `name`.
    pub point: String,
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    #[serde(default)]
    #[schemars(with = "Option<Vec<serde_json::Value>>")]
    pub allowed: Option<Vec<toml::Value>>,
    #[serde(default)]
    pub idempotent: bool,
}

impl WritablePointConfig {
    pub fn write_rule(&self) -> WriteRule {
        WriteRule {
            writable: true,
            min: self.min,
            max: self.max,
            allowed: self.allowed.clone(),
            idempotent: self.idempotent,
        }
    }
}
