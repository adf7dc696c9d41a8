//! AES-128 and AES-CMAC (RFC 4493) as LoRaWAN 1.0.x uses them (TS001-1.0.4 §4.3.3, §4.4, §6.2.5).
//!
//! Written on the RustCrypto `aes` + `cmac` crates rather than through the `lorawan` crate's
//! type-state API: the gateway needs the *computed* MIC for diagnostics, tries one counter value
//! at a time while reconstructing FCnt, and keeps each session key's expanded schedule so the
//! per-frame cost is only the block operations. The `lorawan` crate is used in tests as an
//! independent cross-check.

use aes::cipher::{generic_array::GenericArray, BlockDecrypt, BlockEncrypt, KeyInit};
use aes::Aes128;
use cmac::{Cmac, Mac};

/// Why a key could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("key is not hex: {0}")]
    NotHex(String),
    #[error("key must be 16 bytes (32 hex digits), got {0} bytes")]
    BadLength(usize),
}

/// An AES-128 key with its expanded cipher and CMAC state prepared once.
#[derive(Clone)]
pub struct AesKey {
    bytes: [u8; 16],
    cipher: Aes128,
    mac: Cmac<Aes128>,
}

impl std::fmt::Debug for AesKey {
    /// Never prints key material (logs and panics must not leak keys).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AesKey(<redacted>)")
    }
}

impl PartialEq for AesKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl AesKey {
    pub fn new(bytes: [u8; 16]) -> Self {
        let cipher = Aes128::new(GenericArray::from_slice(&bytes));
        let mac = <Cmac<Aes128> as KeyInit>::new(GenericArray::from_slice(&bytes));
        AesKey { bytes, cipher, mac }
    }

    /// Parses 32 hex digits (spaces, `:` and `-` separators and a `0x` prefix are tolerated
    /// because keys are copied from LNS consoles in all those forms).
    pub fn from_hex(s: &str) -> Result<Self, KeyError> {
        let bytes = parse_hex_array::<16>(s).map_err(|e| match e {
            HexError::NotHex => KeyError::NotHex(redact(s)),
            HexError::BadLength(n) => KeyError::BadLength(n),
        })?;
        Ok(AesKey::new(bytes))
    }

    pub fn bytes(&self) -> &[u8; 16] {
        &self.bytes
    }

    pub fn encrypt_block(&self, block: &mut [u8; 16]) {
        self.cipher
            .encrypt_block(GenericArray::from_mut_slice(block));
    }

    pub fn decrypt_block(&self, block: &mut [u8; 16]) {
        self.cipher
            .decrypt_block(GenericArray::from_mut_slice(block));
    }

    /// First four bytes of AES-CMAC over the concatenation of `parts`.
    pub fn cmac4(&self, parts: &[&[u8]]) -> [u8; 4] {
        let mut mac = self.mac.clone();
        for p in parts {
            mac.update(p);
        }
        let tag = mac.finalize().into_bytes();
        [tag[0], tag[1], tag[2], tag[3]]
    }
}

/// Hex decoding failure for fixed-size fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HexError {
    NotHex,
    BadLength(usize),
}

/// Decodes hex into exactly `N` bytes, ignoring separators and an optional `0x` prefix.
pub fn parse_hex_array<const N: usize>(s: &str) -> Result<[u8; N], HexError> {
    let t = s.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let clean: String = t
        .chars()
        .filter(|c| !matches!(c, ' ' | ':' | '-'))
        .collect();
    let v = hex::decode(&clean).map_err(|_| HexError::NotHex)?;
    <[u8; N]>::try_from(v.as_slice()).map_err(|_| HexError::BadLength(v.len()))
}

/// Shows only the length of a rejected secret so it never reaches a log.
fn redact(s: &str) -> String {
    format!("<{} characters>", s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4493 §4 example 2 (16-byte message) — the CMAC primitive itself.
    #[test]
    fn cmac_matches_rfc4493_example() {
        let key = AesKey::from_hex("2b7e151628aed2a6abf7158809cf4f3c").unwrap();
        let msg = hex::decode("6bc1bee22e409f96e93d7e117393172a").unwrap();
        assert_eq!(key.cmac4(&[&msg]), [0x07, 0x0a, 0x16, 0xb4]);
        // Split input gives the same tag.
        assert_eq!(key.cmac4(&[&msg[..5], &msg[5..]]), [0x07, 0x0a, 0x16, 0xb4]);
    }

    #[test]
    fn aes_round_trip_and_fips197_vector() {
        let key = AesKey::from_hex("000102030405060708090a0b0c0d0e0f").unwrap();
        let mut b: [u8; 16] = parse_hex_array("00112233445566778899aabbccddeeff").unwrap();
        key.encrypt_block(&mut b);
        assert_eq!(hex::encode(b), "69c4e0d86a7b0430d8cdb78070b4c55a");
        key.decrypt_block(&mut b);
        assert_eq!(hex::encode(b), "00112233445566778899aabbccddeeff");
    }

    #[test]
    fn key_parsing_accepts_separators_and_rejects_bad_input() {
        let a = AesKey::from_hex("0x2b:7e:15:16:28:ae:d2:a6:ab:f7:15:88:09:cf:4f:3c").unwrap();
        assert_eq!(a.bytes()[0], 0x2b);
        assert_eq!(AesKey::from_hex("2b7e"), Err(KeyError::BadLength(2)));
        assert!(matches!(AesKey::from_hex("zz"), Err(KeyError::NotHex(_))));
        assert_eq!(format!("{a:?}"), "AesKey(<redacted>)");
    }
}
