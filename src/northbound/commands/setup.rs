//! Builds the command resources at the CSE (layout in `docs/commands.md`):
//!
//! ```text
//! cse-in/<ae>/commands-acp                 <accessControlPolicy>: originators CREATE+RETRIEVE, the AE everything
//! cse-in/<ae>/results-acp                  <accessControlPolicy>: originators RETRIEVE, the AE everything
//! cse-in/<ae>/pch                          <pollingChannel> (HTTP binding only)
//! cse-in/<ae>/<device container>/commands  <container>, acpi = commands-acp
//! cse-in/<ae>/<device container>/commands/citygate   <subscription>, net = [3], nu = [AE-ID]
//! cse-in/<ae>/<device container>/results   <container>, acpi = results-acp (created by the syncer with the first result)
//! ```
//!
//! Every step is create-or-reuse: a resource that exists (4105) is kept, the ACP is updated to
//! the configured originators. Over MQTT the AE is updated to be request-reachable through the
//! broker (`rr = true`, `poa = [mqtt://…]`) so the CSE publishes notifications on its request
//! topic.
use super::notification::Containers;
use crate::northbound::binding::Binding;
use crate::northbound::config::BindingKind;
use crate::northbound::onem2m::name;
use crate::northbound::onem2m::primitive::{Operation, Request, ResourceType, Response, Rsc};
use crate::northbound::onem2m::tree::{Tree, COMMANDS};
use serde_json::json;

/// Resource name of the access control policy of the command containers.
pub const ACP: &str = "commands-acp";
pub use crate::northbound::onem2m::tree::RESULTS_ACP;
/// Resource name of the polling channel under the AE.
pub const PCH: &str = "pch";
/// Resource name of the gateway's subscription on each command container.
pub const SUB: &str = "citygate";
/// Instances kept in a command container (`mni`): bounds what catch-up reads.
pub const COMMANDS_MNI: u64 = 100;

/// ACP operations: CREATE (1) + RETRIEVE (2) for the platform in `commands`, RETRIEVE in
/// `results`, all (63) for the AE.
pub(crate) const PLATFORM_OPS: u64 = 1 | 2;
pub(crate) const RETRIEVE: u64 = 2;
const ALL_OPS: u64 = 63;

/// Why setting up failed, for the log (retried on the next catch-up tick).
pub type SetupError = String;

/// Builds what every device needs; returns the command containers' resource ids by device.
pub async fn build(
    tree: &Tree,
    binding: &dyn Binding,
    originators: &[String],
    devices: &[String],
) -> Result<Containers, SetupError> {
    let cfg = tree.config();
    let ae_id = tree.ae_id().ok_or("the AE is not registered yet")?;
    let rvi = cfg.release.as_str();
    let ae = tree.ae_path();
    ensure_acp(tree, binding, &ae_id, ACP, originators, PLATFORM_OPS).await?;
    ensure_acp(tree, binding, &ae_id, RESULTS_ACP, originators, RETRIEVE).await?;
    let acp_path = name::address(&[&cfg.cse_name, &cfg.ae_name, ACP]);
    match cfg.binding {
        // `check` refuses commands over CoAP; were they enabled, the polling channel is the way.
        BindingKind::Http | BindingKind::Coap => {
            let pch = Request::create_raw(
                &ae,
                &ae_id,
                rvi,
                ResourceType::PollingChannel,
                json!({"m2m:pch": {"rn": PCH}}),
            );
            let created = send(binding, pch).await?;
            if !created.rsc.is_success() {
                // An AE has one polling channel; ACME answers 4000 (not 4105) when it exists.
                let path = name::address(&[&cfg.cse_name, &cfg.ae_name, PCH]);
                let found = send(binding, Request::retrieve(path, &ae_id, rvi)).await?;
                if !found.rsc.is_success() {
                    expect_ok(created, "creating the polling channel")?;
                }
            }
        }
        BindingKind::Mqtt => {
            let broker = cfg
                .mqtt
                .as_ref()
                .map(|m| m.broker.clone())
                .unwrap_or_default();
            let update = Request {
                op: Operation::Update,
                pc: Some(json!({"m2m:ae": {"rr": true, "poa": [broker]}})),
                ..Request::retrieve(&ae, &ae_id, rvi)
            };
            expect_ok(
                send(binding, update).await?,
                "making the AE reachable over MQTT",
            )?;
        }
    }
    let mut containers = Containers::default();
    for device in devices {
        tree.ensure_container(device)
            .await
            .map_err(|o| format!("device container of {device}: {}", o.describe()))?;
        let parent = tree.container_path(device);
        let cnt = json!({"m2m:cnt": {"rn": COMMANDS, "acpi": [acp_path], "mni": COMMANDS_MNI}});
        let created = send(
            binding,
            Request::create_raw(&parent, &ae_id, rvi, ResourceType::Container, cnt),
        )
        .await?;
        let ri = if created.rsc == Rsc::CONFLICT {
            let path = tree.device_child_path(device, COMMANDS);
            let got = expect_ok(
                send(binding, Request::retrieve(path, &ae_id, rvi)).await?,
                "reading the command container",
            )?;
            ri_of(&got, "m2m:cnt")
        } else {
            ri_of(
                &expect_ok(created, "creating the command container")?,
                "m2m:cnt",
            )
        }
        .ok_or_else(|| format!("the command container of {device} has no resource id"))?;
        let sub = json!({"m2m:sub": {"rn": SUB, "nu": [ae_id], "enc": {"net": [3]}, "nct": 1}});
        let path = tree.device_child_path(device, COMMANDS);
        let created = send(
            binding,
            Request::create_raw(&path, &ae_id, rvi, ResourceType::Subscription, sub),
        )
        .await?;
        expect_ok_or_exists(created, "subscribing to the command container")?;
        containers.insert(ri, device.clone());
    }
    Ok(containers)
}

/// Creates the ACP `rn` under the AE (the originators get `ops`, the AE everything), or
/// updates it to the configured originators when it exists.
pub(crate) async fn ensure_acp(
    tree: &Tree,
    binding: &dyn Binding,
    ae_id: &str,
    rn: &str,
    originators: &[String],
    ops: u64,
) -> Result<(), SetupError> {
    let cfg = tree.config();
    let rvi = cfg.release.as_str();
    let pv = json!({"acr": [
        {"acor": originators, "acop": ops},
        {"acor": [ae_id], "acop": ALL_OPS},
    ]});
    let body = json!({"m2m:acp": {"rn": rn, "pv": pv,
        "pvs": {"acr": [{"acor": [ae_id], "acop": ALL_OPS}]}}});
    let req = Request::create_raw(
        tree.ae_path(),
        ae_id,
        rvi,
        ResourceType::AccessControlPolicy,
        body,
    );
    let created = send(binding, req).await?;
    if created.rsc != Rsc::CONFLICT {
        return expect_ok(created, &format!("creating the ACP {rn}")).map(|_| ());
    }
    let update = Request {
        op: Operation::Update,
        pc: Some(json!({"m2m:acp": {"pv": pv}})),
        ..Request::retrieve(
            name::address(&[&cfg.cse_name, &cfg.ae_name, rn]),
            ae_id,
            rvi,
        )
    };
    expect_ok(
        send(binding, update).await?,
        &format!("updating the ACP {rn}"),
    )
    .map(|_| ())
}

pub(crate) async fn send(binding: &dyn Binding, req: Request) -> Result<Response, SetupError> {
    let to = req.to.clone();
    binding.send(req).await.map_err(|e| format!("{to}: {e}"))
}

pub(crate) fn expect_ok(resp: Response, what: &str) -> Result<Response, SetupError> {
    if resp.rsc.is_success() {
        Ok(resp)
    } else {
        Err(format!(
            "{what}: {} {}",
            resp.rsc,
            resp.dbg.unwrap_or_default()
        ))
    }
}

pub(crate) fn expect_ok_or_exists(resp: Response, what: &str) -> Result<(), SetupError> {
    if resp.rsc == Rsc::CONFLICT {
        return Ok(());
    }
    expect_ok(resp, what).map(|_| ())
}

pub(crate) fn ri_of(resp: &Response, kind: &str) -> Option<String> {
    resp.pc
        .as_ref()?
        .get(kind)?
        .get("ri")?
        .as_str()
        .map(String::from)
}

/// The polling channel's `pcu` address.
pub fn pcu_path(tree: &Tree) -> String {
    let cfg = tree.config();
    name::address(&[&cfg.cse_name, &cfg.ae_name, PCH, "pcu"])
}
