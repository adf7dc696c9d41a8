//! End to end with the real `citygate` binary between real peers: a Modbus device (pymodbus),
//! a LoRaWAN forwarder (GWMP datagrams sent by this test) and a replay capture feed the daemon,
//! which buffers and delivers to a real ACME CSE. What arrived is read back from the CSE.

mod common;

use common::daemon::free_udp_port;

use citygate::southbound::lorawan::network::crypto::AesKey;
use citygate::southbound::lorawan::transport::gwmp::{self, GatewayEui, Packet, PushPayload};
use common::northbound::acme::{cins_of, Acme};
use std::process::Stdio;
use std::time::Duration;

const NWK: &str = "2b7e151628aed2a6abf7158809cf4f3c";
const APP: &str = "000102030405060708090a0b0c0d0e0f";
const DEV_ADDR: u32 = 0x2601_1bda;
const ORIGINATOR: &str = "Ce2e-gw";

/// An unconfirmed ABP uplink on FPort 2 with a Cayenne LPP temperature.
fn uplink(fcnt: u32, tenth_celsius: i16) -> Vec<u8> {
    let (nwk, app) = (
        AesKey::from_hex(NWK).unwrap(),
        AesKey::from_hex(APP).unwrap(),
    );
    let mut payload = vec![0x01, 0x67];
    payload.extend_from_slice(&tenth_celsius.to_be_bytes());
    common::lorawan::uplink(false, DEV_ADDR, fcnt, &nwk, &app, &payload)
}

async fn push(sock: &tokio::net::UdpSocket, server: &str, token: u16, phy: &[u8]) {
    let p = Packet::PushData {
        version: 2,
        token: token.to_be_bytes(),
        gateway: GatewayEui([0xaa, 0x55, 0x5a, 0, 0, 0, 0, 1]),
        payload: PushPayload {
            rxpk: vec![common::lorawan::rxpk(phy, 1_000_000 + u32::from(token))],
            stat: None,
        },
    };
    sock.send_to(&gwmp::encode(&p), server).await.unwrap();
}

async fn wait_cins(url: &str, container: &str, n: usize) -> Vec<serde_json::Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let cins = cins_of(url, container, ORIGINATOR)
            .await
            .unwrap_or_default();
        if cins.len() >= n || tokio::time::Instant::now() > deadline {
            return cins;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn con(cin: &serde_json::Value) -> serde_json::Value {
    let text = cin["con"].as_str().expect("con is a JSON string");
    serde_json::from_str(text).expect("con parses")
}

#[tokio::test]
#[ignore = "needs ACME and pymodbus (tests/run.sh installs them)"]
async fn modbus_lorawan_and_replay_reach_the_cse_through_the_daemon() {
    let acme = Acme::start().await.expect("start ACME");
    let (modbus, _pymodbus) = common::pymodbus::peer().await;
    let dir = tempfile::tempdir().unwrap();
    let udp = free_udp_port();
    let capture = dir.path().join("capture.jsonl");
    std::fs::write(
        &capture,
        "{\"device\": \"kiosk-1\", \"ts\": \"2026-11-23T10:00:00Z\", \"values\": {\"temperature\": 21.5, \"door\": true}}\n\
         {\"device\": \"kiosk-1\", \"ts\": \"2026-11-23T10:01:00Z\", \"values\": {\"temperature\": 21.75, \"door\": false}}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("nwk"), NWK).unwrap();
    std::fs::write(dir.path().join("app"), APP).unwrap();
    let head = common::daemon::config_head(dir.path(), 0, &acme.url, ORIGINATOR, "e2e-gw");
    let config = format!(
        r#"{head}[southbound.meters]
type = "modbus_tcp"
host = "{modbus}"
[[southbound.meters.devices]]
id = "e2e-meter"
unit = 1
word_order = "ABCD"
poll_interval = "1s"
points = [
  {{ name = "voltage_l1", table = "input", address = 0, type = "f32", unit = "V" }},
  {{ name = "frequency", table = "input", address = 70, type = "f32", unit = "Hz" }},
  {{ name = "energy_import", table = "input", address = 72, type = "f32", unit = "kWh" }},
]
[southbound.lora]
type = "lorawan_udp"
bind = "127.0.0.1:{udp}"
[[southbound.lora.devices]]
dev_eui = "70b3d57ed0000001"
abp = {{ dev_addr = "26011bda", nwk_s_key_file = {nwk:?}, app_s_key_file = {app:?} }}
codec = {{ type = "cayenne_lpp" }}
[southbound.replay]
type = "replay"
file = {capture:?}
rate = 0.0
"#,
        nwk = dir.path().join("nwk"),
        app = dir.path().join("app"),
    );
    let cfg_path = dir.path().join("citygate.toml");
    std::fs::write(&cfg_path, config).unwrap();
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_citygate"))
        .args(["check", "-c"])
        .arg(&cfg_path)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let mut daemon = tokio::process::Command::new(env!("CARGO_BIN_EXE_citygate"))
        .args(["run", "-c"])
        .arg(&cfg_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    // LoRaWAN: three uplinks (one heard twice) from the "forwarder".
    tokio::time::sleep(Duration::from_secs(1)).await;
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let server = format!("127.0.0.1:{udp}");
    for (fcnt, t) in [(0u32, 243i16), (1, 245), (2, 251)] {
        let phy = uplink(fcnt, t);
        push(&sock, &server, fcnt as u16 * 2, &phy).await;
        if fcnt == 1 {
            push(&sock, &server, fcnt as u16 * 2 + 1, &phy).await; // a second gateway hears it
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let lora = wait_cins(&acme.url, "cse-in/e2e-gw/70b3d57ed0000001", 3).await;
    assert_eq!(lora.len(), 3, "LoRaWAN uplinks at the CSE: {lora:#?}");
    let temps: Vec<f64> = lora
        .iter()
        .map(|c| con(c)["values"]["temperature_1"].as_f64().unwrap())
        .collect();
    assert_eq!(temps, vec![24.3, 24.5, 25.1]);
    assert_eq!(con(&lora[2])["meta"]["fcnt"], 2);

    let meter = wait_cins(&acme.url, "cse-in/e2e-gw/e2e-meter", 3).await;
    assert!(meter.len() >= 3, "Modbus cycles at the CSE: {meter:#?}");
    let v = con(&meter[0]);
    assert!(
        (v["values"]["voltage_l1"].as_f64().unwrap() - 230.1).abs() < 1e-4,
        "{v}"
    );
    assert!(
        (v["values"]["frequency"].as_f64().unwrap() - 50.0).abs() < 1e-6,
        "{v}"
    );
    assert!(
        (v["values"]["energy_import"].as_f64().unwrap() - 1234.5).abs() < 1e-3,
        "{v}"
    );

    let replay = wait_cins(&acme.url, "cse-in/e2e-gw/kiosk-1", 2).await;
    assert_eq!(replay.len(), 2);
    assert_eq!(con(&replay[0])["ts"], "2026-11-23T10:00:00.000Z");
    assert_eq!(con(&replay[1])["values"]["temperature"], 21.75);
    // The source time is also the oneM2M dataGenerationTime.
    assert_eq!(replay[0]["dgt"], "20261123T100000,000000");

    let pid = daemon.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(15), daemon.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
}
