//! From one heard advertisement to at most one record: device lookup, filters, decoding with
//! the device's format and bindkey, rate control. No I/O, so the scanner stays a thin loop
//! around it and tests drive it directly.

use super::config::{BleConfig, BleConfigError, DeviceConfig};
use super::decoders::{self, Advertisement, BindKey, DecodeContext, DecodeError, Format, Mac};
use super::rate::{DropReason, RateLimiter, RatePolicy, Verdict};
use crate::record::Record;
use crate::telemetry::untrusted::{LogLimiter, Untrusted};
use crate::telemetry::BleMetrics;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A device whose advertisements fail to decode is logged at most once in this window.
const DECODE_WARNING_WINDOW: Duration = Duration::from_secs(600);

/// A listed device, ready to use.
#[derive(Debug, Clone)]
struct Device {
    id: String,
    format: Option<Format>,
    key: Option<BindKey>,
    policy: RatePolicy,
    store_raw: bool,
}

/// Per-adapter state: device table, rate limiter, counters, last error per device.
pub struct Pipeline {
    adapter_id: String,
    devices: HashMap<Mac, Device>,
    accept_unlisted: bool,
    filters: super::config::Filters,
    unlisted_policy: RatePolicy,
    limiter: RateLimiter,
    /// Decode warnings: once per device per [`DECODE_WARNING_WINDOW`].
    decode_warnings: LogLimiter,
    /// What happened to advertisements so far (`citygate_ble_advertisements_total`).
    pub stats: BleMetrics,
}

impl Pipeline {
    /// Builds the device table; reads bindkey files and environment variables.
    pub fn new(
        adapter_id: &str,
        cfg: &BleConfig,
        stats: BleMetrics,
    ) -> Result<Pipeline, BleConfigError> {
        let mut devices = HashMap::new();
        for d in &cfg.devices {
            let Some(mac) = d.mac() else { continue };
            devices.insert(mac, device(cfg, d)?);
        }
        Ok(Pipeline {
            adapter_id: adapter_id.to_owned(),
            devices,
            accept_unlisted: cfg.accept_unlisted,
            filters: cfg.filters.clone(),
            unlisted_policy: cfg.policy(None),
            limiter: RateLimiter::new(),
            decode_warnings: LogLimiter::new(1, DECODE_WARNING_WINDOW),
            stats,
        })
    }

    /// The limiter, for presence data.
    pub fn limiter(&self) -> &RateLimiter {
        &self.limiter
    }

    /// Handles one advertisement heard at `now` (monotonic) / `ts_ms` (wall clock).
    pub fn handle(&mut self, adv: &Advertisement, now: Instant, ts_ms: i64) -> Option<Record> {
        self.stats.heard.inc();
        let mac = adv.address?;
        let unlisted;
        let dev = match self.devices.get(&mac) {
            Some(d) => d,
            None if self.accept_unlisted && self.filters.matches(adv) => {
                unlisted = Device {
                    id: format!("ble-{}", hex::encode(mac.0)),
                    format: None,
                    key: None,
                    policy: self.unlisted_policy.clone(),
                    store_raw: false,
                };
                &unlisted
            }
            None => {
                self.stats.ignored.inc();
                return None;
            }
        };
        let ctx = DecodeContext {
            mac: Some(mac),
            bindkey: dev.key.as_ref(),
        };
        let decoded = match decoders::decode(adv, dev.format, &ctx) {
            Ok(d) => d,
            // No data of a known (or the configured) format: normal for the property
            // update that announces a device, or a scan response without data.
            // Eddystone service data without the listed UUID is not taken as Eddystone: a
            // store_raw device keeps it as bytes, any other device reports it (below).
            Err(
                DecodeError::UnknownFormat
                | DecodeError::Missing(_)
                | DecodeError::EddystoneUnlisted,
            ) if dev.store_raw
                && !(adv.manufacturer_data.is_empty() && adv.service_data.is_empty()) =>
            {
                decoders::decode_raw(adv)
            }
            Err(DecodeError::UnknownFormat | DecodeError::Missing(_)) => {
                self.stats.unknown_format.inc();
                return None;
            }
            Err(e) => {
                self.stats.decode_errors.inc();
                // A device whose frames keep failing is logged once per window, not every
                // second; the limiter stays bounded however many addresses are heard.
                if let Some(not_logged_before) = self.decode_warnings.allow(&mac.to_string()) {
                    let msg = e.to_string();
                    tracing::warn!(adapter = %self.adapter_id, device = %Untrusted(&dev.id), mac = %mac, error = %Untrusted(&msg), not_logged_before, "cannot decode BLE advertisement");
                }
                return None;
            }
        };
        if let Some(w) = &decoded.warning {
            tracing::debug!(device = %dev.id, warning = %w, "partial BLE decode");
        }
        self.stats
            .dropped_values
            .inc_by(u64::from(decoded.dropped_values));
        match self
            .limiter
            .observe(&dev.id, now, adv.rssi, &decoded, &dev.policy)
        {
            Verdict::Emit(_) => {
                self.stats.records.inc();
                let id = dev.id.clone();
                Some(decoded.into_record(&self.adapter_id, &id, ts_ms, adv.rssi))
            }
            Verdict::Drop(reason) => {
                if matches!(reason, DropReason::TooSoon | DropReason::Unchanged) {
                    self.stats.suppressed.inc();
                }
                let c = match reason {
                    DropReason::Duplicate => &self.stats.duplicates,
                    DropReason::Replay => {
                        tracing::warn!(device = %dev.id, mac = %mac, "BLE encryption counter went backwards: replay rejected");
                        &self.stats.replays
                    }
                    DropReason::TooSoon => &self.stats.rate_limited,
                    DropReason::Unchanged => &self.stats.unchanged,
                };
                c.inc();
                None
            }
        }
    }
}

fn device(cfg: &BleConfig, d: &DeviceConfig) -> Result<Device, BleConfigError> {
    Ok(Device {
        id: d.id.clone(),
        format: d.format.format(),
        key: d.load_bindkey()?,
        policy: cfg.policy(Some(d)),
        store_raw: d.store_raw,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Value;
    use std::time::Duration;

    fn cfg(extra: &str) -> BleConfig {
        toml::from_str(&format!(
            r#"
min_interval = "10s"
{extra}
[[devices]]
mac = "54:48:E6:8F:80:A5"
id = "enc"
format = "bthome"
bindkey = "231d39c1d7cc1ab1aee224cd096db932"

[[devices]]
mac = "11:11:11:11:11:11"
id = "odd"
store_raw = true
"#
        ))
        .unwrap()
    }

    fn adv(mac: &str, ad_hex: &str) -> Advertisement {
        let mut a = Advertisement::parse_ad(&hex::decode(ad_hex).unwrap()).unwrap();
        a.address = Some(mac.parse().unwrap());
        a.rssi = Some(-60);
        a
    }

    #[test]
    fn listed_encrypted_device_becomes_records_and_repeats_are_dropped() {
        let mut p = Pipeline::new("ble1", &cfg(""), BleMetrics::detached()).unwrap();
        let t0 = Instant::now();
        let a = adv(
            "54:48:E6:8F:80:A5",
            "1216d2fc41a47266c95f730011223378237214",
        );
        let r = p.handle(&a, t0, 1_000).unwrap();
        assert_eq!(r.device, "enc");
        assert_eq!(r.values.get("temperature"), Some(&Value::F64(25.06)));
        assert_eq!(r.meta.get("rssi"), Some(&Value::I64(-60)));
        assert!(p.handle(&a, t0 + Duration::from_secs(1), 2_000).is_none());
        assert_eq!(p.stats.duplicates.get(), 1);
        assert_eq!(p.limiter().presence("enc").unwrap().adverts, 2);
    }

    #[test]
    fn unlisted_devices_need_accept_unlisted_and_the_filters() {
        let a = adv("A4:C1:38:8D:18:B2", "0201060a16d2fc4002c40903bf13");
        let mut p = Pipeline::new("ble1", &cfg(""), BleMetrics::detached()).unwrap();
        assert!(p.handle(&a, Instant::now(), 0).is_none());
        assert_eq!(p.stats.ignored.get(), 1);
        let mut p = Pipeline::new(
            "ble1",
            &cfg("accept_unlisted = true\nfilters = { service_uuids = [\"fcd2\"] }"),
            BleMetrics::detached(),
        )
        .unwrap();
        let r = p.handle(&a, Instant::now(), 0).unwrap();
        assert_eq!(r.device, "ble-a4c1388d18b2");
        let mut p = Pipeline::new(
            "ble1",
            &cfg("accept_unlisted = true\nfilters = { names = [\"x*\"] }"),
            BleMetrics::detached(),
        )
        .unwrap();
        assert!(p.handle(&a, Instant::now(), 0).is_none());
    }

    #[test]
    fn store_raw_and_decode_errors() {
        let mut p = Pipeline::new("ble1", &cfg(""), BleMetrics::detached()).unwrap();
        let raw = adv("11:11:11:11:11:11", "05ff5900aabb");
        let r = p.handle(&raw, Instant::now(), 0).unwrap();
        assert_eq!(
            r.values.get("manufacturer_0059"),
            Some(&Value::Bytes(vec![0xaa, 0xbb]))
        );
        // Wrong key: counted, no record.
        let bad = adv(
            "54:48:E6:8F:80:A5",
            "1216d2fc41a47266c95f730011223378237215",
        );
        assert!(p.handle(&bad, Instant::now(), 0).is_none());
        assert_eq!(p.stats.decode_errors.get(), 1);
        let mut no_addr = raw.clone();
        no_addr.address = None;
        assert!(p.handle(&no_addr, Instant::now(), 0).is_none());
    }

    #[test]
    fn mislabelled_eddystone_is_reported_or_kept_raw_and_dropped_text_is_counted() {
        // Eddystone TLM service data without 0xFEAA in the UUID list.
        let tlm = "1116aafe20000bb818800000006400000e10";
        let mut p = Pipeline::new(
            "ble1",
            &cfg("accept_unlisted = true"),
            BleMetrics::detached(),
        )
        .unwrap();
        assert!(p
            .handle(&adv("22:22:22:22:22:22", tlm), Instant::now(), 0)
            .is_none());
        assert_eq!(p.stats.decode_errors.get(), 1);
        // The store_raw device keeps it as bytes, not as temperature and battery.
        let r = p
            .handle(&adv("11:11:11:11:11:11", tlm), Instant::now(), 0)
            .unwrap();
        assert_eq!(r.values.len(), 1, "{:?}", r.values);
        assert!(r.values.contains_key("service_feaa"));
        // BTHome text that is not UTF-8: dropped and counted, the temperature kept.
        let r = p
            .handle(
                &adv("33:33:33:33:33:33", "0b16d2fc405302c32802ca09"),
                Instant::now(),
                0,
            )
            .unwrap();
        assert_eq!(r.values.get("temperature"), Some(&Value::F64(25.06)));
        assert!(!r.values.contains_key("text"));
        assert_eq!(p.stats.dropped_values.get(), 1);
    }
}
