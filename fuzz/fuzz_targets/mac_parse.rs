//! MAC commands come from the air (FOpts, FPort 0): parsing in either direction must never
//! panic, and whatever parses must encode back to bytes that parse to the same commands.
#![no_main]
use citygate::southbound::lorawan::network::mac;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let up = mac::parse_uplink(data);
    if let Some(e) = &up.error {
        let _ = e.to_string();
    }
    // Every parsed uplink command is within its field ranges, so encoding cannot fail.
    let bytes = mac::encode_uplink(&up.commands).expect("parsed uplink commands encode");
    assert!(bytes.len() <= data.len());
    assert_eq!(mac::parse_uplink(&bytes).commands, up.commands);

    let down = mac::parse_downlink(data);
    // LinkCheckAns margin 255 is reserved and refused on encode; everything else round-trips.
    if let Ok(bytes) = mac::encode_downlink(&down.commands) {
        assert_eq!(mac::parse_downlink(&bytes).commands, down.commands);
    }
});
