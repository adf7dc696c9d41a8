//! TS-0010 response primitives as they come off a broker (JSON or CBOR, by the topic's last
//! level), and the size of a PUBLISH packet for `citygate_northbound_bytes_total`.
use super::binding::BindingError;
use super::onem2m::primitive::{Response, Rsc};
use super::serialization::Serialization;
use crate::telemetry::untrusted::snippet;

/// Size of a QoS 1 PUBLISH packet: fixed header (type byte, remaining-length varint), topic
/// (length-prefixed), packet id, payload.
pub(super) fn publish_size(topic: &str, payload: usize) -> u64 {
    let remaining = 2 + topic.len() + 2 + payload;
    let varint = match remaining {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    };
    (1 + varint + remaining) as u64
}

/// A JSON response primitive: see [`parse_response_as`].
pub fn parse_response(payload: &[u8]) -> Result<Response, (Option<String>, BindingError)> {
    parse_response_as(Serialization::Json, payload)
}

/// A response primitive in `ser`: `rsc` (number, or a numeric string), `rqi`, optional `pc`.
/// The error carries the `rqi` when it could be read.
pub fn parse_response_as(
    ser: Serialization,
    payload: &[u8],
) -> Result<Response, (Option<String>, BindingError)> {
    let v = match ser.decode(0, payload) {
        Ok(Some(v)) => v,
        Ok(None) => {
            let detail = "empty response payload".to_string();
            return Err((None, BindingError::BadBody { rsc: 0, detail }));
        }
        Err(e) => return Err((None, e)),
    };
    let rqi = v.get("rqi").and_then(|r| r.as_str()).map(String::from);
    let rsc = v.get("rsc").and_then(|r| match r {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    });
    let Some(rsc) = rsc.and_then(|r| u16::try_from(r).ok()) else {
        let detail = format!("no valid rsc in {}", snippet(payload));
        return Err((rqi, BindingError::BadBody { rsc: 0, detail }));
    };
    let Some(rqi) = rqi else {
        let detail = format!("rsc {rsc} without rqi: {}", snippet(payload));
        return Err((None, BindingError::BadBody { rsc, detail }));
    };
    Ok(Response::from_parts(Rsc(rsc), rqi, v.get("pc").cloned()))
}
