//! docs/config.md and the schema name the same keys, and the schema describes them with the
//! docs' words.

use super::*;
use crate::config::schema::config_schema;

/// Key tables that document no key of this file.
const NOT_CONFIG: &[(&str, usize)] = &[(MODBUS_HEADING, 3)];

/// Places whose every key has a row (tables elsewhere may add rows to other places).
const COMPLETE: &[Place] = &[
    &["gateway"],
    &["log"],
    &["telemetry"],
    &["buffer"],
    &["northbound"],
    &["northbound", "mqtt"],
    &["northbound", "commands"],
    &["management"],
    &["southbound", "*", "type=replay"],
    &["southbound", "*", "type=modbus_tcp"],
    &["southbound", "*", "type=modbus_rtu"],
    &["southbound", "*", "type=modbus_rtu_over_tcp"],
    MODBUS_DEVICE,
    &["southbound", "*", "type=lorawan_udp"],
    &["southbound", "*", "type=lorawan_lns_mqtt"],
    &["southbound", "*", "type=ble"],
];

/// Every key table of docs/config.md is placed or skipped on purpose, and every placement finds
/// its table (a renamed heading or a new table fails here, not silently).
#[test]
fn every_key_table_is_placed() {
    let tables = tables(CONFIG_MD);
    let mut problems = Vec::new();
    for t in &tables {
        let placed = PLACES
            .iter()
            .any(|m| m.heading == t.heading && m.index == t.index);
        let skipped = NOT_CONFIG.contains(&(t.heading.as_str(), t.index));
        if !placed && !skipped {
            problems.push(format!(
                "key table {} under \"{}\" is not placed in PLACES",
                t.index, t.heading
            ));
        }
        if t.rows.iter().any(|r| r.keys.is_empty()) {
            problems.push(format!("a row under \"{}\" names no `key`", t.heading));
        }
    }
    for m in PLACES {
        if !tables
            .iter()
            .any(|t| t.heading == m.heading && t.index == m.index)
        {
            problems.push(format!(
                "no key table {} under \"{}\" in docs/config.md",
                m.index, m.heading
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(tables.len() >= 17, "only {} key tables found", tables.len());
}

/// Every key the docs document is a key of the schema where they document it.
#[test]
fn every_documented_key_is_a_schema_key() {
    let schema = config_schema();
    let docs = documented();
    assert!(docs.len() >= 140, "only {} documented keys", docs.len());
    let problems: Vec<String> = docs
        .iter()
        .filter(|(_, place, path, _)| key_pointer(&schema, place, path).is_none())
        .map(|(m, place, path, _)| {
            format!(
                "docs/config.md documents `{}` under \"{}\"; the schema has no such key at {}",
                path.join("."),
                m.heading,
                place.join("/")
            )
        })
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Every key of a fully documented section has its row in docs/config.md.
#[test]
fn every_schema_key_of_a_documented_section_is_documented() {
    let schema = config_schema();
    let full: Vec<Vec<String>> = documented()
        .into_iter()
        .map(|(_, place, path, _)| place.iter().map(|s| s.to_string()).chain(path).collect())
        .collect();
    let mut problems = Vec::new();
    for place in COMPLETE {
        let ptr = match object_pointer(&schema, place) {
            Ok(ptr) => ptr,
            Err(e) => {
                problems.push(format!("{}: {e}", place.join("/")));
                continue;
            }
        };
        let keys = schema
            .pointer(&format!("{ptr}/properties"))
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default();
        assert!(!keys.is_empty(), "{} has no keys", place.join("/"));
        for key in keys {
            // An adapter's `type` is the heading of its section.
            if key == "type" && place.iter().any(|s| s.starts_with("type=")) {
                continue;
            }
            let documented = full.iter().any(|f| {
                f.len() > place.len() && f[..place.len()] == place[..] && f[place.len()] == key
            });
            if !documented {
                problems.push(format!(
                    "the schema has `{key}` at {}, docs/config.md has no row for it",
                    place.join("/")
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The schema's description of a documented key is the docs' text, and none is empty.
#[test]
fn documented_keys_are_described_with_the_docs_text() {
    let schema = config_schema();
    for (m, place, path, _) in documented() {
        let Some(ptr) = key_pointer(&schema, place, &path) else {
            continue; // reported by every_documented_key_is_a_schema_key
        };
        let text = schema.pointer(&format!("{ptr}/description"));
        let text = text.and_then(Value::as_str).unwrap_or_default();
        assert!(
            !text.trim().is_empty(),
            "`{}` under \"{}\" has no description",
            path.join("."),
            m.heading
        );
    }
    let name = &schema["definitions"]["GatewayConfig"]["properties"]["name"]["description"];
    assert!(
        name.as_str()
            .is_some_and(|d| d.starts_with("short name of this gateway (1–64 letters")),
        "{name}"
    );
    // A link becomes its text.
    let modbus = object_pointer(&schema, &["southbound", "*", "type=modbus_tcp"]).unwrap();
    let commands = schema.pointer(&format!("{modbus}/properties/commands/description"));
    let text = commands.and_then(Value::as_str).unwrap_or_default();
    assert!(
        text.contains("writable points (modbus-commands.md)"),
        "{text}"
    );
}

#[test]
fn cells_and_keys_are_read_like_a_reader_reads_them() {
    assert_eq!(
        cells(r"| `auth` | none | `{ a \| b }` |"),
        ["`auth`", "none", "`{ a | b }`"]
    );
    assert_eq!(code_spans("`min`, `max`"), ["min", "max"]);
    assert_eq!(
        code_spans("`mqtt.password_file` / `mqtt.password_env`"),
        ["mqtt.password_file", "mqtt.password_env"]
    );
    assert_eq!(code_spans("`report.points.<point>`"), ["report.points"]);
    assert_eq!(
        plain("see [lorawan.md](lorawan.md#adr) and [x](y)."),
        "see lorawan.md and x."
    );
}
