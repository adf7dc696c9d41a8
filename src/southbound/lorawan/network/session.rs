//! Per-device session state and its persisted JSON form.
//!
//! OTAA sessions, used DevNonces and both frame counters are written to the buffer database's
//! key/value state after every change, so a restart neither forgets joined devices nor lets an
//! old frame be replayed.

use super::crypto::AesKey;
use super::fcnt::UplinkCounter;
use super::join::DevNonceHistory;
use super::mac_state::MacState;
use serde::{Deserialize, Serialize};

/// An activated session (ABP from config, OTAA from a join).
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub dev_addr: u32,
    pub nwk_s_key: AesKey,
    pub app_s_key: AesKey,
    pub fcnt_up: UplinkCounter,
    /// Next downlink FCnt (NFCntDown).
    pub fcnt_down: u32,
}

/// Everything remembered about one device.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceState {
    pub session: Option<Session>,
    /// OTAA session from the last join-accept; becomes `session` at its first valid uplink
    /// (the device may never have received the join-accept).
    pub pending: Option<Session>,
    pub dev_nonces: DevNonceHistory,
    /// Pending MAC requests, ADR history (kept across restarts).
    pub mac: MacState,
}

#[derive(Serialize, Deserialize)]
struct SessionJson {
    dev_addr: String,
    nwk_s_key: String,
    app_s_key: String,
    fcnt_up_next: u32,
    fcnt_down: u32,
}

#[derive(Serialize, Deserialize)]
struct StateJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    session: Option<SessionJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pending: Option<SessionJson>,
    #[serde(default)]
    dev_nonces: DevNonceHistory,
    #[serde(default)]
    mac: MacState,
}

impl SessionJson {
    fn from_session(s: &Session) -> Self {
        SessionJson {
            dev_addr: format!("{:08x}", s.dev_addr),
            nwk_s_key: hex::encode(s.nwk_s_key.bytes()),
            app_s_key: hex::encode(s.app_s_key.bytes()),
            fcnt_up_next: s.fcnt_up.next,
            fcnt_down: s.fcnt_down,
        }
    }

    fn into_session(self) -> Option<Session> {
        Some(Session {
            dev_addr: u32::from_str_radix(&self.dev_addr, 16).ok()?,
            nwk_s_key: AesKey::from_hex(&self.nwk_s_key).ok()?,
            app_s_key: AesKey::from_hex(&self.app_s_key).ok()?,
            fcnt_up: UplinkCounter {
                next: self.fcnt_up_next,
            },
            fcnt_down: self.fcnt_down,
        })
    }
}

impl DeviceState {
    /// JSON for `RecordSender::put_state`. It holds session keys: the buffer database must be
    /// readable by the service user only (as the key files are).
    pub fn to_json(&self) -> String {
        let j = StateJson {
            session: self.session.as_ref().map(SessionJson::from_session),
            pending: self.pending.as_ref().map(SessionJson::from_session),
            dev_nonces: self.dev_nonces.clone(),
            mac: self.mac.clone(),
        };
        serde_json::to_string(&j).unwrap_or_default()
    }

    /// Reads what [`to_json`](Self::to_json) wrote; `None` if it is unreadable.
    pub fn from_json(s: &str) -> Option<DeviceState> {
        let j: StateJson = serde_json::from_str(s).ok()?;
        Some(DeviceState {
            session: match j.session {
                Some(s) => Some(s.into_session()?),
                None => None,
            },
            pending: match j.pending {
                Some(s) => Some(s.into_session()?),
                None => None,
            },
            dev_nonces: j.dev_nonces,
            mac: j.mac,
        })
    }
}

/// The state key of a device: `lorawan/<adapter id>/<deveui>`.
pub fn state_key(adapter: &str, dev_eui: u64) -> String {
    format!("lorawan/{adapter}/{dev_eui:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_through_json() {
        let mut st = DeviceState::default();
        st.dev_nonces.record(7);
        st.session = Some(Session {
            dev_addr: 0x260b1234,
            nwk_s_key: AesKey::new([1; 16]),
            app_s_key: AesKey::new([2; 16]),
            fcnt_up: UplinkCounter { next: 0x1_0003 },
            fcnt_down: 4,
        });
        let back = DeviceState::from_json(&st.to_json()).unwrap();
        assert_eq!(back, st);
        assert!(DeviceState::from_json("{\"session\":{\"dev_addr\":\"x\"}}").is_none());
        assert_eq!(
            state_key("lora", 0x0004a30b001c0530),
            "lorawan/lora/0004a30b001c0530"
        );
    }
}
