//! 100 000 distinct device ids through the real series path (an adapter's `RecordSender` on a
//! real buffer): one adapter keeps at most `max_device_series` labelled devices (plus the
//! configured ones), the rest is counted as overflow, the scrape stays small and so does RSS.

mod common;

use citygate::record::Record;
use citygate::telemetry::Metrics;

const IDS: usize = 100_000;
const CAP: usize = 500;

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
}

#[tokio::test]
#[ignore = "floods 100 000 device ids through a real buffer (~10 s); run by tests/run.sh"]
async fn one_hundred_thousand_device_ids_stay_within_the_series_cap() {
    let dir = tempfile::tempdir().unwrap();
    let (buffer, thread) = common::open(&dir.path().join("b.sqlite"), &common::quick_config());
    let metrics = Metrics::new();
    metrics.device_series.set_cap(CAP);
    metrics
        .device_series
        .configure("flood", ["meter-1".to_string()]);
    let sender = buffer.sender_for("flood", &metrics);
    let before = status_kib("VmRSS:");

    for batch in 0..IDS / 1000 {
        let records: Vec<Record> = (0..1000)
            .map(|i| common::record(&format!("dev-{}", batch * 1000 + i), i as i64))
            .collect();
        common::within(30, sender.send(records)).await.unwrap();
    }
    // A configured device that shows up only after the flood still gets its series.
    common::within(30, sender.send(vec![common::record("meter-1", 1)]))
        .await
        .unwrap();

    let scrape = metrics.render();
    let up_series = scrape
        .lines()
        .filter(|l| l.starts_with("citygate_device_up{"))
        .count();
    let seen_series = scrape
        .lines()
        .filter(|l| l.starts_with("citygate_device_last_seen_timestamp_seconds{"))
        .count();
    assert_eq!(up_series, CAP + 1, "cap plus the configured device");
    assert_eq!(seen_series, CAP + 1);
    assert!(scrape.contains("citygate_device_up{adapter=\"flood\",device=\"meter-1\"} 1"));
    assert_eq!(
        metrics
            .device_series_overflow
            .with_label_values(&["flood"])
            .get(),
        (IDS - CAP) as u64
    );
    assert!(scrape.contains(&format!(
        "citygate_device_series_overflow_total{{adapter=\"flood\"}} {}",
        IDS - CAP
    )));
    // Every record was still stored.
    assert_eq!(
        metrics.adapter_records.with_label_values(&["flood"]).get(),
        IDS as u64 + 1
    );
    let after = status_kib("VmRSS:");
    let peak = status_kib("VmHWM:");
    eprintln!(
        "scrape {} bytes; RSS before {before} KiB, after {after} KiB, peak {peak} KiB",
        scrape.len()
    );
    // Documented in docs/benchmarks.md.
    assert!(
        scrape.len() < 256 * 1024,
        "scrape of {} bytes",
        scrape.len()
    );
    assert!(peak < 48 * 1024, "peak RSS {peak} KiB");
    drop(sender);
    drop(buffer);
    thread.close();
}
