//! `citygate check` on the shipped configs (all valid) and on a corpus of broken ones (each
//! reported at FILE:LINE:COL with exit code 78).

use std::path::{Path, PathBuf};
use std::process::Command;

fn citygate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_citygate"))
}

fn toml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            // Device profiles are register maps, not gateway configs.
            if path.file_name().is_some_and(|n| n != "profiles") {
                toml_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
}

#[test]
fn every_shipped_config_passes_check() {
    let mut files = Vec::new();
    toml_files(Path::new("config"), &mut files);
    assert!(
        files.iter().any(|f| f.ends_with("citygate.toml")),
        "reference config missing"
    );
    for f in files {
        let out = citygate().args(["check", "-c"]).arg(&f).output().unwrap();
        assert!(
            out.status.success(),
            "{} failed check:\n{}",
            f.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Each broken file starts with `# expect: LINE:COL fragment` lines.
#[test]
fn broken_configs_are_reported_with_position_and_exit_78() {
    let mut files = Vec::new();
    toml_files(Path::new("tests/config/broken"), &mut files);
    files.sort();
    assert!(files.len() >= 20, "corpus has only {} files", files.len());
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let expects: Vec<(String, String)> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .map(|l| {
                let (pos, fragment) = l.split_once(' ').unwrap();
                (pos.to_owned(), fragment.to_owned())
            })
            .collect();
        assert!(
            !expects.is_empty(),
            "{} has no `# expect:` line",
            f.display()
        );
        let out = citygate().args(["check", "-c"]).arg(&f).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{}: {stderr}", f.display());
        for (pos, fragment) in &expects {
            let prefix = format!("{}:{pos}: ", f.display());
            let found = stderr
                .lines()
                .any(|l| l.starts_with(&prefix) && l.contains(fragment.as_str()));
            assert!(
                found,
                "{}: expected `{prefix}…{fragment}…` in:\n{stderr}",
                f.display()
            );
        }
        let reported = stderr
            .lines()
            .filter(|l| l.starts_with(&format!("{}:", f.display())))
            .count();
        assert_eq!(
            reported,
            expects.len(),
            "{}: unexpected extra problems:\n{stderr}",
            f.display()
        );
    }
}

#[test]
fn missing_config_file_is_a_config_error() {
    let out = citygate()
        .args(["check", "-c", "/nonexistent/citygate.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("cannot read config file /nonexistent/citygate.toml"));
}

#[test]
fn run_with_a_broken_config_exits_78_before_touching_anything() {
    let out = citygate()
        .args(["run", "-c", "tests/config/broken/04_bad_policy.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
}

/// One template for a fleet: `${NAME}` values come from the environment, and problems are
/// reported in the template with the variable they came from.
#[test]
fn fleet_template_takes_per_site_values_from_the_environment() {
    let template = "config/examples/fleet-template.toml";
    let out = citygate()
        .args(["check", "-c", template])
        .env("CITYGATE_SITE", "cab-18")
        .env("CITYGATE_METER_UNIT", "12")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("meters (modbus_tcp)"));

    // A bad value from the environment: placed at the reference, naming the variable.
    let out = citygate()
        .args(["check", "-c", template])
        .env("CITYGATE_SITE", "cab 18")
        .env("CITYGATE_POLL", "often")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{template}:10:8: gateway name \"cab 18\" is not usable"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("\"cab 18\" came from ${CITYGATE_SITE}"),
        "{stderr}"
    );

    // An unset variable without a default, at its `${`.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("site.toml");
    std::fs::write(
        &file,
        "[gateway]\nname = \"gw-${CITYGATE_TEST_SURELY_UNSET}\"\n",
    )
    .unwrap();
    let out = citygate()
        .args(["check", "-c"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}:2:12: environment variable `CITYGATE_TEST_SURELY_UNSET` is not set",
            file.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("EnvironmentFile="), "{stderr}");
}
