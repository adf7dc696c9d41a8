//! One connection to a Modbus bus (a TCP endpoint or a serial port) and the transactions on it.
//!
//! A [`Bus`] is owned by exactly one task, so transactions are strictly serialized: on a
//! serial line the next request waits for the 3.5-character silence after the previous frame.
//! Every request runs under `tokio::time::timeout`. The bus reconnects by itself:
//! - transport errors (EOF, broken pipe, reset) drop the connection at once;
//! - on TCP, a response that does not match the request, or [`SUSPECT_TIMEOUTS`] timeouts in a
//!   row with no answer in between, also drop it (half-open connection after a device power
//!   cycle, or a stream out of step after a late answer);
//! - connect attempts are spaced by a jittered exponential backoff that only resets after a
//!   successful transaction, so a device that accepts and then hangs up cannot cause a storm.

use super::config::{Parity, SerialSettings, Table};
use super::metrics::ModbusCounters;
use super::plan::ReadRequest;
use std::fmt::Debug;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_modbus::client::{Context, Reader};
use tokio_modbus::prelude::SlaveContext;
use tokio_modbus::{ExceptionCode, ProtocolError, Slave};

/// Timeouts in a row (no answer in between) after which a TCP connection is presumed dead.
pub const SUSPECT_TIMEOUTS: u32 = 2;
/// First and largest pause between connect attempts.
const RECONNECT_MIN: Duration = Duration::from_millis(500);
const RECONNECT_MAX: Duration = Duration::from_secs(60);
/// Time allowed to open a TCP connection or serial port.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A byte stream a Modbus client can run on.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Debug> Stream for T {}

/// Opens the byte stream of a bus; replaced in tests by in-process pipes.
#[async_trait::async_trait]
pub trait Connector: Send + Sync {
    async fn connect(&self) -> io::Result<Box<dyn Stream>>;
    /// For logs: `tcp://host:port`, `/dev/ttyUSB0`.
    fn describe(&self) -> String;
}

/// TCP to `host:port` (used for both MBAP and RTU-over-TCP framing).
#[derive(Debug, Clone)]
pub struct TcpConnector(pub String);

#[async_trait::async_trait]
impl Connector for TcpConnector {
    async fn connect(&self) -> io::Result<Box<dyn Stream>> {
        let s = tokio::net::TcpStream::connect(&self.0).await?;
        s.set_nodelay(true)?;
        Ok(Box::new(s))
    }
    fn describe(&self) -> String {
        format!("tcp://{}", self.0)
    }
}

/// A local serial port.
#[derive(Debug, Clone)]
pub struct SerialConnector(pub SerialSettings);

#[async_trait::async_trait]
impl Connector for SerialConnector {
    async fn connect(&self) -> io::Result<Box<dyn Stream>> {
        let s = &self.0;
        let builder = tokio_serial::new(&s.port, s.baud)
            .parity(match s.parity {
                Parity::None => tokio_serial::Parity::None,
                Parity::Even => tokio_serial::Parity::Even,
                Parity::Odd => tokio_serial::Parity::Odd,
            })
            .stop_bits(if s.stop_bits == 2 {
                tokio_serial::StopBits::Two
            } else {
                tokio_serial::StopBits::One
            })
            .data_bits(match s.data_bits {
                5 => tokio_serial::DataBits::Five,
                6 => tokio_serial::DataBits::Six,
                7 => tokio_serial::DataBits::Seven,
                _ => tokio_serial::DataBits::Eight,
            });
        let port = tokio_serial::SerialStream::open(&builder).map_err(io::Error::other)?;
        Ok(Box::new(port))
    }
    fn describe(&self) -> String {
        self.0.port.clone()
    }
}

/// Frame format on the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// MBAP header, transaction ids (Modbus/TCP).
    Tcp,
    /// Unit, PDU, CRC (serial line, or transparent converters over TCP).
    Rtu,
}

/// Data of a successful read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadData {
    Registers(Vec<u16>),
    Bits(Vec<bool>),
}

/// Why a transaction failed. The device's refusal (an exception) is kept apart from the
/// transport: the first is a config problem, the second means back off.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error("not connected: {0}")]
    NotConnected(String),
    #[error("timeout")]
    Timeout,
    #[error("exception {:02X} {}", u8::from(*.0), .0)]
    Exception(ExceptionCode),
    #[error("transport: {0}")]
    Transport(String),
    #[error("protocol: {0}")]
    Protocol(String),
}

impl TxError {
    /// The device did not answer at all (or its gateway says so): stop asking it this cycle.
    pub fn device_unreachable(&self) -> bool {
        matches!(
            self,
            TxError::NotConnected(_)
                | TxError::Timeout
                | TxError::Transport(_)
                | TxError::Exception(
                    ExceptionCode::GatewayPathUnavailable | ExceptionCode::GatewayTargetDevice
                )
        )
    }
}

/// Exponential backoff with jitter: `min(cap, base·2^n)` scaled by a random factor in
/// [0.5, 1.0), so several failing peers do not retry in lockstep.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Self {
        Backoff {
            base,
            cap: cap.max(base),
            failures: 0,
        }
    }

    /// Delay before the next attempt after one more failure.
    pub fn fail(&mut self) -> Duration {
        let exp = self.base.saturating_mul(1u32 << self.failures.min(16));
        self.failures = self.failures.saturating_add(1);
        let ceiling = exp.min(self.cap);
        ceiling.mul_f64(rand::random_range(0.5..1.0))
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// One connection and its transaction state; owned by one bus task.
pub struct Bus {
    connector: Arc<dyn Connector>,
    framing: Framing,
    /// Silence kept before each request (t3.5 on a serial line, zero otherwise).
    gap: Duration,
    ctx: Option<Context>,
    /// When the last frame ended (for the inter-frame gap).
    last_frame_end: Instant,
    timeouts_in_row: u32,
    reconnect: Backoff,
    next_connect: Instant,
    ever_connected: bool,
    counters: Arc<ModbusCounters>,
}

impl Bus {
    pub fn new(
        connector: Arc<dyn Connector>,
        framing: Framing,
        gap: Duration,
        counters: Arc<ModbusCounters>,
    ) -> Self {
        let now = Instant::now();
        Bus {
            connector,
            framing,
            gap,
            ctx: None,
            last_frame_end: now,
            timeouts_in_row: 0,
            reconnect: Backoff::new(RECONNECT_MIN, RECONNECT_MAX),
            next_connect: now,
            ever_connected: false,
            counters,
        }
    }

    pub fn describe(&self) -> String {
        self.connector.describe()
    }

    pub fn is_connected(&self) -> bool {
        self.ctx.is_some()
    }

    /// Drops the connection; the next transaction reconnects (subject to the backoff).
    pub fn disconnect(&mut self, why: &str) {
        if self.ctx.take().is_some() {
            tracing::warn!(bus = %self.describe(), reason = why, "modbus connection dropped");
        }
        self.timeouts_in_row = 0;
    }

    async fn ensure_connected(&mut self) -> Result<(), TxError> {
        if self.ctx.is_some() {
            return Ok(());
        }
        let now = Instant::now();
        if now < self.next_connect {
            let wait = self.next_connect - now;
            return Err(TxError::NotConnected(format!(
                "reconnect in {} ms",
                wait.as_millis()
            )));
        }
        // Space every attempt, successful or not; reset only after a good transaction.
        self.next_connect = now + self.reconnect.fail();
        let attempt = tokio::time::timeout(CONNECT_TIMEOUT, self.connector.connect()).await;
        let stream = match attempt {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                self.counters
                    .connect_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(bus = %self.describe(), error = %e, "modbus connect failed");
                return Err(TxError::NotConnected(e.to_string()));
            }
            Err(_) => {
                self.counters
                    .connect_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(bus = %self.describe(), "modbus connect timed out");
                return Err(TxError::NotConnected("connect timed out".into()));
            }
        };
        if self.ever_connected {
            self.counters.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        self.ever_connected = true;
        tracing::info!(bus = %self.describe(), "modbus connected");
        self.ctx = Some(match self.framing {
            Framing::Tcp => tokio_modbus::client::tcp::attach(stream),
            Framing::Rtu => tokio_modbus::client::rtu::attach(stream),
        });
        self.last_frame_end = Instant::now();
        Ok(())
    }

    /// One read transaction with unit `unit`, bounded by `timeout`.
    pub async fn read(
        &mut self,
        unit: u8,
        req: &ReadRequest,
        timeout: Duration,
    ) -> Result<ReadData, TxError> {
        self.ensure_connected().await?;
        tokio::time::sleep_until(self.last_frame_end + self.gap).await;
        let Some(ctx) = self.ctx.as_mut() else {
            return Err(TxError::NotConnected("disconnected".into()));
        };
        ctx.set_slave(Slave(unit));
        self.counters.transactions.fetch_add(1, Ordering::Relaxed);
        let (addr, cnt) = (req.address, req.count);
        let call = async {
            match req.table {
                Table::Coil => ctx
                    .read_coils(addr, cnt)
                    .await
                    .map(|r| r.map(ReadData::Bits)),
                Table::Discrete => ctx
                    .read_discrete_inputs(addr, cnt)
                    .await
                    .map(|r| r.map(ReadData::Bits)),
                Table::Holding => ctx
                    .read_holding_registers(addr, cnt)
                    .await
                    .map(|r| r.map(ReadData::Registers)),
                Table::Input => ctx
                    .read_input_registers(addr, cnt)
                    .await
                    .map(|r| r.map(ReadData::Registers)),
            }
        };
        let outcome = tokio::time::timeout(timeout, call).await;
        self.last_frame_end = Instant::now();
        let result = match outcome {
            Err(_) => Err(TxError::Timeout),
            Ok(Ok(Ok(data))) => check_len(data, cnt),
            Ok(Ok(Err(code))) => Err(TxError::Exception(code)),
            Ok(Err(tokio_modbus::Error::Transport(e))) => Err(TxError::Transport(e.to_string())),
            // pymodbus answers over-limit reads with function 0x80 instead of FC|0x80.
            Ok(Err(tokio_modbus::Error::Protocol(ProtocolError::FunctionCodeMismatch {
                result: Err(resp),
                ..
            }))) => Err(TxError::Exception(resp.exception)),
            Ok(Err(tokio_modbus::Error::Protocol(e))) => Err(TxError::Protocol(e.to_string())),
        };
        self.account(&result);
        result
    }

    /// Counters and connection health after a transaction.
    fn account(&mut self, result: &Result<ReadData, TxError>) {
        let c = &self.counters;
        match result {
            Ok(_) | Err(TxError::Exception(_)) => {
                if result.is_err() {
                    c.exceptions.fetch_add(1, Ordering::Relaxed);
                }
                // The device answered: the connection is healthy.
                self.timeouts_in_row = 0;
                self.reconnect.reset();
            }
            Err(TxError::Timeout) => {
                c.timeouts.fetch_add(1, Ordering::Relaxed);
                self.timeouts_in_row += 1;
                if self.framing == Framing::Tcp && self.timeouts_in_row >= SUSPECT_TIMEOUTS {
                    self.disconnect("repeated timeouts");
                }
            }
            Err(TxError::Transport(e)) => {
                c.transport_errors.fetch_add(1, Ordering::Relaxed);
                let why = format!("transport error: {e}");
                self.disconnect(&why);
            }
            Err(TxError::Protocol(_)) => {
                c.transport_errors.fetch_add(1, Ordering::Relaxed);
                // A TCP stream out of step stays out of step; a serial line resyncs by itself.
                if self.framing == Framing::Tcp {
                    self.disconnect("response did not match the request");
                }
            }
            Err(TxError::NotConnected(_)) => {}
        }
    }
}

fn check_len(data: ReadData, cnt: u16) -> Result<ReadData, TxError> {
    let got = match &data {
        ReadData::Registers(r) => r.len(),
        ReadData::Bits(b) => b.len(),
    };
    if got == usize::from(cnt) {
        Ok(data)
    } else {
        Err(TxError::Protocol(format!("asked for {cnt}, got {got}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Hands out one end of an in-memory pipe.
    struct Pipe(Mutex<Option<tokio::io::DuplexStream>>);

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

    /// CRC-16/MODBUS (reflected 0xA001, init 0xFFFF).
    fn crc16(data: &[u8]) -> u16 {
        data.iter().fold(0xFFFF, |mut crc, b| {
            crc ^= u16::from(*b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xA001
                } else {
                    crc >> 1
                };
            }
            crc
        })
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
                let mut resp = vec![req[0], 0x03, 2, 0x12, 0x34];
                let crc = crc16(&resp).to_le_bytes();
                resp.extend_from_slice(&crc);
                if device.write_all(&resp).await.is_err() {
                    break;
                }
            }
        });
        let gap = Duration::from_millis(40);
        let counters = Arc::new(ModbusCounters::default());
        let mut bus = Bus::new(
            Arc::new(Pipe(Mutex::new(Some(client)))),
            Framing::Rtu,
            gap,
            Arc::clone(&counters),
        );
        let req = ReadRequest {
            table: Table::Holding,
            address: 0,
            count: 1,
            points: vec![],
        };
        for _ in 0..3 {
            let data = tokio::time::timeout(
                Duration::from_secs(5),
                bus.read(1, &req, Duration::from_secs(1)),
            )
            .await
            .unwrap();
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

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
        let d: Vec<Duration> = (0..8).map(|_| b.fail()).collect();
        for (n, d) in d.iter().enumerate() {
            let ceiling = Duration::from_secs(1 << n.min(4)).min(Duration::from_secs(10));
            assert!(*d >= ceiling / 2 && *d < ceiling, "{n}: {d:?}");
        }
        b.reset();
        assert!(b.fail() < Duration::from_secs(1));
    }

    #[test]
    fn unreachable_vs_refused() {
        assert!(TxError::Timeout.device_unreachable());
        assert!(TxError::Exception(ExceptionCode::GatewayTargetDevice).device_unreachable());
        assert!(!TxError::Exception(ExceptionCode::IllegalDataAddress).device_unreachable());
        assert_eq!(
            TxError::Exception(ExceptionCode::IllegalDataAddress).to_string(),
            "exception 02 Illegal data address"
        );
    }
}
