//! Crash safety: a child process appends records with several concurrent writers and prints
//! every acknowledgement; the parent `kill -9`s it at random moments, 25 times, then proves that
//! every acknowledged record is in the database exactly once, with its acknowledged seq, and
//! that seq order follows append order.

mod common;

use citygate::buffer::{Buffer, BufferConfig};
use citygate::record::{Record, Value};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "CITYGATE_CRASH_CHILD_DIR";
const WRITERS: u64 = 4;

/// Not a test on its own: does nothing unless started by the crash test as its child.
#[test]
fn crash_child_appender() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let round: u64 = std::env::var("CITYGATE_CRASH_ROUND")
        .unwrap()
        .parse()
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let cfg = BufferConfig::default();
        let (buf, _thread) =
            Buffer::open(&std::path::Path::new(&dir).join("b.sqlite"), &cfg).unwrap();
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            let buf = buf.clone();
            tasks.push(tokio::spawn(async move {
                let mut id = round * 10_000_000 + w * 1_000_000;
                loop {
                    let n = 1 + (id % 37);
                    let batch: Vec<Record> = (0..n)
                        .map(|i| {
                            let mut r = Record::now("crash", format!("d{w}"));
                            r.values.insert("id".into(), Value::I64((id + i) as i64));
                            r
                        })
                        .collect();
                    let receipt = buf.append(batch).await.unwrap();
                    let pairs: Vec<String> = receipt
                        .seqs
                        .iter()
                        .enumerate()
                        .map(|(i, s)| format!("{}:{}", id + i as u64, s))
                        .collect();
                    println!("ack {}", pairs.join(" "));
                    id += n;
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
}

#[test]
fn kill_9_never_loses_or_duplicates_an_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut acked: BTreeMap<u64, u64> = BTreeMap::new(); // id -> seq
    let mut rng_state: u64 = 0x9e37_79b9_7f4a_7c15;
    // At least 25 kills; on a slow machine (qemu, a loaded CI) more rounds, until enough
    // records were acknowledged to prove something, within a bound.
    for round in 0..400u64 {
        if round >= 25 && acked.len() > 1000 {
            break;
        }
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash_child_appender",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .env("CITYGATE_CRASH_ROUND", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("ack ") {
                    for pair in rest.split(' ') {
                        let (id, seq) = pair.split_once(':').unwrap();
                        got.push((id.parse::<u64>().unwrap(), seq.parse::<u64>().unwrap()));
                    }
                }
            }
            got
        });
        // xorshift: a different kill moment each round, 80..600 ms after start.
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        let wait = Duration::from_millis(80 + rng_state % 520);
        let start = Instant::now();
        while start.elapsed() < wait {
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let got = reader.join().unwrap();
        for (id, seq) in got {
            assert!(
                acked.insert(id, seq).is_none(),
                "id {id} acknowledged twice"
            );
        }
    }
    assert!(
        acked.len() > 1000,
        "too few acknowledged records to prove anything: {}",
        acked.len()
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    let stored: Vec<(u64, u64)> = rt.block_on(async {
        let (buf, thread) =
            Buffer::open(&dir.path().join("b.sqlite"), &BufferConfig::default()).unwrap();
        let all = buf
            .fetch_pending(HashMap::new(), usize::MAX >> 1)
            .await
            .unwrap();
        drop(buf);
        thread.close();
        all.into_iter()
            .map(|r| match r.record.values["id"] {
                Value::I64(id) => (id as u64, r.seq),
                ref v => panic!("bad id value {v:?}"),
            })
            .collect()
    });
    let mut by_id: HashMap<u64, u64> = HashMap::new();
    for (id, seq) in &stored {
        assert!(
            by_id.insert(*id, *seq).is_none(),
            "record id {id} stored twice"
        );
    }
    for (id, seq) in &acked {
        assert_eq!(
            by_id.get(id),
            Some(seq),
            "acknowledged record id {id} (seq {seq}) lost or moved"
        );
    }
    // Within each writer, ids were appended in increasing order: seqs must follow.
    let mut last_seq_per_writer: HashMap<u64, (u64, u64)> = HashMap::new();
    let mut sorted = stored.clone();
    sorted.sort();
    for (id, seq) in sorted {
        let writer = id / 1_000_000;
        if let Some((prev_id, prev_seq)) = last_seq_per_writer.insert(writer, (id, seq)) {
            assert!(
                seq > prev_seq,
                "seq order broken: id {prev_id}->{prev_seq}, id {id}->{seq}"
            );
        }
    }
    eprintln!(
        "crash test: 25 kills, {} acknowledged, {} stored, all present once",
        acked.len(),
        stored.len()
    );
}
