//! Pure checks of a Modbus adapter config, all issues at once, plus the resources it claims.
//!
//! Profiles are looked up by [`super::profile::load_profiles`] beforehand (or found among the
//! built-in ones), so nothing here touches the file system or the network.

use super::config::{
    DeviceConfig, Link, ModbusConfig, ModbusRtuConfig, ModbusRtuOverTcpConfig, ModbusTcpConfig,
};
use super::decode::PointType;
use super::device_limits::device_warnings;
use super::profile::{point_configs, resolve_device, Point};
use super::report_policy::report_issues;
use super::timing::{plan_all, requests_time, utilisation, BusCost};
use super::writable::{has_writable, write_issues};
use crate::config::device_id::device_id_issue;
use crate::config::issue::{ConfigIssue, Resource};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

impl ModbusConfig {
    /// Every problem in this adapter's table; paths are relative to it.
    pub fn validate(&self) -> Vec<ConfigIssue> {
        validate_parts(&self.link(), self.devices())
    }

    /// Allowed but worth a look: polls that cannot keep up with the bus (`citygate check`
    /// prints them as warnings; `citygate plan` explains them).
    pub fn warnings(&self) -> Vec<ConfigIssue> {
        let link = self.link();
        let mut out = bus_time_issues(&link, self.devices());
        out.extend(command_warnings(self));
        for (n, d) in self.devices().iter().enumerate() {
            out.extend(device_warnings(&link, d).into_iter().map(|mut i| {
                i.path = format!("devices.{n}.{}", i.path);
                i
            }));
        }
        out
    }

    /// Things only this adapter may own: the serial port of an RTU adapter.
    pub fn resources(&self) -> Vec<Resource> {
        match self.link() {
            Link::Rtu(s) => vec![Resource::SerialPort(s.port)],
            Link::Tcp { .. } | Link::RtuOverTcp { .. } => Vec::new(),
        }
    }
}

macro_rules! delegate {
    ($t:ty) => {
        impl $t {
            /// See [`ModbusConfig::validate`].
            pub fn validate(&self) -> Vec<ConfigIssue> {
                ModbusConfig::from(self.clone()).validate()
            }
            /// See [`ModbusConfig::warnings`].
            pub fn warnings(&self) -> Vec<ConfigIssue> {
                ModbusConfig::from(self.clone()).warnings()
            }
            /// See [`ModbusConfig::resources`].
            pub fn resources(&self) -> Vec<Resource> {
                ModbusConfig::from(self.clone()).resources()
            }
        }
    };
}
delegate!(ModbusTcpConfig);
delegate!(ModbusRtuConfig);
delegate!(ModbusRtuOverTcpConfig);

fn validate_parts(link: &Link, devices: &[DeviceConfig]) -> Vec<ConfigIssue> {
    let mut issues = validate_link(link);
    if devices.is_empty() {
        issues.push(
            ConfigIssue::new("devices", "The adapter has no devices.").hint(
                "add a [[southbound.<id>.devices]] table with id, unit and profile or points",
            ),
        );
    }
    let serial = matches!(link, Link::Rtu(_) | Link::RtuOverTcp { .. });
    let mut ids = HashSet::new();
    let mut units = HashMap::new();
    for (n, d) in devices.iter().enumerate() {
        let at = |field: &str| format!("devices.{n}.{field}");
        issues.extend(device_id_issue(at("id"), &d.id));
        if !ids.insert(d.id.as_str()) {
            issues.push(ConfigIssue::new(
                at("id"),
                format!("Device id {:?} is used twice.", d.id),
            ));
        }
        if serial && !(1..=247).contains(&d.unit) {
            issues.push(
                ConfigIssue::new(
                    at("unit"),
                    format!("Unit id {} cannot be polled on a serial bus.", d.unit),
                )
                .hint("RTU unit ids are 1..=247 (0 is broadcast)"),
            );
        }
        if let Some(other) = units.insert(d.unit, n) {
            issues.push(
                ConfigIssue::new(
                    at("unit"),
                    format!("Unit id {} is also used by devices.{other}.", d.unit),
                )
                .hint("each device on one bus needs its own unit id"),
            );
        }
        issues.extend(validate_device(d).into_iter().map(|mut i| {
            i.path = if i.path.is_empty() {
                format!("devices.{n}")
            } else {
                at(&i.path)
            };
            i
        }));
    }
    issues
}

fn validate_link(link: &Link) -> Vec<ConfigIssue> {
    let mut issues = Vec::new();
    let check_host = |host: &str, issues: &mut Vec<ConfigIssue>| {
        let ok = host
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
        if !ok {
            issues.push(
                ConfigIssue::new("host", format!("{host:?} is not HOST:PORT."))
                    .hint("e.g. \"192.0.2.10:502\""),
            );
        }
    };
    match link {
        Link::Tcp {
            host,
            max_connections,
            ..
        } => {
            check_host(host, &mut issues);
            if *max_connections == 0 {
                issues.push(
                    ConfigIssue::new("max_connections", "max_connections must be at least 1.")
                        .hint("most devices accept only 1 or 2 connections; the default is 1"),
                );
            }
        }
        Link::RtuOverTcp { host, .. } => check_host(host, &mut issues),
        Link::Rtu(s) => {
            if s.port.trim().is_empty() {
                issues.push(
                    ConfigIssue::new("port", "The serial port path is empty.")
                        .hint("e.g. \"/dev/ttyUSB0\""),
                );
            }
            if !(300..=1_000_000).contains(&s.baud) {
                issues.push(
                    ConfigIssue::new("baud", format!("Baud rate {} is out of range.", s.baud))
                        .hint("common rates: 9600, 19200, 38400, 115200"),
                );
            }
            if !matches!(s.stop_bits, 1 | 2) {
                issues.push(
                    ConfigIssue::new(
                        "stop_bits",
                        format!("stop_bits = {} is not possible.", s.stop_bits),
                    )
                    .hint("use 1 or 2"),
                );
            }
            if s.data_bits != 8 {
                issues.push(
                    ConfigIssue::new(
                        "data_bits",
                        format!("Modbus RTU needs 8 data bits, not {}.", s.data_bits),
                    )
                    .hint("7 data bits is Modbus ASCII, which citygate does not speak"),
                );
            }
        }
    }
    issues
}

/// Checks of one device; paths relative to the device table.
fn validate_device(d: &DeviceConfig) -> Vec<ConfigIssue> {
    let mut issues = Vec::new();
    if d.profile.is_none() && d.points.is_empty() {
        issues.push(
            ConfigIssue::new(
                "",
                format!("Device {:?} has neither a profile nor points.", d.id),
            )
            .hint("set `profile = \"eastron_sdm630\"` or add [[…devices.points]]"),
        );
    }
    if !(1..=125).contains(&d.max_registers) {
        issues.push(
            ConfigIssue::new(
                "max_registers",
                format!(
                    "max_registers = {} ({}) is outside 1..=125.",
                    d.max_registers, d.limit_sources.max_registers
                ),
            )
            .hint("125 is the Modbus limit for one read; some devices need less"),
        );
    }
    if !(1..=2000).contains(&d.max_bits) {
        issues.push(ConfigIssue::new(
            "max_bits",
            format!(
                "max_bits = {} ({}) is outside 1..=2000.",
                d.max_bits, d.limit_sources.max_bits
            ),
        ));
    }
    for (field, v) in [("poll_interval", d.poll_interval), ("timeout", d.timeout)] {
        if v.is_zero() {
            issues.push(ConfigIssue::new(
                field,
                format!("{field} must be longer than zero."),
            ));
        }
    }
    for (name, v) in &d.groups {
        if v.is_zero() {
            issues.push(ConfigIssue::new(
                format!("groups.{name}"),
                "A group interval must be longer than zero.",
            ));
        }
    }
    let used: HashSet<String> = point_configs(d)
        .map(|(c, _)| c.into_iter().filter_map(|(_, p)| p.group).collect())
        .unwrap_or_default();
    for name in d.groups.keys() {
        if !used.contains(name) {
            issues.push(
                ConfigIssue::new(
                    format!("groups.{name}"),
                    format!("No point of device {:?} is in group {name:?}.", d.id),
                )
                .hint("set `group = \"…\"` on the points, or check the spelling"),
            );
        }
    }
    let points = match resolve_device(d) {
        Ok(p) => p,
        Err(errs) => {
            issues.extend(errs);
            return issues;
        }
    };
    // Paths of the resolved points, in the same order.
    let origins: Vec<String> = point_configs(d)
        .map(|(c, _)| c.into_iter().map(|(o, _)| o.path("")).collect())
        .unwrap_or_default();
    let path_of = |i: usize| origins.get(i).cloned().unwrap_or_else(|| "points".into());

    let mut names = HashSet::new();
    for (i, p) in points.iter().enumerate() {
        if !names.insert(p.name.as_str()) {
            issues.push(ConfigIssue::new(
                path_of(i),
                format!(
                    "Point name {:?} is used twice in device {:?}.",
                    p.name, d.id
                ),
            ));
        }
        let span = if p.table.is_bits() {
            d.max_bits
        } else {
            d.max_registers
        };
        if p.len() > span {
            issues.push(ConfigIssue::new(
                path_of(i),
                format!(
                    "Point {:?} needs {} registers, more than one read may fetch ({span}).",
                    p.name,
                    p.len()
                ),
            ));
        }
    }
    issues.extend(write_issues(d, &points));
    issues.extend(report_issues(d, &points));
    for (a, b) in overlaps(&points) {
        issues.push(
            ConfigIssue::new(path_of(b), format!(
                "Point {:?} ({} {}..{}) overlaps point {:?} ({}..{}).",
                points[b].name, points[b].table.name(), points[b].address, points[b].end() - 1,
                points[a].name, points[a].address, points[a].end() - 1
            ))
            .hint("check the addresses against the device's register map; bit points may share a register"),
        );
    }
    issues
}

/// `commands = true` with nothing writable, or writable points while commands are off: both
/// work (nothing is written), but are probably not what was meant.
fn command_warnings(c: &ModbusConfig) -> Vec<ConfigIssue> {
    let writable: Vec<&str> = c
        .devices()
        .iter()
        .filter(|d| has_writable(d))
        .map(|d| d.id.as_str())
        .collect();
    match (c.commands_enabled(), writable.is_empty()) {
        (true, true) => vec![ConfigIssue::new(
            "commands",
            "commands = true, but no point of any device is writable, so no command can be executed.",
        )
        .hint("mark points `writable = true` (inline) or list profile points in the device's writable_points")],
        (false, false) => vec![ConfigIssue::new(
            "commands",
            format!(
                "Devices {} have writable points, but commands are off for this adapter.",
                writable.join(", ")
            ),
        )
        .hint("set `commands = true` on the adapter to accept commands from the platform")],
        _ => Vec::new(),
    }
}

/// Pairs of points (earlier, later) that share an address; `bit` points may share.
fn overlaps(points: &[Point]) -> Vec<(usize, usize)> {
    let mut idx: Vec<usize> = (0..points.len()).collect();
    idx.sort_by_key(|i| (points[*i].table, points[*i].address));
    let mut out = Vec::new();
    for (k, &a) in idx.iter().enumerate() {
        for &b in &idx[k + 1..] {
            let (pa, pb) = (&points[a], &points[b]);
            if pb.table != pa.table || u32::from(pb.address) >= pa.end() {
                break;
            }
            let bits = matches!(pa.kind, PointType::Bit(_)) || matches!(pb.kind, PointType::Bit(_));
            if !bits {
                out.push((a.min(b), a.max(b)));
            }
        }
    }
    out
}

/// Poll intervals shorter than the time their reads occupy the bus.
fn bus_time_issues(link: &Link, devices: &[DeviceConfig]) -> Vec<ConfigIssue> {
    let cost = BusCost::for_link(link);
    let plans = plan_all(devices);
    let mut issues = Vec::new();
    for dp in &plans {
        let Some(n) = devices.iter().position(|d| d.id == dp.id) else {
            continue;
        };
        for p in &dp.plans {
            let t = requests_time(cost, &p.requests);
            if t > p.interval {
                issues.push(
                    ConfigIssue::new(format!("devices.{n}.poll_interval"), format!(
                        "Device {:?} polls every {} but its {} read(s) need about {} of bus time.",
                        dp.id, fmt(p.interval), p.requests.len(), fmt(t)
                    ))
                    .hint("poll less often, raise the baud rate, or move slow points to a group with a longer interval (see `citygate plan`)"),
                );
            }
        }
    }
    let connections = match link {
        Link::Tcp {
            max_connections, ..
        } => f64::from((*max_connections).max(1)),
        _ => 1.0,
    };
    let u = utilisation(cost, &plans) / connections;
    if u > 1.0 {
        issues.push(
            ConfigIssue::new(
                "devices",
                format!(
                    "The devices together need {:.0} % of the bus time; polls will fall behind.",
                    u * 100.0
                ),
            )
            .hint("lengthen poll intervals (see `citygate plan`)"),
        );
    }
    issues
}

fn fmt(d: Duration) -> String {
    humantime::format_duration(Duration::from_millis(d.as_millis() as u64)).to_string()
}

#[cfg(test)]
mod tests;
