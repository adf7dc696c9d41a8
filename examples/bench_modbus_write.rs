//! Latency of a Modbus command (write + read-back) through the adapter, against an
//! in-process tokio-modbus TCP server, on an idle bus and on a bus busy polling.
//!
//! `cargo run --release --example bench_modbus_write [COMMANDS]`   (default 1000)
//!
//! Each command is built as a `Command`, checked and submitted through the registry's target
//! (as the dispatcher does) and timed from submit to answer: the queue, the FC 06 write, the
//! FC 03 read-back and the answer. "busy" adds a meter on the same connection polled back to
//! back (SDM630 profile, 5 reads a cycle), so each command also waits for the read in
//! progress: commands go before polls.

use citygate::buffer::{Buffer, BufferConfig};
use citygate::commands::{Action, Command, CommandJob, CommandRegistry, Outcome};
use citygate::record::{now_ms, Value, Values};
use citygate::southbound::modbus::{ModbusAdapter, ModbusConfig};
use citygate::southbound::Adapter;
use citygate::telemetry::ModbusMetrics;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_modbus::prelude::*;
use tokio_modbus::server::tcp::{accept_tcp_connection, Server};
use tokio_util::sync::CancellationToken;

/// Holding registers that remember writes; every input register reads 230.4 (f32).
#[derive(Clone, Default)]
struct Device(Arc<Mutex<HashMap<u16, u16>>>);

impl tokio_modbus::server::Service for Device {
    type Request = Request<'static>;
    type Response = Response;
    type Exception = ExceptionCode;
    type Future = std::future::Ready<Result<Response, ExceptionCode>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        let mut regs = self.0.lock().unwrap();
        std::future::ready(match req {
            Request::ReadInputRegisters(_, n) => {
                Ok(Response::ReadInputRegisters(vec![0x4366; n.into()]))
            }
            Request::ReadHoldingRegisters(a, n) => Ok(Response::ReadHoldingRegisters(
                (a..a + n).map(|k| *regs.get(&k).unwrap_or(&0)).collect(),
            )),
            Request::WriteSingleRegister(a, v) => {
                regs.insert(a, v);
                Ok(Response::WriteSingleRegister(a, v))
            }
            _ => Err(ExceptionCode::IllegalFunction),
        })
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let k = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[k.min(sorted.len() - 1)]
}

async fn scenario(busy: bool, commands: usize) -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let device = Device::default();
    let server = tokio::spawn(async move {
        let on_connected = move |stream, socket_addr| {
            let device = device.clone();
            async move { accept_tcp_connection(stream, socket_addr, move |_| Ok(Some(device.clone()))) }
        };
        let _ = Server::new(listener).serve(&on_connected, |_| {}).await;
    });
    let mut text = format!(
        "type = \"modbus_tcp\"\nhost = \"{addr}\"\ncommands = true\n[[devices]]\nid = \"lamp\"\nunit = 1\npoll_interval = \"1h\"\npoints = [{{ name = \"dim\", table = \"holding\", address = 10, type = \"u16\", scale = 0.1, writable = true, min = 0, max = 100, idempotent = true }}]\n"
    );
    if busy {
        text.push_str("[[devices]]\nid = \"meter\"\nunit = 2\nprofile = \"eastron_sdm630\"\npoll_interval = \"1ms\"\n");
    }
    let config: ModbusConfig = toml::from_str(&text)?;
    let registry = CommandRegistry::new();
    let counters = Arc::new(ModbusMetrics::detached());
    let mut adapter = ModbusAdapter::new("bench", config, Arc::clone(&counters))
        .with_commands(Arc::clone(&registry));
    let dir = tempfile::tempdir()?;
    let (buffer, buffer_thread) =
        Buffer::open(&dir.path().join("bench.sqlite"), &BufferConfig::default())?;
    let out = buffer.sender();
    let shutdown = CancellationToken::new();
    let (o, s) = (out.clone(), shutdown.clone());
    let task = tokio::spawn(async move { adapter.run(&o, &s).await });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let target = registry.get("lamp").ok_or("lamp not registered")?;
    let mut latencies = Vec::with_capacity(commands);
    for n in 0..commands {
        let mut set = Values::new();
        set.insert("dim".into(), Value::I64((n % 100) as i64));
        let command = Command {
            key: format!("cin-{n}"),
            id: format!("c{n}"),
            device: "lamp".into(),
            action: Action::Set(set),
            created_ms: now_ms(),
            not_after_ms: Some(now_ms() + 60_000),
            creator: "Cbench".into(),
        };
        let t0 = Instant::now();
        target.check(&command)?;
        let (done, answer) = tokio::sync::oneshot::channel();
        target
            .submit(CommandJob { command, done })
            .map_err(|_| "queue full")?;
        match answer.await? {
            Outcome::Done { .. } => latencies.push(t0.elapsed()),
            other => return Err(format!("command {n}: {other:?}").into()),
        }
    }
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), task).await???;
    server.abort();
    drop(out);
    drop(buffer);
    buffer_thread.close();
    latencies.sort();
    let mean = latencies.iter().sum::<Duration>() / latencies.len() as u32;
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{:<5} {commands} commands: p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs, mean {:.0} µs; writes ok {}",
        if busy { "busy" } else { "idle" },
        us(percentile(&latencies, 0.5)),
        us(percentile(&latencies, 0.99)),
        us(*latencies.last().unwrap_or(&Duration::ZERO)),
        us(mean),
        counters.writes_with("ok"),
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let commands: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000)
        .clamp(10, 100_000);
    println!("Modbus command latency, submit → write (FC 06) → read-back (FC 03) → answer, Modbus/TCP on loopback");
    scenario(false, commands).await?;
    scenario(true, commands).await?;
    Ok(())
}
