//! The adapter against in-process Modbus/TCP servers: transaction counts, exceptions, silent
//! units, a device that drops its connections, and a half-open peer.
mod common;

use citygate::record::Value;
use citygate::southbound::modbus::plan::{plan, Learned, Limits};
use citygate::southbound::modbus::profile::resolve_device;
use citygate::southbound::modbus::ModbusAdapter;
use citygate::telemetry::ModbusMetrics;
use common::modbus::*;
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

fn tcp_config(
    addr: std::net::SocketAddr,
    devices: &str,
) -> citygate::southbound::modbus::ModbusConfig {
    config(&format!(
        "type = \"modbus_tcp\"\nhost = \"{addr}\"\n{devices}"
    ))
}

#[tokio::test]
async fn sdm630_cycle_uses_exactly_the_planned_transactions() {
    let (unit, expected) = sdm630_unit();
    let sim = Sim::with([(1, unit)]);
    let (addr, server) = start_tcp(sim.clone(), "127.0.0.1:0".parse().unwrap()).await;
    let cfg = tcp_config(addr, "[[devices]]\nid = \"meter\"\nunit = 1\nprofile = \"eastron_sdm630\"\npoll_interval = \"1h\"\n");
    assert!(cfg.validate().is_empty());
    let device = &cfg.devices()[0];
    let points = resolve_device(device).unwrap();
    let all: Vec<usize> = (0..points.len()).collect();
    // The profile's documented limit (Eastron: 80 registers per read).
    assert_eq!(device.max_registers, 80);
    let limits = Limits {
        max_registers: device.max_registers,
        max_bits: device.max_bits,
        max_gap: device.max_gap,
    };
    let minimum = plan(&points, &all, &limits, &Learned::default()).len();
    assert_eq!(minimum, 6);

    let counters = Arc::new(ModbusMetrics::detached());
    let running = run(ModbusAdapter::new("mb", cfg, Arc::clone(&counters)));
    assert!(running.wait_for(WAIT, |r| !r.is_empty()).await);
    let records = running.stop().await;
    server.abort();

    assert_eq!(records.len(), 1);
    assert_eq!(sim.seen().len(), minimum, "{:?}", sim.seen());
    assert!(sim
        .seen()
        .iter()
        .all(|(u, fc, _, cnt)| *u == 1 && *fc == 4 && *cnt <= 80));
    assert_eq!(counters.snapshot().transactions, minimum as u64);
    let r = &records[0];
    assert_eq!((r.adapter.as_str(), r.device.as_str()), ("mb", "meter"));
    assert!(r.meta.is_empty(), "{:?}", r.meta);
    assert_eq!(r.values.len(), 53);
    for (name, v) in expected {
        assert_eq!(r.values[&name], Value::F64(f64::from(v)), "{name}");
    }
    // Values keep the map's order.
    assert_eq!(r.values.get_index(0).unwrap().0, "voltage_l1");
}

#[tokio::test]
async fn exception_02_costs_only_the_refused_point_and_is_remembered() {
    let (mut unit, _) = sdm630_unit();
    unit.input.remove(&0x46);
    unit.input.remove(&0x47); // firmware without frequency
    let sim = Sim::with([(1, unit)]);
    let (addr, server) = start_tcp(sim.clone(), "127.0.0.1:0".parse().unwrap()).await;
    let cfg = tcp_config(addr, "[[devices]]\nid = \"meter\"\nunit = 1\nprofile = \"eastron_sdm630\"\npoll_interval = \"300ms\"\n");
    let counters = Arc::new(ModbusMetrics::detached());
    let running = run(ModbusAdapter::new("mb", cfg, Arc::clone(&counters)));
    assert!(running.wait_for(WAIT, |r| r.len() >= 2).await);
    // A cycle ends with the read of the last span (0x156).
    let first_cycle_tx = sim
        .seen()
        .iter()
        .position(|s| s.2 == 0x156)
        .expect("first cycle ended")
        + 1;
    let records = running.stop().await;
    server.abort();

    for r in &records[..2] {
        assert_eq!(r.values.len(), 52, "{:?}", r.meta);
        assert!(!r.values.contains_key("frequency"));
        let q = r.meta["quality.frequency"].clone();
        assert!(
            matches!(&q, Value::Str(s) if s.starts_with("bad: exception 02")),
            "{q:?}"
        );
        assert_eq!(r.meta.len(), 1);
        assert_eq!(
            r.values["energy_import"],
            records[0].values["energy_import"]
        );
    }
    // First cycle: 5 planned reads, the first refused and split down to the bad point.
    assert!(first_cycle_tx > 5, "{:?}", sim.seen());
    // Second cycle: the learned plan reads around 0x46 in 6 reads, no exception.
    let seen = sim.seen();
    let second: Vec<_> = seen[first_cycle_tx..first_cycle_tx + 6].to_vec();
    assert_eq!(
        second.iter().map(|s| (s.2, s.3)).collect::<Vec<_>>(),
        vec![
            (0x00, 0x44),
            (0x48, 0x10),
            (0x64, 8),
            (0xC8, 8),
            (0xE0, 0x16),
            (0x156, 4)
        ]
    );
    let exceptions = counters.snapshot().exceptions;
    assert!((2..10).contains(&exceptions), "{exceptions}");
}

#[tokio::test]
async fn a_silent_unit_gets_bad_quality_and_does_not_hold_up_its_neighbour() {
    let (unit, _) = sdm630_unit();
    let sim = Sim::with([
        (1, unit),
        (
            2,
            Unit {
                silent: true,
                ..Unit::default()
            },
        ),
    ]);
    let (addr, server) = start_tcp(sim.clone(), "127.0.0.1:0".parse().unwrap()).await;
    let cfg = tcp_config(
        addr,
        r#"
[[devices]]
id = "good"
unit = 1
profile = "eastron_sdm630"
poll_interval = "200ms"
timeout = "150ms"
[[devices]]
id = "dead"
unit = 2
profile = "eastron_sdm630"
poll_interval = "200ms"
timeout = "150ms"
"#,
    );
    let counters = Arc::new(ModbusMetrics::detached());
    let running = run(ModbusAdapter::new("mb", cfg, Arc::clone(&counters)));
    assert!(
        running
            .wait_for(WAIT, |r| r.iter().filter(|r| r.device == "good").count()
                >= 8)
            .await
    );
    let records = running.stop().await;
    server.abort();

    let good: Vec<_> = records.iter().filter(|r| r.device == "good").collect();
    let dead: Vec<_> = records.iter().filter(|r| r.device == "dead").collect();
    assert!(good
        .iter()
        .all(|r| r.values.len() == 53 && r.meta.is_empty()));
    assert!(!dead.is_empty());
    for r in &dead {
        assert!(r.values.is_empty());
        assert_eq!(r.meta.len(), 53);
        assert_eq!(
            r.meta["quality.voltage_l1"],
            Value::Str("bad: timeout".into())
        );
    }
    // One timeout per attempt on the dead unit, and it is backed off: fewer attempts than
    // the good unit's cycles.
    let snap = counters.snapshot();
    assert_eq!(snap.timeouts, dead.len() as u64, "{snap:?}");
    assert!(
        dead.len() < good.len(),
        "dead {} good {}",
        dead.len(),
        good.len()
    );
}

#[tokio::test]
async fn a_device_that_drops_its_connections_is_reconnected() {
    let (unit, _) = sdm630_unit();
    let sim = Sim::with([(1, unit)]);
    let (addr, server) = start_tcp(sim.clone(), "127.0.0.1:0".parse().unwrap()).await;
    let cfg = tcp_config(addr, "[[devices]]\nid = \"m\"\nunit = 1\nprofile = \"eastron_sdm630\"\npoll_interval = \"100ms\"\ntimeout = \"200ms\"\n");
    let counters = Arc::new(ModbusMetrics::detached());
    let running = run(ModbusAdapter::new("mb", cfg, Arc::clone(&counters)));
    assert!(running.wait_for(WAIT, |r| r.len() >= 2).await);
    // Power cut: listener and every connection close.
    server.abort();
    let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
    let before = running.records().await.len();
    let failed = |r: &[citygate::record::Record]| r.iter().filter(|r| r.values.is_empty()).count();
    assert!(running.wait_for(WAIT, |r| failed(&r[before..]) >= 2).await);
    // A poll answered while the connection tasks were being cancelled may still land good;
    // from the first failed poll on, every record says the device is down.
    let down = running.records().await[before..].to_vec();
    let first_failed = down.iter().position(|r| r.values.is_empty()).unwrap();
    assert!(down[first_failed..]
        .iter()
        .all(|r| r.values.is_empty() && !r.meta.is_empty()));
    // Power back on the same port.
    let (_, server2) = start_tcp(sim.clone(), addr).await;
    assert!(
        running
            .wait_for(Duration::from_secs(30), |r| r
                .last()
                .is_some_and(|r| r.values.len() == 53))
            .await,
        "no good record after the device came back: {:?}",
        counters.snapshot()
    );
    let records = running.stop().await;
    server2.abort();
    let snap = counters.snapshot();
    assert!(snap.reconnects >= 1, "{snap:?}");
    // The power cut is seen as the device closing the connection (or resetting it).
    assert!(
        snap.connections_closed + snap.transport_errors >= 1,
        "{snap:?}"
    );
    // Reconnect attempts are spaced (backoff from 0.5 s), not one per poll.
    assert!(snap.connect_failures <= 12, "{snap:?}");
    assert!(records.len() >= 4);
}

#[tokio::test]
async fn a_half_open_peer_is_dropped_after_repeated_timeouts_without_a_storm() {
    // Accepts connections and never answers (a device that lost power behind a switch).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let acc = Arc::clone(&accepted);
    let hold = tokio::spawn(async move {
        let mut sockets = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            acc.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            sockets.push(s);
        }
    });
    let cfg = tcp_config(addr, "[[devices]]\nid = \"m\"\nunit = 1\nprofile = \"eastron_sdm630\"\npoll_interval = \"100ms\"\ntimeout = \"100ms\"\n");
    let counters = Arc::new(ModbusMetrics::detached());
    let running = run(ModbusAdapter::new("mb", cfg, Arc::clone(&counters)));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let records = running.stop().await;
    hold.abort();
    let snap = counters.snapshot();
    let conns = accepted.load(std::sync::atomic::Ordering::SeqCst);
    assert!(snap.timeouts >= 2, "{snap:?}");
    assert!(conns >= 2, "never reconnected: {conns} {snap:?}");
    // Device backoff and reconnect backoff keep it calm: far fewer than one per poll (30).
    assert!(
        conns <= 8 && snap.timeouts <= 10,
        "storm: {conns} connections, {snap:?}"
    );
    assert!(records.iter().all(|r| r.values.is_empty()));
}

#[tokio::test]
async fn probe_prints_the_registers_in_every_order() {
    let mut unit = Unit::default();
    unit.holding.insert(100, 0x42F6);
    unit.holding.insert(101, 0xE979);
    let sim = Sim::with([(1, unit)]);
    let (addr, server) = start_tcp(sim.clone(), "127.0.0.1:0".parse().unwrap()).await;
    let url = format!("tcp://{addr}");
    let out = tokio::time::timeout(
        WAIT,
        citygate::southbound::modbus::probe::probe(&url, 1, "holding:100:2"),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(
        out.lines()
            .any(|l| l.contains(" ABCD ") && l.contains("123.456")),
        "{out}"
    );
    assert!(out.contains("0xE979"), "{out}");
    let refused = tokio::time::timeout(
        WAIT,
        citygate::southbound::modbus::probe::probe(&url, 1, "holding:0:2"),
    )
    .await
    .unwrap()
    .unwrap_err();
    assert!(refused.to_string().contains("exception 02"), "{refused}");
    server.abort();
    assert_eq!(sim.seen(), vec![(1, 3, 100, 2), (1, 3, 0, 2)]);
}

#[tokio::test]
async fn connections_to_one_endpoint_are_capped_by_max_connections() {
    for (max, want) in [(None, 1), (Some(2), 2)] {
        let (unit, _) = sdm630_unit();
        let sim = Sim::with([(1, unit.clone()), (2, unit.clone()), (3, unit)]);
        let (addr, server) = start_tcp(sim.clone(), "127.0.0.1:0".parse().unwrap()).await;
        let mut devices = String::new();
        if let Some(m) = max {
            devices.push_str(&format!("max_connections = {m}\n"));
        }
        for u in 1..=3 {
            devices.push_str(&format!("[[devices]]\nid = \"m{u}\"\nunit = {u}\nprofile = \"eastron_sdm630\"\npoll_interval = \"100ms\"\n"));
        }
        let running = run(ModbusAdapter::new(
            "mb",
            tcp_config(addr, &devices),
            Arc::new(ModbusMetrics::detached()),
        ));
        assert!(running.wait_for(WAIT, |r| r.len() >= 9).await);
        let records = running.stop().await;
        server.abort();
        assert_eq!(
            sim.connections.load(std::sync::atomic::Ordering::SeqCst),
            want,
            "max_connections {max:?}"
        );
        for d in ["m1", "m2", "m3"] {
            assert!(
                records
                    .iter()
                    .any(|r| r.device == d && r.values.len() == 53),
                "{d}"
            );
        }
    }
}
