//! The task that keeps the management resources at the CSE current: on change only.
//!
//! It wakes for three reasons: the device roster changed (a new device, a status change; sent
//! after the debounce), counters are due (every `update_interval`), or a failed pass is due
//! for its retry (the one backoff, [`crate::backoff::Backoff`]). Each pass rebuilds the
//! resources from the current state ([`resources::desired`]) and sends only the difference to
//! what the CSE last accepted ([`plan::plan`]), so a retry always carries the latest state and a
//! pass with nothing new sends nothing. These are not records: nothing is buffered.
//!
//! A 4004 on an update means the CSE lost our resources (restarted, wiped): the published state
//! is forgotten and everything is created again; a 4004 on the AE re-registers it through the
//! tree. A create that meets an existing resource (4105, after a gateway restart) updates it.
use super::config::ManagementConfig;
use super::plan::{self, Op, Published};
use super::resources::{self, Desired, Inputs};
use super::system;
use crate::backoff::Backoff;
use crate::northbound::binding::Binding;
use crate::northbound::config::NorthboundConfig;
use crate::northbound::onem2m::name;
use crate::northbound::onem2m::primitive::{
    next_request_id, Operation, Request, ResourceType, Response, Rsc,
};
use crate::northbound::onem2m::tree::Tree;
use crate::telemetry::device_roster::DeviceRoster;
use crate::telemetry::handles::ManagementMetrics;
use crate::telemetry::problem_log::ProblemLog;
use crate::telemetry::Metrics;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How often to look for the AE-ID while the syncer has not registered yet (no request).
const AE_WAIT: Duration = Duration::from_secs(1);

/// Passes in a row that may start over at once (after a 4004) before the backoff applies.
const IMMEDIATE_RESTARTS: u32 = 2;

/// The management publisher: build with [`Management::new`], spawn [`Management::run`].
pub struct Management {
    cfg: ManagementConfig,
    nb: Arc<NorthboundConfig>,
    binding: Arc<dyn Binding>,
    tree: Arc<Tree>,
    roster: DeviceRoster,
    problems: ProblemLog,
    metrics: ManagementMetrics,
    /// Also publish the reboot mgmtObj and the subscription on it ([`super::reboot`]).
    reboot: bool,
}

/// Why a pass stopped early.
enum Stop {
    /// Start over at once (the CSE lost our resources, or the AE was re-registered).
    Again,
    /// Try again after this delay.
    Later(Duration),
}

impl Management {
    /// `binding` is the northbound transport, `tree` the syncer's ([`crate::northbound::Syncer::tree`]).
    /// Reads the devices from `metrics.device_roster` and the problems from the process log.
    pub fn new(
        cfg: ManagementConfig,
        nb: Arc<NorthboundConfig>,
        binding: Arc<dyn Binding>,
        tree: Arc<Tree>,
        metrics: &Metrics,
    ) -> Self {
        Management {
            cfg,
            nb,
            binding,
            tree,
            roster: metrics.device_roster.clone(),
            problems: ProblemLog::global().clone(),
            metrics: ManagementMetrics::new(metrics),
            reboot: false,
        }
    }

    /// Reads problems from `problems` instead of the process log (tests).
    pub fn with_problems(mut self, problems: ProblemLog) -> Self {
        self.problems = problems;
        self
    }

    /// Also publishes the reboot mgmtObj and a subscription on it (only when notifications
    /// reach the gateway: `[northbound.commands] enabled`).
    pub fn with_reboot(mut self) -> Self {
        self.reboot = true;
        self
    }

    /// Runs until `cancel` fires.
    pub async fn run(self, cancel: CancellationToken) {
        let mut run = Run {
            backoff: Backoff::new(self.nb.backoff.initial, self.nb.backoff.max),
            version: system::version(),
            os_version: system::os_version(),
            published: Published::default(),
            node_ri: None,
            linked: None,
            refusal_logged: false,
            m: self,
        };
        run.main_loop(&cancel).await;
    }
}

struct Run {
    m: Management,
    backoff: Backoff,
    version: String,
    os_version: String,
    published: Published,
    /// The gateway node's `ri` (what the AE's `nl` must hold).
    node_ri: Option<String>,
    /// (AE-ID, node ri) the AE's `nl` was last set to.
    linked: Option<(String, String)>,
    refusal_logged: bool,
}

impl Run {
    async fn main_loop(&mut self, cancel: &CancellationToken) {
        let mut changes = self.m.roster.subscribe();
        changes.borrow_and_update();
        let interval = self.m.cfg.update_interval;
        let mut next_counters = Instant::now() + interval;
        let (mut immediate_due, mut counters_due) = (true, true);
        let mut retry_at: Option<Instant> = None;
        let mut restarts = 0;
        loop {
            if cancel.is_cancelled() {
                return;
            }
            let now = Instant::now();
            if now >= next_counters {
                counters_due = true;
                next_counters = now + interval;
            }
            if retry_at.map_or(true, |t| now >= t) && (immediate_due || counters_due) {
                retry_at = None;
                match self.pass(counters_due).await {
                    Ok(()) => {
                        (immediate_due, counters_due, restarts) = (false, false, 0);
                        self.backoff.reset();
                        self.refusal_logged = false;
                    }
                    Err(Stop::Again) if restarts < IMMEDIATE_RESTARTS => restarts += 1,
                    Err(Stop::Again) => {
                        retry_at = Some(Instant::now() + self.backoff.next_delay());
                    }
                    Err(Stop::Later(delay)) => retry_at = Some(Instant::now() + delay),
                }
                continue;
            }
            let wake = retry_at.map_or(next_counters, |t| t.min(next_counters));
            tokio::select! {
                _ = cancel.cancelled() => return,
                changed = changes.changed() => {
                    if changed.is_err() {
                        // The roster lives as long as the metrics: only at shutdown.
                        cancel.cancelled().await;
                        return;
                    }
                    // Collect a burst (a bus failing with all its devices) into one pass.
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(self.m.cfg.debounce) => {}
                    }
                    changes.borrow_and_update();
                    immediate_due = true;
                }
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    /// One pass: build the resources, send what changed, link the AE to its node.
    async fn pass(&mut self, counters_due: bool) -> Result<(), Stop> {
        let Some(ae_id) = self.m.tree.ae_id() else {
            return Err(Stop::Later(AE_WAIT));
        };
        let generation = self.m.tree.generation();
        let (problems, _) = self.m.problems.snapshot();
        let adapters = self.m.roster.adapters();
        let devices = self.m.roster.devices();
        let mut desired = resources::desired(&Inputs {
            ae_name: &self.m.nb.ae_name,
            ae_id: &ae_id,
            manufacturer: &self.m.cfg.manufacturer,
            model: &self.m.cfg.model,
            location: &self.m.cfg.location,
            version: &self.version,
            os_version: &self.os_version,
            memory: system::memory(),
            problems: &problems,
            adapters: &adapters,
            devices: &devices,
        });
        if self.m.reboot {
            desired.extend(super::reboot::resources(&self.m.nb.ae_name, &ae_id));
        }
        for op in plan::plan(&desired, &self.published, counters_due) {
            self.execute(op, &desired, &ae_id).await?;
        }
        self.link_ae(&ae_id, generation).await
    }

    async fn execute(&mut self, op: Op, desired: &[Desired], ae_id: &str) -> Result<(), Stop> {
        match op {
            Op::Create { index } => {
                let d = &desired[index];
                let mut body = d.attrs.clone();
                body.insert("rn".into(), d.names[d.names.len() - 1].clone().into());
                let parent = self.address(&d.names[..d.names.len() - 1]);
                let resp = self
                    .request(Operation::Create, parent, ae_id, Some(d.ty), d.key, body)
                    .await?;
                if resp.rsc == Rsc::CONFLICT {
                    // Created by an earlier run: bring it up to date.
                    let attrs = plan::updatable(&d.attrs);
                    let to = self.address(&d.names);
                    let resp = self
                        .send_typed(Operation::Update, to, ae_id, d.key, attrs)
                        .await?;
                    return self.settled(d, &d.attrs, &resp, Rsc(2004));
                }
                self.settled(d, &d.attrs, &resp, Rsc::CREATED)
            }
            Op::Update { index, attrs } => {
                let d = &desired[index];
                let to = self.address(&d.names);
                let resp = self
                    .send_typed(Operation::Update, to, ae_id, d.key, attrs.clone())
                    .await?;
                self.settled(d, &attrs, &resp, Rsc(2004))
            }
        }
    }

    /// Records what the CSE accepted, or turns its refusal into a [`Stop`].
    fn settled(
        &mut self,
        d: &Desired,
        attrs: &Map<String, Value>,
        resp: &Response,
        expected: Rsc,
    ) -> Result<(), Stop> {
        if resp.rsc == expected || resp.rsc.is_success() {
            self.published.accepted(&d.id(), attrs);
            if d.ty == ResourceType::Node && d.names[0] == self.gateway_node() {
                self.node_ri = resp
                    .pc
                    .as_ref()
                    .and_then(|pc| pc.get(d.key)?.get("ri")?.as_str().map(String::from));
            }
            return Ok(());
        }
        if resp.rsc == Rsc::NOT_FOUND {
            tracing::info!(resource = %d.id(), "management resources gone at the CSE; creating them again");
            self.forget();
            return Err(Stop::Again);
        }
        Err(self.refused(&d.id(), resp))
    }

    /// Sets the AE's `nl` to the gateway node, once per (AE-ID, node).
    async fn link_ae(&mut self, ae_id: &str, generation: u64) -> Result<(), Stop> {
        let Some(ri) = self.node_ri.clone() else {
            return Ok(());
        };
        let want = (ae_id.to_string(), ri.clone());
        if self.linked.as_ref() == Some(&want) {
            return Ok(());
        }
        let mut attrs = Map::new();
        attrs.insert("nl".into(), ri.into());
        let to = self.m.tree.ae_path();
        let resp = self
            .send_typed(Operation::Update, to, ae_id, "m2m:ae", attrs)
            .await?;
        if resp.rsc.is_success() {
            self.linked = Some(want);
            return Ok(());
        }
        if resp.rsc == Rsc::NOT_FOUND {
            let detail = resp.dbg.clone().unwrap_or_default();
            // Either the AE (re-register it) or the node (create it again) is gone.
            tracing::info!(ae = %self.m.tree.ae_path(), %detail, "AE or node gone at the CSE; registering again");
            self.forget();
            return match self.m.tree.reregister(generation).await {
                Ok(()) => Err(Stop::Again),
                Err(_) => Err(Stop::Later(self.backoff.next_delay())),
            };
        }
        Err(self.refused("AE nodeLink", &resp))
    }

    fn forget(&mut self) {
        self.published.clear();
        self.node_ri = None;
        self.linked = None;
    }

    /// A 4xxx other than 4004/4105: the CSE will not take it (a missing grant, usually).
    fn refused(&mut self, what: &str, resp: &Response) -> Stop {
        if !self.refusal_logged {
            self.refusal_logged = true;
            let hint = if matches!(resp.rsc.0, 4103 | 4107) {
                "the platform must grant the gateway's originator CREATE of <node> (ty 14) on the CSEBase (docs/management.md)"
            } else {
                "see docs/management.md"
            };
            tracing::warn!(resource = %what, rsc = %resp.rsc, detail = %resp.dbg.as_deref().unwrap_or(""),
                hint, "the CSE refused a management request");
        }
        Stop::Later(self.m.nb.backoff.auth_retry)
    }

    fn gateway_node(&self) -> String {
        resources::gateway_node_name(&self.m.nb.ae_name)
    }

    /// `cse-in/<names…>`, each segment encoded ([`name::address`]).
    fn address(&self, names: &[String]) -> String {
        let mut segs: Vec<&str> = vec![&self.m.nb.cse_name];
        segs.extend(names.iter().map(String::as_str));
        name::address(&segs)
    }

    async fn send_typed(
        &mut self,
        op: Operation,
        to: String,
        ae_id: &str,
        key: &str,
        attrs: Map<String, Value>,
    ) -> Result<Response, Stop> {
        self.request(op, to, ae_id, None, key, attrs).await
    }

    /// One request, counted by result. No answer or a 5xxx → retry later on the backoff.
    async fn request(
        &mut self,
        op: Operation,
        to: String,
        ae_id: &str,
        ty: Option<ResourceType>,
        key: &str,
        attrs: Map<String, Value>,
    ) -> Result<Response, Stop> {
        let mut pc = Map::new();
        pc.insert(key.to_string(), Value::Object(attrs));
        let req = Request {
            op,
            to,
            fr: ae_id.to_string(),
            rqi: next_request_id(),
            rvi: self.m.nb.release.clone(),
            ty,
            rcn: None,
            rqet: None,
            pc: Some(Value::Object(pc)),
        };
        let target = req.to.clone();
        match self.m.binding.send(req).await {
            Ok(resp) if resp.rsc.is_success() => {
                self.m.metrics.ok.inc();
                Ok(resp)
            }
            Ok(resp) if resp.rsc == Rsc::NOT_FOUND => {
                self.m.metrics.not_found.inc();
                Ok(resp)
            }
            Ok(resp) if (4000..5000).contains(&resp.rsc.0) => {
                if resp.rsc != Rsc::CONFLICT {
                    self.m.metrics.refused.inc();
                } else {
                    self.m.metrics.ok.inc();
                }
                Ok(resp)
            }
            Ok(resp) => {
                self.m.metrics.failed.inc();
                let delay = self.backoff.next_delay();
                tracing::warn!(to = %target, rsc = %resp.rsc, retry_in = ?delay, "management request failed at the CSE");
                Err(Stop::Later(delay))
            }
            Err(e) => {
                self.m.metrics.failed.inc();
                let delay = self.backoff.next_delay();
                tracing::warn!(to = %target, error = %e, retry_in = ?delay, "management request got no answer");
                Err(Stop::Later(delay))
            }
        }
    }
}
