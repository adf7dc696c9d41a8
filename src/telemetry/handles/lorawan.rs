//! Counters of one LoRaWAN adapter (`lorawan_udp` or `lorawan_lns_mqtt`): frames by result,
//! Semtech UDP packets by type, gateway table events and size.

use super::{Metrics, Source};
use prometheus::{IntCounter, IntGauge};

/// Pre-labelled handles for one LoRaWAN adapter. Every counter only grows.
#[derive(Clone)]
pub struct LorawanMetrics {
    // citygate_lorawan_frames_total{adapter, result}
    /// Uplinks accepted (MIC ok, new counter).
    pub ok: IntCounter,
    pub bad_mic: IntCounter,
    /// Old counter or MIC valid only with an older counter window.
    pub replay: IntCounter,
    /// Device retransmissions of the last accepted counter (not recorded again).
    pub retransmission: IntCounter,
    /// Same frame heard again within the dedup window.
    pub duplicate: IntCounter,
    pub unknown_device: IntCounter,
    /// Datagrams or PHYPayloads that could not be parsed.
    pub malformed: IntCounter,
    /// rxpk with a failed CRC (dropped before parsing).
    pub crc_error: IntCounter,
    pub join_accepted: IntCounter,
    pub join_rejected: IntCounter,
    pub codec_error: IntCounter,
    /// Proprietary frames (MType 111): vendor-defined, no MIC/FCnt, not recorded.
    pub proprietary: IntCounter,
    /// MAC setup requests (RXParamSetup, RXTimingSetup, NewChannel) a device refused.
    pub mac_nack: IntCounter,
    // citygate_lorawan_gateway_packets_total{adapter, type}
    pub downlink_sent: IntCounter,
    /// Downlinks not sent because no PULL_DATA of the gateway was heard within
    /// `gateway_idle_timeout` (its address is unknown or forgotten).
    pub downlink_no_route: IntCounter,
    pub tx_ack_ok: IntCounter,
    pub tx_ack_error: IntCounter,
    /// Sums of the `stat` reports of all gateways (rxnb, rxok, txnb).
    pub gateway_rx_total: IntCounter,
    pub gateway_rx_ok_total: IntCounter,
    pub gateway_tx_total: IntCounter,
    pub gateway_stat_reports: IntCounter,
    // citygate_lorawan_gateway_table_total{adapter, event}
    /// Gateway table: forgotten to make room, forgotten when idle, refused by the allow-list.
    pub gateway_table_evicted: IntCounter,
    pub gateway_table_expired: IntCounter,
    pub gateway_table_refused: IntCounter,
    /// Downlinks that could not go in the uplink's receive windows, by reason (the RX windows
    /// had passed; the duty cycle of the sub-band was used up; the frame was too large for
    /// the window's data rate; no RX parameters for the uplink's channel).
    pub downlink_too_late: IntCounter,
    pub downlink_duty_cycle: IntCounter,
    pub downlink_too_large: IntCounter,
    pub downlink_no_window: IntCounter,
    /// Downlinks not sent because their FCntDown could not be saved first.
    pub downlink_state_not_saved: IntCounter,
    /// `citygate_lorawan_gateways{adapter}`: gateways in the table now (a level).
    pub gateways: IntGauge,
}

impl LorawanMetrics {
    /// The handles of adapter `adapter` in the daemon's registry.
    pub fn new(metrics: &Metrics, adapter: &str) -> Self {
        Self::from_source(Source::Registry { metrics, adapter })
    }

    /// Handles that belong to no registry (tests, benches).
    pub fn detached() -> Self {
        Self::from_source(Source::Detached)
    }

    fn from_source(s: Source<'_>) -> Self {
        let frame = |result| s.counter(|m| &m.lorawan_frames, result);
        let packet = |kind| s.counter(|m| &m.lorawan_gateway_packets, kind);
        let table = |event| s.counter(|m| &m.lorawan_gateway_table, event);
        LorawanMetrics {
            ok: frame("ok"),
            bad_mic: frame("bad_mic"),
            replay: frame("replay"),
            retransmission: frame("retransmission"),
            duplicate: frame("duplicate"),
            unknown_device: frame("unknown_device"),
            malformed: frame("malformed"),
            crc_error: frame("crc_error"),
            join_accepted: frame("join_accepted"),
            join_rejected: frame("join_rejected"),
            codec_error: frame("codec_error"),
            proprietary: frame("proprietary"),
            mac_nack: frame("mac_nack"),
            downlink_sent: packet("downlink_sent"),
            downlink_no_route: packet("downlink_no_route"),
            tx_ack_ok: packet("tx_ack_ok"),
            tx_ack_error: packet("tx_ack_error"),
            gateway_rx_total: packet("gateway_rx_total"),
            gateway_rx_ok_total: packet("gateway_rx_ok_total"),
            gateway_tx_total: packet("gateway_tx_total"),
            gateway_stat_reports: packet("gateway_stat_reports"),
            downlink_too_late: packet("downlink_too_late"),
            downlink_duty_cycle: packet("downlink_duty_cycle"),
            downlink_too_large: packet("downlink_too_large"),
            downlink_no_window: packet("downlink_no_window"),
            downlink_state_not_saved: packet("downlink_state_not_saved"),
            gateway_table_evicted: table("evicted"),
            gateway_table_expired: table("expired"),
            gateway_table_refused: table("refused"),
            gateways: s.adapter_gauge(|m| &m.lorawan_gateways),
        }
    }
}
