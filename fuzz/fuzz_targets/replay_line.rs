//! Replay captures come from other systems: any line must parse or be rejected, never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = citygate::southbound::replay::parse_line("fuzz", text);
    }
});
