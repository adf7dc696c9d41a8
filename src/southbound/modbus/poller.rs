//! Poll cycles of the devices on one bus.
//!
//! Each device keeps its own schedule (one deadline per polling interval), what it learned
//! from exception responses, and its health. A cycle reads the due plans and becomes exactly
//! one [`Record`]: values of the points that were read, `quality.<point> = "bad: <reason>"`
//! in `meta` for the others (never a stale value).
//!
//! Failure isolation:
//! - a read group (one planned request) that fails while the device answers other reads is
//!   put on hold on its own ([`super::groups`]); its points are flagged bad, the other groups
//!   are read and the record goes out;
//! - a device that answers nothing in a cycle is silent: it is backed off as a whole
//!   (jittered, exponential, up to [`DEVICE_BACKOFF_MAX`]) and its groups' histories are
//!   cleared (the failures were the device's). A cycle gives up on a device after
//!   [`MISSES_WHEN_SILENT`] unanswered read (or [`MISSES_WHEN_ALIVE`] in a row if it answered
//!   in its last cycle, so one lost answer of a healthy device is not mistaken for silence),
//!   so on a shared line a silent unit costs the others at most one timeout per cycle, and
//!   less while it is backed off. Only the change costs more, once: the cycle in which a
//!   device stops answering after its first reads still tries its remaining groups (a
//!   device that answered this cycle is never called silent), and the next tries two;
//! - a lost connection ends the cycle at once, without blaming any group;
//! - a merged read refused with exception 01/02/03 is split and retried; only the point the
//!   device refuses on its own is reported bad, and the plan remembers it (and any hole that
//!   cannot be read across) until [`RECHECK_AFTER`].

use super::bus::{decode_read, Bus, TxError};
use super::command_queue::CommandQueue;
use super::config::{DeviceConfig, Table};
use super::groups::{self, GroupHealth, GroupKey};
use super::plan::{plan_device, split, IntervalPlan, Learned, Limits, ReadRequest};
use super::profile::Point;
use super::report_policy::ReportPolicy;
use crate::backoff::Backoff;
use crate::record::{now_ms, Record, Value};
use crate::southbound::report_filter::{Reading, ReportFilter};
use crate::telemetry::ModbusMetrics;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_modbus::ExceptionCode;
use tokio_util::sync::CancellationToken;

/// How long refused points and unreadable holes are remembered before they are tried again
/// (firmware updates, a technician fixing the map on the device side).
pub const RECHECK_AFTER: Duration = Duration::from_secs(3600);
/// Longest pause between attempts on a device that does not answer.
pub const DEVICE_BACKOFF_MAX: Duration = Duration::from_secs(300);
/// Unanswered reads (no answer in between) after which a cycle gives up on a device that
/// was silent in its last cycle (or has not answered yet).
pub const MISSES_WHEN_SILENT: u32 = 1;
/// The same for a device that answered in its last cycle.
pub const MISSES_WHEN_ALIVE: u32 = 2;

/// One device on a bus and its polling state.
pub struct DevicePoller {
    pub id: String,
    pub unit: u8,
    pub points: Vec<Point>,
    limits: Limits,
    timeout: Duration,
    learned: Learned,
    /// Why each learned bad point was refused, for its quality flag.
    bad_reasons: HashMap<usize, String>,
    learned_since: Instant,
    plans: Vec<IntervalPlan>,
    /// Deadline of each plan in `plans`, same order.
    next_due: Vec<Instant>,
    /// Whole-device backoff (the device answered nothing).
    backoff: Backoff,
    blocked_until: Option<Instant>,
    /// Read groups on hold after failures.
    groups: GroupHealth,
    /// The device answered something in its last cycle.
    alive: bool,
    counters: Option<Arc<ModbusMetrics>>,
    /// Report by exception, when the device has a `report` table.
    report: Option<(ReportPolicy, ReportFilter)>,
}

/// One reading per point of a cycle: `None` when not part of the cycle.
type Readings = Vec<Option<Result<Value, String>>>;

impl DevicePoller {
    pub fn new(device: &DeviceConfig, points: Vec<Point>, start: Instant) -> Self {
        let limits = Limits {
            max_registers: device.max_registers,
            max_bits: device.max_bits,
            max_gap: device.max_gap,
        };
        let learned = Learned::default();
        let plans = plan_device(&points, &limits, &learned);
        let report = device
            .report
            .as_ref()
            .map(|r| (ReportPolicy::new(r, &points), ReportFilter::new()));
        let base = plans
            .first()
            .map(|p| p.interval)
            .unwrap_or(device.poll_interval);
        DevicePoller {
            id: device.id.clone(),
            unit: device.unit,
            limits,
            timeout: device.timeout,
            next_due: vec![start; plans.len()],
            plans,
            points,
            learned,
            bad_reasons: HashMap::new(),
            learned_since: start,
            backoff: Backoff::new(base, DEVICE_BACKOFF_MAX),
            blocked_until: None,
            groups: GroupHealth::default(),
            alive: false,
            counters: None,
            report,
        }
    }

    /// Counts group and device backoffs in `counters`.
    pub fn with_counters(mut self, counters: Arc<ModbusMetrics>) -> Self {
        self.counters = Some(counters);
        self
    }

    /// Report by exception: whether the record of a cycle goes to the buffer. Always true
    /// without a `report` table. The whole record goes out when any of its points is worth
    /// sending, so a consumer always sees every point of a cycle together.
    pub fn worth_sending(&mut self, record: &Record, now: std::time::Instant) -> bool {
        let Some((policy, filter)) = &mut self.report else {
            return true;
        };
        let failed: Vec<&str> = record
            .meta
            .keys()
            .filter_map(|k| k.strip_prefix("quality."))
            .collect();
        let reading = Reading {
            values: &record.values,
            failed: &failed,
            volatile: &[],
            forced: false,
        };
        filter.observe(now, &reading, policy).is_send()
    }

    /// The current plans (for tests and `plan` output after learning).
    pub fn plans(&self) -> &[IntervalPlan] {
        &self.plans
    }

    pub fn learned(&self) -> &Learned {
        &self.learned
    }

    /// When this device next wants the bus.
    pub fn next_attempt(&self) -> Instant {
        let due = self
            .next_due
            .iter()
            .min()
            .copied()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400));
        match self.blocked_until {
            Some(b) => due.max(b),
            None => due,
        }
    }

    /// Runs one cycle if a plan is due and the device is not backed off.
    /// Jobs queued in `commands` are executed before each read of the cycle.
    pub async fn poll(
        &mut self,
        bus: &mut Bus,
        adapter: &str,
        commands: &mut CommandQueue,
    ) -> Option<Record> {
        let now = Instant::now();
        let due: Vec<usize> = (0..self.plans.len())
            .filter(|k| self.next_due[*k] <= now)
            .collect();
        for &k in &due {
            let interval = self.plans[k].interval;
            let next = self.next_due[k] + interval;
            self.next_due[k] = if next <= now { now + interval } else { next };
        }
        if due.is_empty() || self.blocked_until.is_some_and(|b| b > now) {
            return None;
        }
        if !self.learned.is_empty() && now.duration_since(self.learned_since) >= RECHECK_AFTER {
            self.forget(now);
        }
        let intervals: HashSet<Duration> = due.iter().map(|k| self.plans[*k].interval).collect();
        let planned: Vec<(ReadRequest, Duration)> = due
            .iter()
            .flat_map(|k| {
                let interval = self.plans[*k].interval;
                self.plans[*k]
                    .requests
                    .iter()
                    .map(move |r| (r.clone(), interval))
            })
            .collect();
        let ts_ms = now_ms();
        let readings = self.run_requests(bus, planned, commands).await;

        let mut record = Record {
            adapter: adapter.to_string(),
            device: self.id.clone(),
            ts_ms,
            values: Default::default(),
            meta: Default::default(),
            kind: Default::default(),
        };
        for (i, p) in self.points.iter().enumerate() {
            if !intervals.contains(&p.interval) {
                continue;
            }
            let reading = readings.get(i).cloned().flatten().unwrap_or_else(|| {
                Err(self
                    .bad_reasons
                    .get(&i)
                    .cloned()
                    .unwrap_or_else(|| "not read".into()))
            });
            match reading {
                Ok(v) => {
                    record.values.insert(p.name.clone(), v);
                }
                Err(reason) => {
                    record.meta.insert(
                        format!("quality.{}", p.name),
                        Value::Str(format!("bad: {reason}")),
                    );
                }
            }
        }
        Some(record)
    }

    /// Clears what exceptions taught us and plans from scratch.
    fn forget(&mut self, now: Instant) {
        self.learned = Learned::default();
        self.bad_reasons.clear();
        self.learned_since = now;
        self.replan();
    }

    fn replan(&mut self) {
        self.plans = plan_device(&self.points, &self.limits, &self.learned);
        let keys: HashSet<GroupKey> = self
            .plans
            .iter()
            .flat_map(|p| p.requests.iter().map(groups::key))
            .collect();
        self.groups.retain(&keys);
    }

    fn count(&self, pick: impl Fn(&ModbusMetrics) -> &prometheus::IntCounter) {
        if let Some(c) = &self.counters {
            pick(c).inc();
        }
    }

    /// Executes the planned reads (skipping groups on hold), splitting refused merged reads;
    /// returns one reading per point and updates group and device health.
    async fn run_requests(
        &mut self,
        bus: &mut Bus,
        planned: Vec<(ReadRequest, Duration)>,
        commands: &mut CommandQueue,
    ) -> Readings {
        let mut readings: Readings = vec![None; self.points.len()];
        // (request, index of the planned group it belongs to)
        let mut work: VecDeque<(ReadRequest, usize)> = VecDeque::new();
        for (g, (req, _)) in planned.iter().enumerate() {
            match self.groups.skip_now(&groups::key(req)) {
                Some(reason) => mark(&mut readings, req, &reason),
                None => work.push_back((req.clone(), g)),
            }
        }
        let mut attempted = vec![false; planned.len()];
        let mut group_error: Vec<Option<String>> = vec![None; planned.len()];
        let mut whole_ok: HashSet<(Table, u16, u16)> = HashSet::new();
        let mut splits: Vec<(ReadRequest, ReadRequest)> = Vec::new();
        // The device sent something this cycle (an answer, an exception, even a bad frame).
        let mut heard = false;
        let mut misses_in_row = 0u32;
        let allowed_misses = if self.alive {
            MISSES_WHEN_ALIVE
        } else {
            MISSES_WHEN_SILENT
        };
        // Set when the cycle gives up: the reason for every read not yet made.
        let mut gave_up: Option<String> = None;
        let mut connection_lost = false;
        let mut learned_more = false;
        while let Some((req, g)) = work.pop_front() {
            if let Some(reason) = &gave_up {
                mark(&mut readings, &req, reason);
                continue;
            }
            attempted[g] = true;
            // Commands go first: a queued job never waits for more than the read in progress.
            commands.serve_pending(bus).await;
            match bus.read(self.unit, &req, self.timeout).await {
                Ok(data) => {
                    heard = true;
                    misses_in_row = 0;
                    whole_ok.insert((req.table, req.address, req.count));
                    for &i in &req.points {
                        if let Some(p) = self.points.get(i) {
                            readings[i] = Some(
                                decode_read(p, &req, &data).map_err(|e| format!("decode: {e}")),
                            );
                        }
                    }
                }
                Err(TxError::Exception(code)) if is_refusal(code) => {
                    heard = true;
                    misses_in_row = 0;
                    match split(&self.points, &req) {
                        Some((a, b)) => {
                            tracing::debug!(device = %self.id, address = req.address, count = req.count, code = u8::from(code), "merged read refused, splitting");
                            splits.push((a.clone(), b.clone()));
                            work.push_front((b, g));
                            work.push_front((a, g));
                        }
                        None => {
                            let reason = format!(
                                "exception {:02X} {code} (skipped until recheck)",
                                u8::from(code)
                            );
                            for &i in &req.points {
                                self.learned.bad_points.insert(i);
                                self.bad_reasons.insert(i, reason.clone());
                            }
                            // No later read may span the refused address either.
                            self.learned.cuts.insert((req.table, req.address));
                            tracing::warn!(device = %self.id, point = %self.points.get(req.points[0]).map(|p| p.name.as_str()).unwrap_or("?"), address = req.address, code = u8::from(code), "device refuses point");
                            mark(&mut readings, &req, &reason);
                            learned_more = true;
                        }
                    }
                }
                Err(e) if e.connection_lost() => {
                    let reason = e.to_string();
                    mark(&mut readings, &req, &reason);
                    gave_up = Some(reason);
                    connection_lost = true;
                }
                Err(e) => {
                    let reason = e.to_string();
                    mark(&mut readings, &req, &reason);
                    group_error[g] = Some(reason.clone());
                    if e.no_answer() {
                        misses_in_row += 1;
                        if !heard && misses_in_row >= allowed_misses {
                            gave_up = Some(reason);
                        }
                    } else {
                        // Busy, damaged frame, wrong answer: the device is there.
                        heard = true;
                        misses_in_row = 0;
                    }
                }
            }
        }
        for (a, b) in splits {
            if whole_ok.contains(&(a.table, a.address, a.count))
                && whole_ok.contains(&(b.table, b.address, b.count))
            {
                // Both halves read fine on their own: the hole between them is unreadable.
                self.learned.cuts.insert((b.table, b.address));
                learned_more = true;
            }
        }
        let now = Instant::now();
        let silent = connection_lost || (!heard && group_error.iter().any(Option::is_some));
        if silent {
            let delay = self.backoff.next_delay();
            self.blocked_until = Some(now + delay);
            self.alive = false;
            self.groups.clear();
            self.count(|c| &c.device_backoffs);
            let reason = gave_up.as_deref().unwrap_or("no answer");
            tracing::warn!(device = %self.id, unit = self.unit, error = %reason, retry_in_ms = delay.as_millis() as u64, failures = self.backoff.attempts(), "modbus device not answering");
        } else {
            if self.backoff.attempts() > 0 {
                tracing::info!(device = %self.id, unit = self.unit, "modbus device answers again");
            }
            self.backoff.reset();
            self.blocked_until = None;
            if attempted.iter().any(|a| *a) {
                self.alive = heard;
            }
            for (g, (req, interval)) in planned.iter().enumerate() {
                if !attempted[g] {
                    continue;
                }
                let key = groups::key(req);
                match &group_error[g] {
                    Some(reason) => {
                        let skip = self.groups.failed(key, *interval, reason);
                        self.count(|c| &c.group_backoffs);
                        tracing::debug!(device = %self.id, address = req.address, count = req.count, error = %reason, skip_cycles = skip, "modbus read group on hold");
                    }
                    None => {
                        if self.groups.answered(&key) {
                            tracing::debug!(device = %self.id, address = req.address, "modbus read group answers again");
                        }
                    }
                }
            }
        }
        if learned_more {
            self.replan();
        }
        readings
    }
}

/// Exceptions that mean "not this request", worth a split: illegal function (pymodbus uses it
/// for over-limit reads), illegal data address, illegal data value.
fn is_refusal(code: ExceptionCode) -> bool {
    matches!(
        code,
        ExceptionCode::IllegalFunction
            | ExceptionCode::IllegalDataAddress
            | ExceptionCode::IllegalDataValue
    )
}

fn mark(readings: &mut [Option<Result<Value, String>>], req: &ReadRequest, reason: &str) {
    for &i in &req.points {
        if let Some(r) = readings.get_mut(i) {
            *r = Some(Err(reason.to_string()));
        }
    }
}

/// The task that owns one bus: executes the commands of its devices as they come and polls
/// its devices in deadline order, until shutdown. Commands go first.
pub async fn run_bus(
    mut bus: Bus,
    mut devices: Vec<DevicePoller>,
    adapter: String,
    tx: mpsc::Sender<Record>,
    counters: Arc<ModbusMetrics>,
    mut commands: CommandQueue,
    shutdown: CancellationToken,
) {
    loop {
        commands.serve_pending(&mut bus).await;
        let next = devices
            .iter()
            .enumerate()
            .map(|(k, d)| (k, d.next_attempt()))
            .min_by_key(|(_, t)| *t);
        let (k, at) = match next {
            Some(n) => n,
            None => (0, Instant::now() + Duration::from_secs(86_400)),
        };
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            job = commands.recv() => {
                if let Some(job) = job {
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        () = commands.run(job, &mut bus) => {}
                    }
                }
                continue;
            }
            _ = tokio::time::sleep_until(at) => {}
        }
        if devices.is_empty() {
            continue;
        }
        let record = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = devices[k].poll(&mut bus, &adapter, &mut commands) => r,
        };
        let Some(record) = record else { continue };
        if !devices[k].worth_sending(&record, Instant::now().into_std()) {
            counters.suppressed.inc();
            continue;
        }
        counters.records.inc();
        counters.bad_points.inc_by(record.meta.len() as u64);
        tokio::select! {
            _ = shutdown.cancelled() => break,
            sent = tx.send(record) => if sent.is_err() { break },
        }
    }
    commands.close();
}
