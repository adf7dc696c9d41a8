//! Where a device's points come from: reusable register maps ("profiles") and inline points,
//! resolved into typed [`Point`]s the planner and poller use.
//!
//! A profile is a TOML file `<profiles dir>/<name>.toml` with a `word_order` and `[[points]]`
//! in the same shape as inline points. Profiles shipped with citygate are also compiled in,
//! so `citygate check` finds them without a profiles directory and validation stays pure.

use super::config::{
    apply_limits, builtin, builtin_names, parse_profile, DeviceConfig, ModbusConfig, PointConfig,
    Profile, Table, TypeName,
};
use super::decode::{PointType, Scaling, WordOrder};
use crate::config::issue::ConfigIssue;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Looks up every device's profile (file in `dir` first, then built in) and stores the
/// result in the device, so [`crate::southbound::modbus::validate`] can stay pure. Returns
/// nothing: failures are kept per device and reported by `validate`.
pub fn load_profiles(config: &mut ModbusConfig, dir: Option<&Path>) {
    for device in config.devices_mut() {
        let Some(name) = device.profile.clone() else {
            continue;
        };
        let loaded = lookup(&name, dir).map(Arc::new);
        // A profile file may document other limits than the built-in profile of that name.
        if let Ok(p) = &loaded {
            apply_limits(device, Some((&name, p)));
        }
        device.loaded_profile = Some(loaded);
    }
}

fn lookup(name: &str, dir: Option<&Path>) -> Result<Profile, String> {
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(format!("profile name {name:?} must be a plain file stem"));
    }
    if let Some(dir) = dir {
        let path = dir.join(format!("{name}.toml"));
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                return parse_profile(&text).map_err(|e| format!("{}: {e}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        }
    }
    builtin(name).unwrap_or_else(|| Err(format!("unknown profile {name:?}")))
}

/// The profile of a device: the loaded one, else the built-in one of that name.
pub fn device_profile(device: &DeviceConfig) -> Option<Result<Arc<Profile>, String>> {
    let name = device.profile.as_ref()?;
    Some(match &device.loaded_profile {
        Some(r) => r.clone(),
        None => lookup(name, None).map(Arc::new),
    })
}

/// A point ready for planning and decoding.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub name: String,
    pub table: Table,
    pub address: u16,
    pub kind: PointType,
    pub order: WordOrder,
    pub scaling: Scaling,
    pub unit: Option<String>,
    /// How often the point is read (its group's interval or the device's).
    pub interval: Duration,
}

impl Point {
    /// Registers (or bits) the point covers.
    pub fn len(&self) -> u16 {
        self.kind.registers()
    }

    /// Never true for a resolved point; present because `len` is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One past the last address, computed without overflow.
    pub fn end(&self) -> u32 {
        u32::from(self.address) + u32::from(self.len())
    }
}

/// Where a point came from, for issue paths: inline `points.<i>` or the profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Inline(usize),
    Profile(usize),
}

impl Origin {
    /// The issue path relative to the device table.
    pub fn path(&self, field: &str) -> String {
        match self {
            Origin::Inline(i) if field.is_empty() => format!("points.{i}"),
            Origin::Inline(i) => format!("points.{i}.{field}"),
            Origin::Profile(_) => "profile".to_string(),
        }
    }
}

/// A device's point configs with their origin, and the profile's default word order.
pub type PointConfigs = (Vec<(Origin, PointConfig)>, Option<WordOrder>);

/// All point configs of a device (profile first, then inline).
pub fn point_configs(device: &DeviceConfig) -> Result<PointConfigs, String> {
    let mut out = Vec::new();
    let mut profile_order = None;
    if let Some(profile) = device_profile(device) {
        let profile = profile?;
        profile_order = profile.word_order;
        out.extend(
            profile
                .points
                .iter()
                .enumerate()
                .map(|(i, p)| (Origin::Profile(i), p.clone())),
        );
    }
    out.extend(
        device
            .points
            .iter()
            .enumerate()
            .map(|(i, p)| (Origin::Inline(i), p.clone())),
    );
    Ok((out, profile_order))
}

/// Resolves one point config; issue paths are relative to the point.
pub fn resolve_point(
    pc: &PointConfig,
    device: &DeviceConfig,
    profile_order: Option<WordOrder>,
) -> Result<Point, Vec<ConfigIssue>> {
    let mut issues = Vec::new();
    let kind = match pc.kind {
        TypeName::Bool => PointType::Bool,
        TypeName::U16 => PointType::U16,
        TypeName::I16 => PointType::I16,
        TypeName::U32 => PointType::U32,
        TypeName::I32 => PointType::I32,
        TypeName::U64 => PointType::U64,
        TypeName::I64 => PointType::I64,
        TypeName::F32 => PointType::F32,
        TypeName::F64 => PointType::F64,
        TypeName::String => match pc.length {
            Some(n) if n > 0 => PointType::String(n),
            _ => {
                issues.push(
                    ConfigIssue::new(
                        "length",
                        format!("String point {:?} needs a length in registers.", pc.name),
                    )
                    .hint("add e.g. `length = 8` (two characters per register)"),
                );
                PointType::String(1)
            }
        },
        TypeName::Bit => match pc.bit {
            Some(b) if b <= 15 => PointType::Bit(b),
            Some(b) => {
                issues.push(
                    ConfigIssue::new(
                        "bit",
                        format!("Bit index {b} of point {:?} is out of range.", pc.name),
                    )
                    .hint("a register has bits 0..=15 (0 = least significant)"),
                );
                PointType::Bit(0)
            }
            None => {
                issues.push(
                    ConfigIssue::new("bit", format!("Bit point {:?} needs a bit index.", pc.name))
                        .hint("add `bit = N` with N in 0..=15"),
                );
                PointType::Bit(0)
            }
        },
    };
    if pc.length.is_some() && pc.kind != TypeName::String {
        issues.push(ConfigIssue::new(
            "length",
            format!(
                "Point {:?}: `length` only applies to type \"string\".",
                pc.name
            ),
        ));
    }
    if pc.bit.is_some() && pc.kind != TypeName::Bit {
        issues.push(ConfigIssue::new(
            "bit",
            format!("Point {:?}: `bit` only applies to type \"bit\".", pc.name),
        ));
    }
    if pc.table.is_bits() && kind != PointType::Bool {
        issues.push(
            ConfigIssue::new(
                "type",
                format!(
                    "Point {:?} is in the {} table, which holds single bits.",
                    pc.name,
                    pc.table.name()
                ),
            )
            .hint("use type = \"bool\", or table = \"holding\"/\"input\" for registers"),
        );
    }
    let order = pc.order.or(device.word_order).or(profile_order);
    if order.is_none() && kind.is_multi_register_number() {
        issues.push(
            ConfigIssue::new("order", format!("Point {:?} is a {kind} spanning several registers but no word order is set.", pc.name))
                .hint("set `order` on the point or `word_order` on the device: ABCD, CDAB, BADC or DCBA (`citygate probe` shows all four)"),
        );
    }
    if !kind.is_numeric() && (pc.scale.is_some() || pc.offset.is_some()) {
        issues.push(ConfigIssue::new(
            "scale",
            format!(
                "Point {:?} is a {kind}; scale and offset apply to numbers only.",
                pc.name
            ),
        ));
    }
    for (field, v) in [("scale", pc.scale), ("offset", pc.offset)] {
        if v.is_some_and(|v| !v.is_finite()) || (field == "scale" && v == Some(0.0)) {
            issues.push(
                ConfigIssue::new(
                    field,
                    format!("Point {:?} has an unusable {field}.", pc.name),
                )
                .hint("use a finite, non-zero number"),
            );
        }
    }
    if u32::from(pc.address) + u32::from(kind.registers()) > 0x1_0000 {
        issues.push(ConfigIssue::new(
            "address",
            format!(
                "Point {:?} at address {} with {} registers runs past the last address 65535.",
                pc.name,
                pc.address,
                kind.registers()
            ),
        ));
    }
    if !issues.is_empty() {
        return Err(issues);
    }
    let interval = pc
        .group
        .as_ref()
        .and_then(|g| device.groups.get(g).copied())
        .unwrap_or(device.poll_interval);
    Ok(Point {
        name: pc.name.clone(),
        table: pc.table,
        address: pc.address,
        kind,
        order: order.unwrap_or(WordOrder::Abcd),
        scaling: Scaling {
            scale: pc.scale,
            offset: pc.offset,
        },
        unit: pc.unit.clone(),
        interval,
    })
}

/// Resolves all points of a device; on failure the issues carry device-relative paths.
pub fn resolve_device(device: &DeviceConfig) -> Result<Vec<Point>, Vec<ConfigIssue>> {
    let (configs, profile_order) = point_configs(device).map_err(|e| {
        vec![ConfigIssue::new(
            "profile",
            format!("Profile of device {:?} is unusable: {e}.", device.id),
        )
        .hint(format!("built-in profiles: {}", builtin_names().join(", ")))]
    })?;
    let mut points = Vec::with_capacity(configs.len());
    let mut issues = Vec::new();
    for (origin, pc) in &configs {
        match resolve_point(pc, device, profile_order) {
            Ok(p) => points.push(p),
            Err(errs) => issues.extend(errs.into_iter().map(|mut i| {
                if let Origin::Profile(j) = origin {
                    i.message = format!("{} (profile point {j})", i.message);
                }
                i.path = origin.path(&i.path);
                i
            })),
        }
    }
    if issues.is_empty() {
        Ok(points)
    } else {
        Err(issues)
    }
}
