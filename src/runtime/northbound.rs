//! Starts the syncer (when `[northbound]` is configured) and mirrors its state into the
//! metrics, `/readyz` and systemd's STATUS once a second.

use crate::buffer::Buffer;
use crate::northbound::config::BindingKind;
use crate::northbound::{
    self, Binding, HttpBinding, MqttBinding, NorthboundConfig, SyncSnapshot, SyncState, Syncer,
};
use crate::telemetry::health::{Health, NorthboundState};
use crate::telemetry::Metrics;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Builds the binding and spawns the syncer and its observer on `tracker` (inside the runtime:
/// the MQTT binding spawns its connection task).
pub fn start(
    cfg: &NorthboundConfig,
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
    };
    let syncer = Syncer::new(cfg.clone(), binding, Arc::new(buffer.clone()));
    let state = syncer.state();
    health.set_northbound(NorthboundState::Connecting);
    tracker.spawn(syncer.run(token.clone()));
    tracker.spawn(observe(
        state,
        metrics.clone(),
        health.clone(),
        token.clone(),
    ));
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

/// Adds the growth of a monotonic count to a Prometheus counter.
fn catch_up(counter: &prometheus::IntCounter, total: u64) {
    let seen = counter.get();
    if total > seen {
        counter.inc_by(total - seen);
    }
}

async fn observe(
    state: Arc<SyncState>,
    metrics: Metrics,
    health: Health,
    token: CancellationToken,
) {
    loop {
        let s = state.snapshot();
        health.set_northbound(health_of(&s));
        metrics.cse_connected.set(i64::from(s.connected));
        metrics.cse_registered.set(i64::from(s.registered));
        catch_up(
            &metrics.sync_records_delivered,
            s.delivered + s.already_there,
        );
        catch_up(&metrics.sync_records_dead_lettered, s.dead_lettered);
        let requests = &metrics.sync_requests;
        catch_up(&requests.with_label_values(&["created"]), s.delivered);
        catch_up(
            &requests.with_label_values(&["already_there"]),
            s.already_there,
        );
        catch_up(
            &requests.with_label_values(&["dead_letter"]),
            s.dead_lettered,
        );
        for (reason, n) in &s.retries {
            catch_up(&requests.with_label_values(&[reason]), *n);
        }
        let latency = metrics.sync_request_duration.with_label_values(&["create"]);
        for d in state.take_latencies() {
            latency.observe(d.as_secs_f64());
        }
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
