//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod bluez;
pub mod commands;
pub mod daemon;
pub mod lorawan;
pub mod modbus;
pub mod modbus_pty;
pub mod mosquitto;
pub mod northbound;
pub mod pymodbus;

use citygate::buffer::{Buffer, BufferConfig, BufferThread, RecordSender};
use citygate::record::{Record, Value};
use std::future::Future;
use std::path::Path;
use std::time::Duration;

/// Every await in a test gets a deadline: a hang is a failure, not a stuck CI.
pub async fn within<T>(secs: u64, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .expect("timed out")
}

pub fn record(device: &str, n: i64) -> Record {
    let mut r = Record::now("test", device);
    r.ts_ms = 1_795_000_000_000 + n;
    r.values.insert("n".into(), Value::I64(n));
    r.values
        .insert("temperature".into(), Value::F64(20.0 + n as f64 / 100.0));
    r
}

pub fn open(path: &Path, cfg: &BufferConfig) -> (Buffer, BufferThread) {
    Buffer::open(path, cfg).expect("open buffer")
}

/// A buffer config with no delay, for tests that append one at a time.
pub fn quick_config() -> BufferConfig {
    BufferConfig {
        commit_max_delay: Duration::from_millis(0),
        ..BufferConfig::default()
    }
}

/// A real buffer in a temporary directory, standing in for the pipeline in adapter tests:
/// adapters send to it, tests read back what was committed.
pub struct Sink {
    pub buffer: Buffer,
    thread: Option<BufferThread>,
    _dir: tempfile::TempDir,
}

impl Sink {
    pub fn new() -> Sink {
        let dir = tempfile::tempdir().expect("temp dir");
        let (buffer, thread) = open(&dir.path().join("sink.sqlite"), &quick_config());
        Sink {
            buffer,
            thread: Some(thread),
            _dir: dir,
        }
    }

    pub fn sender(&self) -> RecordSender {
        self.buffer.sender()
    }

    /// Every committed record, in seq order.
    pub async fn records(&self) -> Vec<Record> {
        let mut all = self
            .buffer
            .fetch_pending(std::collections::HashMap::new(), 1 << 30)
            .await
            .expect("fetch");
        all.sort_by_key(|r| r.seq);
        all.into_iter().map(|r| r.record).collect()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            t.close();
        }
    }
}
