//! The northbound half of remote config: the resources at the CSE, the instances notified
//! by it (handed to the main loop as [`Job`]s) and the status reports written back.
//!
//! ```text
//! cse-in/<ae>/config-acp          <accessControlPolicy>: remote_config_originators CREATE+RETRIEVE, the AE everything
//! cse-in/<ae>/config-status-acp   <accessControlPolicy>: remote_config_originators RETRIEVE, the AE everything
//! cse-in/<ae>/config              <container>, acpi = config-acp: the platform writes configs here
//! cse-in/<ae>/config/citygate     <subscription>, net = [3], nu = [AE-ID]
//! cse-in/<ae>/configStatus        <container>, acpi = config-status-acp: the gateway's reports
//! ```
//!
//! The resources are built with the command resources (same create-or-reuse steps, rebuilt
//! when the CSE lost them) and the notifications arrive on the command route (polling channel
//! or MQTT request topic).
use super::status::StatusReport;
use super::Job;
use crate::backoff::Backoff;
use crate::northbound::binding::Binding;
use crate::northbound::commands::setup::{self, SetupError};
use crate::northbound::onem2m::name;
use crate::northbound::onem2m::primitive::{Request, ResourceType, Rsc};
use crate::northbound::onem2m::tree::Tree;
use crate::telemetry::untrusted::Untrusted;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Resource name of the container the platform writes configs into.
pub const CONFIG: &str = "config";
/// Resource name of the container of status reports.
pub const STATUS: &str = "configStatus";
/// Resource names of their access control policies.
pub const CONFIG_ACP: &str = "config-acp";
pub const STATUS_ACP: &str = "config-status-acp";
/// Instances kept at the CSE in each container.
pub const CONFIG_MNI: u64 = 10;
pub const STATUS_MNI: u64 = 50;
/// Instance ids remembered to handle a notification delivered twice only once.
const REMEMBERED: usize = 64;
/// File in the state directory naming the last instance handed over.
pub const LAST_FILE: &str = "remote-config.last";
/// Attempts to write one status report before it stays in the log only.
const STATUS_ATTEMPTS: u32 = 8;

/// Shared by the command side (which builds and receives) and the status writer.
pub struct RemoteConfigSide {
    originators: Vec<String>,
    jobs: mpsc::Sender<Job>,
    reports: Mutex<Option<mpsc::Receiver<StatusReport>>>,
    /// Resource id of the config container, learnt when it is built.
    container: Mutex<Option<String>>,
    /// Instances already handed over (resource ids).
    seen: Mutex<VecDeque<String>>,
    /// `<state dir>/remote-config.last`: the resource id of the last instance handed over,
    /// so the catch-up at start does not take it again.
    last: PathBuf,
}

impl RemoteConfigSide {
    pub fn new(
        originators: Vec<String>,
        state_dir: &Path,
        jobs: mpsc::Sender<Job>,
        reports: mpsc::Receiver<StatusReport>,
    ) -> Arc<Self> {
        Arc::new(RemoteConfigSide {
            originators,
            jobs,
            reports: Mutex::new(Some(reports)),
            container: Mutex::new(None),
            seen: Mutex::new(VecDeque::new()),
            last: state_dir.join(LAST_FILE),
        })
    }

    /// Creates (or reuses) the ACPs, both containers and the subscription.
    pub async fn build(&self, tree: &Tree, binding: &dyn Binding) -> Result<(), SetupError> {
        let cfg = tree.config();
        let ae_id = tree.ae_id().ok_or("the AE is not registered yet")?;
        let rvi = cfg.release.as_str();
        let ops = setup::PLATFORM_OPS;
        setup::ensure_acp(tree, binding, &ae_id, CONFIG_ACP, &self.originators, ops).await?;
        setup::ensure_acp(
            tree,
            binding,
            &ae_id,
            STATUS_ACP,
            &self.originators,
            setup::RETRIEVE,
        )
        .await?;
        let under_ae = |rn: &str| name::address(&[&cfg.cse_name, &cfg.ae_name, rn]);
        let config_ri = ensure_container(
            tree,
            binding,
            &ae_id,
            CONFIG,
            &under_ae(CONFIG_ACP),
            CONFIG_MNI,
        )
        .await?;
        ensure_container(
            tree,
            binding,
            &ae_id,
            STATUS,
            &under_ae(STATUS_ACP),
            STATUS_MNI,
        )
        .await?;
        let sub =
            json!({"m2m:sub": {"rn": setup::SUB, "nu": [ae_id], "enc": {"net": [3]}, "nct": 1}});
        let created = setup::send(
            binding,
            Request::create_raw(
                under_ae(CONFIG),
                &ae_id,
                rvi,
                ResourceType::Subscription,
                sub,
            ),
        )
        .await?;
        setup::expect_ok_or_exists(created, "subscribing to the config container")?;
        *lock(&self.container) = Some(config_ri);
        self.catch_up(tree, binding, &ae_id).await;
        Ok(())
    }

    /// The latest instance of the config container, when it is not the last one handled: a
    /// config written while the gateway was away (its notification lost) is taken at start.
    /// Only the latest: the platform's last word is the config it wants.
    async fn catch_up(&self, tree: &Tree, binding: &dyn Binding, ae_id: &str) {
        let cfg = tree.config();
        let path = name::address(&[&cfg.cse_name, &cfg.ae_name, CONFIG, "la"]);
        let resp = match binding
            .send(Request::retrieve(path, ae_id, &cfg.release))
            .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "remote config catch-up postponed");
                return;
            }
        };
        if !resp.rsc.is_success() {
            // 4004: no instance yet.
            return;
        }
        let Some(cin) = resp.pc.as_ref().and_then(|pc| pc.get("m2m:cin")) else {
            return;
        };
        let ri = cin.get("ri").and_then(Value::as_str).unwrap_or_default();
        let last = std::fs::read_to_string(&self.last).unwrap_or_default();
        if !ri.is_empty() && ri != last.trim() {
            tracing::info!(instance = %Untrusted(ri), "a config instance was written while the gateway was away");
            self.offer(cin).await;
        }
    }

    /// Whether the container with resource id `ri` (a notification's `pi`) is the config
    /// container.
    pub fn owns(&self, ri: &str) -> bool {
        let bare = ri.rsplit('/').next().unwrap_or(ri);
        lock(&self.container).as_deref() == Some(bare)
    }

    /// Hands a notified instance to the main loop (once per instance).
    pub async fn offer(&self, cin: &Value) {
        let Some(ri) = cin.get("ri").and_then(Value::as_str) else {
            tracing::warn!("config instance without a resource id (ri) ignored");
            return;
        };
        {
            let mut seen = lock(&self.seen);
            if seen.iter().any(|s| s == ri) {
                return;
            }
            if seen.len() == REMEMBERED {
                seen.pop_front();
            }
            seen.push_back(ri.to_owned());
        }
        if let Err(e) = super::file::write_atomic(&self.last, ri.as_bytes()) {
            tracing::warn!(error = %e, "cannot remember the last config instance; a restart may take it again");
        }
        let instance = cin
            .get("rn")
            .and_then(Value::as_str)
            .unwrap_or(ri)
            .to_owned();
        let creator = cin.get("cr").and_then(Value::as_str).map(String::from);
        tracing::info!(instance = %Untrusted(&instance), creator = ?creator.as_deref().map(Untrusted), "remote config instance received");
        let job = Job {
            instance,
            creator,
            con: cin.get("con").cloned().unwrap_or(Value::Null),
        };
        if self.jobs.send(job).await.is_err() {
            tracing::warn!("remote config instance received while stopping; ignored");
        }
    }

    /// Writes every status report into the status container, until `cancel`.
    pub async fn write_status(
        self: Arc<Self>,
        binding: Arc<dyn Binding>,
        tree: Arc<Tree>,
        cancel: CancellationToken,
    ) {
        let Some(mut reports) = lock(&self.reports).take() else {
            return;
        };
        loop {
            let report = tokio::select! {
                _ = cancel.cancelled() => return,
                r = reports.recv() => match r { Some(r) => r, None => return },
            };
            let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
            for attempt in 1..=STATUS_ATTEMPTS {
                match write_one(&tree, binding.as_ref(), &report).await {
                    Ok(()) => break,
                    Err(e) if attempt == STATUS_ATTEMPTS => {
                        tracing::error!(error = %e, "cannot write the remote config status to the CSE; it stays in the log only");
                    }
                    Err(e) => {
                        let delay = backoff.next_delay();
                        tracing::warn!(error = %e, retry_in = ?delay, "cannot write the remote config status yet");
                        tokio::select! {
                            _ = cancel.cancelled() => return,
                            _ = tokio::time::sleep(delay) => {}
                        }
                    }
                }
            }
        }
    }
}

async fn write_one(
    tree: &Tree,
    binding: &dyn Binding,
    report: &StatusReport,
) -> Result<(), SetupError> {
    let cfg = tree.config();
    let ae_id = tree.ae_id().ok_or("the AE is not registered yet")?;
    let parent = name::address(&[&cfg.cse_name, &cfg.ae_name, STATUS]);
    let cin = json!({"m2m:cin": {"con": report.to_json()}});
    let req = Request::create_raw(
        parent,
        &ae_id,
        &cfg.release,
        ResourceType::ContentInstance,
        cin,
    );
    setup::expect_ok(setup::send(binding, req).await?, "writing the status").map(|_| ())
}

/// Creates the container `rn` under the AE with `acpi` and `mni`, or reads the one there;
/// its resource id.
async fn ensure_container(
    tree: &Tree,
    binding: &dyn Binding,
    ae_id: &str,
    rn: &str,
    acpi: &str,
    mni: u64,
) -> Result<String, SetupError> {
    let cfg = tree.config();
    let rvi = cfg.release.as_str();
    let body = json!({"m2m:cnt": {"rn": rn, "acpi": [acpi], "mni": mni}});
    let created = setup::send(
        binding,
        Request::create_raw(tree.ae_path(), ae_id, rvi, ResourceType::Container, body),
    )
    .await?;
    let resp = if created.rsc == Rsc::CONFLICT {
        let path = name::address(&[&cfg.cse_name, &cfg.ae_name, rn]);
        setup::expect_ok(
            setup::send(binding, Request::retrieve(path, ae_id, rvi)).await?,
            &format!("reading the container {rn}"),
        )?
    } else {
        setup::expect_ok(created, &format!("creating the container {rn}"))?
    };
    setup::ri_of(&resp, "m2m:cnt").ok_or_else(|| format!("the container {rn} has no resource id"))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
