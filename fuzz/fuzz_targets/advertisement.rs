//! Raw AD structures through detection and every decoder, as the field tool does.
#![no_main]
use citygate::southbound::ble::decoders::{self, Advertisement, DecodeContext, Format};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(adv) = Advertisement::parse_ad(data) {
        let key = [1u8; 16];
        let ctx = DecodeContext { mac: None, bindkey: Some(&key) };
        let _ = decoders::decode(&adv, None, &ctx);
        for f in [Format::Bthome, Format::Ruuvi, Format::Ibeacon, Format::Eddystone] {
            let _ = decoders::decode(&adv, Some(f), &ctx);
        }
    }
    let _ = citygate::southbound::ble::cli::decode_cli(&hex_of(data), None, None, None, true);
});

fn hex_of(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}
