//! The adapter against pymodbus, an independent implementation (run with `--ignored`; how
//! the peer is found or started: `tests/common/pymodbus.rs`).
mod common;

use citygate::record::Value;
use citygate::southbound::modbus::bus::{Bus, Framing, TcpConnector, TxError};
use citygate::southbound::modbus::config::Table;
use citygate::southbound::modbus::plan::ReadRequest;
use citygate::southbound::modbus::probe::probe;
use citygate::southbound::modbus::ModbusAdapter;
use citygate::telemetry::ModbusMetrics;
use common::modbus::*;
use common::pymodbus::peer;
use std::sync::Arc;
use std::time::Duration;
use tokio_modbus::ExceptionCode;

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test]
#[ignore = "needs pymodbus (CITYGATE_PYMODBUS_PORT or CITYGATE_PY_VENV)"]
async fn polls_pymodbus_and_decodes_known_values() {
    let (addr, child) = peer().await;
    let cfg = config(&format!(
        r#"type = "modbus_tcp"
host = "{addr}"
[[devices]]
id = "meter"
unit = 1
profile = "eastron_sdm630"
poll_interval = "1h"
timeout = "2s"
points = [
  {{ name = "f_abcd", table = "holding", address = 0, type = "f32", order = "ABCD" }},
  {{ name = "f_cdab", table = "holding", address = 2, type = "f32", order = "CDAB" }},
  {{ name = "t", table = "holding", address = 4, type = "i16", scale = 0.1 }},
  {{ name = "n", table = "holding", address = 5, type = "i32", order = "ABCD" }},
  {{ name = "beyond", table = "holding", address = 24, type = "u16" }},
  {{ name = "c0", table = "coil", address = 0, type = "bool" }},
  {{ name = "c1", table = "coil", address = 1, type = "bool" }},
  {{ name = "c2", table = "coil", address = 2, type = "bool" }},
]
"#
    ));
    assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
    let counters = Arc::new(ModbusMetrics::detached());
    let running = run(ModbusAdapter::new("py", cfg, Arc::clone(&counters)));
    assert!(
        running.wait_for(WAIT, |r| !r.is_empty()).await,
        "{:?}",
        counters.snapshot()
    );
    let records = running.stop().await;
    let r = &records[0];
    let f = |name: &str| match &r.values[name] {
        Value::F64(v) => *v,
        other => panic!("{name}: {other:?}"),
    };
    assert_eq!(f("voltage_l1"), f64::from(230.1f32));
    assert_eq!(f("voltage_l2"), f64::from(231.2f32));
    assert_eq!(f("voltage_l3"), f64::from(229.8f32));
    assert_eq!(f("frequency"), 50.0);
    assert_eq!(f("energy_import"), 1234.5);
    assert_eq!(f("f_abcd"), f64::from(123.456f32));
    assert_eq!(f("f_cdab"), f64::from(123.456f32));
    assert!((f("t") + 100.0).abs() < 1e-9);
    assert_eq!(r.values["n"], Value::I64(100000));
    assert_eq!(
        (
            r.values["c0"].clone(),
            r.values["c1"].clone(),
            r.values["c2"].clone()
        ),
        (Value::Bool(true), Value::Bool(false), Value::Bool(true))
    );
    // Only the register past the end of pymodbus' block is refused.
    assert_eq!(r.meta.len(), 1, "{:?}", r.meta);
    assert!(
        matches!(&r.meta["quality.beyond"], Value::Str(s) if s.starts_with("bad: exception 02"))
    );
    // 5 SDM630 reads + coils + holding 0..25 refused and split down to `beyond`.
    let snap = counters.snapshot();
    assert!(snap.transactions >= 7 && snap.exceptions >= 1, "{snap:?}");
    drop(child);
}

#[tokio::test]
#[ignore = "needs pymodbus (CITYGATE_PYMODBUS_PORT or CITYGATE_PY_VENV)"]
async fn pymodbus_quirks_are_understood() {
    let (addr, child) = peer().await;
    let mut bus = Bus::new(
        Arc::new(TcpConnector(addr.clone())),
        Framing::Tcp,
        Duration::ZERO,
        Arc::new(ModbusMetrics::detached()),
    );
    // Over-limit read: pymodbus answers function 0x80 code 01 (the spec says 0x83 code 03);
    // the bus still reports it as a device refusal, not a broken connection.
    let over = ReadRequest {
        table: Table::Holding,
        address: 0,
        count: 126,
        points: vec![],
    };
    let e = tokio::time::timeout(WAIT, bus.read(1, &over, Duration::from_secs(2)))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(e, TxError::Exception(ExceptionCode::IllegalFunction));
    assert!(bus.is_connected());
    // Unknown unit on a single-device server: exception 04.
    let ok = ReadRequest {
        table: Table::Holding,
        address: 0,
        count: 2,
        points: vec![],
    };
    let e = tokio::time::timeout(WAIT, bus.read(7, &ok, Duration::from_secs(2)))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(e, TxError::Exception(ExceptionCode::ServerDeviceFailure));
    // And the probe table for the float.
    let out = tokio::time::timeout(WAIT, probe(&format!("tcp://{addr}"), 1, "holding:0:4"))
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.lines()
            .any(|l| l.contains(" ABCD ") && l.contains("123.456")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains("     2  CDAB") && l.contains("123.456")),
        "{out}"
    );
    drop(child);
}

/// A command as the dispatcher submits it: checked by the target, then queued.
async fn send(
    registry: &citygate::commands::CommandRegistry,
    set: &[(&str, Value)],
) -> citygate::commands::Outcome {
    use citygate::commands::{Action, Command, CommandJob, Outcome};
    let now = citygate::record::now_ms();
    let command = Command {
        key: format!("cin-{now}"),
        id: "c".into(),
        device: "lamp".into(),
        action: Action::Set(
            set.iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        ),
        created_ms: now,
        not_after_ms: Some(now + 60_000),
        creator: "Cplatform".into(),
    };
    let target = registry.get("lamp").expect("registered");
    if let Err(reason) = target.check(&command) {
        return Outcome::Rejected { reason };
    }
    let (done, answer) = tokio::sync::oneshot::channel();
    target.submit(CommandJob { command, done }).unwrap();
    tokio::time::timeout(WAIT, answer).await.unwrap().unwrap()
}

#[tokio::test]
#[ignore = "needs pymodbus (CITYGATE_PYMODBUS_PORT or CITYGATE_PY_VENV)"]
async fn commands_write_pymodbus_and_read_back() {
    use citygate::commands::{CommandRegistry, Outcome};
    let (addr, child) = peer().await;
    let cfg = config(&format!(
        r#"type = "modbus_tcp"
host = "{addr}"
commands = true
[[devices]]
id = "lamp"
unit = 1
poll_interval = "1h"
timeout = "2s"
points = [
  {{ name = "relay", table = "coil", address = 5, type = "bool", writable = true, idempotent = true }},
  {{ name = "dim", table = "holding", address = 8, type = "u16", scale = 0.1, writable = true, min = 0, max = 100, idempotent = true }},
  {{ name = "setpoint", table = "holding", address = 10, type = "f32", order = "CDAB", writable = true, idempotent = true }},
  {{ name = "beyond", table = "holding", address = 30, type = "u16", writable = true }},
]
"#
    ));
    assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
    let registry = CommandRegistry::new();
    let counters = Arc::new(ModbusMetrics::detached());
    let running =
        run(ModbusAdapter::new("py", cfg, Arc::clone(&counters))
            .with_commands(Arc::clone(&registry)));
    let done = |o: Outcome| match o {
        Outcome::Done { read_back } => read_back,
        other => panic!("{other:?}"),
    };
    let r = done(send(&registry, &[("relay", Value::Bool(true))]).await);
    assert_eq!(r["relay"], Value::Bool(true));
    let r = done(send(&registry, &[("dim", Value::F64(42.5))]).await);
    assert!(
        matches!(r["dim"], Value::F64(v) if (v - 42.5).abs() < 1e-9),
        "{r:?}"
    );
    let r = done(send(&registry, &[("setpoint", Value::F64(-21.5))]).await);
    assert_eq!(r["setpoint"], Value::F64(-21.5));
    // pymodbus refuses the address past its block: failed, with the exception named.
    let o = send(&registry, &[("beyond", Value::I64(1))]).await;
    assert!(
        matches!(&o, Outcome::Failed { reason } if reason.contains("exception 02 Illegal data address")),
        "{o:?}"
    );
    running.stop().await;
    // The device shows the writes, read on a connection of its own.
    let mut bus = Bus::new(
        Arc::new(TcpConnector(addr.clone())),
        Framing::Tcp,
        Duration::ZERO,
        Arc::new(ModbusMetrics::detached()),
    );
    let read = |table, address, count| ReadRequest {
        table,
        address,
        count,
        points: vec![],
    };
    let regs = bus
        .read(1, &read(Table::Holding, 8, 4), Duration::from_secs(2))
        .await
        .unwrap();
    let bits = (-21.5f32).to_bits();
    assert_eq!(
        regs,
        citygate::southbound::modbus::bus::ReadData::Registers(vec![
            425,
            0,
            bits as u16,
            (bits >> 16) as u16
        ])
    );
    let coils = bus
        .read(1, &read(Table::Coil, 5, 1), Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(
        coils,
        citygate::southbound::modbus::bus::ReadData::Bits(vec![true])
    );
    assert_eq!(counters.writes_with("ok"), 3);
    assert_eq!(counters.writes_with("exception"), 1);
    drop(child);
}

#[tokio::test]
#[ignore = "needs pymodbus (CITYGATE_PYMODBUS_PORT or CITYGATE_PY_VENV)"]
async fn the_write_tool_writes_and_reads_back_pymodbus() {
    let (addr, child) = peer().await;
    let tool = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_citygate"))
            .args(["write", "modbus", &format!("tcp://{addr}")])
            .args(args)
            .output()
            .expect("run citygate write");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = tool(&[
        "--table",
        "holding",
        "--address",
        "10",
        "--type",
        "f32",
        "--order",
        "CDAB",
        "--value",
        "-21.5",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("fc16 holding 10 (f32, order CDAB)"), "{out}");
    assert!(out.contains("raw 0x0000 0xC1AC"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("read back") && l.contains("-21.5")),
        "{out}"
    );
    let (code, out, err) = tool(&[
        "--table",
        "holding",
        "--address",
        "8",
        "--type",
        "u16",
        "--scale",
        "0.1",
        "--value",
        "23.4",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("raw 0x00EA"), "{out}");
    let (code, _, err) = tool(&[
        "--table",
        "holding",
        "--address",
        "30",
        "--type",
        "u16",
        "--value",
        "1",
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("exception 02 Illegal data address"), "{err}");
    drop(child);
}
