//! Counters of the command dispatcher: commands by adapter and outcome, and the latency from
//! a command's creation at the CSE to its execution. The adapter is only known per command
//! (any adapter may own commandable devices), so the handle labels at the event; the registry
//! hands out the same child for the same labels.

use super::Metrics;

/// The dispatcher's handle.
#[derive(Clone)]
pub struct CommandMetrics {
    metrics: Option<Metrics>,
}

impl CommandMetrics {
    /// Counting into the daemon's registry.
    pub fn new(m: &Metrics) -> Self {
        CommandMetrics {
            metrics: Some(m.clone()),
        }
    }

    /// Counting nowhere (tests, benches).
    pub fn detached() -> Self {
        CommandMetrics { metrics: None }
    }

    /// `citygate_commands_total{adapter, outcome}`: one per command, when its result is
    /// committed.
    pub fn finished(&self, adapter: &str, outcome: &str) {
        if let Some(m) = &self.metrics {
            m.commands.with_label_values(&[adapter, outcome]).inc();
        }
    }

    /// `citygate_command_latency_seconds{adapter}`: the adapter answered `seconds` after the
    /// instance was created at the CSE.
    pub fn executed(&self, adapter: &str, seconds: f64) {
        if let Some(m) = &self.metrics {
            m.command_latency
                .with_label_values(&[adapter])
                .observe(seconds.max(0.0));
        }
    }
}
