//! Identifiers seen in advertisements: device addresses (MAC) and service UUIDs.
//!
//! Kept as small value types so that config, decoders and the scanner agree on one spelling
//! (`AA:BB:CC:DD:EE:FF`, upper case) and one UUID form (128 bit, 16-bit ones on the
//! Bluetooth base UUID).

use std::fmt;
use std::str::FromStr;

/// A Bluetooth device address in natural (printed) order, most significant byte first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac(pub [u8; 6]);

/// Why a string is not a MAC address or UUID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    #[error("`{0}` is not a MAC address; expected six hex byte pairs like AA:BB:CC:DD:EE:FF")]
    BadMac(String),
    #[error("`{0}` is not a Bluetooth UUID; expected 16-bit hex (`fcd2`, `0xfcd2`) or 128-bit (`0000fcd2-0000-1000-8000-00805f9b34fb`)")]
    BadUuid(String),
}

impl Mac {
    /// The address with its bytes reversed, as it is carried on air (little endian).
    pub fn from_reversed(bytes: [u8; 6]) -> Mac {
        let mut b = bytes;
        b.reverse();
        Mac(b)
    }
}

impl FromStr for Mac {
    type Err = AddrError;
    /// Accepts `:` or `-` separators, or 12 hex digits without separators, any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || AddrError::BadMac(s.to_owned());
        let digits: String = if s.len() == 17 {
            let seps_ok = s
                .char_indices()
                .filter(|(i, _)| i % 3 == 2)
                .all(|(_, c)| c == ':' || c == '-');
            if !seps_ok {
                return Err(bad());
            }
            s.char_indices()
                .filter(|(i, _)| i % 3 != 2)
                .map(|(_, c)| c)
                .collect()
        } else if s.len() == 12 {
            s.to_owned()
        } else {
            return Err(bad());
        };
        let mut out = [0u8; 6];
        hex::decode_to_slice(&digits, &mut out).map_err(|_| bad())?;
        Ok(Mac(out))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02X}:{:02X}:{:02X}:{:02X}:{:02X}:{:02X}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// A service UUID. 16-bit UUIDs are stored expanded on the Bluetooth base UUID, which is also
/// how BlueZ reports them over D-Bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BleUuid(pub u128);

const BASE_UUID: u128 = 0x0000_0000_0000_1000_8000_0080_5f9b_34fb;
const BASE_MASK: u128 = 0xffff_ffff_ffff_ffff_ffff_ffff;

impl BleUuid {
    pub const fn from_u16(short: u16) -> BleUuid {
        BleUuid(BASE_UUID | ((short as u128) << 96))
    }
    pub const fn from_u32(short: u32) -> BleUuid {
        BleUuid(BASE_UUID | ((short as u128) << 96))
    }
    /// The 16-bit form, if this UUID is a 16-bit one on the base UUID.
    pub fn as_u16(&self) -> Option<u16> {
        let short = self.0 >> 96;
        (self.0 & BASE_MASK == BASE_UUID && short <= 0xffff).then_some(short as u16)
    }
    /// Reads a 128-bit UUID as carried on air (little endian).
    pub fn from_le_bytes(b: [u8; 16]) -> BleUuid {
        BleUuid(u128::from_le_bytes(b))
    }
}

impl FromStr for BleUuid {
    type Err = AddrError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || AddrError::BadUuid(s.to_owned());
        let t = s.trim_start_matches("0x").trim_start_matches("0X");
        let hex_only = |x: &str| !x.is_empty() && x.bytes().all(|c| c.is_ascii_hexdigit());
        match t.len() {
            4 | 8 if !hex_only(t) => Err(bad()),
            4 => u16::from_str_radix(t, 16)
                .map(BleUuid::from_u16)
                .map_err(|_| bad()),
            8 => u32::from_str_radix(t, 16)
                .map(BleUuid::from_u32)
                .map_err(|_| bad()),
            36 => {
                let dashes_ok = [8, 13, 18, 23].iter().all(|&i| t.as_bytes()[i] == b'-');
                let digits: String = t.chars().filter(|c| *c != '-').collect();
                if !dashes_ok || digits.len() != 32 || !hex_only(&digits) {
                    return Err(bad());
                }
                u128::from_str_radix(&digits, 16)
                    .map(BleUuid)
                    .map_err(|_| bad())
            }
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for BleUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = format!("{:032x}", self.0);
        write!(
            f,
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_parses_and_prints() {
        let m: Mac = "a4:c1:38:8d:18:b2".parse().unwrap();
        assert_eq!(m.to_string(), "A4:C1:38:8D:18:B2");
        assert_eq!("A4-C1-38-8D-18-B2".parse::<Mac>().unwrap(), m);
        assert_eq!("a4c1388d18b2".parse::<Mac>().unwrap(), m);
        assert_eq!(Mac::from_reversed([0xb2, 0x18, 0x8d, 0x38, 0xc1, 0xa4]), m);
        for bad in [
            "",
            "A4:C1:38:8D:18",
            "A4:C1:38:8D:18:BZ",
            "A4.C1.38.8D.18.B2",
            "é4:C1:38:8D:18:B",
        ] {
            assert!(bad.parse::<Mac>().is_err(), "{bad}");
        }
    }

    #[test]
    fn uuid_forms() {
        let u = BleUuid::from_u16(0xfcd2);
        assert_eq!(u.to_string(), "0000fcd2-0000-1000-8000-00805f9b34fb");
        assert_eq!("fcd2".parse::<BleUuid>().unwrap(), u);
        assert_eq!("0xFCD2".parse::<BleUuid>().unwrap(), u);
        assert_eq!(
            "0000fcd2-0000-1000-8000-00805f9b34fb"
                .parse::<BleUuid>()
                .unwrap(),
            u
        );
        assert_eq!(u.as_u16(), Some(0xfcd2));
        let long: BleUuid = "e2c56db5-dffb-48d2-b060-d0f5a71096e0".parse().unwrap();
        assert_eq!(long.as_u16(), None);
        assert_eq!(long.to_string(), "e2c56db5-dffb-48d2-b060-d0f5a71096e0");
        assert!("xyz".parse::<BleUuid>().is_err());
        assert!("e2c56db5-dffb-48d2-b060+d0f5a71096e0"
            .parse::<BleUuid>()
            .is_err());
    }
}
