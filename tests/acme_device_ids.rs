//! Odd device ids against a real ACME CSE over HTTP: `.`, `..`, `a/b`, `a?b`, `a#b`, a unicode
//! id, ids with spaces and a tab each land in the container docs/resource-layout.md names (the id's
//! mapped name, labelled `device/<id>`), next to normal devices, and nothing lands anywhere
//! else (not under another device, the AE or the CSEBase). Everything is checked at the CSE.
//! Run: `cargo test --test acme_device_ids -- --ignored`.
mod common;

use anyhow::{ensure, Context};
use common::northbound::acme::{self, Acme};
use common::northbound::mem_store::MemStore;
use common::northbound::*;
use std::collections::BTreeMap;
use std::time::Duration;

const EPOCH: &str = "d1d2d3d4";
const PER_DEVICE: u64 = 3;

/// (device id, container name at the CSE, its `device/…` label). The mapped names are written
/// out (not computed with the code under test): `<id with odd characters as _>~<first 12 hex
/// digits of SHA-256(id)>`.
const DEVICES: &[(&str, &str, Option<&str>)] = &[
    ("meter-1", "meter-1", None),
    // `a#b` used to be filed under `a`, `a/b` under `a`'s child `b`: both are real devices here.
    ("a", "a", None),
    ("a_b", "a_b", None),
    (".", ".~cdb4ee2aea69", Some("device/.")),
    ("..", "..~5ec1f7e700f3", Some("device/..")),
    ("a/b", "a_b~c14cddc033f6", Some("device/a/b")),
    ("a?b", "a_b~c2a7b64a2d25", Some("device/a?b")),
    ("a#b", "a_b~8187fc8f7f00", Some("device/a#b")),
    (
        "温度-sensor",
        "__-sensor~5bc831d419df",
        Some("device/温度-sensor"),
    ),
    ("pump 3", "pump_3~200dbf85257b", Some("device/pump 3")),
    // A label is an xs:token: ACME refuses tabs and double spaces in it.
    (
        "tab\there",
        "tab_here~5b8765931ded",
        Some(r"device/tab\u{9}here"),
    ),
    (
        "two  spaces ",
        "two__spaces_~aaf3890c4150",
        Some(r"device/two \u{20}spaces\u{20}"),
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the ACME CSE (tests/peers/acme.sh)"]
async fn odd_device_ids_land_in_their_documented_containers() -> anyhow::Result<()> {
    let acme = Acme::start().await?;
    let store = MemStore::new(EPOCH);
    let ids: Vec<&str> = DEVICES.iter().map(|(id, _, _)| *id).collect();
    let records = fill(&store, &ids, PER_DEVICE);
    let run = spawn_syncer(config(&acme.url), store.clone());
    let done = wait_for("all delivered", Duration::from_secs(20), || {
        store.pending_count() == 0
    })
    .await;
    let snap = run.state.snapshot();
    run.stop().await?;
    done.with_context(|| format!("{snap:?}\ndead letters: {:?}", store.dead_letters()))?;
    ensure!(
        store.dead_letters().is_empty(),
        "refused: {:?}",
        store.dead_letters()
    );
    assert_eq!(store.delivered().len(), records.len());

    let ae = format!("cse-in/{AE_NAME}");
    for (id, name, label) in DEVICES {
        let container = format!("{ae}/{name}");
        let (rsc, body) = acme::retrieve(&acme.url, &container, ORIGINATOR).await?;
        ensure!(rsc == 2000, "{id:?}: RETRIEVE {container}: {rsc} {body}");
        let cnt = &body["m2m:cnt"];
        ensure!(cnt["rn"] == *name, "{id:?}: rn {}", cnt["rn"]);
        match label {
            Some(label) => ensure!(
                cnt["lbl"] == serde_json::json!([label]),
                "{id:?}: lbl {}",
                cnt["lbl"]
            ),
            None => ensure!(cnt.get("lbl").is_none(), "{id:?}: lbl {}", cnt["lbl"]),
        }
        let cins = acme::cins_of(&acme.url, &container, ORIGINATOR).await?;
        let want: Vec<String> = records
            .iter()
            .filter(|r| r.record.device == *id)
            .map(|r| format!("{EPOCH}-{}", r.seq))
            .collect();
        let got: Vec<&str> = cins.iter().filter_map(|c| c["rn"].as_str()).collect();
        ensure!(got == want, "{id:?}: cins {got:?}, expected {want:?}");
        for cin in &cins {
            let con: serde_json::Value =
                serde_json::from_str(cin["con"].as_str().unwrap_or("null"))?;
            ensure!(con["device"] == *id, "{id:?}: record content {con}");
        }
    }

    // Nothing anywhere else: the only containers are the devices' (all directly under the
    // AE), and every contentInstance under the CSEBase is in its device's container.
    let containers = discover(&acme.url, "cse-in?fu=1&ty=3").await?;
    let mut want: Vec<String> = DEVICES
        .iter()
        .map(|(_, name, _)| format!("{ae}/{name}"))
        .collect();
    want.sort();
    ensure!(containers == want, "containers at the CSE: {containers:?}");
    let mut per_container: BTreeMap<String, u64> = BTreeMap::new();
    for uri in discover(&acme.url, "cse-in?fu=1&ty=4").await? {
        let (parent, _) = uri.rsplit_once('/').context("cin uri")?;
        *per_container.entry(parent.to_string()).or_default() += 1;
    }
    let expected: BTreeMap<String, u64> = want.into_iter().map(|c| (c, PER_DEVICE)).collect();
    ensure!(
        per_container == expected,
        "contentInstances per parent: {per_container:?}"
    );
    Ok(())
}

/// Discovery as the CSE admin: the structured addresses found, sorted.
async fn discover(url: &str, query: &str) -> anyhow::Result<Vec<String>> {
    let (rsc, body) = acme::retrieve(url, query, acme::ADMIN).await?;
    ensure!(rsc == 2000, "discovery {query}: {rsc} {body}");
    let mut uris: Vec<String> = body["m2m:uril"]
        .as_array()
        .context("no m2m:uril")?
        .iter()
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    uris.sort();
    Ok(uris)
}
