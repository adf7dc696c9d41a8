//! After a remote change: is an adapter that ran well before now failing, and for how long?
//!
//! "Failing" uses what the daemon already knows of its adapters: the supervisor's
//! `citygate_adapter_up` (0 while it waits to restart a failed adapter) and the device roster
//! behind `citygate_device_up` (an adapter whose every known device is down or not heard from
//! is failing; one without devices is judged by the supervisor only). An adapter that fails
//! continuously for `rollback_after` triggers the automatic rollback. The watch ends after
//! twice `rollback_after`: a failure much later is a field problem, not the change's. (It
//! does not end sooner on a device heard from: the adapter replaced by the change may still
//! commit its last records just after it, which would end the watch on old evidence.)
use crate::telemetry::device_roster::Liveness;
use crate::telemetry::Metrics;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

/// What is known of one adapter at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterHealth {
    /// The supervisor runs it (not waiting to restart it).
    pub up: bool,
    /// Its devices' liveness.
    pub devices: Vec<Liveness>,
}

impl AdapterHealth {
    pub fn failing(&self) -> bool {
        !self.up || (!self.devices.is_empty() && !self.devices.contains(&Liveness::Up))
    }
}

/// The health of every adapter in `ids`, read from the metrics.
pub fn read(metrics: &Metrics, ids: &[String]) -> BTreeMap<String, AdapterHealth> {
    let devices = metrics.device_roster.devices();
    ids.iter()
        .map(|id| {
            let health = AdapterHealth {
                up: metrics.adapter_up.with_label_values(&[id.as_str()]).get() == 1,
                devices: devices
                    .iter()
                    .filter(|d| &d.adapter == id)
                    .map(|d| d.status)
                    .collect(),
            };
            (id.clone(), health)
        })
        .collect()
}

/// What the watch says after a look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Watching,
    /// The change is old enough: stop watching.
    Done,
    /// This adapter has failed for `rollback_after`: roll back.
    RollBack {
        adapter: String,
    },
}

/// The watch over one change.
#[derive(Debug)]
pub struct Watch {
    /// The instance that made the change.
    pub instance: String,
    started: Instant,
    rollback_after: Duration,
    /// Watched adapter → since when it fails (None: not failing now).
    failing_since: BTreeMap<String, Option<Instant>>,
}

impl Watch {
    /// Watches the adapters of `before` (health just before the change) that were not
    /// failing and are still in the new config (`kept`).
    pub fn new(
        instance: &str,
        before: &BTreeMap<String, AdapterHealth>,
        kept: impl Fn(&str) -> bool,
        rollback_after: Duration,
        now: Instant,
    ) -> Option<Watch> {
        let failing_since: BTreeMap<_, _> = before
            .iter()
            .filter(|(id, h)| !h.failing() && kept(id))
            .map(|(id, _)| (id.clone(), None))
            .collect();
        (!failing_since.is_empty()).then(|| Watch {
            instance: instance.to_owned(),
            started: now,
            rollback_after,
            failing_since,
        })
    }

    pub fn adapters(&self) -> Vec<String> {
        self.failing_since.keys().cloned().collect()
    }

    /// Takes one look at the health of the watched adapters.
    pub fn look(&mut self, health: &BTreeMap<String, AdapterHealth>, now: Instant) -> Verdict {
        for (id, since) in &mut self.failing_since {
            let Some(h) = health.get(id) else {
                continue;
            };
            if !h.failing() {
                *since = None;
                continue;
            }
            let from = *since.get_or_insert(now);
            if now.duration_since(from) >= self.rollback_after {
                return Verdict::RollBack {
                    adapter: id.clone(),
                };
            }
        }
        if now.duration_since(self.started) >= 2 * self.rollback_after {
            Verdict::Done
        } else {
            Verdict::Watching
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(up: bool, devices: &[Liveness]) -> AdapterHealth {
        AdapterHealth {
            up,
            devices: devices.to_vec(),
        }
    }

    fn map(entries: &[(&str, AdapterHealth)]) -> BTreeMap<String, AdapterHealth> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn failing_means_not_running_or_no_device_up() {
        assert!(!h(true, &[]).failing());
        assert!(h(false, &[]).failing());
        assert!(h(true, &[Liveness::Down, Liveness::Unknown]).failing());
        assert!(!h(true, &[Liveness::Down, Liveness::Up]).failing());
    }

    #[test]
    fn an_adapter_failing_for_the_whole_period_rolls_back() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let before = map(&[
            ("meter", h(true, &[Liveness::Up])),
            ("broken", h(false, &[])),
        ]);
        let mut w = Watch::new("cin-1", &before, |_| true, 5 * s, t0).unwrap();
        // A watch only covers adapters that ran well before the change.
        assert_eq!(w.adapters(), ["meter"]);
        let down = map(&[("meter", h(true, &[Liveness::Down]))]);
        assert_eq!(w.look(&down, t0 + s), Verdict::Watching);
        // Up for a moment: the count starts again.
        let up = map(&[("meter", h(true, &[Liveness::Up]))]);
        assert_eq!(w.look(&up, t0 + 3 * s), Verdict::Watching);
        assert_eq!(w.look(&down, t0 + 4 * s), Verdict::Watching);
        assert_eq!(w.look(&down, t0 + 8 * s), Verdict::Watching);
        assert_eq!(
            w.look(&down, t0 + 9 * s),
            Verdict::RollBack {
                adapter: "meter".into()
            }
        );
    }

    #[test]
    fn the_watch_ends_after_twice_the_period() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let before = map(&[("meter", h(true, &[Liveness::Up]))]);
        let mut w = Watch::new("c", &before, |_| true, 5 * s, t0).unwrap();
        let up = map(&[("meter", h(true, &[Liveness::Up]))]);
        assert_eq!(w.look(&up, t0 + s), Verdict::Watching);
        assert_eq!(w.look(&up, t0 + 10 * s), Verdict::Done);
        // Nothing to watch: an adapter removed by the change, or none healthy before.
        assert!(Watch::new("c", &before, |_| false, 5 * s, t0).is_none());
        let broken = map(&[("meter", h(false, &[]))]);
        assert!(Watch::new("c", &broken, |_| true, 5 * s, t0).is_none());
    }
}
