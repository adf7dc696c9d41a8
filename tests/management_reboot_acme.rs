//! The reboot mgmtObj against a real ACME CSE and the real `citygate run`: the platform (the
//! admin originator) updates `rbo = true`. Allowed: the daemon drains and exits with the
//! restart code, its buffer intact. Not allowed: it keeps running, `rbo` is back to false and
//! the refusal is counted. Run:
//! `cargo test --test management_reboot_acme -- --ignored --test-threads=1`.
mod common;

use citygate::buffer::{Buffer, BufferConfig};
use citygate::runtime::shutdown::EXIT_RESTART;
use common::daemon::{http_get, metric_sample};
use common::northbound::acme::{self, free_port, grant_node_creation, Acme, ADMIN};
use common::northbound::ORIGINATOR;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

const AE: &str = "reboot-gw";
const REBOOT: &str = "cse-in/reboot-gw-node/reboot";
const RECORDS: usize = 3;

/// Writes the config (a replay adapter with [`RECORDS`] records, commands and management on)
/// and starts `citygate run`; returns the daemon, the telemetry port and the state dir.
fn start(url: &str, dir: &Path, allow_restart: bool) -> (tokio::process::Child, u16, PathBuf) {
    let capture = dir.join("capture.jsonl");
    let lines: String = (0..RECORDS)
        .map(|i| format!("{{\"device\": \"kiosk-1\", \"ts\": \"2026-11-23T10:0{i}:00Z\", \"values\": {{\"t\": {i}}}}}\n"))
        .collect();
    std::fs::write(&capture, lines).unwrap();
    let port = free_port();
    let state = dir.join("state");
    let head = common::daemon::config_head(dir, port, url, ORIGINATOR, AE);
    let config = format!(
        r#"{head}[northbound.commands]
enabled = true
originators = ["{ADMIN}"]
[management]
enabled = true
allow_restart = {allow_restart}
[southbound.replay]
type = "replay"
file = {capture:?}
rate = 0.0
"#
    );
    let cfg_path = dir.join("citygate.toml");
    std::fs::write(&cfg_path, config).unwrap();
    let daemon = tokio::process::Command::new(env!("CARGO_BIN_EXE_citygate"))
        .args(["run", "-c"])
        .arg(&cfg_path)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("daemon.log")).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    (daemon, port, state)
}

/// The daemon's log (shown when a test fails).
fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default()
}

/// Retrieves `path` as the platform until `pred` holds (bounded).
async fn until(url: &str, path: &str, limit: Duration, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + limit;
    let mut last = Value::Null;
    while Instant::now() < deadline {
        if let Ok((rsc, body)) = acme::retrieve(url, path, ADMIN).await {
            if rsc == 2000 && pred(&body) {
                return body;
            }
            last = json!({"rsc": rsc, "body": body});
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{path} never matched within {limit:?}; last: {last}");
}

/// Waits until the reboot mgmtObj, the gateway's subscription on it, the polling channel and
/// the replay records are at the CSE.
async fn ready(url: &str) {
    let limit = Duration::from_secs(20);
    until(url, REBOOT, limit, |b| b["m2m:rbo"]["rbo"] == json!(false)).await;
    until(url, &format!("{REBOOT}/citygate"), limit, |_| true).await;
    until(url, &format!("cse-in/{AE}/pch"), limit, |_| true).await;
    until(url, &format!("cse-in/{AE}/kiosk-1?rcn=4"), limit, |b| {
        b["m2m:cnt"]["m2m:cin"].as_array().map_or(0, Vec::len) == RECORDS
    })
    .await;
}

/// The platform's UPDATE of the reboot mgmtObj.
async fn request_reboot(url: &str) {
    let r = reqwest::Client::new()
        .put(format!("{url}/{REBOOT}"))
        .header("X-M2M-Origin", ADMIN)
        .header("X-M2M-RI", "reboot")
        .header("X-M2M-RVI", "3")
        .header("Content-Type", "application/json")
        .json(&json!({"m2m:rbo": {"rbo": true}}))
        .send()
        .await
        .unwrap();
    let rsc = r.headers().get("x-m2m-rsc").cloned();
    assert_eq!(
        rsc.as_ref().and_then(|v| v.to_str().ok()),
        Some("2004"),
        "{}",
        r.text().await.unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ACME"]
async fn an_allowed_reboot_drains_and_exits_with_the_restart_code() {
    let acme = Acme::start().await.expect("start ACME");
    grant_node_creation(&acme.url, ORIGINATOR).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (mut daemon, _port, state) = start(&acme.url, dir.path(), true);
    ready(&acme.url).await;
    request_reboot(&acme.url).await;
    let status = tokio::time::timeout(Duration::from_secs(15), daemon.wait())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "no exit after the reboot request; log:\n{}\nACME:\n{}",
                log(dir.path()),
                acme.log()
            )
        })
        .unwrap();
    assert_eq!(status.code(), Some(i32::from(EXIT_RESTART)));
    // rbo was reset before the exit: a restarted gateway does not see an old request.
    until(&acme.url, REBOOT, Duration::from_secs(2), |b| {
        b["m2m:rbo"]["rbo"] == json!(false)
    })
    .await;
    // The buffer opens cleanly: nothing damaged, nothing left undelivered.
    let (buffer, thread) =
        Buffer::open(&state.join("buffer.sqlite"), &BufferConfig::default()).unwrap();
    let stats = buffer.stats().await.unwrap();
    assert_eq!(stats.damaged_records, 0);
    assert_eq!(stats.pending_records, 0);
    drop(buffer);
    thread.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ACME"]
async fn a_reboot_not_allowed_is_refused_and_the_daemon_keeps_running() {
    let acme = Acme::start().await.expect("start ACME");
    grant_node_creation(&acme.url, ORIGINATOR).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (mut daemon, port, _state) = start(&acme.url, dir.path(), false);
    ready(&acme.url).await;
    request_reboot(&acme.url).await;
    let series = r#"citygate_management_reboot_requests_total{outcome="refused"}"#;
    let deadline = Instant::now() + Duration::from_secs(10);
    let refused = loop {
        let m = http_get(port, "/metrics").unwrap_or_default();
        match metric_sample(&m, series) {
            Some(n) if n >= 1.0 => break n,
            _ if Instant::now() > deadline => panic!(
                "no refusal counted; log:\n{}\nsub: {:?}\nrbo: {:?}",
                log(dir.path()),
                acme::retrieve(&acme.url, &format!("{REBOOT}/citygate"), ADMIN).await,
                acme::retrieve(&acme.url, REBOOT, ADMIN).await,
            ),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    assert_eq!(refused, 1.0);
    until(&acme.url, REBOOT, Duration::from_secs(5), |b| {
        b["m2m:rbo"]["rbo"] == json!(false)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        daemon.try_wait().unwrap().is_none(),
        "the daemon still runs"
    );
    daemon.kill().await.unwrap();
}
