//! One connection to a Modbus bus (a TCP endpoint or a serial port) and the transactions on it.
//!
//! A [`Bus`] is owned by exactly one task, so transactions are strictly serialized: on a
//! serial line the next request waits for the 3.5-character silence after the previous frame.
//! Every request runs under `tokio::time::timeout`, on a stream the bus watches
//! ([`super::link`]), so each failure is named ([`TxError`]): timeout, CRC error, connection
//! closed by the device, exception with its code.
//!
//! When the connection is dropped and reopened:
//! - at once on a transport failure (end of file, reset, broken pipe, serial port gone);
//! - on TCP, when the stream is out of step (a request cut off by a timeout while being
//!   written, or bytes that are not Modbus/TCP frames);
//! - on TCP, after [`SUSPECT_TIMEOUTS`] timeouts in a row with no answer in between that
//!   cover every unit polled on the connection (a half-open connection after a power cut of
//!   the device or gateway).
//!
//! A timeout of one unit never closes a TCP connection its neighbours still answer on: a
//! gateway multiplexes many units on one connection and a silent unit is normal. An answer
//! arriving after its request timed out carries the old transaction id and is dropped by the
//! link. On RTU there is no transaction id: after a failed transaction the line is drained
//! (read and discard until [`DRAIN_QUIET_MIN`] or twice the inter-frame gap of silence, at
//! most [`DRAIN_MAX`]) before the next request, so a late answer is not taken as the next
//! one. An answer later than that can still collide; the unit id, function code and length
//! checks then reject it as a protocol error.
//!
//! Connect attempts are spaced by the jittered exponential backoff of
//! [`crate::runtime::backoff`], reset only after an answer, so a device that accepts and then
//! hangs up cannot cause a connect storm.

use super::config::{Parity, SerialSettings, Table};
use super::decode::{decode_point, DecodeError};
use super::encode::{WriteData, WriteRequest};
use super::error::diagnose_rtu;
pub use super::error::TxError;
pub use super::link::{Framing, Link, Stream};
use super::plan::ReadRequest;
use super::profile::Point;
use crate::backoff::Backoff;
use crate::record::Value;
use crate::telemetry::ModbusMetrics;
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt::Debug;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_modbus::client::{Client, Context};
use tokio_modbus::prelude::SlaveContext;
use tokio_modbus::{ProtocolError, Request, Response, Slave};

/// Timeouts in a row (no answer in between, covering every unit of the connection) after
/// which a TCP connection is presumed half-open.
pub const SUSPECT_TIMEOUTS: u32 = 3;
/// Silence that ends a drain of the line after a failed RTU transaction (at least twice the
/// inter-frame gap).
pub const DRAIN_QUIET_MIN: Duration = Duration::from_millis(20);
/// Longest drain: continuous noise must not stall the bus.
pub const DRAIN_MAX: Duration = Duration::from_millis(250);
/// First and largest pause between connect attempts.
const RECONNECT_MIN: Duration = Duration::from_millis(500);
const RECONNECT_MAX: Duration = Duration::from_secs(60);
/// Time allowed to open a TCP connection or serial port.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

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

/// Data of a successful read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadData {
    Registers(Vec<u16>),
    Bits(Vec<bool>),
}

/// One connection and its transaction state; owned by one bus task.
pub struct Bus {
    connector: Arc<dyn Connector>,
    framing: Framing,
    /// Silence kept before each request (t3.5 on a serial line, zero otherwise).
    gap: Duration,
    ctx: Option<Context>,
    link: Option<Link>,
    /// When the last frame ended (for the inter-frame gap).
    last_frame_end: Instant,
    /// Timeouts since the last answer from any unit, and the units they came from.
    timeouts_in_row: u32,
    units_timed_out: BTreeSet<u8>,
    /// Every unit polled on this connection (empty: not known, e.g. `probe`).
    units: BTreeSet<u8>,
    /// RTU: the last transaction failed; drain the line before the next request.
    line_dirty: bool,
    reconnect: Backoff,
    next_connect: Instant,
    ever_connected: bool,
    counters: Arc<ModbusMetrics>,
    /// The link of the transaction just made, until [`Bus::finish`] accounts for it.
    link_after: Option<Link>,
}

impl Bus {
    pub fn new(
        connector: Arc<dyn Connector>,
        framing: Framing,
        gap: Duration,
        counters: Arc<ModbusMetrics>,
    ) -> Self {
        let now = Instant::now();
        Bus {
            connector,
            framing,
            gap,
            ctx: None,
            link: None,
            last_frame_end: now,
            timeouts_in_row: 0,
            units_timed_out: BTreeSet::new(),
            units: BTreeSet::new(),
            line_dirty: false,
            reconnect: Backoff::new(RECONNECT_MIN, RECONNECT_MAX),
            next_connect: now,
            ever_connected: false,
            counters,
            link_after: None,
        }
    }

    /// The units polled on this connection: timeouts only make the connection suspect once
    /// every one of them has stopped answering.
    pub fn set_units(&mut self, units: impl IntoIterator<Item = u8>) {
        self.units = units.into_iter().collect();
    }

    pub fn describe(&self) -> String {
        self.connector.describe()
    }

    pub fn is_connected(&self) -> bool {
        self.ctx.is_some()
    }

    /// True once a connection was made (the bus is reachable).
    pub fn ever_connected(&self) -> bool {
        self.ever_connected
    }

    /// How long until the next reconnect attempt is allowed.
    pub fn reconnect_wait(&self) -> Duration {
        self.next_connect.saturating_duration_since(Instant::now())
    }

    /// Drops the connection; the next transaction reconnects (subject to the backoff).
    pub fn disconnect(&mut self, why: &str) {
        self.link = None;
        if self.ctx.take().is_some() {
            tracing::warn!(bus = %self.describe(), reason = why, "modbus connection dropped");
        }
        self.timeouts_in_row = 0;
        self.units_timed_out.clear();
        self.line_dirty = false;
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
        // Space every attempt, successful or not; reset only after an answer.
        self.next_connect = now + self.reconnect.next_delay();
        let attempt = tokio::time::timeout(CONNECT_TIMEOUT, self.connector.connect()).await;
        let stream = match attempt {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                self.counters.connect_failures.inc();
                tracing::warn!(bus = %self.describe(), error = %e, "modbus connect failed");
                return Err(TxError::NotConnected(e.to_string()));
            }
            Err(_) => {
                self.counters.connect_failures.inc();
                tracing::warn!(bus = %self.describe(), "modbus connect timed out");
                return Err(TxError::NotConnected("connect timed out".into()));
            }
        };
        if self.ever_connected {
            self.counters.reconnects.inc();
        }
        self.ever_connected = true;
        tracing::info!(bus = %self.describe(), "modbus connected");
        let (link, stream) = Link::new(stream, self.framing);
        self.ctx = Some(match self.framing {
            Framing::Tcp => tokio_modbus::client::tcp::attach(stream),
            Framing::Rtu => tokio_modbus::client::rtu::attach(stream),
        });
        self.link = Some(link);
        self.last_frame_end = Instant::now();
        Ok(())
    }

    /// RTU: after a failed transaction, discards what still arrives until the line is quiet.
    async fn drain_line(&mut self) {
        if !std::mem::take(&mut self.line_dirty) {
            return;
        }
        let Some(link) = &self.link else { return };
        let quiet = (self.gap * 2).max(DRAIN_QUIET_MIN);
        let n = link.drain(quiet, DRAIN_MAX).await;
        if n > 0 {
            self.counters.late_responses.inc();
            tracing::debug!(bus = %self.describe(), bytes = n, "modbus: late bytes discarded from the line");
        }
        self.last_frame_end = Instant::now();
    }

    /// One read transaction with unit `unit`, bounded by `timeout`.
    pub async fn read(
        &mut self,
        unit: u8,
        req: &ReadRequest,
        timeout: Duration,
    ) -> Result<ReadData, TxError> {
        let (addr, cnt) = (req.address, req.count);
        let request = match req.table {
            Table::Coil => Request::ReadCoils(addr, cnt),
            Table::Discrete => Request::ReadDiscreteInputs(addr, cnt),
            Table::Holding => Request::ReadHoldingRegisters(addr, cnt),
            Table::Input => Request::ReadInputRegisters(addr, cnt),
        };
        let answer = self.transact(unit, request, timeout).await;
        let data = answer.and_then(|r| match r {
            Response::ReadCoils(mut b) | Response::ReadDiscreteInputs(mut b) => {
                // Bits travel in whole bytes: the last byte's padding is not data.
                b.truncate(usize::from(cnt));
                check_len(ReadData::Bits(b), cnt)
            }
            Response::ReadHoldingRegisters(r) | Response::ReadInputRegisters(r) => {
                check_len(ReadData::Registers(r), cnt)
            }
            other => Err(TxError::Protocol(format!("unexpected answer {other:?}"))),
        });
        self.finish(unit, &data);
        data
    }

    /// One write transaction (FC 05, 06, 15 or 16) with unit `unit`, bounded by `timeout`.
    /// `Ok` means the device confirmed it: the answer echoes the address and the value (FC
    /// 05/06) or the count (FC 15/16) of the request; another echo is a protocol error.
    pub async fn write(
        &mut self,
        unit: u8,
        req: &WriteRequest,
        timeout: Duration,
    ) -> Result<(), TxError> {
        let addr = req.address;
        let request = match (&req.data, req.data.len()) {
            (WriteData::Coils(c), 1) => Request::WriteSingleCoil(addr, c[0]),
            (WriteData::Coils(c), _) => Request::WriteMultipleCoils(addr, Cow::Borrowed(c)),
            (WriteData::Registers(r), 1) => Request::WriteSingleRegister(addr, r[0]),
            (WriteData::Registers(r), _) => Request::WriteMultipleRegisters(addr, Cow::Borrowed(r)),
        };
        let expected = expected_echo(req);
        let answer = self.transact(unit, request, timeout).await;
        let result = answer.and_then(|r| {
            if r == expected {
                Ok(())
            } else {
                Err(TxError::Protocol(format!(
                    "the device confirmed {r:?} for the request {expected:?}"
                )))
            }
        });
        self.finish(unit, &result);
        self.counters
            .count_write(result.as_ref().err().map_or("ok", TxError::kind));
        result
    }

    /// Sends one request and waits (bounded) for its answer; every failure named.
    async fn transact(
        &mut self,
        unit: u8,
        request: Request<'_>,
        timeout: Duration,
    ) -> Result<Response, TxError> {
        self.ensure_connected().await?;
        self.drain_line().await;
        // Only a real wait: the timer rounds up to the next millisecond, which would cost up
        // to 1 ms per transaction on a link without a gap (TCP).
        let quiet_from = self.last_frame_end + self.gap;
        if quiet_from > Instant::now() {
            tokio::time::sleep_until(quiet_from).await;
        }
        let (Some(ctx), Some(link)) = (self.ctx.as_mut(), self.link.clone()) else {
            return Err(TxError::NotConnected("disconnected".into()));
        };
        link.begin_request();
        ctx.set_slave(Slave(unit));
        self.counters.transactions.inc();
        let outcome = tokio::time::timeout(timeout, ctx.call(request)).await;
        self.last_frame_end = Instant::now();
        let result = match outcome {
            Err(_) => Err(self.classify_silence(&link)),
            Ok(Ok(Ok(response))) => Ok(response),
            Ok(Ok(Err(code))) => Err(TxError::Exception(code)),
            Ok(Err(tokio_modbus::Error::Transport(e))) => {
                let named = TxError::from_io(&e, link.eof());
                match named {
                    // The RTU decoder gives up on noise with InvalidData: say what it saw.
                    TxError::BadFrame(_) if self.framing == Framing::Rtu => {
                        Err(diagnose_rtu(&link.rx_since_request()).unwrap_or(named))
                    }
                    other => Err(other),
                }
            }
            // pymodbus answers over-limit reads with function 0x80 instead of FC|0x80.
            Ok(Err(tokio_modbus::Error::Protocol(ProtocolError::FunctionCodeMismatch {
                result: Err(resp),
                ..
            }))) => Err(TxError::Exception(resp.exception)),
            Ok(Err(tokio_modbus::Error::Protocol(ProtocolError::HeaderMismatch {
                message,
                ..
            }))) => Err(TxError::Protocol(format!(
                "answer does not belong to the request ({message})"
            ))),
            Ok(Err(tokio_modbus::Error::Protocol(e))) => Err(TxError::Protocol(e.to_string())),
        };
        self.link_after = Some(link);
        result
    }

    /// Counts late answers and updates connection health after a transaction.
    fn finish<T>(&mut self, unit: u8, result: &Result<T, TxError>) {
        let Some(link) = self.link_after.take() else {
            return; // never sent (not connected)
        };
        let late = link.take_late();
        if late > 0 {
            self.counters.late_responses.inc_by(late);
        }
        self.account(unit, &link, result.as_ref().err());
    }

    /// Names a transaction that produced no answer in time: the stream ended, an RTU frame
    /// arrived damaged, or nothing came at all.
    fn classify_silence(&self, link: &Link) -> TxError {
        if link.ended() {
            return if link.eof() {
                TxError::Closed
            } else {
                TxError::Transport("the connection failed while waiting for the answer".into())
            };
        }
        if self.framing == Framing::Rtu {
            if let Some(e) = diagnose_rtu(&link.rx_since_request()) {
                return e;
            }
        }
        TxError::Timeout
    }

    /// Counters and connection health after a transaction.
    fn account(&mut self, unit: u8, link: &Link, err: Option<&TxError>) {
        let c = &self.counters;
        let bump = |counter: &prometheus::IntCounter| counter.inc();
        match err {
            None | Some(TxError::Exception(_)) => {
                if err.is_some() {
                    bump(&c.exceptions);
                }
                // The device answered: the connection is healthy.
                self.timeouts_in_row = 0;
                self.units_timed_out.clear();
                self.reconnect.reset();
            }
            Some(TxError::Timeout) => {
                bump(&c.timeouts);
                self.timeouts_in_row += 1;
                self.units_timed_out.insert(unit);
                self.line_dirty = self.framing == Framing::Rtu;
                if self.framing == Framing::Tcp {
                    if link.out_of_step() {
                        self.disconnect("timeout while the request was being written");
                    } else if self.timeouts_in_row >= SUSPECT_TIMEOUTS
                        && self.units.is_subset(&self.units_timed_out)
                    {
                        self.disconnect("no unit answers on this connection (half-open)");
                    }
                }
            }
            Some(e @ (TxError::Crc { .. } | TxError::BadFrame(_) | TxError::Protocol(_))) => {
                bump(match e {
                    TxError::Crc { .. } => &c.crc_errors,
                    TxError::BadFrame(_) => &c.bad_frames,
                    _ => &c.protocol_errors,
                });
                // Something arrived: the link is alive, but the line may hold leftovers.
                self.timeouts_in_row = 0;
                self.units_timed_out.clear();
                self.line_dirty = self.framing == Framing::Rtu;
                if self.framing == Framing::Tcp && link.out_of_step() {
                    self.disconnect("the stream is out of step");
                }
            }
            Some(TxError::Closed) => {
                bump(&c.connections_closed);
                self.disconnect("connection closed by device");
            }
            Some(TxError::Transport(e)) => {
                bump(&c.transport_errors);
                let why = format!("transport error: {e}");
                self.disconnect(&why);
            }
            Some(TxError::NotConnected(_)) => {}
        }
    }
}

/// The answer a device gives when it performed `req`.
fn expected_echo(req: &WriteRequest) -> Response {
    let addr = req.address;
    let n = req.data.len() as u16;
    match (&req.data, n) {
        (WriteData::Coils(c), 1) => Response::WriteSingleCoil(addr, c[0]),
        (WriteData::Coils(_), _) => Response::WriteMultipleCoils(addr, n),
        (WriteData::Registers(r), 1) => Response::WriteSingleRegister(addr, r[0]),
        (WriteData::Registers(_), _) => Response::WriteMultipleRegisters(addr, n),
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
#[path = "bus_tests.rs"]
mod tests;

/// Decodes one point out of a read's data (also the read-back of a command).
pub(super) fn decode_read(
    p: &Point,
    req: &ReadRequest,
    data: &ReadData,
) -> Result<Value, DecodeError> {
    let offset = usize::from(p.address.saturating_sub(req.address));
    let len = usize::from(p.len());
    match data {
        ReadData::Bits(bits) => match bits.get(offset) {
            Some(b) => Ok(Value::Bool(*b)),
            None => Err(DecodeError::Length {
                expected: offset + 1,
                got: bits.len(),
            }),
        },
        ReadData::Registers(regs) => match regs.get(offset..offset + len) {
            Some(slice) => decode_point(p.kind, p.order, p.scaling, slice),
            None => Err(DecodeError::Length {
                expected: offset + len,
                got: regs.len(),
            }),
        },
    }
}
