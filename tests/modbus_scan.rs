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

/// `--serial-search` over a pty whose device speaks only 19200 baud with odd parity: every
/// other setting is silent or garbled, the search names the right one and then finds exactly
/// the live units with it. Host only: under qemu-user the line check would read the pty's
/// termios2 through the emulator's ioctl translation instead of the kernel.
#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "reads a pty's termios2; run on the host"
)]
fn serial_search_finds_the_line_settings_and_the_units() {
    use common::modbus_pty::start_line_bound;
    let with_registers = || Unit {
        holding: (0..4).map(|a| (a, a)).collect(),
        ..Default::default()
    };
    let sim = Sim::with([(2, with_registers()), (5, with_registers())]);
    let device = start_line_bound(sim, 19200, true);
    let url = format!("rtu://{}?baud=9600&parity=even", device.path);
    let (ok, out, err) = scan(&[
        &url,
        "--serial-search",
        "--units",
        "1-6",
        "--timeout-ms",
        "60",
    ]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("19200 baud, parity even, 1 stop bit") && out.contains("garbled answer"),
        "{out}"
    );
    assert!(
        out.contains("line settings: 19200 baud, parity odd, 1 stop bit"),
        "{out}"
    );
    assert!(
        out.contains("  9600 baud, parity even, 1 stop bit"),
        "{out}"
    );
    assert!(out.ends_with("answering units: 2, 5\n"), "{out}");
    // Nothing answers on a line without that device: the search says so and fails.
    let silent = start_line_bound(Sim::with([]), 19200, true);
    let url = format!("rtu://{}", silent.path);
    let (ok, out, _) = scan(&[
        &url,
        "--serial-search",
        "--units",
        "1",
        "--timeout-ms",
        "20",
    ]);
    assert!(!ok);
    assert!(out.contains("no setting worked"), "{out}");
    // A TCP endpoint has no line settings.
    let (ok, _, err) = scan(&["tcp://127.0.0.1:502", "--serial-search"]);
    assert!(!ok);
    assert!(err.contains("--serial-search needs a serial line"), "{err}");
}
