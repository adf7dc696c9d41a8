//! Commands through an LNS: a downlink is queued at ChirpStack v4 or The Things Stack v3 by
//! publishing on its MQTT integration, and it is `done` once the broker acknowledged the
//! publish (QoS 1): "queued at the network server". The network server then sends it in the
//! device's receive windows with its own counters, so nothing here touches FCntDown.
//!
//! | LNS | topic | JSON |
//! |---|---|---|
//! | ChirpStack v4 | `application/<application_id>/device/<dev_eui>/command/down` | `{"devEui", "confirmed", "fPort", "data" (base64)}` |
//! | TTS v3 | `v3/<app>@<tenant>/devices/<device_id>/down/push` | `{"downlinks": [{"f_port", "frm_payload" (base64), "confirmed", "priority"}]}` |

use super::config::parse_eui;
use super::lns_config::{Flavour, LnsMqttConfig};
use crate::commands::{Action, CommandJob, CommandRegistry, Downlink, Outcome, QueuedTarget};
use crate::record::{now_ms, Value, Values};
use base64::Engine;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Expiry of a command whose dispatcher set no deadline.
const DEFAULT_EXPIRY: Duration = Duration::from_secs(300);

/// Where one device's downlinks are published.
#[derive(Debug, Clone, PartialEq)]
struct Route {
    topic: String,
    dev_eui: String,
}

/// Topic and JSON of one downlink.
pub fn message(flavour: Flavour, topic: &str, dev_eui: &str, d: &Downlink) -> (String, Vec<u8>) {
    let data = base64::engine::general_purpose::STANDARD.encode(&d.payload);
    let json = match flavour {
        Flavour::Chirpstack => serde_json::json!({
            "devEui": dev_eui,
            "confirmed": d.confirmed,
            "fPort": d.fport,
            "data": data,
        }),
        Flavour::Ttn => serde_json::json!({
            "downlinks": [{
                "f_port": d.fport,
                "frm_payload": data,
                "confirmed": d.confirmed,
                "priority": "NORMAL",
            }]
        }),
    };
    (topic.to_owned(), json.to_string().into_bytes())
}

/// One publish waiting for its PUBACK.
struct InFlight {
    job: CommandJob,
}

/// Command side of the LNS adapter.
pub(super) struct LnsDownlinks {
    flavour: Flavour,
    routes: HashMap<String, Route>,
    allow: HashMap<String, super::downlink_config::DownlinkAllow>,
    commands: bool,
    jobs_tx: mpsc::Sender<CommandJob>,
    pub jobs_rx: Option<mpsc::Receiver<CommandJob>>,
    /// Handed to the MQTT client, packet id not known yet (assigned in this order).
    unassigned: VecDeque<InFlight>,
    /// Packet id → job waiting for PUBACK.
    by_pkid: HashMap<u16, InFlight>,
}

impl LnsDownlinks {
    pub fn new(cfg: &LnsMqttConfig) -> Self {
        let (jobs_tx, jobs_rx) = mpsc::channel(64);
        let app = cfg.application_id.clone().unwrap_or_default();
        let mut routes = HashMap::new();
        let mut allow = HashMap::new();
        for d in &cfg.devices {
            let (Some(eui), Some(a)) = (parse_eui(&d.dev_eui), &d.downlink) else {
                continue;
            };
            let id = format!("{eui:016x}");
            let topic = match cfg.flavour {
                Flavour::Chirpstack => format!("application/{app}/device/{id}/command/down"),
                Flavour::Ttn => format!(
                    "v3/{app}/devices/{}/down/push",
                    d.device_id.as_deref().unwrap_or(&id)
                ),
            };
            routes.insert(
                id.clone(),
                Route {
                    topic,
                    dev_eui: id.clone(),
                },
            );
            allow.insert(id, a.clone());
        }
        LnsDownlinks {
            flavour: cfg.flavour,
            routes,
            allow,
            commands: cfg.commands,
            jobs_tx,
            jobs_rx: Some(jobs_rx),
            unassigned: VecDeque::new(),
            by_pkid: HashMap::new(),
        }
    }

    /// Registers a target per device with a `downlink` allow-list when `commands = true`.
    pub fn register(&self, adapter: &str, registry: &Arc<CommandRegistry>) {
        if !self.commands {
            return;
        }
        for (id, allow) in &self.allow {
            let allow = allow.clone();
            let target = QueuedTarget::new(adapter, self.jobs_tx.clone(), move |c| allow.check(c));
            registry.register(id.clone(), target);
        }
    }

    /// Publishes the job's downlink (QoS 1) or answers it at once.
    pub fn take(&mut self, mut job: CommandJob, client: &rumqttc::AsyncClient) {
        if now_ms() > job.command.deadline_ms(DEFAULT_EXPIRY) {
            let _ = job.done.send(Outcome::Expired {
                reason: "the command expired before it could be queued at the network server"
                    .into(),
            });
            return;
        }
        // A `set` goes out as the payload the device's encoder builds.
        let encoded = match self.allow.get(&job.command.device) {
            Some(a) => a.downlink_of(&job.command.action),
            None => Err("the device takes no downlinks through this adapter".into()),
        };
        match encoded {
            Ok(d) => job.command.action = Action::Downlink(d),
            Err(reason) => {
                let _ = job.done.send(Outcome::rejected(reason));
                return;
            }
        }
        let (Some(route), Action::Downlink(d)) =
            (self.routes.get(&job.command.device), &job.command.action)
        else {
            let _ = job.done.send(Outcome::rejected(
                "the device takes no downlinks through this adapter",
            ));
            return;
        };
        let (topic, payload) = message(self.flavour, &route.topic, &route.dev_eui, d);
        match client.try_publish(topic, rumqttc::QoS::AtLeastOnce, false, payload) {
            Ok(()) => self.unassigned.push_back(InFlight { job }),
            Err(e) => {
                let _ = job.done.send(Outcome::failed(format!(
                    "the MQTT client could not queue the publish: {e}"
                )));
            }
        }
    }

    /// The client sent the next publish with packet id `pkid`.
    pub fn outgoing_publish(&mut self, pkid: u16) {
        if self.by_pkid.contains_key(&pkid) {
            // Re-sent after a reconnect: the job already has this id.
            return;
        }
        if let Some(f) = self.unassigned.pop_front() {
            self.by_pkid.insert(pkid, f);
        }
    }

    /// The broker acknowledged packet `pkid`: the downlink is queued at the network server.
    pub fn puback(&mut self, pkid: u16) {
        if let Some(f) = self.by_pkid.remove(&pkid) {
            let mut read_back = Values::new();
            read_back.insert("queued_at".into(), Value::Str("network_server".into()));
            let _ = f.job.done.send(Outcome::Done { read_back });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::southbound::lorawan::lns_config::downlink_issues as config_issues;

    fn down() -> Downlink {
        Downlink {
            fport: 10,
            payload: vec![1, 0xff],
            confirmed: true,
        }
    }

    #[test]
    fn chirpstack_and_tts_messages() {
        let (_, json) = message(Flavour::Chirpstack, "t", "0004a30b001c0530", &down());
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"devEui": "0004a30b001c0530", "confirmed": true, "fPort": 10, "data": "Af8="})
        );
        let (_, json) = message(Flavour::Ttn, "t", "x", &down());
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["downlinks"][0]["frm_payload"], "Af8=");
        assert_eq!(v["downlinks"][0]["f_port"], 10);
    }

    #[test]
    fn topics_and_config_issues() {
        let cfg: LnsMqttConfig = toml::from_str(
            "broker = \"mqtt://127.0.0.1:1883\"\nflavour = \"ttn\"\ncommands = true\n\
             [[devices]]\ndev_eui = \"0004A30B001C0530\"\ndownlink = { fports = [10] }\n",
        )
        .unwrap();
        assert_eq!(config_issues(&cfg).len(), 2, "{:?}", config_issues(&cfg));
        let cfg: LnsMqttConfig = toml::from_str(
            "broker = \"mqtt://127.0.0.1:1883\"\nflavour = \"ttn\"\ncommands = true\napplication_id = \"city@acme\"\n\
             [[devices]]\ndev_eui = \"0004A30B001C0530\"\ndevice_id = \"valve-7\"\ndownlink = { fports = [10] }\n",
        )
        .unwrap();
        assert!(config_issues(&cfg).is_empty());
        let d = LnsDownlinks::new(&cfg);
        assert_eq!(
            d.routes["0004a30b001c0530"].topic,
            "v3/city@acme/devices/valve-7/down/push"
        );
    }
}
