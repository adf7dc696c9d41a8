//! The adapter on an RTU bus (a pseudo-terminal pair served by tokio-modbus' RTU server):
//! several units on one line, one of them dead, one refusing a register.
mod common;

use citygate::record::Value;
use citygate::southbound::modbus::ModbusAdapter;
use citygate::telemetry::ModbusMetrics;
use common::modbus::*;
use std::sync::Arc;
use std::time::Duration;

const INTERVAL_MS: i64 = 300;
const TIMEOUT_MS: i64 = 120;

fn small_unit(base: u16) -> Unit {
    let mut u = Unit::default();
    u.holding.insert(0, base);
    u.holding.insert(1, base + 1);
    Unit::put_f32(&mut u.holding, 2, 230.5);
    u.coils.insert(0, true);
    u.coils.insert(1, false);
    u
}

const DEVICE_POINTS: &str = r#"
word_order = "ABCD"
points = [
  { name = "a", table = "holding", address = 0, type = "u16" },
  { name = "b", table = "holding", address = 1, type = "i16", scale = 0.5 },
  { name = "v", table = "holding", address = 2, type = "f32" },
  { name = "c0", table = "coil", address = 0, type = "bool" },
  { name = "c1", table = "coil", address = 1, type = "bool" },
]
"#;

fn rtu_config() -> citygate::southbound::modbus::ModbusConfig {
    let mut text = String::from("type = \"modbus_rtu\"\nport = \"/dev/null-pty\"\nbaud = 19200\n");
    for (id, unit) in [("u1", 1), ("u2", 2), ("u3", 3)] {
        text.push_str(&format!(
            "[[devices]]\nid = \"{id}\"\nunit = {unit}\npoll_interval = \"{INTERVAL_MS}ms\"\ntimeout = \"{TIMEOUT_MS}ms\"\n{DEVICE_POINTS}\n"
        ));
    }
    config(&text)
}

#[tokio::test]
async fn a_dead_unit_delays_the_others_by_at_most_one_timeout_per_cycle() {
    let mut refusing = small_unit(30);
    refusing.holding.remove(&1); // unit 3 refuses register 1
    let sim = Sim::with([
        (1, small_unit(10)),
        (
            2,
            Unit {
                silent: true,
                ..Unit::default()
            },
        ),
        (3, refusing),
    ]);
    let (connector, server) = start_rtu(sim.clone());
    let cfg = rtu_config();
    assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
    let counters = Arc::new(ModbusMetrics::detached());
    let running =
        run(ModbusAdapter::new("rtu", cfg, Arc::clone(&counters)).with_connector(connector));
    assert!(
        running
            .wait_for(Duration::from_secs(15), |r| r
                .iter()
                .filter(|r| r.device == "u1")
                .count()
                >= 8)
            .await
    );
    let records = running.stop().await;
    server.abort();

    let u1: Vec<_> = records.iter().filter(|r| r.device == "u1").collect();
    let u2: Vec<_> = records.iter().filter(|r| r.device == "u2").collect();
    let u3: Vec<_> = records.iter().filter(|r| r.device == "u3").collect();
    for r in &u1 {
        assert!(r.meta.is_empty(), "{:?}", r.meta);
        assert_eq!(r.values["a"], Value::I64(10));
        assert_eq!(r.values["b"], Value::F64(5.5));
        assert_eq!(r.values["v"], Value::F64(230.5));
        assert_eq!(r.values["c0"], Value::Bool(true));
        assert_eq!(r.values["c1"], Value::Bool(false));
    }
    for r in &u2 {
        assert!(r.values.is_empty());
        assert_eq!(r.meta["quality.a"], Value::Str("bad: timeout".into()));
    }
    // Unit 3: only the refused register is bad.
    for r in &u3 {
        assert_eq!(r.values.len(), 4, "{r:?}");
        assert!(
            matches!(&r.meta["quality.b"], Value::Str(s) if s.starts_with("bad: exception 02"))
        );
    }
    // Cycle starts of the healthy unit: never later than interval + one timeout (+ slack for
    // a shared 2-core machine).
    let slack = 150;
    for w in u1.windows(2) {
        let dt = w[1].ts_ms - w[0].ts_ms;
        assert!(
            dt <= INTERVAL_MS + TIMEOUT_MS + slack,
            "u1 cycle gap {dt} ms"
        );
    }
    // The dead unit costs one timeout per attempt, and is attempted less than every cycle.
    let snap = counters.snapshot();
    assert_eq!(snap.timeouts, u2.len() as u64, "{snap:?}");
    assert!(u2.len() < u1.len(), "{} vs {}", u2.len(), u1.len());
    // Unit 1 needs two reads per cycle (holding 0..4, coils 0..2), as planned.
    let seen_u1 = sim.seen().iter().filter(|s| s.0 == 1).count();
    assert!(
        seen_u1 >= 2 * u1.len() && seen_u1 <= 2 * (u1.len() + 1),
        "{seen_u1} for {} records",
        u1.len()
    );
    assert_eq!(snap.reconnects, 0);
}
