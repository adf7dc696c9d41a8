//! BLE end to end with the real daemon: BlueZ emulated by python-dbusmock on a private bus, a
//! BTHome sensor advertising, the daemon's `ble` adapter → buffer → a real ACME CSE.

mod common;

use common::bluez::*;
use common::northbound::acme::{cins_of, Acme};
use std::process::Stdio;
use std::time::Duration;

const ORIGINATOR: &str = "Cble-gw";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ACME, dbus-daemon and python3-dbusmock (tests/run.sh installs them)"]
async fn bthome_advertisement_reaches_the_cse_through_the_daemon() {
    if !require_tools() {
        return;
    }
    let acme = Acme::start().await.expect("start ACME");
    let dir = tempfile::tempdir().unwrap();
    let (_bus, addr) = start_bus(dir.path());
    let _mock = start_mock(&addr);
    assert!(ctl(
        &addr,
        &["add-device", "hci0", "A4:C1:38:8D:18:B2", "ATC_8D18B2"]
    ));

    let cfg_path = dir.path().join("citygate.toml");
    std::fs::write(
        &cfg_path,
        format!(
            r#"[gateway]
state_dir = {state:?}
[telemetry]
listen = "127.0.0.1:0"
[northbound]
cse_url = "{url}"
originator = "{ORIGINATOR}"
ae_name = "ble-gw"
backoff = {{ initial = "200ms", max = "2s", auth_retry = "5s" }}
[southbound.square]
type = "ble"
scan = "active"
min_interval = "0s"
[[southbound.square.devices]]
mac = "A4:C1:38:8D:18:B2"
id = "kiosk-th1"
format = "bthome"
"#,
            state = dir.path().join("state"),
            url = acme.url
        ),
    )
    .unwrap();
    let mut daemon = tokio::process::Command::new(env!("CARGO_BIN_EXE_citygate"))
        .args(["run", "-c"])
        .arg(&cfg_path)
        .env("DBUS_SYSTEM_BUS_ADDRESS", &addr)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    // Temperature 25.06 °C, humidity 50.55 % (BTHome v2, unencrypted), re-sent until it lands.
    let adv = [
        "adv",
        "hci0",
        "A4:C1:38:8D:18:B2",
        "-61",
        "svc",
        BTHOME,
        "4002ca0903bf13",
    ];
    let container = "cse-in/ble-gw/kiosk-th1";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    let cins = loop {
        ctl(&addr, &adv);
        let cins = cins_of(&acme.url, container, ORIGINATOR)
            .await
            .unwrap_or_default();
        if !cins.is_empty() || tokio::time::Instant::now() > deadline {
            break cins;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(!cins.is_empty(), "no BLE record at the CSE");
    let con: serde_json::Value = serde_json::from_str(cins[0]["con"].as_str().unwrap()).unwrap();
    assert_eq!(con["device"], "kiosk-th1");
    assert_eq!(con["values"]["temperature"], 25.06);
    assert_eq!(con["values"]["humidity"], 50.55);
    assert_eq!(con["meta"]["rssi"], -61);

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
