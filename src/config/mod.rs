//! The TOML config a technician edits: structure, loading with precise errors, checks.
//!
//! - [`load`] reads a file and returns a [`Config`] or a [`report::ConfigReport`] listing every
//!   problem as `FILE:LINE:COL: message` with a hint;
//! - sections own their types: `[buffer]` is [`crate::buffer::BufferConfig`], `[log]` is
//!   [`crate::telemetry::logging::LogConfig`], `[southbound.<id>]` is
//!   [`crate::southbound::AdapterConfig`];
//! - validation is pure ([`issue::ConfigIssue`] with key paths); cross-section checks
//!   (resource conflicts) live in [`validate`].

pub mod check;
pub mod device_id;
pub mod issue;
pub mod load;
pub mod report;
pub mod schema;
mod schema_docs;
pub mod secret;
pub mod substitute;
pub mod units;
pub mod validate;

pub use load::{load, load_str, load_str_with_env, LoadError};

use crate::buffer::BufferConfig;
use crate::southbound::AdapterConfig;
use crate::telemetry::logging::LogConfig;
use crate::telemetry::TelemetryConfig;
use indexmap::IndexMap;
use serde::Deserialize;
use std::path::PathBuf;

/// Where the config lives when `--config` is not given (the .deb installs it there).
pub const DEFAULT_CONFIG_PATH: &str = "/etc/citygate/citygate.toml";

/// Exit code for any config error (EX_CONFIG from sysexits.h); the systemd unit sets
/// `RestartPreventExitStatus=78` so a broken config does not restart-loop.
pub const EXIT_CONFIG: u8 = 78;

/// The whole config file.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The file it was loaded from (for messages).
    pub source: PathBuf,
    pub gateway: GatewayConfig,
    pub log: LogConfig,
    pub buffer: BufferConfig,
    pub telemetry: TelemetryConfig,
    /// `[northbound]`; without it records are only buffered.
    pub northbound: Option<crate::northbound::NorthboundConfig>,
    /// Adapters by id, in file order.
    pub southbound: IndexMap<String, AdapterConfig>,
    /// `[management]`: the gateway and its devices as oneM2M nodes (off by default).
    pub management: crate::management::ManagementConfig,
}

/// `[gateway]`: who this gateway is and where it keeps its state.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// Short name of this gateway (site or cabinet), used in logs and as the default AE name.
    pub name: String,
    /// Directory for the buffer database. Default: `$STATE_DIRECTORY` when systemd sets it
    /// (`StateDirectory=citygate`), else `./citygate-state`. Relative paths are relative to the
    /// working directory.
    pub state_dir: Option<PathBuf>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            name: "citygate".into(),
            state_dir: None,
        }
    }
}

impl GatewayConfig {
    pub fn validate(&self) -> Vec<issue::ConfigIssue> {
        let mut issues = Vec::new();
        let ok = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        if self.name.is_empty() || self.name.len() > 64 || !self.name.chars().all(ok) {
            issues.push(
                issue::ConfigIssue::new("name", format!("gateway name {:?} is not usable", self.name))
                    .hint("1 to 64 letters, digits, `-` or `_` (it becomes part of oneM2M resource names)"),
            );
        }
        issues
    }

    /// The effective state directory (see [`GatewayConfig::state_dir`]).
    pub fn state_dir(&self) -> PathBuf {
        if let Some(d) = &self.state_dir {
            return d.clone();
        }
        match std::env::var_os("STATE_DIRECTORY") {
            // systemd may pass several, colon-separated; the first is ours.
            Some(v) => PathBuf::from(
                v.to_string_lossy()
                    .split(':')
                    .next()
                    .unwrap_or("citygate-state"),
            ),
            None => PathBuf::from("citygate-state"),
        }
    }
}
