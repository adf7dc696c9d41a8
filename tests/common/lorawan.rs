//! What a LoRaWAN packet forwarder would send: uplink frames and GWMP rxpk entries.

use base64::Engine;
use citygate::southbound::lorawan::network::crypto::AesKey;
use citygate::southbound::lorawan::network::frame::{crypt_frm_payload, data_mic};
use citygate::southbound::lorawan::transport::gwmp::{self, RxPk};

/// A data uplink on FPort 2 (encrypted with `app`, MIC with `nwk`).
pub fn uplink(
    confirmed: bool,
    dev_addr: u32,
    fcnt32: u32,
    nwk: &AesKey,
    app: &AesKey,
    pl: &[u8],
) -> Vec<u8> {
    let mut raw = vec![if confirmed { 0x80 } else { 0x40 }];
    raw.extend_from_slice(&dev_addr.to_le_bytes());
    raw.push(0x00);
    raw.extend_from_slice(&(fcnt32 as u16).to_le_bytes());
    raw.push(2);
    let mut enc = pl.to_vec();
    crypt_frm_payload(app, true, dev_addr, fcnt32, &mut enc);
    raw.extend_from_slice(&enc);
    let mic = data_mic(nwk, true, dev_addr, fcnt32, &raw);
    raw.extend_from_slice(&mic);
    raw
}

/// An rxpk as a concentrator reports a frame received on 868.1 MHz, SF7BW125, CRC ok.
pub fn rxpk(phy: &[u8], tmst: u32) -> RxPk {
    RxPk {
        time: None,
        tmst,
        freq: 868.1,
        chan: Some(0),
        rfch: Some(0),
        stat: 1,
        modu: "LORA".into(),
        datr: gwmp::Datr::Lora("SF7BW125".into()),
        codr: Some("4/5".into()),
        lsnr: Some(9.5),
        rssi: -42.0,
        size: Some(phy.len() as u32),
        data: base64::engine::general_purpose::STANDARD.encode(phy),
    }
}
