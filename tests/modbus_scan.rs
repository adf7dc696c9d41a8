//! `citygate scan modbus` finds exactly the units that answer: an in-process bus with units 1,
//! 3 and 7 (unit 3 has no holding registers and answers with an exception), nobody else.

mod common;

use common::modbus::{start_tcp, Sim, Unit};
use std::process::Command;

fn scan(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_citygate"))
        .args(["scan", "modbus"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_finds_exactly_the_live_units() {
    let with_registers = || Unit {
        holding: (0..4).map(|a| (a, a)).collect(),
        ..Default::default()
    };
    let sim = Sim::with([
        (1, with_registers()),
        (3, Unit::default()),
        (7, with_registers()),
    ]);
    let (addr, server) = start_tcp(sim, "127.0.0.1:0".parse().unwrap()).await;
    let url = format!("tcp://{addr}");
    let (ok, out, err) = tokio::task::spawn_blocking(move || {
        scan(&[&url, "--units", "1-10", "--timeout-ms", "100"])
    })
    .await
    .unwrap();
    server.abort();
    assert!(ok, "{out}{err}");
    assert!(out.contains("unit   1  answers\n"), "{out}");
    assert!(out.contains("unit   3  answers with exception 02"), "{out}");
    assert!(out.contains("unit   7  answers\n"), "{out}");
    assert!(out.ends_with("answering units: 1, 3, 7\n"), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("unit ")).count(),
        3,
        "{out}"
    );
}

#[test]
fn scan_says_what_is_wrong_with_a_bad_endpoint_or_argument() {
    let closed = common::daemon::free_port();
    let (ok, _, err) = scan(&[&format!("tcp://127.0.0.1:{closed}"), "--units", "1-2"]);
    assert!(!ok);
    assert!(
        err.contains("citygate: scan failed: the device did not answer: not connected"),
        "{err}"
    );
    let (ok, _, err) = scan(&["udp://x", "--units", "0-5"]);
    assert!(!ok);
    assert!(err.contains("unknown scheme"), "{err}");
    assert!(err.contains("\"0\" is not a unit id 1..247"), "{err}");
}
