//! The daemon with `binding = "coap"` is killed with SIGKILL in the middle of a backlog and
//! started again: every record is at ACME exactly once, in order (the buffer and the
//! deterministic resource names carry the effectively-once guarantee over any binding; this
//! proves it over CoAP). Run:
//! `cargo test --test acme_coap_daemon -- --ignored --test-threads=1`.
mod common;

use common::northbound::acme::{self, Acme};
use std::fmt::Write as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

const DEVICES: usize = 4;
const PER_DEVICE: usize = 100;

fn daemon(cfg: &std::path::Path) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_citygate"))
        .args(["run", "-c"])
        .arg(cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start citygate")
}

/// The contentInstances of each device container (creation order), as the `i` values of
/// their records; a missing container counts as empty.
async fn at_cse(url: &str) -> anyhow::Result<Vec<Vec<i64>>> {
    let mut out = Vec::new();
    for d in 0..DEVICES {
        let container = format!("cse-in/coap-gw/dev-{d}");
        let (rsc, _) = acme::retrieve(url, &container, acme::ADMIN).await?;
        if rsc != 2000 {
            out.push(Vec::new());
            continue;
        }
        let cins = acme::cins_of(url, &container, acme::ADMIN).await?;
        let values = cins
            .iter()
            .map(|c| {
                let con: serde_json::Value =
                    serde_json::from_str(c["con"].as_str().unwrap_or("null")).unwrap_or_default();
                con["values"]["i"].as_i64().unwrap_or(-1)
            })
            .collect();
        out.push(values);
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the ACME CSE (tests/peers/acme.sh)"]
async fn kill_9_mid_backlog_delivers_everything_once() -> anyhow::Result<()> {
    let acme = Acme::start_coap().await?;
    let dir = tempfile::tempdir()?;
    let capture = dir.path().join("capture.jsonl");
    let mut lines = String::new();
    for i in 0..PER_DEVICE {
        for d in 0..DEVICES {
            writeln!(
                lines,
                r#"{{"device": "dev-{d}", "ts": "2026-11-23T10:00:00Z", "values": {{"i": {i}}}}}"#
            )?;
        }
    }
    std::fs::write(&capture, lines)?;
    let head = common::daemon::config_head(dir.path(), 0, &acme.coap_url(), "Ccoap-gw", "coap-gw");
    let cfg = dir.path().join("citygate.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"{head}binding = "coap"
[southbound.replay]
type = "replay"
file = {capture:?}
rate = 0.0
"#
        ),
    )?;
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_citygate"))
        .args(["check", "-c"])
        .arg(&cfg)
        .output()?;
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    let mut first = daemon(&cfg);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n: usize = at_cse(&acme.url).await?.iter().map(Vec::len).sum();
        if n >= 60 {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "nothing delivered: {n}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    first.start_kill()?; // SIGKILL
    first.wait().await?;
    let partial: usize = at_cse(&acme.url).await?.iter().map(Vec::len).sum();
    assert!(
        partial < DEVICES * PER_DEVICE,
        "killed before the end: {partial}"
    );

    let mut second = daemon(&cfg);
    let deadline = Instant::now() + Duration::from_secs(60);
    let want: Vec<i64> = (0..PER_DEVICE as i64).collect();
    loop {
        let got = at_cse(&acme.url).await?;
        if got.iter().map(Vec::len).sum::<usize>() >= DEVICES * PER_DEVICE {
            // Exactly once, in order, per device.
            for (d, values) in got.iter().enumerate() {
                assert_eq!(values, &want, "dev-{d}");
            }
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "not all delivered after the restart"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    second.start_kill()?;
    second.wait().await?;
    Ok(())
}
