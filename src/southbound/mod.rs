//! Southbound adapters: each turns device traffic into [`Record`](crate::record::Record)s.
//!
//! Adapters are a closed enum of configs tagged by `type` under `[southbound.<id>]`
//! ([`AdapterConfig`]): an exhaustive `match` instead of registration magic. Each config has a
//! pure `validate`, the `resources` it claims, and `build`, which returns an [`Adapter`] whose
//! `run` loops until shutdown. The [`supervisor`](crate::runtime::supervisor) restarts an
//! adapter whose `run` fails.

pub mod ble;
pub mod lorawan;
pub mod modbus;
pub mod replay;
pub mod report_filter;

use crate::buffer::RecordSender;
use crate::commands::CommandRegistry;
use crate::config::issue::{ConfigIssue, Resource};
use crate::telemetry::{BleMetrics, LorawanMetrics, Metrics, ModbusMetrics, ReplayMetrics};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Why an adapter could not be built or why its run loop gave up. The supervisor logs it,
/// counts it in `citygate_adapter_errors_total{kind}` by [`AdapterError::kind`], and restarts
/// the adapter with the one backoff; a `Config` error waits much longer (restarting does not
/// fix a config, and a person has to act).
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    /// The config cannot work on this machine: an unreadable key, an invalid URL or id that
    /// validation could not see.
    #[error("config: {0}")]
    Config(String),
    /// The field side failed: a connection, a broker, a serial line.
    #[error("transport: {0}")]
    Transport(String),
    /// The buffer refused to store or read (closed, read-only, full, damaged).
    #[error("buffer: {context}: {source}")]
    Buffer {
        context: &'static str,
        source: crate::buffer::BufferError,
    },
    /// Local I/O: a file to replay, a socket to bind.
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    /// A task of the adapter panicked: a bug.
    #[error("panic: {0}")]
    Panic(String),
}

impl AdapterError {
    /// The `kind` label of `citygate_adapter_errors_total`.
    pub fn kind(&self) -> &'static str {
        match self {
            AdapterError::Config(_) => "config",
            AdapterError::Transport(_) => "transport",
            AdapterError::Buffer { .. } => "buffer",
            AdapterError::Io { .. } => "io",
            AdapterError::Panic(_) => "panic",
        }
    }

    /// A buffer error with what the adapter was doing.
    pub fn buffer(context: &'static str) -> impl FnOnce(crate::buffer::BufferError) -> Self {
        move |source| AdapterError::Buffer { context, source }
    }

    /// An I/O error with what the adapter was doing.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| AdapterError::Io { context, source }
    }
}

/// A running southbound adapter. `run` loops until `shutdown` is cancelled, reconnecting to its
/// devices by itself; it returns `Err` only when it cannot continue (then it is restarted by
/// calling `run` again on the same value).
#[async_trait::async_trait]
pub trait Adapter: Send {
    async fn run(
        &mut self,
        out: &RecordSender,
        shutdown: &CancellationToken,
    ) -> Result<(), AdapterError>;
}

/// One `[southbound.<id>]` table.
#[derive(Debug, Clone)]
pub enum AdapterConfig {
    Replay(replay::ReplayConfig),
    LorawanUdp(lorawan::LorawanUdpConfig),
    LorawanLnsMqtt(lorawan::LnsMqttConfig),
    /// `modbus_tcp`, `modbus_rtu` and `modbus_rtu_over_tcp` (one config enum, three types).
    Modbus(modbus::ModbusConfig),
    Ble(ble::BleConfig),
}

impl AdapterConfig {
    /// Every valid `type`, for messages.
    pub const TYPES: &'static [&'static str] = &[
        "replay",
        "modbus_tcp",
        "modbus_rtu",
        "modbus_rtu_over_tcp",
        "lorawan_udp",
        "lorawan_lns_mqtt",
        "ble",
    ];

    /// Deserializes the table (without its `type` key) as the given type.
    pub fn deserialize_typed<'de, D: serde::Deserializer<'de>>(
        type_name: &str,
        de: D,
    ) -> Result<Self, D::Error> {
        use serde::Deserialize;
        match type_name {
            "replay" => replay::ReplayConfig::deserialize(de).map(AdapterConfig::Replay),
            "modbus_tcp" => {
                modbus::ModbusTcpConfig::deserialize(de).map(|c| AdapterConfig::Modbus(c.into()))
            }
            "modbus_rtu" => {
                modbus::ModbusRtuConfig::deserialize(de).map(|c| AdapterConfig::Modbus(c.into()))
            }
            "modbus_rtu_over_tcp" => modbus::ModbusRtuOverTcpConfig::deserialize(de)
                .map(|c| AdapterConfig::Modbus(c.into())),
            "ble" => ble::BleConfig::deserialize(de).map(AdapterConfig::Ble),
            "lorawan_udp" => {
                lorawan::LorawanUdpConfig::deserialize(de).map(AdapterConfig::LorawanUdp)
            }
            "lorawan_lns_mqtt" => {
                lorawan::LnsMqttConfig::deserialize(de).map(AdapterConfig::LorawanLnsMqtt)
            }
            other => Err(serde::de::Error::unknown_variant(other, Self::TYPES)),
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            AdapterConfig::Replay(_) => "replay",
            AdapterConfig::LorawanUdp(_) => "lorawan_udp",
            AdapterConfig::LorawanLnsMqtt(_) => "lorawan_lns_mqtt",
            AdapterConfig::Ble(_) => "ble",
            AdapterConfig::Modbus(modbus::ModbusConfig::Tcp(_)) => "modbus_tcp",
            AdapterConfig::Modbus(modbus::ModbusConfig::Rtu(_)) => "modbus_rtu",
            AdapterConfig::Modbus(modbus::ModbusConfig::RtuOverTcp(_)) => "modbus_rtu_over_tcp",
        }
    }

    /// Loads what the config refers to by name before validation: device profiles from
    /// `<config dir>/profiles/` (then the built-in ones).
    pub fn prepare(&mut self, config_dir: &std::path::Path) {
        if let AdapterConfig::Modbus(c) = self {
            modbus::profile::load_profiles(c, Some(&config_dir.join("profiles")));
        }
    }

    /// Pure checks; paths are relative to the adapter's table.
    pub fn validate(&self) -> Vec<ConfigIssue> {
        match self {
            AdapterConfig::Replay(c) => c.validate(),
            AdapterConfig::LorawanUdp(c) => c.validate(),
            AdapterConfig::LorawanLnsMqtt(c) => c.validate(),
            AdapterConfig::Modbus(c) => c.validate(),
            AdapterConfig::Ble(c) => c.validate(),
        }
    }

    /// Things that are allowed but worth a technician's second look (inline keys, a UDP port
    /// open beyond loopback). `citygate check` prints them without failing.
    pub fn warnings(&self) -> Vec<ConfigIssue> {
        match self {
            AdapterConfig::LorawanUdp(c) => c.warnings(),
            AdapterConfig::Modbus(c) => c.warnings(),
            _ => Vec::new(),
        }
    }

    /// Checks against the machine (files exist, secrets readable); `citygate check` runs them,
    /// `citygate run` meets the same problems when building.
    pub fn check_environment(&self) -> Vec<ConfigIssue> {
        match self {
            AdapterConfig::Replay(c) => c.check_environment(),
            AdapterConfig::LorawanUdp(c) => c.check_environment(),
            AdapterConfig::LorawanLnsMqtt(c) => c.check_environment(),
            AdapterConfig::Modbus(_) => Vec::new(),
            AdapterConfig::Ble(c) => c.check_environment(),
        }
    }

    /// Every secret of this adapter with the key path of the table holding it (relative to
    /// the adapter's table): remote config refuses the inline ones.
    pub fn secrets(&self) -> Vec<(String, crate::config::secret::SecretFields<'_>)> {
        fn lorawan(
            devices: &[lorawan::config::DeviceConfig],
        ) -> Vec<(String, crate::config::secret::SecretFields<'_>)> {
            let mut out = Vec::new();
            for (i, d) in devices.iter().enumerate() {
                if let Some(abp) = &d.abp {
                    out.push((format!("devices.{i}.abp"), abp.nwk_s_key()));
                    out.push((format!("devices.{i}.abp"), abp.app_s_key()));
                }
                if let Some(otaa) = &d.otaa {
                    out.push((format!("devices.{i}.otaa"), otaa.app_key()));
                }
            }
            out
        }
        match self {
            AdapterConfig::Replay(_) | AdapterConfig::Modbus(_) => Vec::new(),
            AdapterConfig::LorawanUdp(c) => lorawan(&c.devices),
            AdapterConfig::LorawanLnsMqtt(c) => vec![(String::new(), c.password())],
            AdapterConfig::Ble(c) => c
                .devices
                .iter()
                .enumerate()
                .map(|(i, d)| (format!("devices.{i}"), d.bindkey_fields()))
                .collect(),
        }
    }

    /// What this adapter owns exclusively.
    pub fn resources(&self) -> Vec<Resource> {
        match self {
            AdapterConfig::Replay(_) => Vec::new(),
            AdapterConfig::LorawanUdp(c) => c.resources(),
            AdapterConfig::LorawanLnsMqtt(c) => c.resources(),
            AdapterConfig::Modbus(c) => c.resources(),
            AdapterConfig::Ble(c) => c.resources(),
        }
    }

    /// The device ids this adapter's records carry that the config names (a device may
    /// always have its own metric series); ids discovered at runtime are not listed.
    pub fn configured_devices(&self) -> Vec<String> {
        let eui = |s: &str| lorawan::config::parse_eui(s).map(|e| format!("{e:016x}"));
        match self {
            AdapterConfig::Replay(_) => Vec::new(),
            AdapterConfig::LorawanUdp(c) => {
                c.devices.iter().filter_map(|d| eui(&d.dev_eui)).collect()
            }
            AdapterConfig::LorawanLnsMqtt(c) => {
                c.devices.iter().filter_map(|d| eui(&d.dev_eui)).collect()
            }
            AdapterConfig::Modbus(c) => c.devices().iter().map(|d| d.id.clone()).collect(),
            AdapterConfig::Ble(c) => c.devices.iter().map(|d| d.id.clone()).collect(),
        }
    }

    /// The reporting period of each device that reports periodically, for the timeSeries
    /// mapping's missing-data detection: a Modbus device produces one record per poll of its
    /// fastest point group, so its period is the shortest of `poll_interval` and its group
    /// intervals. Other adapters report when their devices speak: none.
    pub fn device_periods(&self) -> Vec<(String, std::time::Duration)> {
        match self {
            AdapterConfig::Modbus(c) => c
                .devices()
                .iter()
                .map(|d| {
                    let fastest = d.groups.values().copied().fold(d.poll_interval, Ord::min);
                    (d.id.clone(), fastest)
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Creates the runnable adapter with its pre-labelled metric handle from `metrics`
    /// (the same labelled counters on every rebuild, so counts carry on across restarts).
    /// An adapter whose config enables commands registers its writable devices in `commands`.
    pub fn build(
        &self,
        id: &str,
        metrics: &Metrics,
        commands: &Arc<CommandRegistry>,
    ) -> Result<Box<dyn Adapter>, AdapterError> {
        match self {
            AdapterConfig::Replay(c) => Ok(Box::new(replay::ReplayAdapter::new(
                id,
                c.clone(),
                ReplayMetrics::new(metrics, id),
            ))),
            AdapterConfig::LorawanUdp(c) => Ok(Box::new(
                lorawan::LorawanUdpAdapter::new(id, c, LorawanMetrics::new(metrics, id))?
                    .with_commands(commands),
            )),
            AdapterConfig::LorawanLnsMqtt(c) => Ok(Box::new(
                lorawan::LnsMqttAdapter::new(id, c, LorawanMetrics::new(metrics, id))?
                    .with_commands(commands),
            )),
            AdapterConfig::Ble(c) => {
                ble::BleAdapter::new(id, c.clone(), BleMetrics::new(metrics, id))
                    .map(|a| Box::new(a) as Box<dyn Adapter>)
                    .map_err(|e| AdapterError::Config(e.to_string()))
            }
            AdapterConfig::Modbus(c) => Ok(Box::new(
                modbus::ModbusAdapter::new(
                    id,
                    c.clone(),
                    Arc::new(ModbusMetrics::new(metrics, id)),
                )
                .with_commands(Arc::clone(commands)),
            )),
        }
    }
}
