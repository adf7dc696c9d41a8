//! Configuration of the three Modbus adapter types (`modbus_tcp`, `modbus_rtu`,
//! `modbus_rtu_over_tcp`), their devices and points.
//!
//! A device takes its register map from a reusable profile (`profile = "eastron_sdm630"`,
//! see [`super::profile`]), from inline `points`, or both. Validation lives in
//! [`super::validate`]; turning points into typed values in [`super::profile::resolve_device`].

use super::decode::WordOrder;
use super::report_config::ReportConfig;
use super::writable_points::WritablePointConfig;
use indexmap::IndexMap;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// The four Modbus data tables, each read with its own function code.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    /// Read/write bits, function code 01.
    Coil,
    /// Read-only bits, function code 02.
    Discrete,
    /// Read-write 16-bit registers, function code 03.
    Holding,
    /// Read-only 16-bit registers, function code 04.
    Input,
}

impl Table {
    /// The read function code.
    pub fn function_code(self) -> u8 {
        match self {
            Table::Coil => 1,
            Table::Discrete => 2,
            Table::Holding => 3,
            Table::Input => 4,
        }
    }

    /// Coils and discrete inputs hold single bits; the others 16-bit registers.
    pub fn is_bits(self) -> bool {
        matches!(self, Table::Coil | Table::Discrete)
    }

    pub fn name(self) -> &'static str {
        match self {
            Table::Coil => "coil",
            Table::Discrete => "discrete",
            Table::Holding => "holding",
            Table::Input => "input",
        }
    }
}

/// The `type` of a point as written in the config. Strings need `length` (registers),
/// bits need `bit` (0..=15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TypeName {
    Bool,
    #[serde(alias = "uint16")]
    U16,
    #[serde(alias = "int16")]
    I16,
    #[serde(alias = "uint32")]
    U32,
    #[serde(alias = "int32")]
    I32,
    #[serde(alias = "uint64")]
    U64,
    #[serde(alias = "int64")]
    I64,
    #[serde(alias = "float32", alias = "float")]
    F32,
    #[serde(alias = "float64", alias = "double")]
    F64,
    String,
    Bit,
}

/// One value read from a device.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PointConfig {
    /// Key of the value in the record (`voltage_l1`).
    pub name: String,
    pub table: Table,
    /// 0-based protocol address (holding register "40001" is address 0).
    pub address: u16,
    #[serde(rename = "type")]
    pub kind: TypeName,
    /// Registers of a `string` point.
    #[serde(default)]
    pub length: Option<u16>,
    /// Bit index of a `bit` point, 0 = least significant.
    #[serde(default)]
    pub bit: Option<u8>,
    /// Word/byte order; falls back to the device's, then the profile's `word_order`.
    #[serde(default)]
    pub order: Option<WordOrder>,
    #[serde(default)]
    pub scale: Option<f64>,
    #[serde(default)]
    pub offset: Option<f64>,
    /// Engineering unit, documentation only (`V`, `kWh`).
    #[serde(default)]
    pub unit: Option<String>,
    /// Polling group; its interval comes from the device's `groups` table.
    #[serde(default)]
    pub group: Option<String>,
    /// Commands may write the point: the keys of [`crate::commands::WriteRule`], checked and
    /// turned into a rule by [`super::writable`].
    #[serde(default)]
    pub writable: bool,
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    #[serde(default)]
    #[schemars(with = "Option<Vec<serde_json::Value>>")]
    pub allowed: Option<Vec<toml::Value>>,
    #[serde(default)]
    pub idempotent: bool,
}

/// The Modbus limit of one register read (PDU of 253 bytes).
pub const DEFAULT_MAX_REGISTERS: u16 = 125;
/// The Modbus limit of one coil/discrete read.
pub const DEFAULT_MAX_BITS: u16 = 2000;
/// Holes a merged read may span unless the device or profile says otherwise.
pub const DEFAULT_MAX_GAP: u16 = 10;
fn default_poll_interval() -> Duration {
    Duration::from_secs(10)
}
fn default_timeout() -> Duration {
    Duration::from_secs(1)
}

/// One Modbus server (unit id) on the adapter's bus.
///
/// The read limits (`max_registers`, `max_bits`, `max_gap`) are the effective ones: the
/// device table's value when it sets one, else the profile's documented limit, else the
/// Modbus default ([`super::device_limits`]); [`DeviceConfig::limit_sources`] says which.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(from = "DeviceConfigFile")]
#[schemars(with = "DeviceConfigFile", rename = "ModbusDeviceConfig")]
pub struct DeviceConfig {
    /// Stable device key: the record's `device` and the container name at the CSE.
    pub id: String,
    /// Unit id (RTU slave address 1..=247; Modbus/TCP devices often use 1 or 255).
    pub unit: u8,
    /// Name of a register map in the profiles directory or built in.
    pub profile: Option<String>,
    /// Inline points, added after the profile's.
    pub points: Vec<PointConfig>,
    /// Default word order for this device's multi-register numbers.
    pub word_order: Option<WordOrder>,
    /// Largest register read this device accepts (many meters allow fewer than 125).
    pub max_registers: u16,
    /// Largest coil/discrete read.
    pub max_bits: u16,
    /// Unused registers one merged read may span; for bit tables 16 bits per register.
    pub max_gap: u16,
    pub poll_interval: Duration,
    /// Per request; a device that misses it is backed off so it cannot stall the bus.
    pub timeout: Duration,
    /// Poll intervals of point groups (`groups = { energy = "60s" }`); ungrouped points and
    /// groups not listed here follow `poll_interval`.
    pub groups: IndexMap<String, Duration>,
    /// Profile points commands may write ([`super::writable`]).
    pub writable_points: Vec<WritablePointConfig>,
    /// Report by exception ([`super::report_config`]); `None`: every poll is sent.
    pub report: Option<ReportConfig>,
    /// The limits as written in the device table (`None` = not set there).
    pub configured: ConfiguredLimits,
    /// Where each effective limit came from.
    pub limit_sources: LimitSources,
    /// Filled by [`super::profile::load_profiles`]; not part of the file.
    pub loaded_profile: Option<Result<Arc<Profile>, String>>,
}

/// A device table as written in the file; becomes a [`DeviceConfig`] with its limits
/// resolved (against a built-in profile here, a profile file in `load_profiles`).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct DeviceConfigFile {
    id: String,
    unit: u8,
    #[serde(default)]
    profile: Option<String>,
    #[serde(default)]
    points: Vec<PointConfig>,
    #[serde(default)]
    word_order: Option<WordOrder>,
    #[serde(default)]
    max_registers: Option<u16>,
    #[serde(default)]
    max_bits: Option<u16>,
    #[serde(default)]
    max_gap: Option<u16>,
    #[serde(
        default = "default_poll_interval",
        deserialize_with = "crate::config::units::duration"
    )]
    #[schemars(with = "crate::config::units::DurationText")]
    poll_interval: Duration,
    #[serde(
        default = "default_timeout",
        deserialize_with = "crate::config::units::duration"
    )]
    #[schemars(with = "crate::config::units::DurationText")]
    timeout: Duration,
    #[serde(default, deserialize_with = "crate::config::units::duration_map")]
    #[schemars(with = "indexmap::IndexMap<String, crate::config::units::DurationText>")]
    groups: IndexMap<String, Duration>,
    #[serde(default)]
    writable_points: Vec<WritablePointConfig>,
    #[serde(default)]
    report: Option<ReportConfig>,
}

impl From<DeviceConfigFile> for DeviceConfig {
    fn from(f: DeviceConfigFile) -> Self {
        let mut d = DeviceConfig {
            id: f.id,
            unit: f.unit,
            profile: f.profile,
            points: f.points,
            word_order: f.word_order,
            max_registers: DEFAULT_MAX_REGISTERS,
            max_bits: DEFAULT_MAX_BITS,
            max_gap: DEFAULT_MAX_GAP,
            poll_interval: f.poll_interval,
            timeout: f.timeout,
            groups: f.groups,
            writable_points: f.writable_points,
            report: f.report,
            configured: ConfiguredLimits {
                max_registers: f.max_registers,
                max_bits: f.max_bits,
                max_gap: f.max_gap,
            },
            limit_sources: LimitSources::default(),
            loaded_profile: None,
        };
        let builtin = d
            .profile
            .as_deref()
            .and_then(|n| builtin(n).and_then(Result::ok).map(|p| (n.to_owned(), p)));
        apply_limits(&mut d, builtin.as_ref().map(|(n, p)| (n.as_str(), p)));
        d
    }
}

/// Serial parity.
///
/// The default stays `even`, the Modbus over Serial Line default: meters disagree (Eastron
/// ships 8N1, others 8E1), so no default fits all, and changing it would silently break
/// deployed configs. Instead `citygate check` warns when a device's profile documents other
/// factory serial settings than the adapter's (see `device_limits::device_warnings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum Parity {
    None,
    /// The Modbus over Serial Line default.
    #[default]
    Even,
    Odd,
}

fn default_stop_bits() -> u8 {
    1
}
fn default_data_bits() -> u8 {
    8
}
fn default_rtt() -> Duration {
    Duration::from_millis(10)
}
fn one() -> u16 {
    1
}

/// `type = "modbus_tcp"`: Modbus/TCP (MBAP framing) to a device or gateway.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModbusTcpConfig {
    /// `host:port`, e.g. `"192.0.2.10:502"`.
    pub host: String,
    /// Connections opened to the endpoint; many devices accept only one or two.
    #[serde(default = "one")]
    pub max_connections: u16,
    /// Round-trip estimate used by `citygate plan` for the bus time budget.
    #[serde(
        default = "default_rtt",
        deserialize_with = "crate::config::units::duration"
    )]
    #[schemars(with = "crate::config::units::DurationText")]
    pub rtt_estimate: Duration,
    /// Accept commands from the platform for this adapter's writable points (off by default).
    #[serde(default)]
    pub commands: bool,
    pub devices: Vec<DeviceConfig>,
}

/// `type = "modbus_rtu"`: RTU framing on a local serial port (RS-485).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModbusRtuConfig {
    /// Serial device path, e.g. `/dev/ttyUSB0`; owned exclusively by this adapter.
    pub port: String,
    pub baud: u32,
    #[serde(default)]
    pub parity: Parity,
    #[serde(default = "default_stop_bits")]
    pub stop_bits: u8,
    #[serde(default = "default_data_bits")]
    pub data_bits: u8,
    /// Accept commands from the platform for this adapter's writable points (off by default).
    #[serde(default)]
    pub commands: bool,
    pub devices: Vec<DeviceConfig>,
}

/// `type = "modbus_rtu_over_tcp"`: RTU frames (with CRC) over a TCP stream, as transparent
/// serial-to-Ethernet converters expect.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModbusRtuOverTcpConfig {
    pub host: String,
    #[serde(
        default = "default_rtt",
        deserialize_with = "crate::config::units::duration"
    )]
    #[schemars(with = "crate::config::units::DurationText")]
    pub rtt_estimate: Duration,
    /// Accept commands from the platform for this adapter's writable points (off by default).
    #[serde(default)]
    pub commands: bool,
    pub devices: Vec<DeviceConfig>,
}

/// The three adapter types behind one enum, tagged by `type` as under `[southbound.<id>]`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type")]
pub enum ModbusConfig {
    #[serde(rename = "modbus_tcp")]
    Tcp(ModbusTcpConfig),
    #[serde(rename = "modbus_rtu")]
    Rtu(ModbusRtuConfig),
    #[serde(rename = "modbus_rtu_over_tcp")]
    RtuOverTcp(ModbusRtuOverTcpConfig),
}

/// How the adapter reaches its devices; decides framing and timing.
#[derive(Debug, Clone, PartialEq)]
pub enum Link {
    Tcp {
        host: String,
        max_connections: u16,
        rtt: Duration,
    },
    Rtu(SerialSettings),
    RtuOverTcp {
        host: String,
        rtt: Duration,
    },
}

/// Serial line settings of a `modbus_rtu` adapter.
#[derive(Debug, Clone, PartialEq)]
pub struct SerialSettings {
    pub port: String,
    pub baud: u32,
    pub parity: Parity,
    pub stop_bits: u8,
    pub data_bits: u8,
}

impl ModbusConfig {
    pub fn devices(&self) -> &[DeviceConfig] {
        match self {
            ModbusConfig::Tcp(c) => &c.devices,
            ModbusConfig::Rtu(c) => &c.devices,
            ModbusConfig::RtuOverTcp(c) => &c.devices,
        }
    }

    /// Commands are enabled for this adapter (`commands = true`).
    pub fn commands_enabled(&self) -> bool {
        match self {
            ModbusConfig::Tcp(c) => c.commands,
            ModbusConfig::Rtu(c) => c.commands,
            ModbusConfig::RtuOverTcp(c) => c.commands,
        }
    }

    pub fn devices_mut(&mut self) -> &mut Vec<DeviceConfig> {
        match self {
            ModbusConfig::Tcp(c) => &mut c.devices,
            ModbusConfig::Rtu(c) => &mut c.devices,
            ModbusConfig::RtuOverTcp(c) => &mut c.devices,
        }
    }

    pub fn link(&self) -> Link {
        match self {
            ModbusConfig::Tcp(c) => Link::Tcp {
                host: c.host.clone(),
                max_connections: c.max_connections,
                rtt: c.rtt_estimate,
            },
            ModbusConfig::Rtu(c) => Link::Rtu(SerialSettings {
                port: c.port.clone(),
                baud: c.baud,
                parity: c.parity,
                stop_bits: c.stop_bits,
                data_bits: c.data_bits,
            }),
            ModbusConfig::RtuOverTcp(c) => Link::RtuOverTcp {
                host: c.host.clone(),
                rtt: c.rtt_estimate,
            },
        }
    }
}

impl From<ModbusTcpConfig> for ModbusConfig {
    fn from(c: ModbusTcpConfig) -> Self {
        ModbusConfig::Tcp(c)
    }
}
impl From<ModbusRtuConfig> for ModbusConfig {
    fn from(c: ModbusRtuConfig) -> Self {
        ModbusConfig::Rtu(c)
    }
}
impl From<ModbusRtuOverTcpConfig> for ModbusConfig {
    fn from(c: ModbusRtuOverTcpConfig) -> Self {
        ModbusConfig::RtuOverTcp(c)
    }
}

/// The limits as written in a device table; `None` = not set there.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConfiguredLimits {
    pub max_registers: Option<u16>,
    pub max_bits: Option<u16>,
    pub max_gap: Option<u16>,
}

/// Where one effective limit came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum LimitSource {
    /// The device table in the adapter config.
    Config,
    /// The named profile (the vendor's documented limit).
    Profile(String),
    /// Neither sets it: the Modbus default.
    #[default]
    Default,
}

impl std::fmt::Display for LimitSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LimitSource::Config => f.write_str("adapter config"),
            LimitSource::Profile(name) => write!(f, "profile {name}"),
            LimitSource::Default => f.write_str("default"),
        }
    }
}

/// Sources of a device's three limits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitSources {
    pub max_registers: LimitSource,
    pub max_bits: LimitSource,
    pub max_gap: LimitSource,
}

/// A meter's factory serial settings as its profile documents them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FactorySerial {
    pub baud: u32,
    pub parity: Parity,
    #[serde(default = "eight_bits")]
    pub data_bits: u8,
    #[serde(default = "one_stop_bit")]
    pub stop_bits: u8,
    /// Where the settings are documented (vendor manual and section).
    #[serde(default)]
    pub source: Option<String>,
}

fn eight_bits() -> u8 {
    8
}
fn one_stop_bit() -> u8 {
    1
}

/// Sets the effective limits of `device` from its configured values, then `profile`
/// (`(name, profile)`), then the defaults.
pub fn apply_limits(device: &mut DeviceConfig, profile: Option<(&str, &Profile)>) {
    let pick = |configured: Option<u16>, from_profile: Option<u16>, default: u16| match (
        configured,
        from_profile,
        profile,
    ) {
        (Some(v), _, _) => (v, LimitSource::Config),
        (None, Some(v), Some((name, _))) => (v, LimitSource::Profile(name.to_owned())),
        _ => (default, LimitSource::Default),
    };
    let p = profile.map(|(_, p)| p);
    let c = device.configured;
    let (v, s) = pick(
        c.max_registers,
        p.and_then(|p| p.max_registers),
        DEFAULT_MAX_REGISTERS,
    );
    device.max_registers = v;
    device.limit_sources.max_registers = s;
    let (v, s) = pick(c.max_bits, p.and_then(|p| p.max_bits), DEFAULT_MAX_BITS);
    device.max_bits = v;
    device.limit_sources.max_bits = s;
    let (v, s) = pick(c.max_gap, p.and_then(|p| p.max_gap), DEFAULT_MAX_GAP);
    device.max_gap = v;
    device.limit_sources.max_gap = s;
}

/// A reusable register map.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    #[serde(default)]
    pub manufacturer: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Default order of the profile's multi-register numbers.
    #[serde(default)]
    pub word_order: Option<WordOrder>,
    /// Largest register read the meter accepts, as its vendor documents it; used for devices
    /// that do not set their own `max_registers`.
    #[serde(default)]
    pub max_registers: Option<u16>,
    /// Largest coil/discrete read the meter accepts.
    #[serde(default)]
    pub max_bits: Option<u16>,
    /// Unused registers a merged read may span on this meter.
    #[serde(default)]
    pub max_gap: Option<u16>,
    /// The meter's factory serial settings; `citygate check` warns when a `modbus_rtu`
    /// adapter differs.
    #[serde(default)]
    pub serial: Option<FactorySerial>,
    pub points: Vec<PointConfig>,
}

/// Profiles compiled into the binary: (name, TOML text).
const BUILTIN: &[(&str, &str)] = &[(
    "eastron_sdm630",
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/profiles/eastron_sdm630.toml"
    )),
)];

/// Names of the built-in profiles, for "did you mean" hints.
pub fn builtin_names() -> Vec<&'static str> {
    BUILTIN.iter().map(|(n, _)| *n).collect()
}

/// Parses profile text; the error names the problem with toml's line/column.
pub fn parse_profile(text: &str) -> Result<Profile, String> {
    toml::from_str(text).map_err(|e| e.to_string())
}

/// A built-in profile by name.
pub fn builtin(name: &str) -> Option<Result<Profile, String>> {
    BUILTIN
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| parse_profile(text))
}
