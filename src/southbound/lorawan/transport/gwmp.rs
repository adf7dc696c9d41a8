//! Semtech UDP packet forwarder protocol (GWMP) v2 codec (`Lora-net/packet_forwarder:
//! PROTOCOL.TXT`, protocols.md §3). Version 1 datagrams are accepted too (same layout, no
//! TX_ACK); answers use the version of the request.
//!
//! JSON parsing is lenient (unknown fields ignored, most fields optional) because forwarder
//! forks add and drop fields; the binary header is checked strictly.

use serde::{Deserialize, Serialize};

/// Why a datagram was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GwmpError {
    #[error("datagram too short for {what}: {got} bytes")]
    TooShort { what: &'static str, got: usize },
    #[error("unsupported protocol version {0}")]
    Version(u8),
    #[error("unknown packet identifier {0:#04x}")]
    Identifier(u8),
    #[error("bad JSON in {what}: {msg}")]
    Json { what: &'static str, msg: String },
}

/// Gateway EUI, printed in wire order (`aa555a0000000000`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GatewayEui(pub [u8; 8]);

impl std::fmt::Display for GatewayEui {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// One GWMP datagram.
#[derive(Debug, Clone, PartialEq)]
pub enum Packet {
    PushData {
        version: u8,
        token: [u8; 2],
        gateway: GatewayEui,
        payload: PushPayload,
    },
    PushAck {
        version: u8,
        token: [u8; 2],
    },
    PullData {
        version: u8,
        token: [u8; 2],
        gateway: GatewayEui,
    },
    PullResp {
        version: u8,
        token: [u8; 2],
        payload: PullRespPayload,
    },
    PullAck {
        version: u8,
        token: [u8; 2],
    },
    TxAck {
        version: u8,
        token: [u8; 2],
        gateway: GatewayEui,
        /// `None` when the forwarder sent no JSON (= no error).
        payload: Option<TxAckPayload>,
    },
}

/// JSON body of PUSH_DATA.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PushPayload {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rxpk: Vec<RxPk>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stat: Option<Stat>,
}

/// `datr`: a string for LoRa (`SF7BW125`), a number (bit/s) for FSK.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Datr {
    Lora(String),
    Fsk(u64),
}

impl std::fmt::Display for Datr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Datr::Lora(s) => f.write_str(s),
            Datr::Fsk(n) => write!(f, "{n}"),
        }
    }
}

/// One received packet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RxPk {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// Concentrator µs counter at the end of reception (wraps every ~71.6 min).
    pub tmst: u32,
    pub freq: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chan: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rfch: Option<u32>,
    /// CRC status: 1 OK, -1 fail, 0 no CRC.
    pub stat: i8,
    pub modu: String,
    pub datr: Datr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lsnr: Option<f64>,
    /// dBm; some forks send a float.
    pub rssi: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u32>,
    /// Base64 PHYPayload.
    pub data: String,
}

/// Gateway status report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lati: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alti: Option<f64>,
    #[serde(default)]
    pub rxnb: u64,
    #[serde(default)]
    pub rxok: u64,
    #[serde(default)]
    pub rxfw: u64,
    #[serde(default)]
    pub ackr: f64,
    #[serde(default)]
    pub dwnb: u64,
    #[serde(default)]
    pub txnb: u64,
}

/// JSON body of PULL_RESP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PullRespPayload {
    pub txpk: TxPk,
}

/// A packet to transmit. Field order follows PROTOCOL.TXT's examples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TxPk {
    pub imme: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmst: Option<u32>,
    pub freq: f64,
    pub rfch: u32,
    pub powe: i32,
    pub modu: String,
    pub datr: Datr,
    pub codr: String,
    pub ipol: bool,
    pub size: u32,
    pub data: String,
    #[serde(default)]
    pub ncrc: bool,
}

/// JSON body of TX_ACK.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TxAckPayload {
    pub txpk_ack: TxAckInfo,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TxAckInfo {
    /// `NONE`, `TOO_LATE`, `TOO_EARLY`, `COLLISION_PACKET`, … (absent = none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn: Option<String>,
}

impl TxAckInfo {
    /// The forwarder's error, if it reported a real one.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref().filter(|e| *e != "NONE")
    }
}

const PUSH_DATA: u8 = 0x00;
const PUSH_ACK: u8 = 0x01;
const PULL_DATA: u8 = 0x02;
const PULL_RESP: u8 = 0x03;
const PULL_ACK: u8 = 0x04;
const TX_ACK: u8 = 0x05;

fn json<'a, T: Deserialize<'a>>(bytes: &'a [u8], what: &'static str) -> Result<T, GwmpError> {
    serde_json::from_slice(bytes).map_err(|e| GwmpError::Json {
        what,
        msg: e.to_string(),
    })
}

fn gateway(d: &[u8], what: &'static str) -> Result<GatewayEui, GwmpError> {
    let eui: [u8; 8] = d
        .get(4..12)
        .and_then(|s| s.try_into().ok())
        .ok_or(GwmpError::TooShort { what, got: d.len() })?;
    Ok(GatewayEui(eui))
}

/// Parses one datagram.
pub fn parse(d: &[u8]) -> Result<Packet, GwmpError> {
    if d.len() < 4 {
        return Err(GwmpError::TooShort {
            what: "header",
            got: d.len(),
        });
    }
    let version = d[0];
    if version != 1 && version != 2 {
        return Err(GwmpError::Version(version));
    }
    let token = [d[1], d[2]];
    match d[3] {
        PUSH_DATA => {
            let gateway = gateway(d, "PUSH_DATA")?;
            let payload = json(&d[12..], "PUSH_DATA")?;
            Ok(Packet::PushData {
                version,
                token,
                gateway,
                payload,
            })
        }
        PUSH_ACK => Ok(Packet::PushAck { version, token }),
        PULL_DATA => Ok(Packet::PullData {
            version,
            token,
            gateway: gateway(d, "PULL_DATA")?,
        }),
        PULL_RESP => Ok(Packet::PullResp {
            version,
            token,
            payload: json(&d[4..], "PULL_RESP")?,
        }),
        PULL_ACK => Ok(Packet::PullAck { version, token }),
        TX_ACK => {
            let gateway = gateway(d, "TX_ACK")?;
            let rest = &d[12..];
            // Some forwarders send a trailing NUL or whitespace instead of nothing.
            let blank = rest.iter().all(|b| *b == 0 || b.is_ascii_whitespace());
            let payload = if blank {
                None
            } else {
                Some(json(rest, "TX_ACK")?)
            };
            Ok(Packet::TxAck {
                version,
                token,
                gateway,
                payload,
            })
        }
        other => Err(GwmpError::Identifier(other)),
    }
}

/// Encodes one datagram.
pub fn encode(p: &Packet) -> Vec<u8> {
    let head = |version: u8, token: &[u8; 2], id: u8| vec![version, token[0], token[1], id];
    match p {
        Packet::PushData {
            version,
            token,
            gateway,
            payload,
        } => {
            let mut out = head(*version, token, PUSH_DATA);
            out.extend_from_slice(&gateway.0);
            out.extend_from_slice(&to_json(payload));
            out
        }
        Packet::PushAck { version, token } => head(*version, token, PUSH_ACK),
        Packet::PullData {
            version,
            token,
            gateway,
        } => {
            let mut out = head(*version, token, PULL_DATA);
            out.extend_from_slice(&gateway.0);
            out
        }
        Packet::PullResp {
            version,
            token,
            payload,
        } => {
            let mut out = head(*version, token, PULL_RESP);
            out.extend_from_slice(&to_json(payload));
            out
        }
        Packet::PullAck { version, token } => head(*version, token, PULL_ACK),
        Packet::TxAck {
            version,
            token,
            gateway,
            payload,
        } => {
            let mut out = head(*version, token, TX_ACK);
            out.extend_from_slice(&gateway.0);
            if let Some(p) = payload {
                out.extend_from_slice(&to_json(p));
            }
            out
        }
    }
}

/// These bodies hold only strings, numbers and bools, so serialization fails only for a
/// non-finite float; an empty body is then dropped by the forwarder and shows in its log.
fn to_json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

#[cfg(test)]
#[path = "gwmp_tests.rs"]
mod tests;
