//! LoRaWAN 1.0.x MAC commands (TS001 1.0.2, 1.0.3, 1.0.4 chapter 5): parse and encode, both
//! directions, with typed fields.
//!
//! MAC commands travel in FOpts (clear text, at most 15 bytes) or as the FRMPayload of an FPort 0
//! frame (encrypted with the NwkSKey). A command is a one-byte CID followed by a payload whose
//! length is only known from the CID and the direction (1.0.3 §5, note under Table 5), so the
//! first unknown CID ends the parse: [`parse_uplink`] and [`parse_downlink`] return what was read
//! before it together with a [`MacError`] naming the CID and its offset. Nothing here panics on
//! any input; the fuzz target `mac_parse` checks that.
//!
//! RFU bits are ignored on parse and written as zero on encode (1.0.3 §1.2 "RFU bits are set to
//! zero"), so encoding a parsed list gives the canonical bytes.

use serde::Serialize;

/// Command identifiers (1.0.3 Table 5 / 1.0.4 Table 4). The same CID is used for a request and
/// its answer; the direction tells them apart.
pub mod cid {
    pub const LINK_CHECK: u8 = 0x02;
    pub const LINK_ADR: u8 = 0x03;
    pub const DUTY_CYCLE: u8 = 0x04;
    pub const RX_PARAM_SETUP: u8 = 0x05;
    pub const DEV_STATUS: u8 = 0x06;
    pub const NEW_CHANNEL: u8 = 0x07;
    pub const RX_TIMING_SETUP: u8 = 0x08;
    pub const TX_PARAM_SETUP: u8 = 0x09;
    pub const DL_CHANNEL: u8 = 0x0A;
    pub const DEVICE_TIME: u8 = 0x0D;
    /// 0x80..=0xFF are reserved for proprietary network command extensions.
    pub const PROPRIETARY_FIRST: u8 = 0x80;
}

/// Maximum length of the FOpts field (1.0.3 §4.3.1.6).
pub const FOPTS_MAX_LEN: usize = 15;

/// Why a MAC command sequence could not be read to its end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MacError {
    #[error("unknown {direction} MAC command CID 0x{cid:02x} at offset {offset}; the {remaining} bytes from there were not parsed")]
    UnknownCid {
        direction: Direction,
        cid: u8,
        offset: usize,
        remaining: usize,
    },
    #[error("proprietary MAC command CID 0x{cid:02x} at offset {offset} (length unknown); the {remaining} bytes from there were not parsed")]
    Proprietary {
        cid: u8,
        offset: usize,
        remaining: usize,
    },
    #[error("{name} (CID 0x{cid:02x}) at offset {offset} is truncated: needs {need} payload bytes, {have} left")]
    Truncated {
        name: &'static str,
        cid: u8,
        offset: usize,
        need: usize,
        have: usize,
    },
}

/// A field value that does not fit its bits on the air.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{command}: {field} = {value} does not fit ({allowed})")]
pub struct MacEncodeError {
    pub command: &'static str,
    pub field: &'static str,
    pub value: i64,
    pub allowed: &'static str,
}

/// Who sent the commands: uplink = end-device to network, downlink = network to end-device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Direction {
    Uplink,
    Downlink,
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Direction::Uplink => "uplink",
            Direction::Downlink => "downlink",
        })
    }
}

/// The result of parsing a FOpts field or an FPort 0 payload: every command read, and the reason
/// the parse stopped early, if it did.
#[derive(Debug, Clone, PartialEq)]
pub struct MacCommands<T> {
    pub commands: Vec<T>,
    pub error: Option<MacError>,
}

mod fields;
pub use fields::*;

// ---------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------

/// A MAC command sent by an end-device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "command")]
pub enum UplinkCommand {
    LinkCheckReq,
    #[serde(rename = "LinkADRAns")]
    LinkAdrAns(LinkAdrAns),
    DutyCycleAns,
    #[serde(rename = "RXParamSetupAns")]
    RxParamSetupAns(RxParamSetupAns),
    DevStatusAns(DevStatusAns),
    NewChannelAns(NewChannelAns),
    #[serde(rename = "RXTimingSetupAns")]
    RxTimingSetupAns,
    TxParamSetupAns,
    DlChannelAns(DlChannelAns),
    DeviceTimeReq,
}

/// A MAC command sent by the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "command")]
pub enum DownlinkCommand {
    LinkCheckAns(LinkCheckAns),
    #[serde(rename = "LinkADRReq")]
    LinkAdrReq(LinkAdrReq),
    DutyCycleReq(DutyCycleReq),
    #[serde(rename = "RXParamSetupReq")]
    RxParamSetupReq(RxParamSetupReq),
    DevStatusReq,
    NewChannelReq(NewChannelReq),
    #[serde(rename = "RXTimingSetupReq")]
    RxTimingSetupReq(RxTimingSetupReq),
    TxParamSetupReq(TxParamSetupReq),
    DlChannelReq(DlChannelReq),
    DeviceTimeAns(DeviceTimeAns),
}

/// Longest payload of any 1.0.x MAC command (NewChannelReq, DeviceTimeAns).
const MAX_PAYLOAD: usize = 5;

/// Per-direction codec used by the shared parse loop.
trait Codec: Sized {
    const DIRECTION: Direction;
    /// Spec name and payload length of `cid` in this direction.
    fn layout(cid: u8) -> Option<(&'static str, usize)>;
    /// Decodes a known CID; `p` holds the payload padded with zeros to [`MAX_PAYLOAD`].
    fn decode(cid: u8, p: &[u8; MAX_PAYLOAD]) -> Option<Self>;
}

fn bit(b: u8, n: u8) -> bool {
    b & (1 << n) != 0
}

fn freq_from(p: &[u8]) -> u32 {
    match p {
        [a, b, c, ..] => (u32::from(*a) | u32::from(*b) << 8 | u32::from(*c) << 16) * 100,
        _ => 0,
    }
}

impl Codec for UplinkCommand {
    const DIRECTION: Direction = Direction::Uplink;

    fn layout(c: u8) -> Option<(&'static str, usize)> {
        Some(match c {
            cid::LINK_CHECK => ("LinkCheckReq", 0),
            cid::LINK_ADR => ("LinkADRAns", 1),
            cid::DUTY_CYCLE => ("DutyCycleAns", 0),
            cid::RX_PARAM_SETUP => ("RXParamSetupAns", 1),
            cid::DEV_STATUS => ("DevStatusAns", 2),
            cid::NEW_CHANNEL => ("NewChannelAns", 1),
            cid::RX_TIMING_SETUP => ("RXTimingSetupAns", 0),
            cid::TX_PARAM_SETUP => ("TxParamSetupAns", 0),
            cid::DL_CHANNEL => ("DlChannelAns", 1),
            cid::DEVICE_TIME => ("DeviceTimeReq", 0),
            _ => return None,
        })
    }

    fn decode(c: u8, p: &[u8; MAX_PAYLOAD]) -> Option<Self> {
        let b = p[0];
        Some(match c {
            cid::LINK_CHECK => Self::LinkCheckReq,
            cid::LINK_ADR => Self::LinkAdrAns(LinkAdrAns {
                power_ack: bit(b, 2),
                data_rate_ack: bit(b, 1),
                channel_mask_ack: bit(b, 0),
            }),
            cid::DUTY_CYCLE => Self::DutyCycleAns,
            cid::RX_PARAM_SETUP => Self::RxParamSetupAns(RxParamSetupAns {
                rx1_dr_offset_ack: bit(b, 2),
                rx2_data_rate_ack: bit(b, 1),
                channel_ack: bit(b, 0),
            }),
            cid::DEV_STATUS => Self::DevStatusAns(DevStatusAns {
                battery: Battery::from_raw(b),
                // Sign-extend the 6-bit margin: shift its sign bit into bit 7, then back.
                margin_db: ((p[1] << 2) as i8) >> 2,
            }),
            cid::NEW_CHANNEL => Self::NewChannelAns(NewChannelAns {
                data_rate_range_ok: bit(b, 1),
                channel_frequency_ok: bit(b, 0),
            }),
            cid::RX_TIMING_SETUP => Self::RxTimingSetupAns,
            cid::TX_PARAM_SETUP => Self::TxParamSetupAns,
            cid::DL_CHANNEL => Self::DlChannelAns(DlChannelAns {
                uplink_frequency_exists: bit(b, 1),
                channel_frequency_ok: bit(b, 0),
            }),
            cid::DEVICE_TIME => Self::DeviceTimeReq,
            _ => return None,
        })
    }
}

impl Codec for DownlinkCommand {
    const DIRECTION: Direction = Direction::Downlink;

    fn layout(c: u8) -> Option<(&'static str, usize)> {
        Some(match c {
            cid::LINK_CHECK => ("LinkCheckAns", 2),
            cid::LINK_ADR => ("LinkADRReq", 4),
            cid::DUTY_CYCLE => ("DutyCycleReq", 1),
            cid::RX_PARAM_SETUP => ("RXParamSetupReq", 4),
            cid::DEV_STATUS => ("DevStatusReq", 0),
            cid::NEW_CHANNEL => ("NewChannelReq", 5),
            cid::RX_TIMING_SETUP => ("RXTimingSetupReq", 1),
            cid::TX_PARAM_SETUP => ("TxParamSetupReq", 1),
            cid::DL_CHANNEL => ("DlChannelReq", 4),
            cid::DEVICE_TIME => ("DeviceTimeAns", 5),
            _ => return None,
        })
    }

    fn decode(c: u8, p: &[u8; MAX_PAYLOAD]) -> Option<Self> {
        let b = p[0];
        Some(match c {
            cid::LINK_CHECK => Self::LinkCheckAns(LinkCheckAns {
                margin_db: b,
                gw_cnt: p[1],
            }),
            cid::LINK_ADR => Self::LinkAdrReq(LinkAdrReq {
                data_rate: b >> 4,
                tx_power: b & 0x0F,
                ch_mask: u16::from_le_bytes([p[1], p[2]]),
                ch_mask_cntl: (p[3] >> 4) & 0x07,
                nb_trans: p[3] & 0x0F,
            }),
            cid::DUTY_CYCLE => Self::DutyCycleReq(DutyCycleReq {
                max_dcycle: b & 0x0F,
            }),
            cid::RX_PARAM_SETUP => Self::RxParamSetupReq(RxParamSetupReq {
                rx1_dr_offset: (b >> 4) & 0x07,
                rx2_data_rate: b & 0x0F,
                frequency_hz: freq_from(&p[1..]),
            }),
            cid::DEV_STATUS => Self::DevStatusReq,
            cid::NEW_CHANNEL => Self::NewChannelReq(NewChannelReq {
                ch_index: b,
                frequency_hz: freq_from(&p[1..]),
                max_dr: p[4] >> 4,
                min_dr: p[4] & 0x0F,
            }),
            cid::RX_TIMING_SETUP => Self::RxTimingSetupReq(RxTimingSetupReq { delay: b & 0x0F }),
            cid::TX_PARAM_SETUP => Self::TxParamSetupReq(TxParamSetupReq {
                downlink_dwell_time: bit(b, 5),
                uplink_dwell_time: bit(b, 4),
                max_eirp_index: b & 0x0F,
            }),
            cid::DL_CHANNEL => Self::DlChannelReq(DlChannelReq {
                ch_index: b,
                frequency_hz: freq_from(&p[1..]),
            }),
            cid::DEVICE_TIME => Self::DeviceTimeAns(DeviceTimeAns {
                gps_seconds: u32::from_le_bytes([p[0], p[1], p[2], p[3]]),
                fraction_256: p[4],
            }),
            _ => return None,
        })
    }
}

fn parse<T: Codec>(bytes: &[u8]) -> MacCommands<T> {
    let mut commands = Vec::new();
    let mut offset = 0;
    while let Some(&c) = bytes.get(offset) {
        let remaining = bytes.len() - offset;
        let unknown = || {
            if c >= cid::PROPRIETARY_FIRST {
                MacError::Proprietary {
                    cid: c,
                    offset,
                    remaining,
                }
            } else {
                MacError::UnknownCid {
                    direction: T::DIRECTION,
                    cid: c,
                    offset,
                    remaining,
                }
            }
        };
        let Some((name, len)) = T::layout(c) else {
            return MacCommands {
                commands,
                error: Some(unknown()),
            };
        };
        let Some(payload) = bytes.get(offset + 1..offset + 1 + len) else {
            return MacCommands {
                commands,
                error: Some(MacError::Truncated {
                    name,
                    cid: c,
                    offset,
                    need: len,
                    have: remaining - 1,
                }),
            };
        };
        let mut padded = [0u8; MAX_PAYLOAD];
        for (dst, src) in padded.iter_mut().zip(payload) {
            *dst = *src;
        }
        match T::decode(c, &padded) {
            Some(cmd) => commands.push(cmd),
            None => {
                return MacCommands {
                    commands,
                    error: Some(unknown()),
                }
            }
        }
        offset += 1 + len;
    }
    MacCommands {
        commands,
        error: None,
    }
}

/// Parses the MAC commands of an uplink (FOpts, or the decrypted FRMPayload of FPort 0).
pub fn parse_uplink(bytes: &[u8]) -> MacCommands<UplinkCommand> {
    parse(bytes)
}

/// Parses the MAC commands of a downlink.
pub fn parse_downlink(bytes: &[u8]) -> MacCommands<DownlinkCommand> {
    parse(bytes)
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

fn check(
    command: &'static str,
    field: &'static str,
    value: i64,
    ok: bool,
    allowed: &'static str,
) -> Result<(), MacEncodeError> {
    if ok {
        Ok(())
    } else {
        Err(MacEncodeError {
            command,
            field,
            value,
            allowed,
        })
    }
}

fn nibble(command: &'static str, field: &'static str, v: u8) -> Result<u8, MacEncodeError> {
    check(command, field, i64::from(v), v <= 15, "0..=15").map(|()| v)
}

fn put_freq(command: &'static str, hz: u32, out: &mut Vec<u8>) -> Result<(), MacEncodeError> {
    check(
        command,
        "frequency_hz",
        i64::from(hz),
        hz % 100 == 0 && hz / 100 < (1 << 24),
        "a multiple of 100 Hz below 1677.7216 MHz",
    )?;
    out.extend_from_slice(&(hz / 100).to_le_bytes()[..3]);
    Ok(())
}

fn bits(pairs: &[(bool, u8)]) -> u8 {
    pairs
        .iter()
        .filter(|(set, _)| *set)
        .fold(0, |acc, (_, n)| acc | 1 << n)
}

impl UplinkCommand {
    pub fn cid(&self) -> u8 {
        match self {
            Self::LinkCheckReq => cid::LINK_CHECK,
            Self::LinkAdrAns(_) => cid::LINK_ADR,
            Self::DutyCycleAns => cid::DUTY_CYCLE,
            Self::RxParamSetupAns(_) => cid::RX_PARAM_SETUP,
            Self::DevStatusAns(_) => cid::DEV_STATUS,
            Self::NewChannelAns(_) => cid::NEW_CHANNEL,
            Self::RxTimingSetupAns => cid::RX_TIMING_SETUP,
            Self::TxParamSetupAns => cid::TX_PARAM_SETUP,
            Self::DlChannelAns(_) => cid::DL_CHANNEL,
            Self::DeviceTimeReq => cid::DEVICE_TIME,
        }
    }

    /// The spec's name, e.g. `LinkADRAns`.
    pub fn name(&self) -> &'static str {
        <Self as Codec>::layout(self.cid()).map_or("?", |(n, _)| n)
    }

    /// Appends CID and payload to `out`; on error `out` is left as it was.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), MacEncodeError> {
        let start = out.len();
        let r = self.encode_unchecked(out);
        if r.is_err() {
            out.truncate(start);
        }
        r
    }

    fn encode_unchecked(&self, out: &mut Vec<u8>) -> Result<(), MacEncodeError> {
        let name = self.name();
        out.push(self.cid());
        match *self {
            Self::LinkCheckReq
            | Self::DutyCycleAns
            | Self::RxTimingSetupAns
            | Self::TxParamSetupAns
            | Self::DeviceTimeReq => {}
            Self::LinkAdrAns(a) => out.push(bits(&[
                (a.power_ack, 2),
                (a.data_rate_ack, 1),
                (a.channel_mask_ack, 0),
            ])),
            Self::RxParamSetupAns(a) => out.push(bits(&[
                (a.rx1_dr_offset_ack, 2),
                (a.rx2_data_rate_ack, 1),
                (a.channel_ack, 0),
            ])),
            Self::DevStatusAns(a) => {
                if let Battery::Level(n) = a.battery {
                    let ok = (1..=254).contains(&n);
                    check(name, "battery", i64::from(n), ok, "1..=254")?;
                }
                let m = a.margin_db;
                check(
                    name,
                    "margin_db",
                    i64::from(m),
                    (-32..=31).contains(&m),
                    "-32..=31",
                )?;
                out.push(a.battery.raw());
                out.push((m as u8) & 0x3F);
            }
            Self::NewChannelAns(a) => out.push(bits(&[
                (a.data_rate_range_ok, 1),
                (a.channel_frequency_ok, 0),
            ])),
            Self::DlChannelAns(a) => out.push(bits(&[
                (a.uplink_frequency_exists, 1),
                (a.channel_frequency_ok, 0),
            ])),
        }
        Ok(())
    }
}

impl DownlinkCommand {
    pub fn cid(&self) -> u8 {
        match self {
            Self::LinkCheckAns(_) => cid::LINK_CHECK,
            Self::LinkAdrReq(_) => cid::LINK_ADR,
            Self::DutyCycleReq(_) => cid::DUTY_CYCLE,
            Self::RxParamSetupReq(_) => cid::RX_PARAM_SETUP,
            Self::DevStatusReq => cid::DEV_STATUS,
            Self::NewChannelReq(_) => cid::NEW_CHANNEL,
            Self::RxTimingSetupReq(_) => cid::RX_TIMING_SETUP,
            Self::TxParamSetupReq(_) => cid::TX_PARAM_SETUP,
            Self::DlChannelReq(_) => cid::DL_CHANNEL,
            Self::DeviceTimeAns(_) => cid::DEVICE_TIME,
        }
    }

    /// The spec's name, e.g. `LinkADRReq`.
    pub fn name(&self) -> &'static str {
        <Self as Codec>::layout(self.cid()).map_or("?", |(n, _)| n)
    }

    /// Appends CID and payload to `out`; on error `out` is left as it was.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), MacEncodeError> {
        let start = out.len();
        let r = self.encode_unchecked(out);
        if r.is_err() {
            out.truncate(start);
        }
        r
    }

    fn encode_unchecked(&self, out: &mut Vec<u8>) -> Result<(), MacEncodeError> {
        let name = self.name();
        out.push(self.cid());
        match *self {
            Self::DevStatusReq => {}
            Self::LinkCheckAns(a) => {
                check(
                    name,
                    "margin_db",
                    i64::from(a.margin_db),
                    a.margin_db <= 254,
                    "0..=254",
                )?;
                out.extend_from_slice(&[a.margin_db, a.gw_cnt]);
            }
            Self::LinkAdrReq(a) => {
                let dr = nibble(name, "data_rate", a.data_rate)?;
                let pw = nibble(name, "tx_power", a.tx_power)?;
                let nb = nibble(name, "nb_trans", a.nb_trans)?;
                let c = a.ch_mask_cntl;
                check(name, "ch_mask_cntl", i64::from(c), c <= 7, "0..=7")?;
                out.push(dr << 4 | pw);
                out.extend_from_slice(&a.ch_mask.to_le_bytes());
                out.push(c << 4 | nb);
            }
            Self::DutyCycleReq(a) => out.push(nibble(name, "max_dcycle", a.max_dcycle)?),
            Self::RxParamSetupReq(a) => {
                let o = a.rx1_dr_offset;
                check(name, "rx1_dr_offset", i64::from(o), o <= 7, "0..=7")?;
                let dr = nibble(name, "rx2_data_rate", a.rx2_data_rate)?;
                out.push(o << 4 | dr);
                put_freq(name, a.frequency_hz, out)?;
            }
            Self::NewChannelReq(a) => {
                let max = nibble(name, "max_dr", a.max_dr)?;
                let min = nibble(name, "min_dr", a.min_dr)?;
                out.push(a.ch_index);
                put_freq(name, a.frequency_hz, out)?;
                out.push(max << 4 | min);
            }
            Self::RxTimingSetupReq(a) => out.push(nibble(name, "delay", a.delay)?),
            Self::TxParamSetupReq(a) => {
                let e = nibble(name, "max_eirp_index", a.max_eirp_index)?;
                out.push(bits(&[(a.downlink_dwell_time, 5), (a.uplink_dwell_time, 4)]) | e);
            }
            Self::DlChannelReq(a) => {
                out.push(a.ch_index);
                put_freq(name, a.frequency_hz, out)?;
            }
            Self::DeviceTimeAns(a) => {
                out.extend_from_slice(&a.gps_seconds.to_le_bytes());
                out.push(a.fraction_256);
            }
        }
        Ok(())
    }
}

/// Encodes uplink commands back to back (a FOpts field or FPort 0 payload).
pub fn encode_uplink(cmds: &[UplinkCommand]) -> Result<Vec<u8>, MacEncodeError> {
    let mut out = Vec::new();
    for c in cmds {
        c.encode_into(&mut out)?;
    }
    Ok(out)
}

/// Encodes downlink commands back to back.
pub fn encode_downlink(cmds: &[DownlinkCommand]) -> Result<Vec<u8>, MacEncodeError> {
    let mut out = Vec::new();
    for c in cmds {
        c.encode_into(&mut out)?;
    }
    Ok(out)
}

#[cfg(test)]
#[path = "mac_tests.rs"]
mod tests;
