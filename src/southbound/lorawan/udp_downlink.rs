//! The downlink half of the `lorawan_udp` adapter: commands from the platform wait in a
//! per-device queue until the device's next uplink opens its receive windows; then one frame
//! goes out carrying whatever is due (the ACK of a confirmed uplink, MAC answers, the next
//! queued downlink), in RX1 or RX2 ([`choose`]), within the EU868 duty cycle.
//!
//! FCntDown is reserved and the device state persisted before the PULL_RESP is sent: a crash
//! in between leaves a gap in the counter, never a reuse.

use super::LorawanUdpAdapter;
use crate::buffer::RecordSender;
use crate::commands::{CommandJob, CommandRegistry, Outcome, QueuedTarget};
use crate::record::now_ms;
use crate::southbound::lorawan::downlink_config::DownlinkAllow;
use crate::southbound::lorawan::network::downlink::duty_cycle::DutyCycleSnapshot;
use crate::southbound::lorawan::network::downlink::{
    choose, DeviceQueue, DutyCycle, NoWindow, Uplink, WindowSettings,
};
use crate::southbound::lorawan::network::server::{DownContent, Heard, PendingAck};
use crate::southbound::lorawan::transport::gwmp::{GatewayEui, TxPk};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// Commands waiting to be taken into the device queues.
const JOB_CHANNEL: usize = 64;
/// Expiry of a command whose dispatcher set no deadline.
const DEFAULT_EXPIRY: Duration = Duration::from_secs(300);

/// Downlink state of the adapter.
pub(super) struct Downlinks {
    pub settings: WindowSettings,
    pub duty: DutyCycle,
    pub queues: Vec<DeviceQueue>,
    allow: Vec<Option<DownlinkAllow>>,
    commands: bool,
    jobs_tx: mpsc::Sender<CommandJob>,
    pub jobs_rx: Option<mpsc::Receiver<CommandJob>>,
    /// Device id (DevEUI as records print it) → device index.
    by_id: HashMap<String, usize>,
}

impl Downlinks {
    pub fn new(
        settings: WindowSettings,
        commands: bool,
        devices: Vec<(u64, Option<DownlinkAllow>)>,
    ) -> Self {
        let (jobs_tx, jobs_rx) = mpsc::channel(JOB_CHANNEL);
        Downlinks {
            settings,
            duty: DutyCycle::for_region(settings.region),
            queues: devices.iter().map(|_| DeviceQueue::default()).collect(),
            by_id: devices
                .iter()
                .enumerate()
                .map(|(i, (eui, _))| (format!("{eui:016x}"), i))
                .collect(),
            allow: devices.into_iter().map(|(_, a)| a).collect(),
            commands,
            jobs_tx,
            jobs_rx: Some(jobs_rx),
        }
    }

    /// Queues `job` for its device (answers at once if it is unknown or already late).
    pub fn take(&mut self, mut job: CommandJob) {
        let Some(&i) = self.by_id.get(&job.command.device) else {
            let _ = job.done.send(Outcome::rejected(
                "the device is not served by this adapter",
            ));
            return;
        };
        // A `set` goes out as the payload the device's encoder builds.
        let allow = self.allow.get(i).and_then(Option::as_ref);
        match allow.map(|a| a.downlink_of(&job.command.action)) {
            Some(Ok(d)) => job.command.action = crate::commands::Action::Downlink(d),
            Some(Err(reason)) => {
                let _ = job.done.send(Outcome::rejected(reason));
                return;
            }
            None => {
                let _ = job
                    .done
                    .send(Outcome::rejected("the device takes no downlinks"));
                return;
            }
        }
        let deadline = job.command.deadline_ms(DEFAULT_EXPIRY);
        if let Some(q) = self.queues.get_mut(i) {
            q.push(job, deadline, now_ms());
        }
    }

    /// Answers what ran out of time in every queue.
    pub fn sweep(&mut self) {
        let (ms, now) = (now_ms(), Instant::now());
        for q in &mut self.queues {
            q.sweep(ms, now);
        }
    }

    /// Counts a transmission in the duty cycle of its sub-band (join-accepts and ACKs too).
    pub fn record_airtime(&mut self, txpk: &TxPk, now: Instant) {
        let Some(lora) =
            crate::southbound::lorawan::network::region::parse_datr(&txpk.datr.to_string())
        else {
            return;
        };
        let us = crate::southbound::lorawan::network::downlink::airtime::lora_airtime_us(
            lora.sf,
            lora.bw_khz,
            txpk.size as usize,
            false,
        );
        self.duty.record((txpk.freq * 1e6).round() as u32, us, now);
    }
}

/// The state key of the adapter's duty-cycle airtime: `lorawan/<adapter id>/duty_cycle`.
pub(super) fn duty_cycle_key(adapter: &str) -> String {
    format!("lorawan/{adapter}/duty_cycle")
}

impl LorawanUdpAdapter {
    /// Restores the airtime of the last hour (EU868), so a restart keeps the used budget.
    pub(super) async fn load_duty_cycle(&mut self, out: &RecordSender) {
        if !self.downlinks.duty.is_limited() {
            return;
        }
        let key = duty_cycle_key(self.ns.adapter_id());
        match out.get_state(&key).await {
            Ok(Some(json)) => match serde_json::from_str::<DutyCycleSnapshot>(&json) {
                Ok(snap) => self.downlinks.duty.restore(&snap, Instant::now(), now_ms()),
                Err(e) => {
                    tracing::warn!(key = %key, error = %e, "unreadable duty-cycle state ignored")
                }
            },
            Ok(None) => {}
            Err(e) => tracing::error!(key = %key, error = %e, "cannot read the duty-cycle state"),
        }
    }

    /// Stores the airtime of the last hour (call after counting a transmission, before it
    /// goes out: a crash then counts a frame too many, never one too few).
    pub(super) async fn save_duty_cycle(&mut self, out: &RecordSender) {
        if !self.downlinks.duty.is_limited() {
            return;
        }
        let snap = self.downlinks.duty.snapshot(Instant::now(), now_ms());
        let key = duty_cycle_key(self.ns.adapter_id());
        match serde_json::to_string(&snap) {
            Ok(json) => {
                if let Err(e) = out.put_state(&key, json).await {
                    tracing::error!(key = %key, error = %e, "cannot persist the duty-cycle state");
                }
            }
            Err(e) => tracing::error!(error = %e, "duty-cycle state not serialisable"),
        }
    }

    /// Registers a command target for every device with a `downlink` allow-list, when the
    /// adapter's config says `commands = true` (deny by default).
    pub fn with_commands(self, registry: &Arc<CommandRegistry>) -> Self {
        let d = &self.downlinks;
        if !d.commands {
            return self;
        }
        for (id, &i) in &d.by_id {
            let Some(allow) = d.allow.get(i).cloned().flatten() else {
                continue;
            };
            let target = QueuedTarget::new(self.ns.adapter_id(), d.jobs_tx.clone(), move |c| {
                allow.check(c)
            });
            registry.register(id.clone(), target);
        }
        self
    }

    /// Answers in the receive windows of an uplink of `device`: the ACK if `ack`, MAC
    /// answers and the next queued downlink (only for a new uplink, `heard`). Persists the
    /// device state (with the reserved FCntDown) before sending anything.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn reply(
        &mut self,
        sock: &UdpSocket,
        out: &RecordSender,
        gw: GatewayEui,
        device: usize,
        rx: &PendingAck,
        ack: bool,
        heard: Option<&Heard>,
        received: Instant,
    ) {
        let (now, ms) = (Instant::now(), now_ms());
        let mut content = DownContent {
            ack,
            ..Default::default()
        };
        let mut force = false;
        if let Some(h) = heard {
            if let Some(q) = self.downlinks.queues.get_mut(device) {
                q.uplink(h.ack_bit);
                q.sweep(ms, now);
            }
            let mac = self.mac_answers(out, device, h).await;
            content.fopts = mac.fopts;
            content.adr = mac.adr;
            force = mac.force;
            if let Some(d) = self.downlinks.queues.get(device).and_then(|q| q.next(ms)) {
                content.app = Some((d.fport, d.payload.clone(), d.confirmed));
            }
        }
        if content.is_empty() && !force {
            self.persist(out, device).await;
            return;
        }
        let up = Uplink {
            tmst: rx.tmst,
            freq_mhz: rx.freq,
            datr: rx.datr.clone(),
            received,
        };
        let settings = match self.ns.devices().get(device) {
            Some(d) => self.mac.windows_of(&self.downlinks.settings, &d.state.mac),
            None => self.downlinks.settings,
        };
        let dl = &mut self.downlinks;
        let mut window = choose(&settings, &up, content.phy_len(), &mut dl.duty, now);
        if let (Err(e), Some(_)) = (&window, &content.app) {
            // The application payload waits for the next uplink; the rest may still fit.
            self.count_no_window(e);
            if let Some(q) = self.downlinks.queues.get_mut(device) {
                q.missed(&e.to_string());
            }
            tracing::info!(device = device, reason = %e, "queued downlink waits for the next uplink");
            content.app = None;
            let dl = &mut self.downlinks;
            if content.is_empty() && !force {
                self.persist(out, device).await;
                return;
            }
            window = choose(&settings, &up, content.phy_len(), &mut dl.duty, now);
        }
        let w = match window {
            Ok(w) => w,
            Err(e) => {
                self.count_no_window(&e);
                tracing::warn!(device = device, reason = %e, "no receive window for the downlink");
                self.persist(out, device).await;
                return;
            }
        };
        let Some((phy, fcnt)) = self.ns.build_down(device, &content) else {
            self.persist(out, device).await;
            return;
        };
        // Reserve-then-send: the counter is on disk before the frame is on the air.
        if !self.persist_checked(out, device).await {
            self.counters.downlink_state_not_saved.inc();
            return;
        }
        let txpk = crate::southbound::lorawan::network::server::txpk(
            w.tmst,
            w.freq_mhz,
            w.datr.clone(),
            w.power_dbm,
            &phy,
        );
        let eui = self.ns.devices()[device].dev_eui;
        let token = self.send_down(sock, out, gw, txpk, eui).await;
        if content.app.is_some() {
            let v1 = self.version == 1;
            if let Some(q) = self.downlinks.queues.get_mut(device) {
                match token {
                    Some(token) => {
                        q.sent(token, fcnt, w.rx.name(), now);
                        if v1 {
                            // GWMP v1 has no TX_ACK: handed over is as far as we can know.
                            q.tx_ack(None);
                        }
                    }
                    None => q.missed("no route to the gateway"),
                }
            }
        }
    }

    /// A TX_ACK for the PULL_RESP `token` that went to `device`.
    pub(super) fn downlink_tx_ack(&mut self, device: usize, token: [u8; 2], error: Option<&str>) {
        if let Some(q) = self.downlinks.queues.get_mut(device) {
            if q.owns(token) {
                q.tx_ack(error);
            }
        }
    }

    fn count_no_window(&self, e: &NoWindow) {
        let c = &self.counters;
        match e {
            NoWindow::TooLate => c.downlink_too_late.inc(),
            NoWindow::DutyCycle(_) => c.downlink_duty_cycle.inc(),
            NoWindow::TooLarge { .. } => c.downlink_too_large.inc(),
            NoWindow::Region(_) => c.downlink_no_window.inc(),
        }
    }
}
