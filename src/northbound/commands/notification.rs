//! Reading what the CSE sends about command containers: notifications (`m2m:sgn`) carried in
//! a polling-channel answer (`m2m:rqp`) or an MQTT request primitive, and the instances of a
//! command container read by catch-up. Nothing here panics on what the CSE sends: anything
//! unexpected is an `Err` with a reason for the log.
use crate::commands::Instance;
use crate::record::{now_ms, parse_onem2m_ts};
use serde_json::Value;
use std::collections::HashMap;

/// What a notification asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Notification {
    /// A subscription verification request: answer OK.
    Verification,
    /// A new instance in the command container with resource id `container` (`pi`).
    Instance { container: String, cin: Value },
    /// An update of the reboot mgmtObj: its `m2m:rbo` representation (`rbo`, `far`).
    Reboot { rbo: Value },
    /// Anything else about a subscription (deletion notice, a child that is not an instance):
    /// answered OK and otherwise ignored.
    Other,
}

/// A request the CSE sent to the AE (`op` 5 NOTIFY), as the gateway answers it.
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingNotify {
    pub rqi: String,
    /// The CSE's originator (`fr`): the response goes `to` it.
    pub from: String,
    pub rvi: String,
    pub notification: Notification,
}

/// Parses a request primitive (`{"op":5,"fr":…,"rqi":…,"pc":{"m2m:sgn":…}}`), bare (MQTT) or
/// wrapped in `m2m:rqp` (a polling-channel answer).
pub fn parse_request(v: &Value) -> Result<IncomingNotify, String> {
    let v = v.get("m2m:rqp").unwrap_or(v);
    let op = v.get("op").and_then(Value::as_u64);
    if op != Some(5) {
        return Err(format!("not a NOTIFY request (op {op:?})"));
    }
    let rqi = v
        .get("rqi")
        .and_then(Value::as_str)
        .ok_or("request without rqi")?
        .to_string();
    let from = v
        .get("fr")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let rvi = v
        .get("rvi")
        .and_then(|r| match r {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .unwrap_or_else(|| "3".into());
    let sgn = v
        .get("pc")
        .and_then(|pc| pc.get("m2m:sgn"))
        .ok_or("NOTIFY without m2m:sgn")?;
    Ok(IncomingNotify {
        rqi,
        from,
        rvi,
        notification: parse_sgn(sgn),
    })
}

/// The meaning of one `m2m:sgn`.
pub fn parse_sgn(sgn: &Value) -> Notification {
    if sgn.get("vrq").and_then(Value::as_bool) == Some(true) {
        return Notification::Verification;
    }
    if let Some(rbo) = sgn
        .get("nev")
        .and_then(|nev| nev.get("rep"))
        .and_then(|rep| rep.get("m2m:rbo"))
    {
        return Notification::Reboot { rbo: rbo.clone() };
    }
    let Some(cin) = sgn
        .get("nev")
        .and_then(|nev| nev.get("rep"))
        .and_then(|rep| rep.get("m2m:cin"))
    else {
        return Notification::Other;
    };
    match cin.get("pi").and_then(Value::as_str) {
        Some(pi) => Notification::Instance {
            container: pi.to_string(),
            cin: cin.clone(),
        },
        None => Notification::Other,
    }
}

/// An instance of `device`'s command container, from its `m2m:cin` body.
pub fn instance(device: &str, cin: &Value) -> Result<Instance, String> {
    let key = cin
        .get("ri")
        .and_then(Value::as_str)
        .filter(|ri| !ri.is_empty())
        .ok_or("instance without a resource id (ri)")?;
    let created_ms = cin
        .get("ct")
        .and_then(Value::as_str)
        .and_then(parse_onem2m_ts)
        .unwrap_or_else(now_ms);
    Ok(Instance {
        key: key.to_string(),
        device: device.to_string(),
        created_ms,
        creator: cin.get("cr").and_then(Value::as_str).map(String::from),
        con: cin.get("con").cloned().unwrap_or(Value::Null),
    })
}

/// The instances in a RETRIEVE of a command container with `rcn=4` (attributes and child
/// resources): `{"m2m:cnt": {…, "m2m:cin": [ … ]}}`.
pub fn instances_of(device: &str, body: &Value) -> Vec<Result<Instance, String>> {
    body.get("m2m:cnt")
        .and_then(|cnt| cnt.get("m2m:cin"))
        .and_then(Value::as_array)
        .map(|cins| cins.iter().map(|cin| instance(device, cin)).collect())
        .unwrap_or_default()
}

/// The response primitive to a request from the CSE.
pub fn response(req: &IncomingNotify, ae_id: &str, rsc: u16) -> Value {
    serde_json::json!({
        "rsc": rsc,
        "rqi": req.rqi,
        "rvi": req.rvi,
        "fr": ae_id,
        "to": req.from,
    })
}

/// Command container resource id → device id, learnt when the containers are set up: a
/// notification names its instance's parent by resource id only.
#[derive(Debug, Default, Clone)]
pub struct Containers {
    by_ri: HashMap<String, String>,
}

impl Containers {
    pub fn insert(&mut self, ri: String, device: String) {
        self.by_ri.insert(ri, device);
    }

    pub fn device_of(&self, ri: &str) -> Option<&str> {
        // ACME sends `pi` as a bare resource id; other CSEs may send `/<cse-id>/<ri>`.
        let bare = ri.rsplit('/').next().unwrap_or(ri);
        self.by_ri.get(bare).map(String::as_str)
    }

    pub fn clear(&mut self) {
        self.by_ri.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A polling-channel answer as ACME 2026.5.3 sent it.
    fn rqp() -> Value {
        json!({"m2m:rqp": {"fr": "/id-in", "to": "Cgw01", "op": 5, "rqi": "YwUQUGMZDH", "drt": 1,
            "pc": {"m2m:sgn": {"nev": {"net": 3, "rep": {"m2m:cin": {"cr": "Cplatform",
            "con": "{\"id\":\"c2\",\"set\":{\"x\":1}}", "cs": 25, "pi": "cntXu9jIwPwlI",
            "ri": "cin9ZY2OXvs9U", "rn": "cin_BHzE0eKwhD", "ty": 4, "ct": "20261130T220048,125279",
            "st": 2}}}, "sur": "/id-in/subZtbeOItW5y"}}}})
    }

    #[test]
    fn a_polling_channel_notification_gives_the_instance() {
        let n = parse_request(&rqp()).unwrap();
        assert_eq!(n.rqi, "YwUQUGMZDH");
        assert_eq!(n.from, "/id-in");
        let Notification::Instance { container, cin } = &n.notification else {
            panic!("{n:?}")
        };
        assert_eq!(container, "cntXu9jIwPwlI");
        let mut map = Containers::default();
        map.insert("cntXu9jIwPwlI".into(), "lamp-1".into());
        assert_eq!(map.device_of("/id-in/cntXu9jIwPwlI"), Some("lamp-1"));
        let i = instance("lamp-1", cin).unwrap();
        assert_eq!(i.key, "cin9ZY2OXvs9U");
        assert_eq!(i.creator.as_deref(), Some("Cplatform"));
        assert_eq!(
            i.created_ms,
            parse_onem2m_ts("20261130T220048,125279").unwrap()
        );
        assert_eq!(i.con, json!("{\"id\":\"c2\",\"set\":{\"x\":1}}"));
        let r = response(&n, "Cgw01", 2000);
        assert_eq!(r["rqi"], "YwUQUGMZDH");
        assert_eq!(r["to"], "/id-in");
    }

    #[test]
    fn verification_and_other_notices_are_recognised() {
        let v = json!({"op": 5, "rqi": "v1", "fr": "/id-in", "rvi": "5",
            "pc": {"m2m:sgn": {"vrq": true, "sur": "/id-in/sub1", "cr": "Cgw01"}}});
        let n = parse_request(&v).unwrap();
        assert_eq!(n.notification, Notification::Verification);
        assert_eq!(n.rvi, "5");
        let v =
            json!({"op": 5, "rqi": "v2", "pc": {"m2m:sgn": {"sud": true, "sur": "/id-in/sub1"}}});
        assert_eq!(parse_request(&v).unwrap().notification, Notification::Other);
    }

    #[test]
    fn junk_is_an_error_not_a_panic() {
        for v in [
            json!(null),
            json!({"op": 2}),
            json!({"op": 5}),
            json!({"op": 5, "rqi": "x"}),
            json!([1]),
        ] {
            assert!(parse_request(&v).is_err(), "{v}");
        }
        assert!(instance("d", &json!({"con": 1})).is_err());
        let i = instance("d", &json!({"ri": "c1"})).unwrap();
        assert_eq!(i.con, Value::Null);
        assert_eq!(i.creator, None);
    }

    #[test]
    fn catch_up_reads_the_instances_of_a_container() {
        let body = json!({"m2m:cnt": {"rn": "commands", "m2m:sub": [{"rn": "s"}],
            "m2m:cin": [{"ri": "a", "ct": "20261130T220039,050408", "con": {"id": "c1"}}, {"con": 1}]}});
        let got = instances_of("lamp-1", &body);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].as_ref().unwrap().key, "a");
        assert!(got[1].is_err());
        assert!(instances_of("lamp-1", &json!({"m2m:cnt": {}})).is_empty());
    }
}
