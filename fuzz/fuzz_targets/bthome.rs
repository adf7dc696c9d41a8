//! BTHome service data: plain, and encrypted with a fixed key/MAC (exercises the CCM path).
#![no_main]
use citygate::southbound::ble::decoders::{bthome, Mac};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = [0x23u8; 16];
    let mac = Mac([0x54, 0x48, 0xe6, 0x8f, 0x80, 0xa5]);
    let _ = bthome::decode(data, None, None);
    let _ = bthome::decode(data, Some(mac), Some(&key));
    // Anything that decrypts must decode the same after a round trip through `encrypt`.
    if data.len() > 1 {
        let info = 0x41 | (data[0] & 0x04);
        if let Ok(sd) = bthome::encrypt(info, mac, &key, 7, &data[1..]) {
            let d = bthome::decode(&sd, Some(mac), Some(&key)).expect("own ciphertext decrypts");
            assert_eq!(d.counter, Some(7));
        }
    }
});
