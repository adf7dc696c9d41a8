//! 1 000 000 PULL_DATA datagrams from random gateway EUIs against the real daemon: the gateway
//! table stays at `max_gateways`, every EUI beyond it is counted as evicted, and the daemon's
//! resident memory stays bounded (it grew by ~84 bytes per EUI before the table was bounded).
//!
//! The sender keeps a window of unanswered PULL_DATA (the daemon answers each with PULL_ACK),
//! so the daemon's socket buffer never overflows and every datagram sent is handled.

mod common;

use common::daemon::*;

use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SEND: u64 = 1_000_000;
const MAX_GATEWAYS: u64 = 64;
/// Unanswered datagrams at most: small enough for the default socket buffers.
const WINDOW: u64 = 128;

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

fn pull_data(token: u16, eui: u64) -> [u8; 12] {
    let mut d = [0u8; 12];
    d[0] = 2;
    d[1..3].copy_from_slice(&token.to_be_bytes());
    d[3] = 0x02;
    d[4..].copy_from_slice(&eui.to_be_bytes());
    d
}

#[test]
#[ignore = "sends 1 000 000 datagrams to the daemon (~20 s); run by tests/run.sh"]
fn a_million_random_gateway_euis_keep_the_table_at_its_cap() {
    let dir = tempfile::tempdir().unwrap();
    let (udp, http) = (free_udp_port(), free_tcp_port());
    let cfg = dir.path().join("citygate.toml");
    std::fs::write(
        &cfg,
        format!(
            "[gateway]\nstate_dir = {:?}\n[log]\nlevel = \"error\"\n[telemetry]\nlisten = \"127.0.0.1:{http}\"\n\
             [southbound.lw]\ntype = \"lorawan_udp\"\nbind = \"127.0.0.1:{udp}\"\nmax_gateways = {MAX_GATEWAYS}\n",
            dir.path().join("state")
        ),
    )
    .unwrap();
    let daemon = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_citygate"))
            .args(["run", "-c"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = daemon.0.id();

    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(("127.0.0.1", udp)).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    // Wait until the server answers.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 64];
    loop {
        sock.send(&pull_data(0, 1)).unwrap();
        if sock.recv(&mut buf).is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "GWMP server not answering");
    }
    let baseline = status_kib(pid, "VmRSS:");

    // One thread: fill the window, then send one more for every PULL_ACK (no busy waiting
    // that would take a core from the daemon).
    let started = Instant::now();
    let mut eui = 0x5eed_0000_0000_0000u64;
    let mut next_eui = || {
        // Random-looking, distinct EUIs (an odd-increment walk visits each value once).
        eui = eui.wrapping_add(0x9e37_79b9_7f4a_7c15);
        eui
    };
    let (mut sent, mut acked, mut lost) = (0u64, 0u64, 0u64);
    while sent < WINDOW {
        sock.send(&pull_data(sent as u16, next_eui())).unwrap();
        sent += 1;
    }
    while acked + lost < SEND {
        match sock.recv(&mut buf) {
            Ok(n) if n >= 4 && buf[3] == 0x04 => acked += 1,
            Ok(_) => continue,
            // A lost datagram (should not happen on loopback) must not stall the window.
            Err(_) => {
                lost += 1;
                assert!(lost < 100, "the daemon stopped answering");
            }
        }
        if sent < SEND {
            sock.send(&pull_data(sent as u16, next_eui())).unwrap();
            sent += 1;
        }
    }
    let elapsed = started.elapsed();
    let rss = status_kib(pid, "VmRSS:");
    let peak = status_kib(pid, "VmHWM:");

    let metrics = http_get(http, "/metrics").expect("/metrics");
    let gateways = metric_sample(&metrics, "citygate_lorawan_gateways{adapter=\"lw\"}");
    let evicted = metric_sample(
        &metrics,
        "citygate_lorawan_gateway_table_total{adapter=\"lw\",event=\"evicted\"}",
    )
    .unwrap_or(0.0) as u64;
    eprintln!(
        "sent {SEND} PULL_DATA in {elapsed:?} ({:.0}/s), {} acked; table {gateways:?}, evicted {evicted}; \
         daemon RSS baseline {baseline} KiB, after {rss} KiB, peak {peak} KiB",
        SEND as f64 / elapsed.as_secs_f64(),
        acked
    );
    assert_eq!(gateways, Some(MAX_GATEWAYS as f64), "table not at its cap");
    // Every distinct EUI the daemon handled beyond the cap pushed one out (+1: the probe).
    assert_eq!(sent, SEND);
    assert!(lost == 0 || evicted > SEND - MAX_GATEWAYS - 1000);
    if lost == 0 {
        assert_eq!(evicted, SEND + 1 - MAX_GATEWAYS);
    }
    // Documented in docs/benchmarks.md: unbounded, this flood added ~84 MB.
    assert!(
        rss < baseline + 8 * 1024,
        "RSS grew from {baseline} to {rss} KiB"
    );
    assert!(peak < 48 * 1024, "peak RSS {peak} KiB");
}
