//! Pure decoders for the advertisement formats the BLE adapter understands, and the dispatch
//! that picks one for an advertisement.
//!
//! Every decoder is a function over bytes that never panics; malformed input is a
//! [`DecodeError`]. [`decode`] turns an [`Advertisement`] into a [`Decoded`]: point values
//! for the record, metadata, and what the rate limiter needs (packet id, counter, events).

pub mod addr;
pub mod advert;
pub mod bthome;
mod bthome_table;
pub mod eddystone;
pub mod ibeacon;
pub mod ruuvi;
pub mod ruuvi_air;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_edge;
#[cfg(test)]
mod tests_interop;

pub use addr::{BleUuid, Mac};
pub use advert::Advertisement;
pub use bthome::BindKey;

use crate::record::{Value, Values};

/// Service data UUID of BTHome v2.
pub const BTHOME_UUID: BleUuid = BleUuid::from_u16(0xfcd2);
/// Service data UUID of Eddystone.
pub const EDDYSTONE_UUID: BleUuid = BleUuid::from_u16(0xfeaa);
/// Company id of Ruuvi Innovations.
pub const RUUVI_COMPANY: u16 = 0x0499;
/// Company id of Apple (iBeacon).
pub const APPLE_COMPANY: u16 = 0x004c;

/// A format the adapter can decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Bthome,
    Ruuvi,
    Ibeacon,
    Eddystone,
    /// Not a decoder: the undecoded payloads kept as bytes for a device with `store_raw`.
    /// [`detect`] never returns it.
    Raw,
}

impl Format {
    pub fn as_str(&self) -> &'static str {
        match self {
            Format::Bthome => "bthome",
            Format::Ruuvi => "ruuvi",
            Format::Ibeacon => "ibeacon",
            Format::Eddystone => "eddystone",
            Format::Raw => "raw",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "bthome" => Ok(Format::Bthome),
            "ruuvi" => Ok(Format::Ruuvi),
            "ibeacon" => Ok(Format::Ibeacon),
            "eddystone" => Ok(Format::Eddystone),
            other => Err(format!(
                "unknown format `{other}`; expected bthome, ruuvi, ibeacon or eddystone"
            )),
        }
    }
}

/// Any decoder's failure, or no known format in the advertisement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("no known format in the advertisement (no BTHome/Eddystone service data, no Ruuvi/iBeacon manufacturer data)")]
    UnknownFormat,
    #[error("the advertisement carries no {0} data")]
    Missing(&'static str),
    #[error("BTHome: {0}")]
    Bthome(#[from] bthome::BthomeError),
    #[error("Ruuvi: {0}")]
    Ruuvi(#[from] ruuvi::RuuviError),
    #[error("iBeacon: {0}")]
    Ibeacon(#[from] ibeacon::IbeaconError),
    #[error("Eddystone: {0}")]
    Eddystone(#[from] eddystone::EddystoneError),
    #[error("advertisement bytes: {0}")]
    Ad(#[from] advert::AdError),
    #[error("Eddystone service data (0xFEAA) without the Eddystone service UUID in the advertisement's UUID list: not decoded (set format = \"eddystone\" / --format eddystone to decode it anyway)")]
    EddystoneUnlisted,
}

/// A format-independent view of one decoded advertisement.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub format: Format,
    /// Point values for the record.
    pub values: Values,
    /// Identity and transport data for the record's `meta` (packet id, counter, MAC in payload).
    pub meta: Values,
    /// Repeats of one transmission share this number; `modulus` is where it wraps.
    pub sequence: Option<Sequence>,
    /// BTHome encryption counter (replay protection).
    pub counter: Option<u32>,
    /// A button/dimmer event: must reach the buffer even inside the minimum interval.
    pub has_event: bool,
    /// Points that change with every frame (counters, uptime): not a reason to report.
    pub volatile_points: &'static [&'static str],
    /// Set when decoding stopped early (unknown BTHome object) or dropped a value; values
    /// before it are kept.
    pub warning: Option<String>,
    /// Values the format carried but that were invalid and left out (BTHome text that is not
    /// UTF-8), counted so that a technician can see them.
    pub dropped_values: u32,
}

impl Decoded {
    /// The record for this advertisement: values as decoded; meta gets the format, the RSSI
    /// and the decoder's identity data (packet id, counter, MAC in payload).
    pub fn into_record(
        self,
        adapter: &str,
        device: &str,
        ts_ms: i64,
        rssi: Option<i16>,
    ) -> crate::record::Record {
        let mut meta = Values::new();
        meta.insert("format".into(), Value::Str(self.format.as_str().into()));
        if let Some(r) = rssi {
            meta.insert("rssi".into(), Value::I64(r as i64));
        }
        meta.extend(self.meta);
        crate::record::Record {
            adapter: adapter.to_owned(),
            device: device.to_owned(),
            ts_ms,
            values: self.values,
            meta,
            kind: Default::default(),
        }
    }
}

/// A per-transmission number that repeats of the same data share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sequence {
    pub value: u32,
    pub modulus: u32,
}

/// What the decoder knows about the sending device.
#[derive(Debug, Clone, Copy, Default)]
pub struct DecodeContext<'a> {
    /// Sender MAC; overrides `Advertisement::address` when set.
    pub mac: Option<Mac>,
    pub bindkey: Option<&'a BindKey>,
}

/// Picks the format of an advertisement: service data 0xFCD2 = BTHome, manufacturer 0x0499 =
/// Ruuvi, manufacturer 0x004C with type 0x02 = iBeacon, service data 0xFEAA *and* 0xFEAA in
/// the service UUID list = Eddystone. The Eddystone spec requires both (beacontools checks
/// both too); service data alone is too weak a sign, as other vendors' frames have been seen
/// under 0xFEAA. An explicit format (config `format`, `--format`) skips detection.
pub fn detect(adv: &Advertisement) -> Option<Format> {
    if adv.service_data_for(BTHOME_UUID).is_some() {
        Some(Format::Bthome)
    } else if adv.manufacturer_data_for(RUUVI_COMPANY).is_some() {
        Some(Format::Ruuvi)
    } else if adv
        .manufacturer_data_for(APPLE_COMPANY)
        .is_some_and(|d| d.first() == Some(&0x02))
    {
        Some(Format::Ibeacon)
    } else if adv.service_data_for(EDDYSTONE_UUID).is_some()
        && adv.service_uuids.contains(&EDDYSTONE_UUID)
    {
        Some(Format::Eddystone)
    } else {
        None
    }
}

/// Decodes an advertisement in the given format, or the detected one when `format` is `None`.
pub fn decode(
    adv: &Advertisement,
    format: Option<Format>,
    ctx: &DecodeContext<'_>,
) -> Result<Decoded, DecodeError> {
    let format = match format.or_else(|| detect(adv)) {
        Some(f) => f,
        None if adv.service_data_for(EDDYSTONE_UUID).is_some() => {
            return Err(DecodeError::EddystoneUnlisted)
        }
        None => return Err(DecodeError::UnknownFormat),
    };
    match format {
        Format::Bthome => {
            let data = adv
                .service_data_for(BTHOME_UUID)
                .ok_or(DecodeError::Missing("BTHome service data (UUID 0xFCD2)"))?;
            decode_bthome(data, ctx.mac.or(adv.address), ctx.bindkey)
        }
        Format::Ruuvi => {
            let data = adv
                .manufacturer_data_for(RUUVI_COMPANY)
                .ok_or(DecodeError::Missing("Ruuvi manufacturer data (0x0499)"))?;
            decode_ruuvi(data)
        }
        Format::Ibeacon => {
            let data = adv
                .manufacturer_data_for(APPLE_COMPANY)
                .ok_or(DecodeError::Missing("Apple manufacturer data (0x004C)"))?;
            decode_ibeacon(data)
        }
        Format::Eddystone => {
            let data = adv
                .service_data_for(EDDYSTONE_UUID)
                .ok_or(DecodeError::Missing("Eddystone service data (UUID 0xFEAA)"))?;
            decode_eddystone(data)
        }
        Format::Raw => Ok(decode_raw(adv)),
    }
}

/// Every manufacturer and service data payload as bytes: `manufacturer_<company hex>`,
/// `service_<uuid16 hex or full uuid>`. For devices in formats the adapter cannot decode.
pub fn decode_raw(adv: &Advertisement) -> Decoded {
    let mut v = Values::new();
    for (company, data) in &adv.manufacturer_data {
        v.insert(
            format!("manufacturer_{company:04x}"),
            Value::Bytes(data.clone()),
        );
    }
    for (uuid, data) in &adv.service_data {
        let name = match uuid.as_u16() {
            Some(u) => format!("service_{u:04x}"),
            None => format!("service_{uuid}"),
        };
        v.insert(name, Value::Bytes(data.clone()));
    }
    base(Format::Raw, v)
}

fn base(format: Format, values: Values) -> Decoded {
    Decoded {
        format,
        values,
        meta: Values::new(),
        sequence: None,
        counter: None,
        has_event: false,
        volatile_points: &[],
        warning: None,
        dropped_values: 0,
    }
}

/// BTHome service data (after the UUID) to [`Decoded`].
pub fn decode_bthome(
    data: &[u8],
    mac: Option<Mac>,
    key: Option<&BindKey>,
) -> Result<Decoded, DecodeError> {
    let b = bthome::decode(data, mac, key)?;
    let mut d = base(Format::Bthome, b.values);
    d.has_event = b.has_event;
    d.counter = b.counter;
    d.sequence = b.packet_id.map(|p| Sequence {
        value: p as u32,
        modulus: 256,
    });
    if let Some(p) = b.packet_id {
        d.meta.insert("packet_id".into(), Value::I64(p as i64));
    }
    if let Some(c) = b.counter {
        d.meta.insert("counter".into(), Value::I64(c as i64));
    }
    let mut warnings: Vec<String> = b
        .stopped
        .map(|s| match s {
            bthome::Stop::UnknownObject(id) => {
                format!("unknown BTHome object id {id:#04x}; objects after it were skipped")
            }
            bthome::Stop::Truncated(id) => {
                format!("BTHome object {id:#04x} runs past the end of the payload")
            }
        })
        .into_iter()
        .collect();
    if b.invalid_text > 0 {
        warnings.push(format!(
            "{} BTHome text object(s) dropped: not valid UTF-8",
            b.invalid_text
        ));
    }
    d.dropped_values = b.invalid_text;
    d.warning = (!warnings.is_empty()).then(|| warnings.join("; "));
    Ok(d)
}

/// Ruuvi manufacturer data (after the company id) to [`Decoded`]: format 5 (RAWv2) or 6
/// (Ruuvi Air); other formats are reported as unsupported.
pub fn decode_ruuvi(data: &[u8]) -> Result<Decoded, DecodeError> {
    if data.first() == Some(&6) {
        let r = ruuvi_air::decode(data)?;
        let (values, meta) = r.to_values();
        let mut d = base(Format::Ruuvi, values);
        d.meta = meta;
        d.sequence = Some(Sequence {
            value: u32::from(r.measurement_sequence),
            modulus: 256,
        });
        return Ok(d);
    }
    let r = ruuvi::decode(data)?;
    let (values, meta) = r.to_values();
    let mut d = base(Format::Ruuvi, values);
    d.meta = meta;
    d.sequence = r.measurement_sequence.map(|s| Sequence {
        value: s as u32,
        modulus: 65_535,
    });
    Ok(d)
}

/// Apple manufacturer data (after the company id) to [`Decoded`].
pub fn decode_ibeacon(data: &[u8]) -> Result<Decoded, DecodeError> {
    Ok(base(Format::Ibeacon, ibeacon::decode(data)?.to_values()))
}

/// Eddystone service data (after the UUID) to [`Decoded`].
pub fn decode_eddystone(data: &[u8]) -> Result<Decoded, DecodeError> {
    let mut d = base(Format::Eddystone, eddystone::decode(data)?.to_values());
    d.volatile_points = &["adv_count", "uptime"];
    Ok(d)
}

/// Counts advertisements by detected format (unknown ones included) for metrics and the
/// benchmark; cheap enough to call for every advertisement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormatCounts {
    pub bthome: u64,
    pub ruuvi: u64,
    pub ibeacon: u64,
    pub eddystone: u64,
    pub unknown: u64,
}

impl FormatCounts {
    /// Detects the format and counts it.
    pub fn detect(&mut self, adv: &Advertisement) -> Option<Format> {
        let f = detect(adv);
        match f {
            Some(Format::Bthome) => self.bthome += 1,
            Some(Format::Ruuvi) => self.ruuvi += 1,
            Some(Format::Ibeacon) => self.ibeacon += 1,
            Some(Format::Eddystone) => self.eddystone += 1,
            None | Some(Format::Raw) => self.unknown += 1,
        }
        f
    }
}
