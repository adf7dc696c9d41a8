//! What went wrong with one Modbus transaction, named as a technician would say it.
//!
//! tokio-modbus reports a bad CRC as nothing at all (its RTU decoder skips the byte and waits,
//! so the read times out) and a connection closed by the device as the last OS error of the
//! thread (`os error 115`). The bus watches the byte stream itself ([`super::link`]) and maps
//! what it saw into a [`TxError`], whose [`TxError::kind`] is also the metrics label.

use std::io;
use tokio_modbus::ExceptionCode;

/// Why a transaction failed. The device's refusal (an exception) is kept apart from the
/// transport: the first is a config problem, the second means back off.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// No connection (reconnect pending, port missing).
    #[error("not connected: {0}")]
    NotConnected(String),
    /// No answer within the device timeout.
    #[error("timeout")]
    Timeout,
    /// A complete RTU frame arrived whose CRC does not match its content (line noise, wrong
    /// baud rate or parity, two devices answering at once).
    #[error("CRC error (frame says 0x{received:04X}, content gives 0x{computed:04X})")]
    Crc { received: u16, computed: u16 },
    /// Bytes arrived that never formed a frame (truncated answer, noise).
    #[error("bad frame: {0}")]
    BadFrame(String),
    /// The device (or the gateway in front of it) closed the connection.
    #[error("connection closed by device")]
    Closed,
    /// Another I/O failure of the connection: reset, broken pipe, serial port gone.
    #[error("transport: {0}")]
    Transport(String),
    /// The device refused the request; the code and its name from the Modbus spec.
    #[error("exception {:02X} {}", u8::from(*.0), .0)]
    Exception(ExceptionCode),
    /// An answer that does not belong to the request (other unit, other function, wrong
    /// length).
    #[error("protocol: {0}")]
    Protocol(String),
}

impl TxError {
    /// The label this error is counted under (`citygate_adapter_errors_total{kind}` and the
    /// Modbus counters): a fixed, small set.
    pub fn kind(&self) -> &'static str {
        match self {
            TxError::NotConnected(_) => "not_connected",
            TxError::Timeout => "timeout",
            TxError::Crc { .. } => "crc_error",
            TxError::BadFrame(_) => "bad_frame",
            TxError::Closed => "connection_closed",
            TxError::Transport(_) => "transport_error",
            TxError::Exception(_) => "exception",
            TxError::Protocol(_) => "protocol_error",
        }
    }

    /// The connection itself is gone (or not there): nothing else can be read on it now.
    pub fn connection_lost(&self) -> bool {
        matches!(
            self,
            TxError::NotConnected(_) | TxError::Closed | TxError::Transport(_)
        )
    }

    /// The addressed device gave no answer at all: a timeout, or its gateway saying so.
    /// Several of these in a row with no answer in between mean the device is silent.
    pub fn no_answer(&self) -> bool {
        matches!(
            self,
            TxError::Timeout
                | TxError::Exception(
                    ExceptionCode::GatewayPathUnavailable | ExceptionCode::GatewayTargetDevice
                )
        )
    }

    /// The device did not answer at all (or its gateway says so), or the connection is gone.
    pub fn device_unreachable(&self) -> bool {
        self.connection_lost() || self.no_answer()
    }

    /// Maps an I/O error of the stream. `eof` says the stream had ended (read returned 0),
    /// which tokio-modbus turns into whatever `errno` happened to hold.
    pub fn from_io(e: &io::Error, eof: bool) -> TxError {
        use io::ErrorKind as K;
        if eof {
            return TxError::Closed;
        }
        match e.kind() {
            K::UnexpectedEof | K::ConnectionAborted | K::NotConnected => TxError::Closed,
            K::ConnectionReset => TxError::Transport("connection reset by device".into()),
            K::BrokenPipe => {
                TxError::Transport("broken pipe (device closed the connection)".into())
            }
            K::InvalidData => TxError::BadFrame(e.to_string()),
            _ => TxError::Transport(e.to_string()),
        }
    }
}

/// CRC-16/MODBUS (reflected polynomial 0xA001, initial value 0xFFFF).
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc = 0xFFFFu16;
    for b in data {
        crc ^= u16::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xA001
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// Length of the RTU response frame starting at `rx[0]` (unit, function, ..., CRC), if the
/// bytes so far tell it: reads (FC 01..04) carry a byte count, writes (FC 05/06/15/16) echo
/// 4 bytes, exceptions are 5 bytes.
fn rtu_response_len(rx: &[u8]) -> Option<usize> {
    let fc = *rx.get(1)?;
    if fc & 0x80 != 0 {
        return Some(5);
    }
    match fc {
        0x01..=0x04 => rx.get(2).map(|n| 5 + usize::from(*n)),
        0x05 | 0x06 | 0x0F | 0x10 => Some(8),
        _ => None,
    }
}

/// What the bytes received on an RTU line after a request say, when the decoder produced
/// no answer: a CRC error, a truncated or unframeable answer, or `None` when nothing came.
pub fn diagnose_rtu(rx: &[u8]) -> Option<TxError> {
    if rx.is_empty() {
        return None;
    }
    match rtu_response_len(rx) {
        Some(len) if rx.len() >= len => {
            let computed = crc16(&rx[..len - 2]);
            let received = u16::from_le_bytes([rx[len - 2], rx[len - 1]]);
            if computed != received {
                Some(TxError::Crc { received, computed })
            } else {
                // A sound frame the decoder did not take (it arrived after the timeout).
                None
            }
        }
        Some(len) => Some(TxError::BadFrame(format!(
            "{} of {len} bytes received",
            rx.len()
        ))),
        None => Some(TxError::BadFrame(format!(
            "{} byte(s) that do not start a response ({})",
            rx.len(),
            hex_prefix(rx)
        ))),
    }
}

/// The first bytes as hex, for a log line or a quality flag.
fn hex_prefix(bytes: &[u8]) -> String {
    let shown: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02X}")).collect();
    let more = if bytes.len() > 8 { " …" } else { "" };
    format!("{}{more}", shown.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut f = body.to_vec();
        f.extend_from_slice(&crc16(body).to_le_bytes());
        f
    }

    #[test]
    fn messages_and_kinds() {
        let ex = TxError::Exception(ExceptionCode::IllegalDataAddress);
        assert_eq!(ex.to_string(), "exception 02 Illegal data address");
        assert_eq!(ex.kind(), "exception");
        assert!(!ex.device_unreachable());
        assert!(TxError::Exception(ExceptionCode::GatewayTargetDevice).no_answer());
        assert!(TxError::Timeout.no_answer() && !TxError::Timeout.connection_lost());
        assert_eq!(TxError::Closed.to_string(), "connection closed by device");
        assert!(TxError::Closed.connection_lost());
        let crc = TxError::Crc {
            received: 0x1234,
            computed: 0xABCD,
        };
        assert_eq!(
            crc.to_string(),
            "CRC error (frame says 0x1234, content gives 0xABCD)"
        );
        assert_eq!(crc.kind(), "crc_error");
    }

    #[test]
    fn io_errors_are_named() {
        let os115 = io::Error::from_raw_os_error(115);
        assert_eq!(TxError::from_io(&os115, true), TxError::Closed);
        assert!(matches!(
            TxError::from_io(&os115, false),
            TxError::Transport(_)
        ));
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert_eq!(
            TxError::from_io(&reset, false).to_string(),
            "transport: connection reset by device"
        );
        let eof = io::Error::from(io::ErrorKind::UnexpectedEof);
        assert_eq!(TxError::from_io(&eof, false), TxError::Closed);
    }

    #[test]
    fn rtu_leftovers_are_diagnosed() {
        assert_eq!(diagnose_rtu(&[]), None);
        let good = frame(&[1, 3, 2, 0x12, 0x34]);
        assert_eq!(diagnose_rtu(&good), None);
        let mut bad = good.clone();
        bad[3] ^= 0x01;
        assert!(matches!(diagnose_rtu(&bad), Some(TxError::Crc { .. })));
        let ex = frame(&[1, 0x83, 2]);
        let mut bad_ex = ex.clone();
        bad_ex[4] ^= 0xFF;
        assert!(matches!(diagnose_rtu(&bad_ex), Some(TxError::Crc { .. })));
        assert_eq!(
            diagnose_rtu(&good[..4]),
            Some(TxError::BadFrame("4 of 7 bytes received".into()))
        );
        assert!(matches!(
            diagnose_rtu(&[1, 0x2B]),
            Some(TxError::BadFrame(s)) if s.contains("01 2B")
        ));
        // Any byte count, any garbage: never panics.
        for n in 0..=255u8 {
            let _ = diagnose_rtu(&[1, 3, n, 0, 0]);
            let _ = diagnose_rtu(&[n]);
        }
    }
}
