use super::*;
use crate::southbound::modbus::error::crc16;
use std::sync::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_modbus::ExceptionCode;

/// Hands out one end of an in-memory pipe.
struct Pipe(Mutex<Option<DuplexStream>>);

#[async_trait::async_trait]
impl Connector for Pipe {
    async fn connect(&self) -> io::Result<Box<dyn Stream>> {
        match self.0.lock().unwrap().take() {
            Some(s) => Ok(Box::new(s)),
            None => Err(io::Error::other("used")),
        }
    }
    fn describe(&self) -> String {
        "pipe".into()
    }
}

fn bus_on(client: DuplexStream, framing: Framing, gap: Duration) -> (Bus, Arc<ModbusMetrics>) {
    let counters = Arc::new(ModbusMetrics::detached());
    let bus = Bus::new(
        Arc::new(Pipe(Mutex::new(Some(client)))),
        framing,
        gap,
        Arc::clone(&counters),
    );
    (bus, counters)
}

fn one_register() -> ReadRequest {
    ReadRequest {
        table: Table::Holding,
        address: 0,
        count: 1,
        points: vec![],
    }
}

/// An RTU answer of one holding register, with its CRC.
fn rtu_answer(unit: u8, value: u16) -> Vec<u8> {
    let mut resp = vec![unit, 0x03, 2];
    resp.extend_from_slice(&value.to_be_bytes());
    let crc = crc16(&resp).to_le_bytes();
    resp.extend_from_slice(&crc);
    resp
}

/// A Modbus/TCP answer of one holding register to request `req`.
fn mbap_answer(req: &[u8], value: u16) -> Vec<u8> {
    let mut resp = req[..4].to_vec();
    resp.extend_from_slice(&[0, 5, req[6], 0x03, 2]);
    resp.extend_from_slice(&value.to_be_bytes());
    resp
}

async fn read(bus: &mut Bus, unit: u8, timeout_ms: u64) -> Result<ReadData, TxError> {
    tokio::time::timeout(
        Duration::from_secs(5),
        bus.read(unit, &one_register(), Duration::from_millis(timeout_ms)),
    )
    .await
    .expect("the bus returns within its own timeout")
}

#[tokio::test]
async fn serial_requests_keep_the_inter_frame_gap() {
    let (client, mut device) = tokio::io::duplex(256);
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&arrivals);
    let responder = tokio::spawn(async move {
        let mut req = [0u8; 8];
        while device.read_exact(&mut req).await.is_ok() {
            seen.lock().unwrap().push(Instant::now());
            if device.write_all(&rtu_answer(req[0], 0x1234)).await.is_err() {
                break;
            }
        }
    });
    let gap = Duration::from_millis(40);
    let (mut bus, counters) = bus_on(client, Framing::Rtu, gap);
    for _ in 0..3 {
        let data = read(&mut bus, 1, 1000).await;
        assert_eq!(data, Ok(ReadData::Registers(vec![0x1234])));
    }
    responder.abort();
    let t = arrivals.lock().unwrap().clone();
    assert_eq!(t.len(), 3);
    for w in t.windows(2) {
        assert!(w[1] - w[0] >= gap, "{:?}", w[1] - w[0]);
    }
    assert_eq!(counters.snapshot().transactions, 3);
}

#[tokio::test]
async fn a_bad_crc_is_reported_as_a_crc_error_and_the_line_recovers() {
    let (client, mut device) = tokio::io::duplex(256);
    let responder = tokio::spawn(async move {
        let mut req = [0u8; 8];
        let mut n = 0;
        while device.read_exact(&mut req).await.is_ok() {
            n += 1;
            let mut resp = rtu_answer(req[0], 0x1234);
            if n == 1 {
                resp[6] ^= 0x5A; // damaged on the line
            }
            if device.write_all(&resp).await.is_err() {
                break;
            }
        }
    });
    let (mut bus, counters) = bus_on(client, Framing::Rtu, Duration::from_millis(2));
    let e = read(&mut bus, 1, 100).await.unwrap_err();
    assert!(matches!(e, TxError::Crc { .. }), "{e:?}");
    assert!(e.to_string().starts_with("CRC error"), "{e}");
    assert_eq!(
        read(&mut bus, 1, 100).await,
        Ok(ReadData::Registers(vec![0x1234]))
    );
    let snap = counters.snapshot();
    assert_eq!((snap.crc_errors, snap.timeouts), (1, 0), "{snap:?}");
    responder.abort();
}

#[tokio::test]
async fn rtu_a_late_answer_is_drained_not_taken_for_the_next() {
    let (client, mut device) = tokio::io::duplex(256);
    let responder = tokio::spawn(async move {
        let mut req = [0u8; 8];
        let mut n = 0;
        while device.read_exact(&mut req).await.is_ok() {
            n += 1;
            if n == 1 {
                // Answers 10 ms after the master gave up, with another value.
                tokio::time::sleep(Duration::from_millis(60)).await;
                let _ = device.write_all(&rtu_answer(req[0], 0xAAAA)).await;
                continue;
            }
            if device.write_all(&rtu_answer(req[0], 0x1234)).await.is_err() {
                break;
            }
        }
    });
    // A 30 ms gap makes the drain wait for 60 ms of silence.
    let (mut bus, counters) = bus_on(client, Framing::Rtu, Duration::from_millis(30));
    assert_eq!(read(&mut bus, 1, 50).await, Err(TxError::Timeout));
    assert_eq!(
        read(&mut bus, 1, 500).await,
        Ok(ReadData::Registers(vec![0x1234]))
    );
    assert_eq!(counters.snapshot().late_responses, 1);
    responder.abort();
}

#[tokio::test]
async fn tcp_a_timeout_of_one_unit_keeps_the_connection_and_its_late_answer_is_dropped() {
    let (client, mut device) = tokio::io::duplex(1024);
    let responder = tokio::spawn(async move {
        let mut req = [0u8; 12];
        while device.read_exact(&mut req).await.is_ok() {
            let value = if req[6] == 2 {
                // Unit 2 behind the gateway is slow: answers after the timeout.
                tokio::time::sleep(Duration::from_millis(80)).await;
                0xAAAA
            } else {
                0x1234
            };
            if device.write_all(&mbap_answer(&req, value)).await.is_err() {
                break;
            }
        }
    });
    let (mut bus, counters) = bus_on(client, Framing::Tcp, Duration::ZERO);
    bus.set_units([1, 2]);
    assert_eq!(read(&mut bus, 2, 30).await, Err(TxError::Timeout));
    assert!(bus.is_connected());
    for _ in 0..3 {
        assert_eq!(
            read(&mut bus, 1, 1000).await,
            Ok(ReadData::Registers(vec![0x1234]))
        );
    }
    let snap = counters.snapshot();
    assert_eq!(
        (snap.late_responses, snap.protocol_errors),
        (1, 0),
        "{snap:?}"
    );
    assert!(bus.is_connected());
    responder.abort();
}

#[tokio::test]
async fn tcp_is_reopened_only_when_every_unit_stopped_answering() {
    let (client, mut device) = tokio::io::duplex(1024);
    let sink = tokio::spawn(async move {
        let mut buf = [0u8; 64];
        while device.read(&mut buf).await.is_ok_and(|n| n > 0) {}
    });
    let (mut bus, counters) = bus_on(client, Framing::Tcp, Duration::ZERO);
    bus.set_units([1, 2]);
    for _ in 0..SUSPECT_TIMEOUTS + 1 {
        assert_eq!(read(&mut bus, 1, 10).await, Err(TxError::Timeout));
        assert!(bus.is_connected(), "unit 2 has not been tried yet");
    }
    assert_eq!(read(&mut bus, 2, 10).await, Err(TxError::Timeout));
    assert!(!bus.is_connected());
    assert_eq!(
        counters.snapshot().timeouts,
        u64::from(SUSPECT_TIMEOUTS) + 2
    );
    sink.abort();
}

#[tokio::test]
async fn a_connection_closed_by_the_device_is_named() {
    let (client, mut device) = tokio::io::duplex(1024);
    let closer = tokio::spawn(async move {
        let mut req = [0u8; 12];
        let _ = device.read_exact(&mut req).await;
        drop(device);
    });
    let (mut bus, counters) = bus_on(client, Framing::Tcp, Duration::ZERO);
    let e = read(&mut bus, 1, 1000).await.unwrap_err();
    assert_eq!(e, TxError::Closed);
    assert_eq!(e.to_string(), "connection closed by device");
    assert!(!bus.is_connected());
    let snap = counters.snapshot();
    assert_eq!((snap.connections_closed, snap.transport_errors), (1, 0));
    closer.await.unwrap();
}

#[tokio::test]
async fn an_exception_names_its_code() {
    let (client, mut device) = tokio::io::duplex(1024);
    let responder = tokio::spawn(async move {
        let mut req = [0u8; 12];
        while device.read_exact(&mut req).await.is_ok() {
            let mut resp = req[..4].to_vec();
            resp.extend_from_slice(&[0, 3, req[6], 0x83, 0x02]);
            if device.write_all(&resp).await.is_err() {
                break;
            }
        }
    });
    let (mut bus, counters) = bus_on(client, Framing::Tcp, Duration::ZERO);
    let e = read(&mut bus, 1, 1000).await.unwrap_err();
    assert_eq!(e, TxError::Exception(ExceptionCode::IllegalDataAddress));
    assert_eq!(e.to_string(), "exception 02 Illegal data address");
    assert!(bus.is_connected());
    assert_eq!(counters.snapshot().exceptions, 1);
    responder.abort();
}
