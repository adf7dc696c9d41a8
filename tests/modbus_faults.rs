//! Modbus under faults: a unit that drops requests, a neighbour on the same connection, a
//! damaged RTU frame, a device that closes the connection. Each failure keeps its name and
//! costs only the reads it concerns.
mod common;

use citygate::record::{Record, Value};
use citygate::southbound::modbus::ModbusAdapter;
use citygate::telemetry::ModbusMetrics;
use common::modbus::*;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Under qemu-user (the aarch64 CI step) a request that is answered can take longer than a
/// host's 100 ms timeout; the times below are stretched there so that only dropped requests
/// time out, as on a real gateway.
const SLOWDOWN: u64 = if cfg!(target_arch = "x86_64") { 1 } else { 4 };
/// The flaky unit's timeout.
const TIMEOUT_MS: u64 = 100 * SLOWDOWN;
/// Long enough for two timeouts of the flaky unit and both units' reads in one cycle.
const INTERVAL_MS: u64 = 400 * SLOWDOWN;

fn quality(r: &Record, point: &str) -> Option<String> {
    match r.meta.get(&format!("quality.{point}")) {
        Some(Value::Str(s)) => Some(s.clone()),
        _ => None,
    }
}

#[tokio::test]
async fn a_unit_dropping_one_request_in_three_still_delivers_and_its_neighbour_is_unaffected() {
    let (flaky, expected) = sdm630_unit();
    let (steady, _) = sdm630_unit();
    let sim = Sim::with([
        (
            1,
            Unit {
                drop_every: 3,
                ..flaky
            },
        ),
        (2, steady),
    ]);
    let (addr, server) = start_tcp(sim.clone(), "127.0.0.1:0".parse().unwrap()).await;
    let mut text = format!("type = \"modbus_tcp\"\nhost = \"{addr}\"\n");
    for (id, unit) in [("flaky", 1), ("steady", 2)] {
        text.push_str(&format!(
            "[[devices]]\nid = \"{id}\"\nunit = {unit}\nprofile = \"eastron_sdm630\"\npoll_interval = \"{INTERVAL_MS}ms\"\ntimeout = \"{TIMEOUT_MS}ms\"\n"
        ));
    }
    let cfg = config(&text);
    assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
    let counters = Arc::new(ModbusMetrics::detached());
    let started = tokio::time::Instant::now();
    let running = run(ModbusAdapter::new("mb", cfg, Arc::clone(&counters)));
    tokio::time::sleep(Duration::from_millis(20 * INTERVAL_MS)).await;
    let elapsed = started.elapsed();
    let records = running.stop().await;
    server.abort();

    let cycles = (elapsed.as_millis() as u64 / INTERVAL_MS) as usize;
    let flaky: Vec<_> = records.iter().filter(|r| r.device == "flaky").collect();
    let steady: Vec<_> = records.iter().filter(|r| r.device == "steady").collect();
    let snap = counters.snapshot();
    let dropped = sim.dropped.lock().unwrap().len();
    assert!(dropped >= 10, "the unit dropped only {dropped} requests");

    // The flaky unit delivers (nearly) every cycle; each of its points is either the right
    // value or flagged bad with the reason: never missing, never wrong.
    assert!(
        flaky.len() * 10 >= cycles * 8,
        "flaky delivered {} records in {cycles} cycles: {snap:?}",
        flaky.len()
    );
    let mut flagged_records = 0;
    let mut values = 0;
    for r in &flaky {
        assert!(!r.values.is_empty(), "a cycle with no value at all: {r:?}");
        if !r.meta.is_empty() {
            flagged_records += 1;
        }
        for (name, v) in &expected {
            match (r.values.get(name), quality(r, name)) {
                (Some(got), None) => {
                    assert_eq!(got, &Value::F64(f64::from(*v)), "{name}");
                    values += 1;
                }
                (None, Some(q)) => assert!(q.starts_with("bad: timeout"), "{name}: {q}"),
                other => panic!("{name}: {other:?}"),
            }
        }
    }
    assert!(flagged_records >= 1, "no dropped request was flagged");
    // A dropped request costs its own points, not the device's: about two thirds come
    // through (the groups differ in size, so it varies with which ones are dropped).
    assert!(
        values * 5 >= flaky.len() * expected.len() * 2,
        "{values} values in {} records",
        flaky.len()
    );

    // The neighbour on the same connection: every cycle, complete and correct.
    assert!(
        steady.len() + 1 >= cycles,
        "steady delivered {} records in {cycles} cycles",
        steady.len()
    );
    for r in &steady {
        assert!(r.meta.is_empty(), "{:?}", r.meta);
        assert_eq!(r.values.len(), 53);
        for (name, v) in &expected {
            assert_eq!(r.values[name], Value::F64(f64::from(*v)), "{name}");
        }
    }
    // Timeouts of one unit never cost the shared connection.
    assert_eq!(sim.connections.load(Ordering::SeqCst), 1);
    assert_eq!(snap.reconnects, 0, "{snap:?}");
    assert!(snap.timeouts >= 10 && snap.group_backoffs >= 10, "{snap:?}");
    assert_eq!(snap.device_backoffs, 0, "{snap:?}");
    assert_eq!(snap.protocol_errors, 0, "{snap:?}");
}

const RTU_POINTS: &str = r#"
word_order = "ABCD"
points = [
  { name = "a", table = "holding", address = 0, type = "u16" },
  { name = "v", table = "holding", address = 2, type = "f32" },
  { name = "c0", table = "coil", address = 0, type = "bool" },
]
"#;

#[tokio::test]
async fn a_damaged_rtu_frame_is_reported_as_a_crc_error_and_costs_only_its_read() {
    let mut unit = Unit::default();
    unit.holding.insert(0, 42);
    unit.holding.insert(1, 0);
    Unit::put_f32(&mut unit.holding, 2, 230.5);
    unit.coils.insert(0, true);
    let sim = Sim::with([(1, unit)]);
    // Every third answer is damaged on the line.
    let (connector, damaged, server) = start_rtu_damaging(sim.clone(), |n| n % 3 == 0);
    let cfg = config(&format!(
        "type = \"modbus_rtu\"\nport = \"/dev/null-pty\"\nbaud = 19200\n[[devices]]\nid = \"m\"\nunit = 1\npoll_interval = \"100ms\"\ntimeout = \"100ms\"\n{RTU_POINTS}"
    ));
    assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
    let counters = Arc::new(ModbusMetrics::detached());
    let running =
        run(ModbusAdapter::new("rtu", cfg, Arc::clone(&counters)).with_connector(connector));
    assert!(
        running
            .wait_for(Duration::from_secs(10), |r| r.len() >= 12)
            .await
    );
    let records = running.stop().await;
    server.abort();

    let snap = counters.snapshot();
    let damaged = damaged.lock().unwrap().len() as u64;
    assert!(damaged >= 3, "{damaged}");
    // The last damaged answer may still have been on its way when the adapter stopped.
    assert!(
        snap.crc_errors == damaged || snap.crc_errors + 1 == damaged,
        "{damaged} damaged: {snap:?}"
    );
    assert_eq!(snap.timeouts, 0, "a bad CRC is not a timeout: {snap:?}");
    let mut crc_flagged = 0;
    // Two read groups, every third answer damaged: a cycle loses both now and then.
    let with_values = records.iter().filter(|r| !r.values.is_empty()).count();
    assert!(
        with_values * 10 >= records.len() * 8,
        "{with_values} of {}",
        records.len()
    );
    for r in &records {
        for (name, want) in [
            ("a", Value::I64(42)),
            ("v", Value::F64(230.5)),
            ("c0", Value::Bool(true)),
        ] {
            match (r.values.get(name), quality(r, name)) {
                (Some(got), None) => assert_eq!(got, &want, "{name}"),
                (None, Some(q)) => {
                    assert!(
                        q.starts_with("bad: CRC error (frame says 0x"),
                        "{name}: {q}"
                    );
                    crc_flagged += 1;
                }
                other => panic!("{name}: {other:?}"),
            }
        }
    }
    assert!(crc_flagged >= 1);
    assert_eq!(snap.device_backoffs, 0, "{snap:?}");
}

#[tokio::test]
async fn a_connection_closed_by_the_device_is_named() {
    // Accepts, reads the request, hangs up (a gateway refusing a further client).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hangup = tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 12];
            let _ = s.read_exact(&mut buf).await;
        }
    });
    let cfg = config(&format!(
        "type = \"modbus_tcp\"\nhost = \"{addr}\"\n[[devices]]\nid = \"m\"\nunit = 1\npoll_interval = \"100ms\"\ntimeout = \"1s\"\npoints = [ {{ name = \"a\", table = \"holding\", address = 0, type = \"u16\" }} ]\n"
    ));
    let counters = Arc::new(ModbusMetrics::detached());
    let running = run(ModbusAdapter::new("mb", cfg, Arc::clone(&counters)));
    assert!(
        running
            .wait_for(Duration::from_secs(10), |r| !r.is_empty())
            .await
    );
    let records = running.stop().await;
    hangup.abort();
    assert_eq!(
        quality(&records[0], "a").as_deref(),
        Some("bad: connection closed by device")
    );
    let snap = counters.snapshot();
    assert!(snap.connections_closed >= 1, "{snap:?}");
    assert_eq!((snap.timeouts, snap.transport_errors), (0, 0), "{snap:?}");
}

#[tokio::test]
async fn a_unit_going_silent_costs_one_timeout_per_attempt_and_keeps_the_connection() {
    let (unit, _) = sdm630_unit();
    let sim = Sim::with([(1, unit.clone()), (2, unit)]);
    let (addr, server) = start_tcp(sim.clone(), "127.0.0.1:0".parse().unwrap()).await;
    let mut text = format!("type = \"modbus_tcp\"\nhost = \"{addr}\"\n");
    for (id, unit) in [("dying", 1), ("steady", 2)] {
        text.push_str(&format!(
            "[[devices]]\nid = \"{id}\"\nunit = {unit}\nprofile = \"eastron_sdm630\"\npoll_interval = \"200ms\"\ntimeout = \"100ms\"\n"
        ));
    }
    let counters = Arc::new(ModbusMetrics::detached());
    let running = run(ModbusAdapter::new(
        "mb",
        config(&text),
        Arc::clone(&counters),
    ));
    assert!(
        running
            .wait_for(Duration::from_secs(10), |r| r.len() >= 6)
            .await
    );
    assert_eq!(counters.snapshot().timeouts, 0);
    sim.units.lock().unwrap().get_mut(&1).unwrap().silent = true;
    let silent_record = |r: &Record| r.device == "dying" && r.values.is_empty();
    assert!(
        running
            .wait_for(Duration::from_secs(10), |r| r.iter().any(silent_record))
            .await
    );
    // The transition: the cycle in which it stopped answering reads its remaining groups
    // (it had answered the first ones), the next one tries two reads before calling the
    // device silent (one lost answer of a healthy device is not silence). At most one
    // timeout per group in all.
    let transition = counters.snapshot().timeouts;
    assert!((1..=5 + 2).contains(&transition), "{transition}");
    let before = running.records().await.len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let records = running.stop().await;
    server.abort();

    let after = &records[before..];
    let dying: Vec<_> = after.iter().filter(|r| silent_record(r)).collect();
    let steady: Vec<_> = after.iter().filter(|r| r.device == "steady").collect();
    let snap = counters.snapshot();
    assert!(!dying.is_empty());
    assert!(after
        .iter()
        .all(|r| r.device == "steady" || silent_record(r)));
    for r in &dying {
        assert_eq!(quality(r, "voltage_l1").as_deref(), Some("bad: timeout"));
    }
    // Once silent: exactly one timeout per attempt, and fewer attempts than cycles.
    assert_eq!(snap.timeouts - transition, dying.len() as u64, "{snap:?}");
    assert!(
        dying.len() < steady.len(),
        "{} vs {}",
        dying.len(),
        steady.len()
    );
    assert!(snap.device_backoffs >= 1, "{snap:?}");
    assert!(steady.len() >= 12, "{}", steady.len());
    assert!(steady
        .iter()
        .all(|r| r.meta.is_empty() && r.values.len() == 53));
    assert_eq!(sim.connections.load(Ordering::SeqCst), 1, "{snap:?}");
}
