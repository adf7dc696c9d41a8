//! The three resource bodies the gateway writes: its AE, one container per device and one
//! contentInstance per record (short attribute names, TS-0004 §8 / protocols.md §1.2).
//!
//! Attributes the CSE sets (`ri`, `pi`, `ct`, …) are optional so the same types read the
//! CSE's answers; they are never sent.
pub use super::attributes::{Common, InstanceHolder};
use crate::northbound::serialization::Serialization;
use crate::record::{format_onem2m_ts, format_ts, StoredRecord};
use serde::{Deserialize, Serialize};

pub use super::series::{TimeSeries, TimeSeriesInstance};

/// Resource types the gateway creates (`ty`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "u16", try_from = "u16")]
pub enum ResourceType {
    AccessControlPolicy = 1,
    Ae = 2,
    Container = 3,
    ContentInstance = 4,
    CseBase = 5,
    /// Device management objects (deviceInfo, memory, …) under a node.
    MgmtObj = 13,
    Node = 14,
    PollingChannel = 15,
    Subscription = 23,
    /// `[northbound] resource = "timeSeries"`: one per device …
    TimeSeries = 29,
    /// … and one instance per record.
    TimeSeriesInstance = 30,
}

impl From<ResourceType> for u16 {
    fn from(t: ResourceType) -> u16 {
        t as u16
    }
}

impl TryFrom<u16> for ResourceType {
    type Error = String;
    fn try_from(v: u16) -> Result<Self, String> {
        Ok(match v {
            1 => ResourceType::AccessControlPolicy,
            2 => ResourceType::Ae,
            3 => ResourceType::Container,
            4 => ResourceType::ContentInstance,
            5 => ResourceType::CseBase,
            13 => ResourceType::MgmtObj,
            14 => ResourceType::Node,
            15 => ResourceType::PollingChannel,
            23 => ResourceType::Subscription,
            29 => ResourceType::TimeSeries,
            30 => ResourceType::TimeSeriesInstance,
            _ => return Err(format!("unsupported resource type {v}")),
        })
    }
}

/// `m2m:ae`: the gateway's registration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ae {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rn: Option<String>,
    /// App-ID, `N…` or `R…`.
    pub api: String,
    /// requestReachability: false, the gateway polls nothing and receives no requests.
    pub rr: bool,
    /// Supported release versions.
    #[serde(default)]
    pub srv: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lbl: Option<Vec<String>>,
    /// AE-ID assigned (or confirmed) by the CSE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aei: Option<String>,
    #[serde(flatten)]
    pub common: Common,
}

/// `m2m:cnt`: one per device.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Container {
    #[serde(flatten)]
    pub holder: InstanceHolder,
    /// Access control policies (`acpi`) of the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acpi: Option<Vec<String>>,
    #[serde(flatten)]
    pub common: Common,
}

/// `m2m:cin`: one per record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentInstance {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rn: Option<String>,
    /// contentInfo, `type/subtype:encoding`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<String>,
    /// content: a string (or JSON value), returned by the CSE as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub con: Option<serde_json::Value>,
    /// dataGenerationTime (oneM2M basic format): the source time of the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dgt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lbl: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cs: Option<u64>,
    #[serde(flatten)]
    pub common: Common,
}

/// A resource with its type key, serialized as `{"m2m:ae": {…}}` etc.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Resource {
    #[serde(rename = "m2m:ae")]
    Ae(Ae),
    #[serde(rename = "m2m:cnt")]
    Container(Container),
    #[serde(rename = "m2m:cin")]
    ContentInstance(ContentInstance),
    #[serde(rename = "m2m:ts")]
    TimeSeries(TimeSeries),
    #[serde(rename = "m2m:tsi")]
    TimeSeriesInstance(TimeSeriesInstance),
}

impl Resource {
    pub fn ty(&self) -> ResourceType {
        match self {
            Resource::Ae(_) => ResourceType::Ae,
            Resource::Container(_) => ResourceType::Container,
            Resource::ContentInstance(_) => ResourceType::ContentInstance,
            Resource::TimeSeries(_) => ResourceType::TimeSeries,
            Resource::TimeSeriesInstance(_) => ResourceType::TimeSeriesInstance,
        }
    }

    /// The primitive content (`pc`) carrying this resource.
    pub fn to_pc(&self) -> serde_json::Value {
        // Serializing plain structs of strings/numbers into a Value cannot fail.
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// Content type of every record contentInstance.
pub const RECORD_CNF: &str = "application/json:0";

/// The contentInstance resource name of a record: `<buffer epoch>-<seq>`. Deterministic, so a
/// retry after a lost response meets 4105 ("already there") instead of creating a duplicate,
/// and unique across buffer database re-creations thanks to the epoch.
pub fn record_rn(epoch: &str, seq: u64) -> String {
    format!("{epoch}-{seq}")
}

/// The JSON document stored as `con`: the whole record with its source time.
pub fn record_content(rec: &StoredRecord) -> serde_json::Value {
    let r = &rec.record;
    let mut doc = serde_json::Map::new();
    doc.insert("device".into(), r.device.clone().into());
    doc.insert("adapter".into(), r.adapter.clone().into());
    doc.insert("seq".into(), rec.seq.into());
    doc.insert("ts".into(), format_ts(r.ts_ms).into());
    doc.insert(
        "values".into(),
        serde_json::to_value(&r.values).unwrap_or_default(),
    );
    if !r.meta.is_empty() {
        doc.insert(
            "meta".into(),
            serde_json::to_value(&r.meta).unwrap_or_default(),
        );
    }
    serde_json::Value::Object(doc)
}

/// `con` of a record: with JSON the record document as a JSON string (what platforms read
/// today); with CBOR the document itself, so numbers travel as binary CBOR numbers (a CSE
/// returns it as a structured value, also to a JSON reader).
pub fn record_con(rec: &StoredRecord, ser: Serialization) -> serde_json::Value {
    match ser {
        Serialization::Json => serde_json::Value::String(record_content(rec).to_string()),
        Serialization::Cbor => record_content(rec),
    }
}

/// The resource a record becomes, by `[northbound] resource` and `serialization`: a
/// contentInstance, or a timeSeriesInstance. With CBOR the contentInstance carries no `cnf`
/// (its `con` is structured, not a JSON string).
pub fn record_resource(
    epoch: &str,
    rec: &StoredRecord,
    resource: RecordResource,
    ser: Serialization,
) -> Resource {
    match resource {
        RecordResource::ContentInstance => {
            let mut cin = record_cin(epoch, rec);
            if ser == Serialization::Cbor {
                cin.cnf = None;
                cin.con = Some(record_con(rec, ser));
            }
            Resource::ContentInstance(cin)
        }
        RecordResource::TimeSeries => Resource::TimeSeriesInstance(record_tsi(epoch, rec, ser)),
    }
}

/// The contentInstance for a record: `con` is the record JSON as a string (`cnf`
/// `application/json:0`), `dgt` its source time.
pub fn record_cin(epoch: &str, rec: &StoredRecord) -> ContentInstance {
    ContentInstance {
        rn: Some(record_rn(epoch, rec.seq)),
        cnf: Some(RECORD_CNF.to_string()),
        con: Some(record_con(rec, Serialization::Json)),
        dgt: format_onem2m_ts(rec.record.ts_ms),
        lbl: None,
        cs: None,
        common: Common::default(),
    }
}

/// The resource type records are written as (`[northbound] resource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, schemars::JsonSchema)]
pub enum RecordResource {
    #[default]
    #[serde(rename = "contentInstance")]
    ContentInstance,
    #[serde(rename = "timeSeries")]
    TimeSeries,
}

/// The timeSeriesInstance of a record: the same deterministic `rn` and `con` as the
/// contentInstance mapping, `dgt` = source time, `snr` = sequence number.
pub fn record_tsi(epoch: &str, rec: &StoredRecord, ser: Serialization) -> TimeSeriesInstance {
    TimeSeriesInstance {
        rn: Some(record_rn(epoch, rec.seq)),
        dgt: format_onem2m_ts(rec.record.ts_ms),
        con: Some(record_con(rec, ser)),
        snr: Some(rec.seq),
        cs: None,
        common: Common::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{parse_ts, Record, Value};

    #[test]
    fn record_becomes_cin_with_source_time() {
        let mut r = Record::now("mb1", "meter-1")
            .with("p", 21.5)
            .with("on", true)
            .with("raw", vec![1u8, 2]);
        r.ts_ms = parse_ts("2026-11-23T10:00:00.250Z").unwrap();
        r.meta.insert("rssi".into(), Value::I64(-70));
        let cin = record_cin("ab12cd34", &StoredRecord { seq: 42, record: r });
        assert_eq!(cin.rn.as_deref(), Some("ab12cd34-42"));
        assert_eq!(cin.cnf.as_deref(), Some("application/json:0"));
        assert_eq!(cin.dgt.as_deref(), Some("20261123T100000,250000"));
        let con = cin.con.unwrap();
        let doc: serde_json::Value = serde_json::from_str(con.as_str().unwrap()).unwrap();
        assert_eq!(
            doc,
            serde_json::json!({"device":"meter-1","adapter":"mb1","seq":42,
                "ts":"2026-11-23T10:00:00.250Z",
                "values":{"p":21.5,"on":true,"raw":{"hex":"0102"}},"meta":{"rssi":-70}})
        );
    }

    #[test]
    fn resource_keys_and_types() {
        let cnt = Resource::Container(Container {
            holder: InstanceHolder {
                rn: Some("dev".into()),
                mni: Some(10),
                ..Default::default()
            },
            ..Default::default()
        });
        assert_eq!(
            cnt.to_pc(),
            serde_json::json!({"m2m:cnt":{"rn":"dev","mni":10}})
        );
        assert_eq!(cnt.ty(), ResourceType::Container);
        let ae: Resource = serde_json::from_value(serde_json::json!({"m2m:ae": {"rn": "gw01",
            "api": "Ncitygate", "rr": true, "srv": ["3"], "pi": "id-in", "ri": "Cgw01", "ty": 2,
            "aei": "Cgw01", "ct": "20261124T003652,870928"}}))
        .unwrap();
        match ae {
            Resource::Ae(ae) => {
                assert_eq!(ae.aei.as_deref(), Some("Cgw01"));
                assert_eq!(ae.common.ri.as_deref(), Some("Cgw01"));
            }
            other => panic!("not an AE: {other:?}"),
        }
    }
}
