//! Attributes common to every oneM2M resource representation, and those the two resources that
//! hold a device's records share.
use serde::{Deserialize, Serialize};

/// Attributes the CSE assigns to every resource.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Common {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pi: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ct: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub et: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub st: Option<u64>,
}

/// What a `<container>` and a `<timeSeries>` share (TS-0004): the name and labels, the bounds
/// the gateway sets (`mni` maxNrOfInstances, `mbs` maxByteSize, `mia` maxInstanceAge) and the
/// counters the CSE reports (`cni`, `cbs`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceHolder {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lbl: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mni: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mbs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mia: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cni: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cbs: Option<u64>,
}
