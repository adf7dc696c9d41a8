//! PHYPayloads come from the air: parsing, MIC and decryption must never panic.
#![no_main]
use citygate::southbound::lorawan::network::crypto::AesKey;
use citygate::southbound::lorawan::network::frame::{self, PhyPayload};
use citygate::southbound::lorawan::network::join::JoinAccept;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = AesKey::new([7; 16]);
    match frame::parse(data) {
        Ok(PhyPayload::Data(f)) => {
            let _ = f.mic_ok(&key, u32::from(f.fcnt16));
            let _ = f.decrypt(&key, &key, u32::from(f.fcnt16));
        }
        Ok(PhyPayload::JoinRequest(jr)) => {
            let _ = jr.mic_ok(&key);
        }
        Ok(PhyPayload::JoinAccept(p)) => {
            let _ = JoinAccept::decrypt(p, &key);
        }
        Ok(PhyPayload::Proprietary(_)) | Err(_) => {}
    }
});
