//! The edge network server: what happens to one received packet, without any I/O.
//!
//! [`NetworkServer::handle_rxpk`] takes one `rxpk` and says what to do (emit a record, send a
//! join-accept, acknowledge later, or nothing) and counts the result. The UDP loop in
//! `server.rs` does the I/O and persistence; the benchmark drives this type directly.

use super::crypto::AesKey;
use super::fcnt::{older_fcnt_candidates, FcntError, FcntVerdict};
use super::frame::{self, build_data_down, DataDown, DataFrame, PhyPayload};
use super::join::{derive_session_keys, JoinAccept, JoinRequest};
use super::mac::{self, UplinkCommand};
use super::region::{Region, JOIN_ACCEPT_DELAY1_US};
use super::session::{state_key, DeviceState, Session};
use crate::record::{now_ms, parse_ts, Record, Value};
use crate::southbound::lorawan::codec::CodecConfig;
use crate::southbound::lorawan::transport::gwmp::{Datr, GatewayEui, RxPk, TxPk};
use crate::telemetry::LorawanMetrics;
use base64::Engine;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// OTAA root keys of a device.
#[derive(Debug, Clone)]
pub struct OtaaKeys {
    pub join_eui: u64,
    pub app_key: AesKey,
}

/// A configured device with its keys resolved and its state loaded.
#[derive(Debug, Clone)]
pub struct Device {
    pub dev_eui: u64,
    pub otaa: Option<OtaaKeys>,
    pub codec: CodecConfig,
    pub max_fcnt_gap: Option<u32>,
    pub state: DeviceState,
}

/// Radio settings shared by all devices of the adapter.
#[derive(Debug, Clone)]
pub struct RadioSettings {
    pub region: Region,
    pub net_id: u32,
    pub rx1_dr_offset: u8,
    pub rx_delay_s: u8,
    pub power_dbm: i32,
    pub dedup_window: Duration,
    /// CFList of join-accepts (US915/AU915 sub-band channel mask), see [`Region::join_cf_list`].
    pub cf_list: Option<[u8; 16]>,
}

/// Where to answer a confirmed uplink once its record is committed.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingAck {
    pub device: usize,
    pub tmst: u32,
    pub freq: f64,
    pub datr: String,
}

/// What a new uplink tells the downlink side: where its receive windows are, its FCtrl bits,
/// its signal quality and the MAC commands it carried (FOpts or FPort 0).
#[derive(Debug, Clone, PartialEq)]
pub struct Heard {
    pub rx: PendingAck,
    pub fcnt: u32,
    /// The device acknowledges the last confirmed downlink.
    pub ack_bit: bool,
    pub adr: bool,
    pub adr_ack_req: bool,
    pub snr: Option<f64>,
    pub mac: Vec<UplinkCommand>,
}

/// What one data downlink carries besides its counter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DownContent {
    pub ack: bool,
    pub adr: bool,
    /// MAC commands, encoded (at most 15 bytes go in FOpts).
    pub fopts: Vec<u8>,
    /// Application payload: FPort, plaintext, confirmed.
    pub app: Option<(u8, Vec<u8>, bool)>,
}

impl DownContent {
    pub fn is_empty(&self) -> bool {
        !self.ack && self.fopts.is_empty() && self.app.is_none()
    }

    /// PHYPayload length: MHDR 1 + FHDR 7 + FOpts + (FPort 1 + payload) + MIC 4.
    pub fn phy_len(&self) -> usize {
        12 + self.fopts.len().min(15) + self.app.as_ref().map_or(0, |(_, p, _)| 1 + p.len())
    }
}

/// What the caller must do after [`NetworkServer::handle_rxpk`].
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Nothing to do (the reason is counted).
    Dropped,
    /// A new uplink: send the record (if any), persist `device`'s state, then answer in its
    /// receive windows (ACK if asked, MAC answers, a queued downlink).
    Uplink {
        device: usize,
        record: Option<Record>,
        ack: Option<PendingAck>,
        heard: Box<Heard>,
    },
    /// A retransmission: nothing to record; re-ACK if it was confirmed.
    Retransmission {
        device: usize,
        ack: Option<PendingAck>,
    },
    /// A valid join: persist `device`'s state, then send `txpk` through the gateway.
    Join { device: usize, txpk: TxPk },
}

pub struct NetworkServer {
    adapter: String,
    radio: RadioSettings,
    devices: Vec<Device>,
    seen: HashMap<Vec<u8>, Instant>,
    /// Size of `seen` at which expired entries are next swept (amortised O(1) per frame).
    prune_at: usize,
    counters: Arc<LorawanMetrics>,
}

impl NetworkServer {
    pub fn new(
        adapter: impl Into<String>,
        radio: RadioSettings,
        devices: Vec<Device>,
        counters: Arc<LorawanMetrics>,
    ) -> Self {
        NetworkServer {
            adapter: adapter.into(),
            radio,
            devices,
            seen: HashMap::new(),
            prune_at: 4096,
            counters,
        }
    }

    pub fn adapter_id(&self) -> &str {
        &self.adapter
    }

    pub fn devices(&self) -> &[Device] {
        &self.devices
    }

    pub fn device_mut(&mut self, i: usize) -> Option<&mut Device> {
        self.devices.get_mut(i)
    }

    /// `(state key, JSON)` to persist for device `i`.
    pub fn state_of(&self, i: usize) -> Option<(String, String)> {
        let d = self.devices.get(i)?;
        Some((state_key(&self.adapter, d.dev_eui), d.state.to_json()))
    }

    pub fn handle_rxpk(&mut self, gateway: GatewayEui, rx: &RxPk, now: Instant) -> Outcome {
        let c = Arc::clone(&self.counters);
        if rx.stat != 1 {
            c.crc_error.inc();
            return Outcome::Dropped;
        }
        let Ok(phy) = base64::engine::general_purpose::STANDARD.decode(rx.data.trim()) else {
            c.malformed.inc();
            return Outcome::Dropped;
        };
        if self.is_duplicate(&phy, now) {
            c.duplicate.inc();
            return Outcome::Dropped;
        }
        let outcome = match frame::parse(&phy) {
            Ok(PhyPayload::Data(f)) if f.is_uplink() => self.data_up(&f, gateway, rx),
            Ok(PhyPayload::JoinRequest(jr)) => self.join(&jr, rx),
            Ok(PhyPayload::Proprietary(payload)) => {
                // No DevAddr, FCnt or MIC: nothing to attribute it to or to verify. Reported
                // (counted, payload without the MHDR at debug level), never recorded.
                c.proprietary.inc();
                tracing::debug!(gateway = %gateway, mhdr = %format!("{:02x}", phy[0]), payload = %hex::encode(payload), "proprietary LoRaWAN frame");
                Outcome::Dropped
            }
            Ok(_) | Err(_) => {
                tracing::debug!(gateway = %gateway, len = phy.len(), "dropping malformed or downlink frame");
                c.malformed.inc();
                Outcome::Dropped
            }
        };
        if outcome != Outcome::Dropped {
            self.seen.insert(phy, now);
        }
        outcome
    }

    fn is_duplicate(&mut self, phy: &[u8], now: Instant) -> bool {
        let window = self.radio.dedup_window;
        if self.seen.len() >= self.prune_at {
            self.seen.retain(|_, t| now.duration_since(*t) < window);
            self.prune_at = (2 * self.seen.len()).max(4096);
        }
        self.seen
            .get(phy)
            .is_some_and(|t| now.duration_since(*t) < window)
    }

    fn data_up(&mut self, f: &DataFrame<'_>, gateway: GatewayEui, rx: &RxPk) -> Outcome {
        let c = Arc::clone(&self.counters);
        let mut found = None;
        let mut known = false;
        'search: for (i, d) in self.devices.iter().enumerate() {
            for (pending, s) in [(false, &d.state.session), (true, &d.state.pending)] {
                let Some(s) = s.as_ref().filter(|s| s.dev_addr == f.dev_addr) else {
                    continue;
                };
                known = true;
                let fcnt32 = s.fcnt_up.candidate(f.fcnt16);
                if f.mic_ok(&s.nwk_s_key, fcnt32) {
                    found = Some((i, pending, fcnt32));
                    break 'search;
                }
            }
        }
        let Some((i, pending, fcnt32)) = found else {
            if !known {
                c.unknown_device.inc();
                tracing::debug!(dev_addr = %format!("{:08x}", f.dev_addr), "uplink from unknown DevAddr");
            } else if self.is_replay(f) {
                c.replay.inc();
                tracing::warn!(dev_addr = %format!("{:08x}", f.dev_addr), fcnt16 = f.fcnt16, "replayed uplink rejected");
            } else {
                c.bad_mic.inc();
                tracing::warn!(dev_addr = %format!("{:08x}", f.dev_addr), "uplink MIC mismatch");
            }
            return Outcome::Dropped;
        };
        let dev = &mut self.devices[i];
        if pending {
            // First uplink on the new OTAA session: the device did receive the join-accept,
            // and with it went back to the default RX settings and channels.
            dev.state.session = dev.state.pending.take();
            dev.state.mac.reset_radio();
        }
        let Some(s) = dev.state.session.as_mut() else {
            return Outcome::Dropped;
        };
        let ack = f.is_confirmed().then(|| PendingAck {
            device: i,
            tmst: rx.tmst,
            freq: rx.freq,
            datr: rx.datr.to_string(),
        });
        match s.fcnt_up.check(fcnt32, dev.max_fcnt_gap) {
            Err(e @ (FcntError::Old { .. } | FcntError::GapTooLarge { .. })) => {
                c.replay.inc();
                tracing::warn!(device = %format!("{:016x}", dev.dev_eui), error = %e, "uplink counter rejected");
                Outcome::Dropped
            }
            Ok(FcntVerdict::Retransmission) => {
                c.retransmission.inc();
                Outcome::Retransmission { device: i, ack }
            }
            Ok(FcntVerdict::New { .. }) => {
                s.fcnt_up.accept(fcnt32);
                let plain = f.decrypt(&s.nwk_s_key, &s.app_s_key, fcnt32);
                c.ok.inc();
                let mac_bytes = if f.fport == Some(0) {
                    &plain[..]
                } else {
                    f.fopts
                };
                let parsed = mac::parse_uplink(mac_bytes);
                if let Some(e) = &parsed.error {
                    c.malformed.inc();
                    tracing::debug!(device = %format!("{:016x}", dev.dev_eui), error = %e, "MAC commands cut short");
                }
                let heard = Box::new(Heard {
                    rx: PendingAck {
                        device: i,
                        tmst: rx.tmst,
                        freq: rx.freq,
                        datr: rx.datr.to_string(),
                    },
                    fcnt: fcnt32,
                    ack_bit: f.ack(),
                    adr: f.adr(),
                    adr_ack_req: f.adr_ack_req(),
                    snr: rx.lsnr,
                    mac: parsed.commands,
                });
                let record = f.fport.filter(|p| *p > 0).map(|port| {
                    let mut r = Record::now(self.adapter.clone(), format!("{:016x}", dev.dev_eui));
                    if let Some(ts) = rx.time.as_deref().and_then(parse_ts) {
                        r.ts_ms = ts;
                    }
                    match dev.codec.decode(port, &plain) {
                        Ok(d) => {
                            r.values = d.values;
                            for (k, u) in d.units {
                                r.meta.insert(format!("unit.{k}"), Value::Str(u));
                            }
                        }
                        Err(e) => {
                            c.codec_error.inc();
                            tracing::warn!(device = %r.device, error = %e, "payload codec failed; raw payload recorded");
                            r.values.insert("payload".into(), Value::Str(hex::encode(&plain)));
                            r.meta.insert("codec_error".into(), Value::Str(e.to_string()));
                        }
                    }
                    radio_meta(&mut r, f, fcnt32, port, gateway, rx);
                    r
                });
                Outcome::Uplink {
                    device: i,
                    record,
                    ack,
                    heard,
                }
            }
        }
    }

    /// True if the MIC verifies with an older counter of a session with this DevAddr.
    fn is_replay(&self, f: &DataFrame<'_>) -> bool {
        self.devices
            .iter()
            .flat_map(|d| [&d.state.session, &d.state.pending])
            .flatten()
            .filter(|s| s.dev_addr == f.dev_addr)
            .any(|s| {
                older_fcnt_candidates(s.fcnt_up.next, f.fcnt16)
                    .any(|old| f.mic_ok(&s.nwk_s_key, old))
            })
    }

    fn join(&mut self, jr: &JoinRequest, rx: &RxPk) -> Outcome {
        let c = Arc::clone(&self.counters);
        let Some(i) = self
            .devices
            .iter()
            .position(|d| d.dev_eui == jr.dev_eui && d.otaa.is_some())
        else {
            c.unknown_device.inc();
            tracing::debug!(dev_eui = %format!("{:016x}", jr.dev_eui), "join-request from unknown device");
            return Outcome::Dropped;
        };
        let dev_addr = self.allocate_dev_addr();
        let radio = self.radio.clone();
        let dev = &mut self.devices[i];
        let dev_eui = format!("{:016x}", dev.dev_eui);
        let Some(otaa) = dev.otaa.as_ref() else {
            return Outcome::Dropped;
        };
        if otaa.join_eui != jr.join_eui {
            c.join_rejected.inc();
            tracing::warn!(device = %dev_eui, join_eui = %format!("{:016x}", jr.join_eui), "join-request with another JoinEUI");
            return Outcome::Dropped;
        }
        if !jr.mic_ok(&otaa.app_key) {
            c.bad_mic.inc();
            tracing::warn!(device = %dev_eui, "join-request MIC mismatch");
            return Outcome::Dropped;
        }
        if dev.state.dev_nonces.is_used(jr.dev_nonce) {
            c.replay.inc();
            tracing::warn!(device = %dev_eui, dev_nonce = jr.dev_nonce, "DevNonce reused; join-request rejected");
            return Outcome::Dropped;
        }
        // Join-accepts go out in RX1 at the uplink's data rate (RX1DROffset only applies after).
        let Ok(rx1) = radio.region.rx1(rx.freq, &rx.datr.to_string(), 0) else {
            c.join_rejected.inc();
            return Outcome::Dropped;
        };
        let app_nonce = rand::random::<u32>() & 0x00ff_ffff;
        let keys = derive_session_keys(&otaa.app_key, app_nonce, radio.net_id, jr.dev_nonce);
        let ja = JoinAccept {
            app_nonce,
            net_id: radio.net_id,
            dev_addr,
            dl_settings: (radio.rx1_dr_offset << 4) | (radio.region.params().rx2_dr & 0x0f),
            rx_delay: radio.rx_delay_s,
            cf_list: radio.cf_list,
        };
        let phy = ja.encrypt(&otaa.app_key);
        dev.state.dev_nonces.record(jr.dev_nonce);
        dev.state.pending = Some(Session {
            dev_addr,
            nwk_s_key: keys.nwk_s_key,
            app_s_key: keys.app_s_key,
            fcnt_up: Default::default(),
            fcnt_down: 0,
        });
        c.join_accepted.inc();
        tracing::info!(device = %dev_eui, dev_addr = %format!("{dev_addr:08x}"), "join accepted");
        let tmst = rx.tmst.wrapping_add(JOIN_ACCEPT_DELAY1_US);
        Outcome::Join {
            device: i,
            txpk: txpk(tmst, rx1.freq_mhz, rx1.datr, radio.power_dbm, &phy),
        }
    }

    /// A random DevAddr with this NetID's NwkID (type-0 NetID: 7 bits) that no session uses.
    fn allocate_dev_addr(&self) -> u32 {
        let prefix = (self.radio.net_id & 0x7f) << 25;
        loop {
            let a = prefix | (rand::random::<u32>() & 0x01ff_ffff);
            let used = self
                .devices
                .iter()
                .flat_map(|d| [&d.state.session, &d.state.pending])
                .flatten()
                .any(|s| s.dev_addr == a);
            if !used {
                return a;
            }
        }
    }

    /// Builds the ACK downlink for a confirmed uplink (uses one downlink counter). `rx2`
    /// chooses the second window when the commit took too long for RX1.
    pub fn build_ack(&mut self, ack: &PendingAck, rx2: bool) -> Option<TxPk> {
        let radio = self.radio.clone();
        let s = self.devices.get_mut(ack.device)?.state.session.as_mut()?;
        let delay1 = u32::from(radio.rx_delay_s.max(1)) * 1_000_000;
        let (tmst, freq, datr) = if rx2 {
            let p = radio.region.params();
            let dr = p.lora_dr(p.rx2_dr)?;
            (
                ack.tmst.wrapping_add(delay1 + 1_000_000),
                f64::from(p.rx2_freq_hz) / 1e6,
                dr.datr(),
            )
        } else {
            let rx1 = radio
                .region
                .rx1(ack.freq, &ack.datr, radio.rx1_dr_offset)
                .ok()?;
            (ack.tmst.wrapping_add(delay1), rx1.freq_mhz, rx1.datr)
        };
        let down = DataDown {
            confirmed: false,
            dev_addr: s.dev_addr,
            ack: true,
            adr: false,
            fpending: false,
            fcnt32: s.fcnt_down,
            fopts: &[],
            fport: None,
            payload: &[],
        };
        let phy = build_data_down(&down, &s.nwk_s_key, &s.app_s_key);
        s.fcnt_down = s.fcnt_down.wrapping_add(1);
        Some(txpk(tmst, freq, datr, radio.power_dbm, &phy))
    }
}

impl NetworkServer {
    /// Builds a data downlink for `device` with its next FCntDown and reserves that counter
    /// (the caller persists the state before sending: a crash then leaves a gap, never a
    /// reuse). Returns the PHYPayload and the FCntDown used; `None` without a session.
    pub fn build_down(&mut self, device: usize, c: &DownContent) -> Option<(Vec<u8>, u32)> {
        let s = self.devices.get_mut(device)?.state.session.as_mut()?;
        let fcnt = s.fcnt_down;
        let (fport, payload, confirmed) = match &c.app {
            Some((port, p, confirmed)) => (Some(*port), &p[..], *confirmed),
            None => (None, &[][..], false),
        };
        let down = DataDown {
            confirmed,
            dev_addr: s.dev_addr,
            ack: c.ack,
            adr: c.adr,
            fpending: false,
            fcnt32: fcnt,
            fopts: &c.fopts,
            fport,
            payload,
        };
        let phy = build_data_down(&down, &s.nwk_s_key, &s.app_s_key);
        s.fcnt_down = s.fcnt_down.wrapping_add(1);
        Some((phy, fcnt))
    }

    pub fn radio(&self) -> &RadioSettings {
        &self.radio
    }
}

fn radio_meta(r: &mut Record, f: &DataFrame<'_>, fcnt32: u32, port: u8, gw: GatewayEui, rx: &RxPk) {
    let m = &mut r.meta;
    if rx.rssi.fract() == 0.0 {
        m.insert("rssi".into(), Value::I64(rx.rssi as i64));
    } else {
        m.insert("rssi".into(), Value::F64(rx.rssi));
    }
    if let Some(snr) = rx.lsnr {
        m.insert("snr".into(), Value::F64(snr));
    }
    m.insert("freq".into(), Value::F64(rx.freq));
    m.insert("datr".into(), Value::Str(rx.datr.to_string()));
    m.insert("fcnt".into(), Value::I64(i64::from(fcnt32)));
    m.insert("fport".into(), Value::I64(i64::from(port)));
    m.insert("gateway".into(), Value::Str(gw.to_string()));
    m.insert("dev_addr".into(), Value::Str(format!("{:08x}", f.dev_addr)));
    m.insert("confirmed".into(), Value::Bool(f.is_confirmed()));
    if r.ts_ms == 0 {
        r.ts_ms = now_ms();
    }
}

/// A LoRa downlink at concentrator time `tmst` (inverted polarity, no CRC, per PROTOCOL.TXT).
pub fn txpk(tmst: u32, freq: f64, datr: String, power_dbm: i32, phy: &[u8]) -> TxPk {
    TxPk {
        imme: false,
        tmst: Some(tmst),
        freq,
        rfch: 0,
        powe: power_dbm,
        modu: "LORA".into(),
        datr: Datr::Lora(datr),
        codr: "4/5".into(),
        ipol: true,
        size: phy.len() as u32,
        data: base64::engine::general_purpose::STANDARD.encode(phy),
        ncrc: true,
    }
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "server_region_tests.rs"]
mod region_tests;
