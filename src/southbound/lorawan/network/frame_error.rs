//! Why a PHYPayload was rejected. Its own file so that frames and joins (which parse each
//! other's payloads) both depend on it and not on each other.

/// Why a PHYPayload was rejected before any key was used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame too short: {got} bytes, at least {needed} needed")]
    TooShort { needed: usize, got: usize },
    #[error("unsupported LoRaWAN major version {0} (MHDR bits 1..0 must be 00)")]
    UnsupportedMajor(u8),
    #[error("join-request must be 23 bytes, got {0}")]
    JoinRequestLength(usize),
    #[error("join-accept must be 17 or 33 bytes, got {0}")]
    JoinAcceptLength(usize),
    #[error("FOpts present together with FPort 0 (MAC commands may be in one place only)")]
    FOptsWithPort0,
    #[error("RFU message type 6")]
    RfuMType,
}
