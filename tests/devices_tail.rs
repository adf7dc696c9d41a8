//! `citygate devices` and `citygate tail` against the running daemon: a replay feed that
//! reports, and a Modbus meter on a port where nothing answers (down, with its quality flag).

mod common;

use common::daemon::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn citygate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_citygate"))
}

#[test]
fn devices_and_tail_show_what_the_daemon_hears() {
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("capture.jsonl");
    std::fs::write(
        &capture,
        "{\"device\": \"kiosk-1\", \"values\": {\"t\": 21.25, \"door\": true}}\n",
    )
    .unwrap();
    let port = free_port();
    let closed = free_port();
    let cfg = dir.path().join("citygate.toml");
    std::fs::write(
        &cfg,
        format!(
            "[gateway]\nstate_dir = {:?}\n[telemetry]\nlisten = \"127.0.0.1:{port}\"\n\
             [southbound.r]\ntype = \"replay\"\nfile = {:?}\nrate = 20.0\nrepeat = true\nresume = false\n\
             [southbound.mb]\ntype = \"modbus_tcp\"\nhost = \"127.0.0.1:{closed}\"\n\
             [[southbound.mb.devices]]\nid = \"meter-1\"\nunit = 1\npoll_interval = \"500ms\"\ntimeout = \"200ms\"\n\
             points = [{{ name = \"voltage\", table = \"holding\", address = 0, type = \"u16\" }}]\n",
            dir.path().join("state"),
            capture
        ),
    )
    .unwrap();
    let _daemon = KillOnDrop(
        citygate()
            .args(["run", "-c"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    // `devices`: both devices, the meter down with the reason of its failed point.
    let deadline = Instant::now() + Duration::from_secs(15);
    let table = loop {
        let out = citygate()
            .args(["devices", "-c"])
            .arg(&cfg)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() && text.contains("kiosk-1") && text.contains("meter-1") {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "devices never listed both: {text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let kiosk = table.lines().find(|l| l.contains("kiosk-1")).unwrap();
    assert!(kiosk.starts_with("r "), "{table}");
    assert!(kiosk.contains(" up "), "{table}");
    assert!(
        kiosk.contains("t=21.25") && kiosk.contains("door=true"),
        "{table}"
    );
    let meter = table.lines().find(|l| l.contains("meter-1")).unwrap();
    assert!(meter.contains(" down "), "{table}");
    assert!(meter.contains("(voltage: bad: "), "{table}");
    assert!(table.starts_with("ADAPTER"), "{table}");

    let json = citygate()
        .args(["devices", "--json", "-c"])
        .arg(&cfg)
        .output()
        .unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let kiosk = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["device"] == "kiosk-1")
        .unwrap();
    assert_eq!(kiosk["values"]["t"], 21.25);
    assert_eq!(kiosk["up"], true);

    // `tail --device`: only that device's records, live, as JSON lines.
    let mut tail = KillOnDrop(
        citygate()
            .args(["tail", "--json", "--device", "kiosk-1", "-c"])
            .arg(&cfg)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(tail.0.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let line = lines.next().expect("tail ended").unwrap();
        let record: citygate::record::Record = serde_json::from_str(&line).unwrap();
        assert_eq!(record.device, "kiosk-1");
        seen.push(record.ts_ms);
    }
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    drop(tail);

    // Human form: time, adapter/device, values.
    let mut tail = KillOnDrop(
        citygate()
            .args(["tail", "--adapter", "mb", "-c"])
            .arg(&cfg)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let line = BufReader::new(tail.0.stdout.take().unwrap())
        .lines()
        .next()
        .expect("tail ended")
        .unwrap();
    assert!(line.contains("  mb/meter-1  (voltage: bad: "), "{line}");
}

#[test]
fn devices_says_when_the_daemon_is_not_running() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("citygate.toml");
    std::fs::write(
        &cfg,
        format!(
            "[gateway]\nstate_dir = {:?}\n[telemetry]\nlisten = \"127.0.0.1:{}\"\n",
            dir.path().join("state"),
            free_port()
        ),
    )
    .unwrap();
    let out = citygate()
        .args(["devices", "-c"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is citygate running? no answer from http://127.0.0.1:"),
        "{err}"
    );
}
