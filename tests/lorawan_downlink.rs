//! Class A downlinks of `lorawan_udp`, end to end: a packet-forwarder simulator on 127.0.0.1
//! talks GWMP v2 to the adapter; commands come through the command registry as the
//! dispatcher sends them. The downlink must appear in the PULL_RESP after the device's next
//! uplink at RX1 time and frequency (EU868 and US915, RP002-1.0.4 §2.4.7 and §2.5.7), decrypt
//! with an independent implementation (the `lorawan` crate), and use a FCntDown that never
//! repeats, also after the adapter is rebuilt on the same buffer database.

mod common;

use base64::Engine;
use citygate::buffer::RecordSender;
use citygate::commands::{Action, Command, CommandJob, CommandRegistry, Downlink, Outcome, Safety};
use citygate::record::Value;
use citygate::southbound::lorawan::network::frame::{self, PhyPayload};
use citygate::southbound::lorawan::network::mac::{self, DownlinkCommand};
use citygate::southbound::lorawan::transport::gwmp::{Datr, TxPk};
use citygate::southbound::lorawan::{LorawanUdpAdapter, LorawanUdpConfig};
use citygate::telemetry::LorawanMetrics;
use common::lorawan::{
    abp_device, confirmed_sf12, device_uplink, keys, spawn_adapter, AdapterTask, Forwarder,
    DEV_ADDR, DEV_EUI,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

fn config(extra: &str, region: &str) -> LorawanUdpConfig {
    let abp = abp_device();
    let cfg: LorawanUdpConfig = toml::from_str(&format!(
        r#"
bind = "127.0.0.1:0"
dedup_window = "10ms"
commands = true
{region}
{extra}
[[devices]]
{abp}downlink = {{ fports = [10], max_bytes = 20, confirmed = true, encoder = {{ fport = 10, fields = [
  {{ name = "valve", byte_offset = 0, type = "u8" }},
  {{ name = "setpoint", byte_offset = 1, type = "i16", scale = 0.1 }},
] }} }}
"#
    ))
    .unwrap();
    assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
    cfg
}

struct Running {
    adapter: AdapterTask,
    registry: Arc<CommandRegistry>,
}

async fn start(cfg: &LorawanUdpConfig, out: RecordSender) -> Running {
    let registry = CommandRegistry::new();
    let adapter = LorawanUdpAdapter::new("lora", cfg, LorawanMetrics::detached())
        .unwrap()
        .with_commands(&registry);
    Running {
        adapter: spawn_adapter(adapter, out).await,
        registry,
    }
}

impl Running {
    async fn stop(self) {
        self.adapter.stop().await;
    }

    /// A forwarder with the downlink path to the adapter open.
    async fn forwarder(&self) -> Forwarder {
        Forwarder::pulled(self.adapter.server).await
    }

    /// Checks and submits a downlink command as the dispatcher does; the receiver of its outcome.
    fn command(&self, hex_payload: &str, confirmed: bool) -> oneshot::Receiver<Outcome> {
        self.submit(Action::Downlink(Downlink {
            fport: 10,
            payload: hex::decode(hex_payload).unwrap(),
            confirmed,
        }))
    }

    fn submit(&self, action: Action) -> oneshot::Receiver<Outcome> {
        let command = Command {
            key: "cin".into(),
            id: "valve".into(),
            device: DEV_EUI.into(),
            action,
            created_ms: citygate::record::now_ms(),
            not_after_ms: Some(citygate::record::now_ms() + 60_000),
            creator: "Cplatform".into(),
        };
        let target = self.registry.get(DEV_EUI).expect("device registered");
        assert_eq!(target.check(&command), Ok(Safety::Once));
        let (done, rx) = oneshot::channel();
        target.submit(CommandJob { command, done }).expect("queued");
        rx
    }
}

/// An uplink on 868.1 MHz SF7BW125 at `tmst` with FCtrl bits and FOpts.
fn up(
    fcnt: u32,
    tmst: u32,
    fctrl: u8,
    fopts: &[u8],
) -> citygate::southbound::lorawan::transport::gwmp::RxPk {
    device_uplink(false, fctrl, fopts, fcnt, tmst)
}

/// The downlink in `txpk`, checked and decrypted by the `lorawan` crate: (FCnt, FPort,
/// payload, confirmed, FOpts).
fn open(txpk: &TxPk, fcnt: u32) -> (u16, Option<u8>, Vec<u8>, bool, Vec<u8>) {
    let mut phy = base64::engine::general_purpose::STANDARD
        .decode(&txpk.data)
        .unwrap();
    assert_eq!(txpk.size as usize, phy.len());
    let Ok(PhyPayload::Data(d)) = frame::parse(&phy) else {
        panic!("not a data frame");
    };
    let (f16, port, confirmed, fopts) = (d.fcnt16, d.fport, d.is_confirmed(), d.fopts.to_vec());
    assert!(!d.is_uplink() && d.dev_addr == DEV_ADDR);
    let (nwk, app) = keys();
    use lorawan::keys::AES128;
    use lorawan::parser::{parse, DataPayload, FRMPayload, PhyPayload as Lr};
    let Ok(Lr::Data(DataPayload::Encrypted(enc))) = parse(&mut phy[..]) else {
        panic!("the lorawan crate did not parse the downlink");
    };
    assert!(
        enc.validate_mic(&AES128(*nwk.bytes()), fcnt),
        "MIC with FCntDown {fcnt}"
    );
    let dec = enc
        .decrypt(
            Some(&AES128(*nwk.bytes())),
            Some(&AES128(*app.bytes())),
            fcnt,
        )
        .unwrap();
    let payload = match dec.frm_payload() {
        FRMPayload::Data(data) => data.to_vec(),
        _ => Vec::new(),
    };
    (f16, port, payload, confirmed, fopts)
}

fn fcnt_down(o: &Outcome) -> i64 {
    match o {
        Outcome::Done { read_back } => match read_back["fcnt_down"] {
            Value::I64(n) => n,
            ref v => panic!("{v:?}"),
        },
        other => panic!("not done: {other:?}"),
    }
}

#[tokio::test]
async fn eu868_rx1_decrypts_tx_ack_errors_retry_and_fcnt_down_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (buffer, thread) = common::open(&dir.path().join("b.sqlite"), &common::quick_config());
    let cfg = config("", "region = \"EU868\"");
    let run = start(&cfg, buffer.sender()).await;
    let mut fwd = run.forwarder().await;

    // Queued, then sent in RX1 of the next uplink: tmst + 1 s, the uplink channel and DR.
    let mut done = run.command("01ff", false);
    fwd.push(up(0, 5_000_000, 0, &[])).await;
    let (token, txpk) = fwd.pull_resp(5.0).await.expect("downlink after the uplink");
    assert_eq!(txpk.tmst, Some(6_000_000));
    assert_eq!((txpk.freq, txpk.powe), (868.1, 14));
    assert_eq!(txpk.datr, Datr::Lora("SF7BW125".into()));
    assert!(txpk.ipol && !txpk.imme);
    let (f16, port, payload, confirmed, _) = open(&txpk, 0);
    assert_eq!(
        (f16, port, payload, confirmed),
        (0, Some(10), vec![1, 0xff], false)
    );
    assert!(done.try_recv().is_err(), "not done before the TX_ACK");
    fwd.tx_ack(token, None).await;
    assert_eq!(fcnt_down(&common::within(5, &mut done).await.unwrap()), 0);

    // Confirmed: the gateway says TOO_LATE, so it goes again at the next uplink with a new
    // FCntDown; done only when the device's next uplink carries the ACK bit.
    let mut done = run.command("02", true);
    fwd.push(up(1, 7_000_000, 0, &[])).await;
    let (token, txpk) = fwd.pull_resp(5.0).await.unwrap();
    assert!(open(&txpk, 1).3, "confirmed data down");
    fwd.tx_ack(token, Some("TOO_LATE")).await;
    fwd.push(up(2, 9_000_000, 0, &[])).await;
    let (token, txpk) = fwd.pull_resp(5.0).await.unwrap();
    let (f16, _, payload, _, _) = open(&txpk, 2);
    assert_eq!((f16, payload), (2, vec![2]));
    fwd.tx_ack(token, None).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(done.try_recv().is_err(), "waits for the device's ACK");
    fwd.push(up(3, 11_000_000, 0x20, &[])).await;
    assert_eq!(fcnt_down(&common::within(5, &mut done).await.unwrap()), 2);
    assert!(fwd.pull_resp(0.3).await.is_none(), "nothing more to send");

    // A gateway that cannot transmit on the frequency: failed, named.
    let mut done = run.command("03", false);
    fwd.push(up(4, 13_000_000, 0, &[])).await;
    let (token, txpk) = fwd.pull_resp(5.0).await.unwrap();
    assert_eq!(open(&txpk, 3).0, 3);
    fwd.tx_ack(token, Some("TX_FREQ")).await;
    match common::within(5, &mut done).await.unwrap() {
        Outcome::Failed { reason } => assert!(reason.contains("TX_FREQ"), "{reason}"),
        other => panic!("{other:?}"),
    }

    // Rebuilt on the same buffer database: FCntDown carries on (never reused).
    run.stop().await;
    let run = start(&cfg, buffer.sender()).await;
    let mut fwd = run.forwarder().await;
    let mut done = run.command("04", false);
    fwd.push(up(5, 15_000_000, 0, &[])).await;
    let (token, txpk) = fwd.pull_resp(5.0).await.unwrap();
    assert_eq!(open(&txpk, 4).0, 4, "FCntDown after the restart");
    fwd.tx_ack(token, None).await;
    assert_eq!(fcnt_down(&common::within(5, &mut done).await.unwrap()), 4);

    // LinkCheckReq in FOpts: LinkCheckAns with the margin of SNR 9.5 dB at SF7 (-7.5 dB
    // needed) = 17 dB, one gateway.
    fwd.push(up(6, 17_000_000, 0, &[0x02])).await;
    let (_, txpk) = fwd.pull_resp(5.0).await.expect("LinkCheckAns");
    let (f16, port, _, _, fopts) = open(&txpk, 5);
    assert_eq!((f16, port), (5, None));
    let cmds = mac::parse_downlink(&fopts).commands;
    assert_eq!(
        cmds,
        [DownlinkCommand::LinkCheckAns(mac::LinkCheckAns {
            margin_db: 17,
            gw_cnt: 1
        })]
    );

    // ADRACKReq right after the restart, with nothing else due: answered all the same (an
    // empty downlink resets the device's ADR_ACK_CNT).
    fwd.push(up(7, 19_000_000, 0x40, &[])).await;
    let (_, txpk) = fwd.pull_resp(5.0).await.expect("answer to ADRACKReq");
    assert_eq!(txpk.tmst, Some(20_000_000));
    let (f16, port, _, _, fopts) = open(&txpk, 6);
    assert_eq!((f16, port, fopts.len()), (6, None, 0));
    run.stop().await;
    drop(buffer);
    thread.close();
}

/// RP002-1.0.4 §2.5.7: US915 RX1 for an uplink on 125 kHz channel n is downlink channel
/// n mod 8 (923.3 + 0.6 × (n mod 8) MHz) at DR 10 + up DR - RX1DROffset: channel 9
/// (904.1 MHz, sub-band 2) at SF7BW125 (DR3) → 923.9 MHz, DR13 = SF7BW500; RX2 923.3 MHz DR8.
#[tokio::test]
async fn us915_rx1_frequency_and_data_rate_and_adr() {
    let dir = tempfile::tempdir().unwrap();
    let (buffer, thread) = common::open(&dir.path().join("b.sqlite"), &common::quick_config());
    let cfg = config(
        "adr = { enabled = true, max_dr = 3 }",
        "region = \"US915\"\nsub_band = 2",
    );
    let run = start(&cfg, buffer.sender()).await;
    let mut fwd = run.forwarder().await;
    let mut done = run.command("0a0b", false);
    let mut rx = up(0, 1_000_000, 0, &[]);
    rx.freq = 904.1;
    fwd.push(rx).await;
    let (token, txpk) = fwd.pull_resp(5.0).await.unwrap();
    assert_eq!(txpk.tmst, Some(2_000_000));
    assert!((txpk.freq - 923.9).abs() < 1e-6, "{}", txpk.freq);
    assert_eq!(txpk.datr, Datr::Lora("SF7BW500".into()));
    assert_eq!(txpk.powe, 20);
    assert_eq!(open(&txpk, 0).2, vec![0x0a, 0x0b]);
    fwd.tx_ack(token, None).await;
    assert_eq!(fcnt_down(&common::within(5, &mut done).await.unwrap()), 0);

    // A `set` through the device's encoder: valve u8, setpoint i16 big-endian × 0.1.
    let mut values = citygate::record::Values::new();
    values.insert("valve".into(), Value::I64(1));
    values.insert("setpoint".into(), Value::F64(21.5));
    let mut done = run.submit(Action::Set(values));
    let mut rx = up(1, 2_500_000, 0, &[]);
    rx.freq = 904.1;
    fwd.push(rx).await;
    let Some((token, txpk)) = fwd.pull_resp(5.0).await else {
        panic!("no downlink for the set command: {:?}", done.try_recv());
    };
    let (_, port, payload, _, _) = open(&txpk, 1);
    assert_eq!((port, payload), (Some(10), vec![0x01, 0x00, 0xd7]));
    fwd.tx_ack(token, None).await;
    assert_eq!(fcnt_down(&common::within(5, &mut done).await.unwrap()), 1);

    // ADR on, the device at DR0 (SF10BW125) with 9.5 dB SNR: 9.5 + 15 - 10 = 14.5 dB, four
    // 3 dB steps: DR0 → DR3 (max_dr), then one TX power step; channel mask = sub-band 2.
    let mut rx = up(2, 3_000_000, 0x80, &[]);
    rx.freq = 904.1;
    rx.datr = Datr::Lora("SF10BW125".into());
    fwd.push(rx).await;
    let (_, txpk) = fwd.pull_resp(5.0).await.expect("LinkADRReq");
    assert_eq!(
        txpk.datr,
        Datr::Lora("SF10BW500".into()),
        "RX1 DR10 for DR0"
    );
    let (_, _, _, _, fopts) = open(&txpk, 2);
    let cmds = mac::parse_downlink(&fopts).commands;
    let DownlinkCommand::LinkAdrReq(req) = cmds[0] else {
        panic!("{cmds:?}")
    };
    assert_eq!((req.data_rate, req.tx_power), (3, 1));
    assert_eq!((req.ch_mask, req.ch_mask_cntl), (0xff00, 0));

    // ADRACKReq with nothing else due: a downlink still answers it (here the unanswered
    // LinkADRReq is re-sent with it).
    let mut rx = up(3, 5_000_000, 0xc0, &[]);
    rx.freq = 904.1;
    fwd.push(rx).await;
    let (_, txpk) = fwd.pull_resp(5.0).await.expect("answer to ADRACKReq");
    let (_, _, _, _, fopts) = open(&txpk, 3);
    assert!(matches!(
        mac::parse_downlink(&fopts).commands[..],
        [DownlinkCommand::LinkAdrReq(_)]
    ));
    run.stop().await;
    drop(buffer);
    thread.close();
}

/// A burst of confirmed SF12 uplinks on 868.1 MHz: every ACK is a downlink of about 1 s. The
/// gateway never uses more than 1 % of the hour in g1 (RX1, 36 s) or 10 % in g3 (RX2 at
/// 869.525 MHz, 360 s); what could not go out is counted as `downlink_duty_cycle`.
#[tokio::test]
async fn eu868_duty_cycle_is_never_exceeded_by_a_burst_of_confirmed_uplinks() {
    use citygate::southbound::lorawan::network::downlink::airtime::lora_airtime_us;
    use citygate::southbound::lorawan::network::region::parse_datr;
    let dir = tempfile::tempdir().unwrap();
    let (buffer, thread) = common::open(&dir.path().join("b.sqlite"), &common::quick_config());
    let cfg = config("", "region = \"EU868\"");
    let registry = CommandRegistry::new();
    let adapter = LorawanUdpAdapter::new("lora", &cfg, LorawanMetrics::detached())
        .unwrap()
        .with_commands(&registry);
    let counters = adapter.counters();
    let run = spawn_adapter(adapter, buffer.sender()).await;
    let mut fwd = Forwarder::pulled(run.server).await;
    let (mut g1_us, mut g3_us) = (0u64, 0u64);
    for fcnt in 0..420u32 {
        fwd.push(confirmed_sf12(fcnt)).await;
        if let Some((_, txpk)) = fwd.pull_resp(0.2).await {
            let dr = parse_datr(&txpk.datr.to_string()).unwrap();
            let us = lora_airtime_us(dr.sf, dr.bw_khz, txpk.size as usize, false);
            if (868.0..=868.6).contains(&txpk.freq) {
                g1_us += us;
            } else {
                assert_eq!(txpk.freq, 869.525, "RX2 channel");
                g3_us += us;
            }
        }
    }
    assert!(g1_us <= 36_000_000, "g1 used {g1_us} µs");
    assert!(g3_us <= 360_000_000, "g3 used {g3_us} µs");
    assert!(
        g1_us > 30_000_000,
        "RX1 was used up to its budget first: {g1_us}"
    );
    assert!(
        counters.downlink_duty_cycle.get() > 0,
        "refusals are counted"
    );
    run.stop().await;
    drop(buffer);
    thread.close();
}

/// The duty-cycle budget survives a restart: confirmed SF12 uplinks use up g1 (1 %, 36 s of
/// the hour) until the ACKs move to RX2 (g3, 869.525 MHz); the adapter is rebuilt on the same
/// buffer database and the next ACK still goes in RX2, not in the exhausted g1.
#[tokio::test]
async fn eu868_duty_cycle_budget_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (buffer, thread) = common::open(&dir.path().join("b.sqlite"), &common::quick_config());
    let cfg = config("", "region = \"EU868\"");
    let run = start(&cfg, buffer.sender()).await;
    let mut fwd = run.forwarder().await;
    let mut fcnt = 0;
    let mut rx1 = 0;
    loop {
        assert!(fcnt < 60, "g1 never ran out");
        fwd.push(confirmed_sf12(fcnt)).await;
        fcnt += 1;
        let (_, txpk) = fwd.pull_resp(5.0).await.expect("ACK downlink");
        if txpk.freq == 869.525 {
            break;
        }
        assert_eq!(txpk.freq, 868.1);
        rx1 += 1;
    }
    // About one second per ACK at SF12.
    assert!((30..=36).contains(&rx1), "{rx1} ACKs in RX1");
    run.stop().await;

    let run = start(&cfg, buffer.sender()).await;
    let mut fwd = run.forwarder().await;
    fwd.push(confirmed_sf12(fcnt)).await;
    let (_, txpk) = fwd
        .pull_resp(5.0)
        .await
        .expect("ACK downlink after the restart");
    assert_eq!(txpk.freq, 869.525, "g1 is still used up after the restart");
    run.stop().await;
    drop(buffer);
    thread.close();
}
