//! Replay captures come from other systems: any bytes must parse or be rejected, never panic
//! (invalid UTF-8 included: the adapter hands the raw line over).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = citygate::southbound::replay::parse_line_bytes("fuzz", data);
});
