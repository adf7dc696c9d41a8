//! The JSON Schema of the config (`citygate config schema`, config/config.schema.json): it never
//! drifts from the code, every shipped config satisfies it, and a wrong key is caught by both
//! the schema and `citygate check`.

use std::path::{Path, PathBuf};
use std::process::Command;

const COMMITTED: &str = "config/config.schema.json";

fn citygate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_citygate"))
}

fn generated() -> String {
    let out = citygate().args(["config", "schema"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
        (
            "max_connections = 1",
            "max_conections = 1",
            "max_conections",
        ),
        ("parity = \"even\"", "parity = \"evn\"", "evn"),
        // `baud` belongs to modbus_rtu, not to a modbus_tcp adapter.
        (
            "max_connections = 1",
            "max_connections = 1\nbaud = 9600",
            "baud",
        ),
        (
            "poll_interval = \"10s\"",
            "poll_interval = \"10 parsecs\"",
            "10 parsecs",
        ),
    ];
    for (i, (from, to, word)) in cases.iter().enumerate() {
        assert!(base.contains(from), "{from}");
        let text = base.replacen(from, to, 1);
        let file = dir.path().join(format!("case{i}.toml"));
        std::fs::write(&file, &text).unwrap();
        let errors = schema_errors(&v, &file, &text);
        assert!(!errors.is_empty(), "schema accepts {to:?}");
        let out = citygate()
            .args(["check", "-c"])
            .arg(&file)
            .output()
            .unwrap();
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
    assert!(
        !errors.is_empty(),
        "a non-reference string is not a baud rate"
    );
}

/// `check` messages for rules the schema expresses too (keys, types, enums, units, required
/// keys, adapter types). The others (ranges, secrets, files, cross-key rules) are `check`'s.
const SCHEMA_RULES: &[&str] = &[
    "TOML syntax error",
    "unknown section",
    "unknown field",
    "unknown variant",
    "unknown adapter type",
    "invalid size unit",
    "invalid duration",
    "invalid type",
    "missing field",
    "has no `type`",
    "`type` must be a string",
    "must be a table",
];

/// The broken corpus with, per file, whether every problem `check` finds there is one the
/// schema can express.
fn broken_corpus() -> Vec<(PathBuf, bool)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("tests/config/broken").unwrap() {
        let path = entry.unwrap().path();
        if !path.extension().is_some_and(|e| e == "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let expects: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .collect();
        let expressible = expects
            .iter()
            .any(|e| SCHEMA_RULES.iter().any(|r| e.contains(r)));
        out.push((path, expressible));
    }
    out.sort();
    out
}

#[test]
fn schema_refuses_the_broken_configs_whose_rule_it_can_express() {
    let v = validator();
    let mut refused = 0;
    for (file, expressible) in broken_corpus() {
        let text = std::fs::read_to_string(&file).unwrap();
        let Ok(value) = toml::from_str::<serde_json::Value>(&text) else {
            continue; // a syntax error: nothing to validate
        };
        if expressible {
            assert!(
                !v.is_valid(&value),
                "{}: `check` refuses it for a rule the schema has, the schema accepts it",
                file.display()
            );
            refused += 1;
        }
    }
    assert!(
        refused >= 10,
        "only {refused} broken configs are schema cases"
    );
}

/// taplo, the validator behind VS Code's Even Better TOML, from npm (tests/peers/install.sh
/// exports `CITYGATE_TAPLO`).
fn taplo() -> Option<PathBuf> {
    let found = std::env::var_os("CITYGATE_TAPLO")
        .map(PathBuf::from)
        .or_else(|| {
            let p = PathBuf::from("target/peers/taplo/node_modules/.bin/taplo");
            p.exists().then_some(p)
        });
    if found.is_none() {
        assert!(
            std::env::var_os("CITYGATE_REQUIRE_PEERS").is_none(),
            "taplo is missing: run tests/peers/install.sh (install_node_peers)"
        );
        eprintln!("skipped: taplo not installed (tests/peers/install.sh)");
    }
    found
}

fn taplo_check(taplo: &Path, schema: Option<&Path>, files: &[PathBuf]) -> (bool, String) {
    let mut cmd = Command::new(taplo);
    cmd.arg("check").env("RUST_LOG", "error");
    if let Some(schema) = schema {
        cmd.arg("--schema").arg(format!(
            "file://{}",
            schema.canonicalize().unwrap().display()
        ));
    }
    let out = cmd.args(files).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The committed schema with a real editor's validator: every shipped config passes (the fleet
/// template through its own `#:schema` directive), and the broken configs whose rule the schema
/// expresses fail in taplo as they do in `check`.
#[test]
#[ignore = "needs taplo from npm (tests/peers/install.sh)"]
fn taplo_agrees_with_check() {
    let Some(taplo) = taplo() else { return };
    let schema = Path::new(COMMITTED);
    let (ok, out) = taplo_check(&taplo, Some(schema), &shipped_configs());
    assert!(ok, "taplo refuses a shipped config:\n{out}");
    // The directive `#:schema ../config.schema.json`, as an editor reads it.
    let template = PathBuf::from("config/examples/fleet-template.toml");
    let (ok, out) = taplo_check(&taplo, None, std::slice::from_ref(&template));
    assert!(ok, "{out}");
    let dir = tempfile::tempdir_in("config/examples").unwrap();
    let broken = dir.path().join("template.toml");
    let text = std::fs::read_to_string(&template).unwrap();
    std::fs::write(
        &broken,
        text.replace("#:schema ../", "#:schema ../../")
            .replace("max_connections = 1", "max_conections = 1"),
    )
    .unwrap();
    let (ok, out) = taplo_check(&taplo, None, std::slice::from_ref(&broken));
    assert!(!ok && out.contains("max_conections"), "{out}");
    let check = citygate()
        .args(["check", "-c"])
        .arg(&broken)
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&check.stderr).contains("unknown field `max_conections`"));

    // One taplo run over the corpus (node starts slowly); it names each file it refuses.
    let files: Vec<PathBuf> = broken_corpus()
        .into_iter()
        .filter(|(_, expressible)| *expressible)
        .map(|(f, _)| f)
        .collect();
    assert!(
        files.len() >= 10,
        "only {} broken configs are schema cases",
        files.len()
    );
    let (ok, out) = taplo_check(&taplo, Some(schema), &files);
    assert!(!ok, "{out}");
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy();
        assert!(
            out.lines()
                .any(|l| l.contains("invalid file") && l.contains(name.as_ref())),
            "{}: taplo accepts what `check` refuses:\n{out}",
            file.display()
        );
    }
}

/// `citygate config schema | head` ends quietly when the reader goes away, like any Unix tool,
/// instead of panicking in the middle of its output.
#[test]
fn a_tool_piped_into_a_closed_pipe_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let mut child = citygate()
        .args(["config", "schema"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start citygate");
    drop(child.stdout.take()); // the reader is gone before the first line
    let out = child.wait_with_output().expect("wait for citygate");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
    assert!(
        out.status.success() || out.status.signal() == Some(libc::SIGPIPE),
        "status {:?}, stderr: {stderr}",
        out.status
    );
}
