//! The Modbus adapter as the supervisor sees it: builds one bus task per connection and
//! forwards their records to the buffer.
//!
//! Records flow from the bus tasks through a bounded channel ([`RECORD_QUEUE`]) to this task,
//! which hands them to [`RecordSender::send`] in batches and waits for the commit. The channel
//! decouples bus timing from commit latency; when it is full the bus tasks wait, which is the
//! backpressure the buffer's `block` policy relies on.

use super::bus::{Bus, Connector, Framing, SerialConnector, TcpConnector};
use super::command_queue::CommandQueue;
use super::config::{DeviceConfig, Link, ModbusConfig};
use super::poller::{run_bus, DevicePoller};
use super::profile::{resolve_device, Point};
use super::timing::inter_frame_gap;
use super::write_plan::DeviceWrites;
use crate::buffer::RecordSender;
use crate::commands::CommandRegistry;
use crate::southbound::{Adapter, AdapterError};
use crate::telemetry::ModbusMetrics;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The devices of each connection with their resolved points.
type DeviceGroups = Vec<Vec<(DeviceConfig, Vec<Point>)>>;

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
    /// Where the writable devices are registered, when the config enables commands.
    commands: Option<Arc<CommandRegistry>>,
    /// Command queues registered when the adapter was built, one per bus, for its first run;
    /// later runs (restarts) register fresh ones.
    queues: Vec<CommandQueue>,
}

impl ModbusAdapter {
    /// `config` should have passed `validate()`; profiles must be loaded (or built in).
    pub fn new(id: impl Into<String>, config: ModbusConfig, counters: Arc<ModbusMetrics>) -> Self {
        ModbusAdapter {
            id: id.into(),
            config,
            counters,
            connector: None,
            commands: None,
            queues: Vec::new(),
        }
    }

    /// Registers the devices with writable points in `registry` when the config says
    /// `commands = true` (otherwise nothing is registered and no command reaches a device).
    /// Earlier registrations of this adapter id are removed first.
    pub fn with_commands(mut self, registry: Arc<CommandRegistry>) -> Self {
        // A rebuilt adapter (restart, reload) starts from a clean slate: devices no longer
        // writable, or all of them when commands were turned off, stop accepting commands.
        registry.unregister_adapter(&self.id);
        if self.config.commands_enabled() {
            self.commands = Some(registry);
            // Registered now, so the devices accept commands before the first run starts.
            if let Ok(groups) = self.groups() {
                self.queues = self.register(&groups);
            }
        }
        self
    }

    /// Registers each bus's writable devices; one queue per bus, same order as `groups`.
    fn register(&self, groups: &DeviceGroups) -> Vec<CommandQueue> {
        groups
            .iter()
            .map(|g| match &self.commands {
                Some(registry) => CommandQueue::register(
                    &self.id,
                    g.iter()
                        .map(|(d, points)| DeviceWrites::new(d, points.clone()))
                        .collect(),
                    registry,
                ),
                None => CommandQueue::none(&self.id),
            })
            .collect()
    }

    /// Uses `connector` instead of opening the configured endpoint or port.
    pub fn with_connector(mut self, connector: Arc<dyn Connector>) -> Self {
        self.connector = Some(connector);
        self
    }

    pub fn counters(&self) -> Arc<ModbusMetrics> {
        Arc::clone(&self.counters)
    }

    fn connections(&self) -> usize {
        match self.config.link() {
            Link::Tcp {
                max_connections, ..
            } => usize::from(max_connections.max(1)),
            Link::RtuOverTcp { .. } | Link::Rtu(_) => 1,
        }
    }

    /// The devices of each connection with their resolved points (empty groups left out).
    fn groups(&self) -> Result<DeviceGroups, AdapterError> {
        let connections = self.connections();
        let mut groups: DeviceGroups = (0..connections).map(|_| Vec::new()).collect();
        for (n, device) in self.config.devices().iter().enumerate() {
            let points = resolve_device(device).map_err(|issues| {
                let first = issues
                    .first()
                    .map(|i| i.message.clone())
                    .unwrap_or_default();
                AdapterError::Config(format!("device {:?}: invalid points: {first}", device.id))
            })?;
            groups[n % connections].push((device.clone(), points));
        }
        groups.retain(|g| !g.is_empty());
        Ok(groups)
    }

    /// Builds the bus tasks' inputs: (bus, devices, command queue) per connection.
    fn buses(&mut self) -> Result<Vec<(Bus, Vec<DevicePoller>, CommandQueue)>, AdapterError> {
        let link = self.config.link();
        let (connector, framing, gap): (Arc<dyn Connector>, _, _) = match &link {
            Link::Tcp { host, .. } => (
                Arc::new(TcpConnector(host.clone())),
                Framing::Tcp,
                Duration::ZERO,
            ),
            Link::RtuOverTcp { host, .. } => (
                Arc::new(TcpConnector(host.clone())),
                Framing::Rtu,
                Duration::ZERO,
            ),
            Link::Rtu(s) => (
                Arc::new(SerialConnector(s.clone())),
                Framing::Rtu,
                inter_frame_gap(s.baud),
            ),
        };
        let connector = self.connector.clone().unwrap_or(connector);
        let groups = self.groups()?;
        let mut queues = std::mem::take(&mut self.queues);
        if queues.len() != groups.len() {
            queues = self.register(&groups);
        }
        let start = Instant::now();
        Ok(groups
            .into_iter()
            .zip(queues)
            .map(|(g, queue)| {
                let mut bus = Bus::new(
                    Arc::clone(&connector),
                    framing,
                    gap,
                    Arc::clone(&self.counters),
                );
                bus.set_units(g.iter().map(|(d, _)| d.unit));
                let pollers = g
                    .into_iter()
                    .map(|(d, points)| {
                        DevicePoller::new(&d, points, start)
                            .with_counters(Arc::clone(&self.counters))
                    })
                    .collect();
                (bus, pollers, queue)
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
        for (bus, devices, queue) in buses {
            let writable = queue.devices();
            tracing::info!(adapter = %self.id, bus = %bus.describe(), devices = devices.len(), writable = ?writable, "modbus bus starting");
            tasks.spawn(run_bus(
                bus,
                devices,
                self.id.clone(),
                tx.clone(),
                Arc::clone(&self.counters),
                queue,
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
