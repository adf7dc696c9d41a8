//! Remote config against a real ACME CSE and the real `citygate run`: the platform (a
//! registered AE named in `remote_config_originators`) writes configs into the gateway's
//! config container and reads the verdicts from `configStatus`. Run:
//! `cargo test --test management_remote_config -- --ignored --test-threads=1`.
mod common;

use common::commands::{register_platform, request, PLATFORM};
use common::daemon::{free_port, http_get, metric_sample};
use common::northbound::acme::{self, Acme, ADMIN};
use common::northbound::ORIGINATOR;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

const AE: &str = "rc-gw";
const CONFIG: &str = "cse-in/rc-gw/config";
const STATUS: &str = "cse-in/rc-gw/configStatus";

/// A running daemon and where it keeps things.
struct Gateway {
    daemon: tokio::process::Child,
    dir: PathBuf,
    cfg_path: PathBuf,
    port: u16,
}

impl Gateway {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }
    fn file(&self) -> String {
        std::fs::read_to_string(&self.cfg_path).unwrap()
    }
    fn previous(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.join("citygate.toml.previous")).ok()
    }
    fn metric(&self, series: &str) -> Option<f64> {
        metric_sample(&http_get(self.port, "/metrics")?, series)
    }
}

/// The config: northbound with commands (the notification route), remote config for
/// [`PLATFORM`], then `adapters`.
fn config(dir: &Path, url: &str, port: u16, rollback_after: &str, adapters: &str) -> String {
    let head = common::daemon::config_head(dir, port, url, ORIGINATOR, AE);
    format!(
        r#"{head}[northbound.commands]
enabled = true
originators = ["{PLATFORM}"]
[management]
remote_config = true
remote_config_originators = ["{PLATFORM}"]
remote_config_rollback_after = "{rollback_after}"
{adapters}"#
    )
}

/// Two replay adapters `a` and `b` of `n` records each, `b` at `b_rate` records/s.
fn replays(dir: &Path, n: usize, b_rate: f64) -> String {
    for name in ["a", "b"] {
        let lines: String = (0..n)
            .map(|i| format!("{{\"device\": \"{name}-dev\", \"values\": {{\"i\": {i}}}}}\n"))
            .collect();
        std::fs::write(dir.join(format!("{name}.jsonl")), lines).unwrap();
    }
    format!(
        "[southbound.a]\ntype = \"replay\"\nfile = {:?}\nrate = 10.0\n\
         [southbound.b]\ntype = \"replay\"\nfile = {:?}\nrate = {b_rate:.1}\n",
        dir.join("a.jsonl"),
        dir.join("b.jsonl"),
    )
}

/// Writes `text` as the config and starts `citygate run`; returns once the config container
/// and the gateway's subscription on it are at the CSE.
async fn start(url: &str, dir: &Path, port: u16, text: &str) -> Gateway {
    std::fs::write(dir.join("citygate.toml"), text).unwrap();
    spawn(url, dir, port).await
}

/// Starts `citygate run` on the config file in `dir` as it is.
async fn spawn(url: &str, dir: &Path, port: u16) -> Gateway {
    let cfg_path = dir.join("citygate.toml");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("daemon.log"))
        .unwrap();
    let daemon = tokio::process::Command::new(env!("CARGO_BIN_EXE_citygate"))
        .args(["run", "-c"])
        .arg(&cfg_path)
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let gw = Gateway {
        daemon,
        dir: dir.to_path_buf(),
        cfg_path,
        port,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    for path in [format!("{CONFIG}/citygate"), STATUS.to_string()] {
        loop {
            if let Ok((2000, _)) = acme::retrieve(url, &path, ADMIN).await {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{path} never appeared; log:\n{}",
                gw.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    gw
}

/// The platform writes `con` into the config container (`cr: null`: the CSE records who);
/// the new instance's resource name.
async fn write(url: &str, con: &str) -> String {
    let (rsc, body) = request(
        url,
        "POST",
        CONFIG,
        PLATFORM,
        Some(4),
        json!({"m2m:cin": {"con": con, "cr": null}}),
    )
    .await
    .unwrap();
    assert_eq!(rsc, 2001, "{body}");
    body["m2m:cin"]["rn"].as_str().unwrap().to_string()
}

/// The status reports at the CSE, read as the platform, in creation order.
async fn statuses(url: &str) -> Vec<Value> {
    acme::cins_of(url, STATUS, PLATFORM)
        .await
        .unwrap()
        .iter()
        .filter_map(|c| c["con"].as_str().and_then(|s| serde_json::from_str(s).ok()))
        .collect()
}

/// Waits for a report matching `pred`.
async fn status_where(
    gw: &Gateway,
    url: &str,
    limit: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = statuses(url).await.into_iter().find(|s| pred(s)) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "no such status within {limit:?}; statuses: {:?}\nlog:\n{}",
            statuses(url).await,
            gw.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn status_of(gw: &Gateway, url: &str, instance: &str) -> Value {
    status_where(gw, url, Duration::from_secs(15), |s| {
        s["instance"] == instance
    })
    .await
}

/// Number of contentInstances of `container` (as the admin).
async fn cin_count(url: &str, container: &str) -> usize {
    acme::cins_of(url, container, ADMIN)
        .await
        .map_or(0, |c| c.len())
}

async fn setup() -> (Acme, tempfile::TempDir, u16) {
    let acme = Acme::start().await.expect("start ACME");
    register_platform(&acme.url).await.unwrap();
    (acme, tempfile::tempdir().unwrap(), free_port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the ACME CSE (CITYGATE_ACME_VENV)"]
async fn a_good_change_restarts_only_that_adapter_and_loses_no_record() {
    const N: usize = 40;
    let (acme, dir, port) = setup().await;
    let d = dir.path();
    let old = config(d, &acme.url, port, "5m", &replays(d, N, 5.0));
    let gw = start(&acme.url, d, port, &old).await;
    // `b` is still replaying (40 records at 5/s) when its rate changes.
    let new = config(d, &acme.url, port, "5m", &replays(d, N, 20.0));
    let rn = write(&acme.url, &new).await;
    let s = status_of(&gw, &acme.url, &rn).await;
    assert_eq!(s["result"], "applied", "{s}");
    assert_eq!(s["restarted"], json!(["b"]), "{s}");
    assert_eq!((&s["started"], &s["stopped"]), (&json!([]), &json!([])));
    assert_eq!(gw.file(), new);
    assert_eq!(gw.previous().as_deref(), Some(old.as_str()));
    let starts = |id: &str| {
        gw.metric(&format!(
            "citygate_adapter_starts_total{{adapter=\"{id}\"}}"
        ))
    };
    assert_eq!((starts("a"), starts("b")), (Some(1.0), Some(2.0)));
    // Every record of both adapters reaches the CSE once: nothing lost, nothing replayed twice.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let counts = (
            cin_count(&acme.url, "cse-in/rc-gw/a-dev").await,
            cin_count(&acme.url, "cse-in/rc-gw/b-dev").await,
        );
        if counts == (N, N) {
            break;
        }
        assert!(counts.0 <= N && counts.1 <= N, "duplicates: {counts:?}");
        assert!(
            Instant::now() < deadline,
            "records at the CSE: {counts:?}\n{}",
            gw.log()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the ACME CSE (CITYGATE_ACME_VENV)"]
async fn a_broken_config_is_rejected_with_its_lines_and_nothing_changes() {
    let (acme, dir, port) = setup().await;
    let d = dir.path();
    let old = config(d, &acme.url, port, "5m", &replays(d, 3, 5.0));
    let gw = start(&acme.url, d, port, &old).await;
    // Line 2: an unknown key; line 4: a rate that is not a rate.
    let broken = "[gateway]\nnmae = \"x\"\n[southbound.a]\ntype = \"replay\"\nfile = \"/dev/null\"\nrate = -1.0\n";
    let rn = write(&acme.url, broken).await;
    let s = status_of(&gw, &acme.url, &rn).await;
    assert_eq!(s["result"], "rejected", "{s}");
    let at: Vec<(u64, u64)> = s["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert_eq!(p["file"], format!("remote:{rn}"));
            (p["line"].as_u64().unwrap(), p["col"].as_u64().unwrap())
        })
        .collect();
    assert!(at.contains(&(2, 1)), "{s}");
    assert!(at.iter().any(|(l, _)| *l == 6), "{s}");
    assert_eq!(gw.file(), old);
    assert_eq!(gw.previous(), None);
    // An originator the ACP does not name cannot write at all.
    let (rsc, _) = request(
        &acme.url,
        "POST",
        CONFIG,
        "Cintruder",
        Some(4),
        json!({"m2m:cin": {"con": "[gateway]\n", "cr": null}}),
    )
    .await
    .unwrap();
    assert_eq!(rsc, 4103);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the ACME CSE (CITYGATE_ACME_VENV)"]
async fn rollback_restores_the_previous_file() {
    let (acme, dir, port) = setup().await;
    let d = dir.path();
    let old = config(d, &acme.url, port, "5m", &replays(d, 3, 5.0));
    let gw = start(&acme.url, d, port, &old).await;
    let new = config(d, &acme.url, port, "5m", &replays(d, 3, 7.0));
    let rn = write(&acme.url, &new).await;
    assert_eq!(status_of(&gw, &acme.url, &rn).await["result"], "applied");
    let rn = write(&acme.url, r#"{"action": "rollback"}"#).await;
    let s = status_of(&gw, &acme.url, &rn).await;
    assert_eq!(s["result"], "rolled_back", "{s}");
    assert_eq!(s["automatic"], false);
    assert_eq!(s["restarted"], json!(["b"]), "{s}");
    assert_eq!(gw.file(), old);
    assert_eq!(gw.previous().as_deref(), Some(new.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the ACME CSE (CITYGATE_ACME_VENV)"]
async fn an_inline_secret_is_refused() {
    let (acme, dir, port) = setup().await;
    let d = dir.path();
    let old = config(d, &acme.url, port, "5m", &replays(d, 3, 5.0));
    let gw = start(&acme.url, d, port, &old).await;
    let lora = format!(
        "[southbound.lora]\ntype = \"lorawan_udp\"\nbind = \"127.0.0.1:{}\"\n\
         [[southbound.lora.devices]]\ndev_eui = \"0004a30b001c0530\"\n\
         otaa = {{ join_eui = \"70b3d57ed0000000\", app_key = \"2b7e151628aed2a6abf7158809cf4f3c\" }}\n",
        free_port()
    );
    let text = config(d, &acme.url, port, "5m", &lora);
    let key_line = text.lines().position(|l| l.contains("app_key")).unwrap() + 1;
    let rn = write(&acme.url, &text).await;
    let s = status_of(&gw, &acme.url, &rn).await;
    assert_eq!(s["result"], "rejected", "{s}");
    let p = &s["problems"][0];
    assert_eq!(p["line"].as_u64(), Some(key_line as u64), "{s}");
    assert!(p["message"].as_str().unwrap().contains("inline"), "{s}");
    assert_eq!(gw.file(), old);
    assert_eq!(gw.previous(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the ACME CSE (CITYGATE_ACME_VENV) and pymodbus (CITYGATE_PY_VENV)"]
async fn an_adapter_failing_after_a_change_is_rolled_back_automatically() {
    let (peer, _child) = common::pymodbus::peer().await;
    let (acme, dir, port) = setup().await;
    let d = dir.path();
    let meter = |host: &str| {
        format!(
            "[southbound.meter]\ntype = \"modbus_tcp\"\nhost = \"{host}\"\n\
             [[southbound.meter.devices]]\nid = \"pm-1\"\nunit = 1\npoll_interval = \"500ms\"\ntimeout = \"500ms\"\n\
             points = [ {{ name = \"r0\", table = \"holding\", address = 0, type = \"u16\" }} ]\n"
        )
    };
    let old = config(d, &acme.url, port, "3s", &meter(&peer));
    let gw = start(&acme.url, d, port, &old).await;
    // The meter answers before the change.
    let deadline = Instant::now() + Duration::from_secs(15);
    while gw.metric(r#"citygate_device_up{adapter="meter",device="pm-1"}"#) != Some(1.0) {
        assert!(Instant::now() < deadline, "pm-1 never up:\n{}", gw.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Nothing listens there.
    let closed = format!("127.0.0.1:{}", free_port());
    let bad = config(d, &acme.url, port, "3s", &meter(&closed));
    let rn = write(&acme.url, &bad).await;
    assert_eq!(status_of(&gw, &acme.url, &rn).await["result"], "applied");
    let s = status_where(&gw, &acme.url, Duration::from_secs(20), |s| {
        s["result"] == "rolled_back"
    })
    .await;
    assert_eq!(s["automatic"], true, "{s}");
    assert_eq!(s["instance"], rn.as_str());
    assert!(s["reason"].as_str().unwrap().contains("meter"), "{s}");
    assert_eq!(gw.file(), old);
    assert!(gw.log().contains("rolled back"), "{}", gw.log());
    // The meter answers again with the config that was rolled back to.
    let deadline = Instant::now() + Duration::from_secs(10);
    while gw.metric(r#"citygate_device_up{adapter="meter",device="pm-1"}"#) != Some(1.0) {
        assert!(
            Instant::now() < deadline,
            "pm-1 not up again:\n{}",
            gw.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the ACME CSE (CITYGATE_ACME_VENV)"]
async fn a_config_written_while_the_gateway_was_stopped_is_applied_at_start_once() {
    let (acme, dir, port) = setup().await;
    let d = dir.path();
    let old = config(d, &acme.url, port, "5m", &replays(d, 3, 5.0));
    let mut gw = start(&acme.url, d, port, &old).await;
    gw.daemon.kill().await.unwrap();
    let new = config(d, &acme.url, port, "5m", &replays(d, 3, 8.0));
    let rn = write(&acme.url, &new).await;
    let mut gw = spawn(&acme.url, d, port).await;
    assert_eq!(status_of(&gw, &acme.url, &rn).await["result"], "applied");
    assert_eq!(gw.file(), new);
    // The next start does not take it again.
    gw.daemon.kill().await.unwrap();
    let gw = spawn(&acme.url, d, port).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let answers = statuses(&acme.url)
        .await
        .into_iter()
        .filter(|s| s["instance"] == rn.as_str())
        .count();
    assert_eq!(answers, 1, "{}", gw.log());
}
