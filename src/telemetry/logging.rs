//! Logging through `tracing`: human format on a terminal, compact for journald, JSON on request.

use serde::Deserialize;
use std::io::IsTerminal;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema, Default, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human on a terminal, compact otherwise (journald adds its own timestamps).
    #[default]
    Auto,
    Human,
    Compact,
    Json,
}

/// `[log]`
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `error`, `warn`, `info`, `debug`, `trace`, or filter directives such as
    /// `"info,citygate::southbound=debug"`. `RUST_LOG` overrides it.
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Auto,
        }
    }
}

impl LogConfig {
    pub fn validate(&self) -> Vec<crate::config::issue::ConfigIssue> {
        match EnvFilter::try_new(&self.level) {
            Ok(_) => Vec::new(),
            Err(e) => vec![crate::config::issue::ConfigIssue::new(
                "level",
                format!("invalid log level {:?}: {e}", self.level),
            )
            .hint("use error, warn, info, debug or trace")],
        }
    }
}

/// Installs the global subscriber. Safe to call twice (the second call does nothing).
pub fn init(level: &str, format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let format = match format {
        LogFormat::Auto if std::io::stderr().is_terminal() => LogFormat::Human,
        LogFormat::Auto => LogFormat::Compact,
        f => f,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // Warnings and errors are also kept for the platform (the eventLog mgmtObj).
    let problems = super::problem_log::ProblemLog::global().layer();
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .finish()
            .with(problems)
            .try_init(),
        LogFormat::Compact => builder
            .compact()
            .without_time()
            .with_ansi(false)
            .finish()
            .with(problems)
            .try_init(),
        _ => builder.finish().with(problems).try_init(),
    };
}
