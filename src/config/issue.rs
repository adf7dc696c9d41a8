//! One problem found in a config file, and the resources adapters claim.
//!
//! Validators are pure: they return issues whose `path` is a dotted key path relative to the
//! adapter's own table (`"devices.2.points.0.address"`, array indices as numbers). The config
//! loader maps the path to FILE:LINE:COL in the technician's TOML file, so validators never deal
//! with spans.

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// Dotted key path relative to the table being validated ("" = the table itself).
    pub path: String,
    /// A whole sentence saying what is wrong.
    pub message: String,
    /// What to do about it: valid values, a range, "did you mean …".
    pub hint: Option<String>,
}

impl ConfigIssue {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigIssue {
            path: path.into(),
            message: message.into(),
            hint: None,
        }
    }
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// Something only one adapter may own; two adapters claiming the same one is a config error.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Resource {
    /// A serial device path such as `/dev/ttyUSB0`.
    SerialPort(String),
    /// A UDP socket the adapter binds (`127.0.0.1:1700`).
    UdpPort(std::net::SocketAddr),
    /// A BLE adapter name such as `hci0`.
    BleAdapter(String),
}
