//! The syncer: moves committed records from the buffer to the CSE, one contentInstance each.
//!
//! Scheduling, in one loop that owns all bookkeeping (no locks on the hot path):
//! - records are fetched **per device** (at most `fetch_per_device` each, after a per-device
//!   cursor), so one device's backlog never hides another device's live record;
//! - devices with queued records wait in a **round-robin** ring; a device has at most one
//!   request in flight (its order is kept: the next record goes only after the previous one is
//!   settled), several devices are in flight at once (at most `max_in_flight`);
//! - the record at the head of a device's queue stays there until settled: delivered / already
//!   there / dead-lettered pop it, retry / refused leave it for later; a permanent rejection
//!   dead-letters it only when the CSE repeats it ([`RejectionCheck`]): the first one sends
//!   the record once more; a record answered with server errors `dead_letter_after` times
//!   while other records get through is dead-lettered too (it would hold its device back);
//! - a retryable failure pauses dispatching for a fully jittered, capped exponential delay
//!   (an outage is gateway-wide: probing with every device at once would only add load); a
//!   server's `Retry-After` is honoured (at least that long, spread by up to a quarter more,
//!   at most `backoff.retry_after_max`); "refused" (auth) pauses for ½–1 × `backoff.auth_retry`
//!   and re-checks the registration;
//! - the in-flight limit adapts ([`InFlightLimit`], AIMD): halved on timeouts, 5xxx, overload
//!   answers and very slow answers, grown back by one per window of good answers, and moved to
//!   the level where a request costs least (some CSEs get slower with more in flight); over
//!   MQTT it starts at 1;
//! - requests in flight are futures polled by this task ([`InFlight`]), not spawned tasks: an
//!   answer wakes the syncer directly, and the buffer read and the batched ack run while they
//!   keep going;
//! - the first registration waits a random `[0, backoff.initial_jitter]`: a fleet powered up
//!   together (or restarted by one rollout) does not register in one wave;
//! - delivered seqs are removed from the buffer in batches (64 or 100 ms). A crash before the
//!   flush only means a resend, answered 4105 = already there.
use super::binding::Binding;
use super::concurrency::InFlightLimit;
use super::config::BindingKind;
use super::config::NorthboundConfig;
use super::config::RecordResource;
use super::in_flight::{Finished, InFlight};
use super::onem2m::primitive::Request;
use super::onem2m::resource::{record_resource, Resource};
use super::onem2m::tree::{Tree, RESULTS};
use super::rejection_check::RejectionCheck;
use super::retry::{classify, Outcome, RetryReason};
use super::state::SyncState;
use super::store::SyncStore;
use super::timed::Timed;
use crate::backoff::{full_jitter, Backoff};
use crate::record::{RecordKind, StoredRecord};
use crate::telemetry::SyncMetrics;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Delivered seqs are flushed to the buffer when this many are pending…
const FLUSH_BATCH: usize = 64;
/// …or this long after the first one.
const FLUSH_DELAY: Duration = Duration::from_millis(100);
/// Safety net: look for pending records this often even without a commit notification.
const POLL_INTERVAL: Duration = Duration::from_secs(2);

pub struct Syncer {
    cfg: Arc<NorthboundConfig>,
    store: Arc<dyn SyncStore>,
    binding: Arc<dyn Binding>,
    tree: Arc<Tree>,
    state: Arc<SyncState>,
    metrics: SyncMetrics,
}

impl Syncer {
    /// `binding` is the transport (HTTP or MQTT); `store` the buffer; `metrics` the syncer's
    /// handle ([`SyncMetrics::new`], or `detached()` in tests), counted where each request
    /// settles.
    pub fn new(
        cfg: NorthboundConfig,
        binding: Arc<dyn Binding>,
        store: Arc<dyn SyncStore>,
        metrics: SyncMetrics,
    ) -> Self {
        let cfg = Arc::new(cfg);
        let state = Arc::new(SyncState::default());
        let binding: Arc<dyn Binding> = Arc::new(Timed {
            inner: binding,
            state: state.clone(),
            metrics: metrics.clone(),
        });
        let tree = Arc::new(Tree::new(cfg.clone(), binding.clone(), store.clone()));
        Syncer {
            cfg,
            store,
            binding,
            tree,
            state,
            metrics,
        }
    }

    /// Health and counters for `/readyz`, STATUS and `citygate status`; latency samples for
    /// benchmarks.
    pub fn state(&self) -> Arc<SyncState> {
        self.state.clone()
    }

    /// The AE and its container tree, shared with the command side (which builds the command
    /// containers under the same device containers) and device management (which finds the
    /// AE-ID there and re-registers the AE through it when the CSE lost it).
    pub fn tree(&self) -> Arc<Tree> {
        self.tree.clone()
    }

    /// Runs until `cancel` fires; then finishes in-flight requests (bounded by the request
    /// timeout) and flushes the delivered batch.
    pub async fn run(self, cancel: CancellationToken) {
        let mut run = Run::new(self);
        run.main_loop(&cancel).await;
        run.drain().await;
    }
}

struct Run {
    s: Syncer,
    epoch: String,
    queues: HashMap<String, VecDeque<StoredRecord>>,
    cursors: HashMap<String, u64>,
    /// Devices with queued records and nothing in flight, in round-robin order.
    ready: VecDeque<String>,
    in_ready: HashSet<String>,
    busy: HashSet<String>,
    /// Deliveries under way, polled by this task (no task per record).
    inflight: InFlight,
    delivered: Vec<u64>,
    flush_at: Option<Instant>,
    backoff: Backoff,
    limit: InFlightLimit,
    paused_until: Option<Instant>,
    registered: bool,
    need_fetch: bool,
    /// Per-record warnings quoting the CSE (a CSE refusing everything would flood the log).
    log_limit: crate::telemetry::untrusted::LogLimiter,
    /// Records rejected once, sent again before a second rejection dead-letters them.
    rejections: RejectionCheck,
}

impl Run {
    fn new(s: Syncer) -> Self {
        let backoff = Backoff::new(s.cfg.backoff.initial, s.cfg.backoff.max);
        let mut limit = InFlightLimit::new(s.cfg.max_in_flight, s.cfg.adaptive.clone());
        if s.cfg.binding == BindingKind::Mqtt {
            // Some CSEs serve MQTT requests one at a time (ACME); more in flight is probed.
            limit = limit.starting_at_one();
        }
        s.metrics.in_flight_limit.set(limit.limit() as i64);
        let rejections = RejectionCheck::new(s.cfg.dead_letter_after);
        let start_delay = full_jitter(s.cfg.backoff.initial_jitter);
        if !start_delay.is_zero() {
            tracing::info!(delay = ?start_delay, "waiting before the first registration (backoff.initial_jitter)");
        }
        Run {
            epoch: s.store.epoch(),
            s,
            queues: HashMap::new(),
            cursors: HashMap::new(),
            ready: VecDeque::new(),
            in_ready: HashSet::new(),
            busy: HashSet::new(),
            inflight: InFlight::default(),
            delivered: Vec::new(),
            flush_at: None,
            backoff,
            limit,
            paused_until: (!start_delay.is_zero()).then(|| Instant::now() + start_delay),
            registered: false,
            need_fetch: true,
            log_limit: Default::default(),
            rejections,
        }
    }

    fn paused(&self) -> bool {
        self.paused_until.is_some_and(|t| t > Instant::now())
    }

    fn queued(&self) -> usize {
        self.queues.values().map(VecDeque::len).sum()
    }

    async fn main_loop(&mut self, cancel: &CancellationToken) {
        let mut commits = self.s.store.subscribe_commits();
        let mut commits_open = true;
        let mut poll = tokio::time::interval(POLL_INTERVAL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let low_water = self.s.cfg.max_in_flight.max(1) * 2;
        loop {
            if cancel.is_cancelled() {
                return;
            }
            if !self.paused() {
                if !self.registered {
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        r = self.s.tree.register() => self.on_registration(r),
                    }
                    continue;
                }
                // Queued records go out before the buffer is read again: the read is not on
                // the path of the next request.
                self.dispatch();
                if self.need_fetch && self.queued() < low_water {
                    commits.borrow_and_update();
                    self.fetch().await;
                    self.dispatch();
                }
            }
            if self.delivered.len() >= FLUSH_BATCH {
                self.flush().await;
            }
            self.publish_queue_sizes();
            let pause = self.paused_until.filter(|_| self.paused());
            let flush_at = self.flush_at;
            tokio::select! {
                _ = cancel.cancelled() => return,
                done = self.inflight.next(), if !self.inflight.is_empty() => {
                    self.on_finished(done).await;
                }
                changed = commits.changed(), if commits_open => match changed {
                    Ok(()) => self.need_fetch = true,
                    Err(_) => commits_open = false,
                },
                _ = sleep_until_opt(pause), if pause.is_some() => {}
                _ = sleep_until_opt(flush_at), if flush_at.is_some() => self.flush().await,
                _ = poll.tick() => self.need_fetch = true,
            }
        }
    }

    fn on_registration(&mut self, result: Result<String, Outcome>) {
        match result {
            Ok(ae_id) => {
                self.registered = true;
                self.backoff.reset();
                self.s.metrics.cse_registered.set(1);
                self.s.state.update(|s| {
                    s.registered = true;
                    s.refused = false;
                    s.ae_id = Some(ae_id);
                });
            }
            Err(outcome) => self.pause_for(&outcome),
        }
    }

    /// Pauses dispatching after a failure that is not the record's fault.
    fn pause_for(&mut self, outcome: &Outcome) {
        let detail = outcome.describe();
        let delay = match outcome {
            Outcome::Refused { .. } => {
                // ½–1 × auth_retry: a fleet refused at once does not come back at once.
                let half = self.s.cfg.backoff.auth_retry / 2;
                let delay = half + full_jitter(half);
                tracing::error!(error = %detail, retry_in = ?delay,
                    "CSE refuses the gateway; syncing stopped");
                self.registered = false;
                self.s.metrics.cse_registered.set(0);
                self.s.state.update(|s| {
                    s.refused = true;
                    s.registered = false;
                });
                delay
            }
            Outcome::Retry {
                after: Some(after), ..
            } => {
                // The server's wait (bounded), spread by up to a quarter more, and never
                // shorter than our own backoff.
                let after = (*after).min(self.s.cfg.backoff.retry_after_max);
                let delay = (after + full_jitter(after / 4)).max(self.backoff.next_delay());
                tracing::warn!(error = %detail, retry_in = ?delay,
                    "the CSE asked to retry later (Retry-After)");
                delay
            }
            _ => {
                let delay = self.backoff.next_delay();
                tracing::warn!(error = %detail, attempt = self.backoff.attempts(), retry_in = ?delay,
                    "northbound request failed, backing off");
                delay
            }
        };
        self.s.state.update(|s| s.last_error = Some(detail));
        let until = Instant::now() + delay;
        self.paused_until = Some(self.paused_until.map_or(until, |t| t.max(until)));
    }

    async fn fetch(&mut self) {
        let limit = self.s.cfg.fetch_per_device.max(1);
        let fetched = self
            .inflight
            .drive(self.s.store.fetch_pending(&self.cursors, limit))
            .await;
        match fetched {
            Ok(records) => {
                self.need_fetch = !records.is_empty();
                for rec in records {
                    let device = rec.record.device.clone();
                    if self.cursors.get(&device).is_some_and(|c| rec.seq <= *c) {
                        continue; // already queued or in flight
                    }
                    self.cursors.insert(device.clone(), rec.seq);
                    self.queues
                        .entry(device.clone())
                        .or_default()
                        .push_back(rec);
                    self.make_ready(&device);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read pending records from the buffer");
                self.pause_for(&Outcome::retry(
                    RetryReason::Transport,
                    format!("buffer: {e}"),
                ));
            }
        }
    }

    fn make_ready(&mut self, device: &str) {
        if !self.busy.contains(device) && !self.in_ready.contains(device) {
            self.in_ready.insert(device.to_string());
            self.ready.push_back(device.to_string());
        }
    }

    /// Starts the head record of ready devices, round robin, up to the in-flight limit.
    fn dispatch(&mut self) {
        while self.inflight.len() < self.limit.limit() {
            let Some(device) = self.ready.pop_front() else {
                return;
            };
            self.in_ready.remove(&device);
            let Some(rec) = self.queues.get(&device).and_then(|q| q.front()).cloned() else {
                continue;
            };
            self.busy.insert(device.clone());
            let (tree, binding) = (self.s.tree.clone(), self.s.binding.clone());
            let (cfg, epoch) = (self.s.cfg.clone(), self.epoch.clone());
            self.inflight.start(device, async move {
                deliver(&tree, binding.as_ref(), &cfg, &epoch, &rec).await
            });
        }
    }

    async fn on_finished(&mut self, (device, outcome, took): Finished) {
        self.adapt(&outcome, took);
        self.busy.remove(&device);
        self.settle(&device, outcome).await;
        if self.queues.get(&device).is_some_and(|q| !q.is_empty()) {
            self.make_ready(&device);
        } else {
            self.queues.remove(&device);
        }
    }

    /// Feeds the adaptive in-flight limit with a delivery's outcome and latency.
    fn adapt(&mut self, outcome: &Outcome, took: Duration) {
        match outcome {
            Outcome::Retry { reason, .. } if reason.is_congestion() => self.limit.on_congestion(),
            Outcome::Retry { .. } | Outcome::Refused { .. } => {}
            Outcome::Delivered
            | Outcome::AlreadyThere
            | Outcome::Permanent { .. }
            | Outcome::TreeMissing { .. } => {
                // Busy: other devices wait for a free slot, or this one has more queued.
                let busy = !self.ready.is_empty() || self.queued() > self.inflight.len() + 1;
                self.limit.on_answer(took, Instant::now(), busy)
            }
        }
        let limit = self.limit.limit() as i64;
        if self.s.metrics.in_flight_limit.get() != limit {
            tracing::debug!(limit, "in-flight limit changed");
            self.s.metrics.in_flight_limit.set(limit);
        }
    }

    /// Applies a record's outcome to the queue, the buffer and the counters.
    async fn settle(&mut self, device: &str, outcome: Outcome) {
        let Some(rec) = self.queues.get(device).and_then(|q| q.front()) else {
            return;
        };
        let seq = rec.seq;
        let state = self.s.state.clone();
        let m = &self.s.metrics;
        match &outcome {
            Outcome::Delivered | Outcome::AlreadyThere => {
                if outcome == Outcome::AlreadyThere {
                    tracing::debug!(device, seq, "record was already at the CSE");
                }
                m.records_delivered.inc();
                if outcome == Outcome::Delivered {
                    m.created.inc();
                } else {
                    m.already_there.inc();
                }
                m.cse_registered.set(1);
                state.update(|s| {
                    if outcome == Outcome::Delivered {
                        s.delivered += 1;
                    } else {
                        s.already_there += 1;
                    }
                    s.refused = false;
                    s.registered = true;
                    s.ae_id = self.s.tree.ae_id();
                });
                self.backoff.reset();
                self.rejections.delivered();
                self.pop(device);
                if self.delivered.is_empty() {
                    self.flush_at = Some(Instant::now() + FLUSH_DELAY);
                }
                self.delivered.push(seq);
            }
            Outcome::Permanent { rsc, detail } if !self.rejections.is_repeated(seq) => {
                // Not believed yet: the record stays at the head and goes again right away.
                tracing::debug!(device, seq, rsc = ?rsc, error = %detail,
                    "CSE rejected the record; sending it once more before dead-lettering it");
                m.retry_recheck.inc();
                state.count_retry("recheck");
            }
            Outcome::Permanent { rsc, detail } => {
                let why = "CSE rejected the record permanently; moving it to dead letters";
                self.dead_letter(device, seq, *rsc, detail, why).await;
            }
            Outcome::Retry {
                reason: RetryReason::Server | RetryReason::BadResponse,
                detail,
                ..
            } if self.rejections.is_poison(seq) => {
                let detail = format!(
                    "given up after {} server errors while other records were delivered; last: {detail}",
                    self.s.cfg.dead_letter_after
                );
                let why =
                    "the CSE keeps failing this record and takes others; moving it to dead letters";
                self.dead_letter(device, seq, None, &detail, why).await;
            }
            Outcome::Retry { reason, .. } => {
                match reason {
                    RetryReason::Transport => &m.retry_transport,
                    RetryReason::Timeout => &m.retry_timeout,
                    RetryReason::Server => &m.retry_server,
                    RetryReason::BadResponse => &m.retry_bad_response,
                    RetryReason::Overload => &m.retry_overload,
                }
                .inc();
                state.count_retry_reason(*reason);
                if *reason == RetryReason::Transport {
                    // The CSE was unreachable: it may come back restarted and half ready,
                    // so the registration is checked again before records go out.
                    self.registered = false;
                }
                self.pause_for(&outcome);
            }
            Outcome::TreeMissing { .. } => {
                m.retry_tree_missing.inc();
                state.count_retry("tree_missing");
                self.pause_for(&outcome);
            }
            Outcome::Refused { .. } => self.pause_for(&outcome),
        }
    }

    /// Moves the head record of `device` to the dead letters (kept in the buffer; `citygate
    /// buffer dead-letters` lists them) and goes on with the next.
    async fn dead_letter(
        &mut self,
        device: &str,
        seq: u64,
        rsc: Option<u16>,
        detail: &str,
        why: &'static str,
    ) {
        if let Some(suppressed) = self.log_limit.allow("dead letter") {
            tracing::warn!(device, seq, rsc = ?rsc, error = %detail, suppressed, "{why}");
        }
        let stored = self
            .s
            .store
            .dead_letter(seq, rsc.map(u32::from), detail.to_string())
            .await;
        match stored {
            Ok(()) => {
                self.s.metrics.dead_letter.inc();
                self.s.metrics.records_dead_lettered.inc();
                self.s.state.update(|s| {
                    s.dead_lettered += 1;
                    s.last_error = Some(format!("dead letter: {detail}"));
                });
                self.pop(device);
            }
            Err(e) => self.pause_for(&Outcome::retry(
                RetryReason::Transport,
                format!("buffer: cannot dead-letter seq {seq}: {e}"),
            )),
        }
    }

    fn pop(&mut self, device: &str) {
        if let Some(rec) = self.queues.get_mut(device).and_then(VecDeque::pop_front) {
            self.rejections.settled(rec.seq);
        }
    }

    async fn flush(&mut self) {
        self.flush_at = None;
        if self.delivered.is_empty() {
            return;
        }
        let seqs = std::mem::take(&mut self.delivered);
        let marked = self
            .inflight
            .drive(self.s.store.mark_delivered(seqs.clone()))
            .await;
        if let Err(e) = marked {
            // They stay pending in the buffer; a later resend is answered 4105.
            tracing::error!(error = %e, count = seqs.len(), "cannot mark records delivered");
        }
    }

    fn publish_queue_sizes(&self) {
        let (queued, in_flight) = (self.queued(), self.inflight.len());
        self.s.state.update(|s| {
            s.queued = queued;
            s.in_flight = in_flight;
        });
    }

    /// After cancellation: let in-flight requests finish (bounded), settle them, flush.
    async fn drain(&mut self) {
        let deadline = Instant::now() + self.s.cfg.request_timeout + Duration::from_secs(1);
        while !self.inflight.is_empty() {
            match tokio::time::timeout_at(deadline.into(), self.inflight.next()).await {
                Ok(done) => self.on_finished(done).await,
                Err(_) => {
                    tracing::warn!(
                        in_flight = self.inflight.len(),
                        "abandoning in-flight requests at shutdown"
                    );
                    // Those already answered are still settled (next loop rounds).
                    self.inflight.abandon();
                }
            }
        }
        self.flush().await;
        self.publish_queue_sizes();
    }
}

/// Sends one record: container first (lazily), then the contentInstance. A 4004 on the create
/// means the container (or the AE) vanished: forget it and rebuild, twice at most.
async fn deliver(
    tree: &Tree,
    binding: &dyn Binding,
    cfg: &NorthboundConfig,
    epoch: &str,
    rec: &StoredRecord,
) -> Outcome {
    let device = &rec.record.device;
    let result = rec.record.kind == RecordKind::CommandResult;
    // Command results always go to the results container as contentInstances.
    let mapping = if result {
        RecordResource::ContentInstance
    } else {
        cfg.resource
    };
    let cin = record_resource(epoch, rec, mapping, cfg.serialization);
    for _ in 0..3 {
        let ensured = if result {
            tree.ensure_results_container(device).await
        } else {
            tree.ensure_container(device).await
        };
        if let Err(outcome) = ensured {
            return match outcome {
                Outcome::Permanent { rsc, detail } => Outcome::Permanent {
                    rsc,
                    detail: format!("container {device}: {detail}"),
                },
                other => other,
            };
        }
        let Some(ae_id) = tree.ae_id() else {
            continue;
        };
        let path = if result {
            tree.device_child_path(device, RESULTS)
        } else {
            tree.container_path(device)
        };
        let req = Request::create(&path, &ae_id, &cfg.release, &cin).with_rcn(0);
        match classify(&binding.send(req).await) {
            Outcome::TreeMissing { detail } => {
                tracing::info!(device = %device, error = %detail, "container vanished, recreating");
                tree.forget_container(device);
            }
            Outcome::AlreadyThere => {
                if let Resource::TimeSeriesInstance(tsi) = &cin {
                    let rn = tsi.rn.as_deref().unwrap_or_default();
                    return super::instance_check::confirm_instance(
                        binding,
                        &path,
                        &ae_id,
                        &cfg.release,
                        rn,
                    )
                    .await;
                }
                return Outcome::AlreadyThere;
            }
            other => return other,
        }
    }
    Outcome::TreeMissing {
        detail: format!("container {device} keeps vanishing"),
    }
}

async fn sleep_until_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}
