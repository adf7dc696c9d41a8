//! The "no codec" codec: the payload as one string value, for decoding further up the chain.

use super::Decoded;
use crate::record::Value;
use base64::Engine;
use serde::Deserialize;

/// How raw payload bytes are written into the record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RawEncoding {
    #[default]
    Hex,
    Base64,
}

/// `payload` = hex or base64 of the bytes.
pub fn decode(encoding: RawEncoding, payload: &[u8]) -> Decoded {
    let text = match encoding {
        RawEncoding::Hex => hex::encode(payload),
        RawEncoding::Base64 => base64::engine::general_purpose::STANDARD.encode(payload),
    };
    let mut d = Decoded::default();
    d.values.insert("payload".into(), Value::Str(text));
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_base64() {
        let d = decode(RawEncoding::Hex, &[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(d.values["payload"], Value::Str("deadbeef".into()));
        let d = decode(RawEncoding::Base64, &[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(d.values["payload"], Value::Str("3q2+7w==".into()));
        assert_eq!(
            decode(RawEncoding::Hex, &[]).values["payload"],
            Value::Str(String::new())
        );
    }
}
