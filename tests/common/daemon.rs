//! Talking to a real daemon (or a peer) from a test: free loopback ports, the telemetry
//! endpoints, metric samples, and the messages it sends to a systemd notify socket.

use std::io::{Read, Write};
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

/// A TCP port on 127.0.0.1 that was free a moment ago (defined beside the ACME helper, which
/// the benches include on its own).
#[allow(unused_imports)]
pub use super::northbound::acme::free_port;

/// A UDP port on 127.0.0.1 that was free a moment ago.
pub fn free_udp_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    s.local_addr().expect("local addr").port()
}

/// The body of `GET path` on 127.0.0.1:`port` (HTTP/1.0, 5 s timeout), or `None`.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.split_once("\r\n\r\n").map(|(_, body)| body.to_owned())
}

/// The value of one series (`name{labels}` as exported) in a Prometheus text exposition.
pub fn metric_sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
}

/// Every datagram that arrives on a notify socket within `for_how_long`.
pub fn notify_messages(sock: &UnixDatagram, for_how_long: Duration) -> Vec<String> {
    let end = Instant::now() + for_how_long;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < end {
        sock.set_read_timeout(Some(
            end.saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1)),
        ))
        .expect("set read timeout");
        if let Ok(n) = sock.recv(&mut buf) {
            out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    out
}

/// How many of `msgs` hold the line `what` (e.g. `WATCHDOG=1`).
pub fn count_lines(msgs: &[String], what: &str) -> usize {
    msgs.iter().filter(|m| m.lines().any(|l| l == what)).count()
}

/// A child process (the daemon, a peer) killed and reaped when the test ends, pass or fail.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The head of a daemon config for the tests: `[gateway]` and the AE both named `ae`, state
/// under `dir/state`, metrics on 127.0.0.1:`port` (0: any free port), and `[northbound]` to the
/// CSE at `url` with quick retries. The test's own `[northbound]` keys may follow at once;
/// then its other sections.
pub fn config_head(
    dir: &std::path::Path,
    port: u16,
    url: &str,
    originator: &str,
    ae: &str,
) -> String {
    format!(
        r#"[gateway]
name = "{ae}"
state_dir = {state:?}
[telemetry]
listen = "127.0.0.1:{port}"
[northbound]
cse_url = "{url}"
originator = "{originator}"
ae_name = "{ae}"
request_timeout = "5s"
backoff = {{ initial = "200ms", max = "2s", auth_retry = "5s" }}
"#,
        state = dir.join("state"),
    )
}
