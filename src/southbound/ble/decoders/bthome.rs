//! BTHome v2 (bthome.io/format, bthome.io/encryption): service data under UUID 0xFCD2.
//!
//! Layout: `device-info(1) | [MAC(6), reversed, if bit 1] | objects…`, or when bit 0 is set
//! `device-info | [MAC] | ciphertext | counter(4 LE) | MIC(4)` with AES-128-CCM,
//! nonce = `MAC(6, printed order) | d2 fc | device-info | counter bytes as on air`.
//! Objects are `id(1) | value` with a fixed length per id (text and raw carry a length byte).
//! Like bthome-ble, an unknown id or a truncated object stops parsing and keeps what was
//! decoded before it ([`BthomeData::stopped`] says why): the format tells older receivers to
//! do so, because the length of an id they do not know cannot be guessed. Ids the table knows
//! (see `bthome_table`) decode wherever they appear. A text object that is not UTF-8 is
//! dropped and counted in [`BthomeData::invalid_text`], as bthome-ble drops it; the objects
//! after it still decode.

use super::addr::Mac;
use super::bthome_table::{self, Kind, Spec};
use crate::record::{Value, Values};
use aes::Aes128;
use ccm::aead::{AeadInPlace, KeyInit};
use ccm::consts::{U13, U4};
use ccm::Ccm;

/// A per-device AES-128 bindkey.
pub type BindKey = [u8; 16];

type BthomeCcm = Ccm<Aes128, U4, U13>;

const UUID_LE: [u8; 2] = [0xd2, 0xfc];

/// Why BTHome service data could not be decoded at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BthomeError {
    #[error("BTHome service data is empty")]
    Empty,
    #[error("BTHome version {version} is not supported (device-info byte {info:#04x}); only version 2 is")]
    UnsupportedVersion { version: u8, info: u8 },
    #[error("BTHome service data is too short: {len} bytes, need at least {need}")]
    TooShort { len: usize, need: usize },
    #[error("advertisement is encrypted but no bindkey is configured for this device")]
    MissingKey,
    #[error("advertisement is encrypted but the sender MAC is unknown (it is part of the nonce)")]
    MissingMac,
    #[error("{len} bytes of objects do not fit in one advertisement")]
    TooLong { len: usize },
    #[error("decryption failed (MIC mismatch): wrong bindkey or corrupted advertisement (counter {counter})")]
    DecryptFailed { counter: u32 },
}

/// Why object parsing stopped before the end of the payload; values before it are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// An object id the format does not define (its length is unknown, so nothing after it
    /// can be read).
    UnknownObject(u8),
    /// An object whose value runs past the end of the payload.
    Truncated(u8),
}

/// One decoded BTHome advertisement.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BthomeData {
    pub encrypted: bool,
    /// Device-info bit 2: the device only advertises on events ("sleepy").
    pub trigger_based: bool,
    /// The MAC carried in the payload (device-info bit 1), in printed order.
    pub mac: Option<Mac>,
    /// Object 0x00; repeats of one packet carry the same id (dedupe in the rate limiter).
    pub packet_id: Option<u8>,
    /// Encryption counter (replay protection in the rate limiter).
    pub counter: Option<u32>,
    /// Measurements, binary sensors and events by point name, repeated ids suffixed `_1`, `_2`.
    pub values: Values,
    /// True when a button, dimmer or command event (other than "none") is in `values`.
    pub has_event: bool,
    pub stopped: Option<Stop>,
    /// Text objects (0x53) dropped because they were not valid UTF-8.
    pub invalid_text: u32,
}

/// Decodes BTHome v2 service data (the bytes after the UUID).
///
/// `address` is the sender's MAC as reported by the scanner; it is only needed for encrypted
/// payloads that do not carry their own MAC.
pub fn decode(
    data: &[u8],
    address: Option<Mac>,
    key: Option<&BindKey>,
) -> Result<BthomeData, BthomeError> {
    let info = *data.first().ok_or(BthomeError::Empty)?;
    let version = info >> 5;
    if version != 2 {
        return Err(BthomeError::UnsupportedVersion { version, info });
    }
    let mut out = BthomeData {
        encrypted: info & 0x01 != 0,
        trigger_based: info & 0x04 != 0,
        ..BthomeData::default()
    };
    let mut rest = &data[1..];
    if info & 0x02 != 0 {
        if rest.len() < 6 {
            return Err(BthomeError::TooShort {
                len: data.len(),
                need: 7,
            });
        }
        let mut m = [0u8; 6];
        m.copy_from_slice(&rest[..6]);
        out.mac = Some(Mac::from_reversed(m));
        rest = &rest[6..];
    }
    let plain;
    let payload = if out.encrypted {
        let mac = out.mac.or(address).ok_or(BthomeError::MissingMac)?;
        let key = key.ok_or(BthomeError::MissingKey)?;
        let (p, counter) = decrypt(rest, info, mac, key, data.len())?;
        out.counter = Some(counter);
        plain = p;
        &plain[..]
    } else {
        rest
    };
    parse_objects(payload, &mut out);
    Ok(out)
}

/// Decrypts `ciphertext | counter | MIC`; returns the plaintext objects and the counter.
fn decrypt(
    body: &[u8],
    info: u8,
    mac: Mac,
    key: &BindKey,
    total_len: usize,
) -> Result<(Vec<u8>, u32), BthomeError> {
    if body.len() < 9 {
        return Err(BthomeError::TooShort {
            len: total_len,
            need: total_len - body.len() + 9,
        });
    }
    let (ct, tail) = body.split_at(body.len() - 8);
    let (counter_bytes, mic) = tail.split_at(4);
    let counter = u32::from_le_bytes([
        counter_bytes[0],
        counter_bytes[1],
        counter_bytes[2],
        counter_bytes[3],
    ]);
    let mut nonce = [0u8; 13];
    nonce[..6].copy_from_slice(&mac.0);
    nonce[6..8].copy_from_slice(&UUID_LE);
    nonce[8] = info;
    nonce[9..].copy_from_slice(counter_bytes);
    let mut buf = ct.to_vec();
    BthomeCcm::new(key.into())
        .decrypt_in_place_detached((&nonce).into(), &[], &mut buf, mic.into())
        .map_err(|_| BthomeError::DecryptFailed { counter })?;
    Ok((buf, counter))
}

/// One object found in the payload, before naming.
struct Object<'a> {
    spec: &'static Spec,
    value: &'a [u8],
}

fn parse_objects(payload: &[u8], out: &mut BthomeData) {
    let mut objects = Vec::new();
    let mut i = 0;
    while i < payload.len() {
        let id = payload[i];
        let Some(spec) = bthome_table::lookup(id) else {
            out.stopped = Some(Stop::UnknownObject(id));
            break;
        };
        let (start, len) = match spec.kind {
            Kind::Text | Kind::Raw => match payload.get(i + 1) {
                Some(&l) => (i + 2, l as usize),
                None => {
                    out.stopped = Some(Stop::Truncated(id));
                    break;
                }
            },
            // Command byte + (low 5 bits of the length byte) argument bytes.
            Kind::Command => match payload.get(i + 1) {
                Some(&l) => (i + 2, 1 + (l & 0x1f) as usize),
                None => {
                    out.stopped = Some(Stop::Truncated(id));
                    break;
                }
            },
            _ => (i + 1, spec.len),
        };
        let Some(value) = payload.get(start..start + len) else {
            out.stopped = Some(Stop::Truncated(id));
            break;
        };
        objects.push(Object { spec, value });
        i = start + len;
    }
    name_and_store(&objects, out);
}

/// Stores each object under its point name; names used more than once in the payload get
/// `_1`, `_2`… in order of appearance (as bthome-ble does), counting "none" events so that
/// button numbers stay stable.
fn name_and_store(objects: &[Object<'_>], out: &mut BthomeData) {
    let total = |name: &str| objects.iter().filter(|o| o.spec.name == name).count();
    let mut seen: Vec<(&str, usize)> = Vec::new();
    for obj in objects {
        let base = obj.spec.name;
        if obj.spec.id == 0x00 {
            out.packet_id = obj.value.first().copied();
            continue;
        }
        let name = if total(base) > 1 {
            let n = match seen.iter_mut().find(|(b, _)| *b == base) {
                Some((_, n)) => {
                    *n += 1;
                    *n
                }
                None => {
                    seen.push((base, 1));
                    1
                }
            };
            format!("{base}_{n}")
        } else {
            base.to_owned()
        };
        store(obj, name, out);
    }
}

fn store(obj: &Object<'_>, name: String, out: &mut BthomeData) {
    let spec = obj.spec;
    let v = obj.value;
    match spec.kind {
        Kind::Uint => {
            let raw = v.iter().rev().fold(0u64, |a, &b| (a << 8) | b as u64);
            out.values.insert(name, scaled(raw as i64, spec));
        }
        Kind::Sint => {
            let raw = v.iter().rev().fold(0u64, |a, &b| (a << 8) | b as u64);
            let shift = 64 - 8 * v.len() as u32;
            let signed = ((raw << shift) as i64) >> shift;
            out.values.insert(name, scaled(signed, spec));
        }
        Kind::Binary => {
            out.values.insert(name, Value::Bool(v.first() != Some(&0)));
        }
        Kind::Text => match std::str::from_utf8(v) {
            Ok(s) => {
                out.values.insert(name, Value::Str(s.to_owned()));
            }
            Err(_) => out.invalid_text += 1,
        },
        Kind::Raw => {
            out.values.insert(name, Value::Bytes(v.to_vec()));
        }
        Kind::Button => {
            if let Some(ev) = v.first().and_then(|&c| bthome_table::button_event(c)) {
                out.values.insert(name, Value::Str(ev.to_owned()));
                out.has_event = true;
            }
        }
        Kind::Dimmer => {
            if let Some(ev) = v.first().and_then(|&c| bthome_table::dimmer_event(c)) {
                let steps = v.get(1).copied().unwrap_or(0);
                out.values
                    .insert(format!("{name}_steps"), Value::I64(steps as i64));
                out.values.insert(name, Value::Str(ev.to_owned()));
                out.has_event = true;
            }
        }
        Kind::Command => {
            if let Some(ev) = v.first().and_then(|&c| bthome_table::command_event(c)) {
                if v.len() > 1 {
                    out.values
                        .insert(format!("{name}_args"), Value::Bytes(v[1..].to_vec()));
                }
                out.values.insert(name, Value::Str(ev.to_owned()));
                out.has_event = true;
            }
        }
        Kind::Version => {
            let parts: Vec<String> = v.iter().rev().map(|b| b.to_string()).collect();
            out.values.insert(name, Value::Str(parts.join(".")));
        }
    }
}

/// Integers stay integers when the factor is 1; otherwise `raw * mul / div` as f64 (exact
/// decimal division keeps 2506/100 at 25.06).
fn scaled(raw: i64, spec: &Spec) -> Value {
    if spec.mul == 1 && spec.div == 1 {
        Value::I64(raw)
    } else {
        Value::F64((raw as f64 * spec.mul as f64) / spec.div as f64)
    }
}

/// Builds encrypted BTHome service data from plaintext objects (for tests, benchmarks and
/// the field tool's self-check). The inverse of [`decode`]'s decryption.
pub fn encrypt(
    info: u8,
    mac: Mac,
    key: &BindKey,
    counter: u32,
    objects: &[u8],
) -> Result<Vec<u8>, BthomeError> {
    if objects.len() > 255 {
        return Err(BthomeError::TooLong { len: objects.len() });
    }
    let counter_bytes = counter.to_le_bytes();
    let mut nonce = [0u8; 13];
    nonce[..6].copy_from_slice(&mac.0);
    nonce[6..8].copy_from_slice(&UUID_LE);
    nonce[8] = info;
    nonce[9..].copy_from_slice(&counter_bytes);
    let mut buf = objects.to_vec();
    let tag = BthomeCcm::new(key.into())
        .encrypt_in_place_detached((&nonce).into(), &[], &mut buf)
        .map_err(|_| BthomeError::TooLong { len: objects.len() })?;
    let mut out = vec![info];
    out.extend_from_slice(&buf);
    out.extend_from_slice(&counter_bytes);
    out.extend_from_slice(&tag);
    Ok(out)
}
