//! The JSON Schema of the config (`citygate config schema`, docs/config.schema.json): it never
//! drifts from the code, every shipped config satisfies it, and a wrong key is caught by both
//! the schema and `citygate check`.

use std::path::{Path, PathBuf};
use std::process::Command;

const COMMITTED: &str = "docs/config.schema.json";

fn citygate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_citygate"))
}

fn generated() -> String {
    let out = citygate().args(["config", "schema"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn validator() -> jsonschema::Validator {
    let schema: serde_json::Value = serde_json::from_str(&generated()).unwrap();
    jsonschema::draft7::new(&schema).expect("the schema itself is valid draft-07")
}

/// Gateway configs under `config/` (device profiles are register maps, not configs).
fn shipped_configs() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "profiles") {
                    walk(&path, out);
                }
            } else if path.extension().is_some_and(|e| e == "toml") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(Path::new("config"), &mut out);
    out.sort();
    out
}

fn as_json(toml_text: &str) -> serde_json::Value {
    toml::from_str(toml_text).unwrap()
}

fn schema_errors(v: &jsonschema::Validator, file: &Path, text: &str) -> Vec<String> {
    v.iter_errors(&as_json(text))
        .map(|e| format!("{}: {} at {}", file.display(), e, e.instance_path))
        .collect()
}

#[test]
fn committed_schema_equals_the_generated_one() {
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    assert!(
        committed == generated(),
        "{COMMITTED} is out of date: run `cargo run -- config schema > {COMMITTED}` and commit it"
    );
}

#[test]
fn every_shipped_config_satisfies_the_schema() {
    let v = validator();
    let files = shipped_configs();
    assert!(files.len() >= 8, "only {} configs found", files.len());
    for f in files {
        let errors = schema_errors(&v, &f, &std::fs::read_to_string(&f).unwrap());
        assert!(errors.is_empty(), "{}", errors.join("\n"));
    }
}

/// A misspelt key, a wrong enum value and a key of another adapter type: both the schema and
/// `check` refuse each one.
#[test]
fn schema_and_check_agree_on_wrong_keys() {
    let v = validator();
    let base = std::fs::read_to_string("config/examples/modbus-cabinet.toml").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("max_connections = 1", "max_conections = 1", "max_conections"),
        ("parity = \"even\"", "parity = \"evn\"", "evn"),
        // `baud` belongs to modbus_rtu, not to a modbus_tcp adapter.
        ("max_connections = 1", "max_connections = 1\nbaud = 9600", "baud"),
        ("poll_interval = \"10s\"", "poll_interval = \"10 parsecs\"", "10 parsecs"),
    ];
    for (i, (from, to, word)) in cases.iter().enumerate() {
        assert!(base.contains(from), "{from}");
        let text = base.replacen(from, to, 1);
        let file = dir.path().join(format!("case{i}.toml"));
        std::fs::write(&file, &text).unwrap();
        let errors = schema_errors(&v, &file, &text);
        assert!(!errors.is_empty(), "schema accepts {to:?}");
        let out = citygate().args(["check", "-c"]).arg(&file).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "check accepts {to:?}");
        assert!(stderr.contains(word), "{stderr}");
    }
}

/// Keys that `${NAME}` fills before they are read may hold a reference in the schema too.
#[test]
fn references_are_allowed_where_the_loader_substitutes() {
    let v = validator();
    let text = "[gateway]\nname = \"${SITE}\"\n[buffer]\nmax_bytes = \"${MAX:-64MiB}\"\n\
                [southbound.m]\ntype = \"modbus_rtu\"\nport = \"/dev/ttyUSB0\"\nbaud = \"${BAUD}\"\n\
                parity = \"${PARITY:-even}\"\ndevices = []\n";
    let errors = schema_errors(&v, Path::new("t.toml"), text);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    let errors = schema_errors(&v, Path::new("t.toml"), &text.replace("${BAUD}", "$BAUD"));
    assert!(!errors.is_empty(), "a non-reference string is not a baud rate");
}
