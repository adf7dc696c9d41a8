//! Starts the syncer (when `[northbound]` is configured) with its metric handle, and the device
//! management publisher when `[management] enabled`, and mirrors
//! its health into `/readyz` and systemd's STATUS once a second (the syncer counts its metrics
//! itself).

use crate::buffer::Buffer;
use crate::northbound::config::BindingKind;
use crate::northbound::{
    self, Binding, CoapBinding, HttpBinding, MqttBinding, NorthboundConfig, SyncSnapshot,
    SyncState, Syncer,
};
use crate::telemetry::health::{Health, NorthboundState};
use crate::telemetry::{CoapMetrics, Metrics, SyncMetrics};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Builds the binding and spawns the syncer and its observer on `tracker` (inside the runtime:
/// the MQTT binding spawns its connection task).
pub fn start(
    cfg: &NorthboundConfig,
    management: &crate::management::ManagementConfig,
    buffer: &Buffer,
    metrics: &Metrics,
    health: &Health,
    token: &CancellationToken,
    tracker: &TaskTracker,
) -> Result<(), northbound::BindingError> {
    northbound::install_crypto_provider();
    let (binding, target): (Arc<dyn Binding>, &str) = match cfg.binding {
        BindingKind::Http => (Arc::new(HttpBinding::new(cfg)?), &cfg.cse_url),
        BindingKind::Mqtt => (
            Arc::new(MqttBinding::new(cfg)?),
            cfg.mqtt.as_ref().map_or("", |m| m.broker.as_str()),
        ),
        BindingKind::Coap => (
            Arc::new(CoapBinding::new(cfg, CoapMetrics::new(metrics))?),
            &cfg.cse_url,
        ),
    };
    let syncer = Syncer::new(
        cfg.clone(),
        binding.clone(),
        Arc::new(buffer.clone()),
        SyncMetrics::new(metrics),
    );
    if management.enabled {
        let publisher = crate::management::Management::new(
            management.clone(),
            Arc::new(cfg.clone()),
            binding,
            syncer.tree(),
            metrics,
        );
        tracker.spawn(publisher.run(token.clone()));
        tracing::info!(update_interval = ?management.update_interval, "device management started");
    }
    let state = syncer.state();
    health.set_northbound(NorthboundState::Connecting);
    tracker.spawn(syncer.run(token.clone()));
    tracker.spawn(observe(state, health.clone(), token.clone()));
    tracing::info!(binding = ?cfg.binding, cse = %target, cse_id = %cfg.cse_id, "northbound syncer started");
    Ok(())
}

fn health_of(s: &SyncSnapshot) -> NorthboundState {
    if s.refused {
        NorthboundState::AuthRefused
    } else if s.registered && s.connected {
        NorthboundState::Syncing
    } else if s.last_error.is_none() {
        NorthboundState::Connecting
    } else {
        NorthboundState::Retrying
    }
}

/// Mirrors the syncer's health into `/readyz` and STATUS.
async fn observe(state: Arc<SyncState>, health: Health, token: CancellationToken) {
    loop {
        health.set_northbound(health_of(&state.snapshot()));
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
