use super::*;

/// The supervisor builds a new adapter (and so a new handle) after each failure: the new
/// handle is the same labelled counter, so the exported value carries on with no folding.
#[test]
fn a_rebuilt_adapter_keeps_counting_where_the_last_one_stopped() {
    let metrics = Metrics::new();
    let first = LorawanMetrics::new(&metrics, "lw");
    first.ok.inc_by(7);
    first.gateways.set(3);
    drop(first);
    let second = LorawanMetrics::new(&metrics, "lw");
    assert_eq!(second.ok.get(), 7);
    second.ok.inc_by(2);
    let exported = metrics
        .lorawan_frames
        .with_label_values(&["lw", "ok"])
        .get();
    assert_eq!(exported, 9);
    let text = metrics.render();
    assert!(
        text.contains(r#"citygate_lorawan_frames_total{adapter="lw",result="ok"} 9"#),
        "{text}"
    );
    // Another adapter has its own series.
    assert_eq!(LorawanMetrics::new(&metrics, "other").ok.get(), 0);
}

#[test]
fn handles_count_into_the_documented_series() {
    let metrics = Metrics::new();
    let modbus = ModbusMetrics::new(&metrics, "mb");
    modbus.transactions.inc();
    modbus.crc_errors.inc();
    modbus.records.inc();
    let replay = ReplayMetrics::new(&metrics, "r");
    replay.zero_filled.inc();
    let ble = BleMetrics::new(&metrics, "ble1");
    ble.decode_errors.inc();
    let lorawan = LorawanMetrics::new(&metrics, "lw");
    lorawan.gateway_table_refused.inc();
    lorawan.tx_ack_ok.inc();
    let text = metrics.render();
    for line in [
        r#"citygate_modbus_transactions_total{adapter="mb"} 1"#,
        r#"citygate_adapter_errors_total{adapter="mb",kind="crc_error"} 1"#,
        r#"citygate_adapter_errors_total{adapter="r",kind="zero_filled"} 1"#,
        r#"citygate_ble_advertisements_total{adapter="ble1",result="decode_error"} 1"#,
        r#"citygate_lorawan_gateway_table_total{adapter="lw",event="refused"} 1"#,
        r#"citygate_lorawan_gateway_packets_total{adapter="lw",type="tx_ack_ok"} 1"#,
    ] {
        assert!(text.contains(line), "missing {line}");
    }
    assert_eq!(modbus.snapshot().records, 1);
    assert_eq!(replay.skipped(), 1);
}

#[test]
fn detached_handles_count_but_are_never_exported() {
    // Only citygate's own series: the process collector's (memory, CPU) move between renders.
    let ours = |m: &Metrics| -> Vec<String> {
        m.render()
            .lines()
            .filter(|l| l.contains("citygate_"))
            .map(str::to_owned)
            .collect()
    };
    let metrics = Metrics::new();
    let before = ours(&metrics);
    let detached = LorawanMetrics::detached();
    detached.ok.inc();
    assert_eq!(detached.ok.get(), 1);
    assert_eq!(ours(&metrics), before);
    assert!(!before.iter().any(|l| l.contains("lorawan")), "{before:?}");
}
