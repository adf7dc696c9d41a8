//! Request and response primitives (TS-0004 §7, short names), independent of the binding.
//!
//! The serde form is the TS-0010 MQTT/WebSocket JSON object (`{"op":1,"to":…,"fr":…}`), so the
//! MQTT binding can publish a [`Request`] as is; the HTTP binding maps the same fields onto a
//! method, a path and `X-M2M-*` headers.
use super::resource::Resource;
pub use super::resource::ResourceType;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// oneM2M operation (`op`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "u8", try_from = "u8")]
pub enum Operation {
    Create = 1,
    Retrieve = 2,
    Update = 3,
    Delete = 4,
    Notify = 5,
}

impl From<Operation> for u8 {
    fn from(op: Operation) -> u8 {
        op as u8
    }
}

impl TryFrom<u8> for Operation {
    type Error = String;
    fn try_from(v: u8) -> Result<Self, String> {
        Ok(match v {
            1 => Operation::Create,
            2 => Operation::Retrieve,
            3 => Operation::Update,
            4 => Operation::Delete,
            5 => Operation::Notify,
            _ => return Err(format!("unknown operation {v}")),
        })
    }
}

/// A request primitive. `to` is an address as the CSE understands it: CSE-relative
/// structured (`cse-in/citygate/dev-1`), SP-relative (`/id-in/…`) or absolute (`//sp/id-in/…`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub op: Operation,
    pub to: String,
    /// Originator (`X-M2M-Origin`); bare `C`/`S` on an AE create lets the CSE assign the AE-ID.
    pub fr: String,
    /// Request identifier (`X-M2M-RI`), unique per request.
    pub rqi: String,
    /// Release version indicator (`X-M2M-RVI`).
    pub rvi: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ty: Option<ResourceType>,
    /// Result content (`rcn`): 0 = nothing, 1 = attributes (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rcn: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pc: Option<serde_json::Value>,
    /// Request expiration timestamp (`rqet`, `X-M2M-RET`), oneM2M basic format: a long poll
    /// waits at the CSE until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rqet: Option<String>,
}

impl Request {
    /// CREATE `resource` under `parent`.
    pub fn create(
        parent: impl Into<String>,
        fr: impl Into<String>,
        rvi: &str,
        resource: &Resource,
    ) -> Self {
        Request {
            op: Operation::Create,
            to: parent.into(),
            fr: fr.into(),
            rqi: next_request_id(),
            rvi: rvi.to_string(),
            ty: Some(resource.ty()),
            rcn: None,
            pc: Some(resource.to_pc()),
            rqet: None,
        }
    }

    /// RETRIEVE the resource at `to`.
    pub fn retrieve(to: impl Into<String>, fr: impl Into<String>, rvi: &str) -> Self {
        Request {
            op: Operation::Retrieve,
            to: to.into(),
            fr: fr.into(),
            rqi: next_request_id(),
            rvi: rvi.to_string(),
            ty: None,
            rcn: None,
            pc: None,
            rqet: None,
        }
    }

    /// CREATE a resource of type `ty` given as its JSON body (`{"m2m:sub": {…}}`): for the
    /// resource types the gateway creates only for commands (ACP, subscription, polling
    /// channel).
    pub fn create_raw(
        parent: impl Into<String>,
        fr: impl Into<String>,
        rvi: &str,
        ty: ResourceType,
        pc: serde_json::Value,
    ) -> Self {
        Request {
            op: Operation::Create,
            to: parent.into(),
            fr: fr.into(),
            rqi: next_request_id(),
            rvi: rvi.to_string(),
            ty: Some(ty),
            rcn: None,
            pc: Some(pc),
            rqet: None,
        }
    }

    /// Builder: the request expires at the CSE `wait` from now (`rqet`).
    pub fn expiring_in(mut self, wait: std::time::Duration) -> Self {
        let at = crate::record::now_ms() + wait.as_millis() as i64;
        self.rqet = crate::record::format_onem2m_ts(at);
        self
    }

    /// Builder: set the result content (`rcn=0` keeps create responses empty).
    pub fn with_rcn(mut self, rcn: u8) -> Self {
        self.rcn = Some(rcn);
        self
    }
}

/// A response primitive. `pc` holds the body (a resource like `{"m2m:ae":{…}}`), `dbg` the
/// CSE's explanation when the body was `{"m2m:dbg": "…"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub rsc: Rsc,
    #[serde(default)]
    pub rqi: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pc: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dbg: Option<String>,
    /// The binding's `Retry-After` (HTTP), not part of the primitive: the least wait the
    /// server asked for before the next request.
    #[serde(skip)]
    pub retry_after: Option<std::time::Duration>,
}

impl Response {
    /// Builds a response from its parts, lifting `m2m:dbg` out of the body.
    pub fn from_parts(rsc: Rsc, rqi: impl Into<String>, body: Option<serde_json::Value>) -> Self {
        let dbg = body
            .as_ref()
            .and_then(|b| b.get("m2m:dbg"))
            .map(|d| match d {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            });
        let pc = if dbg.is_some() { None } else { body };
        Response {
            rsc,
            rqi: rqi.into(),
            pc,
            dbg,
            retry_after: None,
        }
    }

    /// The resource in the body, if any and if it parses as one we know.
    pub fn resource(&self) -> Option<Resource> {
        self.pc
            .as_ref()
            .and_then(|pc| serde_json::from_value(pc.clone()).ok())
    }
}

/// Response status code (`rsc`, `X-M2M-RSC`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Rsc(pub u16);

impl Rsc {
    pub const OK: Rsc = Rsc(2000);
    pub const CREATED: Rsc = Rsc(2001);
    pub const BAD_REQUEST: Rsc = Rsc(4000);
    pub const NOT_FOUND: Rsc = Rsc(4004);
    pub const ORIGINATOR_HAS_NO_PRIVILEGE: Rsc = Rsc(4103);
    pub const CONFLICT: Rsc = Rsc(4105);
    pub const ORIGINATOR_HAS_NOT_REGISTERED: Rsc = Rsc(4106);
    pub const ORIGINATOR_HAS_ALREADY_REGISTERED: Rsc = Rsc(4117);
    pub const ALREADY_EXISTS: Rsc = Rsc(5106);
    pub const NOT_ACCEPTABLE: Rsc = Rsc(5207);

    /// 2xxx.
    pub fn is_success(self) -> bool {
        (2000..3000).contains(&self.0)
    }

    /// The TS-0004 name, or "UNKNOWN".
    pub fn name(self) -> &'static str {
        RSC_NAMES
            .iter()
            .find(|(code, _)| *code == self.0)
            .map(|(_, name)| *name)
            .unwrap_or("UNKNOWN")
    }
}

impl std::fmt::Display for Rsc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.0, self.name())
    }
}

/// TS-0004 Table 6.6.3.x response status codes (as in ACME `etc/ResponseStatusCodes.py`).
pub const RSC_NAMES: &[(u16, &str)] = &[
    (1000, "ACCEPTED"),
    (1001, "ACCEPTED_NON_BLOCKING_REQUEST_SYNCH"),
    (1002, "ACCEPTED_NON_BLOCKING_REQUEST_ASYNCH"),
    (2000, "OK"),
    (2001, "CREATED"),
    (2002, "DELETED"),
    (2004, "UPDATED"),
    (4000, "BAD_REQUEST"),
    (4001, "RELEASE_VERSION_NOT_SUPPORTED"),
    (4004, "NOT_FOUND"),
    (4005, "OPERATION_NOT_ALLOWED"),
    (4008, "REQUEST_TIMEOUT"),
    (4015, "UNSUPPORTED_MEDIA_TYPE"),
    (4101, "SUBSCRIPTION_CREATOR_HAS_NO_PRIVILEGE"),
    (4102, "CONTENTS_UNACCEPTABLE"),
    (4103, "ORIGINATOR_HAS_NO_PRIVILEGE"),
    (4104, "GROUP_REQUEST_IDENTIFIER_EXISTS"),
    (4105, "CONFLICT"),
    (4106, "ORIGINATOR_HAS_NOT_REGISTERED"),
    (4107, "SECURITY_ASSOCIATION_REQUIRED"),
    (4108, "INVALID_CHILD_RESOURCE_TYPE"),
    (4109, "NO_MEMBERS"),
    (4110, "GROUP_MEMBER_TYPE_INCONSISTENT"),
    (4117, "ORIGINATOR_HAS_ALREADY_REGISTERED"),
    (4126, "APP_RULE_VALIDATION_FAILED"),
    (4127, "OPERATION_DENIED_BY_REMOTE_ENTITY"),
    (4128, "SERVICE_SUBSCRIPTION_NOT_ESTABLISHED"),
    (5000, "INTERNAL_SERVER_ERROR"),
    (5001, "NOT_IMPLEMENTED"),
    (5103, "TARGET_NOT_REACHABLE"),
    (5105, "RECEIVER_HAS_NO_PRIVILEGES"),
    (5106, "ALREADY_EXISTS"),
    (5107, "REMOTE_ENTITY_NOT_REACHABLE"),
    (5203, "TARGET_NOT_SUBSCRIBABLE"),
    (5204, "SUBSCRIPTION_VERIFICATION_INITIATION_FAILED"),
    (5205, "SUBSCRIPTION_HOST_HAS_NO_PRIVILEGE"),
    (5207, "NOT_ACCEPTABLE"),
    (6010, "MAX_NUMBER_OF_MEMBER_EXCEEDED"),
    (6023, "INVALID_ARGUMENTS"),
    (6024, "INSUFFICIENT_ARGUMENTS"),
];

/// A process-unique request identifier: `cg<random>-<counter>`. The random part keeps ids of a
/// restarted gateway apart from the previous run's (the CSE may log or cache them).
pub fn next_request_id() -> String {
    static PREFIX: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let prefix = PREFIX.get_or_init(|| format!("cg{:06x}", rand::random::<u32>() & 0xff_ffff));
    format!("{prefix}-{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_serializes_as_mqtt_primitive() {
        let mut r = Request::retrieve("cse-in/gw", "Cgw", "3");
        r.rqi = "m1".into();
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"op":2,"to":"cse-in/gw","fr":"Cgw","rqi":"m1","rvi":"3"}"#
        );
        let back: Request = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn mqtt_response_parses() {
        let r: Response = serde_json::from_str(
            r#"{"fr":"/id-in","to":"Cm","rsc":4105,"rqi":"x","rvi":"3","pc":{"m2m:dbg":"exists"}}"#,
        )
        .unwrap();
        assert_eq!(r.rsc, Rsc::CONFLICT);
        let r = Response::from_parts(r.rsc, r.rqi, r.pc);
        assert_eq!(r.dbg.as_deref(), Some("exists"));
        assert_eq!(r.pc, None);
    }

    #[test]
    fn request_ids_are_unique() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| next_request_id()).collect();
        assert_eq!(ids.len(), 1000);
    }

    #[test]
    fn rsc_names() {
        assert_eq!(
            Rsc(4117).to_string(),
            "4117 ORIGINATOR_HAS_ALREADY_REGISTERED"
        );
        assert_eq!(Rsc(4999).name(), "UNKNOWN");
        assert!(Rsc::CREATED.is_success() && !Rsc::CONFLICT.is_success());
        let mut codes: Vec<u16> = RSC_NAMES.iter().map(|(c, _)| *c).collect();
        codes.dedup();
        assert_eq!(codes.len(), RSC_NAMES.len());
    }

    #[test]
    fn operation_rejects_unknown_values() {
        assert!(serde_json::from_str::<Operation>("9").is_err());
        assert_eq!(
            serde_json::from_str::<Operation>("1").unwrap(),
            Operation::Create
        );
    }
}
