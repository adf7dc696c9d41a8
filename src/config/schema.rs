//! The JSON Schema of the config file, derived from the same Rust types the loader deserializes
//! (so it cannot drift), for editors that validate TOML against a schema (taplo, VS Code with
//! Even Better TOML). `citygate config schema` prints it; config/config.schema.json is a copy
//! that a test keeps equal to it (the package installs it as
//! /usr/share/citygate/config.schema.json). Key descriptions are the tables of docs/config.md
//! ([`super::schema_docs`]).
//!
//! The schema says what it can: sections, keys and their types, enums, required keys, the keys
//! each adapter `type` allows, durations and sizes as patterns. Rules across keys (ranges,
//! resource conflicts, secrets, profiles) stay with `citygate check`, which remains the
//! authority. Where the loader fills `${NAME}` references ([`super::substitute`]) before
//! reading a value, the schema accepts a string holding a reference too.

use crate::southbound::{ble, lorawan, modbus, replay, AdapterConfig};
use indexmap::IndexMap;
use schemars::generate::SchemaSettings;
use schemars::transform::{transform_subschemas, Transform};
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Value};

/// The file as a whole: every section optional, nothing else allowed.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "citygate configuration",
    description = "The TOML config of the citygate edge gateway (docs/config.md). `citygate check` is the authority; this schema is for editors."
)]
#[allow(dead_code)] // only its schema is used
struct ConfigFile {
    #[serde(default)]
    gateway: super::GatewayConfig,
    #[serde(default)]
    log: crate::telemetry::logging::LogConfig,
    #[serde(default)]
    telemetry: crate::telemetry::TelemetryConfig,
    #[serde(default)]
    buffer: crate::buffer::BufferConfig,
    /// `[northbound]`: the oneM2M CSE records are delivered to; without it records are only
    /// buffered.
    #[serde(default)]
    northbound: Option<crate::northbound::NorthboundConfig>,
    /// `[southbound.<id>]`: the adapters, each with a `type` that decides its keys.
    #[serde(default)]
    southbound: IndexMap<String, Adapter>,
    #[serde(default)]
    management: crate::management::ManagementConfig,
}

/// One `[southbound.<id>]` table: `type` picks the variant and with it the allowed keys.
struct Adapter;

impl JsonSchema for Adapter {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Adapter".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut branches = Vec::new();
        for type_name in AdapterConfig::TYPES {
            let Some(mut variant) = variant_schema(type_name, generator) else {
                continue;
            };
            // The variant's keys plus `type` (the loader takes `type` out before reading them).
            if let Some(props) = variant.get_mut("properties").and_then(Value::as_object_mut) {
                props.insert("type".into(), json!({ "const": type_name }));
            }
            branches.push(json!({
                "if": { "properties": { "type": { "const": type_name } }, "required": ["type"] },
                "then": variant.to_value(),
            }));
        }
        json_schema!({
            "description": "An adapter. `type` decides which keys it takes.",
            "type": "object",
            "required": ["type"],
            "properties": {
                "type": {
                    "description": "The adapter type.",
                    "enum": AdapterConfig::TYPES,
                }
            },
            "allOf": branches,
        })
    }
}

/// The schema of the keys of one adapter type, inline (not a `$ref`), so `type` can be added.
fn variant_schema(type_name: &str, generator: &mut SchemaGenerator) -> Option<Schema> {
    Some(match type_name {
        "replay" => replay::ReplayConfig::json_schema(generator),
        "modbus_tcp" => modbus::ModbusTcpConfig::json_schema(generator),
        "modbus_rtu" => modbus::ModbusRtuConfig::json_schema(generator),
        "modbus_rtu_over_tcp" => modbus::ModbusRtuOverTcpConfig::json_schema(generator),
        "ble" => ble::BleConfig::json_schema(generator),
        "lorawan_udp" => lorawan::LorawanUdpConfig::json_schema(generator),
        "lorawan_lns_mqtt" => lorawan::LnsMqttConfig::json_schema(generator),
        _ => return None,
    })
}

/// A string holding a `${NAME}` reference: where the loader substitutes before it reads the
/// value, such a string stands for a number, a boolean, an enum value or a duration.
const REFERENCE_PATTERN: &str = r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}";

/// Lets every value that is not a plain string also be written as a `${NAME}` reference.
/// Applied top-down: a wrapped value is not looked into again.
#[derive(Clone)]
struct AllowReferences;

impl Transform for AllowReferences {
    fn transform(&mut self, schema: &mut Schema) {
        let Some(obj) = schema.as_object() else {
            return;
        };
        if !takes_reference(obj) {
            transform_subschemas(self, schema);
            return;
        }
        let mut inner = obj.clone();
        // Keep the description and default outside, where editors show them.
        let mut outer = serde_json::Map::new();
        for key in ["description", "default"] {
            if let Some(v) = inner.remove(key) {
                outer.insert(key.into(), v);
            }
        }
        outer.insert(
            "anyOf".into(),
            json!([inner, { "type": "string", "pattern": REFERENCE_PATTERN }]),
        );
        *schema = Schema::from(outer);
    }
}

/// A number, a boolean, a constrained string (pattern, enum), or a choice among those: the
/// values a reference may stand for. A choice is wrapped once, as a whole.
fn takes_reference(obj: &serde_json::Map<String, Value>) -> bool {
    let ty = obj.get("type").and_then(Value::as_str);
    if matches!(ty, Some("integer" | "number" | "boolean")) {
        return true;
    }
    if ty == Some("string") && (obj.contains_key("pattern") || obj.contains_key("enum")) {
        return true;
    }
    ["anyOf", "oneOf"].iter().any(|k| {
        obj.get(*k)
            .and_then(Value::as_array)
            .is_some_and(|branches| {
                branches.iter().all(|b| {
                    b.as_object()
                        .is_some_and(|b| b.contains_key("const") || takes_reference(b))
                })
            })
    })
}

/// TOML has no null: an optional key is simply left out, so `Option<T>` is just `T`.
#[derive(Clone)]
struct NoNull;

impl Transform for NoNull {
    fn transform(&mut self, schema: &mut Schema) {
        transform_subschemas(self, schema);
        let Some(obj) = schema.as_object_mut() else {
            return;
        };
        match obj.get("default") {
            Some(Value::Null) => {
                obj.remove("default");
            }
            // A `Duration` default serializes as `{secs, nanos}`; the file says "10s".
            Some(Value::Object(d)) if d.contains_key("secs") && d.contains_key("nanos") => {
                let secs = d["secs"].as_u64().unwrap_or(0);
                let nanos = d["nanos"].as_u64().unwrap_or(0) as u32;
                let text = humantime::format_duration(std::time::Duration::new(secs, nanos));
                obj.insert("default".into(), json!(text.to_string()));
            }
            _ => {}
        }
        if let Some(Value::Array(types)) = obj.get_mut("type") {
            types.retain(|t| t != "null");
            if types.len() == 1 {
                let only = types[0].clone();
                obj.insert("type".into(), only);
            }
        }
        let Some(Value::Array(any)) = obj.get_mut("anyOf") else {
            return;
        };
        any.retain(|s| s != &json!({ "type": "null" }));
        if any.len() == 1 {
            let Some(Value::Object(only)) = any.pop() else {
                return;
            };
            obj.remove("anyOf");
            for (k, v) in only {
                obj.entry(k).or_insert(v);
            }
        }
    }
}

/// The JSON Schema of the config file (draft-07, which taplo and VS Code read).
pub fn config_schema() -> Value {
    let mut settings = SchemaSettings::draft07();
    // Ours first: the draft-07 clean-ups (`$ref` siblings) then apply to what they produce.
    settings.transforms.insert(0, Box::new(AllowReferences));
    settings.transforms.insert(0, Box::new(NoNull));
    let generator = settings.into_generator();
    let mut schema = generator.into_root_schema_for::<ConfigFile>().to_value();
    super::schema_docs::apply(&mut schema);
    schema
}

/// [`config_schema`] as the text `citygate config schema` prints and config/config.schema.json
/// holds: pretty JSON with a final newline.
pub fn config_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&config_schema()).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_adapter_type_has_its_keys() {
        let mut generator = SchemaSettings::draft07().into_generator();
        for t in AdapterConfig::TYPES {
            assert!(variant_schema(t, &mut generator).is_some(), "{t}");
        }
    }

    #[test]
    fn durations_are_patterns_and_references_are_allowed() {
        let schema = config_schema();
        let defs = schema["definitions"].as_object().unwrap();
        let duration = serde_json::to_string(&defs["Duration"]).unwrap();
        assert!(duration.contains("pattern"), "{duration}");
        assert!(duration.contains(r"\\$\\{"), "{duration}");
        assert!(
            schema["properties"]["southbound"]["additionalProperties"]["$ref"]
                .as_str()
                .is_some_and(|r| r.ends_with("/Adapter"))
        );
    }

    /// A `Duration` field read with `units::duration` but lacking
    /// `#[schemars(with = "crate::config::units::DurationText")]` shows up as `{secs, nanos}`.
    #[test]
    fn no_duration_field_lacks_its_schema() {
        let text = config_schema_text();
        assert!(
            !text.contains("\"nanos\""),
            "a Duration field lacks #[schemars(with = \"crate::config::units::DurationText\")]"
        );
    }
}
