//! The BTHome v2 object table, the one place citygate keeps it.
//!
//! Source: the bthome.io/format object and event tables as implemented by bthome-ble 3.25.0
//! (PyPI; repository Bluetooth-Devices/bthome-ble, files `src/bthome_ble/const.py`
//! `MEAS_TYPES` and `src/bthome_ble/event.py`), the Home Assistant BTHome parser. That release
//! has every id 0x00–0x2F, 0x3A–0x65 and 0xF0–0xF2, including the 2026 additions 0x3B
//! (command event) and 0x65 (settings revision), and the button event 0x81 (hold release).
//! `tests/vectors/bthome_objects.json` holds one vector per id and event, decoded by it.
//!
//! Point names follow bthome-ble's keys. Where bthome-ble gives two objects of different units
//! the same key, or a binary sensor and a measurement share a key, the name carries the
//! difference (`distance_mm`/`distance_m`, `volume_ml`, `mass_lb`, `battery_low`, `power_on`,
//! `moisture_detected`, `gas_detected`) so that one point name always means one unit.

/// How the bytes of an object are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Little-endian unsigned integer, scaled by `mul / div`.
    Uint,
    /// Little-endian two's complement integer, scaled by `mul / div`.
    Sint,
    /// One byte, non-zero = true.
    Binary,
    /// Length-prefixed UTF-8 text.
    Text,
    /// Length-prefixed bytes.
    Raw,
    /// Button event: one byte.
    Button,
    /// Dimmer event: event byte + number of steps.
    Dimmer,
    /// Command event (0x3B): a length byte (low 5 bits = number of argument bytes, high 3
    /// bits reserved), the command byte, then the arguments.
    Command,
    /// Firmware version, bytes little endian (`F1 00 01 02 04` = 4.2.1.0).
    Version,
}

/// One object id of the format.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spec {
    pub id: u8,
    pub name: &'static str,
    /// Fixed length in bytes (ignored for `Text` and `Raw`, which carry their own).
    pub len: usize,
    pub kind: Kind,
    /// The factor as an exact fraction so that `2506 * 1 / 100` gives the double nearest to
    /// 25.06 (multiplying by 0.01 would not).
    pub mul: u32,
    pub div: u32,
}

const fn s(id: u8, name: &'static str, len: usize, kind: Kind, mul: u32, div: u32) -> Spec {
    Spec {
        id,
        name,
        len,
        kind,
        mul,
        div,
    }
}
const fn u(id: u8, name: &'static str, len: usize, div: u32) -> Spec {
    s(id, name, len, Kind::Uint, 1, div)
}
const fn i(id: u8, name: &'static str, len: usize, div: u32) -> Spec {
    s(id, name, len, Kind::Sint, 1, div)
}
const fn b(id: u8, name: &'static str) -> Spec {
    s(id, name, 1, Kind::Binary, 1, 1)
}

use Kind::*;

/// Sorted by id (looked up by binary search).
pub(crate) const TABLE: &[Spec] = &[
    u(0x00, "packet_id", 1, 1),
    u(0x01, "battery", 1, 1),
    i(0x02, "temperature", 2, 100),
    u(0x03, "humidity", 2, 100),
    u(0x04, "pressure", 3, 100),
    u(0x05, "illuminance", 3, 100),
    u(0x06, "mass", 2, 100),
    u(0x07, "mass_lb", 2, 100),
    i(0x08, "dew_point", 2, 100),
    u(0x09, "count", 1, 1),
    u(0x0a, "energy", 3, 1000),
    u(0x0b, "power", 3, 100),
    u(0x0c, "voltage", 2, 1000),
    u(0x0d, "pm25", 2, 1),
    u(0x0e, "pm10", 2, 1),
    b(0x0f, "generic"),
    b(0x10, "power_on"),
    b(0x11, "opening"),
    u(0x12, "carbon_dioxide", 2, 1),
    u(0x13, "volatile_organic_compounds", 2, 1),
    u(0x14, "moisture", 2, 100),
    b(0x15, "battery_low"),
    b(0x16, "battery_charging"),
    b(0x17, "carbon_monoxide"),
    b(0x18, "cold"),
    b(0x19, "connectivity"),
    b(0x1a, "door"),
    b(0x1b, "garage_door"),
    b(0x1c, "gas_detected"),
    b(0x1d, "heat"),
    b(0x1e, "light"),
    b(0x1f, "lock"),
    b(0x20, "moisture_detected"),
    b(0x21, "motion"),
    b(0x22, "moving"),
    b(0x23, "occupancy"),
    b(0x24, "plug"),
    b(0x25, "presence"),
    b(0x26, "problem"),
    b(0x27, "running"),
    b(0x28, "safety"),
    b(0x29, "smoke"),
    b(0x2a, "sound"),
    b(0x2b, "tamper"),
    b(0x2c, "vibration"),
    b(0x2d, "window"),
    u(0x2e, "humidity", 1, 1),
    u(0x2f, "moisture", 1, 1),
    s(0x3a, "button", 1, Button, 1, 1),
    s(0x3b, "command", 0, Command, 1, 1),
    s(0x3c, "dimmer", 2, Dimmer, 1, 1),
    u(0x3d, "count", 2, 1),
    u(0x3e, "count", 4, 1),
    i(0x3f, "rotation", 2, 10),
    u(0x40, "distance_mm", 2, 1),
    u(0x41, "distance_m", 2, 10),
    u(0x42, "duration", 3, 1000),
    u(0x43, "current", 2, 1000),
    u(0x44, "speed", 2, 100),
    i(0x45, "temperature", 2, 10),
    u(0x46, "uv_index", 1, 10),
    u(0x47, "volume", 2, 10),
    u(0x48, "volume_ml", 2, 1),
    u(0x49, "volume_flow_rate", 2, 1000),
    u(0x4a, "voltage", 2, 10),
    u(0x4b, "gas", 3, 1000),
    u(0x4c, "gas", 4, 1000),
    u(0x4d, "energy", 4, 1000),
    u(0x4e, "volume", 4, 1000),
    u(0x4f, "water", 4, 1000),
    u(0x50, "timestamp", 4, 1),
    u(0x51, "acceleration", 2, 1000),
    u(0x52, "gyroscope", 2, 1000),
    s(0x53, "text", 0, Text, 1, 1),
    s(0x54, "raw", 0, Raw, 1, 1),
    u(0x55, "volume_storage", 4, 1000),
    u(0x56, "conductivity", 2, 1),
    i(0x57, "temperature", 1, 1),
    s(0x58, "temperature", 1, Sint, 35, 100),
    i(0x59, "count", 1, 1),
    i(0x5a, "count", 2, 1),
    i(0x5b, "count", 4, 1),
    i(0x5c, "power", 4, 100),
    i(0x5d, "current", 2, 1000),
    u(0x5e, "direction", 2, 100),
    u(0x5f, "precipitation", 2, 10),
    u(0x60, "channel", 1, 1),
    u(0x61, "rotational_speed", 2, 1),
    i(0x62, "speed", 4, 1_000_000),
    i(0x63, "acceleration", 4, 1_000_000),
    u(0x64, "light_level", 1, 1),
    u(0x65, "settings_revision", 1, 1),
    u(0xf0, "device_type_id", 2, 1),
    s(0xf1, "firmware_version", 4, Version, 1, 1),
    s(0xf2, "firmware_version", 3, Version, 1, 1),
];

/// The spec of an object id, `None` for ids the format does not define.
pub(crate) fn lookup(id: u8) -> Option<&'static Spec> {
    TABLE
        .binary_search_by_key(&id, |s| s.id)
        .ok()
        .map(|i| &TABLE[i])
}

/// Button event names (bthome.io/format, "Events").
pub(crate) fn button_event(code: u8) -> Option<&'static str> {
    Some(match code {
        0x01 => "press",
        0x02 => "double_press",
        0x03 => "triple_press",
        0x04 => "long_press",
        0x05 => "long_double_press",
        0x06 => "long_triple_press",
        0x80 => "hold_press",
        0x81 => "hold_release",
        _ => return None,
    })
}

/// Command event names (bthome.io/format, "Events"; bthome-ble `COMMAND_EVENTS`). The
/// arguments after the command byte are device-specific: the format defines no meaning for
/// them (not even a step count for `step_up`/`step_down`), so they are passed on as bytes.
pub(crate) fn command_event(code: u8) -> Option<&'static str> {
    Some(match code {
        0x00 => "off",
        0x01 => "on",
        0x02 => "toggle",
        0x03 => "step_up",
        0x04 => "step_down",
        _ => return None,
    })
}

/// Dimmer event names (bthome.io/format, "Events").
pub(crate) fn dimmer_event(code: u8) -> Option<&'static str> {
    match code {
        0x01 => Some("rotate_left"),
        0x02 => Some("rotate_right"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_complete() {
        assert!(TABLE.windows(2).all(|w| w[0].id < w[1].id));
        // 0x00–0x2f and 0x3a–0x65 are all defined (0x3a–0x3c are the events).
        for id in (0x00..=0x2f).chain(0x3a..=0x65).chain([0xf0, 0xf1, 0xf2]) {
            assert!(lookup(id).is_some(), "id {id:#04x} missing");
        }
        assert_eq!(TABLE.len(), 0x30 + (0x65 - 0x3a + 1) + 3);
        assert!(lookup(0x30).is_none());
        assert!(lookup(0x39).is_none());
        assert!(lookup(0x66).is_none());
        assert!(TABLE.iter().all(|s| s.div > 0 && s.mul > 0));
    }
}
