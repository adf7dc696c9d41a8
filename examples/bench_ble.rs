//! Throughput of the BLE pipeline without a radio: raw advertisement bytes → AD parsing →
//! format detection → decoding (incl. AES-CCM for encrypted BTHome) → rate limiting.
//!
//! `cargo run --release --example bench_ble [-- N]` (default 200 000 advertisements from
//! 500 devices, a mix of BTHome plain/encrypted, Ruuvi, iBeacon and Eddystone-TLM, each
//! device repeating every transmission 3 times like real sensors do).

use citygate::southbound::ble::decoders::{self, bthome, Advertisement, DecodeContext, Mac};
use citygate::southbound::ble::rate::{DropReason, RateLimiter, RatePolicy, Verdict};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const KEY: [u8; 16] = [0x23; 16];

/// One advertisement of device `dev`, transmission number `n`, as raw AD bytes.
fn advert(dev: u32, n: u32) -> Vec<u8> {
    let mac = mac_of(dev);
    let temp = (2000 + (n % 50) as i16 * 3).to_le_bytes();
    let mut ad = vec![0x02, 0x01, 0x06];
    let mut push_sd = |uuid: [u8; 2], data: &[u8]| {
        ad.push((data.len() + 3) as u8);
        ad.push(0x16);
        ad.extend_from_slice(&uuid);
        ad.extend_from_slice(data);
    };
    match dev % 5 {
        0 => push_sd(
            [0xd2, 0xfc],
            &[
                0x40, 0x00, n as u8, 0x01, 0x5a, 0x02, temp[0], temp[1], 0x03, 0xbf, 0x13,
            ],
        ),
        1 => {
            let objects = [0x00, n as u8, 0x02, temp[0], temp[1], 0x03, 0xbf, 0x13];
            let sd = bthome::encrypt(0x41, mac, &KEY, n, &objects).expect("small payload");
            push_sd([0xd2, 0xfc], &sd);
        }
        2 => {
            let mut m = hex::decode("0512fc5394c37c0004fffc040cac364200cdcbb8334c884f").unwrap();
            m[1..3].copy_from_slice(&(4860 + (n % 20) as i16).to_be_bytes());
            m[16..18].copy_from_slice(&(n as u16).to_be_bytes());
            ad.push(27);
            ad.push(0xff);
            ad.extend_from_slice(&[0x99, 0x04]);
            ad.extend_from_slice(&m);
        }
        3 => ad
            .extend(hex::decode("1aff4c000215e2c56db5dffb48d2b060d0f5a71096e000010002c5").unwrap()),
        _ => {
            let mut tlm = hex::decode("20000bb818800000006400000e10").unwrap();
            tlm[6..10].copy_from_slice(&n.to_be_bytes());
            push_sd([0xaa, 0xfe], &tlm);
        }
    }
    ad
}

fn mac_of(dev: u32) -> Mac {
    let b = dev.to_be_bytes();
    Mac([0xc0, 0xff, b[0], b[1], b[2], b[3]])
}

fn main() {
    let total: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let devices = 500u32;
    // Build the stream up front so only decoding is timed.
    let stream: Vec<(u32, Vec<u8>)> = (0..total as u32)
        .map(|i| {
            let dev = i % devices;
            let n = i / devices / 3; // three repeats per transmission
            (dev, advert(dev, n))
        })
        .collect();
    let bytes: usize = stream.iter().map(|(_, a)| a.len()).sum();

    let t = Instant::now();
    let mut ok = 0usize;
    for (dev, raw) in &stream {
        let mut adv = Advertisement::parse_ad(raw).expect("well-formed");
        adv.address = Some(mac_of(*dev));
        let ctx = DecodeContext {
            mac: None,
            bindkey: Some(&KEY),
        };
        ok += decoders::decode(&adv, None, &ctx).is_ok() as usize;
    }
    let dt = t.elapsed();
    println!(
        "decode only:        {total} adverts ({bytes} bytes) in {:.1} ms = {:.0} adv/s ({ok} decoded)",
        dt.as_secs_f64() * 1e3,
        total as f64 / dt.as_secs_f64()
    );

    let policy = RatePolicy::default();
    let mut limiter = RateLimiter::new();
    let mut counts: HashMap<String, usize> = HashMap::new();
    let clock0 = Instant::now();
    let t = Instant::now();
    for (i, (dev, raw)) in stream.iter().enumerate() {
        // Fake clock: the whole stream spans total/500 seconds (each device ~1 adv/s).
        let now = clock0 + Duration::from_millis(i as u64 * 2);
        let mut adv = Advertisement::parse_ad(raw).expect("well-formed");
        adv.address = Some(mac_of(*dev));
        let ctx = DecodeContext {
            mac: None,
            bindkey: Some(&KEY),
        };
        let Ok(d) = decoders::decode(&adv, None, &ctx) else {
            continue;
        };
        let key = match limiter.observe(&format!("dev{dev}"), now, Some(-70), &d, &policy) {
            Verdict::Emit(_) => "emitted".to_string(),
            Verdict::Drop(
                r @ (DropReason::Duplicate
                | DropReason::Replay
                | DropReason::TooSoon
                | DropReason::Unchanged),
            ) => {
                format!("{r:?}")
            }
        };
        *counts.entry(key).or_default() += 1;
    }
    let dt = t.elapsed();
    let mut c: Vec<_> = counts.into_iter().collect();
    c.sort();
    println!(
        "decode + rate:      {total} adverts in {:.1} ms = {:.0} adv/s; outcome {c:?}",
        dt.as_secs_f64() * 1e3,
        total as f64 / dt.as_secs_f64()
    );
}
