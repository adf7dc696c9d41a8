//! A buffer with one data page of the records table overwritten with garbage: the devices whose
//! records are not on that page deliver everything, the damaged device delivers all but the
//! records on the page, the loss is counted (`reason="damaged"`) and raised as an alarm, and
//! `citygate buffer salvage` copies every readable record into a fresh file.

mod common;

use citygate::buffer::{Buffer, BufferHealth};
use citygate::record::Record;
use common::{open, quick_config, record, within};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Command;

const PAGE: usize = 4096;
const PER_DEVICE: i64 = 400;

/// Records of `a`, then `x`, then `b`, each in its own run of pages. Returns the records.
async fn fill(path: &Path) -> Vec<Record> {
    let (buf, thread) = open(path, &quick_config());
    let mut all = Vec::new();
    for device in ["a", "x", "b"] {
        let batch: Vec<Record> = (0..PER_DEVICE).map(|n| marked(device, n)).collect();
        all.extend(batch.clone());
        within(10, buf.append(batch)).await.unwrap();
    }
    drop(buf);
    thread.close(); // checkpoint: every row is in the main file
    all
}

fn marked(device: &str, n: i64) -> Record {
    let mut r = record(device, n);
    r.meta.insert(
        "mark".into(),
        citygate::record::Value::Str(format!("mark-{device}-{n:06}")),
    );
    r
}

/// Overwrites the page holding `x`'s middle record with garbage; returns the page number.
fn damage_middle_of_x(path: &Path) -> usize {
    let mut bytes = std::fs::read(path).unwrap();
    let needle = format!("mark-x-{:06}", PER_DEVICE / 2);
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())
        .expect("record body in the file");
    let page = at / PAGE;
    let range = page * PAGE..(page + 1) * PAGE;
    let text = String::from_utf8_lossy(&bytes[range.clone()]).into_owned();
    assert!(
        !text.contains("mark-a-") && !text.contains("mark-b-"),
        "the chosen page must hold only x's records"
    );
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for b in &mut bytes[range] {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        *b = seed as u8;
    }
    std::fs::write(path, bytes).unwrap();
    page + 1
}

/// What the syncer does: fetch per device after a cursor, deliver, repeat until nothing is left.
async fn deliver_all(buf: &Buffer) -> BTreeMap<String, Vec<i64>> {
    let mut cursors: HashMap<String, u64> = HashMap::new();
    let mut got: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    loop {
        let batch = within(10, buf.fetch_pending(cursors.clone(), 50))
            .await
            .expect("fetch keeps working around the damage");
        if batch.is_empty() {
            return got;
        }
        for r in &batch {
            cursors.insert(r.record.device.clone(), r.seq);
            let n = match r.record.values.get("n") {
                Some(citygate::record::Value::I64(n)) => *n,
                other => panic!("unexpected value {other:?}"),
            };
            got.entry(r.record.device.clone()).or_default().push(n);
        }
        let seqs = batch.iter().map(|r| r.seq).collect();
        within(10, buf.mark_delivered(seqs))
            .await
            .expect("delivery of readable records is recorded");
    }
}

/// Serves the telemetry endpoints for `buf` and GETs each of `paths`: (status codes, bodies).
async fn telemetry_get(buf: &Buffer, paths: &[&str]) -> (Vec<u16>, Vec<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let metrics = citygate::telemetry::Metrics::new();
    buf.publish_metrics(citygate::telemetry::BufferMetrics::new(&metrics))
        .await
        .unwrap();
    let state = citygate::runtime::endpoints::TelemetryState {
        metrics,
        buffer: buf.clone(),
        health: Default::default(),
        started: std::time::Instant::now(),
        gateway: "test".into(),
        adapters: Vec::new(),
    };
    let server =
        citygate::runtime::endpoints::serve(([127, 0, 0, 1], port).into(), state, shutdown.clone())
            .await
            .unwrap();
    let (mut codes, mut bodies) = (Vec::new(), Vec::new());
    for path in paths {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut out = String::new();
        within(5, s.read_to_string(&mut out)).await.unwrap();
        codes.push(out.split(' ').nth(1).unwrap().parse().unwrap());
        bodies.push(out.split_once("\r\n\r\n").unwrap().1.to_owned());
    }
    shutdown.cancel();
    let _ = server.await;
    (codes, bodies)
}

#[tokio::test]
async fn damaged_page_costs_only_its_records_and_salvage_recovers_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("buffer.sqlite");
    fill(&path).await;
    let page = damage_middle_of_x(&path);
    eprintln!("overwrote page {page}");

    // Salvage first (from the damaged file as left on disk).
    let salvaged = dir.path().join("salvaged.sqlite");
    let report = citygate::buffer::salvage::salvage(&path, &salvaged, &quick_config()).unwrap();
    eprintln!("{report:?}");
    let total = 3 * PER_DEVICE as u64;
    assert!(report.records_unreadable > 0, "{report:?}");
    assert_eq!(
        report.records_copied + report.records_unreadable,
        total,
        "every record is either copied or counted: {report:?}"
    );
    assert_eq!(
        report.dropped.get("damaged"),
        Some(&report.records_unreadable)
    );
    let (sbuf, sthread) = open(&salvaged, &quick_config());
    let ss = within(5, sbuf.stats()).await.unwrap();
    assert_eq!(ss.pending_records, report.records_copied);
    assert_eq!(ss.dropped.get("damaged"), Some(&report.records_unreadable));
    assert_eq!(ss.health, BufferHealth::Writable);
    let from_salvage = deliver_all(&sbuf).await;
    assert_eq!(from_salvage["a"].len(), PER_DEVICE as usize);
    assert_eq!(from_salvage["b"].len(), PER_DEVICE as usize);
    assert_eq!(
        from_salvage["x"].len() as u64,
        PER_DEVICE as u64 - report.records_unreadable
    );
    // New records continue after the highest seq ever assigned.
    let r = within(5, sbuf.append(vec![record("a", 9999)]))
        .await
        .unwrap();
    assert_eq!(r.seqs, vec![total + 1]);
    drop(sbuf);
    sthread.close();

    // The daemon's buffer on the damaged file: every other device keeps flowing.
    let (buf, thread) = open(&path, &quick_config());
    let got = deliver_all(&buf).await;
    let want: Vec<i64> = (0..PER_DEVICE).collect();
    assert_eq!(got["a"], want, "device a is not affected");
    assert_eq!(got["b"], want, "device b is not affected");
    let x = &got["x"];
    let lost = PER_DEVICE as usize - x.len();
    assert!(lost > 0 && lost < 40, "only one page of x lost: {lost}");
    assert!(x.windows(2).all(|w| w[0] < w[1]), "x stays in order");
    assert_eq!(lost as u64, report.records_unreadable);
    let s = within(5, buf.stats()).await.unwrap();
    assert_eq!(s.health, BufferHealth::Damaged, "damage raises the alarm");
    assert_eq!(buf.health(), BufferHealth::Damaged);
    assert_eq!(s.damaged_records, lost as u64);
    assert_eq!(s.dropped.get("damaged"), Some(&(lost as u64)));
    // The alarm on the health endpoints and in the metrics.
    let (code, body) = telemetry_get(&buf, &["/readyz", "/metrics"]).await;
    assert_eq!(code[0], 503, "{}", body[0]);
    assert!(body[0].contains("\"buffer\":\"damaged\""), "{}", body[0]);
    assert!(
        body[1].contains("citygate_buffer_state{state=\"damaged\"} 1"),
        "{}",
        body[1]
    );
    assert!(
        body[1].contains(&format!("citygate_buffer_damaged_records {lost}")),
        "{}",
        body[1]
    );
    // New records are still committed and delivered.
    within(5, buf.append(vec![record("a", 5000), record("x", 5000)]))
        .await
        .unwrap();
    let more = deliver_all(&buf).await;
    assert_eq!(more["a"], vec![5000]);
    assert_eq!(more["x"], vec![5000]);
    drop(buf);
    thread.close();

    // After a restart the damage is still reported, and not counted twice. Delivered records
    // whose rows could not be deleted (their page's neighbour is the damaged one) are sent once
    // more: the CSE answers "already there" for the same contentInstance name.
    let (buf, thread) = open(&path, &quick_config());
    assert_eq!(buf.health(), BufferHealth::Damaged);
    let resent = deliver_all(&buf).await;
    let resent_n: usize = resent.values().map(Vec::len).sum();
    eprintln!("resent after restart: {resent_n}");
    assert!(resent_n < 100, "{resent:?}");
    for (device, ns) in &resent {
        for n in ns {
            assert!(
                got[device].contains(n),
                "{device} {n} was never delivered before"
            );
        }
    }
    let s = within(5, buf.stats()).await.unwrap();
    assert_eq!(s.dropped.get("damaged"), Some(&(lost as u64)));
    drop(buf);
    thread.close();
}

#[test]
fn salvage_command_reports_counts() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let path = state.join("buffer.sqlite");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(fill(&path));
    damage_middle_of_x(&path);
    let config = dir.path().join("citygate.toml");
    std::fs::write(&config, format!("[gateway]\nstate_dir = {state:?}\n")).unwrap();
    let out = dir.path().join("new.sqlite");
    let run = Command::new(env!("CARGO_BIN_EXE_citygate"))
        .args(["buffer", "salvage", "--json", "-c"])
        .arg(&config)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let copied = report["records_copied"].as_u64().unwrap();
    let lost = report["records_unreadable"].as_u64().unwrap();
    assert!(lost > 0);
    assert_eq!(copied + lost, 3 * PER_DEVICE as u64);
    // Refuses to overwrite.
    let again = Command::new(env!("CARGO_BIN_EXE_citygate"))
        .args(["buffer", "salvage", "-c"])
        .arg(&config)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}

#[test]
fn zero_length_buffer_file_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("buffer.sqlite");
    std::fs::write(&path, b"").unwrap();
    let err = match Buffer::open(&path, &quick_config()) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("an empty buffer file must not be recreated silently"),
    };
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("empty"), "{err}");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0, "left untouched");
}
