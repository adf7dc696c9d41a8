//! The `lorawan_lns_mqtt` adapter: uplinks from a ChirpStack v4 or TTS v3 MQTT integration.
//!
//! QoS 1 with manual acks: a PUBACK is sent only after `RecordSender::send` returned, so a crash
//! before the commit makes the broker redeliver. Subscriptions are renewed on every ConnAck
//! (a broker without a persistent session forgets them). Redeliveries are dropped by the
//! uplink's dedup key (ChirpStack `deduplicationId`).

use super::codec::CodecConfig;
use super::config::parse_eui;
use super::lns_config::{Flavour, LnsMqttConfig};
use super::transport::lns_uplink::{flatten_object, parse_chirpstack, parse_ttn, LnsUplink};
use crate::backoff::Backoff;
use crate::buffer::RecordSender;
use crate::record::{Record, Value};
use crate::southbound::{Adapter, AdapterError};
use crate::telemetry::untrusted::{LogLimiter, Untrusted};
use crate::telemetry::LorawanMetrics;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How many recent dedup keys are remembered.
const DEDUP_KEEP: usize = 1024;
/// Largest MQTT packet accepted from the broker. An uplink event is 1–2 kB, a TTS one with
/// the metadata of many gateways some tens of kB; rumqttc refuses a larger packet from its
/// header (before buffering it) and drops the connection.
pub const MAX_INCOMING_PACKET: usize = 64 * 1024;
/// Subscribes and acknowledgements only.
const MAX_OUTGOING_PACKET: usize = 16 * 1024;

pub struct LnsMqttAdapter {
    id: String,
    cfg: LnsMqttConfig,
    /// DevEUI → codec (empty map = accept every device with the default codec).
    devices: Vec<(u64, Option<CodecConfig>)>,
    seen: HashSet<String>,
    seen_order: VecDeque<String>,
    counters: Arc<LorawanMetrics>,
    /// Warnings quoting broker payloads.
    log_limit: LogLimiter,
    downlinks: super::lns_downlink::LnsDownlinks,
}

impl LnsMqttAdapter {
    pub fn new(
        id: &str,
        cfg: &LnsMqttConfig,
        counters: LorawanMetrics,
    ) -> Result<Self, AdapterError> {
        let devices = cfg
            .devices
            .iter()
            .map(|d| {
                parse_eui(&d.dev_eui)
                    .map(|e| (e, d.codec.clone()))
                    .ok_or_else(|| {
                        AdapterError::Config(format!("{id}: DevEUI {:?} invalid", d.dev_eui))
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(LnsMqttAdapter {
            id: id.to_owned(),
            cfg: cfg.clone(),
            devices,
            seen: HashSet::new(),
            seen_order: VecDeque::new(),
            counters: Arc::new(counters),
            log_limit: LogLimiter::default(),
            downlinks: super::lns_downlink::LnsDownlinks::new(cfg),
        })
    }

    /// Registers the devices with a `downlink` allow-list as command targets (when the
    /// config says `commands = true`).
    pub fn with_commands(self, registry: &Arc<crate::commands::CommandRegistry>) -> Self {
        self.downlinks.register(&self.id, registry);
        self
    }

    pub fn counters(&self) -> Arc<LorawanMetrics> {
        Arc::clone(&self.counters)
    }

    /// Turns one MQTT message into a record; `None` = nothing to store (counted).
    pub fn to_record(&mut self, payload: &[u8]) -> Option<Record> {
        let c = Arc::clone(&self.counters);
        let parsed = match self.cfg.flavour {
            Flavour::Chirpstack => parse_chirpstack(payload),
            Flavour::Ttn => parse_ttn(payload),
        };
        let up = match parsed {
            Ok(u) => u,
            Err(e) => {
                c.malformed.inc();
                // The error may quote the payload (a DevEUI, JSON text).
                if let Some(suppressed) = self.log_limit.allow("payload") {
                    tracing::warn!(adapter = %self.id, error = %Untrusted(&e.to_string()), suppressed, "LNS message dropped");
                }
                return None;
            }
        };
        if !self.remember(&up.dedup_key) {
            c.duplicate.inc();
            return None;
        }
        let codec = if self.devices.is_empty() {
            Some(self.cfg.codec.clone())
        } else {
            self.devices
                .iter()
                .find(|(e, _)| *e == up.dev_eui)
                .map(|(_, codec)| codec.clone().unwrap_or_else(|| self.cfg.codec.clone()))
        };
        let Some(codec) = codec else {
            c.unknown_device.inc();
            return None;
        };
        c.ok.inc();
        Some(self.build_record(&up, &codec))
    }

    fn build_record(&self, up: &LnsUplink, codec: &CodecConfig) -> Record {
        let mut r = Record::now(self.id.clone(), format!("{:016x}", up.dev_eui));
        if let Some(t) = up.time_ms {
            r.ts_ms = t;
        }
        match (&up.object, up.f_port) {
            (Some(obj), _) => r.values = flatten_object(obj),
            (None, Some(port)) => match codec.decode(port, &up.data) {
                Ok(d) => {
                    r.values = d.values;
                    for (k, u) in d.units {
                        r.meta.insert(format!("unit.{k}"), Value::Str(u));
                    }
                }
                Err(e) => {
                    self.counters.codec_error.inc();
                    r.values
                        .insert("payload".into(), Value::Str(hex::encode(&up.data)));
                    r.meta
                        .insert("codec_error".into(), Value::Str(e.to_string()));
                }
            },
            (None, None) => {
                r.values
                    .insert("payload".into(), Value::Str(hex::encode(&up.data)));
            }
        }
        let m = &mut r.meta;
        m.insert("fcnt".into(), Value::I64(i64::from(up.f_cnt)));
        if let Some(p) = up.f_port {
            m.insert("fport".into(), Value::I64(i64::from(p)));
        }
        if let Some(v) = up.rssi {
            m.insert("rssi".into(), Value::I64(v));
        }
        if let Some(v) = up.snr {
            m.insert("snr".into(), Value::F64(v));
        }
        if let Some(f) = up.frequency_hz {
            m.insert("freq".into(), Value::F64(f as f64 / 1e6));
        }
        if let Some(dr) = up.dr {
            m.insert("dr".into(), Value::I64(i64::from(dr)));
        }
        if let Some(g) = &up.gateway {
            m.insert("gateway".into(), Value::Str(g.clone()));
        }
        m.insert("confirmed".into(), Value::Bool(up.confirmed));
        r
    }

    fn remember(&mut self, key: &str) -> bool {
        if self.seen.contains(key) {
            return false;
        }
        if self.seen_order.len() >= DEDUP_KEEP {
            if let Some(old) = self.seen_order.pop_front() {
                self.seen.remove(&old);
            }
        }
        self.seen.insert(key.to_owned());
        self.seen_order.push_back(key.to_owned());
        true
    }

    fn options(&self) -> Result<MqttOptions, AdapterError> {
        let url = &self.cfg.broker;
        let (tls, rest) = if let Some(r) = url
            .strip_prefix("mqtts://")
            .or_else(|| url.strip_prefix("ssl://"))
        {
            (true, r)
        } else if let Some(r) = url
            .strip_prefix("mqtt://")
            .or_else(|| url.strip_prefix("tcp://"))
        {
            (false, r)
        } else {
            return Err(AdapterError::Config(format!(
                "{}: the broker must be mqtt:// or mqtts://",
                self.id
            )));
        };
        let (host, port) = match rest.trim_end_matches('/').rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse()
                    .map_err(|_| AdapterError::Config(format!("bad port in {url}")))?,
            ),
            None => (rest, if tls { 8883 } else { 1883 }),
        };
        let client_id = self
            .cfg
            .client_id
            .clone()
            .unwrap_or_else(|| format!("citygate-{}", self.id));
        let mut o = MqttOptions::new(client_id, host, port);
        o.set_keep_alive(self.cfg.keep_alive);
        o.set_manual_acks(true);
        o.set_max_packet_size(MAX_INCOMING_PACKET, MAX_OUTGOING_PACKET);
        // Keep the broker session so QoS 1 messages survive our restarts.
        o.set_clean_session(false);
        if tls {
            o.set_transport(rumqttc::Transport::tls_with_config(
                rumqttc::TlsConfiguration::Rustls(Arc::new(self.tls()?)),
            ));
        }
        if let Some(user) = &self.cfg.username {
            let pass = self
                .cfg
                .password()
                .read()
                .map_err(|e| AdapterError::Config(format!("{}: {e}", self.id)))?;
            o.set_credentials(user.clone(), pass.unwrap_or_default());
        }
        Ok(o)
    }
}

impl LnsMqttAdapter {
    /// rustls client config, built the one way the northbound MQTT binding builds it.
    fn tls(&self) -> Result<rustls::ClientConfig, AdapterError> {
        let mut m = crate::northbound::mqtt_config::MqttConfig::new(self.cfg.broker.clone());
        m.ca_file = self.cfg.ca_file.clone();
        m.client_cert_file = self.cfg.client_cert_file.clone();
        m.client_key_file = self.cfg.client_key_file.clone();
        crate::northbound::mqtt::tls_config(&m)
            .map_err(|e| AdapterError::Config(format!("{}: {e}", self.id)))
    }
}

#[async_trait::async_trait]
impl Adapter for LnsMqttAdapter {
    async fn run(
        &mut self,
        out: &RecordSender,
        shutdown: &CancellationToken,
    ) -> Result<(), AdapterError> {
        let (client, mut events) = AsyncClient::new(self.options()?, 64);
        let topics = self.cfg.topics();
        let qos = match self.cfg.flavour {
            Flavour::Chirpstack => QoS::AtLeastOnce,
            Flavour::Ttn => QoS::AtMostOnce, // TTS MQTT server supports QoS 0 only
        };
        let mut reconnect = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        let mut jobs = self.downlinks.jobs_rx.take();
        loop {
            let next_job = async {
                match jobs.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            };
            let ev = tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    // Best effort: the broker drops the connection on its own anyway.
                    let _ = client.try_disconnect();
                    self.downlinks.jobs_rx = jobs;
                    return Ok(());
                }
                Some(job) = next_job => {
                    self.downlinks.take(job, &client);
                    continue;
                }
                ev = events.poll() => ev,
            };
            match ev {
                Ok(Event::Outgoing(rumqttc::Outgoing::Publish(pkid))) => {
                    self.downlinks.outgoing_publish(pkid);
                }
                Ok(Event::Incoming(Packet::PubAck(ack))) => self.downlinks.puback(ack.pkid),
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    reconnect.reset();
                    for t in &topics {
                        // try_: the request queue is drained by this same loop.
                        if let Err(e) = client.try_subscribe(t.clone(), qos) {
                            tracing::warn!(adapter = %self.id, topic = %t, error = %e, "subscribe failed");
                        }
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if let Some(record) = self.to_record(&p.payload) {
                        if let Err(e) = out.send(vec![record]).await {
                            // No ack: the broker redelivers after reconnect.
                            self.downlinks.jobs_rx = jobs;
                            return Err(AdapterError::buffer("storing a record")(e));
                        }
                    }
                    if let Err(e) = client.try_ack(&p) {
                        tracing::warn!(adapter = %self.id, error = %e, "PUBACK not queued");
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    let delay = reconnect.next_delay();
                    tracing::warn!(adapter = %self.id, error = %e, retry_in = ?delay, "MQTT connection error; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => {
                            self.downlinks.jobs_rx = jobs;
                            return Ok(());
                        }
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chirpstack_messages_become_records_once() {
        let cfg: LnsMqttConfig = toml::from_str(
            "broker = \"mqtt://127.0.0.1:1883\"\nflavour = \"chirpstack\"\ncodec = { type = \"cayenne_lpp\" }\n",
        )
        .unwrap();
        let mut a = LnsMqttAdapter::new("cs", &cfg, LorawanMetrics::detached()).unwrap();
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/lns_integrations.json"
        );
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let first = serde_json::to_vec(&v["vectors"][0]["payload"]).unwrap();
        let r = a.to_record(&first).unwrap();
        assert_eq!(r.device, "0004a30b001c0530");
        assert_eq!(
            r.values["temperatureSensor.1"],
            Value::F64(24.3),
            "LNS object wins"
        );
        assert_eq!(r.meta["fcnt"], Value::I64(0));
        assert!(
            a.to_record(&first).is_none(),
            "same deduplicationId dropped"
        );
        assert_eq!(a.counters().duplicate.get(), 1);
        // Without `object` the local codec runs on `data` (deadbeef is not valid LPP → raw).
        let mut second = v["vectors"][1]["payload"].clone();
        second["deduplicationId"] = "other".into();
        let r = a.to_record(&serde_json::to_vec(&second).unwrap()).unwrap();
        assert_eq!(r.values["payload"], Value::Str("deadbeef".into()));
        assert!(r.meta.contains_key("codec_error"));
        assert!(a.to_record(b"garbage").is_none());
        assert_eq!(a.counters().malformed.get(), 1);
    }

    #[test]
    fn device_filter_and_broker_url() {
        let cfg: LnsMqttConfig = toml::from_str(
            "broker = \"mqtt://broker.local:2883\"\nflavour = \"ttn\"\nusername = \"app1\"\npassword = \"k\"\n[[devices]]\ndev_eui = \"0000000000000001\"\n",
        )
        .unwrap();
        let mut a = LnsMqttAdapter::new("ttn", &cfg, LorawanMetrics::detached()).unwrap();
        let o = a.options().unwrap();
        assert_eq!(o.broker_address(), ("broker.local".to_string(), 2883));
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/lns_integrations.json"
        );
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let msg = serde_json::to_vec(&v["ttn_v3"][0]["payload"]).unwrap();
        assert!(a.to_record(&msg).is_none(), "device not listed");
        assert_eq!(a.counters().unknown_device.get(), 1);
    }
}
