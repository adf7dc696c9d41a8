//! The MAC layer of `lorawan_udp` against a device simulator that obeys it: ADR brings a
//! device that starts at DR0 with good SNR to the highest data rate its margin allows and then
//! lowers its power, without overshooting; at poor SNR it stays put. DevStatusReq is sent and
//! the answer (battery, margin) becomes a record of the device.

mod common;

use citygate::record::Value;
use citygate::southbound::lorawan::network::mac::{self, DownlinkCommand};
use citygate::southbound::lorawan::transport::gwmp::Datr;
use citygate::southbound::lorawan::{LorawanUdpAdapter, LorawanUdpConfig};
use citygate::telemetry::LorawanMetrics;
use common::lorawan::{abp_device, device_uplink, read_down, spawn_adapter, Forwarder, DEV_EUI};

/// An EU868 device that applies LinkADRReq and answers DevStatusReq. Its SNR at the gateway is
/// `base_snr` at full power, 2 dB less per TXPower step.
struct Device {
    dr: u8,
    tx_power: u8,
    base_snr: f64,
    fcnt: u32,
    fopts: Vec<u8>,
    max_dr_seen: u8,
}

impl Device {
    /// Sends one uplink with the ADR bit; applies what the downlink (if any) asks.
    async fn uplink(&mut self, fwd: &mut Forwarder) -> Vec<DownlinkCommand> {
        let mut rx = device_uplink(false, 0x80, &self.fopts, self.fcnt, self.fcnt * 1000);
        rx.datr = Datr::Lora(format!("SF{}BW125", 12 - self.dr));
        rx.lsnr = Some(self.base_snr - 2.0 * f64::from(self.tx_power));
        self.fcnt += 1;
        self.fopts.clear();
        fwd.push(rx).await;
        let Some((token, txpk)) = fwd.pull_resp(0.3).await else {
            return Vec::new();
        };
        fwd.tx_ack(token, None).await;
        let cmds = mac::parse_downlink(&read_down(&txpk).fopts).commands;
        for c in &cmds {
            match c {
                DownlinkCommand::LinkAdrReq(r) => {
                    self.dr = r.data_rate;
                    self.tx_power = r.tx_power;
                    self.max_dr_seen = self.max_dr_seen.max(r.data_rate);
                    self.fopts.extend_from_slice(&[0x03, 0x07]);
                }
                DownlinkCommand::DevStatusReq => self.fopts.extend_from_slice(&[0x06, 200, 12]),
                _ => {}
            }
        }
        cmds
    }
}

async fn run(base_snr: f64) -> (Device, Vec<citygate::record::Record>) {
    let cfg: LorawanUdpConfig = toml::from_str(&format!(
        r#"
bind = "127.0.0.1:0"
dedup_window = "1ms"
adr = {{ enabled = true, margin_db = 10, max_dr = 5 }}
dev_status_interval = "1h"
[[devices]]
{}"#,
        abp_device()
    ))
    .unwrap();
    assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
    let adapter = LorawanUdpAdapter::new("lora", &cfg, LorawanMetrics::detached()).unwrap();
    let sink = common::Sink::new();
    let run = spawn_adapter(adapter, sink.sender()).await;
    let mut fwd = Forwarder::pulled(run.server).await;
    let mut dev = Device {
        dr: 0,
        tx_power: 0,
        base_snr,
        fcnt: 0,
        fopts: Vec::new(),
        max_dr_seen: 0,
    };
    for _ in 0..25 {
        dev.uplink(&mut fwd).await;
    }
    // Converged: five more uplinks bring no LinkADRReq.
    for _ in 0..5 {
        let cmds = dev.uplink(&mut fwd).await;
        assert!(
            !cmds
                .iter()
                .any(|c| matches!(c, DownlinkCommand::LinkAdrReq(_))),
            "still adapting after 25 uplinks: {cmds:?}"
        );
    }
    run.stop().await;
    let records = sink.records().await;
    (dev, records)
}

#[tokio::test]
async fn adr_converges_without_overshoot_and_dev_status_becomes_a_record() {
    // 10 dB at full power: DR5 (SF7 needs -7.5 dB: 10 + 7.5 - 10 = 7.5 dB to spare), then
    // power steps while the margin lasts: TXPower 3 leaves 4 + 7.5 - 10 = 1.5 dB.
    let (dev, records) = run(10.0).await;
    assert_eq!((dev.dr, dev.tx_power), (5, 3));
    assert_eq!(dev.max_dr_seen, 5, "never above max_dr");
    let margin = dev.base_snr - 2.0 * f64::from(dev.tx_power) + 7.5 - 10.0;
    assert!(margin >= 0.0, "the installation margin is kept: {margin}");

    let status: Vec<_> = records
        .iter()
        .filter(|r| r.meta.get("mac") == Some(&Value::Str("DevStatusAns".into())))
        .collect();
    assert_eq!(status.len(), 1, "asked once per dev_status_interval");
    assert_eq!(status[0].device, DEV_EUI);
    assert_eq!(status[0].values["battery_pct"], Value::F64(78.7));
    assert_eq!(status[0].values["snr_margin_db"], Value::I64(12));
}

#[tokio::test]
async fn adr_leaves_a_device_with_poor_snr_where_it_is() {
    // -15 dB at SF12 (needs -20 dB): 5 dB above the floor is less than the 10 dB margin.
    let (dev, _) = run(-15.0).await;
    assert_eq!((dev.dr, dev.tx_power), (0, 0));
}

/// `mac_setup` over GWMP: the requests go out in the next downlink (read back with the
/// independent `lorawan` crate), the device's answers switch the receive windows to the new
/// RX1 delay and RX1DROffset from the very uplink that carries them, the sticky answers get a
/// downlink and are then dropped by the device, a refused NewChannelReq is asked three times
/// and then given up, and all of it survives a restart.
#[tokio::test]
async fn mac_setup_requests_are_applied_on_ack_and_refusals_are_bounded() {
    use lorawan::maccommands::{parse_downlink_mac_commands, DownlinkMacCommand as L};
    let cfg: LorawanUdpConfig = toml::from_str(&format!(
        r#"
bind = "127.0.0.1:0"
dedup_window = "1ms"
mac_setup = {{ rx1_delay = 2, rx1_dr_offset = 1, rx2_dr = 3, extra_channels = [{{ index = 3, frequency = 867100000 }}] }}
[[devices]]
{}mac_setup = {{ max_duty_cycle = 4 }}
"#,
        abp_device()
    ))
    .unwrap();
    assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
    let sink = common::Sink::new();
    let start = || async {
        let adapter = LorawanUdpAdapter::new("lora", &cfg, LorawanMetrics::detached()).unwrap();
        let counters = adapter.counters();
        let run = spawn_adapter(adapter, sink.sender()).await;
        (Forwarder::pulled(run.server).await, counters, run)
    };
    let (mut fwd, counters, run) = start().await;

    // Uplink 0: the requests, in RX1 with the join defaults (1 s, same DR).
    let (tmst, datr, fopts) = send_sf7(&mut fwd, 0, vec![], false)
        .await
        .expect("requests");
    assert_eq!((tmst, datr.as_str()), (1_000_000, "SF7BW125"));
    let cmds: Vec<L> = parse_downlink_mac_commands(&fopts).collect();
    assert_eq!(cmds.len(), 4, "{fopts:02x?}");
    let L::RXTimingSetupReq(t) = &cmds[0] else {
        panic!("{cmds:?}")
    };
    assert_eq!(t.delay(), 2);
    let L::RXParamSetupReq(p) = &cmds[1] else {
        panic!("{cmds:?}")
    };
    assert_eq!(p.dl_settings().rx1_dr_offset(), 1);
    assert_eq!(p.dl_settings().rx2_data_rate(), 3);
    assert_eq!(p.frequency().value(), 869_525_000, "RX2 frequency kept");
    let L::DutyCycleReq(d) = &cmds[2] else {
        panic!("{cmds:?}")
    };
    assert_eq!(d.max_duty_cycle_raw(), 4);
    let L::NewChannelReq(n) = &cmds[3] else {
        panic!("{cmds:?}")
    };
    assert_eq!((n.channel_index(), n.frequency().value()), (3, 867_100_000));
    assert_eq!(
        (
            n.data_rate_range().min_data_rate(),
            n.data_rate_range().max_data_rate()
        ),
        (0, 5)
    );

    // Uplink 1: RXTimingSetupAns, RXParamSetupAns (all ACK), DutyCycleAns, NewChannelAns with
    // the frequency refused. The downlink already uses RX1 = 2 s and DR5 - 1 = SF8, and asks
    // for the refused channel again (not for the RX settings: their answers are sticky).
    let answers = vec![0x08, 0x05, 0x07, 0x04, 0x07, 0x02];
    let (tmst, datr, fopts) = send_sf7(&mut fwd, 1, answers, false)
        .await
        .expect("a downlink stops the sticky answers");
    assert_eq!((tmst, datr.as_str()), (10_000_000 + 2_000_000, "SF8BW125"));
    let cmds: Vec<L> = parse_downlink_mac_commands(&fopts).collect();
    assert!(matches!(cmds[..], [L::NewChannelReq(_)]), "{cmds:?}");
    assert_eq!(counters.mac_nack.get(), 1);

    // The second refusal: asked a third time. The third: given up, nothing left to send.
    let (tmst, _, fopts) = send_sf7(&mut fwd, 2, vec![0x07, 0x02], false)
        .await
        .expect("NewChannelReq again");
    assert_eq!(tmst, 22_000_000);
    let cmds: Vec<L> = parse_downlink_mac_commands(&fopts).collect();
    assert!(matches!(cmds[..], [L::NewChannelReq(_)]), "{cmds:?}");
    assert!(send_sf7(&mut fwd, 3, vec![0x07, 0x02], false)
        .await
        .is_none());
    assert_eq!(counters.mac_nack.get(), 3);
    assert!(
        send_sf7(&mut fwd, 4, vec![], false).await.is_none(),
        "nothing more to ask"
    );
    run.stop().await;

    // Restart: the acknowledged settings and the refusal are remembered.
    let (mut fwd, _, run) = start().await;
    let (tmst, datr, fopts) = send_sf7(&mut fwd, 5, vec![], true).await.expect("ACK");
    assert_eq!((tmst, datr.as_str()), (50_000_000 + 2_000_000, "SF8BW125"));
    assert!(fopts.is_empty(), "nothing asked again: {fopts:02x?}");
    run.stop().await;
}

/// An uplink at SF7 (DR5) with FOpts at tmst = FCnt × 10 s; the downlink it gets, if any:
/// (tmst, datr, FOpts).
async fn send_sf7(
    fwd: &mut Forwarder,
    fcnt: u32,
    fopts: Vec<u8>,
    confirmed: bool,
) -> Option<(u32, String, Vec<u8>)> {
    fwd.push(device_uplink(confirmed, 0, &fopts, fcnt, fcnt * 10_000_000))
        .await;
    let (token, txpk) = fwd.pull_resp(0.3).await?;
    fwd.tx_ack(token, None).await;
    let fopts = read_down(&txpk).fopts;
    Some((txpk.tmst.unwrap(), txpk.datr.to_string(), fopts))
}
