//! The key descriptions of the config's JSON Schema are the key tables of docs/config.md: one
//! text, read by a technician in the reference and shown by an editor on hover. The schema
//! ([`super::schema`]) takes each documented key's "meaning" cell from the tables compiled into
//! the binary here; keys documented only in prose keep their doc comment.
//!
//! [`PLACES`] says which table documents which part of the file. The tests below keep the two
//! sides equal: every key a table names is a key of the schema there, every key of a fully
//! documented section has its row, and every table of docs/config.md is placed (or skipped on
//! purpose), so a key added, renamed or removed on one side only fails the build's tests.

use serde_json::{Map, Value};
use std::collections::HashSet;

/// docs/config.md as compiled into the binary.
const CONFIG_MD: &str = include_str!("../../docs/config.md");

/// One key row of a table: its key names (`a.b` for a key of a nested table), the adapter types
/// it is for (a `types` column), its default and meaning cells.
#[derive(Debug)]
struct Row {
    keys: Vec<String>,
    types: Option<Vec<String>>,
    default: String,
    meaning: String,
}

/// A table whose header starts with `key`, with the heading it stands under and its number
/// among the key tables under that heading.
#[derive(Debug)]
struct Table {
    heading: String,
    index: usize,
    rows: Vec<Row>,
}

/// Where a table's keys live in the schema: steps from the root, each a property name, `*` (a
/// map's values), `[]` (an array's items) or `type=X` (the keys of adapter type X).
type Place = &'static [&'static str];

/// A key table of docs/config.md and the places its keys are keys of. With a `types` column,
/// a row goes to the places whose tag its types cell names (or `all`).
struct Mapping {
    heading: &'static str,
    index: usize,
    places: &'static [(Option<&'static str>, Place)],
}

const MODBUS: [(&str, &str); 3] = [
    ("tcp", "type=modbus_tcp"),
    ("rtu", "type=modbus_rtu"),
    ("rtu_over_tcp", "type=modbus_rtu_over_tcp"),
];

const PLACES: &[Mapping] = &[
    map("`[gateway]`", 0, &[(None, &["gateway"])]),
    map("`[log]`", 0, &[(None, &["log"])]),
    map("`[telemetry]`", 0, &[(None, &["telemetry"])]),
    map("`[buffer]`", 0, &[(None, &["buffer"])]),
    map("`[northbound]`", 0, &[(None, &["northbound"])]),
    map("`[management]`", 0, &[(None, &["management"])]),
    map(
        "`[northbound.commands]`",
        0,
        &[(None, &["northbound", "commands"])],
    ),
    map(
        "`type = \"replay\"`",
        0,
        &[(None, &["southbound", "*", "type=replay"])],
    ),
    map(
        MODBUS_HEADING,
        0,
        &[
            (Some(MODBUS[0].0), &["southbound", "*", MODBUS[0].1]),
            (Some(MODBUS[1].0), &["southbound", "*", MODBUS[1].1]),
            (Some(MODBUS[2].0), &["southbound", "*", MODBUS[2].1]),
        ],
    ),
    map(MODBUS_HEADING, 1, &[(None, MODBUS_DEVICE)]),
    map(
        MODBUS_HEADING,
        2,
        &[(
            None,
            &[
                "southbound",
                "*",
                "type=modbus_tcp",
                "devices",
                "[]",
                "points",
                "[]",
            ],
        )],
    ),
    // 3: the profile file's keys, a file of its own (not this config).
    map(
        "`type = \"lorawan_udp\"`",
        0,
        &[(None, &["southbound", "*", "type=lorawan_udp"])],
    ),
    map(
        "`type = \"lorawan_lns_mqtt\"`",
        0,
        &[(None, &["southbound", "*", "type=lorawan_lns_mqtt"])],
    ),
    map(
        "Report by exception (`report`)",
        0,
        &[(None, MODBUS_DEVICE)],
    ),
    map(
        "`type = \"ble\"`",
        0,
        &[(None, &["southbound", "*", "type=ble"])],
    ),
    map(
        "`[northbound]` — MQTT binding (TS-0010)",
        0,
        &[(None, &["northbound"])],
    ),
    map(
        "`[northbound]` — CoAP binding (TS-0008)",
        0,
        &[(None, &["northbound"])],
    ),
];

const MODBUS_HEADING: &str = "`type = \"modbus_tcp\"`, `\"modbus_rtu\"`, `\"modbus_rtu_over_tcp\"`";
const MODBUS_DEVICE: Place = &["southbound", "*", "type=modbus_tcp", "devices", "[]"];

const fn map(
    heading: &'static str,
    index: usize,
    places: &'static [(Option<&'static str>, Place)],
) -> Mapping {
    Mapping {
        heading,
        index,
        places,
    }
}

/// The cells of a table line, `\|` kept as `|` inside a cell.
fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    let mut out = vec![String::new()];
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                chars.next();
                if let Some(s) = out.last_mut() {
                    s.push('|');
                }
            }
            '|' => out.push(String::new()),
            _ => {
                if let Some(s) = out.last_mut() {
                    s.push(c)
                }
            }
        }
    }
    out.into_iter().map(|s| s.trim().to_string()).collect()
}

/// The `code` spans of a cell: the key names of a key cell (`min`, `max`; `a` / `a_file`).
fn code_spans(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(|s| {
            // `report.points.<point>`: the key is `report.points`.
            s.split('.')
                .filter(|p| !p.starts_with('<'))
                .collect::<Vec<_>>()
                .join(".")
        })
        .filter(|s| !s.is_empty())
        .collect()
}

/// Every key table of a markdown text.
fn tables(md: &str) -> Vec<Table> {
    let mut out: Vec<Table> = Vec::new();
    let mut heading = String::new();
    let mut count = 0;
    let mut lines = md.lines().peekable();
    let mut in_code = false;
    while let Some(line) = lines.next() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        if line.starts_with('#') {
            heading = line.trim_start_matches('#').trim().to_string();
            count = 0;
            continue;
        }
        let header = cells(line);
        if !line.starts_with('|') || header.first().map(String::as_str) != Some("key") {
            continue;
        }
        let col = |name: &str| header.iter().position(|h| h == name);
        let (types, default, meaning) = (col("types"), col("default"), col("meaning"));
        let mut rows = Vec::new();
        while let Some(next) = lines.next_if(|l| l.starts_with('|')) {
            if next.starts_with("|---") {
                continue;
            }
            let c = cells(next);
            let cell = |i: Option<usize>| i.and_then(|i| c.get(i)).cloned().unwrap_or_default();
            rows.push(Row {
                keys: code_spans(&cell(Some(0))),
                types: types.map(|i| cell(Some(i)).split(',').map(|t| t.trim().into()).collect()),
                default: cell(default),
                meaning: cell(meaning),
            });
        }
        out.push(Table {
            heading: heading.clone(),
            index: count,
            rows,
        });
        count += 1;
    }
    out
}

/// The JSON pointer of the object schema at `place` (following `$ref`s), or why there is none.
fn object_pointer(root: &Value, place: &[&str]) -> Result<String, String> {
    let mut ptr = resolve(root, String::new());
    for step in place {
        let node = root
            .pointer(&ptr)
            .ok_or_else(|| format!("nothing at {ptr}"))?;
        ptr = if *step == "*" {
            format!("{ptr}/additionalProperties")
        } else if *step == "[]" {
            format!("{ptr}/items")
        } else if let Some(ty) = step.strip_prefix("type=") {
            let branches = node["allOf"].as_array().cloned().unwrap_or_default();
            let i = branches
                .iter()
                .position(|b| b["if"]["properties"]["type"]["const"] == ty)
                .ok_or_else(|| format!("no adapter type {ty}"))?;
            format!("{ptr}/allOf/{i}/then")
        } else {
            property_pointer(root, &ptr, step).ok_or_else(|| format!("no key `{step}`"))?
        };
        ptr = resolve(root, ptr);
    }
    Ok(ptr)
}

/// The pointer of key `name` of the object at `ptr`, if it has that key.
fn property_pointer(root: &Value, ptr: &str, name: &str) -> Option<String> {
    let escaped = name.replace('~', "~0").replace('/', "~1");
    let p = format!("{ptr}/properties/{escaped}");
    root.pointer(&p).map(|_| p)
}

/// Follows a `$ref` (alone or as the single `allOf` entry schemars writes beside a description).
fn resolve(root: &Value, mut ptr: String) -> String {
    for _ in 0..8 {
        let Some(node) = root.pointer(&ptr) else {
            break;
        };
        let target = node["$ref"]
            .as_str()
            .or_else(|| match node["allOf"].as_array() {
                Some(a) if a.len() == 1 => a[0]["$ref"].as_str(),
                _ => None,
            });
        match target.and_then(|t| t.strip_prefix('#')) {
            Some(t) => ptr = t.to_string(),
            None => break,
        }
    }
    ptr
}

/// Each documented key: the row, the place of the table and the key's path under it.
fn documented() -> Vec<(&'static Mapping, Place, Vec<String>, Row)> {
    let mut out = Vec::new();
    for table in tables(CONFIG_MD) {
        let Some(m) = PLACES
            .iter()
            .find(|m| m.heading == table.heading && m.index == table.index)
        else {
            continue;
        };
        for row in table.rows {
            for (tag, place) in m.places {
                let applies = match (tag, &row.types) {
                    (Some(tag), Some(types)) => types.iter().any(|t| t == tag || t == "all"),
                    _ => true,
                };
                if !applies {
                    continue;
                }
                for key in &row.keys {
                    let path = key.split('.').map(String::from).collect();
                    let row = Row {
                        keys: vec![key.clone()],
                        types: None,
                        default: row.default.clone(),
                        meaning: row.meaning.clone(),
                    };
                    out.push((m, *place, path, row));
                }
            }
        }
    }
    out
}

/// A table cell as plain text for an editor's hover: links become their text.
fn plain(md: &str) -> String {
    let mut out = String::new();
    let mut rest = md;
    while let Some(open) = rest.find('[') {
        let Some(mid) = rest[open..].find("](").map(|m| open + m) else {
            break;
        };
        let Some(close) = rest[mid..].find(')').map(|c| mid + c) else {
            break;
        };
        out.push_str(&rest[..open]);
        out.push_str(&rest[open + 1..mid]);
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// Sets the description of every key documented in a table of docs/config.md to its meaning
/// (the first row wins where several tables name a key). Keys it cannot find are left alone;
/// the tests report them.
pub(super) fn apply(root: &mut Value) {
    let mut done = HashSet::new();
    for (_, place, path, row) in documented() {
        let Some(ptr) = key_pointer(root, place, &path) else {
            continue;
        };
        if !done.insert(ptr.clone()) {
            continue;
        }
        let text = match (row.meaning.is_empty(), row.default.is_empty()) {
            (false, _) => plain(&row.meaning),
            (true, false) => format!("Default: {}", plain(&row.default)),
            (true, true) => continue,
        };
        if let Some(Value::Object(prop)) = root.pointer_mut(&ptr) {
            set_description(prop, text);
        }
    }
}

/// The pointer of a documented key (`path` under `place`).
fn key_pointer(root: &Value, place: Place, path: &[String]) -> Option<String> {
    let (last, parents) = path.split_last()?;
    let mut ptr = object_pointer(root, place).ok()?;
    for p in parents {
        ptr = resolve(root, property_pointer(root, &ptr, p)?);
    }
    property_pointer(root, &ptr, last)
}

/// In draft-07 a `$ref` hides its siblings: a described `$ref` goes into an `allOf`.
fn set_description(prop: &mut Map<String, Value>, text: String) {
    if let Some(target) = prop.remove("$ref") {
        prop.insert(
            "allOf".into(),
            Value::Array(vec![serde_json::json!({ "$ref": target })]),
        );
    }
    prop.insert("description".into(), Value::String(text));
}

#[cfg(test)]
#[path = "schema_docs_tests.rs"]
mod tests;
