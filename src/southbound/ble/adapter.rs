//! The BlueZ side: scans with `bluer` (D-Bus to bluetoothd), turns device property updates
//! into [`Advertisement`]s, runs them through the [`Pipeline`] and hands records to the buffer.
//!
//! `scan = "passive"` registers a BlueZ advertisement monitor for the known formats
//! (`AdvertisementMonitorManager1`; BlueZ scans passively); where that is unavailable, and
//! for `scan = "active"`, LE discovery with duplicate data on is used, so BlueZ emits a
//! property change for every received advertisement (see `sources`).
//!
//! Recovery: every few seconds the adapter is asked whether it is still powered and
//! discovering. If the adapter disappeared, or bluetoothd restarted (a new daemon has not
//! been told to discover), the D-Bus session is dropped and rebuilt with capped backoff.

use super::config::BleConfig;
use super::config::BleConfigError;
use super::config::ScanMode;
use super::decoders::{Advertisement, BleUuid, Mac};
use super::pipeline::Pipeline;
use super::sources::{self, Source};
use crate::backoff::Backoff;
use crate::buffer::RecordSender;
use crate::record::now_ms;
use crate::southbound::{Adapter, AdapterError};
use crate::telemetry::BleMetrics;
use bluer::Address;
use futures::stream::BoxStream;
use futures::StreamExt;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often the adapter's health is checked while scanning.
const HEALTH_EVERY: Duration = Duration::from_secs(5);
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Why a scan session ended (the run loop reconnects).
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("BlueZ: {0}")]
    Bluez(#[from] bluer::Error),
    #[error("the discovery stream ended (adapter removed or bluetoothd gone)")]
    StreamEnded,
    #[error("adapter {0} stopped discovering (bluetoothd restarted or adapter reset)")]
    DiscoveryStopped(String),
    #[error("adapter {0} is powered off")]
    PoweredOff(String),
    #[error("buffer: {0}")]
    Buffer(#[from] crate::buffer::BufferError),
}

/// A `type = "ble"` southbound adapter.
pub struct BleAdapter {
    cfg: BleConfig,
    pipeline: Pipeline,
    /// Set once a session got as far as discovering: the next failure retries quickly.
    discovering: bool,
}

impl BleAdapter {
    /// Builds the adapter: loads bindkeys (files / environment) and the device table.
    /// `counters`: the adapter's handle ([`BleMetrics::new`], or `detached()` in tests).
    pub fn new(
        id: &str,
        cfg: BleConfig,
        counters: BleMetrics,
    ) -> Result<BleAdapter, BleConfigError> {
        let pipeline = Pipeline::new(id, &cfg, counters)?;
        Ok(BleAdapter {
            cfg,
            pipeline,
            discovering: false,
        })
    }

    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// One D-Bus session: connect, start discovery, handle events until shutdown (Ok) or a
    /// failure (Err).
    async fn scan(
        &mut self,
        out: &RecordSender,
        shutdown: &CancellationToken,
    ) -> Result<(), ScanError> {
        let session = bluer::Session::new().await?;
        let adapter = session.adapter(&self.cfg.adapter)?;
        if !adapter.is_powered().await? {
            adapter.set_powered(true).await?;
        }
        let (events, source) = self.start_source(&adapter).await?;
        tokio::pin!(events);
        tracing::info!(adapter = %self.cfg.adapter, source = ?source, "BLE scanning started");
        self.discovering = true;
        let mut health = tokio::time::interval(HEALTH_EVERY);
        health.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = health.tick() => {
                    if !adapter.is_powered().await? {
                        return Err(ScanError::PoweredOff(self.cfg.adapter.clone()));
                    }
                    // A restarted bluetoothd has forgotten our discovery session. (A monitor
                    // registration is lost the same way but cannot be queried; see REPORT.md.)
                    if source == Source::Discovery && !adapter.is_discovering().await? {
                        return Err(ScanError::DiscoveryStopped(self.cfg.adapter.clone()));
                    }
                }
                ev = events.next() => match ev {
                    None => return Err(ScanError::StreamEnded),
                    Some(addr) => {
                        let adv = read_advertisement(&adapter, addr).await;
                        tracing::trace!(mac = %Mac(addr.0), rssi = ?adv.rssi, service_data = ?adv.service_data, manufacturer_data = ?adv.manufacturer_data, "BLE device update");
                        let rec = self.pipeline.handle(&adv, Instant::now(), now_ms());
                        if let Some(rec) = rec {
                            out.send(vec![rec]).await?;
                        }
                    }
                }
            }
        }
    }

    /// Passive scanning through an advertisement monitor when configured and possible,
    /// otherwise discovery. Devices with `store_raw` need every advertisement, which the
    /// monitor's known-format patterns would not deliver, so they force discovery.
    async fn start_source(
        &self,
        adapter: &bluer::Adapter,
    ) -> Result<(BoxStream<'static, Address>, Source), ScanError> {
        let raw_wanted = self.cfg.devices.iter().any(|d| d.store_raw);
        if self.cfg.scan == ScanMode::Passive && !raw_wanted {
            match sources::monitor(adapter).await {
                Ok(s) => return Ok((s, Source::Monitor)),
                Err(e) => {
                    tracing::warn!(adapter = %self.cfg.adapter, error = %e, "passive scanning (advertisement monitor) unavailable; using active discovery");
                }
            }
        }
        Ok((sources::discovery(adapter).await?, Source::Discovery))
    }
}

/// Reads what BlueZ knows about a device. Properties that cannot be read are left empty
/// (a device may vanish between the event and the read).
pub(super) async fn read_advertisement(adapter: &bluer::Adapter, addr: Address) -> Advertisement {
    let mut adv = Advertisement {
        address: Some(Mac(addr.0)),
        ..Default::default()
    };
    let Ok(dev) = adapter.device(addr) else {
        return adv;
    };
    adv.name = dev.name().await.ok().flatten();
    if let Err(e) = dev.service_data().await {
        tracing::trace!(error = %e, "ServiceData unreadable");
    }
    adv.rssi = dev.rssi().await.ok().flatten();
    if let Ok(Some(md)) = dev.manufacturer_data().await {
        let mut md: Vec<(u16, Vec<u8>)> = md.into_iter().collect();
        md.sort();
        adv.manufacturer_data = md;
    }
    if let Ok(Some(sd)) = dev.service_data().await {
        adv.service_data = sd
            .into_iter()
            .map(|(u, d)| (BleUuid(u.as_u128()), d))
            .collect();
    }
    if let Ok(Some(uuids)) = dev.uuids().await {
        adv.service_uuids = uuids.into_iter().map(|u| BleUuid(u.as_u128())).collect();
    }
    adv
}

#[async_trait::async_trait]
impl Adapter for BleAdapter {
    /// Scans until shutdown; every failure (no bluetoothd, adapter missing or removed,
    /// daemon restart) is logged and retried with capped exponential backoff, so this only
    /// returns on shutdown.
    async fn run(
        &mut self,
        out: &RecordSender,
        shutdown: &CancellationToken,
    ) -> Result<(), AdapterError> {
        let mut backoff = Backoff::new(BACKOFF_MIN, BACKOFF_MAX);
        loop {
            self.discovering = false;
            let err = match self.scan(out, shutdown).await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if self.discovering {
                backoff.reset();
            }
            let delay = backoff.next_delay();
            tracing::warn!(adapter = %self.cfg.adapter, error = %err, retry_in = ?delay, "BLE scanning interrupted");
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }
}
