//! `[northbound]`: where the CSE is, who the gateway is towards it, and how hard to push.
//!
//! Everything except `cse_url` (HTTP) or `mqtt.broker` (MQTT) has a default that works against
//! a stock ACME/IN-CSE, so a technician's minimal table is two lines. Validation is pure (no
//! file or env access): secrets are read when the binding is built ([`AuthConfig::resolve`]).
use super::onem2m::name::is_plain_name;
use crate::config::issue::ConfigIssue;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

pub use super::auth_config::{AuthConfig, BasicAuth, BearerAuth, Credentials, TlsConfig};
pub use super::commands_config::CommandsConfig;
pub use super::concurrency::AdaptiveConfig;
pub use super::mqtt_config::MqttConfig;
pub use super::serialization::Serialization;

/// Which oneM2M protocol binding carries the primitives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BindingKind {
    /// TS-0009 HTTP binding.
    #[default]
    Http,
    /// TS-0010 MQTT binding through a broker (`[northbound.mqtt]`).
    Mqtt,
    /// TS-0008 CoAP binding over UDP (`cse_url = "coap://HOST[:5683]"`).
    Coap,
}

#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NorthboundConfig {
    #[serde(default)]
    pub binding: BindingKind,
    /// Base URL of the CSE's HTTP binding, e.g. `http://10.0.0.5:8080` (no resource path).
    /// Required for `binding = "http"`, unused by MQTT.
    #[serde(default)]
    pub cse_url: String,
    /// The broker and client settings of `binding = "mqtt"`.
    #[serde(default)]
    pub mqtt: Option<MqttConfig>,
    /// CSE-ID, `/id-in` or `id-in`.
    #[serde(default = "default_cse_id")]
    pub cse_id: String,
    /// Resource name of the CSEBase; the root of every structured address (`cse-in/…`).
    #[serde(default = "default_cse_name")]
    pub cse_name: String,
    /// AE-ID used as `X-M2M-Origin`: `C…`/`S…`, or bare `C`/`S` to let the CSE assign one
    /// (the assigned AE-ID is persisted in the buffer DB and reused after restarts).
    #[serde(default = "default_originator")]
    pub originator: String,
    /// App-ID (`api`), must start with `N` (non-registered) or `R` (registered).
    #[serde(default = "default_app_id")]
    pub app_id: String,
    /// Resource name of the gateway's AE under the CSEBase.
    #[serde(default = "default_ae_name")]
    pub ae_name: String,
    /// `X-M2M-RVI` sent with every request (ACME accepts 2a, 3, 4, 5; missing = rejected).
    #[serde(default = "default_release")]
    pub release: String,
    /// Limits set on each device container.
    #[serde(default)]
    pub container: ContainerLimits,
    /// Extra labels (`lbl`) per device container: device key → labels.
    #[serde(default)]
    pub labels: BTreeMap<String, Vec<String>>,
    /// Deadline for one request (connect + response).
    #[serde(
        default = "default_request_timeout",
        deserialize_with = "crate::config::units::duration"
    )]
    #[schemars(with = "crate::config::units::DurationText")]
    pub request_timeout: Duration,
    /// Requests in flight at once (across devices; each device has at most one).
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Records fetched per device per buffer read; bounds memory and live-record latency.
    #[serde(default = "default_fetch_per_device")]
    pub fetch_per_device: usize,
    /// A record the CSE answers with a server error (5xxx) or an unusable answer this many
    /// times, while it accepts other records meanwhile, goes to the dead letters: the CSE
    /// works, it is this record it cannot take, and in-order delivery would otherwise hold
    /// its device back for good. 0: retry such a record forever.
    #[serde(default = "default_dead_letter_after")]
    pub dead_letter_after: u32,
    /// Largest reply accepted from the CSE (HTTP body) or the broker (MQTT packet); a larger
    /// one is refused unread and the request retried. oneM2M replies are a few kB.
    #[serde(
        default = "default_max_reply_bytes",
        deserialize_with = "crate::config::units::size"
    )]
    #[schemars(with = "crate::config::units::SizeText")]
    pub max_reply_bytes: u64,
    #[serde(default)]
    pub tls: TlsConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub backoff: BackoffConfig,
    /// The adaptive in-flight limit under `max_in_flight` (AIMD, on by default).
    #[serde(default)]
    pub adaptive: AdaptiveConfig,
    /// Commands from the platform (`[northbound.commands]`, off by default).
    #[serde(default)]
    pub commands: CommandsConfig,
    /// Wire serialization of every binding: `"json"` (default) or `"cbor"`.
    #[serde(default)]
    pub serialization: Serialization,
    /// What each device and record become at the CSE: `"contentInstance"` (default: a
    /// `<container>` per device, a `<contentInstance>` per record) or `"timeSeries"`
    /// (`<timeSeries>` / `<timeSeriesInstance>`, with missing-data detection for periodic
    /// devices, see docs/timeseries.md).
    #[serde(default)]
    pub resource: RecordResource,
}

pub use super::onem2m::resource::RecordResource;

/// Container limits. Caveats measured on ACME 2026.5.3 (docs: acme-cse.md §5, §7):
/// with `mni`/`mbs` set every create loads and sorts all instances of the container
/// (throughput drops with `cni`) and concurrent creates into one container race (500/5000,
/// retried); and an evicted instance frees its `rn`, so a retry of a record evicted by then
/// creates it again (the 4105 = "already there" idempotency only holds while it is retained).
/// Size `mni` well above the longest retry window, or leave the limits unset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContainerLimits {
    /// maxNrOfInstances.
    pub mni: Option<u64>,
    /// maxByteSize (ACME counts `con` string length, not JSON bytes).
    pub mbs: Option<u64>,
    /// maxInstanceAge in seconds.
    pub mia: Option<u64>,
}

/// Retry pacing: exponential with full jitter, capped.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackoffConfig {
    /// First retry delay (upper bound of the jitter window).
    #[serde(
        default = "default_backoff_initial",
        deserialize_with = "crate::config::units::duration"
    )]
    #[schemars(with = "crate::config::units::DurationText")]
    pub initial: Duration,
    /// Cap of the delay.
    #[serde(
        default = "default_backoff_max",
        deserialize_with = "crate::config::units::duration"
    )]
    #[schemars(with = "crate::config::units::DurationText")]
    pub max: Duration,
    /// Delay between attempts while the CSE refuses the gateway (auth, privileges).
    #[serde(
        default = "default_auth_retry",
        deserialize_with = "crate::config::units::duration"
    )]
    #[schemars(with = "crate::config::units::DurationText")]
    pub auth_retry: Duration,
    /// Longest wait honoured from a server's `Retry-After`.
    #[serde(
        default = "default_retry_after_max",
        deserialize_with = "crate::config::units::duration"
    )]
    #[schemars(with = "crate::config::units::DurationText")]
    pub retry_after_max: Duration,
    /// A random wait in `[0, initial_jitter]` before the first registration, so that a fleet
    /// powered up together does not register in one wave.
    #[serde(default, deserialize_with = "crate::config::units::duration")]
    #[schemars(with = "crate::config::units::DurationText")]
    pub initial_jitter: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            initial: default_backoff_initial(),
            max: default_backoff_max(),
            auth_retry: default_auth_retry(),
            retry_after_max: default_retry_after_max(),
            initial_jitter: Duration::ZERO,
        }
    }
}

impl NorthboundConfig {
    /// A config with defaults for everything but the CSE URL (tests, `citygate probe`).
    pub fn new(cse_url: impl Into<String>) -> Self {
        NorthboundConfig {
            binding: BindingKind::Http,
            cse_url: cse_url.into(),
            mqtt: None,
            cse_id: default_cse_id(),
            cse_name: default_cse_name(),
            originator: default_originator(),
            app_id: default_app_id(),
            ae_name: default_ae_name(),
            release: default_release(),
            container: ContainerLimits::default(),
            labels: BTreeMap::new(),
            request_timeout: default_request_timeout(),
            max_in_flight: default_max_in_flight(),
            fetch_per_device: default_fetch_per_device(),
            dead_letter_after: default_dead_letter_after(),
            max_reply_bytes: default_max_reply_bytes(),
            tls: TlsConfig::default(),
            auth: AuthConfig::default(),
            backoff: BackoffConfig::default(),
            adaptive: AdaptiveConfig::default(),
            commands: CommandsConfig::default(),
            serialization: Serialization::default(),
            resource: RecordResource::default(),
        }
    }

    /// True when the CSE assigns the AE-ID (bare `C` or `S`).
    pub fn cse_assigns_ae_id(&self) -> bool {
        self.originator == "C" || self.originator == "S"
    }

    /// All problems at once; paths are relative to the `[northbound]` table.
    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut issues = self.commands.validate();
        if self.commands.enabled && self.resource == RecordResource::TimeSeries {
            issues.push(
                ConfigIssue::new(
                    "resource",
                    "resource = \"timeSeries\" cannot hold the command and result containers of [northbound.commands].",
                )
                .hint("use resource = \"contentInstance\" on a gateway that takes commands"),
            );
        }
        if self.commands.enabled && self.binding == BindingKind::Coap {
            issues.push(
                ConfigIssue::new(
                    "commands.enabled",
                    "commands from the platform are not available over the CoAP binding yet.",
                )
                .hint("use binding = \"http\" (polling channel) or \"mqtt\" for a gateway that takes commands"),
            );
        }
        match (self.binding, &self.mqtt) {
            (BindingKind::Mqtt, Some(m)) => issues.extend(m.validate()),
            (BindingKind::Mqtt, None) => issues.push(
                ConfigIssue::new("mqtt", "binding = \"mqtt\" needs the broker settings.")
                    .hint("e.g. mqtt = { broker = \"mqtt://10.0.0.5:1883\" }"),
            ),
            (BindingKind::Http, Some(_)) => issues.push(
                ConfigIssue::new(
                    "mqtt",
                    "MQTT settings are given but binding is \"http\" (they would be ignored).",
                )
                .hint("set binding = \"mqtt\" or remove [northbound.mqtt]"),
            ),
            (BindingKind::Http | BindingKind::Coap, None) => {}
            (BindingKind::Coap, Some(_)) => issues.push(
                ConfigIssue::new(
                    "mqtt",
                    "MQTT settings are given but binding is \"coap\" (they would be ignored).",
                )
                .hint("set binding = \"mqtt\" or remove [northbound.mqtt]"),
            ),
        }
        let url = self.cse_url.trim();
        match url.split_once("://") {
            // MQTT does not use the URL; validated only when given.
            _ if self.binding == BindingKind::Mqtt && url.is_empty() => {}
            _ if self.binding == BindingKind::Coap => issues.extend(validate_coap_url(url)),
            Some(("http" | "https", rest)) if !rest.is_empty() && !rest.starts_with('/') => {
                if url.contains('?') || url.contains('#') {
                    issues.push(
                        ConfigIssue::new(
                            "cse_url",
                            "The CSE URL must not have a query or fragment.",
                        )
                        .hint("e.g. \"http://10.0.0.5:8080\""),
                    );
                }
            }
            _ => issues.push(
                ConfigIssue::new(
                    "cse_url",
                    format!(
                        "\"{}\" is not an http:// or https:// URL with a host.",
                        self.cse_url
                    ),
                )
                .hint("e.g. \"http://10.0.0.5:8080\" or \"https://cse.city.example\""),
            ),
        }
        if self.binding == BindingKind::Coap {
            issues.extend(coap_ignores_http_settings(self));
        } else if self.binding == BindingKind::Mqtt && self.tls != TlsConfig::default() {
            issues.push(
                ConfigIssue::new(
                    "tls",
                    "[northbound.tls] applies to HTTP; the MQTT binding ignores it.",
                )
                .hint("put ca_file / client_cert_file into [northbound.mqtt]"),
            );
        } else if url.starts_with("http://") && (self.tls != TlsConfig::default()) {
            issues.push(
                ConfigIssue::new(
                    "tls",
                    "TLS settings are given but cse_url is http:// (they would be ignored).",
                )
                .hint("use an https:// URL or remove [northbound.tls]"),
            );
        }
        let id = self.cse_id.strip_prefix('/').unwrap_or(&self.cse_id);
        if !is_plain_name(id) {
            issues.push(
                ConfigIssue::new("cse_id", format!("\"{}\" is not a CSE-ID.", self.cse_id))
                    .hint("e.g. \"/id-in\" or \"id-in\""),
            );
        }
        for (key, value) in [("cse_name", &self.cse_name), ("ae_name", &self.ae_name)] {
            // "." and ".." would address the parent resource in a URL.
            if !is_plain_name(value) || value == "." || value == ".." {
                issues.push(
                    ConfigIssue::new(key, format!("\"{value}\" is not a valid resource name."))
                        .hint(
                            "letters, digits, '-', '_', '.', '~' only; no '/', not \".\" or \"..\"",
                        ),
                );
            }
        }
        let o = &self.originator;
        if !(o.starts_with('C') || o.starts_with('S')) || !is_plain_name(o) {
            issues.push(
                ConfigIssue::new("originator", format!("\"{o}\" is not an AE-ID."))
                    .hint("start with C or S (e.g. \"Ccitygate-cab17\"), or \"C\" / \"S\" to let the CSE assign one"),
            );
        }
        if !(self.app_id.len() > 1
            && (self.app_id.starts_with('N') || self.app_id.starts_with('R'))
            && is_plain_name(&self.app_id))
        {
            issues.push(
                ConfigIssue::new("app_id", format!("\"{}\" is not an App-ID.", self.app_id))
                    .hint("start with N (non-registered) or R (registered), e.g. \"Ncitygate\""),
            );
        }
        if !["2a", "3", "4", "5"].contains(&self.release.as_str()) {
            issues.push(
                ConfigIssue::new(
                    "release",
                    format!("Release \"{}\" is not supported.", self.release),
                )
                .hint("one of \"2a\", \"3\", \"4\", \"5\""),
            );
        }
        for (device, labels) in &self.labels {
            for (i, label) in labels.iter().enumerate() {
                if label.is_empty() || label.contains(' ') {
                    issues.push(
                        ConfigIssue::new(
                            format!("labels.{device}.{i}"),
                            format!("Label \"{label}\" is empty or contains a space."),
                        )
                        .hint("use key/value style without spaces, e.g. \"site/cab-17\""),
                    );
                }
            }
        }
        if self.request_timeout < Duration::from_millis(100) {
            issues.push(
                ConfigIssue::new(
                    "request_timeout",
                    "The request timeout is shorter than 100ms.",
                )
                .hint("e.g. \"10s\""),
            );
        }
        if !(1..=256).contains(&self.max_in_flight) {
            issues.push(
                ConfigIssue::new("max_in_flight", "max_in_flight must be between 1 and 256.")
                    .hint("4 suits most CSEs"),
            );
        }
        if !(1..=10_000).contains(&self.fetch_per_device) {
            issues.push(ConfigIssue::new(
                "fetch_per_device",
                "fetch_per_device must be between 1 and 10000.",
            ));
        }
        if self.dead_letter_after > 1000 {
            issues.push(
                ConfigIssue::new(
                    "dead_letter_after",
                    "dead_letter_after must be at most 1000 (0: never).",
                )
                .hint("10 suits most CSEs"),
            );
        }
        if !(1024..=(256 << 20)).contains(&self.max_reply_bytes) {
            issues.push(
                ConfigIssue::new(
                    "max_reply_bytes",
                    "max_reply_bytes must be between 1KiB and 256MiB.",
                )
                .hint("the default \"1MiB\" is far above any oneM2M reply"),
            );
        }
        issues.extend(self.validate_tls_and_auth());
        let b = &self.backoff;
        if b.initial.is_zero() || b.initial > b.max {
            issues.push(
                ConfigIssue::new(
                    "backoff.initial",
                    "backoff.initial must be > 0 and <= backoff.max.",
                )
                .hint("e.g. initial = \"500ms\", max = \"30s\""),
            );
        }
        if b.auth_retry < Duration::from_secs(1) {
            issues.push(ConfigIssue::new(
                "backoff.auth_retry",
                "backoff.auth_retry must be at least 1s.",
            ));
        }
        if b.initial_jitter > Duration::from_secs(3600) {
            issues.push(ConfigIssue::new(
                "backoff.initial_jitter",
                "backoff.initial_jitter must be at most 1h.",
            ));
        }
        let f = self.adaptive.latency_factor;
        if !(f.is_finite() && (1.5..=1000.0).contains(&f)) {
            issues.push(ConfigIssue::new(
                "adaptive.latency_factor",
                "adaptive.latency_factor must be between 1.5 and 1000.",
            ));
        }
        issues
    }

    fn validate_tls_and_auth(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        let t = &self.tls;
        if t.client_cert_file.is_some() != t.client_key_file.is_some() {
            issues.push(
                ConfigIssue::new("tls", "client_cert_file and client_key_file go together.")
                    .hint("set both for mutual TLS, or neither"),
            );
        }
        let a = &self.auth;
        if a.basic.is_some() && a.bearer.is_some() {
            issues.push(ConfigIssue::new(
                "auth",
                "Only one of auth.basic and auth.bearer may be set.",
            ));
        }
        if let Some(b) = &a.basic {
            if b.user.is_empty() || b.user.contains(':') {
                issues.push(ConfigIssue::new(
                    "auth.basic.user",
                    "The user name is empty or contains ':'.",
                ));
            }
            issues.extend(b.password().issues("auth.basic", true));
        }
        if let Some(b) = &a.bearer {
            issues.extend(b.token().issues("auth.bearer", true));
        }
        issues
    }
}

/// `coap://HOST[:PORT]` with nothing after the authority. `coaps://` (DTLS) is refused: no
/// DTLS implementation is part of citygate yet (docs/coap.md).
fn validate_coap_url(url: &str) -> Vec<ConfigIssue> {
    let example = "e.g. \"coap://10.0.0.5:5683\"";
    let issue = |msg: String| vec![ConfigIssue::new("cse_url", msg).hint(example)];
    match url.split_once("://") {
        Some(("coap", rest)) => match super::coap_options::parse_authority(rest) {
            Ok(_) => Vec::new(),
            Err(why) => issue(format!("\"{url}\" is not a coap:// URL: {why}.")),
        },
        Some(("coaps", _)) => vec![ConfigIssue::new(
            "cse_url",
            "coaps:// (CoAP over DTLS) is not supported yet.",
        )
        .hint("use coap:// on a protected link (VPN, private APN), or binding = \"http\" with https://")],
        _ => issue(format!(
            "\"{url}\" is not a coap:// URL with a host (binding = \"coap\")."
        )),
    }
}

/// HTTP's TLS and authentication settings have no meaning over CoAP: say so instead of
/// ignoring them silently.
fn coap_ignores_http_settings(cfg: &NorthboundConfig) -> Vec<ConfigIssue> {
    let mut issues = Vec::new();
    if cfg.tls != TlsConfig::default() {
        issues.push(
            ConfigIssue::new(
                "tls",
                "[northbound.tls] applies to HTTP; the CoAP binding ignores it.",
            )
            .hint("remove [northbound.tls]"),
        );
    }
    if cfg.auth != AuthConfig::default() {
        issues.push(
            ConfigIssue::new(
                "auth",
                "[northbound.auth] applies to HTTP; the CoAP binding has no credentials.",
            )
            .hint("remove [northbound.auth]"),
        );
    }
    issues
}

fn default_cse_id() -> String {
    "/id-in".into()
}
fn default_cse_name() -> String {
    "cse-in".into()
}
fn default_originator() -> String {
    "C".into()
}
fn default_app_id() -> String {
    "Ncitygate".into()
}
fn default_ae_name() -> String {
    "citygate".into()
}
fn default_release() -> String {
    "3".into()
}
fn default_request_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_max_in_flight() -> usize {
    4
}
fn default_fetch_per_device() -> usize {
    32
}
fn default_dead_letter_after() -> u32 {
    10
}
/// Default `max_reply_bytes`: 1 MiB.
pub const DEFAULT_MAX_REPLY_BYTES: u64 = 1 << 20;
fn default_max_reply_bytes() -> u64 {
    DEFAULT_MAX_REPLY_BYTES
}
fn default_backoff_initial() -> Duration {
    Duration::from_millis(500)
}
fn default_backoff_max() -> Duration {
    Duration::from_secs(30)
}
fn default_auth_retry() -> Duration {
    Duration::from_secs(300)
}

fn default_retry_after_max() -> Duration {
    Duration::from_secs(120)
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
