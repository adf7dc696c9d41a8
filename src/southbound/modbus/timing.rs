//! Bus time: how long a read occupies the line, and `citygate plan` output.
//!
//! Serial (Modbus over Serial Line V1.02 §2.5.1.1): a character is 11 bits (start, 8 data,
//! parity or second stop, stop); frames are separated by at least 3.5 character times, fixed
//! at 1.75 ms above 19 200 baud. A read costs its request and response bytes plus one gap
//! after each frame. The device's own processing time is not known and not included, so the
//! serial figure is a lower bound. TCP costs one configured round trip per read.

use super::config::{DeviceConfig, Link, ModbusConfig};
use super::plan::{plan_device, IntervalPlan, Learned, Limits, ReadRequest};
use super::profile::{resolve_device, Point};
use std::fmt::Write as _;
use std::time::Duration;

/// Bits per serial character, as the spec counts them.
pub const BITS_PER_CHAR: u32 = 11;

/// What a transaction costs on this kind of link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusCost {
    Serial { baud: u32 },
    Network { rtt: Duration },
}

impl BusCost {
    pub fn for_link(link: &Link) -> BusCost {
        match link {
            Link::Rtu(s) => BusCost::Serial { baud: s.baud },
            Link::Tcp { rtt, .. } | Link::RtuOverTcp { rtt, .. } => BusCost::Network { rtt: *rtt },
        }
    }
}

/// One character on the wire.
pub fn char_time(baud: u32) -> Duration {
    Duration::from_nanos(u64::from(BITS_PER_CHAR) * 1_000_000_000 / u64::from(baud.max(1)))
}

/// Silence that ends a frame (t3.5).
pub fn inter_frame_gap(baud: u32) -> Duration {
    if baud > 19_200 {
        Duration::from_micros(1750)
    } else {
        Duration::from_nanos(u64::from(BITS_PER_CHAR) * 3_500_000_000 / u64::from(baud.max(1)))
    }
}

/// Response data bytes of a read.
fn data_bytes(req: &ReadRequest) -> u32 {
    if req.table.is_bits() {
        u32::from(req.count).div_ceil(8)
    } else {
        u32::from(req.count) * 2
    }
}

/// Bytes of an RTU read request (unit, fc, address, quantity, CRC) and its response
/// (unit, fc, byte count, data, CRC).
pub fn rtu_frame_bytes(req: &ReadRequest) -> (u32, u32) {
    (8, 5 + data_bytes(req))
}

/// Estimated bus time of one read.
pub fn request_time(cost: BusCost, req: &ReadRequest) -> Duration {
    match cost {
        BusCost::Serial { baud } => {
            let (q, r) = rtu_frame_bytes(req);
            char_time(baud) * (q + r) + inter_frame_gap(baud) * 2
        }
        BusCost::Network { rtt } => rtt,
    }
}

/// Estimated bus time of a list of reads.
pub fn requests_time(cost: BusCost, reqs: &[ReadRequest]) -> Duration {
    reqs.iter().map(|r| request_time(cost, r)).sum()
}

/// A device's points and plan, as `explain` and validation need them.
pub struct DevicePlan {
    pub id: String,
    pub unit: u8,
    pub points: Vec<Point>,
    pub plans: Vec<IntervalPlan>,
}

/// Plans every device whose points resolve (others are reported by validation).
pub fn plan_all(devices: &[DeviceConfig]) -> Vec<DevicePlan> {
    devices
        .iter()
        .filter_map(|d| {
            let points = resolve_device(d).ok()?;
            let limits = Limits {
                max_registers: d.max_registers,
                max_bits: d.max_bits,
                max_gap: d.max_gap,
            };
            let plans = plan_device(&points, &limits, &Learned::default());
            Some(DevicePlan {
                id: d.id.clone(),
                unit: d.unit,
                points,
                plans,
            })
        })
        .collect()
}

/// Share of the bus the plans need: Σ (bus time of an interval's reads / interval).
/// Above 1.0 the bus cannot keep up.
pub fn utilisation(cost: BusCost, devices: &[DevicePlan]) -> f64 {
    devices
        .iter()
        .flat_map(|d| d.plans.iter())
        .map(|p| {
            requests_time(cost, &p.requests).as_secs_f64() / p.interval.as_secs_f64().max(1e-9)
        })
        .sum()
}

/// Renders each device's reads per cycle and the bus time budget (`citygate plan -c FILE`).
pub fn explain(config: &ModbusConfig) -> String {
    let link = config.link();
    let cost = BusCost::for_link(&link);
    let mut out = String::new();
    let _ = match &link {
        Link::Tcp { host, max_connections, rtt } => writeln!(
            out,
            "Modbus/TCP {host}, {max_connections} connection(s), {} per read (rtt_estimate)",
            humantime::format_duration(*rtt)
        ),
        Link::RtuOverTcp { host, rtt } => writeln!(
            out,
            "RTU over TCP {host}, {} per read (rtt_estimate)",
            humantime::format_duration(*rtt)
        ),
        Link::Rtu(s) => writeln!(
            out,
            "RTU {} at {} baud: {} bits/char, char {:.3} ms, gap t3.5 {:.3} ms (device response time not included)",
            s.port,
            s.baud,
            BITS_PER_CHAR,
            char_time(s.baud).as_secs_f64() * 1e3,
            inter_frame_gap(s.baud).as_secs_f64() * 1e3
        ),
    };
    let devices = plan_all(config.devices());
    for d in &devices {
        let _ = writeln!(
            out,
            "\ndevice {} (unit {}), {} points",
            d.id,
            d.unit,
            d.points.len()
        );
        for p in &d.plans {
            let t = requests_time(cost, &p.requests);
            let _ = writeln!(
                out,
                "  every {}: {} read(s), est. bus time {:.1} ms{}",
                humantime::format_duration(p.interval),
                p.requests.len(),
                t.as_secs_f64() * 1e3,
                if t > p.interval {
                    "  WARNING: longer than the interval"
                } else {
                    ""
                }
            );
            for r in &p.requests {
                let names: Vec<&str> = r
                    .points
                    .iter()
                    .filter_map(|i| d.points.get(*i))
                    .map(|p| p.name.as_str())
                    .collect();
                let _ = writeln!(
                    out,
                    "    fc{:02} {:<8} addr {:>5} (0x{:04X}) count {:>4}  {:>7.1} ms  {}",
                    r.function_code(),
                    r.table.name(),
                    r.address,
                    r.address,
                    r.count,
                    request_time(cost, r).as_secs_f64() * 1e3,
                    names.join(", ")
                );
            }
        }
    }
    let u = utilisation(cost, &devices);
    let connections = match link {
        Link::Tcp {
            max_connections, ..
        } => f64::from(max_connections.max(1)),
        _ => 1.0,
    };
    let _ = writeln!(
        out,
        "\nbus utilisation {:.1} %{}",
        u * 100.0 / connections,
        if u / connections > 1.0 {
            "  WARNING: the bus cannot keep up with these poll intervals"
        } else {
            ""
        }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::southbound::modbus::config::Table;

    const RTU_VECTORS: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/modbus_rtu.json"
    ));

    #[test]
    fn timing_table_matches_the_vectors() {
        let doc: serde_json::Value = serde_json::from_str(RTU_VECTORS).unwrap();
        let table = doc["timing"]["table"].as_array().unwrap();
        assert_eq!(table.len(), 8);
        for row in table {
            let baud = row["baud"].as_u64().unwrap() as u32;
            let char_us = char_time(baud).as_secs_f64() * 1e6;
            let t35_us = inter_frame_gap(baud).as_secs_f64() * 1e6;
            assert!(
                (char_us - row["char_time_us_11bit"].as_f64().unwrap()).abs() < 0.1,
                "{baud}"
            );
            assert!(
                (t35_us - row["t3_5_us"].as_f64().unwrap()).abs() < 0.1,
                "{baud}"
            );
        }
    }

    #[test]
    fn a_read_of_two_registers_at_9600() {
        let req = ReadRequest {
            table: Table::Holding,
            address: 0,
            count: 2,
            points: vec![0],
        };
        // 8 + 9 bytes * 1.1458 ms + 2 * 4.0104 ms = 27.5 ms
        let t = request_time(BusCost::Serial { baud: 9600 }, &req);
        assert!((t.as_secs_f64() * 1e3 - 27.5).abs() < 0.05, "{t:?}");
        let coils = ReadRequest {
            table: Table::Coil,
            address: 0,
            count: 9,
            points: vec![0],
        };
        assert_eq!(rtu_frame_bytes(&coils), (8, 7));
        let rtt = Duration::from_millis(7);
        assert_eq!(request_time(BusCost::Network { rtt }, &req), rtt);
    }

    #[test]
    fn explain_lists_every_read_and_warns_when_the_bus_is_too_slow() {
        let text = |baud: u32, interval: &str| {
            format!(
                "type = \"modbus_rtu\"\nport = \"/dev/ttyUSB0\"\nbaud = {baud}\n[[devices]]\nid = \"m1\"\nunit = 1\nprofile = \"eastron_sdm630\"\npoll_interval = \"{interval}\"\n"
            )
        };
        let ok: ModbusConfig = toml::from_str(&text(9600, "5s")).unwrap();
        let out = explain(&ok);
        assert_eq!(out.matches("fc04 input").count(), 6, "{out}");
        assert!(
            out.contains("addr    70 (0x0046)") || out.contains("frequency"),
            "{out}"
        );
        assert!(!out.contains("WARNING"), "{out}");
        let slow: ModbusConfig = toml::from_str(&text(1200, "1s")).unwrap();
        assert_eq!(
            explain(&slow).matches("WARNING").count(),
            2,
            "{}",
            explain(&slow)
        );
    }
}
