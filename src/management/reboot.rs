//! The reboot mgmtObj (mgd 1009): how the platform asks the gateway to restart.
//!
//! The publisher creates `<ae>-node/reboot` (`rbo` and `far` false) and a `<subscription>` on
//! it (`enc.net = [1]`: an update of the resource, `nu` = the AE-ID), so an UPDATE with
//! `rbo = true` reaches the gateway as a notification, over the same route as commands (the
//! polling channel over HTTP, the AE's request topic over MQTT). That is why it needs
//! `[northbound.commands] enabled`.
//!
//! [`Reboot::handle`] decides: `rbo = true` with `[management] allow_restart = true` cancels
//! the daemon's restart token (the run loop then drains like on SIGTERM and exits with
//! [`EXIT_RESTART`], which systemd restarts); otherwise the request is refused (warning, which
//! also lands in the eventLog mgmtObj, and `citygate_management_reboot_requests_total`). A
//! factory reset (`far = true`) is always refused: a gateway's config and buffer are not wiped
//! remotely. Either way `rbo`/`far` are set back to false at the CSE first, so the platform
//! sees the request was taken and a later `rbo = true` is a new request (ACME does
//! that itself).
use super::resources::{gateway_node_name, Class, Desired};
use crate::northbound::binding::Binding;
use crate::northbound::onem2m::name;
use crate::northbound::onem2m::primitive::{Operation, Request, ResourceType};
use crate::northbound::onem2m::tree::Tree;
use crate::telemetry::handles::RebootMetrics;
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub use crate::runtime::shutdown::EXIT_RESTART;

/// `mgd` of the reboot mgmtObj (TS-0004).
pub const MGD_REBOOT: u32 = 1009;
/// Resource name of the reboot mgmtObj under the gateway node.
pub const REBOOT: &str = "reboot";
/// `dc` of the reboot mgmtObj: what the platform can expect.
pub const DESCRIPTION: &str =
    "rbo = true restarts citygate if [management] allow_restart = true; far (factory reset) is refused";
/// Resource name of the gateway's subscription on it (the name it uses on command containers).
pub const SUB: &str = crate::northbound::commands::setup::SUB;

/// The reboot mgmtObj and the gateway's subscription on it, parent first.
pub fn resources(ae_name: &str, ae_id: &str) -> Vec<Desired> {
    let gw = gateway_node_name(ae_name);
    let attrs = |v: Value| match v {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    vec![
        Desired {
            names: vec![gw.clone(), REBOOT.into()],
            ty: ResourceType::MgmtObj,
            key: "m2m:rbo",
            // Never `rbo`/`far`: an update carrying them is a request (see [`Reboot::handle`]),
            // so the gateway's own creates and updates leave them to the CSE (false).
            attrs: attrs(json!({"mgd": MGD_REBOOT, "dc": DESCRIPTION})),
            class: Class::Immediate,
        },
        Desired {
            names: vec![gw, REBOOT.into(), SUB.into()],
            ty: ResourceType::Subscription,
            key: "m2m:sub",
            // net 1: update of the subscribed resource; nct 2: the modified attributes only
            // (a CSE such as ACME sets `rbo` back to false at once: what says "requested" is
            // that the update wrote it).
            attrs: attrs(json!({"nu": [ae_id], "enc": {"net": [1]}, "nct": 2})),
            class: Class::Immediate,
        },
    ]
}

/// What a reboot notification asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Nothing (`rbo` and `far` false: e.g. the notification of our own reset).
    Nothing,
    /// Restart: the restart token was cancelled.
    Restart,
    /// `rbo = true` but `allow_restart = false`.
    Refused,
    /// `far = true`: never done.
    FactoryResetRefused,
}

/// Decides on reboot notifications; shared with the command side's notification receiver.
pub struct Reboot {
    allow: bool,
    binding: Arc<dyn Binding>,
    tree: Arc<Tree>,
    restart: CancellationToken,
    metrics: RebootMetrics,
    /// The gateway set `rbo`/`far` back to false itself: the notification of that update is
    /// its own, not a request.
    echo_expected: AtomicBool,
}

impl Reboot {
    /// `restart` is the daemon's restart token: cancelling it makes `citygate run` drain and
    /// exit with [`EXIT_RESTART`].
    pub fn new(
        allow: bool,
        binding: Arc<dyn Binding>,
        tree: Arc<Tree>,
        restart: CancellationToken,
        metrics: RebootMetrics,
    ) -> Self {
        Reboot {
            allow,
            binding,
            tree,
            restart,
            metrics,
            echo_expected: AtomicBool::new(false),
        }
    }

    /// Handles the `m2m:rbo` carried by a notification (its modified attributes);
    /// `notified_by` is the notification's originator (the CSE: oneM2M does not say which
    /// platform originator made the update, the ACP on the mgmtObj decides who may).
    ///
    /// An update that wrote `rbo` (or `far`) is a request, whatever the value the CSE reports:
    /// ACME, following the trigger semantics of TS-0001, sets both back to false before it
    /// notifies. A CSE that keeps `true` gets them set back to false by the gateway.
    pub async fn handle(&self, rbo: &Value, notified_by: &str) -> Decision {
        let written = |k: &str| rbo.get(k).map(|v| v.as_bool() == Some(true));
        let (reboot, factory_reset) = match (written("rbo"), written("far")) {
            (None, None) => {
                tracing::debug!(notified_by, "reboot mgmtObj updated without a request");
                return Decision::Nothing;
            }
            (r, f) => (r, f),
        };
        let kept_true = reboot == Some(true) || factory_reset == Some(true);
        if !kept_true && self.echo_expected.swap(false, Ordering::SeqCst) {
            // The notification of our own reset.
            return Decision::Nothing;
        }
        if kept_true {
            self.echo_expected.store(true, Ordering::SeqCst);
            self.reset().await;
        }
        let factory_reset = factory_reset.is_some();
        if factory_reset {
            self.metrics.factory_reset_refused.inc();
            tracing::warn!(notified_by, "factory reset requested through the reboot mgmtObj: refused (citygate never resets itself remotely)");
            return Decision::FactoryResetRefused;
        }
        if !self.allow {
            self.metrics.refused.inc();
            tracing::warn!(
                notified_by,
                hint = "set [management] allow_restart = true to allow it",
                "restart requested through the reboot mgmtObj: refused"
            );
            return Decision::Refused;
        }
        self.metrics.restarting.inc();
        tracing::info!(
            notified_by,
            exit_code = EXIT_RESTART,
            "restart requested through the reboot mgmtObj: draining, then exiting for systemd to restart citygate"
        );
        self.restart.cancel();
        Decision::Restart
    }

    /// Sets `rbo` and `far` back to false at the CSE (a failure is logged: the decision stands).
    async fn reset(&self) {
        let cfg = self.tree.config();
        let Some(ae_id) = self.tree.ae_id() else {
            return;
        };
        let gw = gateway_node_name(&cfg.ae_name);
        let path = name::address(&[&cfg.cse_name, &gw, REBOOT]);
        let req = Request {
            op: Operation::Update,
            pc: Some(json!({"m2m:rbo": {"rbo": false, "far": false}})),
            ..Request::retrieve(&path, &ae_id, &cfg.release)
        };
        match self.binding.send(req).await {
            Ok(resp) if resp.rsc.is_success() => {}
            Ok(resp) => {
                tracing::warn!(to = %path, rsc = %resp.rsc, detail = %resp.dbg.unwrap_or_default(), "cannot reset the reboot mgmtObj")
            }
            Err(e) => tracing::warn!(to = %path, error = %e, "cannot reset the reboot mgmtObj"),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::northbound::commands::notification::{parse_sgn, Notification};
    use serde_json::json;
    use std::path::Path;

    const BASE: &str = r#"
[northbound]
cse_url = "http://127.0.0.1:8080"
originator = "Cgw"
ae_name = "gw"
"#;

    fn load(extra: &str) -> Result<crate::config::Config, String> {
        crate::config::load_str(&format!("{BASE}{extra}"), Path::new("citygate.toml"))
            .map_err(|r| r.to_string())
    }

    #[test]
    fn allow_restart_needs_commands() {
        let err = load("[management]\nenabled = true\nallow_restart = true\n").unwrap_err();
        assert!(
            err.contains("allow_restart = true needs [northbound.commands] enabled = true"),
            "{err}"
        );
        assert!(err.contains("citygate.toml:"), "{err}");
        let ok = load(
            "[northbound.commands]\nenabled = true\noriginators = [\"Cplatform\"]\n\
             [management]\nenabled = true\nallow_restart = true\n",
        )
        .unwrap();
        assert!(ok.management.allow_restart);
        assert!(
            !load("[management]\nenabled = true\n")
                .unwrap()
                .management
                .allow_restart
        );
    }

    #[test]
    fn a_reboot_notification_is_routed_with_its_modified_attributes() {
        let sgn = json!({"nev": {"net": 1, "rep": {"m2m:rbo": {"rbo": false, "lt": "x"}}},
            "sur": "/id-in/sub1"});
        assert_eq!(
            parse_sgn(&sgn),
            Notification::Reboot {
                rbo: json!({"rbo": false, "lt": "x"})
            }
        );
    }
}
