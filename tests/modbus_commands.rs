//! Commands executed by the Modbus adapter against the in-process tokio-modbus server: built
//! as `Command`s and submitted through the registry's target, as the dispatcher does.
mod common;

use citygate::commands::{Action, Command, CommandJob, CommandRegistry, Outcome, Safety};
use citygate::record::{now_ms, Value, Values};
use citygate::southbound::modbus::ModbusAdapter;
use citygate::telemetry::ModbusMetrics;
use common::modbus::*;
use common::within;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

const UNIT: u8 = 1;

/// A lighting cabinet: a relay coil, a dimmer (u16, 0.1 % steps), a float set point in CDAB
/// order, a counter that is not idempotent, an input register and a read-only holding
/// register.
fn cabinet_config(host: &str, extra: &str) -> String {
    format!(
        r#"type = "modbus_tcp"
host = "{host}"
commands = true
[[devices]]
id = "cab"
unit = {UNIT}
poll_interval = "1h"
timeout = "300ms"
{extra}
points = [
  {{ name = "relay", table = "coil", address = 0, type = "bool", writable = true, idempotent = true }},
  {{ name = "dim", table = "holding", address = 10, type = "u16", scale = 0.1, writable = true, min = 0, max = 100, idempotent = true }},
  {{ name = "setpoint", table = "holding", address = 12, type = "f32", order = "CDAB", writable = true, min = 5, max = 30, idempotent = true }},
  {{ name = "pulses", table = "holding", address = 14, type = "i16", writable = true }},
  {{ name = "mode", table = "holding", address = 15, type = "u16", writable = true, allowed = [0, 1, 2], idempotent = true }},
  {{ name = "status", table = "holding", address = 16, type = "u16" }},
  {{ name = "temperature", table = "input", address = 0, type = "i16", scale = 0.1 }},
  {{ name = "missing", table = "holding", address = 50, type = "u16", writable = true, idempotent = true }},
  {{ name = "level", table = "holding", address = 17, type = "u16", scale = 0.01, writable = true }},
]
"#
    )
}

fn cabinet_unit() -> Unit {
    let mut unit = Unit::default();
    unit.coils.insert(0, false);
    Unit::fill(&mut unit.holding, 0..20);
    unit.input.insert(0, 215);
    unit
}

fn command(set: &[(&str, Value)]) -> Command {
    let values: Values = set
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    Command {
        key: format!("cin-{}", now_ms()),
        id: "c1".into(),
        device: "cab".into(),
        action: Action::Set(values),
        created_ms: now_ms(),
        not_after_ms: Some(now_ms() + 60_000),
        creator: "Cplatform".into(),
    }
}

struct Cabinet {
    sim: Sim,
    registry: Arc<CommandRegistry>,
    running: Running,
    counters: Arc<ModbusMetrics>,
    _server: tokio::task::JoinHandle<()>,
}

async fn cabinet(unit: Unit, extra: &str) -> Cabinet {
    let sim = Sim::with([(UNIT, unit)]);
    let (addr, server) = start_tcp(sim.clone(), "127.0.0.1:0".parse().unwrap()).await;
    let cfg = config(&cabinet_config(&addr.to_string(), extra));
    assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
    let registry = CommandRegistry::new();
    let counters = Arc::new(ModbusMetrics::detached());
    let adapter = ModbusAdapter::new("cab-bus", cfg, Arc::clone(&counters))
        .with_commands(Arc::clone(&registry));
    assert_eq!(registry.devices(), ["cab"]);
    Cabinet {
        sim,
        registry,
        running: run(adapter),
        counters,
        _server: server,
    }
}

impl Cabinet {
    /// What the dispatcher does: check, then submit and wait for the one answer.
    async fn send(&self, command: Command) -> Outcome {
        let target = self.registry.get(&command.device).expect("registered");
        if let Err(reason) = target.check(&command) {
            return Outcome::Rejected { reason };
        }
        self.submit(command).await
    }

    /// Submits without checking first (the adapter checks again).
    async fn submit(&self, command: Command) -> Outcome {
        let target = self.registry.get(&command.device).expect("registered");
        let (done, answer) = oneshot::channel();
        target.submit(CommandJob { command, done }).expect("queued");
        within(10, answer).await.expect("answered")
    }
}

fn read_back(o: &Outcome) -> &Values {
    match o {
        Outcome::Done { read_back } => read_back,
        other => panic!("not done: {other:?}"),
    }
}

#[tokio::test]
async fn a_coil_a_scaled_register_and_a_word_ordered_float_are_written_and_read_back() {
    let c = cabinet(cabinet_unit(), "").await;
    let o = c.send(command(&[("relay", Value::Bool(true))])).await;
    assert_eq!(read_back(&o)["relay"], Value::Bool(true));
    assert!(c.sim.units.lock().unwrap()[&UNIT].coils[&0]);
    assert_eq!(c.sim.writes_at(UNIT, "coil", 0), 1);

    let o = c.send(command(&[("dim", Value::F64(23.4))])).await;
    match read_back(&o)["dim"] {
        Value::F64(v) => assert!((v - 23.4).abs() < 1e-9, "{v}"),
        ref other => panic!("{other:?}"),
    }
    assert_eq!(c.sim.units.lock().unwrap()[&UNIT].holding[&10], 234);

    let o = c.send(command(&[("setpoint", Value::F64(21.5))])).await;
    assert_eq!(read_back(&o)["setpoint"], Value::F64(21.5));
    let bits = 21.5f32.to_bits();
    {
        let units = c.sim.units.lock().unwrap();
        let h = &units[&UNIT].holding;
        assert_eq!((h[&12], h[&13]), (bits as u16, (bits >> 16) as u16));
    }
    // FC 05, 06 and 16, each followed by its read-back.
    let writes: Vec<(u8, u16)> = c
        .sim
        .seen()
        .iter()
        .filter(|s| s.1 >= 5)
        .map(|s| (s.1, s.2))
        .collect();
    assert_eq!(writes, [(5, 0), (6, 10), (16, 12)]);
    assert_eq!(c.sim.write_count(UNIT), 4); // 1 coil + 1 register + 2 registers
    assert_eq!(c.counters.writes_with("ok"), 3);
    // A command of several points: adjacent ones share one request.
    let o = c
        .send(command(&[
            ("pulses", Value::I64(-7)),
            ("mode", Value::I64(2)),
        ]))
        .await;
    assert_eq!(read_back(&o)["pulses"], Value::I64(-7));
    assert_eq!(read_back(&o)["mode"], Value::I64(2));
    assert_eq!(c.sim.seen().iter().filter(|s| s.1 == 16).count(), 2);
    c.running.stop().await;
}

#[tokio::test]
async fn every_rejection_class_is_rejected_with_a_reason_and_writes_nothing() {
    let c = cabinet(cabinet_unit(), "").await;
    let target = c.registry.get("cab").unwrap();
    let cases = [
        (("nope", Value::I64(1)), "has no point \"nope\""),
        (("status", Value::I64(1)), "is not writable"),
        (("temperature", Value::I64(1)), "input register"),
        (("dim", Value::I64(101)), "above the maximum 100"),
        (("dim", Value::F64(-1.0)), "below the minimum 0"),
        (("mode", Value::I64(3)), "not one of the values allowed"),
        (("relay", Value::Str("on".into())), "takes true or false"),
        (("setpoint", Value::Bool(true)), "takes a number"),
        (("dim", Value::F64(23.45)), "not a whole number"),
        (
            ("pulses", Value::I64(40_000)),
            "outside the i16 register's range",
        ),
    ];
    for ((point, value), want) in cases {
        let cmd = command(&[(point, value.clone())]);
        let e = target.check(&cmd).unwrap_err();
        assert!(e.contains(want), "{point} = {value:?}: {e}");
        // Submitted anyway, the adapter rejects it the same way.
        let o = c.submit(cmd).await;
        assert_eq!(o, Outcome::Rejected { reason: e });
    }
    assert_eq!(c.sim.write_count(UNIT), 0);
    assert!(c.sim.seen().iter().all(|s| s.1 < 5), "{:?}", c.sim.seen());
    // Safety follows the points' idempotent flags.
    assert_eq!(
        target.check(&command(&[("dim", Value::I64(5))])),
        Ok(Safety::Idempotent)
    );
    assert_eq!(
        target.check(&command(&[
            ("dim", Value::I64(5)),
            ("pulses", Value::I64(1))
        ])),
        Ok(Safety::Once)
    );
    c.running.stop().await;
}

#[tokio::test]
async fn an_exception_fails_with_its_name_and_an_expired_command_writes_nothing() {
    let c = cabinet(cabinet_unit(), "").await;
    let o = c.send(command(&[("missing", Value::I64(1))])).await;
    let Outcome::Failed { reason } = &o else {
        panic!("{o:?}")
    };
    assert!(
        reason.contains("exception 02 Illegal data address"),
        "{reason}"
    );
    assert_eq!(c.counters.writes_with("exception"), 1); // not retried

    let mut late = command(&[("relay", Value::Bool(true))]);
    late.not_after_ms = Some(now_ms() - 1_000);
    let o = c.send(late).await;
    assert!(
        matches!(&o, Outcome::Expired { reason } if reason.contains("after its deadline")),
        "{o:?}"
    );
    assert_eq!(c.sim.write_count(UNIT), 0);
    c.running.stop().await;
}

#[tokio::test]
async fn a_lost_answer_is_retried_only_for_idempotent_points() {
    let mut unit = cabinet_unit();
    unit.silent_writes = true;
    let c = cabinet(unit, "").await;
    // Not idempotent: written once, not repeated, reported unknown.
    let o = c.send(command(&[("pulses", Value::I64(3))])).await;
    let Outcome::Unknown { reason } = &o else {
        panic!("{o:?}")
    };
    assert!(reason.contains("not idempotent"), "{reason}");
    assert_eq!(c.sim.writes_at(UNIT, "holding", 14), 1);
    // Idempotent: tried again, then failed.
    let o = c.send(command(&[("dim", Value::I64(50))])).await;
    let Outcome::Failed { reason } = &o else {
        panic!("{o:?}")
    };
    assert!(reason.contains("after 3 attempts"), "{reason}");
    assert_eq!(c.sim.writes_at(UNIT, "holding", 10), 3);
    c.running.stop().await;
}

#[tokio::test]
async fn a_read_back_that_differs_fails_with_both_values() {
    let mut unit = cabinet_unit();
    unit.clamp_holding = Some(500);
    let c = cabinet(unit, "").await;
    let o = c.send(command(&[("dim", Value::I64(80))])).await;
    let Outcome::Failed { reason } = &o else {
        panic!("{o:?}")
    };
    assert!(
        reason.contains("reads back dim = 50") && reason.contains("(written 80)"),
        "{reason}"
    );
    c.running.stop().await;
}

#[tokio::test]
async fn commands_go_before_polls() {
    // Five input reads per cycle (max_gap = 0), polled back to back.
    let mut unit = cabinet_unit();
    Unit::fill(&mut unit.input, 0..100);
    let sim = Sim::with([(UNIT, unit)]);
    let (addr, _server) = start_tcp(sim.clone(), "127.0.0.1:0".parse().unwrap()).await;
    let cfg = config(&format!(
        r#"type = "modbus_tcp"
host = "{addr}"
commands = true
[[devices]]
id = "cab"
unit = {UNIT}
poll_interval = "1ms"
max_gap = 0
points = [
  {{ name = "a", table = "input", address = 0, type = "u16" }},
  {{ name = "b", table = "input", address = 20, type = "u16" }},
  {{ name = "c", table = "input", address = 40, type = "u16" }},
  {{ name = "d", table = "input", address = 60, type = "u16" }},
  {{ name = "e", table = "input", address = 80, type = "u16" }},
  {{ name = "relay", table = "coil", address = 0, type = "bool", writable = true, idempotent = true }},
  {{ name = "dim", table = "holding", address = 10, type = "u16", writable = true, idempotent = true }},
]
"#
    ));
    let registry = CommandRegistry::new();
    let running = run(
        ModbusAdapter::new("b", cfg, Arc::new(ModbusMetrics::detached()))
            .with_commands(Arc::clone(&registry)),
    );
    assert!(
        running
            .wait_for(Duration::from_secs(5), |r| r.len() >= 3)
            .await
    );
    let target = registry.get("cab").unwrap();
    let before = sim.seen().len();
    let mut answers = Vec::new();
    for n in 0..3 {
        let (done, answer) = oneshot::channel();
        let set = if n % 2 == 0 {
            ("relay", Value::Bool(n == 0))
        } else {
            ("dim", Value::I64(n))
        };
        target
            .submit(CommandJob {
                command: command(&[set]),
                done,
            })
            .unwrap();
        answers.push(answer);
    }
    for a in answers {
        assert!(matches!(within(10, a).await.unwrap(), Outcome::Done { .. }));
    }
    running.stop().await;
    let seen = sim.seen();
    let after = &seen[before..];
    let first = after.iter().position(|s| s.1 >= 5).expect("a write");
    // At most the read in progress when the jobs were queued came first.
    assert!(first <= 1, "{after:?}");
    // Then the three writes, each with its read-back, and no poll read in between.
    let fcs: Vec<u8> = after[first..first + 6].iter().map(|s| s.1).collect();
    assert_eq!(fcs, [5, 1, 6, 3, 5, 1], "{after:?}");
}

#[tokio::test]
async fn commands_work_over_rtu_too() {
    let sim = Sim::with([(UNIT, cabinet_unit())]);
    let (connector, _server) = start_rtu(sim.clone());
    let cfg = config(
        &cabinet_config("127.0.0.1:1", "")
            .replace(
                "type = \"modbus_tcp\"",
                "type = \"modbus_rtu\"\nport = \"/dev/null\"\nbaud = 115200",
            )
            .replace("host = \"127.0.0.1:1\"\n", ""),
    );
    assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
    let registry = CommandRegistry::new();
    let running = run(
        ModbusAdapter::new("rtu", cfg, Arc::new(ModbusMetrics::detached()))
            .with_connector(connector)
            .with_commands(Arc::clone(&registry)),
    );
    let c = Cabinet {
        sim,
        registry,
        running,
        counters: Arc::new(ModbusMetrics::detached()),
        _server: tokio::spawn(async {}),
    };
    let o = c
        .send(command(&[
            ("setpoint", Value::F64(19.5)),
            ("pulses", Value::I64(4)),
        ]))
        .await;
    assert_eq!(read_back(&o)["setpoint"], Value::F64(19.5));
    assert_eq!(read_back(&o)["pulses"], Value::I64(4));
    let o = c.send(command(&[("relay", Value::Bool(true))])).await;
    assert_eq!(read_back(&o)["relay"], Value::Bool(true));
    let o = c.send(command(&[("missing", Value::I64(1))])).await;
    assert!(
        matches!(&o, Outcome::Failed { reason } if reason.contains("exception 02")),
        "{o:?}"
    );
    assert_eq!(c.sim.write_count(UNIT), 4);
    c.running.stop().await;
}

#[tokio::test]
async fn a_rebuilt_adapter_registers_afresh_and_queued_jobs_of_a_stopped_one_are_answered() {
    let registry = CommandRegistry::new();
    let text = cabinet_config("127.0.0.1:9", "");
    let adapter = ModbusAdapter::new("lights", config(&text), Arc::new(ModbusMetrics::detached()))
        .with_commands(Arc::clone(&registry));
    assert_eq!(registry.devices(), ["cab"]);
    // A job queued for an adapter that stops before its turn: answered, not lost.
    let (done, answer) = oneshot::channel();
    registry
        .get("cab")
        .unwrap()
        .submit(CommandJob {
            command: command(&[("relay", Value::Bool(true))]),
            done,
        })
        .unwrap();
    drop(adapter);
    let o = within(5, answer).await.unwrap();
    assert!(
        matches!(&o, Outcome::Failed { reason } if reason.contains("nothing was written")),
        "{o:?}"
    );
    // Rebuilt with commands off: the device no longer accepts commands.
    let off = text.replace("commands = true", "commands = false");
    let _adapter = ModbusAdapter::new("lights", config(&off), Arc::new(ModbusMetrics::detached()))
        .with_commands(Arc::clone(&registry));
    assert!(registry.devices().is_empty());
}
