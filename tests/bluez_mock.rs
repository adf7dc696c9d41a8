//! The BLE adapter against BlueZ emulated by python3-dbusmock (`--template bluez5`) on a
//! private dbus-daemon, reached through `DBUS_SYSTEM_BUS_ADDRESS`.
//!
//! Needs Debian's `dbus` and `python3-dbusmock` (`apt-get install -y python3-dbusmock dbus`);
//! without them the test prints SKIP and returns. The mock is driven by
//! `tests/bluez_mock_ctl.py` (Debian's /usr/bin/python3, which has python3-dbus).
//!
//! Phases: (1) a BTHome advertisement becomes a record; (2) the adapter disappears and comes
//! back: scanning resumes and a Ruuvi advertisement becomes a record; (3) "bluetoothd"
//! restarts (the mock process is killed and started again): scanning resumes again.

mod common;
use common::bluez::*;

use citygate::record::Value;
use citygate::southbound::ble::adapter::BleAdapter;
use citygate::southbound::ble::config::BleConfig;
use citygate::southbound::Adapter;
use citygate::telemetry::BleMetrics;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Re-sends an advertisement every 300 ms until `n` records are committed (15 s at most).
async fn advertise_until(sink: &common::Sink, addr: &str, n: usize, adv: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while sink.records().await.len() < n {
        assert!(Instant::now() < deadline, "no record {n} within 15 s");
        ctl(addr, adv);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs dbus-daemon and python3-dbusmock (tests/run.sh installs them)"]
async fn scans_through_mocked_bluez_and_recovers() {
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_test_writer()
        .try_init();
    if !require_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_daemon, addr) = start_bus(dir.path());
    // bluer (libdbus) connects to the system bus named here. Only this test runs in this
    // binary, so setting the variable is not racing another thread.
    std::env::set_var("DBUS_SYSTEM_BUS_ADDRESS", &addr);
    let mut mock = start_mock(&addr);

    let cfg: BleConfig = toml::from_str(
        r#"
min_interval = "0s"
max_silence = "1h"
[[devices]]
mac = "A4:C1:38:8D:18:B2"
id = "kiosk-th1"
[[devices]]
mac = "CB:B8:33:4C:88:4F"
id = "ruuvi1"
format = "ruuvi"
"#,
    )
    .unwrap();
    let mut adapter = BleAdapter::new("ble1", cfg, BleMetrics::detached()).unwrap();
    let sink = common::Sink::new();
    let out = sink.sender();
    let token = CancellationToken::new();
    let task = tokio::spawn({
        let (out, token) = (out.clone(), token.clone());
        async move { adapter.run(&out, &token).await }
    });

    // (1) BTHome temperature + humidity.
    assert!(ctl(
        &addr,
        &["add-device", "hci0", "A4:C1:38:8D:18:B2", "ATC_8D18B2"]
    ));
    let th = [
        "adv",
        "hci0",
        "A4:C1:38:8D:18:B2",
        "-61",
        "svc",
        BTHOME,
        "4002ca0903bf13",
    ];
    advertise_until(&sink, &addr, 1, &th).await;
    {
        let recs = sink.records().await;
        assert_eq!(recs[0].device, "kiosk-th1");
        assert_eq!(recs[0].values.get("temperature"), Some(&Value::F64(25.06)));
        assert_eq!(recs[0].values.get("humidity"), Some(&Value::F64(50.55)));
        assert_eq!(recs[0].meta.get("rssi"), Some(&Value::I64(-61)));
    }

    // (2) The adapter goes away and comes back.
    assert!(ctl(&addr, &["remove-adapter", "hci0"]));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(ctl(&addr, &["add-adapter", "hci0"]));
    assert!(
        ctl(&addr, &["wait-discovering", "hci0"]),
        "discovery not restarted on the new adapter"
    );
    assert!(ctl(
        &addr,
        &["add-device", "hci0", "CB:B8:33:4C:88:4F", "Ruuvi 884F"]
    ));
    let ruuvi = [
        "adv",
        "hci0",
        "CB:B8:33:4C:88:4F",
        "-70",
        "mfr",
        "0499",
        "0512fc5394c37c0004fffc040cac364200cdcbb8334c884f",
    ];
    advertise_until(&sink, &addr, 2, &ruuvi).await;
    {
        let recs = sink.records().await;
        assert_eq!(recs[1].device, "ruuvi1");
        assert_eq!(recs[1].values.get("pressure"), Some(&Value::I64(100_044)));
    }

    // (3) bluetoothd restarts: a new daemon knows nothing of the old discovery session.
    drop(mock);
    mock = start_mock(&addr);
    let restarted = Instant::now();
    assert!(
        ctl(&addr, &["wait-discovering", "hci0"]),
        "discovery not restarted on the new daemon"
    );
    eprintln!(
        "discovery restarted {:?} after the daemon restart",
        restarted.elapsed()
    );
    assert!(ctl(
        &addr,
        &["add-device", "hci0", "A4:C1:38:8D:18:B2", "ATC_8D18B2"]
    ));
    let warmer = [
        "adv",
        "hci0",
        "A4:C1:38:8D:18:B2",
        "-62",
        "svc",
        BTHOME,
        "4002280a03bf13",
    ];
    advertise_until(&sink, &addr, 3, &warmer).await;
    {
        let recs = sink.records().await;
        assert_eq!(recs[2].device, "kiosk-th1");
        assert_eq!(recs[2].values.get("temperature"), Some(&Value::F64(26.0)));
    }

    token.cancel();
    let res = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("adapter stops within 5 s of shutdown")
        .expect("task not panicked");
    assert!(res.is_ok());
    drop(mock);
}

/// `citygate scan ble` against the mocked BlueZ: a BTHome sensor advertising shows up decoded
/// with its RSSI, and the closing table counts it. A missing adapter is a clear error.
#[test]
#[ignore = "needs dbus-daemon and python3-dbusmock (tests/run.sh installs them)"]
fn scan_ble_shows_advertisements_decoded_with_rssi() {
    if !require_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_daemon, addr) = start_bus(dir.path());
    let _mock = start_mock(&addr);
    assert!(ctl(
        &addr,
        &["add-device", "hci0", "A4:C1:38:8D:18:B2", "ATC_8D18B2"]
    ));
    let citygate = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_citygate"))
            .args(["scan", "ble"])
            .args(args)
            .env("DBUS_SYSTEM_BUS_ADDRESS", &addr)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let scan = citygate(&["--duration-s", "4"]);
    let started = Instant::now();
    assert!(
        ctl(&addr, &["wait-discovering", "hci0"]),
        "scan ble did not start discovery"
    );
    while started.elapsed() < Duration::from_secs(3) {
        ctl(
            &addr,
            &[
                "adv",
                "hci0",
                "A4:C1:38:8D:18:B2",
                "-58",
                "svc",
                BTHOME,
                "4002ca0903bf13",
            ],
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let out = scan.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("A4:C1:38:8D:18:B2   -58 dBm  bthome"))
        .unwrap_or_else(|| panic!("no decoded line in:\n{stdout}"));
    assert!(
        line.contains("temperature=25.06") && line.contains("humidity=50.55"),
        "{line}"
    );
    assert!(
        stdout.contains("1 device(s) heard\n  A4:C1:38:8D:18:B2   -58 dBm  bthome"),
        "{stdout}"
    );

    let missing = citygate(&["--adapter", "hci7", "--duration-s", "1"])
        .wait_with_output()
        .unwrap();
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("citygate: scan failed: BlueZ:"), "{err}");
}
