//! Throughput of the Modbus adapter against an in-process tokio-modbus TCP server.
//!
//! `cargo run --release --example bench_modbus [DEVICES] [SECONDS]`
//! Each device uses the Eastron SDM630 profile (53 float points) and polls back to back
//! (`poll_interval = "1ms"`), so the numbers are bounded by the adapter, the loopback and the
//! server, not by a schedule. Prints points/s, records/s and transactions per cycle.

use citygate::buffer::{Buffer, BufferConfig};
use citygate::southbound::modbus::{ModbusAdapter, ModbusConfig};
use citygate::southbound::Adapter;
use citygate::telemetry::ModbusMetrics;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_modbus::prelude::*;
use tokio_modbus::server::tcp::{accept_tcp_connection, Server};
use tokio_util::sync::CancellationToken;

/// Answers every read with the float 230.4 repeated (0x4366 in every register).
#[derive(Clone)]
struct Meter;

impl tokio_modbus::server::Service for Meter {
    type Request = Request<'static>;
    type Response = Response;
    type Exception = ExceptionCode;
    type Future = std::future::Ready<Result<Response, ExceptionCode>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        std::future::ready(match req {
            Request::ReadInputRegisters(_, n) => {
                Ok(Response::ReadInputRegisters(vec![0x4366; n.into()]))
            }
            Request::ReadHoldingRegisters(_, n) => {
                Ok(Response::ReadHoldingRegisters(vec![0x4366; n.into()]))
            }
            _ => Err(ExceptionCode::IllegalFunction),
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let devices: u8 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(4)
        .clamp(1, 247);
    let seconds: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(5)
        .clamp(1, 60);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move {
        let on_connected = |stream, socket_addr| async move {
            accept_tcp_connection(stream, socket_addr, |_| Ok(Some(Meter)))
        };
        let _ = Server::new(listener).serve(&on_connected, |_| {}).await;
    });

    let mut text = format!("type = \"modbus_tcp\"\nhost = \"{addr}\"\n");
    for unit in 1..=devices {
        text.push_str(&format!(
            "[[devices]]\nid = \"m{unit}\"\nunit = {unit}\nprofile = \"eastron_sdm630\"\npoll_interval = \"1ms\"\ntimeout = \"1s\"\n"
        ));
    }
    let config: ModbusConfig = toml::from_str(&text)?;
    let counters = Arc::new(ModbusMetrics::detached());
    let mut adapter = ModbusAdapter::new("bench", config, Arc::clone(&counters));
    let dir = tempfile::tempdir()?;
    let buffer_cfg = BufferConfig {
        commit_max_delay: Duration::from_millis(5),
        ..BufferConfig::default()
    };
    let (buffer, buffer_thread) = Buffer::open(&dir.path().join("bench.sqlite"), &buffer_cfg)?;
    let out = buffer.sender();
    let shutdown = CancellationToken::new();
    let (o, s) = (out.clone(), shutdown.clone());
    let task = tokio::spawn(async move { adapter.run(&o, &s).await });

    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), task).await???;
    let elapsed = start.elapsed().as_secs_f64();
    server.abort();

    let records: Vec<_> = buffer
        .fetch_pending(std::collections::HashMap::new(), 1 << 30)
        .await?
        .into_iter()
        .map(|r| r.record)
        .collect();
    drop(out);
    drop(buffer);
    buffer_thread.close();
    let points: usize = records.iter().map(|r| r.values.len()).sum();
    let bad: usize = records.iter().map(|r| r.meta.len()).sum();
    let snap = counters.snapshot();
    println!(
        "devices               {devices} (SDM630 profile, 53 f32 points each), 1 TCP connection"
    );
    println!("duration              {elapsed:.2} s");
    println!(
        "records (cycles)      {} ({:.0}/s)",
        records.len(),
        records.len() as f64 / elapsed
    );
    println!(
        "points                {points} ({:.0} points/s), bad {bad}",
        points as f64 / elapsed
    );
    println!(
        "transactions          {} ({:.0}/s)",
        snap.transactions,
        snap.transactions as f64 / elapsed
    );
    println!(
        "transactions/cycle    {:.2}",
        snap.transactions as f64 / records.len().max(1) as f64
    );
    println!(
        "mean cycle time       {:.3} ms",
        elapsed * 1e3 * f64::from(devices) / records.len().max(1) as f64
    );
    Ok(())
}
