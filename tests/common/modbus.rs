//! In-process Modbus devices for the integration tests (tokio-modbus servers on 127.0.0.1:0
//! and on a pseudo-terminal pair), plus helpers that run the adapter and collect records.
#![allow(dead_code)]

use citygate::record::Record;
use citygate::southbound::modbus::bus::{Connector, Stream};
use citygate::southbound::modbus::{ModbusAdapter, ModbusConfig};
use citygate::southbound::Adapter;
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_modbus::prelude::*;
use tokio_modbus::server::tcp::{accept_tcp_connection, Server};
use tokio_util::sync::CancellationToken;

/// One simulated unit: register maps; an address missing from a map answers exception 02.
#[derive(Debug, Clone, Default)]
pub struct Unit {
    pub holding: BTreeMap<u16, u16>,
    pub input: BTreeMap<u16, u16>,
    pub coils: BTreeMap<u16, bool>,
    pub discrete: BTreeMap<u16, bool>,
    /// Never answers (a dead or misconfigured device).
    pub silent: bool,
    /// Leaves every n-th request to this unit unanswered (0: answers all), like a meter whose
    /// firmware drops requests under load.
    pub drop_every: u32,
    /// Largest read the unit accepts; longer ones are refused with exception 03 (illegal
    /// data value), as a strict meter does. `None` = the Modbus maximum.
    pub max_read: Option<u16>,
    /// Performs writes but never answers them (the answer is lost on the way back).
    pub silent_writes: bool,
    /// Stores at most this value in a holding register (a device that clamps set points).
    pub clamp_holding: Option<u16>,
}

impl Unit {
    pub fn put_f32(map: &mut BTreeMap<u16, u16>, addr: u16, v: f32) {
        let b = v.to_bits();
        map.insert(addr, (b >> 16) as u16);
        map.insert(addr + 1, b as u16);
    }

    /// Zeros for every address in `range` not yet set (devices that answer holes).
    pub fn fill(map: &mut BTreeMap<u16, u16>, range: std::ops::Range<u16>) {
        for a in range {
            map.entry(a).or_insert(0);
        }
    }
}

/// Writes performed per (unit, table, address).
pub type WriteCounts = BTreeMap<(u8, &'static str, u16), u32>;

/// A request the server saw: (unit, function code, address, count).
pub type Seen = (u8, u8, u16, u16);

/// The simulated bus: units by id and a log of every request.
#[derive(Clone, Default)]
pub struct Sim {
    pub units: Arc<Mutex<HashMap<u8, Unit>>>,
    pub log: Arc<Mutex<Vec<Seen>>>,
    /// TCP connections accepted.
    pub connections: Arc<std::sync::atomic::AtomicUsize>,
    /// Requests seen per unit, and which of them were left unanswered (by request number,
    /// counting from 1).
    pub per_unit: Arc<Mutex<HashMap<u8, u32>>>,
    pub dropped: Arc<Mutex<Vec<(u8, u32)>>>,
    /// Writes performed, per (unit, table, address): a register or coil written by one
    /// FC 16/15 request counts once at each address it covers.
    pub writes: Arc<Mutex<WriteCounts>>,
}

impl Sim {
    pub fn with(units: impl IntoIterator<Item = (u8, Unit)>) -> Self {
        let sim = Sim::default();
        sim.units.lock().unwrap().extend(units);
        sim
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }

    /// Writes performed on `unit`, all addresses together.
    pub fn write_count(&self, unit: u8) -> u32 {
        self.writes
            .lock()
            .unwrap()
            .iter()
            .filter(|((u, _, _), _)| *u == unit)
            .map(|(_, n)| n)
            .sum()
    }

    /// Writes performed at one address (`table` is "coil" or "holding").
    pub fn writes_at(&self, unit: u8, table: &'static str, address: u16) -> u32 {
        self.writes
            .lock()
            .unwrap()
            .get(&(unit, table, address))
            .copied()
            .unwrap_or(0)
    }

    /// FC 05/06/15/16: every address must exist (else exception 02), then all are written.
    fn write(&self, slave: u8, req: &Request<'_>) -> Result<Option<Response>, ExceptionCode> {
        let (fc, addr, cnt) = match req {
            Request::WriteSingleCoil(a, _) => (5, *a, 1),
            Request::WriteSingleRegister(a, _) => (6, *a, 1),
            Request::WriteMultipleCoils(a, c) => (15, *a, c.len() as u16),
            Request::WriteMultipleRegisters(a, r) => (16, *a, r.len() as u16),
            _ => return Err(ExceptionCode::IllegalFunction),
        };
        self.log.lock().unwrap().push((slave, fc, addr, cnt));
        let mut units = self.units.lock().unwrap();
        let Some(unit) = units.get_mut(&slave) else {
            return Ok(None);
        };
        if unit.silent {
            return Ok(None);
        }
        let addrs = || (0..cnt).map(move |k| addr.checked_add(k));
        let coils = matches!(fc, 5 | 15);
        let known = addrs().all(|a| {
            a.is_some_and(|a| {
                if coils {
                    unit.coils.contains_key(&a)
                } else {
                    unit.holding.contains_key(&a)
                }
            })
        });
        if !known {
            return Err(ExceptionCode::IllegalDataAddress);
        }
        let table = if coils { "coil" } else { "holding" };
        let response = match req {
            Request::WriteSingleCoil(a, v) => {
                unit.coils.insert(*a, *v);
                Response::WriteSingleCoil(*a, *v)
            }
            Request::WriteMultipleCoils(a, vs) => {
                for (k, v) in vs.iter().enumerate() {
                    unit.coils.insert(a + k as u16, *v);
                }
                Response::WriteMultipleCoils(*a, cnt)
            }
            Request::WriteSingleRegister(a, v) => {
                unit.holding
                    .insert(*a, unit.clamp_holding.map_or(*v, |c| (*v).min(c)));
                Response::WriteSingleRegister(*a, *v)
            }
            Request::WriteMultipleRegisters(a, vs) => {
                for (k, v) in vs.iter().enumerate() {
                    let v = unit.clamp_holding.map_or(*v, |c| (*v).min(c));
                    unit.holding.insert(a + k as u16, v);
                }
                Response::WriteMultipleRegisters(*a, cnt)
            }
            _ => return Err(ExceptionCode::IllegalFunction),
        };
        let mut writes = self.writes.lock().unwrap();
        for a in addrs().flatten() {
            *writes.entry((slave, table, a)).or_default() += 1;
        }
        if unit.silent_writes {
            return Ok(None);
        }
        Ok(Some(response))
    }

    fn answer(&self, slave: u8, req: &Request<'_>) -> Result<Option<Response>, ExceptionCode> {
        let (fc, addr, cnt) = match req {
            Request::ReadCoils(a, c) => (1, *a, *c),
            Request::ReadDiscreteInputs(a, c) => (2, *a, *c),
            Request::ReadHoldingRegisters(a, c) => (3, *a, *c),
            Request::ReadInputRegisters(a, c) => (4, *a, *c),
            _ => return self.write(slave, req),
        };
        let units = self.units.lock().unwrap();
        self.log.lock().unwrap().push((slave, fc, addr, cnt));
        let Some(unit) = units.get(&slave) else {
            return Ok(None); // nobody at this address on the bus
        };
        if unit.silent {
            return Ok(None);
        }
        if unit.drop_every > 0 {
            let mut per_unit = self.per_unit.lock().unwrap();
            let n = per_unit.entry(slave).or_default();
            *n += 1;
            if *n % unit.drop_every == 0 {
                self.dropped.lock().unwrap().push((slave, *n));
                return Ok(None);
            }
        }
        if unit.max_read.is_some_and(|m| cnt > m) {
            return Err(ExceptionCode::IllegalDataValue);
        }
        let range = u32::from(addr)..u32::from(addr) + u32::from(cnt);
        let regs = |m: &BTreeMap<u16, u16>| -> Result<Vec<u16>, ExceptionCode> {
            range
                .clone()
                .map(|a| {
                    u16::try_from(a)
                        .ok()
                        .and_then(|a| m.get(&a).copied())
                        .ok_or(ExceptionCode::IllegalDataAddress)
                })
                .collect()
        };
        let bits = |m: &BTreeMap<u16, bool>| -> Result<Vec<bool>, ExceptionCode> {
            range
                .clone()
                .map(|a| {
                    u16::try_from(a)
                        .ok()
                        .and_then(|a| m.get(&a).copied())
                        .ok_or(ExceptionCode::IllegalDataAddress)
                })
                .collect()
        };
        Ok(Some(match fc {
            1 => Response::ReadCoils(bits(&unit.coils)?),
            2 => Response::ReadDiscreteInputs(bits(&unit.discrete)?),
            3 => Response::ReadHoldingRegisters(regs(&unit.holding)?),
            _ => Response::ReadInputRegisters(regs(&unit.input)?),
        }))
    }
}

impl tokio_modbus::server::Service for Sim {
    type Request = SlaveRequest<'static>;
    type Response = Option<Response>;
    type Exception = ExceptionCode;
    type Future = std::future::Ready<Result<Self::Response, Self::Exception>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        std::future::ready(self.answer(req.slave, &req.request))
    }
}

/// Serves `sim` over Modbus/TCP on `addr` (use port 0 for a fresh one). Aborting the handle
/// closes the listener and every connection, like a device losing power.
pub async fn start_tcp(sim: Sim, addr: SocketAddr) -> (SocketAddr, JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let local = listener.local_addr().unwrap();
    let server = Server::new(listener);
    let handle = tokio::spawn(async move {
        let on_connected = move |stream, socket_addr| {
            let sim = sim.clone();
            sim.connections
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move { accept_tcp_connection(stream, socket_addr, move |_| Ok(Some(sim.clone()))) }
        };
        let _ = server.serve(&on_connected, |_err| {}).await;
    });
    (local, handle)
}

/// Hands out one pre-opened stream (one end of a pty pair), then refuses.
pub struct OnceConnector(pub Mutex<Option<Box<dyn Stream>>>);

#[async_trait::async_trait]
impl Connector for OnceConnector {
    async fn connect(&self) -> io::Result<Box<dyn Stream>> {
        self.0
            .lock()
            .unwrap()
            .take()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "pty already used"))
    }
    fn describe(&self) -> String {
        "pty".into()
    }
}

/// Serves `sim` as an RTU bus on one end of a pseudo-terminal pair; returns a connector for
/// the other end.
pub fn start_rtu(sim: Sim) -> (Arc<OnceConnector>, JoinHandle<()>) {
    let (server_end, client_end) = tokio_serial::SerialStream::pair().expect("pty pair");
    let server = tokio_modbus::server::rtu::Server::new(server_end);
    let handle = tokio::spawn(async move {
        let _ = server.serve_forever(sim).await;
    });
    (
        Arc::new(OnceConnector(Mutex::new(Some(Box::new(client_end))))),
        handle,
    )
}

/// CRC-16/MODBUS: citygate's own (the link checks answers with it), checked against the spec's
/// vectors in `tests/modbus_rtu_over_tcp.rs` and shared with tokio-modbus by nothing.
pub use citygate::southbound::modbus::error::crc16;

/// The RTU frame of `sim`'s answer to an 8-byte read request (FC 01..04), `None` when the
/// unit stays silent.
pub fn rtu_answer(sim: &Sim, req: &[u8; 8]) -> Option<Vec<u8>> {
    let (unit, fc) = (req[0], req[1]);
    let addr = u16::from_be_bytes([req[2], req[3]]);
    let cnt = u16::from_be_bytes([req[4], req[5]]);
    let request = match fc {
        1 => Request::ReadCoils(addr, cnt),
        2 => Request::ReadDiscreteInputs(addr, cnt),
        3 => Request::ReadHoldingRegisters(addr, cnt),
        _ => Request::ReadInputRegisters(addr, cnt),
    };
    let mut frame = vec![unit];
    match sim.answer(unit, &request) {
        Ok(None) => return None,
        Err(code) => frame.extend_from_slice(&[fc | 0x80, u8::from(code)]),
        Ok(Some(Response::ReadCoils(bits) | Response::ReadDiscreteInputs(bits))) => {
            let mut bytes = vec![0u8; bits.len().div_ceil(8)];
            for (k, b) in bits.iter().enumerate() {
                if *b {
                    bytes[k / 8] |= 1 << (k % 8);
                }
            }
            frame.extend_from_slice(&[fc, bytes.len() as u8]);
            frame.extend_from_slice(&bytes);
        }
        Ok(Some(Response::ReadHoldingRegisters(regs) | Response::ReadInputRegisters(regs))) => {
            frame.extend_from_slice(&[fc, (regs.len() * 2) as u8]);
            for r in regs {
                frame.extend_from_slice(&r.to_be_bytes());
            }
        }
        Ok(Some(_)) => frame.extend_from_slice(&[fc | 0x80, 0x01]),
    }
    let crc = crc16(&frame).to_le_bytes();
    frame.extend_from_slice(&crc);
    Some(frame)
}

/// Serves `sim` as an RTU bus on a pseudo-terminal pair like [`start_rtu`], with a
/// hand-written responder whose `n`-th answer (counting from 1) is sent with a damaged CRC
/// when `damage(n)` says so. The answers damaged are logged in the returned list.
pub fn start_rtu_damaging(
    sim: Sim,
    damage: impl Fn(u32) -> bool + Send + 'static,
) -> (Arc<OnceConnector>, Arc<Mutex<Vec<u32>>>, JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut server_end, client_end) = tokio_serial::SerialStream::pair().expect("pty pair");
    let damaged = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&damaged);
    let handle = tokio::spawn(async move {
        let mut req = [0u8; 8];
        let mut n = 0u32;
        while server_end.read_exact(&mut req).await.is_ok() {
            if crc16(&req[..6]).to_le_bytes() != [req[6], req[7]] {
                continue; // a device ignores a request it cannot trust
            }
            let Some(mut frame) = rtu_answer(&sim, &req) else {
                continue;
            };
            n += 1;
            if damage(n) {
                let last = frame.len() - 1;
                frame[last] ^= 0xA5;
                log.lock().unwrap().push(n);
            }
            if server_end.write_all(&frame).await.is_err() {
                break;
            }
        }
    });
    (
        Arc::new(OnceConnector(Mutex::new(Some(Box::new(client_end))))),
        damaged,
        handle,
    )
}

/// A running adapter and what it committed.
pub struct Running {
    pub sink: super::Sink,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<Result<(), citygate::southbound::AdapterError>>,
}

impl Running {
    pub async fn records(&self) -> Vec<Record> {
        self.sink.records().await
    }

    pub async fn of(&self, device: &str) -> Vec<Record> {
        self.records()
            .await
            .into_iter()
            .filter(|r| r.device == device)
            .collect()
    }

    /// Waits (bounded) until `pred` holds on the committed records.
    pub async fn wait_for(&self, limit: Duration, pred: impl Fn(&[Record]) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline {
            if pred(&self.records().await) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        pred(&self.records().await)
    }

    pub async fn stop(self) -> Vec<Record> {
        self.shutdown.cancel();
        let r = tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("adapter stops in time");
        r.expect("task joined").expect("adapter ran without error");
        self.sink.records().await
    }
}

pub fn run(mut adapter: ModbusAdapter) -> Running {
    let sink = super::Sink::new();
    let shutdown = CancellationToken::new();
    let (o, s) = (sink.sender(), shutdown.clone());
    let task = tokio::spawn(async move { adapter.run(&o, &s).await });
    Running {
        sink,
        shutdown,
        task,
    }
}

pub fn config(text: &str) -> ModbusConfig {
    toml::from_str(text).unwrap_or_else(|e| panic!("{e}"))
}

/// A unit answering the SDM630 map: distinct float per point, holes answered with 0.
pub fn sdm630_unit() -> (Unit, Vec<(String, f32)>) {
    let points = citygate::southbound::modbus::profile::resolve_device(
        &toml::from_str("id = \"x\"\nunit = 1\nprofile = \"eastron_sdm630\"").unwrap(),
    )
    .unwrap();
    let mut unit = Unit::default();
    let mut expected = Vec::new();
    for (n, p) in points.iter().enumerate() {
        let v = 200.0 + n as f32 * 1.25;
        Unit::put_f32(&mut unit.input, p.address, v);
        expected.push((p.name.clone(), v));
    }
    Unit::fill(&mut unit.input, 0..0x200);
    (unit, expected)
}
