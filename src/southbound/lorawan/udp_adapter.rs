//! The `lorawan_udp` adapter: a GWMP v2 server loop on tokio UDP.
//!
//! One task owns the socket and the [`NetworkServer`]; packets are handled in arrival order,
//! so there is no locking. Any malformed datagram is counted and dropped — only a socket
//! error ends `run` (the supervisor restarts it; sessions and counters stay in `self`).

use super::config::{parse_eui, parse_net_id, LorawanUdpConfig};
use super::network::downlink::WindowSettings;
use super::network::server::{Device, NetworkServer, OtaaKeys, Outcome, RadioSettings};
use super::network::session::{state_key, DeviceState, Session};
use super::transport::gateway_table::GatewayTable;
use super::transport::gwmp::{self, GatewayEui, Packet, PullRespPayload, TxPk};
use crate::buffer::RecordSender;
use crate::southbound::{Adapter, AdapterError};
use crate::telemetry::untrusted::{LogLimiter, Untrusted};
use crate::telemetry::LorawanMetrics;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

#[path = "udp_downlink.rs"]
mod downlink;
#[path = "udp_mac.rs"]
mod mac;

/// How often queued commands are checked for their deadline.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

pub struct LorawanUdpAdapter {
    bind: SocketAddr,
    ns: NetworkServer,
    counters: Arc<LorawanMetrics>,
    /// Gateway EUI → address its PULL_DATA came from (where downlinks go), bounded.
    gateways: GatewayTable,
    /// Warnings built from what forwarders send, per gateway (or sender address).
    log_limit: LogLimiter,
    /// PULL_RESP tokens awaiting a TX_ACK, with the device they were for.
    pending_tx: HashMap<[u8; 2], u64>,
    state_loaded: bool,
    bound: watch::Sender<Option<SocketAddr>>,
    version: u8,
    downlinks: downlink::Downlinks,
    mac: mac::MacSettings,
}

impl LorawanUdpAdapter {
    /// Resolves keys (files, environment) and prepares the devices; fails on unreadable keys.
    /// `counters`: the adapter's handle ([`LorawanMetrics::new`], or `detached()` in tests).
    pub fn new(
        id: &str,
        cfg: &LorawanUdpConfig,
        counters: LorawanMetrics,
    ) -> Result<Self, AdapterError> {
        let err = |m: String| AdapterError::Config(format!("lorawan_udp {id}: {m}"));
        let mut devices = Vec::new();
        let mut downlink_allow = Vec::new();
        for (i, d) in cfg.devices.iter().enumerate() {
            let dev_eui =
                parse_eui(&d.dev_eui).ok_or_else(|| err(format!("devices.{i}.dev_eui invalid")))?;
            let mut state = DeviceState::default();
            let mut otaa = None;
            if let Some(abp) = &d.abp {
                let dev_addr = super::config::parse_dev_addr(&abp.dev_addr)
                    .ok_or_else(|| err(format!("devices.{i}.abp.dev_addr invalid")))?;
                let key = |k| {
                    super::config::load_key(k).map_err(|e| err(format!("devices.{i}.abp: {e}")))
                };
                state.session = Some(Session {
                    dev_addr,
                    nwk_s_key: key(abp.nwk_s_key())?,
                    app_s_key: key(abp.app_s_key())?,
                    fcnt_up: Default::default(),
                    fcnt_down: 0,
                });
            }
            if let Some(o) = &d.otaa {
                let app_key = super::config::load_key(o.app_key())
                    .map_err(|e| err(format!("devices.{i}.otaa: {e}")))?;
                let join_eui = parse_eui(&o.join_eui)
                    .ok_or_else(|| err(format!("devices.{i}.otaa.join_eui invalid")))?;
                otaa = Some(OtaaKeys { join_eui, app_key });
            }
            downlink_allow.push((dev_eui, d.downlink.clone()));
            devices.push(Device {
                dev_eui,
                otaa,
                codec: d.codec.clone(),
                max_fcnt_gap: d.mac_version.max_fcnt_gap(),
                state,
            });
        }
        let radio = RadioSettings {
            region: cfg.region,
            net_id: parse_net_id(&cfg.net_id).ok_or_else(|| err("net_id invalid".into()))?,
            rx1_dr_offset: cfg.rx1_dr_offset,
            rx_delay_s: cfg.rx_delay,
            power_dbm: cfg
                .downlink_power_dbm
                .unwrap_or(cfg.region.params().downlink_power_dbm),
            dedup_window: cfg.dedup_window,
            cf_list: cfg.region.join_cf_list(cfg.sub_band),
        };
        let allow = super::config::parse_gateway_allow_list(&cfg.gateways)
            .map_err(|i| err(format!("gateways.{i} invalid")))?;
        let counters = Arc::new(counters);
        let settings = WindowSettings::new(
            radio.region,
            radio.rx1_dr_offset,
            radio.rx_delay_s,
            radio.power_dbm,
        );
        Ok(LorawanUdpAdapter {
            downlinks: downlink::Downlinks::new(settings, cfg.commands, downlink_allow),
            mac: mac::MacSettings::new(cfg),
            bind: cfg.bind,
            ns: NetworkServer::new(id, radio, devices, Arc::clone(&counters)),
            counters,
            gateways: GatewayTable::new(cfg.max_gateways, cfg.gateway_idle_timeout, allow),
            log_limit: LogLimiter::default(),
            pending_tx: HashMap::new(),
            state_loaded: false,
            bound: watch::channel(None).0,
            version: 2,
        })
    }

    pub fn counters(&self) -> Arc<LorawanMetrics> {
        Arc::clone(&self.counters)
    }

    /// The address actually bound (useful with port 0), once `run` has bound it.
    pub fn bound_addr(&self) -> watch::Receiver<Option<SocketAddr>> {
        self.bound.subscribe()
    }

    /// Restores persisted state: OTAA sessions, DevNonces and counters of every device.
    async fn load_state(&mut self, out: &RecordSender) -> Result<(), AdapterError> {
        for i in 0..self.ns.devices().len() {
            let dev_eui = self.ns.devices()[i].dev_eui;
            let key = state_key(self.ns_adapter_id(), dev_eui);
            let stored = out
                .get_state(&key)
                .await
                .map_err(AdapterError::buffer("reading LoRaWAN state"))?;
            let Some(json) = stored else { continue };
            let Some(saved) = DeviceState::from_json(&json) else {
                tracing::warn!(device = %format!("{dev_eui:016x}"), "unreadable LoRaWAN state ignored");
                continue;
            };
            let Some(dev) = self.ns.device_mut(i) else {
                continue;
            };
            if dev.otaa.is_some() {
                dev.state = saved;
            } else if let (Some(cur), Some(old)) = (dev.state.session.as_mut(), saved.session) {
                // ABP: keys come from the config; keep the counters and the MAC state (pending
                // requests, acknowledged RX settings) if the address is unchanged.
                if cur.dev_addr == old.dev_addr {
                    cur.fcnt_up = old.fcnt_up;
                    cur.fcnt_down = old.fcnt_down;
                    dev.state.mac = saved.mac;
                }
            }
        }
        Ok(())
    }

    fn ns_adapter_id(&self) -> &str {
        self.ns.adapter_id()
    }

    async fn persist(&self, out: &RecordSender, device: usize) {
        self.persist_checked(out, device).await;
    }

    /// Persists the state of `device`; false (logged) if the buffer refused it.
    async fn persist_checked(&self, out: &RecordSender, device: usize) -> bool {
        let Some((key, json)) = self.ns.state_of(device) else {
            return false;
        };
        match out.put_state(&key, json).await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(key = %key, error = %e, "cannot persist LoRaWAN state");
                false
            }
        }
    }

    /// Sends `txpk` to `gateway` in a PULL_RESP; the token its TX_ACK will carry, or `None`
    /// when the gateway has no known address.
    async fn send_down(
        &mut self,
        sock: &UdpSocket,
        out: &RecordSender,
        gateway: GatewayEui,
        txpk: TxPk,
        dev_eui: u64,
    ) -> Option<[u8; 2]> {
        let now = Instant::now();
        let Some(addr) = self.gateways.addr(&gateway, now) else {
            self.counters.downlink_no_route.inc();
            tracing::warn!(gateway = %gateway, "no PULL_DATA from the gateway within gateway_idle_timeout; downlink dropped");
            return None;
        };
        self.downlinks.record_airtime(&txpk, now);
        self.save_duty_cycle(out).await;
        let token: [u8; 2] = rand::random();
        let pkt = Packet::PullResp {
            version: self.version,
            token,
            payload: PullRespPayload { txpk },
        };
        if self.pending_tx.len() > 256 {
            self.pending_tx.clear();
        }
        self.pending_tx.insert(token, dev_eui);
        match sock.send_to(&gwmp::encode(&pkt), addr).await {
            Ok(_) => self.counters.downlink_sent.inc(),
            Err(e) => tracing::warn!(gateway = %gateway, error = %e, "PULL_RESP send failed"),
        }
        Some(token)
    }

    async fn handle_datagram(
        &mut self,
        sock: &UdpSocket,
        out: &RecordSender,
        d: &[u8],
        from: SocketAddr,
    ) {
        let c = Arc::clone(&self.counters);
        let pkt = match gwmp::parse(d) {
            Ok(p) => p,
            Err(e) => {
                c.malformed.inc();
                // The error may quote the sender's JSON.
                if let Some(suppressed) = self.log_limit.allow(&from.ip().to_string()) {
                    tracing::debug!(from = %from, error = %Untrusted(&e.to_string()), suppressed, "malformed GWMP datagram dropped");
                }
                return;
            }
        };
        let sender = match &pkt {
            Packet::PushData { gateway, .. }
            | Packet::PullData { gateway, .. }
            | Packet::TxAck { gateway, .. } => Some(*gateway),
            _ => None,
        };
        if let Some(gw) = sender.filter(|gw| !self.gateways.allowed(gw)) {
            c.gateway_table_refused.inc();
            if let Some(suppressed) = self.log_limit.allow(&from.ip().to_string()) {
                tracing::warn!(gateway = %gw, from = %from, suppressed, "datagram from a gateway not in `gateways` dropped");
            }
            return;
        }
        match pkt {
            Packet::PushData {
                version,
                token,
                gateway,
                payload,
            } => {
                let ack = gwmp::encode(&Packet::PushAck { version, token });
                if let Err(e) = sock.send_to(&ack, from).await {
                    tracing::warn!(gateway = %gateway, error = %e, "PUSH_ACK send failed");
                }
                if let Some(st) = &payload.stat {
                    c.gateway_rx_total.inc_by(st.rxnb);
                    c.gateway_rx_ok_total.inc_by(st.rxok);
                    c.gateway_tx_total.inc_by(st.txnb);
                    c.gateway_stat_reports.inc();
                }
                for rx in &payload.rxpk {
                    let received = Instant::now();
                    let outcome = self.ns.handle_rxpk(gateway, rx, received);
                    self.apply(sock, out, gateway, outcome, received).await;
                }
            }
            Packet::PullData {
                version,
                token,
                gateway,
            } => {
                self.version = version;
                self.note_gateway(gateway, from);
                let ack = gwmp::encode(&Packet::PullAck { version, token });
                if let Err(e) = sock.send_to(&ack, from).await {
                    tracing::warn!(gateway = %gateway, error = %e, "PULL_ACK send failed");
                }
            }
            Packet::TxAck {
                token,
                gateway,
                payload,
                ..
            } => {
                let device = self.pending_tx.remove(&token);
                let error = payload.as_ref().and_then(|p| p.txpk_ack.error());
                if let Some(d) =
                    device.and_then(|eui| self.ns.devices().iter().position(|x| x.dev_eui == eui))
                {
                    self.downlink_tx_ack(d, token, error);
                }
                match error {
                    Some(err) => {
                        c.tx_ack_error.inc();
                        if let Some(suppressed) = self.log_limit.allow(&gateway.to_string()) {
                            tracing::warn!(gateway = %gateway, device = ?device.map(|d| format!("{d:016x}")), error = %Untrusted(err), suppressed, "gateway refused downlink");
                        }
                    }
                    None => c.tx_ack_ok.inc(),
                }
            }
            // Server-to-gateway packets have no business arriving here.
            Packet::PushAck { .. } | Packet::PullAck { .. } | Packet::PullResp { .. } => {
                c.malformed.inc();
            }
        }
    }

    /// Remembers where `gateway`'s downlinks go; keeps the table and its counters in step.
    fn note_gateway(&mut self, gateway: GatewayEui, from: SocketAddr) {
        let c = &self.counters;
        let noted = self.gateways.note(gateway, from, Instant::now());
        c.gateway_table_expired.inc_by(noted.expired as u64);
        if let Some(evicted) = noted.evicted {
            c.gateway_table_evicted.inc();
            if let Some(suppressed) = self.log_limit.allow("gateway table") {
                tracing::warn!(evicted = %evicted, max_gateways = self.gateways.len(), suppressed,
                    "gateway table full: forgot the gateway heard least recently (set `gateways` to allow only yours)");
            }
        }
        c.gateways
            .set(i64::try_from(self.gateways.len()).unwrap_or(i64::MAX));
    }

    async fn apply(
        &mut self,
        sock: &UdpSocket,
        out: &RecordSender,
        gw: GatewayEui,
        o: Outcome,
        received: Instant,
    ) {
        match o {
            Outcome::Dropped => {}
            Outcome::Join { device, txpk } => {
                self.persist(out, device).await;
                let eui = self.ns.devices()[device].dev_eui;
                self.send_down(sock, out, gw, txpk, eui).await;
            }
            Outcome::Retransmission { device, ack } => {
                if let Some(a) = ack {
                    self.reply(sock, out, gw, device, &a, true, None, received)
                        .await;
                }
            }
            Outcome::Uplink {
                device,
                record,
                ack,
                heard,
            } => {
                if let Some(r) = record {
                    // Acknowledged (ACK downlink, state) only once the record is durable.
                    if let Err(e) = out.send(vec![r]).await {
                        tracing::error!(error = %e, "buffer refused LoRaWAN record");
                        return;
                    }
                }
                let rx = heard.rx.clone();
                self.reply(
                    sock,
                    out,
                    gw,
                    device,
                    &rx,
                    ack.is_some(),
                    Some(&heard),
                    received,
                )
                .await;
            }
        }
    }
}

#[async_trait::async_trait]
impl Adapter for LorawanUdpAdapter {
    async fn run(
        &mut self,
        out: &RecordSender,
        shutdown: &CancellationToken,
    ) -> Result<(), AdapterError> {
        if !self.state_loaded {
            self.load_state(out).await?;
            self.load_duty_cycle(out).await;
            self.state_loaded = true;
        }
        let sock = UdpSocket::bind(self.bind)
            .await
            .map_err(AdapterError::io(format!("cannot bind UDP {}", self.bind)))?;
        let local = sock
            .local_addr()
            .map_err(AdapterError::io("reading the bound UDP address"))?;
        self.bound.send_replace(Some(local));
        tracing::info!(addr = %local, "GWMP server listening");
        let mut jobs = self.downlinks.jobs_rx.take();
        let result = self.serve(&sock, out, shutdown, &mut jobs).await;
        self.downlinks.jobs_rx = jobs;
        result
    }
}

impl LorawanUdpAdapter {
    /// The receive loop: datagrams, commands for the device queues, deadline sweeps.
    async fn serve(
        &mut self,
        sock: &UdpSocket,
        out: &RecordSender,
        shutdown: &CancellationToken,
        jobs: &mut Option<tokio::sync::mpsc::Receiver<crate::commands::CommandJob>>,
    ) -> Result<(), AdapterError> {
        // Max UDP payload; PUSH_DATA with several rxpk stays far below.
        let mut buf = vec![0u8; 65_535];
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let next_job = async {
                match jobs.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            };
            // Biased: a command queued before an uplink arrived is taken first, so that
            // uplink's windows can carry it.
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return Ok(()),
                Some(job) = next_job => self.downlinks.take(job),
                _ = sweep.tick() => self.downlinks.sweep(),
                r = sock.recv_from(&mut buf) => match r {
                    Ok((n, from)) => {
                        let d = buf[..n].to_vec();
                        self.handle_datagram(sock, out, &d, from).await;
                    }
                    // ICMP port-unreachable from a vanished forwarder surfaces here on some
                    // systems; it is not fatal for the socket.
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                        tracing::debug!(error = %e, "UDP reset ignored");
                    }
                    Err(e) => return Err(AdapterError::io("UDP receive")(e)),
                },
            }
        }
    }
}
