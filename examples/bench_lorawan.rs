//! Uplinks per second through GWMP parse → base64 → PHYPayload parse → FCnt → MIC → decrypt →
//! Cayenne LPP codec → record → committed to the SQLite buffer (synchronous=full, batches of
//! 500, pipelined). Prints the rate without and with the commit.
//! Run: `cargo run --release --example bench_lorawan`.

use base64::Engine;
use citygate::southbound::lorawan::codec::CodecConfig;
use citygate::southbound::lorawan::network::crypto::AesKey;
use citygate::southbound::lorawan::network::frame::{crypt_frm_payload, data_mic};
use citygate::southbound::lorawan::network::region::Region;
use citygate::southbound::lorawan::network::server::{
    Device, NetworkServer, Outcome, RadioSettings,
};
use citygate::southbound::lorawan::network::session::{DeviceState, Session};
use citygate::southbound::lorawan::transport::gwmp::{self, GatewayEui, Packet};
use citygate::telemetry::LorawanMetrics;
use std::sync::Arc;
use std::time::{Duration, Instant};

const DEVICES: u32 = 100;
const UPLINKS: u32 = 200_000;

#[tokio::main]
async fn main() {
    let nwk = AesKey::new([2; 16]);
    let app = AesKey::new([1; 16]);
    let devices = (0..DEVICES)
        .map(|i| Device {
            dev_eui: 0x0004_a30b_0000_0000 | u64::from(i),
            otaa: None,
            codec: CodecConfig::CayenneLpp,
            max_fcnt_gap: None,
            state: DeviceState {
                session: Some(Session {
                    dev_addr: 0x2600_0000 | i,
                    nwk_s_key: nwk.clone(),
                    app_s_key: app.clone(),
                    fcnt_up: Default::default(),
                    fcnt_down: 0,
                }),
                ..Default::default()
            },
        })
        .collect();
    let radio = RadioSettings {
        region: Region::Eu868,
        net_id: 0x13,
        rx1_dr_offset: 0,
        rx_delay_s: 1,
        power_dbm: 14,
        dedup_window: Duration::from_millis(200),
        cf_list: None,
    };
    let counters = Arc::new(LorawanMetrics::detached());
    let mut ns = NetworkServer::new("bench", radio, devices, Arc::clone(&counters));

    // Pre-build the datagrams (what the forwarder would send); only the server side is timed.
    let payload = hex::decode("016700f3026861").unwrap();
    let datagrams: Vec<Vec<u8>> = (0..UPLINKS)
        .map(|n| {
            let (addr, fcnt) = (0x2600_0000 | (n % DEVICES), n / DEVICES);
            let mut raw = vec![0x40];
            raw.extend_from_slice(&addr.to_le_bytes());
            raw.push(0);
            raw.extend_from_slice(&(fcnt as u16).to_le_bytes());
            raw.push(2);
            let mut enc = payload.clone();
            crypt_frm_payload(&app, true, addr, fcnt, &mut enc);
            raw.extend_from_slice(&enc);
            let mic = data_mic(&nwk, true, addr, fcnt, &raw);
            raw.extend_from_slice(&mic);
            let json = format!(
                r#"{{"rxpk":[{{"tmst":{n},"chan":0,"rfch":0,"freq":868.1,"stat":1,"modu":"LORA","datr":"SF7BW125","codr":"4/5","lsnr":9.5,"rssi":-42,"size":{},"data":"{}"}}]}}"#,
                raw.len(),
                base64::engine::general_purpose::STANDARD.encode(&raw)
            );
            let mut d = vec![2, (n >> 8) as u8, n as u8, 0];
            d.extend_from_slice(&[0xaa, 0x55, 0x5a, 0, 0, 0, 0, 1]);
            d.extend_from_slice(json.as_bytes());
            d
        })
        .collect();

    let dir = tempfile::tempdir().unwrap();
    let cfg = citygate::buffer::BufferConfig {
        max_bytes: 1 << 30,
        commit_max_delay: Duration::from_millis(5),
        ..Default::default()
    };
    let (buffer, thread) =
        citygate::buffer::Buffer::open(&dir.path().join("b.sqlite"), &cfg).unwrap();
    let start = Instant::now();
    let mut records = 0u64;
    let mut batch = Vec::with_capacity(500);
    let mut in_flight = std::collections::VecDeque::new();
    let mut decode_only = Duration::ZERO;
    for d in &datagrams {
        let t = Instant::now();
        let Ok(Packet::PushData {
            gateway, payload, ..
        }) = gwmp::parse(d)
        else {
            panic!("bench datagram did not parse");
        };
        let gw: GatewayEui = gateway;
        for rx in &payload.rxpk {
            if let Outcome::Uplink {
                record: Some(r), ..
            } = ns.handle_rxpk(gw, rx, Instant::now())
            {
                records += 1;
                batch.push(r);
            }
        }
        decode_only += t.elapsed();
        if batch.len() >= 500 {
            in_flight.push_back(buffer.submit(std::mem::take(&mut batch)).await.unwrap());
            if in_flight.len() > 4 {
                in_flight.pop_front().unwrap().await.unwrap().unwrap();
            }
        }
    }
    in_flight.push_back(buffer.submit(batch).await.unwrap());
    for rx in in_flight {
        rx.await.unwrap().unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(
        records,
        u64::from(UPLINKS),
        "accepted {} of {UPLINKS} uplinks",
        counters.ok.get()
    );
    let committed = buffer.stats().await.unwrap().pending_records;
    drop(buffer);
    thread.close();
    assert_eq!(committed, u64::from(UPLINKS));
    println!(
        "decode only (GWMP -> MIC -> decrypt -> codec -> record): {:.0} uplinks/s",
        f64::from(UPLINKS) / decode_only.as_secs_f64()
    );
    println!(
        "{UPLINKS} uplinks from {DEVICES} devices committed in {secs:.3} s = {:.0} uplinks/s (goal >= 20000)",
        f64::from(UPLINKS) / secs
    );
}
