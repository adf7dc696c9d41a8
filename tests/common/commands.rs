//! Shared pieces of the command tests: a gateway running the real northbound wiring
//! (`runtime::northbound::start`: syncer + command side) over a real buffer, with a
//! recording command target standing in for an adapter, and a platform-side client that
//! creates command instances at ACME with a plain HTTP client.
#![allow(dead_code)]
use super::northbound::{acme, AE_NAME, ORIGINATOR};
use anyhow::{bail, Context};
use citygate::buffer::{Buffer, BufferConfig, BufferThread};
use citygate::commands::recording::RecordingTarget;
use citygate::commands::{CommandRegistry, ValueKind, WriteRule};
use citygate::northbound::NorthboundConfig;
use citygate::telemetry::health::Health;
use citygate::telemetry::Metrics;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The platform's AE-ID, the only originator allowed to command.
pub const PLATFORM: &str = "Cplatform";
/// The commandable test device.
pub const DEVICE: &str = "lamp-1";

/// The points of the test device: `dim_level` 0..=100 (idempotent), `pulse` (not), `status`
/// (read only).
pub fn target() -> Arc<RecordingTarget> {
    RecordingTarget::new(
        "plc",
        [
            (
                "dim_level".to_string(),
                ValueKind::Number,
                WriteRule {
                    writable: true,
                    min: Some(0.0),
                    max: Some(100.0),
                    idempotent: true,
                    ..Default::default()
                },
            ),
            (
                "pulse".to_string(),
                ValueKind::Number,
                WriteRule {
                    writable: true,
                    ..Default::default()
                },
            ),
            (
                "status".to_string(),
                ValueKind::Number,
                WriteRule::default(),
            ),
        ],
    )
}

/// `cfg` with commands enabled for [`PLATFORM`] and short intervals: catch-up every second,
/// so every instance also reaches the dispatcher by that second route.
pub fn enable(mut cfg: NorthboundConfig) -> NorthboundConfig {
    cfg.commands.enabled = true;
    cfg.commands.originators = vec![PLATFORM.into()];
    cfg.commands.poll_timeout = Duration::from_secs(5);
    cfg.commands.catch_up_interval = Duration::from_secs(1);
    assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
    cfg
}

/// A running gateway (northbound + command side) with its buffer.
pub struct Gateway {
    pub target: Arc<RecordingTarget>,
    buffer: Option<Buffer>,
    thread: Option<BufferThread>,
    token: CancellationToken,
    tracker: TaskTracker,
}

impl Gateway {
    /// Starts on the buffer in `dir` (reused across restarts), with `target` as the command
    /// target of [`DEVICE`].
    pub fn start(cfg: &NorthboundConfig, dir: &Path, target: Arc<RecordingTarget>) -> Gateway {
        let registry = CommandRegistry::new();
        registry.register(DEVICE, target.clone());
        Gateway::start_with_registry(cfg, dir, registry, target)
    }

    /// Starts with a registry filled elsewhere, e.g. by real adapters built with
    /// `AdapterConfig::build(id, &metrics, &registry)` (their `commands = true` devices);
    /// `target` is only kept for the test's inspection.
    pub fn start_with_registry(
        cfg: &NorthboundConfig,
        dir: &Path,
        registry: Arc<CommandRegistry>,
        target: Arc<RecordingTarget>,
    ) -> Gateway {
        let (buffer, thread) =
            Buffer::open(&dir.join("buffer.sqlite"), &BufferConfig::default()).expect("buffer");
        let token = CancellationToken::new();
        let tracker = TaskTracker::new();
        citygate::runtime::northbound::start(
            cfg,
            &Default::default(),
            &citygate::runtime::northbound::Daemon {
                buffer: &buffer,
                metrics: &Metrics::new(),
                health: &Health::default(),
                commands: &registry,
                token: &token,
                tracker: &tracker,
                restart: &CancellationToken::new(),
                remote_config: None,
            },
        )
        .expect("northbound starts");
        Gateway {
            target,
            buffer: Some(buffer),
            thread: Some(thread),
            token,
            tracker,
        }
    }

    /// The gateway's buffer (e.g. to run adapters on it).
    pub fn buffer(&self) -> &Buffer {
        self.buffer.as_ref().expect("running")
    }

    /// Stops everything and closes the buffer (a clean stop).
    pub async fn stop(mut self) {
        self.token.cancel();
        self.tracker.close();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.tracker.wait()).await;
        drop(self.buffer.take());
        if let Some(t) = self.thread.take() {
            tokio::task::spawn_blocking(move || t.close()).await.ok();
        }
    }
}

/// Address of a child container of the test device.
pub fn device_child(child: &str) -> String {
    format!("cse-in/{AE_NAME}/{DEVICE}/{child}")
}

/// Registers the platform's AE at ACME (what the city platform does once).
pub async fn register_platform(url: &str) -> anyhow::Result<()> {
    let (rsc, body) = request(
        url,
        "POST",
        "cse-in",
        PLATFORM,
        Some(2),
        json!({"m2m:ae": {"rn": "platform", "api": "Nplatform", "rr": false, "srv": ["3"]}}),
    )
    .await?;
    if rsc != 2001 {
        bail!("platform AE: {rsc} {body}");
    }
    Ok(())
}

/// Waits until the device's command container exists and the subscription is on it.
pub async fn wait_commands_ready(url: &str, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let (rsc, _) = acme::retrieve(
            url,
            &format!("{}/citygate", device_child("commands")),
            ORIGINATOR,
        )
        .await?;
        if rsc == 2000 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("no subscription on the command container (rsc {rsc})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The platform creates a command instance (with `"cr": null` so the CSE records the
/// creator, unless `record_creator` is false): (rsc, ri, ct in UTC ms).
pub async fn create_command(
    url: &str,
    originator: &str,
    con: Value,
    record_creator: bool,
) -> anyhow::Result<(u16, Option<String>, Option<i64>)> {
    let mut cin = json!({"con": con.to_string()});
    if record_creator {
        cin["cr"] = Value::Null;
    }
    let (rsc, body) = request(
        url,
        "POST",
        &device_child("commands"),
        originator,
        Some(4),
        json!({ "m2m:cin": cin }),
    )
    .await?;
    let ri = body["m2m:cin"]["ri"].as_str().map(String::from);
    let ct = body["m2m:cin"]["ct"]
        .as_str()
        .and_then(citygate::record::parse_onem2m_ts);
    Ok((rsc, ri, ct))
}

/// The results at the CSE: `con` of each result instance, parsed, in creation order.
pub async fn results(url: &str) -> anyhow::Result<Vec<Value>> {
    // Read as the platform: the results ACP lets it.
    let (rsc, _) = acme::retrieve(url, &device_child("results"), PLATFORM).await?;
    if rsc == 4004 {
        return Ok(Vec::new());
    }
    acme::cins_of(url, &device_child("results"), PLATFORM)
        .await?
        .into_iter()
        .map(|cin| match &cin["con"] {
            Value::String(s) => serde_json::from_str(s).context("result con"),
            other => Ok(other.clone()),
        })
        .collect()
}

/// Waits for at least `n` results at the CSE.
pub async fn wait_results(url: &str, n: usize, timeout: Duration) -> anyhow::Result<Vec<Value>> {
    let deadline = Instant::now() + timeout;
    loop {
        let r = results(url).await?;
        if r.len() >= n {
            return Ok(r);
        }
        if Instant::now() > deadline {
            bail!("{} results at the CSE, wanted {n}: {r:?}", r.len());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `meta.command.<key>` of a result.
pub fn meta<'a>(result: &'a Value, key: &str) -> &'a str {
    result["meta"][format!("command.{key}")]
        .as_str()
        .unwrap_or_default()
}

/// One request to ACME with a plain client: (rsc, body).
pub async fn request(
    url: &str,
    method: &str,
    path: &str,
    originator: &str,
    ty: Option<u16>,
    body: Value,
) -> anyhow::Result<(u16, Value)> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let mut rb = client
        .request(method.parse()?, format!("{url}/{path}"))
        .header("X-M2M-Origin", originator)
        .header("X-M2M-RI", format!("platform-{}", acme::free_port()))
        .header("X-M2M-RVI", "3")
        .header("Accept", "application/json");
    if let Some(ty) = ty {
        rb = rb
            .header("Content-Type", format!("application/json;ty={ty}"))
            .body(body.to_string());
    }
    let r = rb.send().await?;
    let rsc: u16 = r
        .headers()
        .get("x-m2m-rsc")
        .context("no X-M2M-RSC")?
        .to_str()?
        .parse()?;
    let bytes = r.bytes().await?;
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok((rsc, value))
}
