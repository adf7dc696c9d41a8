//! `citygate scan ble`: nearby advertisements decoded live, with their signal strength. The
//! technician commissioning sensors sees which MAC is the one on the lamp post, whether its
//! RSSI is good enough from inside the cabinet, and whether a bindkey decrypts its data,
//! before any of it goes into the config.
//!
//! It listens through BlueZ with active discovery, the same source the adapter falls back to,
//! and decodes with the adapter's decoders, so what it shows is what the adapter would record.
use super::adapter::read_advertisement;
use super::cli::show;
use super::decoders::{self, Advertisement, BindKey, DecodeContext, Mac};
use super::sources;
use futures::StreamExt;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Why the scan could not run.
#[derive(Debug, thiserror::Error)]
pub enum ScanToolError {
    #[error("BlueZ: {0} (is bluetoothd running, and may this user use it?)")]
    Bluez(#[from] bluer::Error),
}

/// What was heard from one device during the scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Heard {
    pub updates: u32,
    pub last_rssi: Option<i16>,
    pub format: String,
}

/// One line for one advertisement: MAC, RSSI, format and the decoded values (or why not).
pub fn line(adv: &Advertisement, bindkey: Option<&BindKey>) -> (String, String) {
    let mac = adv
        .address
        .map_or_else(|| "??:??:??:??:??:??".to_string(), |m| m.to_string());
    let rssi = adv
        .rssi
        .map_or_else(|| "   ? dBm".to_string(), |r| format!("{r:>4} dBm"));
    let ctx = DecodeContext {
        mac: adv.address,
        bindkey,
    };
    let (format, what) = match decoders::decode(adv, None, &ctx) {
        Ok(d) => {
            let values: Vec<String> = d
                .values
                .iter()
                .map(|(k, v)| format!("{k}={}", show(v)))
                .collect();
            let mut what = values.join(" ");
            if let Some(w) = d.warning {
                what.push_str(&format!(" (warning: {w})"));
            }
            (d.format.as_str().to_string(), what)
        }
        Err(e) => match decoders::detect(adv) {
            Some(f) => (f.as_str().to_string(), format!("cannot decode: {e}")),
            None => ("unknown".to_string(), summary(adv)),
        },
    };
    let name = adv
        .name
        .as_deref()
        .map(|n| format!("  [{}]", crate::telemetry::untrusted::Untrusted(n)))
        .unwrap_or_default();
    (
        format.clone(),
        format!("{mac}  {rssi}  {format:<9}  {what}{name}"),
    )
}

/// What an advertisement in no known format carries.
fn summary(adv: &Advertisement) -> String {
    let mut parts = Vec::new();
    for (company, data) in &adv.manufacturer_data {
        parts.push(format!(
            "manufacturer 0x{company:04x}: {} bytes",
            data.len()
        ));
    }
    for (uuid, data) in &adv.service_data {
        parts.push(format!("service data {uuid}: {} bytes", data.len()));
    }
    if parts.is_empty() {
        "no data".to_string()
    } else {
        parts.join(", ")
    }
}

/// Listens on `adapter` for `duration`, calling `print` with one line per advertisement, and
/// returns what was heard per device.
pub async fn scan(
    adapter_name: &str,
    duration: Duration,
    bindkeys: &HashMap<Mac, BindKey>,
    mut print: impl FnMut(&str),
) -> Result<BTreeMap<String, Heard>, ScanToolError> {
    let session = bluer::Session::new().await?;
    let adapter = session.adapter(adapter_name)?;
    if !adapter.is_powered().await? {
        adapter.set_powered(true).await?;
    }
    let events = sources::discovery(&adapter).await?;
    tokio::pin!(events);
    let mut heard: BTreeMap<String, Heard> = BTreeMap::new();
    let deadline = tokio::time::sleep(duration);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => break,
            ev = events.next() => {
                let Some(addr) = ev else { break };
                let adv = read_advertisement(&adapter, addr).await;
                let key = Mac(addr.0);
                let (format, text) = line(&adv, bindkeys.get(&key));
                print(&text);
                let entry = heard.entry(key.to_string()).or_default();
                entry.updates += 1;
                entry.last_rssi = adv.rssi.or(entry.last_rssi);
                entry.format = format;
            }
        }
    }
    Ok(heard)
}

/// The closing table: every device heard, strongest first.
pub fn render_summary(heard: &BTreeMap<String, Heard>) -> String {
    let mut rows: Vec<(&String, &Heard)> = heard.iter().collect();
    rows.sort_by_key(|(_, h)| std::cmp::Reverse(h.last_rssi.unwrap_or(i16::MIN)));
    let mut out = format!("{} device(s) heard\n", rows.len());
    for (mac, h) in rows {
        let rssi = h
            .last_rssi
            .map_or_else(|| "   ?".to_string(), |r| format!("{r:>4}"));
        out.push_str(&format!(
            "  {mac}  {rssi} dBm  {:<9}  {} update(s)\n",
            h.format, h.updates
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::southbound::ble::decoders::BTHOME_UUID;

    #[test]
    fn a_bthome_advertisement_reads_as_one_line() {
        let adv = Advertisement {
            address: Some("A4:C1:38:8D:18:B2".parse().unwrap()),
            rssi: Some(-61),
            name: Some("ATC_8D18B2".into()),
            service_data: vec![(BTHOME_UUID, hex::decode("4002ca0903bf13").unwrap())],
            ..Default::default()
        };
        let (format, text) = line(&adv, None);
        assert_eq!(format, "bthome");
        assert!(
            text.starts_with("A4:C1:38:8D:18:B2   -61 dBm  bthome     "),
            "{text}"
        );
        assert!(text.contains("temperature=25.06"), "{text}");
        assert!(text.ends_with("[ATC_8D18B2]"), "{text}");
    }

    #[test]
    fn unknown_and_undecodable_advertisements_say_what_they_carry() {
        let adv = Advertisement {
            manufacturer_data: vec![(0x0075, vec![1, 2, 3])],
            ..Default::default()
        };
        let (format, text) = line(&adv, None);
        assert_eq!(format, "unknown");
        assert!(text.contains("manufacturer 0x0075: 3 bytes"), "{text}");
        assert!(text.contains("   ? dBm"), "{text}");
        // Encrypted BTHome without a bindkey: the format is known, the reason is shown.
        let enc = Advertisement {
            address: Some("54:48:E6:8F:80:A5".parse().unwrap()),
            service_data: vec![(
                BTHOME_UUID,
                hex::decode("41a4690a5fb68b7f2e1ac6d4ed6400000000bbccdd").unwrap(),
            )],
            ..Default::default()
        };
        let (format, text) = line(&enc, None);
        assert_eq!(format, "bthome");
        assert!(text.contains("cannot decode"), "{text}");
    }

    #[test]
    fn the_summary_puts_the_strongest_first() {
        let mut heard = BTreeMap::new();
        heard.insert(
            "AA:00:00:00:00:01".to_string(),
            Heard {
                updates: 3,
                last_rssi: Some(-90),
                format: "ruuvi".into(),
            },
        );
        heard.insert(
            "AA:00:00:00:00:02".to_string(),
            Heard {
                updates: 1,
                last_rssi: Some(-50),
                format: "bthome".into(),
            },
        );
        let s = render_summary(&heard);
        assert!(
            s.starts_with("2 device(s) heard\n  AA:00:00:00:00:02   -50 dBm"),
            "{s}"
        );
    }
}
