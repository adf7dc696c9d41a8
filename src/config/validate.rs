//! Checks that need more than one section: two adapters claiming the same resource (serial
//! port, UDP port, BLE adapter).

use super::issue::{ConfigIssue, Resource};
use super::Config;
use std::collections::HashMap;

/// Returns issues tagged with the adapter id they belong to (`None` = top level).
pub fn cross_checks(config: &Config) -> Vec<(Option<String>, ConfigIssue)> {
    let mut out = Vec::new();
    let mut owners: HashMap<Resource, &str> = HashMap::new();
    for (id, adapter) in &config.southbound {
        for resource in adapter.resources() {
            if let Some(first) = owners.get(&resource) {
                out.push((
                    Some(id.clone()),
                    ConfigIssue::new(
                        "",
                        format!(
                            "adapter `{id}` claims {} which adapter `{first}` already uses",
                            describe(&resource)
                        ),
                    )
                    .hint("each serial port, UDP port and BLE adapter can be owned by one adapter only"),
                ));
            } else {
                owners.insert(resource, id.as_str());
            }
        }
    }
    out
}

fn describe(r: &Resource) -> String {
    match r {
        Resource::SerialPort(p) => format!("serial port {p}"),
        Resource::UdpPort(a) => format!("UDP port {a}"),
        Resource::BleAdapter(a) => format!("BLE adapter {a}"),
    }
}
