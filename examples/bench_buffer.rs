//! Buffer benchmark: durable appends/s through citygate's group-commit writer, beside the raw
//! rusqlite batched-insert ceiling measured in the same run on the same disk.
//!
//! `cargo run --release --example bench_buffer [records]`

use citygate::buffer::{Buffer, BufferConfig};
use citygate::record::{Record, Value};
use std::time::{Duration, Instant};

fn record(device: usize, n: usize) -> Record {
    let mut r = Record::now("bench", format!("meter-{device:03}"));
    r.values.insert(
        "voltage_l1".into(),
        Value::F64(230.0 + (n % 10) as f64 / 10.0),
    );
    r.values
        .insert("power_w".into(), Value::F64(1500.0 + n as f64));
    r.values.insert(
        "energy_kwh".into(),
        Value::F64(10_000.0 + n as f64 / 1000.0),
    );
    r.values.insert("door".into(), Value::Bool(n % 2 == 0));
    r
}

/// The ceiling: the same schema and pragmas, one transaction per 1000 rows, prepared insert,
/// JSON encoding included (citygate must do it too).
fn raw_ceiling(dir: &std::path::Path, total: usize) -> f64 {
    std::fs::create_dir_all(dir).unwrap();
    let conn = rusqlite::Connection::open(dir.join("raw.sqlite")).unwrap();
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
        .unwrap();
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
        .unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.execute_batch(
        "CREATE TABLE records (seq INTEGER PRIMARY KEY AUTOINCREMENT, device TEXT NOT NULL, ts_ms INTEGER NOT NULL, enqueued_ms INTEGER NOT NULL, body TEXT NOT NULL);
         CREATE INDEX records_by_device ON records (device, seq);",
    )
    .unwrap();
    let records: Vec<Record> = (0..total).map(|n| record(n % 20, n)).collect();
    let start = Instant::now();
    let mut conn = conn;
    for chunk in records.chunks(1000) {
        let tx = conn.transaction().unwrap();
        {
            let mut stmt = tx
                .prepare_cached("INSERT INTO records (device, ts_ms, enqueued_ms, body) VALUES (?1, ?2, ?3, ?4)")
                .unwrap();
            for r in chunk {
                let body = serde_json::to_string(r).unwrap();
                stmt.execute(rusqlite::params![r.device, r.ts_ms, r.ts_ms, body])
                    .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64()
}

/// `producers` tasks, each appending `batch`-record appends with up to `window` in flight.
async fn citygate_rate(
    dir: &std::path::Path,
    name: &str,
    total: usize,
    producers: usize,
    batch: usize,
    window: usize,
) -> f64 {
    let cfg = BufferConfig {
        max_bytes: 1 << 30,
        commit_max_delay: Duration::from_millis(5),
        ..BufferConfig::default()
    };
    let (buf, thread) = Buffer::open(&dir.join(format!("{name}.sqlite")), &cfg).unwrap();
    let per_producer = total / producers;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..producers {
        let buf = buf.clone();
        tasks.push(tokio::spawn(async move {
            let mut in_flight = std::collections::VecDeque::new();
            let mut n = 0;
            while n < per_producer {
                let records: Vec<Record> = (n..(n + batch).min(per_producer))
                    .map(|i| record(p, i))
                    .collect();
                n += records.len();
                in_flight.push_back(buf.submit(records).await.unwrap());
                if in_flight.len() >= window {
                    in_flight.pop_front().unwrap().await.unwrap().unwrap();
                }
            }
            for rx in in_flight {
                rx.await.unwrap().unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let rate = (per_producer * producers) as f64 / start.elapsed().as_secs_f64();
    drop(buf);
    thread.close();
    rate
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let total: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let dir = tempfile::tempdir_in(".").unwrap_or_else(|_| tempfile::tempdir().unwrap());
    println!(
        "buffer benchmark: {total} records, synchronous=FULL, WAL, on {}",
        dir.path().display()
    );
    // Each figure is the median of three runs (the machine may be shared).
    let mut runs: Vec<f64> = (0..3)
        .map(|i| raw_ceiling(&dir.path().join(format!("raw{i}")), total))
        .collect();
    let ceiling = median(&mut runs);
    println!("raw rusqlite batched insert (1000/tx)          {ceiling:>10.0} records/s  (ceiling)");
    for (name, producers, batch, window) in [
        ("20 producers x 1-record appends, 64 in flight", 20, 1, 64),
        ("20 producers x 50-record appends, 4 in flight", 20, 50, 4),
        ("1 producer x 500-record appends, 4 in flight", 1, 500, 4),
    ] {
        let rate = citygate_rate(
            dir.path(),
            &format!("cg{producers}-{batch}"),
            total,
            producers,
            batch,
            window,
        )
        .await;
        println!(
            "citygate: {name:<46} {rate:>10.0} records/s  ({:.2} of ceiling)",
            rate / ceiling
        );
    }
}
