//! Attributes common to every oneM2M resource representation.
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
