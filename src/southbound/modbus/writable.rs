//! Which points of a Modbus device commands may write, and the config checks of that.
//!
//! Deny by default, in three layers: the adapter accepts commands only with
//! `commands = true`; an inline point only with `writable = true` (plus the optional `min`,
//! `max`, `allowed`, `idempotent` of [`WriteRule`]); a point of a profile only when the device
//! lists it in `writable_points`:
//!
//! ```toml
//! points = [{ name = "dim_level", table = "holding", address = 10, type = "u16",
//!             writable = true, min = 0, max = 100, idempotent = true }]
//! writable_points = [{ point = "relay_1", idempotent = true }]
//! ```
//!
//! A profile is a register map shared by many sites; whether a site's platform may switch
//! something is that site's decision, so a profile file cannot make a point writable.
//!
//! What can be written: `bool` points in the coil table (FC 05/15) or a holding register
//! (written as 0/1), and numbers in holding registers (FC 06 for one register, FC 16 for more).
//! Input registers and discrete inputs are read-only in Modbus. `bit` points are refused: one
//! bit of a register can only be written by reading the register, changing the bit and writing
//! the whole register back, which undoes any change the device made to the other bits in
//! between. `string` points are refused: commands carry numbers and booleans.
use super::config::{DeviceConfig, PointConfig, Table};
use super::decode::PointType;
use super::profile::{point_configs, Origin, Point};
use super::writable_points::WritablePointConfig;
use crate::commands::WriteRule;
use crate::config::issue::ConfigIssue;

impl PointConfig {
    /// The point's own write keys as a rule.
    pub fn write_rule(&self) -> WriteRule {
        WriteRule {
            writable: self.writable,
            min: self.min,
            max: self.max,
            allowed: self.allowed.clone(),
            idempotent: self.idempotent,
        }
    }

    fn has_write_keys(&self) -> bool {
        self.write_rule() != WriteRule::default()
    }
}

/// The write rule of every point of `device`, in the order of
/// [`super::profile::resolve_device`]: profile points are read-only unless the device lists
/// them in `writable_points`; inline points carry their own keys.
pub fn write_rules(device: &DeviceConfig) -> Vec<WriteRule> {
    let Ok((configs, _)) = point_configs(device) else {
        return Vec::new();
    };
    configs
        .iter()
        .map(|(origin, pc)| match origin {
            Origin::Inline(_) => pc.write_rule(),
            Origin::Profile(_) => device
                .writable_points
                .iter()
                .find(|w| w.point == pc.name)
                .map(WritablePointConfig::write_rule)
                .unwrap_or_default(),
        })
        .collect()
}

/// Whether any point of `device` is writable.
pub fn has_writable(device: &DeviceConfig) -> bool {
    write_rules(device).iter().any(|r| r.writable)
}

/// Why a point of this table and type cannot be written; `None` when it can.
pub fn unwritable_reason(table: Table, kind: PointType) -> Option<String> {
    match (table, kind) {
        (Table::Input | Table::Discrete, _) => Some(format!(
            "it is in the {} table, which Modbus devices only let read (no function writes it)",
            if table == Table::Input {
                "input register"
            } else {
                "discrete input"
            }
        )),
        (_, PointType::Bit(_)) => Some(
            "a bit inside a register can only be written by rewriting the whole register, which \
             would undo changes the device made to its other bits; citygate does not do that"
                .into(),
        ),
        (_, PointType::String(_)) => Some("commands carry numbers and booleans, not text".into()),
        _ => None,
    }
}

/// Config problems of the write keys of `device` whose resolved points are `points`; paths
/// relative to the device table.
pub fn write_issues(device: &DeviceConfig, points: &[Point]) -> Vec<ConfigIssue> {
    let mut issues = Vec::new();
    let Ok((configs, _)) = point_configs(device) else {
        return issues;
    };
    let rules = write_rules(device);
    for (i, (origin, pc)) in configs.iter().enumerate() {
        let rule = rules.get(i).cloned().unwrap_or_default();
        let at = |key: &str| match origin {
            Origin::Inline(_) => origin.path(key),
            Origin::Profile(_) => match device
                .writable_points
                .iter()
                .position(|w| w.point == pc.name)
            {
                Some(j) if key == "writable" => format!("writable_points.{j}.point"),
                Some(j) => format!("writable_points.{j}.{key}"),
                None => "profile".into(),
            },
        };
        if matches!(origin, Origin::Profile(_)) && pc.has_write_keys() {
            issues.push(
                ConfigIssue::new(
                    "profile",
                    format!(
                        "Profile point {:?} carries write keys; a profile cannot make a point writable.",
                        pc.name
                    ),
                )
                .hint("remove them from the profile and list the point in the device's writable_points"),
            );
            continue;
        }
        for (key, message) in rule.issues() {
            issues.push(ConfigIssue::new(
                at(key),
                format!("Point {:?}: {message}.", pc.name),
            ));
        }
        if !rule.writable {
            continue;
        }
        let Some(point) = points.iter().find(|p| p.name == pc.name) else {
            continue;
        };
        if let Some(why) = unwritable_reason(point.table, point.kind) {
            issues.push(
                ConfigIssue::new(
                    at("writable"),
                    format!("Point {:?} cannot be writable: {why}.", pc.name),
                )
                .hint("only coils and holding registers holding numbers or bool can be written"),
            );
        }
    }
    let inline: Vec<&str> = device.points.iter().map(|p| p.name.as_str()).collect();
    let profile: Vec<&str> = configs
        .iter()
        .filter(|(o, _)| matches!(o, Origin::Profile(_)))
        .map(|(_, p)| p.name.as_str())
        .collect();
    for (j, w) in device.writable_points.iter().enumerate() {
        if profile.contains(&w.point.as_str()) {
            if device.writable_points[..j]
                .iter()
                .any(|o| o.point == w.point)
            {
                issues.push(ConfigIssue::new(
                    format!("writable_points.{j}.point"),
                    format!("Point {:?} is listed twice in writable_points.", w.point),
                ));
            }
        } else if inline.contains(&w.point.as_str()) {
            issues.push(
                ConfigIssue::new(
                    format!("writable_points.{j}.point"),
                    format!(
                        "Point {:?} is an inline point; writable_points is for profile points.",
                        w.point
                    ),
                )
                .hint("set writable = true (and min, max, …) on the inline point itself"),
            );
        } else {
            issues.push(
                ConfigIssue::new(
                    format!("writable_points.{j}.point"),
                    format!(
                        "Device {:?} has no profile point named {:?}.",
                        device.id, w.point
                    ),
                )
                .hint("check the spelling against the profile (`citygate plan` lists the points)"),
            );
        }
    }
    issues
}

#[cfg(test)]
#[path = "writable_tests.rs"]
mod tests;
