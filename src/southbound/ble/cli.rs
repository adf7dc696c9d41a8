//! `citygate decode ble`: decode one advertisement given as hex, for technicians in the field
//! (e.g. a capture from `btmon` or `bluetoothctl`) and for checking a bindkey.
//!
//! The hex may be a whole advertisement (AD structures, `0201060a16d2fc…`) or, with a
//! format, just the payload: BTHome/Eddystone service data or Ruuvi/iBeacon manufacturer
//! data, with or without the UUID / company id in front.

use super::config::parse_bindkey;
use super::decoders::{
    self, Advertisement, BleUuid, DecodeContext, DecodeError, Format, Mac, APPLE_COMPANY,
    BTHOME_UUID, EDDYSTONE_UUID, RUUVI_COMPANY,
};
use crate::record::Value;
use std::fmt::Write as _;

/// Why the field tool could not decode its input.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("input is not hex: {0}")]
    BadHex(String),
    #[error("{0}")]
    BadMac(#[from] decoders::addr::AddrError),
    #[error("the bindkey is not 32 hex digits")]
    BadKey,
    #[error("the input is not a complete advertisement in a known format; pass --format (bthome, ruuvi, ibeacon, eddystone) to decode a bare payload")]
    NoFormat,
    #[error("{0}")]
    Decode(#[from] DecodeError),
}

/// Decodes `hex` and renders the values as text (one `point = value` per line) or JSON.
pub fn decode_cli(
    hex_input: &str,
    format: Option<Format>,
    mac: Option<&str>,
    bindkey: Option<&str>,
    json: bool,
) -> Result<String, CliError> {
    let cleaned: String = hex_input
        .trim()
        .trim_start_matches("0x")
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':' && *c != '-')
        .collect();
    let bytes = hex::decode(&cleaned).map_err(|e| CliError::BadHex(e.to_string()))?;
    let mac: Option<Mac> = mac.map(str::parse::<Mac>).transpose()?;
    let key = bindkey
        .map(|k| parse_bindkey(k).ok_or(CliError::BadKey))
        .transpose()?;

    let (mut adv, source) = match Advertisement::parse_ad(&bytes) {
        Ok(adv) if carries(&adv, format) => (adv, "advertisement"),
        _ => (
            payload_advert(&bytes, format.ok_or(CliError::NoFormat)?),
            "payload",
        ),
    };
    adv.address = mac.or(adv.address);
    let ctx = DecodeContext {
        mac,
        bindkey: key.as_ref(),
    };
    let d = decoders::decode(&adv, format, &ctx)?;

    if json {
        let out = serde_json::json!({
            "format": d.format.as_str(),
            "source": source,
            "name": adv.name,
            "values": d.values,
            "meta": d.meta,
            "warning": d.warning,
        });
        return Ok(serde_json::to_string_pretty(&out).unwrap_or_default());
    }
    let mut s = String::new();
    let _ = writeln!(s, "format: {} ({source})", d.format.as_str());
    if let Some(n) = &adv.name {
        let _ = writeln!(s, "name: {n}");
    }
    if let Some(m) = mac {
        let _ = writeln!(s, "mac: {m}");
    }
    for (title, map) in [("values", &d.values), ("meta", &d.meta)] {
        if map.is_empty() {
            continue;
        }
        let _ = writeln!(s, "{title}:");
        for (k, v) in map {
            let _ = writeln!(s, "  {k} = {}", show(v));
        }
    }
    if let Some(w) = &d.warning {
        let _ = writeln!(s, "warning: {w}");
    }
    Ok(s)
}

/// True if a parsed advertisement holds data of the requested (or any known) format.
fn carries(adv: &Advertisement, format: Option<Format>) -> bool {
    match format {
        // Eddystone data without the UUID list is still an advertisement: decoding it reports
        // why it is not taken as Eddystone.
        None => decoders::detect(adv).is_some() || adv.service_data_for(EDDYSTONE_UUID).is_some(),
        Some(Format::Bthome) => adv.service_data_for(BTHOME_UUID).is_some(),
        Some(Format::Eddystone) => adv.service_data_for(EDDYSTONE_UUID).is_some(),
        Some(Format::Ruuvi) => adv.manufacturer_data_for(RUUVI_COMPANY).is_some(),
        Some(Format::Ibeacon) => adv.manufacturer_data_for(APPLE_COMPANY).is_some(),
        Some(Format::Raw) => true,
    }
}

/// Wraps a bare payload into an advertisement, dropping a leading UUID / company id.
fn payload_advert(bytes: &[u8], format: Format) -> Advertisement {
    let strip = |prefix: [u8; 2]| bytes.strip_prefix(&prefix[..]).unwrap_or(bytes).to_vec();
    let mut adv = Advertisement::default();
    let sd = |u: BleUuid, d| vec![(u, d)];
    match format {
        Format::Bthome => adv.service_data = sd(BTHOME_UUID, strip([0xd2, 0xfc])),
        Format::Eddystone => adv.service_data = sd(EDDYSTONE_UUID, strip([0xaa, 0xfe])),
        Format::Ruuvi => adv.manufacturer_data = vec![(RUUVI_COMPANY, strip([0x99, 0x04]))],
        Format::Ibeacon => adv.manufacturer_data = vec![(APPLE_COMPANY, strip([0x4c, 0x00]))],
        Format::Raw => adv.manufacturer_data = vec![(0xffff, bytes.to_vec())],
    }
    adv
}

pub(super) fn show(v: &Value) -> String {
    match v {
        Value::Bytes(b) => format!("0x{}", hex::encode(b)),
        Value::Str(s) => format!("{s:?}"),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_full_advertisement_as_text() {
        let out = decode_cli(
            "0201060b094449592d73656e736f720a16d2fc4002c40903bf13",
            None,
            None,
            None,
            false,
        )
        .unwrap();
        assert_eq!(
            out,
            "format: bthome (advertisement)\nname: DIY-sensor\nvalues:\n  temperature = 25.0\n  humidity = 50.55\n"
        );
    }

    #[test]
    fn decodes_an_encrypted_payload_with_key_and_mac_as_json() {
        let out = decode_cli(
            "41 a47266c95f73 00112233 78237214",
            Some(Format::Bthome),
            Some("54:48:E6:8F:80:A5"),
            Some("231d39c1d7cc1ab1aee224cd096db932"),
            true,
        )
        .unwrap();
        let j: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(j["format"], "bthome");
        assert_eq!(j["source"], "payload");
        assert_eq!(j["values"]["temperature"], 25.06);
        assert_eq!(j["meta"]["counter"], 0x3322_1100);
    }

    #[test]
    fn bare_payloads_with_prefixes_and_errors() {
        let out = decode_cli(
            "aafe20000bb818800000006400000e10",
            Some(Format::Eddystone),
            None,
            None,
            false,
        )
        .unwrap();
        assert!(out.contains("temperature = 24.5"), "{out}");
        let out = decode_cli(
            "9904 0512fc5394c37c0004fffc040cac364200cdcbb8334c884f",
            Some(Format::Ruuvi),
            None,
            None,
            false,
        )
        .unwrap();
        assert!(
            out.contains("pressure = 100044") && out.contains("mac = \"CB:B8:33:4C:88:4F\""),
            "{out}"
        );
        assert!(matches!(
            decode_cli("4002ca09", None, None, None, false),
            Err(CliError::NoFormat)
        ));
        assert!(matches!(
            decode_cli("zz", None, None, None, false),
            Err(CliError::BadHex(_))
        ));
        assert!(matches!(
            decode_cli("4002ca09", Some(Format::Bthome), Some("1:2"), None, false),
            Err(CliError::BadMac(_))
        ));
        assert!(matches!(
            decode_cli("4002ca09", Some(Format::Bthome), None, Some("12"), false),
            Err(CliError::BadKey)
        ));
        let wrong = decode_cli(
            "41a47266c95f730011223378237214",
            Some(Format::Bthome),
            Some("54:48:E6:8F:80:A5"),
            Some("00000000000000000000000000000000"),
            false,
        )
        .unwrap_err();
        assert!(wrong.to_string().contains("wrong bindkey"), "{wrong}");
        let no_mac = decode_cli(
            "41a47266c95f730011223378237214",
            Some(Format::Bthome),
            None,
            Some("231d39c1d7cc1ab1aee224cd096db932"),
            false,
        )
        .unwrap_err();
        assert!(no_mac.to_string().contains("MAC"), "{no_mac}");
    }
}
