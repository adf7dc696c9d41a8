//! Content serialization of primitives on the wire: JSON (the default) or CBOR (RFC 8949),
//! `[northbound] serialization`. The in-memory model is always `serde_json::Value`; only the
//! bytes a binding sends and receives change.
//!
//! CBOR keeps every value exactly: integers stay integers (`u64`/`i64`), floats are written in
//! the shortest IEEE form that holds the value without loss (half, single or double), booleans
//! and strings as such. Decoding a CSE's CBOR answer never panics: garbage, a truncated item,
//! a map with non-text keys, a byte string or a nesting deeper than the decoder's limit is a
//! [`BindingError::BadBody`] with a bounded, escaped snippet.
use super::binding_error::{is_blank, BindingError};
use crate::telemetry::untrusted::snippet;
use serde::Deserialize;

/// Which serialization the bindings use (TS-0009 Content-Type, TS-0010 topic suffix,
/// TS-0008 Content-Format).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Serialization {
    #[default]
    Json,
    Cbor,
}

impl Serialization {
    /// The media type without parameters: `application/json` / `application/cbor`.
    pub fn media_type(self) -> &'static str {
        match self {
            Serialization::Json => "application/json",
            Serialization::Cbor => "application/cbor",
        }
    }

    /// The last level of an MQTT topic (TS-0010): `json` / `cbor`.
    pub fn topic_suffix(self) -> &'static str {
        match self {
            Serialization::Json => "json",
            Serialization::Cbor => "cbor",
        }
    }

    /// The serialization a media type names (`application/cbor;…`, `application/vnd.onem2m-res+cbor`,
    /// a bare `cbor` topic level), if it is one of the two.
    pub fn from_media_type(media: &str) -> Option<Self> {
        let base = media.split(';').next().unwrap_or("").trim();
        let base = base.to_ascii_lowercase();
        if base == "cbor" || base == "application/cbor" || base.ends_with("+cbor") {
            Some(Serialization::Cbor)
        } else if base == "json" || base == "application/json" || base.ends_with("+json") {
            Some(Serialization::Json)
        } else {
            None
        }
    }

    /// Encodes any serializable value (a primitive, a `pc`).
    pub fn encode<T: serde::Serialize + ?Sized>(self, v: &T) -> Result<Vec<u8>, BindingError> {
        match self {
            Serialization::Json => serde_json::to_vec(v)
                .map_err(|e| BindingError::Transport(format!("cannot encode JSON: {e}"))),
            Serialization::Cbor => {
                let mut out = Vec::new();
                ciborium::into_writer(v, &mut out)
                    .map_err(|e| BindingError::Transport(format!("cannot encode CBOR: {e}")))?;
                Ok(out)
            }
        }
    }

    /// Decodes a body: `None` when it is empty (or, for JSON, whitespace only), `BadBody`
    /// (with the `rsc` it came with) when it is not what it claims to be.
    pub fn decode(self, rsc: u16, body: &[u8]) -> Result<Option<serde_json::Value>, BindingError> {
        if body.is_empty() || (self == Serialization::Json && is_blank(body)) {
            return Ok(None);
        }
        let bad = |e: String| BindingError::BadBody {
            rsc,
            detail: format!("{e}; body: {}", snippet(body)),
        };
        match self {
            Serialization::Json => serde_json::from_slice(body)
                .map(Some)
                .map_err(|e| bad(e.to_string())),
            Serialization::Cbor => {
                let mut reader = body;
                let value: serde_json::Value = ciborium::from_reader(&mut reader)
                    .map_err(|e| bad(format!("not CBOR: {e}")))?;
                if !reader.is_empty() {
                    return Err(bad(format!("{} bytes after the CBOR item", reader.len())));
                }
                Ok(Some(value))
            }
        }
    }
}

impl std::fmt::Display for Serialization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.topic_suffix())
    }
}

#[cfg(test)]
#[path = "serialization_tests.rs"]
mod tests;
