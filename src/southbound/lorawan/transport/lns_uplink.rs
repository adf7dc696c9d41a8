//! Uplink events of LNS MQTT integrations, parsed into one shape (protocols.md §4):
//! ChirpStack v4 `application/+/device/+/event/up` (protobuf JSON mapping) and The Things
//! Stack v3 `v3/<app>@<tenant>/devices/<id>/up`.
//!
//! Both omit zero/false fields (proto3 JSON, TTS by design), so every scalar defaults. That
//! makes other events of the same integration (ChirpStack `status`, `ack`, `log`; TTS
//! `join`, `down/*`) parse too, as an "uplink" of FCnt 0 without data. They are refused
//! instead: a ChirpStack uplink carries at least one of `rxInfo`, `data`, `fPort`, `fCnt`, a
//! TTS uplink carries `uplink_message` ([`LnsError::NotUplink`]).

use crate::record::{parse_ts, Value, Values};
use base64::Engine;
use serde::Deserialize;

/// Why an MQTT message was not an uplink we can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LnsError {
    #[error("uplink JSON not understood: {0}")]
    Json(String),
    #[error("devEui {0:?} is not 16 hex digits")]
    DevEui(String),
    #[error("data is not base64")]
    Data,
    #[error("not an uplink event ({0}); check the subscribed topic")]
    NotUplink(&'static str),
}

/// One uplink as reported by an LNS (payload already decrypted).
#[derive(Debug, Clone, PartialEq)]
pub struct LnsUplink {
    /// Key for dropping the same event delivered twice (QoS 1 redelivery, two subscriptions).
    pub dedup_key: String,
    pub dev_eui: u64,
    pub f_cnt: u32,
    pub f_port: Option<u8>,
    pub confirmed: bool,
    pub adr: bool,
    pub dr: Option<u8>,
    pub data: Vec<u8>,
    /// The LNS's codec output, when it ran one.
    pub object: Option<serde_json::Value>,
    pub time_ms: Option<i64>,
    pub rssi: Option<i64>,
    pub snr: Option<f64>,
    pub frequency_hz: Option<u64>,
    pub gateway: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct CsUp {
    deduplication_id: String,
    time: Option<String>,
    device_info: CsDeviceInfo,
    adr: bool,
    dr: Option<u8>,
    f_cnt: Option<u32>,
    f_port: Option<u8>,
    confirmed: bool,
    data: Option<String>,
    object: Option<serde_json::Value>,
    rx_info: Option<Vec<CsRxInfo>>,
    tx_info: CsTxInfo,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct CsDeviceInfo {
    dev_eui: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct CsRxInfo {
    gateway_id: Option<String>,
    gw_time: Option<String>,
    rssi: Option<i64>,
    snr: Option<f64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CsTxInfo {
    frequency: Option<u64>,
}

fn eui(s: &str) -> Result<u64, LnsError> {
    crate::southbound::lorawan::config::parse_eui(s).ok_or_else(|| LnsError::DevEui(s.to_owned()))
}

fn b64(s: &str) -> Result<Vec<u8>, LnsError> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|_| LnsError::Data)
}

/// Parses a ChirpStack v4 `event/up` payload.
pub fn parse_chirpstack(payload: &[u8]) -> Result<LnsUplink, LnsError> {
    let u: CsUp = serde_json::from_slice(payload).map_err(|e| LnsError::Json(e.to_string()))?;
    let dev_eui = eui(&u.device_info.dev_eui)?;
    if u.rx_info.is_none() && u.data.is_none() && u.f_port.is_none() && u.f_cnt.is_none() {
        return Err(LnsError::NotUplink(
            "ChirpStack event without rxInfo, data, fPort or fCnt",
        ));
    }
    let best = u
        .rx_info
        .iter()
        .flatten()
        .max_by_key(|r| r.rssi.unwrap_or(i64::MIN));
    let f_cnt = u.f_cnt.unwrap_or(0);
    let data = u.data.as_deref().unwrap_or_default();
    Ok(LnsUplink {
        dedup_key: if u.deduplication_id.is_empty() {
            format!("{dev_eui:016x}:{f_cnt}:{data}")
        } else {
            u.deduplication_id.clone()
        },
        dev_eui,
        f_cnt,
        f_port: u.f_port,
        confirmed: u.confirmed,
        adr: u.adr,
        dr: u.dr,
        data: b64(data)?,
        object: u.object,
        // Gateway GPS time when present, else the network server's time.
        time_ms: best
            .and_then(|r| r.gw_time.as_deref())
            .and_then(parse_ts)
            .or_else(|| u.time.as_deref().and_then(parse_ts)),
        rssi: best.and_then(|r| r.rssi),
        snr: best.and_then(|r| r.snr),
        frequency_hz: u.tx_info.frequency,
        gateway: best.and_then(|r| r.gateway_id.clone()),
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TtnUp {
    end_device_ids: TtnIds,
    received_at: Option<String>,
    uplink_message: Option<TtnMsg>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TtnIds {
    dev_eui: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TtnMsg {
    f_port: Option<u8>,
    f_cnt: u32,
    frm_payload: String,
    decoded_payload: Option<serde_json::Value>,
    confirmed: bool,
    rx_metadata: Vec<TtnRx>,
    settings: TtnSettings,
    received_at: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TtnRx {
    gateway_ids: TtnGw,
    time: Option<String>,
    rssi: Option<i64>,
    snr: Option<f64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TtnGw {
    gateway_id: Option<String>,
    eui: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TtnSettings {
    /// A string in TTS JSON (uint64 mapping).
    frequency: Option<String>,
    data_rate_index: Option<u8>,
}

/// Parses a TTS v3 uplink message.
pub fn parse_ttn(payload: &[u8]) -> Result<LnsUplink, LnsError> {
    let u: TtnUp = serde_json::from_slice(payload).map_err(|e| LnsError::Json(e.to_string()))?;
    let dev_eui = eui(&u.end_device_ids.dev_eui)?;
    let m = u
        .uplink_message
        .as_ref()
        .ok_or(LnsError::NotUplink("TTS message without uplink_message"))?;
    let best = m
        .rx_metadata
        .iter()
        .max_by_key(|r| r.rssi.unwrap_or(i64::MIN));
    let received = m
        .received_at
        .clone()
        .or(u.received_at.clone())
        .unwrap_or_default();
    Ok(LnsUplink {
        dedup_key: format!("{dev_eui:016x}:{}:{received}", m.f_cnt),
        dev_eui,
        f_cnt: m.f_cnt,
        f_port: m.f_port,
        confirmed: m.confirmed,
        adr: false,
        dr: m.settings.data_rate_index,
        data: b64(&m.frm_payload)?,
        object: m.decoded_payload.clone(),
        time_ms: m
            .rx_metadata
            .first()
            .and_then(|r| r.time.as_deref())
            .and_then(parse_ts)
            .or_else(|| parse_ts(&received)),
        rssi: best.and_then(|r| r.rssi),
        snr: best.and_then(|r| r.snr),
        frequency_hz: m.settings.frequency.as_deref().and_then(|f| f.parse().ok()),
        gateway: best.and_then(|r| {
            r.gateway_ids
                .eui
                .clone()
                .or(r.gateway_ids.gateway_id.clone())
        }),
    })
}

/// Flattens an LNS codec object into values: nested keys joined with `.`
/// (`{"temperatureSensor":{"1":24.3}}` → `temperatureSensor.1 = 24.3`); arrays as JSON text.
pub fn flatten_object(obj: &serde_json::Value) -> Values {
    fn walk(prefix: &str, v: &serde_json::Value, out: &mut Values) {
        use serde_json::Value as J;
        match v {
            J::Object(m) => {
                for (k, v) in m {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            J::Bool(b) => {
                out.insert(prefix.to_owned(), Value::Bool(*b));
            }
            J::Number(n) => {
                let v = match n.as_i64() {
                    Some(i) => Value::I64(i),
                    None => Value::F64(n.as_f64().unwrap_or(f64::NAN)),
                };
                out.insert(prefix.to_owned(), v);
            }
            J::String(s) => {
                out.insert(prefix.to_owned(), Value::Str(s.clone()));
            }
            J::Array(_) => {
                out.insert(prefix.to_owned(), Value::Str(v.to_string()));
            }
            J::Null => {}
        }
    }
    let mut out = Values::new();
    let root = if obj.is_object() { "" } else { "value" };
    walk(root, obj, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value as J;

    fn vectors() -> J {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/lns_integrations.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn shared_chirpstack_vectors() {
        let v = vectors();
        let cases = v["vectors"].as_array().unwrap();
        assert_eq!(cases.len(), 2);
        for c in cases {
            let name = c["name"].as_str().unwrap();
            let e = &c["expected"];
            let body = serde_json::to_vec(&c["payload"]).unwrap();
            let u = parse_chirpstack(&body).unwrap_or_else(|err| panic!("{name}: {err}"));
            assert_eq!(
                format!("{:016x}", u.dev_eui),
                e["dev_eui"].as_str().unwrap(),
                "{name}"
            );
            assert_eq!(u64::from(u.f_cnt), e["f_cnt"].as_u64().unwrap(), "{name}");
            assert_eq!(u.f_port.map(u64::from), e["f_port"].as_u64(), "{name}");
            assert_eq!(
                hex::encode(&u.data),
                e["data_hex"].as_str().unwrap(),
                "{name}"
            );
            assert_eq!(u.confirmed, e["confirmed"].as_bool().unwrap(), "{name}");
            if let Some(adr) = e["adr"].as_bool() {
                assert_eq!(u.adr, adr, "{name}");
            }
            assert_eq!(
                u.dedup_key,
                c["payload"]["deduplicationId"].as_str().unwrap()
            );
            assert_eq!(u.rssi, Some(-36), "{name}");
            assert_eq!(u.frequency_hz, Some(868_500_000), "{name}");
            assert_eq!(
                u.time_ms,
                parse_ts("2026-11-24T08:00:00.100Z"),
                "{name}: gwTime wins"
            );
        }
        let first = parse_chirpstack(&serde_json::to_vec(&cases[0]["payload"]).unwrap()).unwrap();
        let vals = flatten_object(first.object.as_ref().unwrap());
        assert_eq!(vals["temperatureSensor.1"], Value::F64(24.3));
    }

    #[test]
    fn shared_ttn_vector() {
        let v = vectors();
        let cases = v["ttn_v3"].as_array().unwrap();
        assert_eq!(cases.len(), 1);
        let c = &cases[0];
        let e = &c["expected"];
        let u = parse_ttn(&serde_json::to_vec(&c["payload"]).unwrap()).unwrap();
        assert_eq!(
            format!("{:016x}", u.dev_eui),
            e["dev_eui"].as_str().unwrap()
        );
        assert_eq!(u64::from(u.f_cnt), e["f_cnt"].as_u64().unwrap());
        assert_eq!(u.f_port, None);
        assert_eq!(hex::encode(&u.data), e["data_hex"].as_str().unwrap());
        assert_eq!(
            u.frequency_hz,
            Some(868_300_000),
            "frequency is a string in TTS"
        );
        assert_eq!(u.time_ms, parse_ts("2020-02-12T15:15:45.787Z"));
        assert_eq!(u.gateway.as_deref(), Some("9C5C8E00001A05C4"));
        let vals = flatten_object(u.object.as_ref().unwrap());
        assert_eq!(vals["luminosity"], Value::F64(0.64));
    }

    #[test]
    fn bad_messages_are_errors() {
        assert!(matches!(
            parse_chirpstack(b"not json"),
            Err(LnsError::Json(_))
        ));
        assert!(matches!(parse_chirpstack(b"{}"), Err(LnsError::DevEui(_))));
        let bad_data = br#"{"deviceInfo":{"devEui":"0004a30b001c0530"},"data":"***"}"#;
        assert_eq!(parse_chirpstack(bad_data), Err(LnsError::Data));
        let minimal = br#"{"deviceInfo":{"devEui":"0004a30b001c0530"},"rxInfo":[]}"#;
        let u = parse_chirpstack(minimal).unwrap();
        assert_eq!(
            (u.f_cnt, u.f_port, u.confirmed, u.data.len()),
            (0, None, false, 0)
        );
        assert!(matches!(parse_ttn(b"{"), Err(LnsError::Json(_))));
        // Other events of the same integrations are not uplinks of FCnt 0.
        let status = br#"{"deduplicationId":"x","deviceInfo":{"devEui":"0004a30b001c0530"},"margin":7,"batteryLevel":55.5}"#;
        assert!(matches!(
            parse_chirpstack(status),
            Err(LnsError::NotUplink(_))
        ));
        let ack = br#"{"deviceInfo":{"devEui":"0004a30b001c0530"},"queueItemId":"q","acknowledged":true,"fCntDown":3}"#;
        assert!(matches!(parse_chirpstack(ack), Err(LnsError::NotUplink(_))));
        let join = br#"{"end_device_ids":{"dev_eui":"0004A30B001C0530"},"join_accept":{"session_key_id":"AX"}}"#;
        assert!(matches!(parse_ttn(join), Err(LnsError::NotUplink(_))));
        assert!(parse_ttn(b"[]").is_err());
        assert_eq!(flatten_object(&J::from(3))["value"], Value::I64(3));
    }
}
