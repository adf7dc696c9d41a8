//! Every metric citygate exports, defined in one place (documented in docs/metrics.md).
//!
//! One [`Metrics`] is built at startup on its own `prometheus::Registry` and passed down: no
//! globals, so tests assert against a fresh registry. Names follow
//! `citygate_<area>_<what>_<unit>[_total]`; labels stay bounded (adapter ids, device ids from the
//! config, fixed reason/outcome sets).

use prometheus::{
    Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry,
};

#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    // Adapters.
    pub adapter_records: IntCounterVec,
    pub adapter_errors: IntCounterVec,
    pub adapter_restarts: IntCounterVec,
    pub adapter_starts: IntCounterVec,
    pub adapter_up: IntGaugeVec,
    pub device_up: IntGaugeVec,
    pub device_last_seen: GaugeVec,
    // Modbus.
    pub modbus_transactions: IntCounterVec,
    pub modbus_timeouts: IntCounterVec,
    pub modbus_exceptions: IntCounterVec,
    pub modbus_reconnects: IntCounterVec,
    pub modbus_writes: IntCounterVec,
    // LoRaWAN.
    pub lorawan_frames: IntCounterVec,
    pub lorawan_gateway_packets: IntCounterVec,
    // BLE.
    pub ble_advertisements: IntCounterVec,
    // Buffer.
    pub buffer_records: IntGauge,
    pub buffer_bytes: IntGauge,
    pub buffer_max_bytes: IntGauge,
    pub buffer_oldest_pending_age: Gauge,
    pub buffer_dropped: IntCounterVec,
    pub buffer_dead_letters: IntGauge,
    // Northbound.
    pub sync_requests: IntCounterVec,
    pub sync_request_duration: HistogramVec,
    pub sync_records_delivered: IntCounter,
    pub sync_records_dead_lettered: IntCounter,
    pub cse_connected: IntGauge,
    pub cse_registered: IntGauge,
    // Config reloads.
    pub config_reloads: IntCounterVec,
    // Buffer health.
    pub buffer_state: IntGaugeVec,
    pub northbound_state: IntGaugeVec,
    pub buffer_offered: IntCounter,
    pub buffer_damaged: IntGauge,
    // Bounds on what outsiders can make grow.
    /// Decides which devices get `device_up` / `device_last_seen` series.
    pub device_series: super::device_series::DeviceSeries,
    /// The last record of each device with series, and the feed of committed records.
    pub live: super::live::LiveRecords,
    pub device_series_overflow: IntCounterVec,
    pub lorawan_gateways: IntGaugeVec,
    pub lorawan_gateway_table: IntCounterVec,
    // Device management (oneM2M <node> and mgmtObjs).
    /// The devices and their liveness, as the management view reads them.
    pub device_roster: super::device_roster::DeviceRoster,
    pub management_requests: IntCounterVec,
    pub management_reboots: IntCounterVec,
    // CoAP binding.
    pub coap_messages: IntCounterVec,
    // Commands from the platform.
    pub commands: IntCounterVec,
    pub command_latency: HistogramVec,
    // The syncer's adaptive in-flight limit.
    pub sync_in_flight_limit: IntGauge,
    // Report by exception.
    pub readings_suppressed: IntCounterVec,
    // Northbound wire cost (every binding).
    pub northbound_bytes: IntCounterVec,
    pub northbound_requests: IntCounterVec,
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let m = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(m.clone())).expect("unique metric");
    m
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let m = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(m.clone())).expect("unique metric");
    m
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let m = IntGauge::new(name, help).expect("valid metric");
    r.register(Box::new(m.clone())).expect("unique metric");
    m
}

impl Metrics {
    /// Builds and registers every metric (and the process collector on Linux).
    pub fn new() -> Metrics {
        let r = Registry::new();
        let build_info = IntGaugeVec::new(
            Opts::new("citygate_build_info", "Always 1; labels carry the version."),
            &["version"],
        )
        .expect("valid metric");
        r.register(Box::new(build_info.clone()))
            .expect("unique metric");
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        #[cfg(target_os = "linux")]
        {
            let pc = prometheus::process_collector::ProcessCollector::for_self();
            let _ = r.register(Box::new(pc));
        }
        let last_seen = GaugeVec::new(
            Opts::new(
                "citygate_device_last_seen_timestamp_seconds",
                "Unix time of the last record from the device.",
            ),
            &["adapter", "device"],
        )
        .expect("valid metric");
        r.register(Box::new(last_seen.clone()))
            .expect("unique metric");
        let age = Gauge::new(
            "citygate_buffer_oldest_pending_age_seconds",
            "Age of the oldest record waiting for the CSE (0 when none).",
        )
        .expect("valid metric");
        r.register(Box::new(age.clone())).expect("unique metric");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "citygate_sync_request_duration_seconds",
                "Latency of requests to the CSE.",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["operation"],
        )
        .expect("valid metric");
        r.register(Box::new(duration.clone()))
            .expect("unique metric");
        let delivered = IntCounter::new(
            "citygate_sync_records_delivered_total",
            "Records the CSE holds (created, or found already there).",
        )
        .expect("valid metric");
        r.register(Box::new(delivered.clone()))
            .expect("unique metric");
        let dead = IntCounter::new(
            "citygate_sync_records_dead_lettered_total",
            "Records the CSE refused permanently (moved to dead letters).",
        )
        .expect("valid metric");
        r.register(Box::new(dead.clone())).expect("unique metric");
        Metrics {
            adapter_records: counter_vec(&r, "citygate_adapter_records_total", "Records committed to the buffer, by adapter.", &["adapter"]),
            adapter_errors: counter_vec(&r, "citygate_adapter_errors_total", "Adapter errors by kind.", &["adapter", "kind"]),
            adapter_restarts: counter_vec(&r, "citygate_adapter_restarts_total", "Adapter restarts after a failure.", &["adapter"]),
            adapter_starts: counter_vec(&r, "citygate_adapter_starts_total", "Adapter starts: at startup and when a reload changed its config.", &["adapter"]),
            adapter_up: gauge_vec(&r, "citygate_adapter_up", "1 while the adapter runs, 0 while it waits to restart.", &["adapter"]),
            device_up: gauge_vec(&r, "citygate_device_up", "1 when the device answered its last poll / was heard recently.", &["adapter", "device"]),
            device_last_seen: last_seen,
            modbus_transactions: counter_vec(&r, "citygate_modbus_transactions_total", "Modbus requests sent.", &["adapter"]),
            modbus_timeouts: counter_vec(&r, "citygate_modbus_timeouts_total", "Modbus requests that timed out.", &["adapter"]),
            modbus_exceptions: counter_vec(&r, "citygate_modbus_exceptions_total", "Modbus exception responses.", &["adapter"]),
            modbus_reconnects: counter_vec(&r, "citygate_modbus_reconnects_total", "Modbus connections (re)opened.", &["adapter"]),
            modbus_writes: counter_vec(&r, "citygate_modbus_writes_total", "Modbus write requests (FC 05/06/15/16) by result (ok or the failure kind).", &["adapter", "result"]),
            lorawan_frames: counter_vec(&r, "citygate_lorawan_frames_total", "LoRaWAN frames by result (ok, bad_mic, replay, unknown_device, malformed, duplicate, join).", &["adapter", "result"]),
            lorawan_gateway_packets: counter_vec(&r, "citygate_lorawan_gateway_packets_total", "Semtech UDP packets by type.", &["adapter", "type"]),
            ble_advertisements: counter_vec(&r, "citygate_ble_advertisements_total", "BLE advertisements by what became of them (heard, record, rate_limited, unknown_format, …).", &["adapter", "result"]),
            buffer_records: gauge(&r, "citygate_buffer_records", "Records waiting for the CSE."),
            buffer_bytes: gauge(&r, "citygate_buffer_bytes", "Buffer database plus WAL on disk."),
            buffer_max_bytes: gauge(&r, "citygate_buffer_max_bytes", "Configured bound on the buffer."),
            buffer_oldest_pending_age: age,
            buffer_dropped: counter_vec(&r, "citygate_buffer_records_dropped_total", "Records dropped by the buffer, by reason.", &["reason"]),
            buffer_dead_letters: gauge(&r, "citygate_buffer_dead_letters", "Records in the dead-letter table."),
            sync_requests: counter_vec(&r, "citygate_sync_requests_total", "Requests to the CSE by outcome.", &["outcome"]),
            sync_request_duration: duration,
            sync_records_delivered: delivered,
            sync_records_dead_lettered: dead,
            cse_connected: gauge(&r, "citygate_cse_connected", "1 when the last request reached the CSE."),
            cse_registered: gauge(&r, "citygate_cse_registered", "1 when the AE is registered and its tree built."),
            config_reloads: counter_vec(&r, "citygate_config_reloads_total", "SIGHUP reloads by result (applied, rejected).", &["result"]),
            buffer_state: gauge_vec(&r, "citygate_buffer_state", "1 for the buffer's current state (writable, read_only, disk_full, io_error, damaged), 0 for the others.", &["state"]),
            northbound_state: gauge_vec(&r, "citygate_northbound_state", "1 for the northbound link's current state (disabled, connecting, syncing, retrying, auth_refused), 0 for the others.", &["state"]),
            buffer_offered: {
                let m = IntCounter::new("citygate_buffer_records_offered_total", "Records handed to the buffer since start (committed or counted as dropped).").expect("valid metric");
                r.register(Box::new(m.clone())).expect("unique metric");
                m
            },
            buffer_damaged: gauge(&r, "citygate_buffer_damaged_records", "Records found unreadable (damaged pages) and skipped."),
            device_series: Default::default(),
            live: Default::default(),
            device_series_overflow: counter_vec(&r, "citygate_device_series_overflow_total", "Records of runtime-discovered devices beyond [telemetry] max_device_series: stored and delivered, but without their own device series.", &["adapter"]),
            lorawan_gateways: gauge_vec(&r, "citygate_lorawan_gateways", "Gateways in the GWMP gateway table (those downlinks can be routed to).", &["adapter"]),
            lorawan_gateway_table: counter_vec(&r, "citygate_lorawan_gateway_table_total", "Gateway table events: evicted (table full, least recently heard dropped), expired (idle), refused (not in the gateways allow-list).", &["adapter", "event"]),
            device_roster: Default::default(),
            management_requests: counter_vec(&r, "citygate_management_requests_total", "Device management requests to the CSE (node and mgmtObj creates and updates) by result (ok, not_found, refused, failed).", &["result"]),
            management_reboots: counter_vec(&r, "citygate_management_reboot_requests_total", "Reboot requests from the platform (reboot mgmtObj) by outcome: restarting, refused (allow_restart = false), factory_reset_refused (always).", &["outcome"]),
            coap_messages: counter_vec(&r, "citygate_coap_messages_total", "CoAP binding message events: retransmitted (a confirmable request sent again), duplicate (a response already seen, dropped), separate (a response that came after an empty ACK), reset (the CSE answered RST).", &["event"]),
            commands: counter_vec(&r, "citygate_commands_total", "Commands from the platform by the adapter that owns the device and how they ended (done, rejected, expired, failed, unknown).", &["adapter", "outcome"]),
            command_latency: {
                let m = HistogramVec::new(
                    HistogramOpts::new("citygate_command_latency_seconds", "Seconds from a command's creation at the CSE to its execution at the device (the adapter's answer).")
                        .buckets(vec![0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0]),
                    &["adapter"],
                )
                .expect("valid metric");
                r.register(Box::new(m.clone())).expect("unique metric");
                m
            },
            sync_in_flight_limit: gauge(&r, "citygate_sync_in_flight_limit", "Requests the syncer allows in flight now: max_in_flight, lowered by the adaptive limit while the CSE struggles."),
            readings_suppressed: counter_vec(&r, "citygate_readings_suppressed_total", "Readings not sent by report by exception (within min_interval, or no change beyond the deadband and no heartbeat due).", &["adapter"]),
            northbound_bytes: counter_vec(&r, "citygate_northbound_bytes_total", "Bytes of oneM2M requests sent to (direction=sent) and responses received from (direction=received) the CSE or broker: payload and protocol headers as far as the binding sees them (HTTP request/status line and headers, MQTT PUBLISH packets, CoAP datagrams).", &["direction"]),
            northbound_requests: counter_vec(&r, "citygate_northbound_requests_total", "oneM2M requests sent by the northbound binding (records, registration, tree, retries, commands), by binding.", &["binding"]),
            registry: r,
        }
    }

    /// Marks a record of `device` in the per-device series, if the device may have them
    /// (see [`DeviceSeries`](super::device_series::DeviceSeries)); otherwise counts it as
    /// overflow. `has_values`: false when every point of the poll failed (device down).
    pub fn observe_device(&self, adapter: &str, device: &str, has_values: bool, now_s: f64) {
        if !self.device_series.admit(adapter, device) {
            self.device_series_overflow
                .with_label_values(&[adapter])
                .inc();
            return;
        }
        self.device_roster
            .observe(adapter, device, has_values, (now_s * 1000.0) as i64);
        let labels = [adapter, device];
        self.device_last_seen.with_label_values(&labels).set(now_s);
        self.device_up
            .with_label_values(&labels)
            .set(i64::from(has_values));
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        use prometheus::Encoder;
        let mut out = Vec::new();
        let encoder = prometheus::TextEncoder::new();
        if let Err(e) = encoder.encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "cannot encode metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
