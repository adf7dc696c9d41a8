//! What the syncer benchmarks share: the records they deliver, a timed run of the syncer until
//! an in-memory store is empty, a TCP proxy that counts the bytes it carries, and the
//! command-line count. Included with `#[path]` by each benchmark, next to
//! `tests/common/northbound/mem_store.rs` (as `mem_store`).
use crate::mem_store::MemStore;
use citygate::northbound::{Binding, NorthboundConfig, Syncer};
use citygate::record::Record;
use citygate::telemetry::SyncMetrics;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Devices the records are spread over (and the syncer's `max_in_flight` in most runs).
pub const DEVICES: usize = 4;

/// The first command-line argument as a count, or `default`.
pub fn count_arg(default: u64) -> u64 {
    std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// The `i`-th reading of a power meter `device`.
pub fn record(device: &str, i: u64) -> Record {
    let mut r = Record::now("bench", device)
        .with("active_power_w", 1234.5 + i as f64)
        .with("energy_wh", 1_000_000 + i as i64)
        .with("relay", i % 2 == 0);
    r.ts_ms = 1_795_428_000_000 + i as i64 * 1000;
    r
}

/// A store (buffer epoch `epoch`) holding `n` records over [`DEVICES`] devices, round robin.
pub fn filled_store(epoch: &str, n: u64) -> Arc<MemStore> {
    let store = MemStore::new(epoch);
    for i in 0..n / DEVICES as u64 {
        for d in 0..DEVICES {
            store.append(record(&format!("dev-{d}"), i));
        }
    }
    store
}

/// One run of the syncer: how many records, how long, and every request's latency.
pub struct Delivered {
    pub total: usize,
    pub elapsed_s: f64,
    /// Request latencies in ms, sorted.
    pub latencies_ms: Vec<f64>,
}

impl Delivered {
    pub fn rate(&self) -> f64 {
        self.total as f64 / self.elapsed_s
    }

    /// The `p` quantile (0..=1) of the request latencies, in ms.
    pub fn percentile_ms(&self, p: f64) -> f64 {
        let ms = &self.latencies_ms;
        ms.get(((ms.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(0.0)
    }
}

/// Runs a syncer with `binding` until `store` is empty (at most 10 minutes), stops it and
/// checks that it counted every record as delivered. `tag` names the run in errors.
pub async fn deliver_all(
    cfg: NorthboundConfig,
    binding: Arc<dyn Binding>,
    store: Arc<MemStore>,
    metrics: SyncMetrics,
    tag: &str,
) -> anyhow::Result<Delivered> {
    let total = store.pending_count();
    let syncer = Syncer::new(cfg, binding, store.clone(), metrics);
    let state = syncer.state();
    let cancel = CancellationToken::new();
    let start = Instant::now();
    let handle = tokio::spawn(syncer.run(cancel.clone()));
    let deadline = start + Duration::from_secs(600);
    while store.pending_count() > 0 {
        anyhow::ensure!(Instant::now() < deadline, "{tag}: syncer did not finish");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed_s = start.elapsed().as_secs_f64();
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(15), handle).await??;
    let delivered = state.snapshot().delivered;
    anyhow::ensure!(
        delivered as usize == total,
        "{tag}: delivered {delivered} of {total}"
    );
    let mut latencies_ms: Vec<f64> = state
        .take_latencies()
        .iter()
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    latencies_ms.sort_by(f64::total_cmp);
    Ok(Delivered {
        total,
        elapsed_s,
        latencies_ms,
    })
}

/// Bytes through a [`counting_proxy`], client → server (`up`) and back (`down`).
#[derive(Default)]
pub struct Counts {
    pub up: AtomicU64,
    pub down: AtomicU64,
}

impl Counts {
    pub fn total(&self) -> u64 {
        self.up.load(Ordering::Relaxed) + self.down.load(Ordering::Relaxed)
    }
}

/// A TCP proxy on a free port of 127.0.0.1 towards `upstream`, counting the payload bytes it
/// carries; returns its port.
pub async fn counting_proxy(upstream: u16, counts: Arc<Counts>) -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let counts = counts.clone();
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                    return;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                let up = pump(cr, sw, counts.clone(), true);
                let down = pump(sr, cw, counts, false);
                let _ = tokio::join!(up, down);
            });
        }
    });
    Ok(port)
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    counts: Arc<Counts>,
    up: bool,
) {
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 || to.write_all(&buf[..n]).await.is_err() {
            break;
        }
        let c = if up { &counts.up } else { &counts.down };
        c.fetch_add(n as u64, Ordering::Relaxed);
    }
    let _ = to.shutdown().await;
}
