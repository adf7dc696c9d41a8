//! The gateways a GWMP server can send downlinks to: gateway EUI → address of its last
//! PULL_DATA, bounded.
//!
//! Anyone on the LAN can send PULL_DATA with any EUI, so the table must not grow with them:
//! a gateway not heard for `idle_timeout` is forgotten, at most `max` are kept (when full, the
//! one heard least recently goes), and an optional allow-list refuses every other EUI. A
//! cabinet has one or a few concentrators, each repeating PULL_DATA every keepalive interval
//! (10 s by default), so a real gateway is always among the most recently heard — unless a
//! flood of fresh EUIs outpaces it, which is what the allow-list is for.

use super::gwmp::GatewayEui;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// What [`GatewayTable::note`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Noted {
    /// The gateway is in the table (false: refused by the allow-list).
    pub accepted: bool,
    /// Gateways forgotten because they were idle too long.
    pub expired: usize,
    /// Gateway forgotten to make room (the table was full).
    pub evicted: Option<GatewayEui>,
}

struct Entry {
    addr: SocketAddr,
    /// Key in `by_age`.
    age: (Instant, u64),
}

pub struct GatewayTable {
    max: usize,
    idle_timeout: Duration,
    /// `None`: any gateway.
    allow: Option<HashSet<GatewayEui>>,
    entries: HashMap<GatewayEui, Entry>,
    /// Entries by last time heard, oldest first (the sequence number breaks ties).
    by_age: BTreeMap<(Instant, u64), GatewayEui>,
    seq: u64,
}

impl GatewayTable {
    /// `allow` empty = any gateway. `max` is at least 1.
    pub fn new(max: usize, idle_timeout: Duration, allow: Vec<GatewayEui>) -> Self {
        GatewayTable {
            max: max.max(1),
            idle_timeout,
            allow: (!allow.is_empty()).then(|| allow.into_iter().collect()),
            entries: HashMap::new(),
            by_age: BTreeMap::new(),
            seq: 0,
        }
    }

    /// False if an allow-list is set and does not hold `gw`.
    pub fn allowed(&self, gw: &GatewayEui) -> bool {
        match &self.allow {
            None => true,
            Some(a) => a.contains(gw),
        }
    }

    /// Records a PULL_DATA from `gw` at `addr`.
    pub fn note(&mut self, gw: GatewayEui, addr: SocketAddr, now: Instant) -> Noted {
        let expired = self.expire(now);
        if !self.allowed(&gw) {
            return Noted {
                accepted: false,
                expired,
                evicted: None,
            };
        }
        self.seq += 1;
        let age = (now, self.seq);
        let mut evicted = None;
        if let Some(e) = self.entries.get_mut(&gw) {
            self.by_age.remove(&e.age);
            e.addr = addr;
            e.age = age;
        } else {
            if self.entries.len() >= self.max {
                if let Some((_, oldest)) = self.by_age.pop_first() {
                    self.entries.remove(&oldest);
                    evicted = Some(oldest);
                }
            }
            self.entries.insert(gw, Entry { addr, age });
        }
        self.by_age.insert(age, gw);
        Noted {
            accepted: true,
            expired,
            evicted,
        }
    }

    /// Forgets gateways not heard for `idle_timeout`; returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let mut n = 0;
        while let Some((&(heard, _), _)) = self.by_age.first_key_value() {
            if now.saturating_duration_since(heard) < self.idle_timeout {
                break;
            }
            if let Some((_, gw)) = self.by_age.pop_first() {
                self.entries.remove(&gw);
                n += 1;
            }
        }
        n
    }

    /// Where downlinks for `gw` go, if it was heard within `idle_timeout`.
    pub fn addr(&self, gw: &GatewayEui, now: Instant) -> Option<SocketAddr> {
        self.entries
            .get(gw)
            .filter(|e| now.saturating_duration_since(e.age.0) < self.idle_timeout)
            .map(|e| e.addr)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gw(n: u64) -> GatewayEui {
        GatewayEui(n.to_be_bytes())
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn full_table_forgets_the_least_recently_heard() {
        let t0 = Instant::now();
        let mut t = GatewayTable::new(3, Duration::from_secs(60), Vec::new());
        for i in 0..3 {
            assert!(t.note(gw(i), addr(1000 + i as u16), t0).accepted);
        }
        // Gateway 0 is heard again: gateway 1 is now the oldest.
        t.note(gw(0), addr(2000), t0 + Duration::from_secs(1));
        let n = t.note(gw(9), addr(9), t0 + Duration::from_secs(2));
        assert_eq!(n.evicted, Some(gw(1)));
        assert_eq!(t.len(), 3);
        assert_eq!(
            t.addr(&gw(0), t0 + Duration::from_secs(2)),
            Some(addr(2000))
        );
        assert_eq!(t.addr(&gw(1), t0 + Duration::from_secs(2)), None);
    }

    #[test]
    fn idle_gateways_expire() {
        let t0 = Instant::now();
        let mut t = GatewayTable::new(10, Duration::from_secs(30), Vec::new());
        t.note(gw(1), addr(1), t0);
        t.note(gw(2), addr(2), t0 + Duration::from_secs(20));
        let later = t0 + Duration::from_secs(31);
        assert_eq!(t.addr(&gw(1), later), None, "idle gateway has no route");
        let n = t.note(gw(3), addr(3), later);
        assert_eq!(n.expired, 1);
        assert_eq!(t.len(), 2);
        assert_eq!(t.addr(&gw(2), later), Some(addr(2)));
    }

    #[test]
    fn allow_list_refuses_others_and_a_flood_stays_at_the_cap() {
        let t0 = Instant::now();
        let mut t = GatewayTable::new(2, Duration::from_secs(30), vec![gw(7)]);
        assert!(!t.note(gw(1), addr(1), t0).accepted);
        assert!(t.note(gw(7), addr(7), t0).accepted);
        assert_eq!(t.len(), 1);

        let mut open = GatewayTable::new(64, Duration::from_secs(30), Vec::new());
        let mut evicted = 0;
        for i in 0..100_000 {
            if open.note(gw(i), addr(1), t0).evicted.is_some() {
                evicted += 1;
            }
        }
        assert_eq!(open.len(), 64);
        assert_eq!(evicted, 100_000 - 64);
    }
}
