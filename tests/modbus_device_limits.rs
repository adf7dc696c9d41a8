//! The SDM630 profile against a simulated meter as strict as Eastron documents: reads over 80
//! registers (40 parameters) are refused with exception 03. The simulator logs every request,
//! so the test sees that the plan never sends a read the meter would refuse, while a device
//! table that overrides the limit upwards is refused and counted. `citygate plan` shows the
//! limit with its source.
mod common;

use citygate::southbound::modbus::config::LimitSource;
use citygate::southbound::modbus::profile::load_profiles;
use citygate::southbound::modbus::ModbusAdapter;
use citygate::telemetry::ModbusMetrics;
use common::modbus::*;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);
const EASTRON_MAX: u16 = 80;

fn strict_meter() -> Sim {
    let (mut unit, _) = sdm630_unit();
    unit.max_read = Some(EASTRON_MAX);
    Sim::with([(1, unit)])
}

fn tcp_config(
    addr: std::net::SocketAddr,
    extra: &str,
) -> citygate::southbound::modbus::ModbusConfig {
    let mut cfg = config(&format!(
        "type = \"modbus_tcp\"\nhost = \"{addr}\"\n[[devices]]\nid = \"meter\"\nunit = 1\nprofile = \"eastron_sdm630\"\npoll_interval = \"100ms\"\n{extra}"
    ));
    // As the daemon does when it loads a config (no profiles directory here: the built-in).
    load_profiles(&mut cfg, None);
    cfg
}

#[tokio::test]
async fn sdm630_profile_never_sends_a_read_the_meter_refuses() {
    let sim = strict_meter();
    let (addr, server) = start_tcp(sim.clone(), "127.0.0.1:0".parse().unwrap()).await;
    let cfg = tcp_config(addr, "");
    assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
    assert!(cfg.warnings().is_empty(), "{:?}", cfg.warnings());
    let d = &cfg.devices()[0];
    assert_eq!(d.max_registers, EASTRON_MAX);
    assert_eq!(
        d.limit_sources.max_registers,
        LimitSource::Profile("eastron_sdm630".into())
    );

    let counters = Arc::new(ModbusMetrics::detached());
    let running = run(ModbusAdapter::new("mb", cfg, Arc::clone(&counters)));
    // Several cycles, so that any recheck would have shown up as well.
    assert!(running.wait_for(WAIT, |r| r.len() >= 3).await);
    let records = running.stop().await;
    server.abort();

    let seen = sim.seen();
    assert!(seen.len() >= 3 * 6, "{seen:?}");
    let refused: Vec<_> = seen.iter().filter(|s| s.3 > EASTRON_MAX).collect();
    assert!(refused.is_empty(), "reads the meter refuses: {refused:?}");
    assert_eq!(counters.snapshot().exceptions, 0);
    for r in &records {
        assert_eq!(r.values.len(), 53);
        assert!(r.meta.is_empty(), "{:?}", r.meta);
    }
}

#[tokio::test]
async fn a_limit_above_the_meters_is_refused_and_counted_by_the_simulator() {
    // The control: the simulated meter really refuses, and the config that causes it is
    // warned about by `check`.
    let sim = strict_meter();
    let (addr, server) = start_tcp(sim.clone(), "127.0.0.1:0".parse().unwrap()).await;
    let cfg = tcp_config(addr, "max_registers = 125");
    let d = &cfg.devices()[0];
    assert_eq!(
        (d.max_registers, &d.limit_sources.max_registers),
        (125, &LimitSource::Config)
    );
    let warnings = cfg.warnings();
    assert!(
        warnings.iter().any(|w| w.path == "devices.0.max_registers"),
        "{warnings:?}"
    );
    let counters = Arc::new(ModbusMetrics::detached());
    let running = run(ModbusAdapter::new("mb", cfg, Arc::clone(&counters)));
    assert!(running.wait_for(WAIT, |r| !r.is_empty()).await);
    running.stop().await;
    server.abort();
    let refused = sim.seen().iter().filter(|s| s.3 > EASTRON_MAX).count();
    assert!(refused >= 1, "{:?}", sim.seen());
    assert!(counters.snapshot().exceptions >= refused as u64);
}

fn plan_output(device_extra: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("citygate.toml");
    std::fs::write(
        &path,
        format!(
            "[gateway]\nname = \"t\"\n[southbound.meters]\ntype = \"modbus_tcp\"\nhost = \"192.0.2.10:502\"\n[[southbound.meters.devices]]\nid = \"meter\"\nunit = 1\nprofile = \"eastron_sdm630\"\n{device_extra}"
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_citygate"))
        .args(["plan", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn plan_shows_the_limit_and_where_it_came_from() {
    let out = plan_output("");
    assert!(
        out.contains("meter: max_registers 80 (profile eastron_sdm630)"),
        "{out}"
    );
    // Every planned read fits the limit.
    let counts: Vec<u16> = out
        .lines()
        .filter(|l| l.trim_start().starts_with("fc04"))
        .filter_map(|l| {
            l.split("count")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(counts.len(), 6, "{out}");
    assert!(counts.iter().all(|c| *c <= EASTRON_MAX), "{counts:?}");
    let out = plan_output("max_registers = 40");
    assert!(
        out.contains("meter: max_registers 40 (adapter config)"),
        "{out}"
    );
}
