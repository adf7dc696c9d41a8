//! systemd `Type=notify` contract, with the real binary under a NOTIFY_SOCKET harness: READY=1
//! once running, WATCHDOG=1 periodically, **no** WATCHDOG=1 while the pipeline is wedged (the
//! buffer database locked by another process), pings again once it recovers, STOPPING=1 on
//! SIGTERM.

mod common;

use common::daemon::*;

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn ready_watchdog_and_no_watchdog_while_wedged() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let capture = dir.path().join("capture.jsonl");
    std::fs::write(&capture, "{\"device\": \"d1\", \"values\": {\"t\": 1.5}}\n").unwrap();
    let config = dir.path().join("citygate.toml");
    std::fs::write(
        &config,
        format!(
            "[gateway]\nstate_dir = {:?}\n[telemetry]\nlisten = \"127.0.0.1:0\"\n[southbound.r]\ntype = \"replay\"\nfile = {:?}\nrate = 200.0\nrepeat = true\nresume = false\n",
            dir.path().join("state"),
            capture
        ),
    )
    .unwrap();
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_citygate"))
        .args(["run", "-c"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "400000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // READY=1 first.
    let mut ready_after = None;
    let mut buf = [0u8; 4096];
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    while ready_after.is_none() {
        let n = sock.recv(&mut buf).expect("no READY=1 within 10 s");
        if String::from_utf8_lossy(&buf[..n])
            .lines()
            .any(|l| l == "READY=1")
        {
            ready_after = Some(started.elapsed());
        }
    }
    eprintln!(
        "READY=1 after {:?} (debug build, includes process start)",
        ready_after.unwrap()
    );

    // Healthy: a ping every ~200 ms.
    let healthy = notify_messages(&sock, Duration::from_millis(1500));
    assert!(
        count_lines(&healthy, "WATCHDOG=1") >= 4,
        "too few pings while healthy: {healthy:?}"
    );
    assert!(
        healthy
            .iter()
            .any(|m| m.contains("STATUS=") && m.contains("pending")),
        "{healthy:?}"
    );

    // Wedge: hold the database's write lock from another connection.
    let db = rusqlite::Connection::open(dir.path().join("state/buffer.sqlite")).unwrap();
    db.execute_batch("BEGIN IMMEDIATE; INSERT INTO state (key, value) VALUES ('wedge', 'x');")
        .unwrap();
    let _grace = notify_messages(&sock, Duration::from_millis(600));
    let wedged = notify_messages(&sock, Duration::from_millis(2000));
    assert_eq!(
        count_lines(&wedged, "WATCHDOG=1"),
        0,
        "pinged while wedged: {wedged:?}"
    );

    // Recover.
    db.execute_batch("ROLLBACK").unwrap();
    let recovered = notify_messages(&sock, Duration::from_secs(8));
    assert!(
        count_lines(&recovered, "WATCHDOG=1") >= 1,
        "no ping after recovery: {recovered:?}"
    );

    // SIGTERM: STOPPING=1 and a clean exit.
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let stopping = notify_messages(&sock, Duration::from_millis(1500));
    assert!(count_lines(&stopping, "STOPPING=1") >= 1, "{stopping:?}");
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");
}
