//! Starts the syncer (when `[northbound]` is configured) with its metric handle, and the device
//! management publisher when `[management] enabled`, and mirrors
//! its health into `/readyz` and systemd's STATUS once a second (the syncer counts its metrics
//! itself).

use crate::buffer::Buffer;
use crate::commands::{CommandRegistry, DispatchConfig, Dispatcher};
use crate::management::remote_config::side::RemoteConfigSide;
use crate::northbound::commands::{CommandSide, Route};
use crate::northbound::config::BindingKind;
use crate::northbound::{
    self, Binding, CoapBinding, HttpBinding, MqttBinding, NorthboundConfig, SyncSnapshot,
    SyncState, Syncer,
};
use crate::telemetry::health::{Health, NorthboundState};
use crate::telemetry::{CoapMetrics, CommandMetrics, Metrics, SyncMetrics, WireMetrics};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What the northbound side shares with the rest of the daemon.
#[derive(Clone, Copy)]
pub struct Daemon<'a> {
    pub buffer: &'a Buffer,
    pub metrics: &'a Metrics,
    pub health: &'a Health,
    /// The devices adapters accept commands for.
    pub commands: &'a Arc<CommandRegistry>,
    pub token: &'a CancellationToken,
    /// Every task of the northbound side runs on the daemon's one tracker.
    pub tracker: &'a TaskTracker,
    /// Cancelled when the platform asks for a restart (reboot mgmtObj, `allow_restart`).
    pub restart: &'a CancellationToken,
    /// Remote config's northbound half (`[management] remote_config = true`).
    pub remote_config: Option<&'a Arc<RemoteConfigSide>>,
}

/// Builds the binding and spawns the syncer and its observer on `tracker` (inside the runtime:
/// the MQTT binding spawns its connection task); with `[northbound.commands] enabled`, also
/// the command side (dispatcher, command containers, notifications, catch-up).
pub fn start(
    cfg: &NorthboundConfig,
    management: &crate::management::ManagementConfig,
    daemon: &Daemon<'_>,
) -> Result<(), northbound::BindingError> {
    let Daemon {
        buffer,
        metrics,
        health,
        commands,
        token,
        tracker,
        restart,
        remote_config,
    } = *daemon;
    northbound::install_crypto_provider();
    let (binding, target, route): (Arc<dyn Binding>, &str, Route) = match cfg.binding {
        BindingKind::Http => (
            Arc::new(HttpBinding::new(cfg)?.with_wire_metrics(WireMetrics::new(metrics, "http"))),
            &cfg.cse_url,
            Route::PollingChannel,
        ),
        // Commands over CoAP are refused by `check` ([northbound.commands] needs http or mqtt).
        BindingKind::Coap => (
            Arc::new(CoapBinding::new(cfg, CoapMetrics::new(metrics))?),
            &cfg.cse_url,
            Route::PollingChannel,
        ),
        BindingKind::Mqtt => {
            let mqtt = Arc::new(
                MqttBinding::new(cfg)?.with_wire_metrics(WireMetrics::new(metrics, "mqtt")),
            );
            (
                mqtt.clone(),
                cfg.mqtt.as_ref().map_or("", |m| m.broker.as_str()),
                Route::Mqtt(mqtt),
            )
        }
    };
    let syncer = Syncer::new(
        cfg.clone(),
        binding.clone(),
        Arc::new(buffer.clone()),
        SyncMetrics::new(metrics),
    );
    // The timeSeries mapping declares each periodic device's period (from the adapters).
    let roster = metrics.device_roster.clone();
    syncer
        .tree()
        .set_device_periods(Arc::new(move |device: &str| roster.period_of(device)));
    // The reboot mgmtObj needs the notification route of commands.
    let reboot = (management.enabled && cfg.commands.enabled).then(|| {
        Arc::new(crate::management::reboot::Reboot::new(
            management.allow_restart,
            binding.clone(),
            syncer.tree(),
            restart.clone(),
            crate::telemetry::handles::RebootMetrics::new(metrics),
        ))
    });
    if management.enabled {
        let mut publisher = crate::management::Management::new(
            management.clone(),
            Arc::new(cfg.clone()),
            binding.clone(),
            syncer.tree(),
            metrics,
        );
        if reboot.is_some() {
            publisher = publisher.with_reboot();
        }
        tracker.spawn(publisher.run(token.clone()));
        tracing::info!(update_interval = ?management.update_interval, "device management started");
    }
    if cfg.commands.enabled {
        let dispatcher = Dispatcher::new(
            buffer.clone(),
            commands.clone(),
            DispatchConfig {
                originators: cfg.commands.originators.clone(),
                default_expiry: cfg.commands.default_expiry,
            },
            CommandMetrics::new(metrics),
            token.clone(),
        );
        let side = CommandSide::new(
            cfg.commands.clone(),
            binding.clone(),
            syncer.tree(),
            commands.clone(),
            dispatcher,
            route,
        );
        if let Some(reboot) = reboot {
            side.set_reboot(reboot);
        }
        if let Some(rc) = remote_config {
            side.set_remote_config(rc.clone());
            tracker.spawn(
                rc.clone()
                    .write_status(binding.clone(), syncer.tree(), token.clone()),
            );
            tracing::info!(originators = ?management.remote_config_originators, "remote config enabled");
        }
        tracker.spawn(side.run(token.clone()));
        tracing::info!(originators = ?cfg.commands.originators, "commands from the platform enabled");
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
