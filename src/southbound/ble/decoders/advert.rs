//! The parts of one BLE advertisement the decoders look at.
//!
//! The scanner fills an [`Advertisement`] from BlueZ device properties (`ServiceData`,
//! `ManufacturerData`, `Name`, `RSSI`); the field tool and the tests fill it from raw AD
//! structures with [`Advertisement::parse_ad`]. Either way the decoders see the same thing:
//! service data without its UUID and manufacturer data without its company id, as BlueZ
//! reports them.

use super::addr::{BleUuid, Mac};

/// One received advertisement (or the merged advertisement + scan response BlueZ reports).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Advertisement {
    /// Sender address; needed for BTHome decryption unless the payload carries it.
    pub address: Option<Mac>,
    pub name: Option<String>,
    pub rssi: Option<i16>,
    /// Flags AD (0x01), if present.
    pub flags: Option<u8>,
    /// Service data by UUID, payload without the UUID.
    pub service_data: Vec<(BleUuid, Vec<u8>)>,
    /// Manufacturer specific data by company id, payload without the company id.
    pub manufacturer_data: Vec<(u16, Vec<u8>)>,
    /// Advertised service UUIDs (16-, 32- and 128-bit lists).
    pub service_uuids: Vec<BleUuid>,
}

/// Why raw AD bytes could not be split into structures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdError {
    #[error("AD structure at offset {offset} claims {len} bytes but only {left} remain")]
    Truncated {
        offset: usize,
        len: usize,
        left: usize,
    },
    #[error("AD structure type {ad_type:#04x} at offset {offset} is too short ({len} bytes)")]
    ShortField {
        ad_type: u8,
        offset: usize,
        len: usize,
    },
}

impl Advertisement {
    /// The service data for a UUID, if advertised.
    pub fn service_data_for(&self, uuid: BleUuid) -> Option<&[u8]> {
        self.service_data
            .iter()
            .find(|(u, _)| *u == uuid)
            .map(|(_, d)| d.as_slice())
    }

    /// The manufacturer data for a company id, if advertised.
    pub fn manufacturer_data_for(&self, company: u16) -> Option<&[u8]> {
        self.manufacturer_data
            .iter()
            .find(|(c, _)| *c == company)
            .map(|(_, d)| d.as_slice())
    }

    /// Splits the AD structures of an advertising (or scan response) payload:
    /// `len(1) | type(1) | data(len-1)`, repeated; a zero length ends the payload (padding).
    /// Unknown AD types are skipped.
    pub fn parse_ad(bytes: &[u8]) -> Result<Advertisement, AdError> {
        let mut adv = Advertisement::default();
        let mut i = 0;
        while i < bytes.len() {
            let len = bytes[i] as usize;
            if len == 0 {
                break;
            }
            let left = bytes.len() - i - 1;
            if len > left {
                return Err(AdError::Truncated {
                    offset: i,
                    len,
                    left,
                });
            }
            let ad_type = bytes[i + 1];
            let data = &bytes[i + 2..i + 1 + len];
            adv.add_structure(ad_type, data)
                .map_err(|()| AdError::ShortField {
                    ad_type,
                    offset: i,
                    len: data.len(),
                })?;
            i += 1 + len;
        }
        Ok(adv)
    }

    fn add_structure(&mut self, ad_type: u8, data: &[u8]) -> Result<(), ()> {
        match ad_type {
            0x01 => self.flags = data.first().copied(),
            0x02 | 0x03 => self.service_uuids.extend(
                data.chunks_exact(2)
                    .map(|c| BleUuid::from_u16(u16::from_le_bytes([c[0], c[1]]))),
            ),
            0x04 | 0x05 => self.service_uuids.extend(
                data.chunks_exact(4)
                    .map(|c| BleUuid::from_u32(u32::from_le_bytes([c[0], c[1], c[2], c[3]]))),
            ),
            0x06 | 0x07 => self.service_uuids.extend(data.chunks_exact(16).map(|c| {
                let mut b = [0u8; 16];
                b.copy_from_slice(c);
                BleUuid::from_le_bytes(b)
            })),
            0x08 | 0x09 => self.name = Some(String::from_utf8_lossy(data).into_owned()),
            0x16 => {
                let (uuid, rest) = split_at_checked(data, 2)?;
                let u = BleUuid::from_u16(u16::from_le_bytes([uuid[0], uuid[1]]));
                self.service_data.push((u, rest.to_vec()));
            }
            0x20 => {
                let (uuid, rest) = split_at_checked(data, 4)?;
                let u = BleUuid::from_u32(u32::from_le_bytes([uuid[0], uuid[1], uuid[2], uuid[3]]));
                self.service_data.push((u, rest.to_vec()));
            }
            0x21 => {
                let (uuid, rest) = split_at_checked(data, 16)?;
                let mut b = [0u8; 16];
                b.copy_from_slice(uuid);
                self.service_data
                    .push((BleUuid::from_le_bytes(b), rest.to_vec()));
            }
            0xff => {
                let (company, rest) = split_at_checked(data, 2)?;
                let c = u16::from_le_bytes([company[0], company[1]]);
                self.manufacturer_data.push((c, rest.to_vec()));
            }
            _ => {}
        }
        Ok(())
    }
}

fn split_at_checked(data: &[u8], n: usize) -> Result<(&[u8], &[u8]), ()> {
    if data.len() < n {
        return Err(());
    }
    Ok(data.split_at(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_bthome_io_example() {
        let raw = hex::decode("0201060b094449592d73656e736f720a16d2fc4002c40903bf13").unwrap();
        let adv = Advertisement::parse_ad(&raw).unwrap();
        assert_eq!(adv.flags, Some(0x06));
        assert_eq!(adv.name.as_deref(), Some("DIY-sensor"));
        assert_eq!(
            adv.service_data_for(BleUuid::from_u16(0xfcd2)),
            Some(&hex::decode("4002c40903bf13").unwrap()[..])
        );
    }

    #[test]
    fn rejects_truncated_and_short_structures() {
        assert_eq!(
            Advertisement::parse_ad(&[0x05, 0x09, b'a']),
            Err(AdError::Truncated {
                offset: 0,
                len: 5,
                left: 2
            })
        );
        assert!(matches!(
            Advertisement::parse_ad(&[0x02, 0x16, 0xd2]),
            Err(AdError::ShortField { ad_type: 0x16, .. })
        ));
        // Zero length = padding: stops, keeps what came before.
        let adv = Advertisement::parse_ad(&[0x02, 0x01, 0x06, 0x00, 0xff, 0xff]).unwrap();
        assert_eq!(adv.flags, Some(6));
    }
}
