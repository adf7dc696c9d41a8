use super::*;

#[test]
fn failures_are_sorted_by_what_the_device_did() {
    use ExceptionCode as E;
    // Refused by the device: certainly not performed.
    for e in [
        TxError::NotConnected("x".into()),
        TxError::Exception(E::IllegalDataAddress),
        TxError::Exception(E::ServerDeviceBusy),
        TxError::Exception(E::GatewayPathUnavailable),
    ] {
        assert!(not_done(&e), "{e}");
    }
    // Unknown fate.
    for e in [
        TxError::Timeout,
        TxError::Closed,
        TxError::Crc {
            received: 1,
            computed: 2,
        },
        TxError::Exception(E::GatewayTargetDevice),
        TxError::Exception(E::Acknowledge),
    ] {
        assert!(!not_done(&e), "{e}");
        assert!(transient(&e), "{e}");
    }
    // Final refusals are not retried.
    for code in [
        E::IllegalFunction,
        E::IllegalDataAddress,
        E::IllegalDataValue,
        E::ServerDeviceFailure,
    ] {
        assert!(!transient(&TxError::Exception(code)));
    }
}

#[test]
fn reasons_name_the_exception_and_the_attempts() {
    let e = TxError::Exception(ExceptionCode::IllegalDataAddress);
    assert_eq!(
        describe(&e, Duration::from_secs(1), 1),
        "the device answered exception 02 Illegal data address"
    );
    assert_eq!(
        describe(&TxError::Timeout, Duration::from_millis(500), 3),
        "no answer within 500ms (after 3 attempts)"
    );
}
