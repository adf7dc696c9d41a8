//! The Modbus adapter as the supervisor sees it: builds one bus task per connection and
//! forwards their records to the buffer.
//!
//! Records flow from the bus tasks through a bounded channel ([`RECORD_QUEUE`]) to this task,
//! which hands them to [`RecordSender::send`] in batches and waits for the commit. The channel
//! decouples bus timing from commit latency; when it is full the bus tasks wait, which is the
//! backpressure the buffer's `block` policy relies on.

use super::bus::{Bus, Connector, Framing, SerialConnector, TcpConnector};
use super::config::{Link, ModbusConfig};
use super::poller::{run_bus, DevicePoller};
use super::profile::resolve_device;
use super::timing::inter_frame_gap;
use crate::buffer::RecordSender;
use crate::southbound::{Adapter, AdapterError};
use crate::telemetry::ModbusMetrics;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Records waiting between the bus tasks and the buffer.
pub const RECORD_QUEUE: usize = 256;
/// Records per `RecordSender::send` call.
const BATCH: usize = 64;

/// A configured Modbus adapter (`modbus_tcp`, `modbus_rtu` or `modbus_rtu_over_tcp`).
pub struct ModbusAdapter {
    id: String,
    config: ModbusConfig,
    counters: Arc<ModbusMetrics>,
    /// Replaces the connector derived from the config (tests: in-process pipes).
    connector: Option<Arc<dyn Connector>>,
}

impl ModbusAdapter {
    /// `config` should have passed `validate()`; profiles must be loaded (or built in).
    pub fn new(id: impl Into<String>, config: ModbusConfig, counters: Arc<ModbusMetrics>) -> Self {
        ModbusAdapter {
            id: id.into(),
            config,
            counters,
            connector: None,
        }
    }

    /// Uses `connector` instead of opening the configured endpoint or port.
    pub fn with_connector(mut self, connector: Arc<dyn Connector>) -> Self {
        self.connector = Some(connector);
        self
    }

    pub fn counters(&self) -> Arc<ModbusMetrics> {
        Arc::clone(&self.counters)
    }

    /// Builds the bus tasks' inputs: (bus, devices) per connection.
    fn buses(&self) -> Result<Vec<(Bus, Vec<DevicePoller>)>, AdapterError> {
        let link = self.config.link();
        let (connector, framing, gap, connections): (Arc<dyn Connector>, _, _, u16) = match &link {
            Link::Tcp {
                host,
                max_connections,
                ..
            } => (
                Arc::new(TcpConnector(host.clone())),
                Framing::Tcp,
                Duration::ZERO,
                *max_connections,
            ),
            Link::RtuOverTcp { host, .. } => (
                Arc::new(TcpConnector(host.clone())),
                Framing::Rtu,
                Duration::ZERO,
                1,
            ),
            Link::Rtu(s) => (
                Arc::new(SerialConnector(s.clone())),
                Framing::Rtu,
                inter_frame_gap(s.baud),
                1,
            ),
        };
        let connector = self.connector.clone().unwrap_or(connector);
        let connections = usize::from(connections.max(1));
        let start = Instant::now();
        let mut groups: Vec<Vec<DevicePoller>> = (0..connections).map(|_| Vec::new()).collect();
        for (n, device) in self.config.devices().iter().enumerate() {
            let points = resolve_device(device).map_err(|issues| {
                let first = issues
                    .first()
                    .map(|i| i.message.clone())
                    .unwrap_or_default();
                AdapterError::Config(format!("device {:?}: invalid points: {first}", device.id))
            })?;
            groups[n % connections].push(
                DevicePoller::new(device, points, start).with_counters(Arc::clone(&self.counters)),
            );
        }
        Ok(groups
            .into_iter()
            .filter(|g| !g.is_empty())
            .map(|g| {
                let mut bus = Bus::new(
                    Arc::clone(&connector),
                    framing,
                    gap,
                    Arc::clone(&self.counters),
                );
                bus.set_units(g.iter().map(|d| d.unit));
                (bus, g)
            })
            .collect())
    }
}

#[async_trait::async_trait]
impl Adapter for ModbusAdapter {
    async fn run(
        &mut self,
        out: &RecordSender,
        shutdown: &CancellationToken,
    ) -> Result<(), AdapterError> {
        let buses = self.buses()?;
        let local = shutdown.child_token();
        let (tx, mut rx) = mpsc::channel(RECORD_QUEUE);
        let mut tasks = JoinSet::new();
        for (bus, devices) in buses {
            tracing::info!(adapter = %self.id, bus = %bus.describe(), devices = devices.len(), "modbus bus starting");
            tasks.spawn(run_bus(
                bus,
                devices,
                self.id.clone(),
                tx.clone(),
                Arc::clone(&self.counters),
                local.clone(),
            ));
        }
        drop(tx);
        let mut failure = None;
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            tokio::select! {
                n = rx.recv_many(&mut batch, BATCH) => {
                    if n == 0 {
                        break; // every bus task has stopped
                    }
                    if let Err(e) = out.send(std::mem::take(&mut batch)).await {
                        failure.get_or_insert(AdapterError::buffer("storing records")(e));
                        local.cancel();
                    }
                }
                Some(joined) = tasks.join_next() => {
                    if let Err(e) = joined {
                        tracing::error!(adapter = %self.id, error = %e, "modbus bus task failed");
                        failure.get_or_insert(AdapterError::Panic(format!("modbus bus task: {e}")));
                        local.cancel();
                    }
                }
            }
        }
        while tasks.join_next().await.is_some() {}
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
