//! FCntDown is reserved on disk before a downlink is sent: `citygate run` is SIGKILLed at
//! varying moments right after confirmed uplinks (whose ACK downlinks use the same
//! reserve-then-send path as command downlinks), restarted on the same state directory, and
//! no downlink counter is ever seen twice. The same way, the EU868 duty-cycle budget and the
//! RX settings a device acknowledged (`mac_setup`) are shown to survive `kill -9`.

mod common;

use common::lorawan::{abp_device, confirmed_sf12, device_uplink, read_down, Forwarder};
use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::Duration;

/// `citygate run -c config`, once its GWMP port answers; the forwarder talking to it.
async fn start_daemon(
    config: &std::path::Path,
    server: std::net::SocketAddr,
    round: u64,
) -> (std::process::Child, Forwarder) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_citygate"))
        .args(["run", "-c"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let fwd = Forwarder::new(server).await;
    // Until the daemon listens (PULL_DATA answered).
    for _ in 0..100 {
        fwd.sock
            .send_to(&[2, 0, 1, 2, 0xaa, 0x55, 0x5a, 0, 0, 0, 0, 7], server)
            .await
            .unwrap();
        if fwd.recv_within(0.1).await.is_some() {
            return (child, fwd);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("daemon not listening in round {round}");
}

/// The config of a daemon with one EU868 ABP device (`extra`: more adapter keys), its state
/// in `dir`.
fn write_config(dir: &std::path::Path, port: u16, extra: &str) -> std::path::PathBuf {
    let config = dir.join("citygate.toml");
    std::fs::write(
        &config,
        format!(
            "[gateway]\nstate_dir = {:?}\n[telemetry]\nlisten = \"127.0.0.1:0\"\n[southbound.lora]\ntype = \"lorawan_udp\"\nbind = \"127.0.0.1:{port}\"\n{extra}\n\
             [[southbound.lora.devices]]\n{}",
            dir.join("state"),
            abp_device(),
        ),
    )
    .unwrap();
    config
}

/// The EU868 duty cycle across a SIGKILL of the real daemon: confirmed SF12 uplinks use up
/// g1 (1 % = 36 s of the hour) until the ACKs move to RX2 (g3); after `kill -9` and a
/// restart on the same state directory the next ACK still goes in RX2.
#[tokio::test]
#[ignore = "spawns citygate run and SIGKILLs it"]
async fn duty_cycle_budget_survives_sigkill_of_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::daemon::free_udp_port();
    let config = write_config(dir.path(), port, "");
    let server = format!("127.0.0.1:{port}").parse().unwrap();
    let (mut child, mut fwd) = start_daemon(&config, server, 0).await;
    let mut fcnt = 0;
    loop {
        assert!(fcnt < 60, "g1 never ran out");
        fwd.push(confirmed_sf12(fcnt)).await;
        fcnt += 1;
        let (_, txpk) = fwd.pull_resp(5.0).await.expect("ACK downlink");
        assert!(read_down(&txpk).ack);
        if txpk.freq == 869.525 {
            break;
        }
        assert_eq!(txpk.freq, 868.1);
    }
    assert!(fcnt > 30, "about one second of airtime per ACK: {fcnt}");
    child.kill().unwrap();
    child.wait().unwrap();

    let (mut child, mut fwd) = start_daemon(&config, server, 1).await;
    fwd.push(confirmed_sf12(fcnt)).await;
    let (_, txpk) = fwd.pull_resp(5.0).await.expect("ACK after the restart");
    assert_eq!(txpk.freq, 869.525, "g1 is still used up after kill -9");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
#[ignore = "spawns citygate run and SIGKILLs it repeatedly"]
async fn fcnt_down_never_repeats_across_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::daemon::free_udp_port();
    let config = write_config(dir.path(), port, "");
    let server = format!("127.0.0.1:{port}").parse().unwrap();
    let mut seen = HashSet::new();
    let mut fcnt_up = 0u32;
    for round in 0..8u64 {
        let (mut child, mut fwd) = start_daemon(&config, server, round).await;
        // A few confirmed uplinks, each acknowledged with a new FCntDown; the kill comes at
        // a different moment after the last one in every round.
        for _ in 0..3 {
            fwd.push(device_uplink(true, 0, &[], fcnt_up, 1_000_000))
                .await;
            fcnt_up += 1;
            if let Some((_, txpk)) = fwd.pull_resp(2.0).await {
                let d = read_down(&txpk);
                assert!(d.ack);
                assert!(
                    seen.insert(d.fcnt16),
                    "FCntDown {} sent twice (round {round})",
                    d.fcnt16
                );
            }
        }
        fwd.push(device_uplink(true, 0, &[], fcnt_up, 1_000_000))
            .await;
        fcnt_up += 1;
        tokio::time::sleep(Duration::from_micros(round * 700)).await;
        child.kill().unwrap();
        child.wait().unwrap();
        // A downlink that made it out before the kill counts too.
        while let Some(p) = fwd.recv_within(0.2).await {
            if let citygate::southbound::lorawan::transport::gwmp::Packet::PullResp {
                payload,
                ..
            } = p
            {
                let d = read_down(&payload.txpk);
                assert!(seen.insert(d.fcnt16), "FCntDown {} sent twice", d.fcnt16);
            }
        }
    }
    assert!(seen.len() >= 24, "downlinks seen: {}", seen.len());
}

/// `mac_setup` with the real daemon: RXTimingSetupReq goes out, the device's answer moves RX1
/// to 2 s, and after `kill -9` and a restart the acknowledged delay is still used (it is kept
/// with the device's MAC state) and not asked again.
#[tokio::test]
#[ignore = "spawns citygate run and SIGKILLs it"]
async fn acknowledged_rx_settings_survive_sigkill_of_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::daemon::free_udp_port();
    let config = write_config(dir.path(), port, "mac_setup = { rx1_delay = 2 }");
    let server = format!("127.0.0.1:{port}").parse().unwrap();
    let up = |fcnt: u32, confirmed: bool, fopts: &[u8]| {
        device_uplink(confirmed, 0, fopts, fcnt, 10_000_000 * fcnt)
    };
    let (mut child, mut fwd) = start_daemon(&config, server, 0).await;
    fwd.push(up(0, false, &[])).await;
    let (_, txpk) = fwd.pull_resp(5.0).await.expect("RXTimingSetupReq");
    assert_eq!(
        txpk.tmst,
        Some(1_000_000),
        "the default delay until acknowledged"
    );
    assert_eq!(
        read_down(&txpk).fopts,
        [0x08, 0x02],
        "RXTimingSetupReq, 2 s"
    );
    // RXTimingSetupAns: the answer's own windows are at 2 s already.
    fwd.push(up(1, false, &[0x08])).await;
    let (_, txpk) = fwd
        .pull_resp(5.0)
        .await
        .expect("downlink for the sticky answer");
    assert_eq!(txpk.tmst, Some(12_000_000));
    child.kill().unwrap();
    child.wait().unwrap();

    let (mut child, mut fwd) = start_daemon(&config, server, 1).await;
    fwd.push(up(2, true, &[])).await;
    let (_, txpk) = fwd.pull_resp(5.0).await.expect("ACK");
    assert_eq!(txpk.tmst, Some(22_000_000), "RX1 delay 2 s after kill -9");
    let d = read_down(&txpk);
    assert!(d.ack);
    assert_eq!(d.fcnt16, 2, "FCntDown carries on");
    assert!(d.fopts.is_empty(), "not asked again");
    child.kill().unwrap();
    child.wait().unwrap();
}
