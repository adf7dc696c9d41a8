//! Report by exception on a Modbus meter whose voltage moves slowly (in-process Modbus/TCP
//! server, records counted in a real buffer): the records drop by the expected factor, a step
//! goes out with the next poll, the heartbeat comes on time, and a device that stops answering
//! (and comes back) is reported at once.
mod common;

use citygate::record::{now_ms, Record, Value};
use citygate::southbound::modbus::ModbusAdapter;
use citygate::telemetry::ModbusMetrics;
use common::modbus::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const POLL_MS: i64 = 100;
const HEARTBEAT_MS: i64 = 2000;
/// Scheduling slack on a loaded 2-core machine.
const SLACK_MS: i64 = 150;

fn set_voltage(sim: &Sim, v: f32) {
    let mut units = sim.units.lock().unwrap();
    Unit::put_f32(&mut units.get_mut(&1).unwrap().input, 0, v);
}

fn voltage(r: &Record) -> Option<f64> {
    match r.values.get("voltage") {
        Some(Value::F64(v)) => Some(*v),
        _ => None,
    }
}

/// Records committed after `after` (count) once `pred` holds on the first of them.
async fn next_record(running: &Running, after: usize, within: Duration) -> Record {
    assert!(
        running.wait_for(within, |r| r.len() > after).await,
        "no record after #{after} within {within:?}"
    );
    running.records().await[after].clone()
}

/// Host only: its bounds are one 100 ms poll plus 150 ms; under qemu-user the emulator's speed,
/// not citygate, would decide them (the filter's rules run under qemu in its unit tests).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "timing bounds of one poll; run on the host"
)]
async fn slow_meter_sends_changes_heartbeats_and_quality_at_once() {
    let mut unit = Unit::default();
    Unit::put_f32(&mut unit.input, 0, 230.0);
    Unit::put_f32(&mut unit.input, 2, 50.0);
    let sim = Sim::with([(1, unit)]);
    let (addr, server) = start_tcp(sim.clone(), "127.0.0.1:0".parse().unwrap()).await;
    let cfg = config(&format!(
        r#"type = "modbus_tcp"
host = "{addr}"
[[devices]]
id = "meter"
unit = 1
word_order = "ABCD"
poll_interval = "{POLL_MS}ms"
timeout = "200ms"
report.deadband = 0.5
report.max_interval = "{HEARTBEAT_MS}ms"
report.points.frequency = {{ deadband = 0.05 }}
[[devices.points]]
name = "voltage"
table = "input"
address = 0
type = "f32"
[[devices.points]]
name = "frequency"
table = "input"
address = 2
type = "f32"
"#
    ));
    assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
    let counters = Arc::new(ModbusMetrics::detached());
    let running = run(ModbusAdapter::new("mb", cfg, Arc::clone(&counters)));

    // 1. Slow drift with noise, always within the 0.5 V deadband of 230.0: for 3.1 s only the
    //    first reading and one heartbeat are sent, out of about 31 polls.
    let drifting = Arc::new(AtomicBool::new(true));
    let drift = {
        let (sim, on) = (sim.clone(), Arc::clone(&drifting));
        tokio::spawn(async move {
            let mut k = 0u32;
            while on.load(Ordering::SeqCst) {
                let noise = if k % 2 == 0 { 0.1 } else { -0.1 };
                set_voltage(&sim, 230.0 + 0.005 * k as f32 + noise);
                k += 1;
                tokio::time::sleep(Duration::from_millis(POLL_MS as u64 / 2)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(3100)).await;
    drifting.store(false, Ordering::SeqCst);
    drift.await.unwrap();
    let phase1 = running.records().await;
    let c = counters.snapshot();
    let polls = c.records + c.suppressed;
    assert_eq!(phase1.len(), 2, "first + one heartbeat: {phase1:?}");
    assert_eq!(c.records, 2);
    assert!(polls >= 20, "only {polls} polls in 3.1 s");
    assert!(
        polls / c.records >= 10,
        "{polls} polls became {} records",
        c.records
    );
    let hb = phase1[1].ts_ms - phase1[0].ts_ms;
    assert!(
        (HEARTBEAT_MS..=HEARTBEAT_MS + POLL_MS + SLACK_MS).contains(&hb),
        "heartbeat after {hb} ms"
    );

    // 2. A step beyond the deadband goes out with the next poll.
    let step_at = now_ms();
    set_voltage(&sim, 240.0);
    let step = next_record(&running, 2, Duration::from_secs(1)).await;
    assert_eq!(voltage(&step), Some(240.0), "{step:?}");
    assert!(
        step.ts_ms - step_at <= POLL_MS + SLACK_MS,
        "step sent {} ms after it happened",
        step.ts_ms - step_at
    );

    // 3. Nothing changes: the next record is the heartbeat, on time.
    let beat = next_record(&running, 3, Duration::from_secs(4)).await;
    assert_eq!(voltage(&beat), Some(240.0));
    let gap = beat.ts_ms - step.ts_ms;
    assert!(
        (HEARTBEAT_MS..=HEARTBEAT_MS + POLL_MS + SLACK_MS).contains(&gap),
        "heartbeat {gap} ms after the step"
    );

    // 4. The meter stops answering: its failure goes out at once, once.
    let silent_at = now_ms();
    sim.units.lock().unwrap().get_mut(&1).unwrap().silent = true;
    let down = next_record(&running, 4, Duration::from_secs(1)).await;
    assert!(down.values.is_empty(), "{down:?}");
    assert!(down.meta.contains_key("quality.voltage"), "{down:?}");
    assert!(
        down.ts_ms - silent_at <= POLL_MS + SLACK_MS,
        "failure sent {} ms after the meter went silent",
        down.ts_ms - silent_at
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(running.records().await.len(), 5, "a failure goes out once");

    // 5. It answers again with the value sent before the failure: no change beyond the
    //    deadband and no heartbeat due, yet the first answered poll is sent (quality change).
    sim.units.lock().unwrap().get_mut(&1).unwrap().silent = false;
    let before = counters.snapshot();
    let up = next_record(&running, 5, Duration::from_secs(3)).await;
    assert_eq!(voltage(&up), Some(240.0), "{up:?}");
    assert!(up.meta.is_empty(), "{up:?}");
    assert!(
        up.ts_ms - down.ts_ms < HEARTBEAT_MS,
        "sent {} ms after the failure: that is the heartbeat, not the recovery",
        up.ts_ms - down.ts_ms
    );
    // At most a read already in flight when the meter came back went unanswered.
    let held_back = counters.snapshot().suppressed - before.suppressed;
    assert!(
        held_back <= 1,
        "{held_back} polls held back after the recovery"
    );

    let all = running.stop().await;
    server.abort();
    assert!(all.len() >= 6);
    assert!(all.iter().all(|r| r.device == "meter"));
}

/// Without a `report` table every poll goes out, as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_report_table_every_poll_is_sent() {
    let mut unit = Unit::default();
    Unit::put_f32(&mut unit.input, 0, 230.0);
    let sim = Sim::with([(1, unit)]);
    let (addr, server) = start_tcp(sim, "127.0.0.1:0".parse().unwrap()).await;
    let cfg = config(&format!(
        "type = \"modbus_tcp\"\nhost = \"{addr}\"\n[[devices]]\nid = \"meter\"\nunit = 1\nword_order = \"ABCD\"\npoll_interval = \"50ms\"\n\
         [[devices.points]]\nname = \"voltage\"\ntable = \"input\"\naddress = 0\ntype = \"f32\"\n"
    ));
    let counters = Arc::new(ModbusMetrics::detached());
    let running = run(ModbusAdapter::new("mb", cfg, Arc::clone(&counters)));
    assert!(
        running
            .wait_for(Duration::from_secs(5), |r| r.len() >= 5)
            .await
    );
    let all = running.stop().await;
    server.abort();
    assert_eq!(counters.snapshot().suppressed, 0);
    assert_eq!(all.len() as u64, counters.snapshot().records);
}
