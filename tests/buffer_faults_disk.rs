//! The buffer on real failing file systems (root: loop devices, tmpfs).
//!
//! - An ext4 SD card that the kernel remounts read-only after an error, mid-ingest, under the
//!   real daemon: `/readyz` turns red within seconds, the systemd watchdog stops, every record
//!   offered is either acknowledged or counted as dropped, adapters do not restart in a loop,
//!   and after a repair everything acknowledged before the fault is in the file.
//! - A full tmpfs: the drop counters equal what is really missing, and the buffer recovers when
//!   space returns.

mod common;
#[path = "buffer_faults_disk/support.rs"]
mod support;

use citygate::buffer::{Buffer, BufferConfig, BufferHealth, WhenFull};
use common::daemon::{count_lines, free_port, notify_messages};
use common::{record, within};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{get, metric, require_root, sh, Daemon, Mount};

fn rows_in(db: &Path) -> u64 {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row("SELECT count(*) FROM records", [], |r| r.get::<_, i64>(0))
        .unwrap() as u64
}

#[test]
#[ignore = "needs root: mounts a loop-device ext4 and forces it read-only"]
fn sd_card_turning_read_only_mid_ingest() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let sd = Mount::ext4(dir.path());
    let state = sd.point.join("state");
    let db = state.join("buffer.sqlite");
    let capture = dir.path().join("capture.jsonl");
    let mut lines = String::new();
    for i in 0..500 {
        lines.push_str(&format!(
            "{{\"device\": \"meter-{}\", \"values\": {{\"kwh\": {i}}}}}\n",
            i % 5
        ));
    }
    std::fs::write(&capture, lines).unwrap();
    let port = free_port();
    let config = dir.path().join("citygate.toml");
    let write_config = |southbound: bool| {
        let mut c = format!(
            "[gateway]\nstate_dir = {state:?}\n[telemetry]\nlisten = \"127.0.0.1:{port}\"\n"
        );
        if southbound {
            c.push_str(&format!(
                "[southbound.r]\ntype = \"replay\"\nfile = {capture:?}\nrate = 400.0\nrepeat = true\nresume = false\n"
            ));
        }
        std::fs::write(&config, c).unwrap();
    };
    write_config(true);
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let daemon = Daemon(
        Command::new(env!("CARGO_BIN_EXE_citygate"))
            .args(["run", "-c"])
            .arg(&config)
            .env("NOTIFY_SOCKET", &sock_path)
            .env("WATCHDOG_USEC", "400000")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 4096];
    loop {
        let n = sock.recv(&mut buf).expect("no READY=1 within 10 s");
        if String::from_utf8_lossy(&buf[..n])
            .lines()
            .any(|l| l == "READY=1")
        {
            break;
        }
    }
    let healthy = notify_messages(&sock, Duration::from_millis(1500));
    assert!(count_lines(&healthy, "WATCHDOG=1") >= 3, "{healthy:?}");
    let (code, body) = get(port, "/readyz").unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"buffer\":\"writable\""), "{body}");

    // The SD card fails mid-ingest.
    sd.fail_ext4();
    let failed_at = Instant::now();
    let red = loop {
        let (code, body) = get(port, "/readyz").unwrap();
        if code == 503 {
            break body;
        }
        assert!(
            failed_at.elapsed() < Duration::from_secs(5),
            "/readyz still green 5 s after the disk went read-only: {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!("/readyz red after {:?}: {red}", failed_at.elapsed());
    assert!(
        red.contains("\"buffer\":\"read_only\"") || red.contains("\"buffer\":\"io_error\""),
        "{red}"
    );
    let _grace = notify_messages(&sock, Duration::from_millis(500));
    let failing = notify_messages(&sock, Duration::from_secs(3));
    assert_eq!(
        count_lines(&failing, "WATCHDOG=1"),
        0,
        "watchdog pinged while the buffer cannot commit: {failing:?}"
    );
    assert!(
        failing.iter().any(|m| m.contains("STATUS=buffer ")),
        "STATUS= names the buffer state: {failing:?}"
    );

    // Every offered record is acknowledged or counted; no restart storm.
    let (_, m1) = get(port, "/metrics").unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let (_, m) = get(port, "/metrics").unwrap();
    let offered = metric(&m, "citygate_buffer_records_offered_total", "");
    let acked = metric(&m, "citygate_adapter_records_total", "");
    let dropped = metric(
        &m,
        "citygate_buffer_records_dropped_total",
        "reason=\"read_only\"",
    ) + metric(
        &m,
        "citygate_buffer_records_dropped_total",
        "reason=\"io_error\"",
    );
    let all_dropped = metric(&m, "citygate_buffer_records_dropped_total", "");
    let restarts = metric(&m, "citygate_adapter_restarts_total", "");
    eprintln!("offered {offered}, acknowledged {acked}, dropped {dropped}, restarts {restarts}");
    assert_eq!(
        metric(&m1, "citygate_buffer_records_offered_total", ""),
        offered,
        "ingest is parked while the buffer cannot commit"
    );
    assert!(dropped > 0, "the fault cost records: they are counted");
    assert_eq!(all_dropped, dropped);
    assert_eq!(
        acked + dropped,
        offered,
        "acknowledged + dropped == offered"
    );
    assert!(restarts <= 2, "adapters restart in a loop: {restarts}");
    assert_eq!(
        metric(&m, "citygate_buffer_state", "state=\"writable\""),
        0,
        "{m}"
    );

    // Stop. Started again on the still read-only card, the daemon refuses, naming the file.
    daemon.stop();
    let refused = Command::new(env!("CARGO_BIN_EXE_citygate"))
        .args(["run", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success(),
        "ran on a read-only buffer: {stderr}"
    );
    assert!(
        stderr.contains("read-only") && stderr.contains(&db.display().to_string()),
        "{stderr}"
    );

    // Repair the card (fsck, as a reboot would), restart: everything acknowledged is there.
    sd.umount();
    let _ = Command::new("e2fsck")
        .args(["-fy"])
        .arg(dir.path().join("sd.img"))
        .output();
    sh(
        "mount",
        &[
            "-o",
            "loop,errors=remount-ro",
            dir.path().join("sd.img").to_str().unwrap(),
            sd.point.to_str().unwrap(),
        ],
    );
    assert_eq!(rows_in(&db), acked, "every acknowledged record survived");
    write_config(false);
    let daemon = Daemon(
        Command::new(env!("CARGO_BIN_EXE_citygate"))
            .args(["run", "-c"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let end = Instant::now() + Duration::from_secs(10);
    let body = loop {
        if let Some((200, body)) = get(port, "/readyz") {
            break body;
        }
        assert!(Instant::now() < end, "not ready after the repair");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(body.contains("\"buffer\":\"writable\""), "{body}");
    let (_, status) = get(port, "/status").unwrap();
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["buffer"]["pending_records"].as_u64(), Some(acked));
    assert!(daemon.stop().success());
}

/// 20 records of about 500 bytes each.
fn padded_batch(n: &mut i64) -> Vec<citygate::record::Record> {
    (0..20)
        .map(|_| {
            let mut r = record("d", *n);
            r.meta
                .insert("pad".into(), citygate::record::Value::Str("x".repeat(400)));
            *n += 1;
            r
        })
        .collect()
}

#[test]
#[ignore = "needs root: mounts a 4 MiB tmpfs and fills it"]
fn full_disk_counts_exactly_and_recovers_drop_newest() {
    full_disk(WhenFull::DropNewest);
}

#[test]
#[ignore = "needs root: mounts a 4 MiB tmpfs and fills it"]
fn full_disk_counts_exactly_and_recovers_drop_oldest() {
    full_disk(WhenFull::DropOldest);
}

/// Appends to a buffer whose `max_bytes` is far above what its 4 MiB file system holds, until
/// records are lost and for 2 s more, then frees space. Every time: the records in the file are
/// exactly those offered minus those counted as dropped.
fn full_disk(when_full: WhenFull) {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let fs = Mount::tmpfs(dir.path(), "4m");
    let path = fs.point.join("buffer.sqlite");
    let filler = fs.point.join("filler");
    std::fs::write(&filler, vec![0u8; 1 << 20]).unwrap();
    let cfg = BufferConfig {
        max_bytes: 64 << 20,
        when_full,
        commit_max_delay: Duration::from_millis(0),
        ..BufferConfig::default()
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (buf, thread) = Buffer::open(&path, &cfg).unwrap();
        let mut offered = 0u64;
        let mut acked = 0u64;
        let mut n = 0i64;
        let start = Instant::now();
        let mut first_loss = None;
        let mut batches = 0u32;
        while start.elapsed() < Duration::from_secs(60) {
            let batch = padded_batch(&mut n);
            let len = batch.len() as u64;
            let result = buf.append(batch).await;
            offered += len;
            batches += 1;
            let lost = match result {
                Ok(r) => {
                    acked += r.seqs.len() as u64;
                    // drop_oldest makes room by evicting: look at the counters.
                    batches % 25 == 0
                        && within(5, buf.stats()).await.unwrap().dropped_total() > 0
                }
                Err(e) => {
                    if first_loss.is_none() {
                        eprintln!("disk full after {acked} records: {e}");
                    }
                    true
                }
            };
            if lost {
                first_loss.get_or_insert_with(Instant::now);
            }
            if first_loss.is_some_and(|t| t.elapsed() > Duration::from_secs(2)) {
                break;
            }
        }
        assert!(first_loss.is_some(), "the 4 MiB file system never filled");
        let s = within(5, buf.stats()).await.unwrap();
        eprintln!(
            "{when_full:?}: offered {offered}, acknowledged {acked}, pending {}, dropped {:?}, state {:?}",
            s.pending_records, s.dropped, s.health
        );
        assert_eq!(s.offered_records, offered);
        let dropped = s.dropped_total();
        assert!(
            s.dropped.get("disk_full").copied().unwrap_or(0) > 0,
            "{:?}",
            s.dropped
        );
        assert_eq!(
            s.pending_records,
            offered - dropped,
            "counters equal the loss: {:?}",
            s.dropped
        );
        if when_full == WhenFull::DropNewest {
            assert_eq!(buf.health(), BufferHealth::DiskFull);
            assert_eq!(s.pending_records, acked);
        }

        // Space returns (another file on the same file system is removed).
        std::fs::remove_file(&filler).unwrap();
        let end = Instant::now() + Duration::from_secs(15);
        let mut after = 0u64;
        while Instant::now() < end && after < 200 {
            let batch = padded_batch(&mut n);
            let len = batch.len() as u64;
            let result = buf.append(batch).await;
            offered += len;
            if let Ok(r) = result {
                after += r.seqs.len() as u64;
            } else {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        assert!(after >= 200, "the buffer did not recover");
        assert_eq!(buf.health(), BufferHealth::Writable);
        let s = within(5, buf.stats()).await.unwrap();
        assert_eq!(s.offered_records, offered);
        let expected = offered - s.dropped_total();
        assert_eq!(s.pending_records, expected);
        let in_memory = s.dropped.clone();
        drop(buf);
        thread.close();
        // The counts from the full period were saved once writes worked again.
        let c = rusqlite::Connection::open(&path).unwrap();
        let saved: u64 = c
            .query_row("SELECT sum(count) FROM drops", [], |r| r.get::<_, i64>(0))
            .unwrap() as u64;
        assert_eq!(saved, in_memory.values().sum::<u64>());
        assert_eq!(rows_in(&path), expected, "the file holds offered - dropped");
    });
}

#[test]
#[ignore = "needs root: mounts a tmpfs smaller than max_bytes"]
fn check_warns_when_max_bytes_exceeds_free_space() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let fs = Mount::tmpfs(dir.path(), "4m");
    let config = dir.path().join("citygate.toml");
    std::fs::write(
        &config,
        format!(
            "[gateway]\nstate_dir = {:?}\n[buffer]\nmax_bytes = \"64MiB\"\n",
            fs.point.join("state")
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_citygate"))
        .args(["check", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "a warning only: {stderr}");
    assert!(
        stderr.contains("exceeds") && stderr.contains("max_bytes"),
        "{stderr}"
    );
    std::fs::write(
        &config,
        format!(
            "[gateway]\nstate_dir = {:?}\n[buffer]\nmax_bytes = \"1MiB\"\n",
            fs.point.join("state")
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_citygate"))
        .args(["check", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("exceeds"));
}

#[test]
#[ignore = "needs root: mounts a loop-device ext4 and forces it read-only"]
fn idle_daemon_notices_a_read_only_card_by_its_write_probe() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let sd = Mount::ext4(dir.path());
    let port = free_port();
    let config = dir.path().join("citygate.toml");
    std::fs::write(
        &config,
        format!(
            "[gateway]\nstate_dir = {:?}\n[telemetry]\nlisten = \"127.0.0.1:{port}\"\n",
            sd.point.join("state")
        ),
    )
    .unwrap();
    let daemon = Daemon(
        Command::new(env!("CARGO_BIN_EXE_citygate"))
            .args(["run", "-c"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let end = Instant::now() + Duration::from_secs(10);
    while get(port, "/readyz").map(|r| r.0) != Some(200) {
        assert!(Instant::now() < end, "never ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    // No records at all: only the write probe (every 10 s when idle) can notice.
    sd.fail_ext4();
    let failed_at = Instant::now();
    loop {
        let (code, body) = get(port, "/readyz").unwrap();
        if code == 503 {
            assert!(body.contains("\"buffer\":\"read_only\""), "{body}");
            break;
        }
        assert!(
            failed_at.elapsed() < Duration::from_secs(15),
            "an idle daemon stays green on a read-only card: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("idle: /readyz red after {:?}", failed_at.elapsed());
    drop(daemon);
}
