//! Where device updates come from: BlueZ discovery (active scanning) or an advertisement
//! monitor (passive scanning). Both yield the address of a device whose advertisement data
//! BlueZ just updated; the scanner then reads the device's properties.

use bluer::monitor::{Monitor, MonitorEvent, Pattern, Type};
use bluer::{AdapterEvent, Address, DiscoveryFilter, DiscoveryTransport};
use futures::stream::{BoxStream, SelectAll};
use futures::StreamExt;

/// Advertisement data types the monitor matches on.
const SERVICE_DATA_16: u8 = 0x16;
const MANUFACTURER_DATA: u8 = 0xff;

/// How the scanner hears devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `StartDiscovery` with an LE filter and duplicate data: BlueZ scans actively.
    Discovery,
    /// `AdvertisementMonitorManager1` with or-patterns: BlueZ scans passively and reports
    /// only advertisements matching the known formats.
    Monitor,
}

/// Starts LE discovery with duplicate data on, so every advertisement updates properties.
pub async fn discovery(adapter: &bluer::Adapter) -> bluer::Result<BoxStream<'static, Address>> {
    adapter
        .set_discovery_filter(DiscoveryFilter {
            transport: DiscoveryTransport::Le,
            duplicate_data: true,
            ..Default::default()
        })
        .await?;
    let events = adapter.discover_devices_with_changes().await?;
    Ok(events
        .filter_map(|ev| async move {
            match ev {
                AdapterEvent::DeviceAdded(addr) => Some(addr),
                _ => None,
            }
        })
        .boxed())
}

/// The patterns of the four known formats: BTHome and Eddystone service data, Ruuvi and
/// iBeacon manufacturer data.
fn known_format_patterns() -> Vec<Pattern> {
    vec![
        Pattern::new(SERVICE_DATA_16, 0, &[0xd2, 0xfc]),
        Pattern::new(SERVICE_DATA_16, 0, &[0xaa, 0xfe]),
        Pattern::new(MANUFACTURER_DATA, 0, &[0x99, 0x04]),
        Pattern::new(MANUFACTURER_DATA, 0, &[0x4c, 0x00, 0x02, 0x15]),
    ]
}

/// Registers an advertisement monitor for the known formats. Fails where BlueZ has no
/// monitor manager (older BlueZ, no experimental features, controllers without offload).
/// A found device's property changes are followed until the stream is dropped.
pub async fn monitor(adapter: &bluer::Adapter) -> bluer::Result<BoxStream<'static, Address>> {
    let manager = adapter.monitor().await?;
    let handle = manager
        .register(Monitor {
            monitor_type: Type::OrPatterns,
            patterns: Some(known_format_patterns()),
            ..Default::default()
        })
        .await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Address>(256);
    let adapter = adapter.clone();
    tokio::spawn(async move {
        // The manager must live as long as the monitor, or BlueZ drops the registration.
        let _manager = manager;
        let mut handle = handle;
        let mut changes = SelectAll::new();
        loop {
            tokio::select! {
                ev = handle.next() => match ev {
                    Some(MonitorEvent::DeviceFound(id)) => {
                        if let Ok(dev) = adapter.device(id.device) {
                            if let Ok(evts) = dev.events().await {
                                changes.push(evts.map(move |_| id.device));
                            }
                        }
                        if tx.send(id.device).await.is_err() {
                            break;
                        }
                    }
                    Some(_) => {}
                    None => break,
                },
                Some(addr) = changes.next(), if !changes.is_empty() => {
                    if tx.send(addr).await.is_err() {
                        break;
                    }
                }
                () = tx.closed() => break,
            }
        }
    });
    Ok(
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|a| (a, rx)) })
            .boxed(),
    )
}
