//! Which devices get their own Prometheus series (`citygate_device_up`,
//! `citygate_device_last_seen_timestamp_seconds`): the one place that decides.
//!
//! Every series costs memory for the life of the process and bytes in every scrape. Devices
//! named in the config are bounded by the config and always labelled. Devices an adapter
//! discovers at runtime (BLE `accept_unlisted`, an LNS without a device list, replay files)
//! are labelled until the adapter has `max_device_series` of them; records of further new
//! devices are still stored and delivered, but only counted in
//! `citygate_device_series_overflow_total{adapter}`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// Default `[telemetry] max_device_series`.
pub const DEFAULT_MAX_DEVICE_SERIES: usize = 500;

#[derive(Default)]
struct AdapterSeries {
    /// Ids from the adapter's config: always labelled, not counted against the cap.
    configured: HashSet<String>,
    /// Runtime-discovered ids that got series (at most `cap`).
    discovered: HashSet<String>,
}

struct Inner {
    cap: usize,
    adapters: HashMap<String, AdapterSeries>,
}

/// Shared by every clone of [`Metrics`](super::Metrics).
#[derive(Clone)]
pub struct DeviceSeries {
    inner: Arc<Mutex<Inner>>,
}

impl Default for DeviceSeries {
    fn default() -> Self {
        DeviceSeries {
            inner: Arc::new(Mutex::new(Inner {
                cap: DEFAULT_MAX_DEVICE_SERIES,
                adapters: HashMap::new(),
            })),
        }
    }
}

impl DeviceSeries {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the per-adapter cap on runtime-discovered devices (`[telemetry]
    /// max_device_series`). Devices already labelled keep their series.
    pub fn set_cap(&self, cap: usize) {
        self.lock().cap = cap;
    }

    /// Declares the device ids of an adapter's config (replacing an earlier list on reload).
    pub fn configure(&self, adapter: &str, ids: impl IntoIterator<Item = String>) {
        let mut inner = self.lock();
        let entry = inner.adapters.entry(adapter.to_owned()).or_default();
        entry.configured = ids.into_iter().collect();
    }

    /// True if `device` of `adapter` may have its own series (and, if new, now has one).
    pub fn admit(&self, adapter: &str, device: &str) -> bool {
        let mut inner = self.lock();
        let cap = inner.cap;
        let entry = match inner.adapters.get_mut(adapter) {
            Some(e) => e,
            None => inner.adapters.entry(adapter.to_owned()).or_default(),
        };
        if entry.configured.contains(device) || entry.discovered.contains(device) {
            return true;
        }
        if entry.discovered.len() < cap {
            entry.discovered.insert(device.to_owned());
            return true;
        }
        false
    }

    /// Runtime-discovered devices of `adapter` that have series.
    pub fn discovered(&self, adapter: &str) -> usize {
        self.lock()
            .adapters
            .get(adapter)
            .map_or(0, |e| e.discovered.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_devices_are_always_admitted_others_up_to_the_cap() {
        let s = DeviceSeries::default();
        s.set_cap(2);
        s.configure("ble", ["kiosk".to_string()]);
        assert!(s.admit("ble", "a"));
        assert!(s.admit("ble", "b"));
        assert!(!s.admit("ble", "c"));
        // Already labelled ones stay labelled; configured ones do not count.
        assert!(s.admit("ble", "a"));
        assert!(s.admit("ble", "kiosk"));
        assert_eq!(s.discovered("ble"), 2);
        // The cap is per adapter.
        assert!(s.admit("replay", "c"));
    }

    #[test]
    fn devices_beyond_the_cap_are_counted_not_labelled() {
        let m = crate::telemetry::Metrics::new();
        m.device_series.set_cap(1);
        m.observe_device("ble", "ble-aa", true, 1.0);
        m.observe_device("ble", "ble-bb", true, 2.0);
        m.observe_device("ble", "ble-bb", false, 3.0);
        m.observe_device("ble", "ble-aa", false, 4.0);
        let text = m.render();
        assert!(text.contains("citygate_device_up{adapter=\"ble\",device=\"ble-aa\"} 0"));
        assert!(!text.contains("ble-bb"), "{text}");
        assert_eq!(
            m.device_series_overflow.with_label_values(&["ble"]).get(),
            2
        );
    }
}
