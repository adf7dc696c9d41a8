//! The northbound half of commands: builds the command resources at the CSE, receives
//! notifications of new command instances (HTTP: long-polling the AE's `<pollingChannel>`;
//! MQTT: requests on the AE's request topic) and catches up on instances whose notification
//! was lost, handing every instance to the [`Dispatcher`]. Whatever the route, the journal
//! key (the instance's `ri`) makes sure an instance is handled once.
//!
//! The loop: wait for the syncer to register the AE → resume the journal's unfinished
//! commands → build the resources ([`setup`]) → catch up → then, concurrently, receive
//! notifications and catch up again every `catch_up_interval`, after every reconnection, and
//! whenever the resources had to be rebuilt (the CSE lost them).
pub mod notification;
mod receive;
pub mod setup;

use crate::backoff::Backoff;
use crate::commands::{journal, CommandRegistry, Dispatcher};
use crate::management::remote_config::side::RemoteConfigSide;
use crate::northbound::binding::Binding;
use crate::northbound::config::CommandsConfig;
use crate::northbound::mqtt::MqttBinding;
use crate::northbound::onem2m::primitive::Request;
use crate::northbound::onem2m::tree::{Tree, COMMANDS};
use crate::record::now_ms;
use notification::Containers;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How notifications reach the gateway.
#[derive(Clone)]
pub enum Route {
    /// HTTP: long-poll the polling channel.
    PollingChannel,
    /// MQTT: the CSE publishes on the AE's request topic.
    Mqtt(Arc<MqttBinding>),
}

/// Longest wait for the adapters to register their devices after the AE is registered.
const DEVICES_SETTLE: Duration = Duration::from_secs(5);

/// Everything the command side shares between its loops.
pub struct CommandSide {
    cfg: CommandsConfig,
    /// The plain binding (not the syncer's timed one: a long poll is not a slow request).
    binding: Arc<dyn Binding>,
    tree: Arc<Tree>,
    registry: Arc<CommandRegistry>,
    dispatcher: Dispatcher,
    route: Route,
    containers: Mutex<Containers>,
    /// Devices whose command resources exist.
    ready_devices: Mutex<Vec<String>>,
    /// Asks the main loop for a catch-up (reconnected, or the resources were lost).
    catch_up: Notify,
    /// Asks the main loop to rebuild the resources (the CSE answered 4004).
    rebuild: Notify,
    /// `true` once the first catch-up was made: notified instances wait for it, so the
    /// instances created while the gateway was away are queued first, in creation order (the
    /// polling channel does not hand out its backlog in that order).
    caught_up: tokio::sync::watch::Sender<bool>,
    /// Decides on notifications about the reboot mgmtObj (set when management publishes it).
    reboot: std::sync::OnceLock<Arc<crate::management::reboot::Reboot>>,
    /// Builds and receives the remote config containers (set when remote config is on).
    remote_config: std::sync::OnceLock<Arc<RemoteConfigSide>>,
}

impl CommandSide {
    pub fn new(
        cfg: CommandsConfig,
        binding: Arc<dyn Binding>,
        tree: Arc<Tree>,
        registry: Arc<CommandRegistry>,
        dispatcher: Dispatcher,
        route: Route,
    ) -> Arc<Self> {
        Arc::new(CommandSide {
            cfg,
            binding,
            tree,
            registry,
            dispatcher,
            route,
            containers: Mutex::new(Containers::default()),
            ready_devices: Mutex::new(Vec::new()),
            catch_up: Notify::new(),
            rebuild: Notify::new(),
            caught_up: tokio::sync::watch::channel(false).0,
            reboot: std::sync::OnceLock::new(),
            remote_config: std::sync::OnceLock::new(),
        })
    }

    /// Routes notifications about the reboot mgmtObj to `reboot` (the same receiver as
    /// commands: one polling channel or request topic per AE).
    pub fn set_reboot(&self, reboot: Arc<crate::management::reboot::Reboot>) {
        let _ = self.reboot.set(reboot);
    }

    /// Builds the remote config containers with the command resources and routes
    /// notifications about them to `side`.
    pub fn set_remote_config(&self, side: Arc<RemoteConfigSide>) {
        let _ = self.remote_config.set(side);
    }

    /// Runs until `cancel`.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let ae_id = tokio::select! {
            _ = cancel.cancelled() => return,
            id = self.wait_for_ae() => id,
        };
        self.wait_for_devices(&cancel).await;
        // Unfinished commands of the last run go first: they are older than anything new.
        if let Err(e) = self.dispatcher.recover().await {
            tracing::error!(error = %e, "cannot read the command journal");
        }
        // MQTT: listen before building (a CSE may verify the subscription at once). HTTP:
        // poll once the polling channel exists.
        let mut receiver = None;
        if matches!(self.route, Route::Mqtt(_)) {
            receiver = Some(tokio::spawn(receive::run(
                self.clone(),
                ae_id.clone(),
                cancel.clone(),
            )));
        }
        let mut built = self.build(&cancel).await;
        if receiver.is_none() {
            receiver = Some(tokio::spawn(receive::run(
                self.clone(),
                ae_id,
                cancel.clone(),
            )));
        }
        let mut tick = tokio::time::interval(self.cfg.catch_up_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if built {
                self.catch_up_now().await;
                self.caught_up.send_replace(true);
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tick.tick() => {}
                _ = self.catch_up.notified() => {}
                _ = self.rebuild.notified() => built = false,
            }
            if !built || self.devices_changed() {
                built = self.build(&cancel).await;
            }
        }
        if let Some(receiver) = receiver {
            let _ = receiver.await;
        }
    }

    async fn wait_for_ae(&self) -> String {
        loop {
            if let Some(id) = self.tree.ae_id() {
                return id;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Adapters register their devices as they are built, right after start: wait until the
    /// set is there and has not changed for a moment (the journal's unfinished commands are
    /// judged against it), at most [`DEVICES_SETTLE`].
    async fn wait_for_devices(&self, cancel: &CancellationToken) {
        let deadline = tokio::time::Instant::now() + DEVICES_SETTLE;
        let mut last = self.registry.devices();
        let mut stable = 0;
        while tokio::time::Instant::now() < deadline && (last.is_empty() || stable < 4) {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
            let now = self.registry.devices();
            stable = if now == last { stable + 1 } else { 0 };
            last = now;
        }
    }

    fn devices_changed(&self) -> bool {
        *lock(&self.ready_devices) != self.registry.devices()
    }

    /// Builds the resources, retrying on the backoff until it works or `cancel`.
    async fn build(&self, cancel: &CancellationToken) -> bool {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        loop {
            let devices = self.registry.devices();
            let mut built = setup::build(
                &self.tree,
                self.binding.as_ref(),
                &self.cfg.originators,
                &devices,
            )
            .await;
            if let (Ok(_), Some(rc)) = (&built, self.remote_config.get()) {
                if let Err(e) = rc.build(&self.tree, self.binding.as_ref()).await {
                    built = Err(format!("remote config containers: {e}"));
                }
            }
            match built {
                Ok(containers) => {
                    tracing::info!(
                        devices = devices.len(),
                        "command containers ready at the CSE"
                    );
                    *lock(&self.containers) = containers;
                    *lock(&self.ready_devices) = devices;
                    return true;
                }
                Err(e) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %e, retry_in = ?delay, "cannot set up the command containers");
                    tokio::select! {
                        _ = cancel.cancelled() => return false,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    /// Reads every command container and offers the instances the journal does not know.
    async fn catch_up_now(&self) {
        let Some(ae_id) = self.tree.ae_id() else {
            return;
        };
        let oldest = now_ms() - journal::RETENTION.as_millis() as i64;
        let devices = lock(&self.ready_devices).clone();
        let rvi = self.tree.config().release.clone();
        let mut instances = Vec::new();
        for device in &devices {
            let path = self.tree.device_child_path(device, COMMANDS);
            let req = Request::retrieve(path, &ae_id, &rvi).with_rcn(4);
            match self.binding.send(req).await {
                Ok(resp) if resp.rsc.is_success() => {
                    let body = resp.pc.unwrap_or_default();
                    for i in notification::instances_of(device, &body) {
                        match i {
                            Ok(i) if i.created_ms >= oldest => instances.push(i),
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(device = %device, error = %e, "command instance ignored")
                            }
                        }
                    }
                }
                Ok(resp) if resp.rsc.0 == 4004 => {
                    tracing::info!(device = %device, "command container gone at the CSE; rebuilding");
                    self.rebuild.notify_one();
                    return;
                }
                Ok(resp) => {
                    tracing::warn!(device = %device, rsc = %resp.rsc, dbg = ?resp.dbg, "cannot read the command container");
                }
                Err(e) => {
                    tracing::debug!(device = %device, error = %e, "catch-up postponed");
                    return;
                }
            }
        }
        match self.dispatcher.offer_all(instances).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(commands = n, "catch-up found commands not notified"),
            Err(e) => tracing::error!(error = %e, "cannot journal command instances"),
        }
        if let Err(e) = self.dispatcher.journal().prune(now_ms()).await {
            tracing::warn!(error = %e, "cannot prune the command journal");
        }
    }

    /// The device whose command container has resource id `ri`.
    fn device_of(&self, ri: &str) -> Option<String> {
        lock(&self.containers).device_of(ri).map(String::from)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
