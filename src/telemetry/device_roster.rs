//! The devices citygate knows, with their liveness, as the oneM2M management view reads them.
//!
//! Fed from the same place and with the same decision as `citygate_device_up`
//! ([`Metrics::observe_device`](super::Metrics::observe_device)): a committed record with at
//! least one value means up, a record whose every point failed means down. Only devices that
//! [`DeviceSeries`](super::device_series::DeviceSeries) admits enter (configured devices, and
//! runtime-discovered ones up to `[telemetry] max_device_series` per adapter), so the roster is
//! bounded exactly like the metric series. Configured devices are listed before their first
//! record, with status unknown.
//!
//! Changes that the platform must see at once (a new device, a status change) bump a
//! generation on a `watch` channel; a record that changes nothing (the usual poll) does not.
use super::battery::Battery;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// Liveness of a device, as `citygate_device_up` says it (unknown: no record yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    Unknown,
    Up,
    Down,
}

impl Liveness {
    pub fn as_str(self) -> &'static str {
        match self {
            Liveness::Unknown => "unknown",
            Liveness::Up => "up",
            Liveness::Down => "down",
        }
    }
}

/// What is known of one device.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceState {
    pub adapter: String,
    pub device: String,
    pub status: Liveness,
    /// Unix ms of the last record with at least one value.
    pub last_seen_ms: Option<i64>,
    /// Unix ms of the last status change (or of the first record).
    pub status_since_ms: Option<i64>,
    /// The last battery state the device reported (see [`Battery`]).
    pub battery: Option<Battery>,
}

#[derive(Default)]
struct Inner {
    /// Adapter id → its type (`modbus`, `ble`, …), from the config.
    adapters: BTreeMap<String, String>,
    /// (adapter, device) → state.
    devices: BTreeMap<(String, String), DeviceState>,
    /// Device key → (adapter, reporting period) of devices that report periodically.
    periods: BTreeMap<String, (String, std::time::Duration)>,
}

/// Shared by every clone of [`Metrics`](super::Metrics).
#[derive(Clone)]
pub struct DeviceRoster {
    inner: Arc<Mutex<Inner>>,
    changes: Arc<watch::Sender<u64>>,
}

impl Default for DeviceRoster {
    fn default() -> Self {
        DeviceRoster {
            inner: Arc::default(),
            changes: Arc::new(watch::Sender::new(0)),
        }
    }
}

impl DeviceRoster {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn changed(&self) {
        self.changes.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// Declares an adapter (its type) and its configured devices, at start and after a
    /// reload. Configured devices not seen yet are listed with status unknown.
    pub fn configure(
        &self,
        adapter: &str,
        adapter_type: &str,
        ids: impl IntoIterator<Item = String>,
    ) {
        let mut inner = self.lock();
        let mut changed = inner
            .adapters
            .insert(adapter.to_owned(), adapter_type.to_owned())
            .as_deref()
            != Some(adapter_type);
        for id in ids {
            if let std::collections::btree_map::Entry::Vacant(e) =
                inner.devices.entry((adapter.to_owned(), id.clone()))
            {
                e.insert(DeviceState {
                    adapter: adapter.to_owned(),
                    device: id,
                    status: Liveness::Unknown,
                    last_seen_ms: None,
                    status_since_ms: None,
                    battery: None,
                });
                changed = true;
            }
        }
        drop(inner);
        if changed {
            self.changed();
        }
    }

    /// Forgets an adapter and its devices (removed from the config by a reload).
    pub fn remove_adapter(&self, adapter: &str) {
        let mut inner = self.lock();
        let had = inner.adapters.remove(adapter).is_some();
        let before = inner.devices.len();
        inner.devices.retain(|(a, _), _| a != adapter);
        inner.periods.retain(|_, (a, _)| a != adapter);
        let changed = had || inner.devices.len() != before;
        drop(inner);
        if changed {
            self.changed();
        }
    }

    /// Declares the reporting periods of an adapter's periodic devices (a polled Modbus device:
    /// its fastest poll interval), replacing what the adapter declared before. Read by the
    /// northbound's timeSeries mapping ([`Self::period_of`]); no change notification.
    pub fn set_periods(
        &self,
        adapter: &str,
        periods: impl IntoIterator<Item = (String, std::time::Duration)>,
    ) {
        let mut inner = self.lock();
        inner.periods.retain(|_, (a, _)| a != adapter);
        for (device, period) in periods {
            inner.periods.insert(device, (adapter.to_owned(), period));
        }
    }

    /// The declared reporting period of a device (by device key), if it has one.
    pub fn period_of(&self, device: &str) -> Option<std::time::Duration> {
        self.lock().periods.get(device).map(|(_, p)| *p)
    }

    /// A committed record of an admitted device: `has_values` is the liveness decision of
    /// `citygate_device_up`.
    pub fn observe(&self, adapter: &str, device: &str, has_values: bool, now_ms: i64) {
        let status = if has_values {
            Liveness::Up
        } else {
            Liveness::Down
        };
        let mut inner = self.lock();
        let key = (adapter.to_owned(), device.to_owned());
        let entry = inner.devices.entry(key).or_insert_with(|| DeviceState {
            adapter: adapter.to_owned(),
            device: device.to_owned(),
            status: Liveness::Unknown,
            last_seen_ms: None,
            status_since_ms: None,
            battery: None,
        });
        if has_values {
            entry.last_seen_ms = Some(now_ms);
        }
        let changed = entry.status != status;
        if changed {
            entry.status = status;
            entry.status_since_ms = Some(now_ms);
        }
        drop(inner);
        if changed {
            self.changed();
        }
    }

    /// The battery a record of a device in the roster reported (a counter: no change
    /// notification; it goes out with the next periodic update).
    pub fn battery(&self, adapter: &str, device: &str, battery: Battery) {
        let mut inner = self.lock();
        if let Some(e) = inner
            .devices
            .get_mut(&(adapter.to_owned(), device.to_owned()))
        {
            e.battery = Some(battery);
        }
    }

    /// Every device, ordered by adapter then device id.
    pub fn devices(&self) -> Vec<DeviceState> {
        self.lock().devices.values().cloned().collect()
    }

    /// Adapter id → type, ordered by id.
    pub fn adapters(&self) -> BTreeMap<String, String> {
        self.lock().adapters.clone()
    }

    /// Changes (bumped generation) on a new device or a status change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_new_devices_and_status_changes_notify() {
        let r = DeviceRoster::default();
        let rx = r.subscribe();
        r.configure("mb1", "modbus", ["meter-1".to_string()]);
        assert_eq!(*rx.borrow(), 1);
        assert_eq!(r.devices()[0].status, Liveness::Unknown);
        r.observe("mb1", "meter-1", true, 1000);
        assert_eq!(*rx.borrow(), 2);
        // A hundred good polls change nothing the platform must see at once.
        for i in 0..100 {
            r.observe("mb1", "meter-1", true, 2000 + i);
        }
        assert_eq!(*rx.borrow(), 2);
        let d = &r.devices()[0];
        assert_eq!(
            (d.last_seen_ms, d.status_since_ms),
            (Some(2099), Some(1000))
        );
        r.observe("mb1", "meter-1", false, 5000);
        assert_eq!(*rx.borrow(), 3);
        let d = &r.devices()[0];
        assert_eq!(d.status, Liveness::Down);
        assert_eq!(
            (d.last_seen_ms, d.status_since_ms),
            (Some(2099), Some(5000))
        );
        r.battery(
            "mb1",
            "meter-1",
            Battery {
                percent: 80,
                status: crate::telemetry::battery::BatteryStatus::Normal,
            },
        );
        assert_eq!(*rx.borrow(), 3);
        r.observe("ble", "tag-1", true, 6000);
        assert_eq!(*rx.borrow(), 4);
        r.remove_adapter("ble");
        assert_eq!(r.devices().len(), 1);
    }
}
