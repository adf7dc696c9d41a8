//! ruuvi payload decoder on arbitrary bytes: must return Ok or Err, never panic.
#![no_main]
use citygate::southbound::ble::decoders::ruuvi;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = ruuvi::decode(data) {
        let _ = d.to_values();
    }
});
