//! LoRaWAN 1.0.x PHYPayload parsing, data-frame MIC and FRMPayload encryption
//! (TS001-1.0.4 §4, protocols.md §2.1–2.2).
//!
//! Parsing borrows the radio bytes and checks every length before slicing: frames come from
//! the air and from any host that can reach the UDP port. DevAddr and EUIs are turned into
//! integers from their little-endian wire form, so `{:08x}` prints them the usual way.

use super::crypto::AesKey;
pub use super::frame_error::FrameError;
use super::join::JoinRequest;

/// MType, MHDR bits 7..5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MType {
    JoinRequest,
    JoinAccept,
    UnconfirmedDataUp,
    UnconfirmedDataDown,
    ConfirmedDataUp,
    ConfirmedDataDown,
    Rfu,
    Proprietary,
}

impl MType {
    pub fn from_mhdr(mhdr: u8) -> MType {
        match mhdr >> 5 {
            0 => MType::JoinRequest,
            1 => MType::JoinAccept,
            2 => MType::UnconfirmedDataUp,
            3 => MType::UnconfirmedDataDown,
            4 => MType::ConfirmedDataUp,
            5 => MType::ConfirmedDataDown,
            6 => MType::Rfu,
            _ => MType::Proprietary,
        }
    }

    /// The 3-bit code (0..=7).
    pub fn code(self) -> u8 {
        match self {
            MType::JoinRequest => 0,
            MType::JoinAccept => 1,
            MType::UnconfirmedDataUp => 2,
            MType::UnconfirmedDataDown => 3,
            MType::ConfirmedDataUp => 4,
            MType::ConfirmedDataDown => 5,
            MType::Rfu => 6,
            MType::Proprietary => 7,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            MType::JoinRequest => "JoinRequest",
            MType::JoinAccept => "JoinAccept",
            MType::UnconfirmedDataUp => "UnconfirmedDataUp",
            MType::UnconfirmedDataDown => "UnconfirmedDataDown",
            MType::ConfirmedDataUp => "ConfirmedDataUp",
            MType::ConfirmedDataDown => "ConfirmedDataDown",
            MType::Rfu => "RFU",
            MType::Proprietary => "Proprietary",
        }
    }
}

/// A parsed PHYPayload, borrowing the input bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhyPayload<'a> {
    JoinRequest(JoinRequest),
    /// Still encrypted: only the device (or a holder of its AppKey) can read it.
    JoinAccept(&'a [u8]),
    Data(DataFrame<'a>),
    /// MType 111: vendor-defined. The bytes after the MHDR, as for every other frame type
    /// (the MHDR itself is always `111xxxxx`). There is no standard MIC or FCnt, so nothing is
    /// checked: it is reported, not rejected.
    Proprietary(&'a [u8]),
}

/// Minimum data frame: MHDR(1) + FHDR(7) + MIC(4).
pub const MIN_DATA_LEN: usize = 12;

/// Parses any LoRaWAN 1.0.x PHYPayload without using keys.
pub fn parse(bytes: &[u8]) -> Result<PhyPayload<'_>, FrameError> {
    let Some(&mhdr) = bytes.first() else {
        return Err(FrameError::TooShort { needed: 1, got: 0 });
    };
    let mtype = MType::from_mhdr(mhdr);
    if mtype == MType::Proprietary {
        return Ok(PhyPayload::Proprietary(&bytes[1..]));
    }
    if mhdr & 0x03 != 0 {
        return Err(FrameError::UnsupportedMajor(mhdr & 0x03));
    }
    match mtype {
        MType::JoinRequest => JoinRequest::parse(bytes).map(PhyPayload::JoinRequest),
        MType::JoinAccept => match bytes.len() {
            17 | 33 => Ok(PhyPayload::JoinAccept(bytes)),
            n => Err(FrameError::JoinAcceptLength(n)),
        },
        MType::Rfu => Err(FrameError::RfuMType),
        _ => DataFrame::parse(bytes).map(PhyPayload::Data),
    }
}

/// A data frame (MType 2..=5) with its fields located in the raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFrame<'a> {
    raw: &'a [u8],
    pub mtype: MType,
    pub dev_addr: u32,
    pub fctrl: u8,
    pub fcnt16: u16,
    pub fopts: &'a [u8],
    pub fport: Option<u8>,
    /// Still encrypted.
    pub frm_payload: &'a [u8],
    pub mic: [u8; 4],
}

impl<'a> DataFrame<'a> {
    fn parse(raw: &'a [u8]) -> Result<Self, FrameError> {
        if raw.len() < MIN_DATA_LEN {
            return Err(FrameError::TooShort {
                needed: MIN_DATA_LEN,
                got: raw.len(),
            });
        }
        let mtype = MType::from_mhdr(raw[0]);
        let dev_addr = u32::from_le_bytes([raw[1], raw[2], raw[3], raw[4]]);
        let fctrl = raw[5];
        let fcnt16 = u16::from_le_bytes([raw[6], raw[7]]);
        let fopts_len = usize::from(fctrl & 0x0f);
        let mic_at = raw.len() - 4;
        let fhdr_end = 8 + fopts_len;
        if fhdr_end > mic_at {
            return Err(FrameError::TooShort {
                needed: fhdr_end + 4,
                got: raw.len(),
            });
        }
        let fopts = &raw[8..fhdr_end];
        let (fport, frm_payload) = if fhdr_end < mic_at {
            (Some(raw[fhdr_end]), &raw[fhdr_end + 1..mic_at])
        } else {
            (None, &raw[mic_at..mic_at])
        };
        if fport == Some(0) && fopts_len > 0 {
            return Err(FrameError::FOptsWithPort0);
        }
        let mic = [
            raw[mic_at],
            raw[mic_at + 1],
            raw[mic_at + 2],
            raw[mic_at + 3],
        ];
        Ok(DataFrame {
            raw,
            mtype,
            dev_addr,
            fctrl,
            fcnt16,
            fopts,
            fport,
            frm_payload,
            mic,
        })
    }

    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    pub fn is_uplink(&self) -> bool {
        matches!(
            self.mtype,
            MType::UnconfirmedDataUp | MType::ConfirmedDataUp
        )
    }

    pub fn is_confirmed(&self) -> bool {
        matches!(
            self.mtype,
            MType::ConfirmedDataUp | MType::ConfirmedDataDown
        )
    }

    pub fn adr(&self) -> bool {
        self.fctrl & 0x80 != 0
    }
    /// Uplink ADRACKReq (RFU on downlinks).
    pub fn adr_ack_req(&self) -> bool {
        self.fctrl & 0x40 != 0
    }
    pub fn ack(&self) -> bool {
        self.fctrl & 0x20 != 0
    }
    /// Uplink ClassB, downlink FPending (same bit).
    pub fn bit4(&self) -> bool {
        self.fctrl & 0x10 != 0
    }
    pub fn fopts_len(&self) -> u8 {
        self.fctrl & 0x0f
    }

    /// MIC computed with `nwk_s_key` and the full 32-bit counter.
    pub fn compute_mic(&self, nwk_s_key: &AesKey, fcnt32: u32) -> [u8; 4] {
        let msg = &self.raw[..self.raw.len() - 4];
        data_mic(nwk_s_key, self.is_uplink(), self.dev_addr, fcnt32, msg)
    }

    pub fn mic_ok(&self, nwk_s_key: &AesKey, fcnt32: u32) -> bool {
        self.compute_mic(nwk_s_key, fcnt32) == self.mic
    }

    /// Decrypted FRMPayload: FPort 0 (MAC commands) uses NwkSKey, others AppSKey.
    pub fn decrypt(&self, nwk_s_key: &AesKey, app_s_key: &AesKey, fcnt32: u32) -> Vec<u8> {
        let key = if self.fport == Some(0) {
            nwk_s_key
        } else {
            app_s_key
        };
        let mut out = self.frm_payload.to_vec();
        crypt_frm_payload(key, self.is_uplink(), self.dev_addr, fcnt32, &mut out);
        out
    }
}

/// `B0 | msg` CMAC (TS001 §4.4): B0 = 49 00000000 Dir DevAddr FCnt32 00 len(msg).
pub fn data_mic(key: &AesKey, uplink: bool, dev_addr: u32, fcnt32: u32, msg: &[u8]) -> [u8; 4] {
    let mut b0 = block(0x49, uplink, dev_addr, fcnt32);
    // msg is at most 255 bytes on any LoRa PHY; saturate instead of wrapping for garbage input.
    b0[15] = u8::try_from(msg.len()).unwrap_or(u8::MAX);
    key.cmac4(&[&b0, msg])
}

/// Encrypts or decrypts (the same operation) FRMPayload in place (TS001 §4.3.3).
pub fn crypt_frm_payload(key: &AesKey, uplink: bool, dev_addr: u32, fcnt32: u32, data: &mut [u8]) {
    let mut a = block(0x01, uplink, dev_addr, fcnt32);
    for (i, chunk) in data.chunks_mut(16).enumerate() {
        // i + 1 fits in a byte for any payload below 4 KiB; larger input only gets garbage.
        a[15] = (i + 1) as u8;
        let mut s = a;
        key.encrypt_block(&mut s);
        for (b, k) in chunk.iter_mut().zip(s.iter()) {
            *b ^= k;
        }
    }
}

fn block(first: u8, uplink: bool, dev_addr: u32, fcnt32: u32) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[0] = first;
    b[5] = if uplink { 0 } else { 1 };
    b[6..10].copy_from_slice(&dev_addr.to_le_bytes());
    b[10..14].copy_from_slice(&fcnt32.to_le_bytes());
    b
}

/// What a data downlink carries; built by [`build_data_down`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDown<'p> {
    pub confirmed: bool,
    pub dev_addr: u32,
    pub ack: bool,
    pub adr: bool,
    pub fpending: bool,
    pub fcnt32: u32,
    pub fopts: &'p [u8],
    pub fport: Option<u8>,
    /// Plaintext; encrypted here.
    pub payload: &'p [u8],
}

/// Builds a complete downlink PHYPayload (FOpts truncated to 15 bytes, the field's maximum).
pub fn build_data_down(d: &DataDown<'_>, nwk_s_key: &AesKey, app_s_key: &AesKey) -> Vec<u8> {
    let mhdr = if d.confirmed { 0xa0 } else { 0x60 };
    let fopts = &d.fopts[..d.fopts.len().min(15)];
    let mut fctrl = fopts.len() as u8;
    if d.adr {
        fctrl |= 0x80;
    }
    if d.ack {
        fctrl |= 0x20;
    }
    if d.fpending {
        fctrl |= 0x10;
    }
    let mut out = Vec::with_capacity(13 + fopts.len() + d.payload.len());
    out.push(mhdr);
    out.extend_from_slice(&d.dev_addr.to_le_bytes());
    out.push(fctrl);
    out.extend_from_slice(&(d.fcnt32 as u16).to_le_bytes());
    out.extend_from_slice(fopts);
    if let Some(port) = d.fport {
        out.push(port);
        let mut enc = d.payload.to_vec();
        let key = if port == 0 { nwk_s_key } else { app_s_key };
        crypt_frm_payload(key, false, d.dev_addr, d.fcnt32, &mut enc);
        out.extend_from_slice(&enc);
    }
    let mic = data_mic(nwk_s_key, false, d.dev_addr, d.fcnt32, &out);
    out.extend_from_slice(&mic);
    out
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
