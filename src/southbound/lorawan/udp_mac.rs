//! The MAC side of the `lorawan_udp` adapter: answers the MAC commands of each uplink
//! ([`answer`]), turns a DevStatusAns into a record of its own (battery and margin, through
//! the buffer like any reading), and encodes what goes in the downlink's FOpts.

use super::LorawanUdpAdapter;
use crate::buffer::RecordSender;
use crate::record::{now_ms, Record, Value};
use crate::southbound::lorawan::config::LorawanUdpConfig;
use crate::southbound::lorawan::network::mac::{encode_downlink, Battery};
use crate::southbound::lorawan::network::mac_state::{answer, MacPolicy, MacUplink};
use crate::southbound::lorawan::network::server::Heard;

/// The adapter's MAC policy, from its config.
pub(super) struct MacSettings {
    policy: MacPolicy,
}

impl MacSettings {
    pub fn new(cfg: &LorawanUdpConfig) -> Self {
        MacSettings {
            policy: MacPolicy {
                region: cfg.region,
                adr: cfg.adr.enabled,
                margin_db: cfg.adr.margin_db,
                min_dr: cfg.adr.min_dr,
                max_dr: cfg.adr.max_dr,
                dev_status_every_ms: cfg
                    .dev_status_interval
                    .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
                sub_band: cfg.sub_band,
            },
        }
    }
}

/// What goes into the downlink for the MAC layer.
pub(super) struct MacAnswer {
    pub fopts: Vec<u8>,
    pub adr: bool,
    /// Send a downlink even if it carries nothing else (ADRACKReq).
    pub force: bool,
}

impl LorawanUdpAdapter {
    /// Answers the MAC commands `heard` carried and adds due requests; records a DevStatusAns.
    pub(super) async fn mac_answers(
        &mut self,
        out: &RecordSender,
        device: usize,
        heard: &Heard,
    ) -> MacAnswer {
        let policy = self.mac.policy;
        let Some(dev) = self.ns.device_mut(device) else {
            return MacAnswer {
                fopts: Vec::new(),
                adr: false,
                force: false,
            };
        };
        let up = MacUplink {
            datr: &heard.rx.datr,
            snr: heard.snr,
            adr: heard.adr,
            adr_ack_req: heard.adr_ack_req,
            commands: &heard.mac,
        };
        let reply = answer(&mut dev.state.mac, &up, &policy, now_ms());
        let id = format!("{:016x}", dev.dev_eui);
        for name in &reply.unexpected {
            self.counters.malformed.inc();
            tracing::info!(device = %id, command = name, "MAC answer to a request citygate did not send; ignored");
        }
        if let Some(s) = reply.dev_status {
            let mut r = Record::now(self.ns.adapter_id().to_owned(), id.clone());
            match s.battery {
                Battery::ExternalPower => {
                    r.values
                        .insert("battery_external".into(), Value::Bool(true));
                }
                Battery::Level(n) => {
                    let pct = (f64::from(n) * 100.0 / 254.0 * 10.0).round() / 10.0;
                    r.values.insert("battery_pct".into(), Value::F64(pct));
                    r.meta
                        .insert("unit.battery_pct".into(), Value::Str("%".into()));
                }
                Battery::Unknown => {}
            }
            r.values
                .insert("snr_margin_db".into(), Value::I64(i64::from(s.margin_db)));
            r.meta
                .insert("unit.snr_margin_db".into(), Value::Str("dB".into()));
            r.meta
                .insert("mac".into(), Value::Str("DevStatusAns".into()));
            if let Err(e) = out.send(vec![r]).await {
                tracing::error!(device = %id, error = %e, "buffer refused the DevStatus record");
            }
        }
        // FOpts holds 15 bytes: what does not fit goes with a later downlink (still pending).
        let mut fopts = Vec::new();
        for c in &reply.commands {
            match encode_downlink(std::slice::from_ref(c)) {
                Ok(b) if fopts.len() + b.len() <= 15 => fopts.extend_from_slice(&b),
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(device = %id, error = %e, "MAC command not encodable; skipped")
                }
            }
        }
        MacAnswer {
            fopts,
            adr: policy.adr,
            force: reply.force,
        }
    }
}
