//! The gateway's resource tree at the CSE: `<CSEBase>/<AE>/<one container per device>`.
//!
//! Registration follows the restart-safe recipe (protocols.md §1.7): RETRIEVE the AE with our
//! AE-ID first; 4004 → CREATE it; 4117 (already registered) → RETRIEVE again and reuse. With a
//! bare `C`/`S` originator the CSE assigns the AE-ID, which is persisted in the buffer DB
//! (`ae_id`) so a restart reuses the same AE instead of registering a new one each time.
//! Containers are created lazily on a device's first record and cached; a 4004 later (CSE
//! wiped) drops the cache entry and rebuilds, re-registering the AE when that is gone too.
//!
//! Every address is built here, from resource names, with [`name::address`] (each segment
//! percent-encoded); a device's container is named by [`name::container_name`], which maps an
//! id that is not a valid resource name to a safe one and labels the container with the id.
use super::name;
use super::primitive::{Request, Response, Rsc};
use super::resource::{Ae, Container, InstanceHolder, Resource};
use super::series::{PeriodLookup, TimeSeries};
use crate::northbound::binding::Binding;
use crate::northbound::config::NorthboundConfig;
use crate::northbound::config::RecordResource;
use crate::northbound::retry::{classify, Outcome, RetryReason};
use crate::northbound::store::SyncStore;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Key of the persisted CSE-assigned AE-ID in the buffer's state table.
pub const AE_ID_STATE_KEY: &str = "ae_id";

pub struct Tree {
    cfg: Arc<NorthboundConfig>,
    binding: Arc<dyn Binding>,
    store: Arc<dyn SyncStore>,
    /// The AE-ID in use (our `X-M2M-Origin`), once registered.
    ae_id: Mutex<Option<String>>,
    /// Bumped on every successful registration, so concurrent devices that all saw the AE
    /// vanish re-register it once, not once each.
    generation: AtomicU64,
    containers: Mutex<HashSet<String>>,
    /// Device periods for the timeSeries mapping (`pei`), set once by the daemon.
    periods: OnceLock<PeriodLookup>,
    /// Devices whose `results` container exists (commands, see `docs/commands.md`).
    results: Mutex<HashSet<String>>,
    register_lock: tokio::sync::Mutex<()>,
}

impl Tree {
    pub fn new(
        cfg: Arc<NorthboundConfig>,
        binding: Arc<dyn Binding>,
        store: Arc<dyn SyncStore>,
    ) -> Self {
        Tree {
            cfg,
            binding,
            store,
            ae_id: Mutex::new(None),
            generation: AtomicU64::new(0),
            containers: Mutex::new(HashSet::new()),
            periods: OnceLock::new(),
            results: Mutex::new(HashSet::new()),
            register_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// `cse-in`: the CSEBase, parent of the AE.
    pub fn cse_path(&self) -> String {
        name::address(&[&self.cfg.cse_name])
    }

    /// `cse-in/<ae_name>`.
    pub fn ae_path(&self) -> String {
        name::address(&[&self.cfg.cse_name, &self.cfg.ae_name])
    }

    /// `cse-in/<ae_name>/<container name of the device>` (see [`name::container_name`]).
    pub fn container_path(&self, device: &str) -> String {
        name::address(&[
            &self.cfg.cse_name,
            &self.cfg.ae_name,
            &name::container_name(device),
        ])
    }

    /// The AE-ID to use as originator, once registered.
    /// `<device container>/<child>` (the `commands` and `results` containers).
    pub fn device_child_path(&self, device: &str, child: &str) -> String {
        name::address(&[
            &self.cfg.cse_name,
            &self.cfg.ae_name,
            &name::container_name(device),
            child,
        ])
    }

    /// The gateway's northbound config.
    pub fn config(&self) -> &NorthboundConfig {
        &self.cfg
    }

    pub fn ae_id(&self) -> Option<String> {
        lock(&self.ae_id).clone()
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Where device periods come from (the adapters' declared poll intervals): with
    /// `resource = "timeSeries"` a periodic device's timeSeries gets missing-data detection.
    /// Set once, before the first record; a later call is ignored.
    pub fn set_device_periods(&self, lookup: PeriodLookup) {
        let _ = self.periods.set(lookup);
    }

    /// The device's record resource: a container, or a timeSeries (with its period when the
    /// device has one).
    fn device_resource(&self, device: &str, rn: &str, lbl: Option<Vec<String>>) -> Resource {
        let holder = self.holder(rn, lbl);
        match self.cfg.resource {
            RecordResource::ContentInstance => Resource::Container(Container {
                holder,
                ..Default::default()
            }),
            RecordResource::TimeSeries => {
                let ts = TimeSeries {
                    holder,
                    ..Default::default()
                };
                let period = self.periods.get().and_then(|lookup| lookup(device));
                Resource::TimeSeries(match period {
                    Some(p) if !p.is_zero() => ts.with_period(p),
                    _ => ts,
                })
            }
        }
    }

    /// A container's or timeSeries' name, labels and the configured limits (`[northbound.container]`).
    fn holder(&self, rn: &str, lbl: Option<Vec<String>>) -> InstanceHolder {
        let limits = &self.cfg.container;
        InstanceHolder {
            rn: Some(rn.to_string()),
            lbl,
            mni: limits.mni,
            mbs: limits.mbs,
            mia: limits.mia,
            ..Default::default()
        }
    }

    /// Forgets a device's container (after a 4004 on a record create).
    pub fn forget_container(&self, device: &str) {
        lock(&self.containers).remove(device);
        lock(&self.results).remove(device);
    }

    /// Registers (or finds) the AE. Errors are classified outcomes (never delivered).
    pub async fn register(&self) -> Result<String, Outcome> {
        let _guard = self.register_lock.lock().await;
        self.register_locked().await
    }

    /// Re-registers after the AE vanished, unless another task already did since `seen`.
    pub async fn reregister(&self, seen_generation: u64) -> Result<(), Outcome> {
        let _guard = self.register_lock.lock().await;
        if self.generation() != seen_generation {
            return Ok(());
        }
        self.register_locked().await.map(|_| ())
    }

    async fn register_locked(&self) -> Result<String, Outcome> {
        let known_id = if self.cfg.cse_assigns_ae_id() {
            self.store
                .get_state(AE_ID_STATE_KEY)
                .await
                .map_err(|e| store_outcome(&e))?
        } else {
            Some(self.cfg.originator.clone())
        };
        if let Some(id) = &known_id {
            match self.retrieve_ae(id).await? {
                Some(aei) => return Ok(self.registered(aei)),
                None => {
                    tracing::info!(ae = %self.ae_path(), originator = %id, "AE not found at the CSE, registering")
                }
            }
        }
        let fr = if self.cfg.cse_assigns_ae_id() {
            self.cfg.originator.clone()
        } else {
            known_id.clone().unwrap_or_default()
        };
        let ae = Resource::Ae(Ae {
            rn: Some(self.cfg.ae_name.clone()),
            api: self.cfg.app_id.clone(),
            rr: false,
            srv: vec![self.cfg.release.clone()],
            lbl: None,
            aei: None,
            common: Default::default(),
        });
        let req = Request::create(self.cse_path(), &fr, &self.cfg.release, &ae);
        let result = self.binding.send(req).await;
        if matches!(&result, Ok(r) if r.rsc == Rsc::ORIGINATOR_HAS_ALREADY_REGISTERED) {
            // This originator is registered already: find and reuse that AE.
            return match self.retrieve_ae(&fr).await? {
                Some(aei) => Ok(self.registered(aei)),
                None => Err(Outcome::Refused {
                    rsc: Some(4117),
                    detail: format!(
                        "originator {fr} is registered, but not as {}",
                        self.ae_path()
                    ),
                }),
            };
        }
        match classify(&result) {
            Outcome::Delivered => {
                let aei = result
                    .ok()
                    .and_then(|r| ae_id_of(&r))
                    .unwrap_or_else(|| fr.clone());
                if self.cfg.cse_assigns_ae_id() {
                    self.store
                        .put_state(AE_ID_STATE_KEY, aei.clone())
                        .await
                        .map_err(|e| store_outcome(&e))?;
                }
                tracing::info!(ae = %self.ae_path(), ae_id = %aei, "registered AE");
                Ok(self.registered(aei))
            }
            // 4105: another originator owns an AE with our resource name.
            Outcome::AlreadyThere => Err(Outcome::Refused {
                rsc: Some(4105),
                detail: format!(
                    "AE {} exists but belongs to another originator (not {fr})",
                    self.ae_path()
                ),
            }),
            Outcome::Permanent { detail, .. } | Outcome::TreeMissing { detail }
                if self.generation() > 0 =>
            {
                Err(self.restarting(detail))
            }
            // Registration problems are the gateway's, never a record's: refuse, don't drop.
            Outcome::Permanent { detail, .. } | Outcome::TreeMissing { detail } => {
                Err(Outcome::Refused {
                    rsc: result.as_ref().ok().map(|r| r.rsc.0),
                    detail: format!("AE registration rejected: {detail}"),
                })
            }
            other => Err(other),
        }
    }

    /// RETRIEVE our AE: `Some(AE-ID)` if it exists, `None` on 4004.
    async fn retrieve_ae(&self, originator: &str) -> Result<Option<String>, Outcome> {
        let req = Request::retrieve(self.ae_path(), originator, &self.cfg.release);
        let result = self.binding.send(req).await;
        match classify(&result) {
            Outcome::Delivered => Ok(Some(
                result
                    .ok()
                    .and_then(|r| ae_id_of(&r))
                    .unwrap_or_else(|| originator.to_string()),
            )),
            Outcome::TreeMissing { .. } => Ok(None),
            Outcome::Permanent { detail, .. } if self.generation() > 0 => {
                Err(self.restarting(detail))
            }
            Outcome::Permanent { rsc, detail } => Err(Outcome::Refused { rsc, detail }),
            other => Err(other),
        }
    }

    /// A rejection of the registration by a CSE that accepted it before: the CSE is
    /// restarting. ACME answers before its resources and attribute policies are loaded (4004
    /// for its own base, 4000 "validation for attribute … not defined"). Retried with the
    /// normal backoff; only on a first registration do such answers mean a wrong config.
    fn restarting(&self, detail: String) -> Outcome {
        Outcome::retry(
            RetryReason::Server,
            format!("CSE not ready (restarting?): {detail}"),
        )
    }

    fn registered(&self, aei: String) -> String {
        *lock(&self.ae_id) = Some(aei.clone());
        lock(&self.containers).clear();
        lock(&self.results).clear();
        self.generation.fetch_add(1, Ordering::SeqCst);
        aei
    }

    /// Makes sure the device's container exists (created on first use, then cached).
    pub async fn ensure_container(&self, device: &str) -> Result<(), Outcome> {
        if lock(&self.containers).contains(device) {
            return Ok(());
        }
        for _ in 0..2 {
            let generation = self.generation();
            let Some(ae_id) = self.ae_id() else {
                self.reregister(generation).await?;
                continue;
            };
            let rn = name::container_name(device);
            let mapped = rn != device;
            let mut lbl = self.cfg.labels.get(device).cloned();
            if mapped {
                // The platform finds the device by its label; the name is only a safe key.
                lbl.get_or_insert_with(Vec::new)
                    .push(name::device_label(device));
            }
            let cnt = self.device_resource(device, &rn, lbl);
            let req = Request::create(self.ae_path(), &ae_id, &self.cfg.release, &cnt).with_rcn(0);
            match classify(&self.binding.send(req).await) {
                Outcome::Delivered | Outcome::AlreadyThere => {
                    if mapped {
                        tracing::info!(
                            device = %name::loggable_id(device),
                            container = %rn,
                            "device id is not a valid resource name; its records go to a mapped container labelled with the id"
                        );
                    }
                    lock(&self.containers).insert(device.to_string());
                    return Ok(());
                }
                Outcome::TreeMissing { .. } => {
                    tracing::info!(ae = %self.ae_path(), "AE vanished at the CSE, re-registering");
                    self.reregister(generation).await?;
                }
                other => return Err(other),
            }
        }
        Err(Outcome::retry(
            RetryReason::Server,
            format!("AE {} keeps vanishing", self.ae_path()),
        ))
    }
}

/// The AE-ID in a RETRIEVE/CREATE answer (`aei`, else `ri`).
impl Tree {
    /// Makes sure `<device container>/results` exists (the device container first): where
    /// command results are delivered. Created like the device container, with its limits.
    pub async fn ensure_results_container(&self, device: &str) -> Result<(), Outcome> {
        self.ensure_container(device).await?;
        if lock(&self.results).contains(device) {
            return Ok(());
        }
        let Some(ae_id) = self.ae_id() else {
            return Err(Outcome::TreeMissing {
                detail: "AE not registered".into(),
            });
        };
        // With commands on, the platform may read (only read) the results.
        let acpi = self.cfg.commands.enabled.then(|| {
            vec![name::address(&[
                &self.cfg.cse_name,
                &self.cfg.ae_name,
                RESULTS_ACP,
            ])]
        });
        let cnt = Resource::Container(Container {
            holder: self.holder(RESULTS, None),
            acpi,
            ..Default::default()
        });
        let parent = self.container_path(device);
        let req = Request::create(&parent, &ae_id, &self.cfg.release, &cnt).with_rcn(0);
        let mut outcome = classify(&self.binding.send(req).await);
        if let (Outcome::Permanent { detail, .. }, Resource::Container(c)) = (&outcome, &cnt) {
            if c.acpi.is_some() {
                // The results ACP is not there (yet): a result must not be dead-lettered for
                // that; the container is created with the CSE's default access instead.
                tracing::warn!(device = %name::loggable_id(device), error = %detail, "results container refused with the results ACP; creating it without");
                let plain = Resource::Container(Container {
                    acpi: None,
                    ..c.clone()
                });
                let req = Request::create(&parent, &ae_id, &self.cfg.release, &plain).with_rcn(0);
                outcome = classify(&self.binding.send(req).await);
            }
        }
        match outcome {
            Outcome::Delivered | Outcome::AlreadyThere => {
                lock(&self.results).insert(device.to_string());
                Ok(())
            }
            Outcome::TreeMissing { detail } => {
                self.forget_container(device);
                Err(Outcome::TreeMissing { detail })
            }
            other => Err(other),
        }
    }
}

/// Name of the ACP under the AE that lets the platform read the result containers.
pub const RESULTS_ACP: &str = "results-acp";
/// Name of the container under a device's container that receives command results.
pub const RESULTS: &str = "results";
/// Name of the container under a device's container that receives commands.
pub const COMMANDS: &str = "commands";

fn ae_id_of(resp: &Response) -> Option<String> {
    match resp.resource()? {
        Resource::Ae(ae) => ae.aei.or(ae.common.ri),
        _ => None,
    }
}

fn store_outcome(e: &crate::northbound::store::StoreError) -> Outcome {
    Outcome::retry(RetryReason::Transport, format!("buffer: {e}"))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding these short locks cannot leave the data half-written.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
#[path = "tree_tests.rs"]
mod tests;
