//! `/metrics` as Prometheus sees it: `promtool check metrics` accepts the exposition, and a
//! real Prometheus server (Debian's) scrapes the running daemon with `up == 1`.

mod common;

use common::daemon::*;

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tool(name: &str) -> Option<String> {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .ok()?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (!path.is_empty()).then_some(path)
}

#[test]
#[ignore = "needs Debian's prometheus package (tests/run.sh installs it)"]
fn promtool_accepts_metrics_and_prometheus_scrapes_the_daemon() {
    let (Some(prometheus), Some(promtool)) = (tool("prometheus"), tool("promtool")) else {
        assert!(
            std::env::var_os("CITYGATE_REQUIRE_PEERS").is_none(),
            "prometheus/promtool not installed"
        );
        eprintln!("SKIP: prometheus not installed");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("capture.jsonl");
    std::fs::write(&capture, "{\"device\": \"d1\", \"values\": {\"t\": 1.5}}\n").unwrap();
    let port = free_port();
    let cfg = dir.path().join("citygate.toml");
    std::fs::write(
        &cfg,
        format!(
            "[gateway]\nstate_dir = {:?}\n[telemetry]\nlisten = \"127.0.0.1:{port}\"\n[southbound.r]\ntype = \"replay\"\nfile = {:?}\nrate = 20.0\nrepeat = true\nresume = false\n",
            dir.path().join("state"),
            capture
        ),
    )
    .unwrap();
    let _gw = Killed(
        Command::new(env!("CARGO_BIN_EXE_citygate"))
            .args(["run", "-c"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        if let Some(b) =
            http_get(port, "/metrics").filter(|b| b.contains("citygate_adapter_records_total"))
        {
            break b;
        }
        assert!(Instant::now() < deadline, "no /metrics");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(body.contains("citygate_buffer_records"), "{body}");

    // promtool's linter reads the exposition from stdin.
    let mut check = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // A real Prometheus scraping the daemon every second.
    let prom_port = free_port();
    let prom_cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &prom_cfg,
        format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: citygate\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"),
    )
    .unwrap();
    let _prom = Killed(
        Command::new(&prometheus)
            .arg(format!("--config.file={}", prom_cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let up = http_get(
            prom_port,
            "/api/v1/query?query=up%7Bjob%3D%22citygate%22%7D",
        );
        let records = http_get(
            prom_port,
            "/api/v1/query?query=citygate_adapter_records_total",
        );
        if let (Some(up), Some(records)) = (up, records) {
            let up_is_one = up.contains("\"value\":[") && up.trim_end().contains("\"1\"]");
            if up_is_one && records.contains("\"adapter\":\"r\"") {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never saw the target up"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
