//! What `/readyz`, `/status` and the systemd watchdog judge the pipeline by.

use serde::Serialize;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

/// State of the northbound link, as the syncer reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NorthboundState {
    /// No `[northbound]` section: records are only buffered.
    Disabled,
    /// Starting: registering the AE.
    Connecting,
    /// Registered and delivering.
    Syncing,
    /// The CSE is unreachable or failing; retrying with backoff.
    Retrying,
    /// The CSE refused our credentials or originator: a person has to act.
    AuthRefused,
}

impl NorthboundState {
    /// Every state, for `citygate_northbound_state{state}`.
    pub const ALL: [NorthboundState; 5] = [
        NorthboundState::Disabled,
        NorthboundState::Connecting,
        NorthboundState::Syncing,
        NorthboundState::Retrying,
        NorthboundState::AuthRefused,
    ];

    fn from_u8(v: u8) -> Self {
        match v {
            1 => NorthboundState::Connecting,
            2 => NorthboundState::Syncing,
            3 => NorthboundState::Retrying,
            4 => NorthboundState::AuthRefused,
            _ => NorthboundState::Disabled,
        }
    }

    fn as_u8(self) -> u8 {
        match self {
            NorthboundState::Disabled => 0,
            NorthboundState::Connecting => 1,
            NorthboundState::Syncing => 2,
            NorthboundState::Retrying => 3,
            NorthboundState::AuthRefused => 4,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NorthboundState::Disabled => "disabled",
            NorthboundState::Connecting => "connecting",
            NorthboundState::Syncing => "syncing",
            NorthboundState::Retrying => "retrying",
            NorthboundState::AuthRefused => "auth_refused",
        }
    }
}

/// Shared, lock-free health flags.
#[derive(Clone, Debug)]
pub struct Health {
    northbound: Arc<AtomicU8>,
    /// `citygate_northbound_state{state}`, set with the flag (absent in tests without metrics).
    northbound_gauge: Option<prometheus::IntGaugeVec>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            northbound: Arc::new(AtomicU8::new(NorthboundState::Disabled.as_u8())),
            northbound_gauge: None,
        }
    }
}

impl Health {
    /// Health whose northbound state is also exported as `citygate_northbound_state{state}`.
    pub fn new(metrics: &super::Metrics) -> Self {
        let health = Health {
            northbound_gauge: Some(metrics.northbound_state.clone()),
            ..Health::default()
        };
        health.set_northbound(NorthboundState::Disabled);
        health
    }

    pub fn set_northbound(&self, s: NorthboundState) {
        self.northbound.store(s.as_u8(), Ordering::Relaxed);
        if let Some(gauge) = &self.northbound_gauge {
            for state in NorthboundState::ALL {
                gauge
                    .with_label_values(&[state.as_str()])
                    .set(i64::from(state == s));
            }
        }
    }

    pub fn northbound(&self) -> NorthboundState {
        NorthboundState::from_u8(self.northbound.load(Ordering::Relaxed))
    }
}
