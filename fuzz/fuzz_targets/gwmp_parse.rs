//! GWMP datagrams come from anyone who can reach the UDP port: parsing must never panic, and
//! whatever parses must encode again.
#![no_main]
use citygate::southbound::lorawan::transport::gwmp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = gwmp::parse(data) {
        let again = gwmp::encode(&p);
        assert!(again.len() >= 4);
    }
});
