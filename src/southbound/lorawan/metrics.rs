//! Counters of the LoRaWAN adapters, plain atomics so the telemetry module can export them
//! (it reads [`LorawanCounters::snapshot`] at scrape time) without this module knowing
//! Prometheus.

use std::sync::atomic::{AtomicU64, Ordering};

/// Frames and datagrams by result. All counters only grow.
#[derive(Debug, Default)]
pub struct LorawanCounters {
    /// Uplinks accepted (MIC ok, new counter).
    pub ok: AtomicU64,
    pub bad_mic: AtomicU64,
    /// Old counter or MIC valid only with an older counter window.
    pub replay: AtomicU64,
    /// Device retransmissions of the last accepted counter (not recorded again).
    pub retransmission: AtomicU64,
    /// Same frame heard again within the dedup window.
    pub duplicate: AtomicU64,
    pub unknown_device: AtomicU64,
    /// Datagrams or PHYPayloads that could not be parsed.
    pub malformed: AtomicU64,
    /// Proprietary frames (MType 111): vendor-defined, no MIC/FCnt, not recorded.
    pub proprietary: AtomicU64,
    /// rxpk with a failed CRC (dropped before parsing).
    pub crc_error: AtomicU64,
    pub join_accepted: AtomicU64,
    pub join_rejected: AtomicU64,
    pub codec_error: AtomicU64,
    pub downlink_sent: AtomicU64,
    /// Downlinks not sent because no PULL_DATA of the gateway was heard within
    /// `gateway_idle_timeout` (its address is unknown or forgotten).
    pub downlink_no_route: AtomicU64,
    pub tx_ack_ok: AtomicU64,
    pub tx_ack_error: AtomicU64,
    /// Sums of the `stat` reports of all gateways (rxnb, rxok, txnb).
    pub gateway_rx_total: AtomicU64,
    pub gateway_rx_ok_total: AtomicU64,
    pub gateway_tx_total: AtomicU64,
    pub gateway_stat_reports: AtomicU64,
    /// Gateway table: forgotten to make room, forgotten when idle, refused by the allow-list.
    pub gateway_table_evicted: AtomicU64,
    pub gateway_table_expired: AtomicU64,
    pub gateway_table_refused: AtomicU64,
    /// Gateways in the table now (a level, exported as a gauge).
    pub gateways: AtomicU64,
}

impl LorawanCounters {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// `(name, value)` pairs in a stable order, for export.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        vec![
            ("ok", r(&self.ok)),
            ("bad_mic", r(&self.bad_mic)),
            ("replay", r(&self.replay)),
            ("retransmission", r(&self.retransmission)),
            ("duplicate", r(&self.duplicate)),
            ("unknown_device", r(&self.unknown_device)),
            ("malformed", r(&self.malformed)),
            ("proprietary", r(&self.proprietary)),
            ("crc_error", r(&self.crc_error)),
            ("join_accepted", r(&self.join_accepted)),
            ("join_rejected", r(&self.join_rejected)),
            ("codec_error", r(&self.codec_error)),
            ("downlink_sent", r(&self.downlink_sent)),
            ("downlink_no_route", r(&self.downlink_no_route)),
            ("tx_ack_ok", r(&self.tx_ack_ok)),
            ("tx_ack_error", r(&self.tx_ack_error)),
            ("gateway_rx_total", r(&self.gateway_rx_total)),
            ("gateway_rx_ok_total", r(&self.gateway_rx_ok_total)),
            ("gateway_tx_total", r(&self.gateway_tx_total)),
            ("gateway_stat_reports", r(&self.gateway_stat_reports)),
            ("gateway_table_evicted", r(&self.gateway_table_evicted)),
            ("gateway_table_expired", r(&self.gateway_table_expired)),
            ("gateway_table_refused", r(&self.gateway_table_refused)),
        ]
    }

    /// One counter by snapshot name (tests and the field tool).
    pub fn get(&self, name: &str) -> Option<u64> {
        self.snapshot()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }
}

impl crate::telemetry::counters::CounterSnapshot for LorawanCounters {
    fn snapshot(&self) -> Vec<(&'static str, u64)> {
        LorawanCounters::snapshot(self)
    }

    fn gauges(&self) -> Vec<(&'static str, i64)> {
        let n = self.gateways.load(Ordering::Relaxed);
        vec![("gateways", i64::try_from(n).unwrap_or(i64::MAX))]
    }
}
