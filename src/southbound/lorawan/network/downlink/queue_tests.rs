use super::*;
use crate::commands::Command;
use tokio::sync::oneshot;

fn job(confirmed: bool) -> (CommandJob, oneshot::Receiver<Outcome>) {
    let (tx, rx) = oneshot::channel();
    let command = Command {
        key: "cin1".into(),
        id: "valve-7".into(),
        device: "0202020202020202".into(),
        action: Action::Downlink(Downlink {
            fport: 10,
            payload: vec![1, 0xff],
            confirmed,
        }),
        created_ms: 0,
        not_after_ms: Some(10_000),
        creator: "Cplatform".into(),
    };
    (CommandJob { command, done: tx }, rx)
}

fn outcome(rx: &mut oneshot::Receiver<Outcome>) -> Option<Outcome> {
    rx.try_recv().ok()
}

#[test]
fn unconfirmed_is_done_at_tx_ack_with_fcnt_and_window() {
    let mut q = DeviceQueue::default();
    let (j, mut rx) = job(false);
    q.push(j, 10_000, 0);
    assert_eq!(q.next(5).map(|d| d.fport), Some(10));
    q.sent([1, 2], 7, "rx1", Instant::now());
    assert!(q.next(5).is_none(), "one in flight at a time");
    assert!(q.owns([1, 2]) && !q.owns([2, 1]));
    q.tx_ack(None);
    let Some(Outcome::Done { read_back }) = outcome(&mut rx) else {
        panic!("not done")
    };
    assert_eq!(read_back["fcnt_down"], Value::I64(7));
    assert_eq!(read_back["rx_window"], Value::Str("rx1".into()));
    assert!(q.is_empty());
}

#[test]
fn confirmed_waits_for_the_devices_ack_or_fails() {
    let mut q = DeviceQueue::default();
    let (j, mut rx) = job(true);
    q.push(j, 10_000, 0);
    q.sent([0, 1], 0, "rx2", Instant::now());
    q.tx_ack(None);
    assert!(outcome(&mut rx).is_none());
    q.uplink(true);
    assert!(matches!(outcome(&mut rx), Some(Outcome::Done { .. })));

    let (j, mut rx) = job(true);
    q.push(j, 10_000, 0);
    q.sent([0, 2], 1, "rx1", Instant::now());
    q.tx_ack(None);
    for _ in 0..ACK_UPLINKS {
        assert!(outcome(&mut rx).is_none());
        q.uplink(false);
    }
    let Some(Outcome::Failed { reason }) = outcome(&mut rx) else {
        panic!("not failed")
    };
    assert!(reason.contains("did not acknowledge"), "{reason}");
}

#[test]
fn tx_ack_errors_retry_or_fail_by_name() {
    let mut q = DeviceQueue::default();
    let (j, mut rx) = job(false);
    q.push(j, 10_000, 0);
    for attempt in 1..=MAX_ATTEMPTS {
        assert!(q.next(0).is_some(), "attempt {attempt} available");
        q.sent([0, attempt], u32::from(attempt), "rx1", Instant::now());
        q.tx_ack(Some("TOO_LATE"));
    }
    let Some(Outcome::Failed { reason }) = outcome(&mut rx) else {
        panic!("not failed")
    };
    assert!(reason.contains("TOO_LATE"), "{reason}");

    let (j, mut rx) = job(false);
    q.push(j, 10_000, 0);
    q.sent([9, 9], 4, "rx1", Instant::now());
    q.tx_ack(Some("TX_FREQ"));
    let Some(Outcome::Failed { reason }) = outcome(&mut rx) else {
        panic!("not failed")
    };
    assert!(reason.contains("TX_FREQ"), "{reason}");
    assert_eq!(classify_tx_ack("COLLISION_PACKET"), TxAckClass::Retry);
    assert_eq!(classify_tx_ack("GPS_UNLOCKED"), TxAckClass::Fatal);
}

#[test]
fn deadlines_missing_tx_ack_and_a_full_queue() {
    let mut q = DeviceQueue::default();
    let (j, mut late) = job(false);
    q.push(j, 100, 200);
    assert!(matches!(outcome(&mut late), Some(Outcome::Expired { .. })));

    let (j, mut rx) = job(false);
    q.push(j, 1_000, 0);
    assert!(q.next(1_001).is_none(), "past its deadline: not sent");
    assert_eq!(q.sweep(1_001, Instant::now()), 1);
    assert!(matches!(outcome(&mut rx), Some(Outcome::Expired { .. })));

    let (j, mut rx) = job(false);
    q.push(j, 10_000, 0);
    let t0 = Instant::now();
    q.sent([3, 3], 5, "rx1", t0);
    assert_eq!(q.sweep(0, t0 + Duration::from_secs(1)), 0);
    assert_eq!(q.sweep(0, t0 + TX_ACK_TIMEOUT + Duration::from_secs(1)), 1);
    assert!(matches!(outcome(&mut rx), Some(Outcome::Unknown { .. })));

    let mut rxs = Vec::new();
    for _ in 0..=MAX_QUEUED {
        let (j, rx) = job(false);
        q.push(j, 10_000, 0);
        rxs.push(rx);
    }
    assert!(matches!(
        outcome(&mut rxs[MAX_QUEUED]),
        Some(Outcome::Rejected { .. })
    ));
    assert_eq!(q.len(), MAX_QUEUED);
}

#[test]
fn missed_windows_fail_after_max_attempts() {
    let mut q = DeviceQueue::default();
    let (j, mut rx) = job(false);
    q.push(j, 10_000, 0);
    for _ in 0..MAX_ATTEMPTS {
        assert!(outcome(&mut rx).is_none());
        q.missed("duty cycle");
    }
    let Some(Outcome::Failed { reason }) = outcome(&mut rx) else {
        panic!("not failed")
    };
    assert!(reason.contains("duty cycle"), "{reason}");
}
