//! BlueZ emulated by python-dbusmock on a private dbus-daemon (Debian's python3-dbusmock).
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const PY: &str = "/usr/bin/python3";
pub const BTHOME: &str = "0000fcd2-0000-1000-8000-00805f9b34fb";

/// A child process killed (by its own handle) when the test ends, pass or fail.
pub struct Proc(pub Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn quiet(cmd: &mut Command) -> &mut Command {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
}

pub fn have_tools() -> bool {
    let daemon = quiet(Command::new("dbus-daemon").arg("--version")).status();
    let mock = quiet(Command::new(PY).args(["-c", "import dbusmock, dbus"])).status();
    matches!((daemon, mock), (Ok(a), Ok(b)) if a.success() && b.success())
}

pub fn ctl(addr: &str, args: &[&str]) -> bool {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/bluez_mock_ctl.py");
    quiet(Command::new(PY).arg(script).args(args))
        .env("DBUS_SYSTEM_BUS_ADDRESS", addr)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

pub fn start_mock(addr: &str) -> Proc {
    let child =
        quiet(Command::new(PY).args(["-m", "dbusmock", "--system", "--template", "bluez5"]))
            .env("DBUS_SYSTEM_BUS_ADDRESS", addr)
            .spawn()
            .expect("start dbusmock");
    let p = Proc(child);
    assert!(ctl(addr, &["wait"]), "org.bluez did not appear on the bus");
    assert!(ctl(addr, &["add-adapter", "hci0"]));
    p
}

pub fn wait_for_socket(p: &Path) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !p.exists() {
        assert!(
            Instant::now() < deadline,
            "dbus-daemon socket did not appear"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts a private bus in `dir`; returns the daemon and its address.
pub fn start_bus(dir: &Path) -> (Proc, String) {
    let sock = dir.join("bus");
    let _ = std::fs::remove_file(&sock);
    let addr = format!("unix:path={}", sock.display());
    let daemon = Proc(
        quiet(Command::new("dbus-daemon").args([
            "--session",
            "--nofork",
            &format!("--address={addr}"),
        ]))
        .spawn()
        .expect("start dbus-daemon"),
    );
    wait_for_socket(&sock);
    (daemon, addr)
}

/// Skips without the tools, unless `CITYGATE_REQUIRE_PEERS` is set (then it is a failure).
pub fn require_tools() -> bool {
    if have_tools() {
        return true;
    }
    assert!(
        std::env::var_os("CITYGATE_REQUIRE_PEERS").is_none(),
        "dbus-daemon or python3-dbusmock missing (apt-get install -y python3-dbusmock dbus)"
    );
    eprintln!(
        "SKIP: dbus-daemon or python3-dbusmock missing (apt-get install -y python3-dbusmock dbus)"
    );
    false
}
