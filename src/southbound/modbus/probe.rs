//! The field tool behind `citygate probe`: read raw registers once and show them decoded in
//! every word order, so a technician can see which order gives 230 V instead of 1.1e-38
//! (the FLOAT32 confusion users keep reporting).

use super::bus::{Bus, Connector, Framing, ReadData, SerialConnector, TcpConnector, TxError};
use super::config::{Parity, SerialSettings, Table};
use super::decode::{decode_registers, PointType, Raw, WordOrder};
use super::plan::ReadRequest;
use super::timing::inter_frame_gap;
use crate::telemetry::ModbusMetrics;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

/// How long the probe waits for the device.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot use {url:?}: {why} (use tcp://HOST:PORT, rtu+tcp://HOST:PORT or rtu:///dev/ttyUSB0?baud=9600&parity=even)")]
    Url { url: String, why: String },
    #[error("cannot read {spec:?}: {why} (use TABLE:ADDRESS[:COUNT], e.g. holding:100:2 or input:0x46:2)")]
    Read { spec: String, why: String },
    #[error("the device did not answer: {0}")]
    Transaction(#[from] TxError),
}

/// Where to probe: connector, framing and inter-frame gap.
pub struct Target {
    pub connector: Arc<dyn Connector>,
    pub framing: Framing,
    pub gap: Duration,
}

/// Parses `tcp://HOST:PORT`, `rtu+tcp://HOST:PORT` or `rtu:///dev/X?baud=9600&parity=even&stop_bits=1`.
pub fn parse_url(url: &str) -> Result<Target, ProbeError> {
    let err = |why: &str| ProbeError::Url {
        url: url.to_string(),
        why: why.to_string(),
    };
    let host_ok = |h: &str| {
        h.rsplit_once(':')
            .is_some_and(|(a, p)| !a.is_empty() && p.parse::<u16>().is_ok())
    };
    if let Some(host) = url.strip_prefix("tcp://") {
        if !host_ok(host) {
            return Err(err("expected HOST:PORT"));
        }
        return Ok(Target {
            connector: Arc::new(TcpConnector(host.into())),
            framing: Framing::Tcp,
            gap: Duration::ZERO,
        });
    }
    if let Some(host) = url.strip_prefix("rtu+tcp://") {
        if !host_ok(host) {
            return Err(err("expected HOST:PORT"));
        }
        return Ok(Target {
            connector: Arc::new(TcpConnector(host.into())),
            framing: Framing::Rtu,
            gap: Duration::ZERO,
        });
    }
    if !url.starts_with("rtu://") {
        return Err(err("unknown scheme"));
    }
    parse_rtu(url).map(rtu_target)
}

/// The serial line settings of `rtu:///dev/X?baud=9600&parity=even&stop_bits=1` (defaults:
/// 9600 baud, even parity, 1 stop bit: the Modbus over Serial Line defaults).
pub fn parse_rtu(url: &str) -> Result<SerialSettings, ProbeError> {
    let err = |why: &str| ProbeError::Url {
        url: url.to_string(),
        why: why.to_string(),
    };
    let Some(rest) = url.strip_prefix("rtu://") else {
        return Err(err("expected rtu:///dev/…"));
    };
    let (port, query) = rest.split_once('?').unwrap_or((rest, ""));
    if !port.starts_with('/') {
        return Err(err("expected an absolute serial device path"));
    }
    let mut s = SerialSettings {
        port: port.into(),
        baud: 9600,
        parity: Parity::Even,
        stop_bits: 1,
        data_bits: 8,
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| err("query items are KEY=VALUE"))?;
        match k {
            "baud" => s.baud = v.parse().map_err(|_| err("baud is a number"))?,
            "parity" => {
                s.parity = match v {
                    "none" => Parity::None,
                    "even" => Parity::Even,
                    "odd" => Parity::Odd,
                    _ => return Err(err("parity is none, even or odd")),
                }
            }
            "stop_bits" => {
                s.stop_bits = v
                    .parse()
                    .ok()
                    .filter(|b| matches!(b, 1 | 2))
                    .ok_or_else(|| err("stop_bits is 1 or 2"))?
            }
            _ => return Err(err(&format!("unknown option {k:?}"))),
        }
    }
    if s.baud == 0 {
        return Err(err("baud must be positive"));
    }
    Ok(s)
}

/// A serial RTU target with the inter-frame gap of its baud rate.
pub fn rtu_target(settings: SerialSettings) -> Target {
    let gap = inter_frame_gap(settings.baud);
    Target {
        connector: Arc::new(SerialConnector(settings)),
        framing: Framing::Rtu,
        gap,
    }
}

/// Parses `TABLE:ADDRESS[:COUNT]`; address and count accept `0x` hex; count defaults to 2.
pub fn parse_read(spec: &str) -> Result<ReadRequest, ProbeError> {
    let err = |why: &str| ProbeError::Read {
        spec: spec.to_string(),
        why: why.to_string(),
    };
    let mut parts = spec.split(':');
    let table = match parts.next().unwrap_or("") {
        "coil" | "coils" => Table::Coil,
        "discrete" => Table::Discrete,
        "holding" => Table::Holding,
        "input" => Table::Input,
        _ => return Err(err("table is coil, discrete, holding or input")),
    };
    let num = |s: &str| -> Option<u16> {
        match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            Some(h) => u16::from_str_radix(h, 16).ok(),
            None => s.parse().ok(),
        }
    };
    let address = parts
        .next()
        .and_then(num)
        .ok_or_else(|| err("address is 0..=65535"))?;
    let count = match parts.next() {
        Some(c) => num(c).ok_or_else(|| err("count is a number"))?,
        None => 2,
    };
    if parts.next().is_some() {
        return Err(err("too many fields"));
    }
    let max = if table.is_bits() { 2000 } else { 125 };
    if count == 0 || count > max || u32::from(address) + u32::from(count) > 0x1_0000 {
        return Err(err(&format!(
            "count must be 1..={max} and stay below address 65536"
        )));
    }
    Ok(ReadRequest {
        table,
        address,
        count,
        points: Vec::new(),
    })
}

/// Reads once and renders the table.
pub async fn probe(url: &str, unit: u8, read: &str) -> Result<String, ProbeError> {
    let target = parse_url(url)?;
    let req = parse_read(read)?;
    let mut bus = Bus::new(
        Arc::clone(&target.connector),
        target.framing,
        target.gap,
        Arc::new(ModbusMetrics::detached()),
    );
    let data = bus.read(unit, &req, PROBE_TIMEOUT).await?;
    let mut out = format!(
        "{} unit {unit}: fc{:02} {} {}..={} ({} {})\n\n",
        target.connector.describe(),
        req.function_code(),
        req.table.name(),
        req.address,
        u32::from(req.address) + u32::from(req.count) - 1,
        req.count,
        if req.table.is_bits() {
            "bits"
        } else {
            "registers"
        },
    );
    out.push_str(&render(req.address, &data));
    Ok(out)
}

/// One cell; f32 values print in their own shortest form (123.456, not 123.45600128173828),
/// and a float far from a meter's range in scientific notation (`1.4e-40`, not forty digits of
/// zeros: the wrong word order usually looks like that).
fn raw_text(kind: PointType, r: Result<Raw, impl std::fmt::Display>) -> String {
    match r {
        Ok(Raw::Unsigned(u)) => u.to_string(),
        Ok(Raw::Signed(i)) => i.to_string(),
        Ok(Raw::Float(f)) if kind == PointType::F32 => float_text(f64::from(f as f32), f as f32),
        Ok(Raw::Float(f)) => float_text(f, f),
        Ok(Raw::Bool(b)) => b.to_string(),
        Ok(Raw::Text(s)) => format!("{s:?}"),
        Err(e) => format!("({e})"),
    }
}

/// `shortest` printed plainly when its magnitude is between 1e-4 and 1e9 (or zero), otherwise
/// in scientific notation.
fn float_text<T: std::fmt::Display + std::fmt::LowerExp>(magnitude: f64, shortest: T) -> String {
    let a = magnitude.abs();
    if a == 0.0 || !a.is_finite() || (1e-4..1e9).contains(&a) {
        format!("{shortest}")
    } else {
        format!("{shortest:e}")
    }
}

/// The table: raw registers with u16/i16 (as sent and byte-swapped), then every 32-bit (and
/// 64-bit, with 4+ registers) interpretation in all four orders.
pub fn render(address: u16, data: &ReadData) -> String {
    let mut out = String::new();
    let regs = match data {
        ReadData::Bits(bits) => {
            let _ = writeln!(out, "{:>6}  {:>5}", "addr", "value");
            for (k, b) in bits.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{:>6}  {:>5}",
                    u32::from(address) + k as u32,
                    u8::from(*b)
                );
            }
            return out;
        }
        ReadData::Registers(r) => r,
    };
    let _ = writeln!(
        out,
        "{:>6}  {:>6}  {:>6}  {:>7}  {:>6}  {:>7}",
        "addr", "hex", "u16", "i16", "u16 BA", "i16 BA"
    );
    for (k, r) in regs.iter().enumerate() {
        let _ = writeln!(
            out,
            "{:>6}  0x{r:04X}  {:>6}  {:>7}  {:>6}  {:>7}",
            u32::from(address) + k as u32,
            r,
            *r as i16,
            r.swap_bytes(),
            r.swap_bytes() as i16
        );
    }
    let wide = [
        (2usize, [PointType::U32, PointType::I32, PointType::F32]),
        (4, [PointType::U64, PointType::I64, PointType::F64]),
    ];
    for (width, kinds) in wide {
        if regs.len() < width {
            continue;
        }
        let _ = writeln!(out, "\n{}-bit values", width * 16);
        let _ = writeln!(
            out,
            "{:>6}  {:<5}  {:>20}  {:>20}  {:>24}",
            "from", "order", kinds[0], kinds[1], kinds[2]
        );
        for start in (0..=regs.len() - width).step_by(width).take(8) {
            let slice = &regs[start..start + width];
            for order in WordOrder::ALL {
                let cols: Vec<String> = kinds
                    .iter()
                    .map(|k| raw_text(*k, decode_registers(*k, order, slice)))
                    .collect();
                let _ = writeln!(
                    out,
                    "{:>6}  {:<5}  {:>20}  {:>20}  {:>24}",
                    u32::from(address) + start as u32,
                    order.to_string(),
                    cols[0],
                    cols[1],
                    cols[2]
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_readably() {
        assert_eq!(float_text(230.1, 230.1f32), "230.1");
        assert_eq!(float_text(0.0, 0.0f32), "0");
        assert_eq!(float_text(1.4e-40, 1.4e-40f32), "1.4e-40");
        assert_eq!(float_text(-4.2e27, -4.2e27f64), "-4.2e27");
        assert_eq!(float_text(123456.7, 123456.7f64), "123456.7");
    }

    #[test]
    fn urls_and_read_specs() {
        assert_eq!(
            parse_url("tcp://127.0.0.1:502").unwrap().framing,
            Framing::Tcp
        );
        assert_eq!(
            parse_url("rtu+tcp://gw:4001").unwrap().framing,
            Framing::Rtu
        );
        let t = parse_url("rtu:///dev/ttyUSB0?baud=9600&parity=none").unwrap();
        assert_eq!(
            (t.framing, t.connector.describe()),
            (Framing::Rtu, "/dev/ttyUSB0".to_string())
        );
        assert_eq!(t.gap, inter_frame_gap(9600));
        for bad in [
            "udp://x:1",
            "tcp://nohost",
            "rtu://ttyUSB0",
            "rtu:///dev/x?baud=fast",
            "rtu:///dev/x?speed=1",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
        let r = parse_read("holding:100:2").unwrap();
        assert_eq!((r.table, r.address, r.count), (Table::Holding, 100, 2));
        let r = parse_read("input:0x46").unwrap();
        assert_eq!((r.table, r.address, r.count), (Table::Input, 0x46, 2));
        for bad in [
            "holding",
            "register:1",
            "holding:1:0",
            "holding:1:126",
            "coil:65535:2",
            "input:1:2:3",
        ] {
            assert!(parse_read(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_table_shows_every_order() {
        let out = render(100, &ReadData::Registers(vec![0x42F6, 0xE979]));
        let abcd = out.lines().find(|l| l.contains(" ABCD ")).unwrap();
        assert!(abcd.contains("123.456"), "{out}");
        assert!(abcd.contains("1123477881"), "{out}"); // 0x42F6E979 as u32
        let cdab = out.lines().find(|l| l.contains(" CDAB ")).unwrap();
        assert!(cdab.contains(&format!("{}", 0xE97942F6u32)), "{out}");
        assert!(out.contains("0x42F6") && out.contains("17142"), "{out}");
        assert!(!out.contains("64-bit"));
        let out = render(
            0,
            &ReadData::Registers(vec![0x405E, 0xDD2F, 0x1A9F, 0xBE77]),
        );
        assert!(
            out.lines()
                .any(|l| l.contains(" ABCD ") && l.contains("123.456")),
            "{out}"
        );
        let bits = render(7, &ReadData::Bits(vec![true, false]));
        assert!(
            bits.contains("     7      1") && bits.contains("     8      0"),
            "{bits}"
        );
    }
}
