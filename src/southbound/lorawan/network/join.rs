//! LoRaWAN 1.0.x over-the-air activation at the edge (TS001-1.0.4 §6.2, protocols.md §2.4):
//! join-request MIC, DevNonce reuse, join-accept construction and encryption, session keys.

use super::crypto::AesKey;
use super::frame_error::FrameError;

/// A join-request (23 bytes on air). EUIs and DevNonce are read from little-endian wire order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    pub join_eui: u64,
    pub dev_eui: u64,
    pub dev_nonce: u16,
    pub mic: [u8; 4],
    raw: [u8; 23],
}

impl JoinRequest {
    pub fn parse(bytes: &[u8]) -> Result<Self, FrameError> {
        let raw: [u8; 23] = bytes
            .try_into()
            .map_err(|_| FrameError::JoinRequestLength(bytes.len()))?;
        let le8 = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&raw[at..at + 8]);
            u64::from_le_bytes(b)
        };
        Ok(JoinRequest {
            join_eui: le8(1),
            dev_eui: le8(9),
            dev_nonce: u16::from_le_bytes([raw[17], raw[18]]),
            mic: [raw[19], raw[20], raw[21], raw[22]],
            raw,
        })
    }

    /// `CMAC(AppKey, MHDR | JoinEUI | DevEUI | DevNonce)[0..3]`.
    pub fn compute_mic(&self, app_key: &AesKey) -> [u8; 4] {
        app_key.cmac4(&[&self.raw[..19]])
    }

    pub fn mic_ok(&self, app_key: &AesKey) -> bool {
        self.compute_mic(app_key) == self.mic
    }

    pub fn raw(&self) -> &[u8; 23] {
        &self.raw
    }

    /// Builds a join-request (used by tests and the field tool's simulator).
    pub fn build(join_eui: u64, dev_eui: u64, dev_nonce: u16, app_key: &AesKey) -> Self {
        let mut raw = [0u8; 23];
        raw[1..9].copy_from_slice(&join_eui.to_le_bytes());
        raw[9..17].copy_from_slice(&dev_eui.to_le_bytes());
        raw[17..19].copy_from_slice(&dev_nonce.to_le_bytes());
        let mic = app_key.cmac4(&[&raw[..19]]);
        raw[19..23].copy_from_slice(&mic);
        JoinRequest {
            join_eui,
            dev_eui,
            dev_nonce,
            mic,
            raw,
        }
    }
}

/// Join-accept content (plaintext). AppNonce and NetID are 24-bit values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinAccept {
    pub app_nonce: u32,
    pub net_id: u32,
    pub dev_addr: u32,
    /// bit7 RFU, bits 6..4 RX1DROffset, bits 3..0 RX2 data rate.
    pub dl_settings: u8,
    /// RX1 delay in seconds (0 and 1 both mean 1 s).
    pub rx_delay: u8,
    pub cf_list: Option<[u8; 16]>,
}

/// Why a join-accept could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("not a join-accept (MHDR {0:#04x})")]
    NotJoinAccept(u8),
}

impl JoinAccept {
    pub fn rx1_dr_offset(&self) -> u8 {
        (self.dl_settings >> 4) & 0x07
    }

    pub fn rx2_data_rate(&self) -> u8 {
        self.dl_settings & 0x0f
    }

    /// Plaintext PHYPayload `MHDR | fields | MIC` (what the MIC covers, plus the MIC).
    pub fn encode_plain(&self, app_key: &AesKey) -> Vec<u8> {
        let mut out = Vec::with_capacity(33);
        out.push(0x20);
        out.extend_from_slice(&self.app_nonce.to_le_bytes()[..3]);
        out.extend_from_slice(&self.net_id.to_le_bytes()[..3]);
        out.extend_from_slice(&self.dev_addr.to_le_bytes());
        out.push(self.dl_settings);
        out.push(self.rx_delay);
        if let Some(cf) = &self.cf_list {
            out.extend_from_slice(cf);
        }
        let mic = app_key.cmac4(&[&out]);
        out.extend_from_slice(&mic);
        out
    }

    /// The PHYPayload to transmit: everything after MHDR goes through AES *decrypt* so that
    /// the device, which only has AES encrypt, recovers it (TS001 §6.2.6).
    pub fn encrypt(&self, app_key: &AesKey) -> Vec<u8> {
        let mut out = self.encode_plain(app_key);
        for chunk in out[1..].chunks_exact_mut(16) {
            let mut b = [0u8; 16];
            b.copy_from_slice(chunk);
            app_key.decrypt_block(&mut b);
            chunk.copy_from_slice(&b);
        }
        out
    }

    /// Decrypts a join-accept PHYPayload; returns the content and whether its MIC verified.
    pub fn decrypt(phy: &[u8], app_key: &AesKey) -> Result<(JoinAccept, bool), JoinError> {
        if phy.len() != 17 && phy.len() != 33 {
            return Err(FrameError::JoinAcceptLength(phy.len()).into());
        }
        if phy[0] != 0x20 {
            return Err(JoinError::NotJoinAccept(phy[0]));
        }
        let mut plain = phy.to_vec();
        for chunk in plain[1..].chunks_exact_mut(16) {
            let mut b = [0u8; 16];
            b.copy_from_slice(chunk);
            app_key.encrypt_block(&mut b);
            chunk.copy_from_slice(&b);
        }
        let ja = Self::from_plain(&plain)?;
        let n = plain.len();
        let mic_ok = app_key.cmac4(&[&plain[..n - 4]]) == plain[n - 4..];
        Ok((ja, mic_ok))
    }

    /// Reads the fields of a plaintext join-accept PHYPayload (17 or 33 bytes).
    pub fn from_plain(p: &[u8]) -> Result<JoinAccept, JoinError> {
        if p.len() != 17 && p.len() != 33 {
            return Err(FrameError::JoinAcceptLength(p.len()).into());
        }
        let u24 = |at: usize| u32::from_le_bytes([p[at], p[at + 1], p[at + 2], 0]);
        let cf_list = if p.len() == 33 {
            let mut cf = [0u8; 16];
            cf.copy_from_slice(&p[13..29]);
            Some(cf)
        } else {
            None
        };
        Ok(JoinAccept {
            app_nonce: u24(1),
            net_id: u24(4),
            dev_addr: u32::from_le_bytes([p[7], p[8], p[9], p[10]]),
            dl_settings: p[11],
            rx_delay: p[12],
            cf_list,
        })
    }
}

/// Session keys of an activated device.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionKeys {
    pub nwk_s_key: AesKey,
    pub app_s_key: AesKey,
}

/// `aes128_encrypt(AppKey, 0x01|0x02 | AppNonce | NetID | DevNonce | pad16)` (LoRaWAN 1.0.x).
pub fn derive_session_keys(
    app_key: &AesKey,
    app_nonce: u32,
    net_id: u32,
    dev_nonce: u16,
) -> SessionKeys {
    let derive = |kind: u8| {
        let mut b = [0u8; 16];
        b[0] = kind;
        b[1..4].copy_from_slice(&app_nonce.to_le_bytes()[..3]);
        b[4..7].copy_from_slice(&net_id.to_le_bytes()[..3]);
        b[7..9].copy_from_slice(&dev_nonce.to_le_bytes());
        app_key.encrypt_block(&mut b);
        AesKey::new(b)
    };
    SessionKeys {
        nwk_s_key: derive(0x01),
        app_s_key: derive(0x02),
    }
}

/// DevNonces a device has used, kept so a replayed join-request cannot reset its session.
///
/// LoRaWAN 1.0.3 DevNonces are random (the network keeps the list); 1.0.4 makes them a
/// counter, which this check also covers. The list is bounded; the oldest values go first.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DevNonceHistory {
    used: std::collections::VecDeque<u16>,
}

impl DevNonceHistory {
    /// How many DevNonces are remembered per device.
    pub const CAPACITY: usize = 1024;

    pub fn is_used(&self, nonce: u16) -> bool {
        self.used.contains(&nonce)
    }

    /// Records `nonce`; returns `false` (and changes nothing) if it was already used.
    pub fn record(&mut self, nonce: u16) -> bool {
        if self.is_used(nonce) {
            return false;
        }
        if self.used.len() >= Self::CAPACITY {
            self.used.pop_front();
        }
        self.used.push_back(nonce);
        true
    }

    pub fn len(&self) -> usize {
        self.used.len()
    }

    pub fn is_empty(&self) -> bool {
        self.used.is_empty()
    }
}

#[cfg(test)]
#[path = "join_tests.rs"]
mod tests;
