//! SIGHUP reload with the real binary: only the adapter whose table changed restarts, no record
//! is lost or duplicated, and an invalid config on reload changes nothing.

mod common;

use common::daemon::*;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Scrapes /metrics with a plain HTTP/1.0 request (no client library needed).
fn scrape(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

fn metric(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name_and_labels) && l[name_and_labels.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn wait_for(port: u16, what: &str, pred: impl Fn(f64) -> bool, limit: Duration) -> String {
    let end = Instant::now() + limit;
    loop {
        if let Some(text) = scrape(port) {
            if metric(&text, what).is_some_and(&pred) {
                return text;
            }
            if Instant::now() > end {
                panic!("{what} never reached the expected value:\n{text}");
            }
        } else if Instant::now() > end {
            panic!("metrics endpoint not answering");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn config(dir: &Path, port: u16, b_rate: f64) -> String {
    format!(
        "[gateway]\nstate_dir = {:?}\n[telemetry]\nlisten = \"127.0.0.1:{port}\"\n\
         [southbound.a]\ntype = \"replay\"\nfile = {:?}\nrate = 100.0\n\
         [southbound.b]\ntype = \"replay\"\nfile = {:?}\nrate = {b_rate:.1}\n",
        dir.join("state"),
        dir.join("a.jsonl"),
        dir.join("b.jsonl"),
    )
}

fn hup(child: &Child) {
    Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
}

#[test]
fn sighup_restarts_only_the_changed_adapter_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for (name, n) in [("a", 300), ("b", 300)] {
        let lines: String = (0..n)
            .map(|i| format!("{{\"device\": \"{name}-dev\", \"values\": {{\"i\": {i}}}}}\n"))
            .collect();
        std::fs::write(dir.path().join(format!("{name}.jsonl")), lines).unwrap();
    }
    let port = free_port();
    let cfg_path = dir.path().join("citygate.toml");
    std::fs::write(&cfg_path, config(dir.path(), port, 50.0)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_citygate"))
        .args(["run", "-c"])
        .arg(&cfg_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    wait_for(
        port,
        "citygate_adapter_records_total{adapter=\"b\"}",
        |v| v >= 20.0,
        Duration::from_secs(10),
    );

    // An invalid config on reload changes nothing.
    std::fs::write(&cfg_path, "[buffer]\nwhen_full = \"sometimes\"\n").unwrap();
    hup(&child);
    let text = wait_for(
        port,
        "citygate_config_reloads_total{result=\"rejected\"}",
        |v| v == 1.0,
        Duration::from_secs(10),
    );
    assert_eq!(
        metric(&text, "citygate_adapter_starts_total{adapter=\"a\"}"),
        Some(1.0)
    );
    assert_eq!(
        metric(&text, "citygate_adapter_starts_total{adapter=\"b\"}"),
        Some(1.0)
    );

    // Change only adapter b: it restarts, a does not.
    std::fs::write(&cfg_path, config(dir.path(), port, 150.0)).unwrap();
    hup(&child);
    let text = wait_for(
        port,
        "citygate_config_reloads_total{result=\"applied\"}",
        |v| v == 1.0,
        Duration::from_secs(10),
    );
    assert_eq!(
        metric(&text, "citygate_adapter_starts_total{adapter=\"a\"}"),
        Some(1.0),
        "a must not restart"
    );
    assert_eq!(
        metric(&text, "citygate_adapter_starts_total{adapter=\"b\"}"),
        Some(2.0),
        "b must restart"
    );

    // Both files complete: every line exactly once.
    wait_for(
        port,
        "citygate_buffer_records",
        |v| v >= 600.0,
        Duration::from_secs(20),
    );
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());

    let db = rusqlite::Connection::open(dir.path().join("state/buffer.sqlite")).unwrap();
    let mut stmt = db.prepare("SELECT body FROM records").unwrap();
    let mut seen: BTreeMap<(String, i64), u32> = BTreeMap::new();
    for body in stmt.query_map([], |r| r.get::<_, String>(0)).unwrap() {
        let v: serde_json::Value = serde_json::from_str(&body.unwrap()).unwrap();
        let key = (
            v["device"].as_str().unwrap().to_owned(),
            v["values"]["i"].as_i64().unwrap(),
        );
        *seen.entry(key).or_default() += 1;
    }
    assert_eq!(seen.len(), 600, "every line of both files must be stored");
    assert!(
        seen.values().all(|n| *n == 1),
        "no line may be stored twice"
    );
}
