//! The MAC side of the `lorawan_udp` adapter: answers the MAC commands of each uplink
//! ([`answer`]), turns a DevStatusAns into a record of its own (battery and margin, through
//! the buffer like any reading), and encodes what goes in the downlink's FOpts.

use super::LorawanUdpAdapter;
use crate::buffer::RecordSender;
use crate::record::{now_ms, Record, Value};
use crate::southbound::lorawan::config::LorawanUdpConfig;
use crate::southbound::lorawan::network::downlink::WindowSettings;
use crate::southbound::lorawan::network::mac::{encode_downlink, Battery};
use crate::southbound::lorawan::network::mac_setup::{RadioSetup, SetupAnswer, MAX_NACKS};
use crate::southbound::lorawan::network::mac_state::{answer_with, MacPolicy, MacState, MacUplink};
use crate::southbound::lorawan::network::server::Heard;

/// The adapter's MAC policy and the radio settings asked of each device, from its config.
pub(super) struct MacSettings {
    policy: MacPolicy,
    /// Per device (same index as the network server's devices).
    setups: Vec<RadioSetup>,
}

impl MacSettings {
    pub fn new(cfg: &LorawanUdpConfig) -> Self {
        MacSettings {
            setups: cfg
                .devices
                .iter()
                .map(|d| d.mac_setup(&cfg.mac_setup).radio_setup())
                .collect(),
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
                rx1_delay_s: cfg.rx_delay,
                rx1_dr_offset: cfg.rx1_dr_offset,
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

impl MacSettings {
    /// The receive windows of `device`: the adapter's, with the RX1 delay, RX1DROffset and RX2
    /// the device acknowledged.
    pub fn windows_of(&self, base: &WindowSettings, st: &MacState) -> WindowSettings {
        let e = st.radio.effective(&self.policy.radio_defaults());
        WindowSettings {
            rx_delay_s: e.rx1_delay_s,
            rx1_dr_offset: e.rx1_dr_offset,
            rx2_dr: e.rx2_dr,
            rx2_freq_hz: e.rx2_freq_hz,
            ..*base
        }
    }
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
        let none = RadioSetup::default();
        let setup = self.mac.setups.get(device).unwrap_or(&none);
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
        let reply = answer_with(&mut dev.state.mac, &up, &policy, setup, now_ms());
        let id = format!("{:016x}", dev.dev_eui);
        for a in &reply.setup {
            match a {
                SetupAnswer::Applied(req) => {
                    tracing::info!(device = %id, request = ?req, "device applied the radio settings")
                }
                SetupAnswer::Refused { req, fields, count } => {
                    self.counters.mac_nack.inc();
                    let given_up = *count >= MAX_NACKS;
                    tracing::warn!(device = %id, request = ?req, refused = ?fields, times = count, given_up,
                        "device refused the radio settings (NACK){}",
                        if given_up { "; not asked again until the config changes" } else { "" });
                }
            }
        }
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
                // A smaller command may still fit.
                Ok(_) => continue,
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
