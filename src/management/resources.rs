//! The management resources as they should be at the CSE, built from what the gateway knows
//! right now (docs/management.md lists every attribute and its source).
//!
//! `<CSEBase>/<ae>-node` (ty 14) holds deviceInfo, memory, firmware, eventLog and one
//! areaNwkInfo per adapter; each field device is `<CSEBase>/<ae>-dev-<device name>` (ty 14)
//! with its areaNwkDeviceInfo and, when it reports a level, battery. Nodes live under the
//! CSEBase because that is the only parent TS-0001 allows for `<node>`; the AE links its
//! node through `nl`. Device names go through [`name::container_name`], the one device id →
//! resource name rule.
use super::system::Memory;
use crate::northbound::onem2m::name;
use crate::northbound::onem2m::primitive::ResourceType;
use crate::record::format_ts;
use crate::telemetry::device_roster::{DeviceState, Liveness};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// `mgd` (mgmtDefinition) codes, TS-0004.
pub mod mgd {
    pub const FIRMWARE: u32 = 1001;
    pub const MEMORY: u32 = 1003;
    pub const AREA_NWK_INFO: u32 = 1004;
    pub const AREA_NWK_DEVICE_INFO: u32 = 1005;
    pub const BATTERY: u32 = 1006;
    pub const DEVICE_INFO: u32 = 1007;
    pub const EVENT_LOG: u32 = 1010;
}

/// When a changed resource may go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Identity, adapters' device lists, device status: at once (after the debounce).
    Immediate,
    /// Memory, eventLog, battery levels: at most every `update_interval`.
    Counter,
}

/// One resource as it should be.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    /// Resource names below the CSEBase: `[node]` or `[node, mgmtObj]`.
    pub names: Vec<String>,
    pub ty: ResourceType,
    /// The body's type key: `m2m:nod`, `m2m:dvi`, …
    pub key: &'static str,
    /// Every attribute the gateway sets, without `rn`.
    pub attrs: Map<String, Value>,
    pub class: Class,
}

impl Desired {
    /// `a/b` of [`Desired::names`]: the key under which its published state is kept.
    pub fn id(&self) -> String {
        self.names.join("/")
    }
}

/// Everything the resources are built from, gathered once per pass.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    pub ae_name: &'a str,
    pub ae_id: &'a str,
    pub manufacturer: &'a str,
    pub model: &'a str,
    pub location: &'a str,
    pub version: &'a str,
    pub os_version: &'a str,
    pub memory: Option<Memory>,
    /// The last problems, oldest first.
    pub problems: &'a [String],
    /// Adapter id → type.
    pub adapters: &'a BTreeMap<String, String>,
    pub devices: &'a [DeviceState],
}

/// `<ae>-node`: the gateway's node.
pub fn gateway_node_name(ae_name: &str) -> String {
    format!("{ae_name}-node")
}

/// `<ae>-dev-<device name>`: a field device's node.
pub fn device_node_name(ae_name: &str, device: &str) -> String {
    format!("{ae_name}-dev-{}", name::container_name(device))
}

/// `areaNwkInfo-<adapter id>` (adapter ids are names already).
pub fn area_nwk_info_name(adapter: &str) -> String {
    format!("areaNwkInfo-{adapter}")
}

fn obj(names: [&str; 2], key: &'static str, mgd: u32, class: Class, attrs: Value) -> Desired {
    let mut map = Map::new();
    map.insert("mgd".into(), mgd.into());
    if let Value::Object(a) = attrs {
        map.extend(a);
    }
    Desired {
        names: names.iter().map(|s| s.to_string()).collect(),
        ty: ResourceType::MgmtObj,
        key,
        attrs: map,
        class,
    }
}

fn node(rn: String, attrs: Value) -> Desired {
    Desired {
        names: vec![rn],
        ty: ResourceType::Node,
        key: "m2m:nod",
        attrs: match attrs {
            Value::Object(a) => a,
            _ => Map::new(),
        },
        class: Class::Immediate,
    }
}

/// Every resource, parents before children: the gateway's node and mgmtObjs, then each
/// device's node and mgmtObjs.
pub fn desired(i: &Inputs<'_>) -> Vec<Desired> {
    let gw = gateway_node_name(i.ae_name);
    let mut out = vec![node(
        gw.clone(),
        json!({"ni": format!("citygate:{}", i.ae_name), "hael": [i.ae_id]}),
    )];
    let mut dvi = json!({
        "dlb": i.ae_name,
        "man": i.manufacturer,
        "mod": i.model,
        "dty": "gateway",
        "fwv": i.version,
        "osv": i.os_version,
    });
    if !i.location.is_empty() {
        dvi["loc"] = i.location.into();
    }
    out.push(obj(
        [&gw, "deviceInfo"],
        "m2m:dvi",
        mgd::DEVICE_INFO,
        Class::Immediate,
        dvi,
    ));
    if let Some(m) = i.memory {
        out.push(obj(
            [&gw, "memory"],
            "m2m:mem",
            mgd::MEMORY,
            Class::Counter,
            json!({"mma": m.available, "mmt": m.total}),
        ));
    }
    out.push(obj(
        [&gw, "firmware"],
        "m2m:fwr",
        mgd::FIRMWARE,
        Class::Immediate,
        // No download URL: citygate is updated by the package manager, not over oneM2M.
        json!({"vr": i.version, "fwn": "citygate", "url": "", "ud": false}),
    ));
    out.push(obj(
        [&gw, "eventLog"],
        "m2m:evl",
        mgd::EVENT_LOG,
        Class::Counter,
        // logTypeId 1 = system, logStatus 1 = started (the gateway keeps collecting).
        json!({"lgt": 1, "lgst": 1, "lgd": i.problems.join("\n")}),
    ));
    let mut adapters: BTreeMap<&str, &str> = i
        .adapters
        .iter()
        .map(|(id, ty)| (id.as_str(), ty.as_str()))
        .collect();
    for d in i.devices {
        adapters.entry(d.adapter.as_str()).or_insert("unknown");
    }
    for (adapter, ty) in &adapters {
        let ldv: Vec<String> = i
            .devices
            .iter()
            .filter(|d| d.adapter == *adapter)
            .map(|d| name::container_name(&d.device).into_owned())
            .collect();
        out.push(obj(
            [&gw, &area_nwk_info_name(adapter)],
            "m2m:ani",
            mgd::AREA_NWK_INFO,
            Class::Immediate,
            json!({"ant": ty, "ldv": ldv}),
        ));
    }
    for d in i.devices {
        let rn = device_node_name(i.ae_name, &d.device);
        out.push(node(
            rn.clone(),
            json!({"ni": format!("citygate:{}:{}", i.ae_name, name::container_name(&d.device))}),
        ));
        let ty = adapters
            .get(d.adapter.as_str())
            .copied()
            .unwrap_or("unknown");
        let mut andi =
            json!({"dvd": d.device, "dvt": ty, "awi": d.adapter, "ss": d.status.as_str()});
        let lbl = status_labels(d);
        if !lbl.is_empty() {
            // A CSE refuses an empty list (`lbl` is optional but must not be empty).
            andi["lbl"] = lbl.into();
        }
        out.push(obj(
            [&rn, "areaNwkDeviceInfo"],
            "m2m:andi",
            mgd::AREA_NWK_DEVICE_INFO,
            Class::Immediate,
            andi,
        ));
        if let Some(b) = d.battery {
            out.push(obj(
                [&rn, "battery"],
                "m2m:bat",
                mgd::BATTERY,
                Class::Counter,
                json!({"btl": b.percent, "bts": b.status as u8}),
            ));
        }
    }
    out
}

/// `statusSince/<time>` of the last status change, and for a down device `lastSeen/<time>` of
/// its last record with values. Both change only with the status, so a device that keeps
/// answering causes no update.
pub fn status_labels(d: &DeviceState) -> Vec<String> {
    let mut lbl = Vec::new();
    if let Some(t) = d.status_since_ms {
        lbl.push(format!("statusSince/{}", format_ts(t)));
    }
    if let (Liveness::Down, Some(t)) = (d.status, d.last_seen_ms) {
        lbl.push(format!("lastSeen/{}", format_ts(t)));
    }
    lbl
}

#[cfg(test)]
#[path = "resources_tests.rs"]
mod tests;
