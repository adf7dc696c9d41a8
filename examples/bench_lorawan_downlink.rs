//! Cost of class A downlink scheduling per uplink, with a command downlink queued for the
//! device every time:
//!
//! 1. the scheduling work alone, one core: uplink handled (MIC, decrypt) → MAC answers → next
//!    queued downlink → RX1/RX2 and duty-cycle choice → frame built and encrypted → PULL_RESP
//!    JSON → TX_ACK settles the command; against the same uplinks with nothing queued;
//! 2. the real `lorawan_udp` adapter on a real buffer (FCntDown persisted, `synchronous=full`,
//!    before every PULL_RESP): time from PUSH_DATA to PULL_RESP over 127.0.0.1, p50/p99.
//!
//! Run: `cargo run --release --example bench_lorawan_downlink`.

use base64::Engine;
use citygate::buffer::{Buffer, BufferConfig};
use citygate::commands::{Action, Command, CommandJob, CommandRegistry, Downlink};
use citygate::southbound::lorawan::codec::CodecConfig;
use citygate::southbound::lorawan::network::crypto::AesKey;
use citygate::southbound::lorawan::network::downlink::{
    choose, DeviceQueue, DutyCycle, Uplink, WindowSettings,
};
use citygate::southbound::lorawan::network::frame::{crypt_frm_payload, data_mic};
use citygate::southbound::lorawan::network::mac_state::{answer, MacPolicy, MacState, MacUplink};
use citygate::southbound::lorawan::network::region::Region;
use citygate::southbound::lorawan::network::server::{
    txpk, Device, DownContent, NetworkServer, Outcome, RadioSettings,
};
use citygate::southbound::lorawan::network::session::{DeviceState, Session};
use citygate::southbound::lorawan::transport::gwmp::{self, GatewayEui, Packet, PullRespPayload};
use citygate::southbound::lorawan::{LorawanUdpAdapter, LorawanUdpConfig};
use citygate::southbound::Adapter;
use citygate::telemetry::LorawanMetrics;
use std::sync::Arc;
use std::time::{Duration, Instant};

const UPLINKS: u32 = 50_000;
const NWK: [u8; 16] = [2; 16];
const APP: [u8; 16] = [1; 16];
const ADDR: u32 = 0x2600_0001;

fn uplink(fcnt: u32) -> Vec<u8> {
    let (nwk, app) = (AesKey::new(NWK), AesKey::new(APP));
    let mut raw = vec![0x40];
    raw.extend_from_slice(&ADDR.to_le_bytes());
    raw.push(0);
    raw.extend_from_slice(&(fcnt as u16).to_le_bytes());
    raw.push(2);
    let mut enc = vec![1, 0x67, 0, 0xf3];
    crypt_frm_payload(&app, true, ADDR, fcnt, &mut enc);
    raw.extend_from_slice(&enc);
    let mic = data_mic(&nwk, true, ADDR, fcnt, &raw);
    raw.extend_from_slice(&mic);
    raw
}

fn rxpk(fcnt: u32) -> gwmp::RxPk {
    let phy = uplink(fcnt);
    serde_json::from_str(&format!(
        r#"{{"tmst":{},"freq":868.1,"stat":1,"modu":"LORA","datr":"SF7BW125","codr":"4/5","lsnr":9.5,"rssi":-42,"data":"{}"}}"#,
        fcnt * 7,
        base64::engine::general_purpose::STANDARD.encode(&phy)
    ))
    .unwrap()
}

fn command(
    n: u32,
) -> (
    CommandJob,
    tokio::sync::oneshot::Receiver<citygate::commands::Outcome>,
) {
    let (done, rx) = tokio::sync::oneshot::channel();
    let command = Command {
        key: format!("cin-{n}"),
        id: format!("c{n}"),
        device: "0004a30b00000001".into(),
        action: Action::Downlink(Downlink {
            fport: 10,
            payload: vec![1, 2, 3, 4],
            confirmed: false,
        }),
        created_ms: 0,
        not_after_ms: Some(i64::MAX),
        creator: "C".into(),
    };
    (CommandJob { command, done }, rx)
}

/// Part 1: µs per uplink of the pure scheduling path, with and without a queued downlink.
fn pure(with_downlink: bool) -> f64 {
    let dev = Device {
        dev_eui: 0x0004_a30b_0000_0001,
        otaa: None,
        codec: CodecConfig::CayenneLpp,
        max_fcnt_gap: None,
        state: DeviceState {
            session: Some(Session {
                dev_addr: ADDR,
                nwk_s_key: AesKey::new(NWK),
                app_s_key: AesKey::new(APP),
                fcnt_up: Default::default(),
                fcnt_down: 0,
            }),
            ..Default::default()
        },
    };
    let radio = RadioSettings {
        region: Region::Eu868,
        net_id: 0x13,
        rx1_dr_offset: 0,
        rx_delay_s: 1,
        power_dbm: 14,
        dedup_window: Duration::from_millis(1),
        cf_list: None,
    };
    let mut ns = NetworkServer::new(
        "bench",
        radio,
        vec![dev],
        Arc::new(LorawanMetrics::detached()),
    );
    let settings = WindowSettings::new(Region::Eu868, 0, 1, 14);
    let policy = MacPolicy {
        region: Region::Eu868,
        adr: true,
        margin_db: 10.0,
        min_dr: 0,
        max_dr: 5,
        dev_status_every_ms: None,
        sub_band: None,
        rx1_delay_s: 1,
        rx1_dr_offset: 0,
    };
    // A window so long that the run never reaches the budget: the accounting is timed, not
    // refusals.
    let mut duty = DutyCycle::with_window(Region::Eu868, Duration::from_secs(3600 * 10_000));
    let mut queue = DeviceQueue::default();
    let mut mac = MacState::default();
    let rxs: Vec<gwmp::RxPk> = (0..UPLINKS).map(rxpk).collect();
    let mut outcomes = Vec::with_capacity(UPLINKS as usize);
    let gw = GatewayEui([1; 8]);
    let t0 = Instant::now();
    for (n, rx) in rxs.iter().enumerate() {
        let now = Instant::now() + Duration::from_millis(n as u64 * 2);
        if with_downlink {
            let (job, o) = command(n as u32);
            queue.push(job, i64::MAX, 0);
            outcomes.push(o);
        }
        let Outcome::Uplink { device, heard, .. } = ns.handle_rxpk(gw, rx, now) else {
            panic!("uplink {n} not accepted");
        };
        let up = MacUplink {
            datr: &heard.rx.datr,
            snr: heard.snr,
            adr: heard.adr,
            adr_ack_req: heard.adr_ack_req,
            commands: &heard.mac,
        };
        let reply = answer(&mut mac, &up, &policy, 0);
        let mut content = DownContent {
            fopts: Vec::new(),
            ..Default::default()
        };
        assert!(reply.commands.is_empty());
        if let Some(d) = queue.next(0) {
            content.app = Some((d.fport, d.payload.clone(), d.confirmed));
        }
        if content.is_empty() {
            continue;
        }
        let u = Uplink {
            tmst: heard.rx.tmst,
            freq_mhz: heard.rx.freq,
            datr: heard.rx.datr.clone(),
            received: now,
        };
        let w = choose(&settings, &u, content.phy_len(), &mut duty, now).expect("window");
        let (phy, fcnt) = ns.build_down(device, &content).unwrap();
        let t = txpk(w.tmst, w.freq_mhz, w.datr, w.power_dbm, &phy);
        duty.record(868_100_000, w.airtime_us, now);
        let bytes = gwmp::encode(&Packet::PullResp {
            version: 2,
            token: [0, 1],
            payload: PullRespPayload { txpk: t },
        });
        assert!(bytes.len() > 40);
        queue.sent([0, 1], fcnt, w.rx.name(), now);
        queue.tx_ack(None);
    }
    let us = t0.elapsed().as_secs_f64() * 1e6 / f64::from(UPLINKS);
    if with_downlink {
        assert!(outcomes
            .iter_mut()
            .all(|o| matches!(o.try_recv(), Ok(citygate::commands::Outcome::Done { .. }))));
    }
    us
}

/// Part 2: PUSH_DATA → PULL_RESP through the adapter with a real buffer; latencies in ms.
async fn adapter(rounds: u32) -> Vec<f64> {
    let dir = tempfile::tempdir().unwrap();
    let (buffer, thread) =
        Buffer::open(&dir.path().join("b.sqlite"), &BufferConfig::default()).unwrap();
    let cfg: LorawanUdpConfig = toml::from_str(
        "bind = \"127.0.0.1:0\"\ndedup_window = \"1ms\"\ncommands = true\n[[devices]]\n\
         dev_eui = \"0004a30b00000001\"\nabp = { dev_addr = \"26000001\", nwk_s_key = \"02020202020202020202020202020202\", app_s_key = \"01010101010101010101010101010101\" }\n\
         downlink = { fports = [10] }\n",
    )
    .unwrap();
    let registry = CommandRegistry::new();
    let mut a = LorawanUdpAdapter::new("bench", &cfg, LorawanMetrics::detached())
        .unwrap()
        .with_commands(&registry);
    let mut bound = a.bound_addr();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = {
        let (out, s) = (buffer.sender(), shutdown.clone());
        tokio::spawn(async move { a.run(&out, &s).await })
    };
    let server = bound.wait_for(|x| x.is_some()).await.unwrap().unwrap();
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let gw = GatewayEui([0xaa, 0x55, 0x5a, 0, 0, 0, 0, 1]);
    let mut buf = vec![0u8; 4096];
    sock.send_to(
        &gwmp::encode(&Packet::PullData {
            version: 2,
            token: [0, 0],
            gateway: gw,
        }),
        server,
    )
    .await
    .unwrap();
    sock.recv_from(&mut buf).await.unwrap();
    let target = registry.get("0004a30b00000001").unwrap();
    let mut lat = Vec::new();
    // Each uplink uses a fresh duty-cycle budget: 1 s of tmst apart does not refill it, so the
    // run stays below the g1 budget (4-byte downlinks at SF7 are ~41 ms: 36 s allows ~870).
    for n in 0..rounds {
        let (job, _o) = command(n);
        target.submit(job).unwrap();
        // The adapter takes the job before the uplink arrives (as a command queued earlier).
        tokio::time::sleep(Duration::from_millis(2)).await;
        let push = Packet::PushData {
            version: 2,
            token: [1, n as u8],
            gateway: gw,
            payload: gwmp::PushPayload {
                rxpk: vec![rxpk(n)],
                stat: None,
            },
        };
        let t0 = Instant::now();
        sock.send_to(&gwmp::encode(&push), server).await.unwrap();
        loop {
            let Ok(r) =
                tokio::time::timeout(Duration::from_secs(3), sock.recv_from(&mut buf)).await
            else {
                eprintln!("uplink {n}: no PULL_RESP within 3 s");
                break;
            };
            let (len, _) = r.unwrap();
            if let Ok(Packet::PullResp { token, .. }) = gwmp::parse(&buf[..len]) {
                lat.push(t0.elapsed().as_secs_f64() * 1e3);
                let ack = Packet::TxAck {
                    version: 2,
                    token,
                    gateway: gw,
                    payload: None,
                };
                sock.send_to(&gwmp::encode(&ack), server).await.unwrap();
                break;
            }
        }
    }
    shutdown.cancel();
    let _ = task.await;
    drop(buffer);
    thread.close();
    lat
}

#[tokio::main]
async fn main() {
    let without = pure(false);
    let with = pure(true);
    println!("scheduling, one core: {without:.2} µs/uplink with nothing queued, {with:.2} µs/uplink with a downlink queued (+{:.2} µs)", with - without);
    let mut lat = adapter(300).await;
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let p = |q: f64| lat[((lat.len() - 1) as f64 * q) as usize];
    println!(
        "adapter + buffer (FCntDown saved before each PULL_RESP), {} downlinks: PUSH_DATA → PULL_RESP p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        lat.len(),
        p(0.5),
        p(0.99),
        lat[lat.len() - 1]
    );
}
