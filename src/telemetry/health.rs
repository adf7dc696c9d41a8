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
}

impl Default for Health {
    fn default() -> Self {
        Health {
            northbound: Arc::new(AtomicU8::new(NorthboundState::Disabled.as_u8())),
        }
    }
}

impl Health {
    pub fn set_northbound(&self, s: NorthboundState) {
        self.northbound.store(s.as_u8(), Ordering::Relaxed);
    }

    pub fn northbound(&self) -> NorthboundState {
        NorthboundState::from_u8(self.northbound.load(Ordering::Relaxed))
    }
}
