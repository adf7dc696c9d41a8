//! A forwarder flooding TX_ACKs whose error string is 10 000 characters of forged log lines and
//! terminal escapes: the GWMP server logs a few escaped, truncated warnings and drops the rest,
//! and a gateway outside the allow-list is refused (counted, not logged per datagram).

mod common;

use citygate::southbound::lorawan::{LorawanUdpAdapter, LorawanUdpConfig};
use citygate::southbound::Adapter;
use citygate::telemetry::LorawanMetrics;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn tx_ack(token: u16, gateway: [u8; 8], error: &str) -> Vec<u8> {
    let mut d = vec![2, (token >> 8) as u8, token as u8, 0x05];
    d.extend_from_slice(&gateway);
    d.extend_from_slice(
        serde_json::json!({ "txpk_ack": { "error": error } })
            .to_string()
            .as_bytes(),
    );
    d
}

#[tokio::test]
async fn forwarder_error_strings_are_escaped_truncated_and_rate_limited() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let cfg: LorawanUdpConfig =
        toml::from_str("bind = \"127.0.0.1:0\"\ngateways = [\"aa555a0000000001\"]").unwrap();
    let mut adapter = LorawanUdpAdapter::new("lw", &cfg, LorawanMetrics::detached()).unwrap();
    let counters = adapter.counters();
    let mut bound = adapter.bound_addr();
    let sink = common::Sink::new();
    let out = sink.sender();
    let shutdown = CancellationToken::new();
    let task = {
        let (out, shutdown) = (out.clone(), shutdown.clone());
        tokio::spawn(async move { adapter.run(&out, &shutdown).await })
    };
    let server = common::within(5, bound.wait_for(|a| a.is_some()))
        .await
        .unwrap()
        .unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();

    let hostile = format!(
        "TOO_LATE\n2026-11-30T00:00:00Z ERROR citygate: forged line\r\x1b[2J\x1b[31m{}",
        "A".repeat(10_000)
    );
    let allowed = [0xaa, 0x55, 0x5a, 0, 0, 0, 0, 1];
    // One at a time (each waits until handled): the point is the log, not socket buffers.
    for i in 0..200u16 {
        sock.send_to(&tx_ack(i, allowed, &hostile), server)
            .await
            .unwrap();
        sock.send_to(&tx_ack(i, [9; 8], "NOPE"), server)
            .await
            .unwrap();
        let want = u64::from(i) + 1;
        common::within(5, async {
            while counters.tx_ack_error.get() < want || counters.gateway_table_refused.get() < want
            {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await;
    }
    shutdown.cancel();
    task.await.unwrap().unwrap();

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let refused: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("gateway refused downlink"))
        .collect();
    // Five per gateway and minute; 195 held back until the next line of that gateway.
    assert_eq!(refused.len(), 5, "{log}");
    for line in &refused {
        assert!(line.len() < 600, "line of {} bytes", line.len());
        assert!(line
            .contains("TOO_LATE\\n2026-11-30T00:00:00Z ERROR citygate: forged line\\r\\u{1b}[2J"));
        assert!(line.contains("…(truncated, 10067 bytes)"), "{line}");
        assert!(!line.contains('\x1b') && !line.contains('\r'));
    }
    // No line of the log starts with the forged text.
    assert!(!log.lines().any(|l| l.starts_with("2026-11-30T00:00:00Z")));
    let not_listed = log
        .lines()
        .filter(|l| l.contains("not in `gateways`"))
        .count();
    assert_eq!(not_listed, 5, "{log}");
}
