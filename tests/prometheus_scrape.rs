//! `/metrics` as Prometheus sees it: `promtool check metrics` accepts the exposition, and a
//! real Prometheus server (Debian's) scrapes the running daemon with `up == 1` and loads the
//! operator's pack (`packaging/prometheus/citygate-alerts.yml`). Every metric the alert rules
//! and the Grafana dashboard (`packaging/grafana/citygate-dashboard.json`) query is in a live
//! scrape, and `promtool test rules` passes with a case for every alert.

mod common;

use common::daemon::*;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
    // One adapter of each type that has its own metrics, so every family the operator's pack
    // queries has series: a Modbus device on a closed port (down), a LoRaWAN forwarder port, BLE
    // (fails without BlueZ and is restarted: its counters exist all the same), and a CSE that
    // is not there.
    let closed_port = free_port();
    let udp_port = free_udp_port();
    std::fs::write(
        &cfg,
        format!(
            "[gateway]\nstate_dir = {:?}\n[telemetry]\nlisten = \"127.0.0.1:{port}\"\n[southbound.r]\ntype = \"replay\"\nfile = {:?}\nrate = 20.0\nrepeat = true\nresume = false\n\
             [southbound.mb]\ntype = \"modbus_tcp\"\nhost = \"127.0.0.1:{closed_port}\"\n[[southbound.mb.devices]]\nid = \"meter-1\"\nunit = 1\npoll_interval = \"1s\"\ntimeout = \"200ms\"\npoints = [{{ name = \"t\", table = \"holding\", address = 0, type = \"u16\" }}]\n\
             [southbound.lora]\ntype = \"lorawan_udp\"\nbind = \"127.0.0.1:{udp_port}\"\n\
             [southbound.ble]\ntype = \"ble\"\naccept_unlisted = true\n\
             [northbound]\ncse_url = \"http://127.0.0.1:{closed_port}\"\ncse_id = \"/id-in\"\ncse_name = \"cse-in\"\n",
            dir.path().join("state"),
            capture
        ),
    )
    .unwrap();
    let _gw = KillOnDrop(
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
    let body = wait_for_series(port, "citygate_device_up{adapter=\"mb\"");
    for name in pack_metric_names() {
        let exported = body.lines().any(|l| {
            l.strip_prefix(name.as_str())
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        });
        assert!(
            exported,
            "the operator's pack queries {name}, which /metrics does not export"
        );
    }

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
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: citygate\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n",
            pack_file("prometheus/citygate-alerts.yml").display()
        ),
    )
    .unwrap();
    let _prom = KillOnDrop(
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
    // The alert rules loaded into a live Prometheus and evaluate without errors.
    let alerts = alert_names();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rules = http_get(prom_port, "/api/v1/rules").unwrap_or_default();
        let evaluated = alerts
            .iter()
            .all(|a| rules.contains(&format!("\"name\":\"{a}\"")))
            && rules.contains("\"health\":\"ok\"")
            && !rules.contains("\"health\":\"err\"")
            && !rules.contains("\"health\":\"unknown\"");
        if evaluated {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "alert rules not evaluated: {rules}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
#[ignore = "needs Debian's prometheus package (tests/run.sh installs it)"]
fn promtool_tests_every_alert() {
    let Some(promtool) = tool("promtool") else {
        assert!(
            std::env::var_os("CITYGATE_REQUIRE_PEERS").is_none(),
            "promtool not installed"
        );
        eprintln!("SKIP: promtool not installed");
        return;
    };
    let out = Command::new(promtool)
        .args(["test", "rules"])
        .arg(pack_file("prometheus/citygate-alerts.test.yml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool test rules failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every alert has a case in the promtool tests (run by `promtool_tests_every_alert`).
#[test]
fn every_alert_has_a_promtool_case() {
    let tests = std::fs::read_to_string(pack_file("prometheus/citygate-alerts.test.yml")).unwrap();
    let alerts = alert_names();
    assert!(alerts.len() >= 10, "{alerts:?}");
    for alert in alerts {
        assert!(
            tests.contains(&format!(
                "alertname: {alert}\n        exp_alerts:\n          - exp_labels"
            )),
            "no firing case for {alert} in citygate-alerts.test.yml"
        );
        assert!(
            tests.contains(&format!("alertname: {alert}\n        exp_alerts: []")),
            "no quiet case for {alert} in citygate-alerts.test.yml"
        );
    }
}

fn pack_file(rel: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("packaging")
        .join(rel)
}

fn alert_names() -> Vec<String> {
    std::fs::read_to_string(pack_file("prometheus/citygate-alerts.yml"))
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: ").map(str::to_owned))
        .collect()
}

/// The metric names in the alert rules' and the dashboard's expressions (`citygate_*`,
/// `process_*`; a histogram is queried by its `_bucket` series).
fn pack_metric_names() -> std::collections::BTreeSet<String> {
    let rules = std::fs::read_to_string(pack_file("prometheus/citygate-alerts.yml")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(pack_file("grafana/citygate-dashboard.json")).unwrap(),
    )
    .unwrap();
    let mut exprs: Vec<String> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expr: ").map(str::to_owned))
        .collect();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            exprs.push(target["expr"].as_str().unwrap().to_owned());
        }
    }
    let mut names = std::collections::BTreeSet::new();
    for expr in &exprs {
        let mut rest = expr.as_str();
        while let Some(at) = rest.find(|c: char| c.is_ascii_alphabetic()) {
            rest = &rest[at..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let word = &rest[..end];
            if word.starts_with("citygate_") || word.starts_with("process_") {
                names.insert(word.to_owned());
            }
            rest = &rest[end..];
            // Skip label values and strings ("...") wholesale.
            if let Some(stripped) = rest.strip_prefix('"') {
                rest = stripped.split_once('"').map_or("", |(_, r)| r);
            }
        }
    }
    assert!(names.len() >= 20, "{names:?}");
    names
}

/// Scrapes until a series starting with `prefix` is there (a device's first poll).
fn wait_for_series(port: u16, prefix: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(b) = http_get(port, "/metrics").filter(|b| b.contains(prefix)) {
            return b;
        }
        assert!(Instant::now() < deadline, "no {prefix} series");
        std::thread::sleep(Duration::from_millis(200));
    }
}
