//! FCntDown is reserved on disk before a downlink is sent: `citygate run` is SIGKILLed at
//! varying moments right after confirmed uplinks (whose ACK downlinks use the same
//! reserve-then-send path as command downlinks), restarted on the same state directory, and
//! no downlink counter is ever seen twice.

mod common;

use base64::Engine;
use citygate::southbound::lorawan::network::crypto::AesKey;
use citygate::southbound::lorawan::network::frame::{self, PhyPayload};
use common::lorawan::{rxpk, uplink_with, Forwarder};
use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::Duration;

const NWK: &str = "2b7e151628aed2a6abf7158809cf4f3c";
const APP: &str = "000102030405060708090a0b0c0d0e0f";
const DEV_ADDR: u32 = 0x2601_1bda;

#[tokio::test]
#[ignore = "spawns citygate run and SIGKILLs it repeatedly"]
async fn fcnt_down_never_repeats_across_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::daemon::free_udp_port();
    let config = dir.path().join("citygate.toml");
    std::fs::write(
        &config,
        format!(
            "[gateway]\nstate_dir = {:?}\n[southbound.lora]\ntype = \"lorawan_udp\"\nbind = \"127.0.0.1:{port}\"\n\
             [[southbound.lora.devices]]\ndev_eui = \"70b3d57ed0000001\"\n\
             abp = {{ dev_addr = \"{DEV_ADDR:08x}\", nwk_s_key = \"{NWK}\", app_s_key = \"{APP}\" }}\n",
            dir.path().join("state"),
        ),
    )
    .unwrap();
    let (nwk, app) = (
        AesKey::from_hex(NWK).unwrap(),
        AesKey::from_hex(APP).unwrap(),
    );
    let server = format!("127.0.0.1:{port}").parse().unwrap();
    let mut seen = HashSet::new();
    let mut fcnt_up = 0u32;
    for round in 0..8u64 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_citygate"))
            .args(["run", "-c"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut fwd = Forwarder::new(server).await;
        // Until the daemon listens.
        let mut up = false;
        for _ in 0..100 {
            fwd.sock
                .send_to(&[2, 0, 1, 2, 0xaa, 0x55, 0x5a, 0, 0, 0, 0, 7], server)
                .await
                .unwrap();
            if fwd.recv_within(0.1).await.is_some() {
                up = true;
                break;
            }
        }
        assert!(up, "daemon not listening in round {round}");
        // A few confirmed uplinks, each acknowledged with a new FCntDown; the kill comes at
        // a different moment after the last one in every round.
        for _ in 0..3 {
            let phy = uplink_with(true, 0, &[], DEV_ADDR, fcnt_up, &nwk, &app, &[1]);
            fcnt_up += 1;
            fwd.push(rxpk(&phy, 1_000_000)).await;
            if let Some((_, txpk)) = fwd.pull_resp(2.0).await {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(&txpk.data)
                    .unwrap();
                let Ok(PhyPayload::Data(d)) = frame::parse(&bytes) else {
                    panic!("not a data frame")
                };
                assert!(d.ack());
                assert!(
                    seen.insert(d.fcnt16),
                    "FCntDown {} sent twice (round {round})",
                    d.fcnt16
                );
            }
        }
        let phy = uplink_with(true, 0, &[], DEV_ADDR, fcnt_up, &nwk, &app, &[1]);
        fcnt_up += 1;
        fwd.push(rxpk(&phy, 1_000_000)).await;
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
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(&payload.txpk.data)
                    .unwrap();
                if let Ok(PhyPayload::Data(d)) = frame::parse(&bytes) {
                    assert!(seen.insert(d.fcnt16), "FCntDown {} sent twice", d.fcnt16);
                }
            }
        }
    }
    assert!(seen.len() >= 24, "downlinks seen: {}", seen.len());
}
