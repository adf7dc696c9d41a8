//! Commands from the platform against a real ACME CSE: over the HTTP polling channel and over
//! MQTT (mosquitto), while the gateway was stopped, and from originators that may not
//! command. The platform side is a plain HTTP client; the device is a recording command
//! target (the Modbus and LoRaWAN executors have their own tests). Run:
//! `cargo test --test commands_acme -- --ignored --test-threads=1`
mod common;

use citygate::northbound::config::{BindingKind, MqttConfig};
use citygate::northbound::serialization::Serialization;
use common::commands::*;
use common::mosquitto;
use common::northbound::acme::Acme;
use common::northbound::config;
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// The platform creates commands; the device gets each once and `done` appears in `results`;
/// a command from an originator outside the ACP is refused by the CSE; one without a recorded
/// creator and a malformed one are rejected by the gateway with a reason.
async fn commands_flow(
    url: &str,
    cfg: citygate::northbound::NorthboundConfig,
) -> anyhow::Result<()> {
    register_platform(url).await?;
    let dir = tempfile::tempdir()?;
    let gw = Gateway::start(&cfg, dir.path(), target());
    wait_commands_ready(url, WAIT).await?;
    for level in [10, 20, 30] {
        let (rsc, _, _) = create_command(
            url,
            PLATFORM,
            json!({"id": format!("dim-{level}"), "set": {"dim_level": level}}),
            true,
        )
        .await?;
        assert_eq!(rsc, 2001);
    }
    let (rsc, _, _) = create_command(
        url,
        "Cintruder",
        json!({"id": "evil", "set": {"dim_level": 100}}),
        true,
    )
    .await?;
    assert_eq!(rsc, 4103, "the ACP lets only the platform create commands");
    create_command(
        url,
        PLATFORM,
        json!({"id": "anon", "set": {"dim_level": 1}}),
        false,
    )
    .await?;
    create_command(
        url,
        PLATFORM,
        json!({"id": "ro", "set": {"status": 1}}),
        true,
    )
    .await?;
    let results = wait_results(url, 5, WAIT).await?;
    let outcomes: Vec<(&str, &str)> = results
        .iter()
        .map(|r| (meta(r, "id"), meta(r, "outcome")))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("dim-10", "done"),
            ("dim-20", "done"),
            ("dim-30", "done"),
            ("anon", "rejected"),
            ("ro", "rejected")
        ]
    );
    assert_eq!(results[2]["values"]["dim_level"], 30, "the read-back");
    assert!(
        meta(&results[3], "reason").contains("no creator (cr)"),
        "{}",
        results[3]
    );
    assert!(
        meta(&results[4], "reason").contains("not writable"),
        "{}",
        results[4]
    );
    // Nothing more arrives: each instance was executed once, though catch-up (every second)
    // saw every one of them too.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let levels: Vec<_> = gw
        .target
        .executed()
        .iter()
        .map(|e| e.command.id.clone())
        .collect();
    assert_eq!(levels, ["dim-10", "dim-20", "dim-30"]);
    assert_eq!(common::commands::results(url).await?.len(), 5);
    gw.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the ACME CSE (tests/peers/acme.sh)"]
async fn commands_over_the_http_polling_channel() -> anyhow::Result<()> {
    let acme = Acme::start().await?;
    commands_flow(&acme.url, enable(config(&acme.url))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs mosquitto and the ACME CSE (tests/peers/acme.sh)"]
async fn commands_over_mqtt() -> anyhow::Result<()> {
    commands_over_mqtt_in(Serialization::Json).await
}

/// The same with `serialization = "cbor"`: requests, notifications and their answers as CBOR.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs mosquitto and the ACME CSE (tests/peers/acme.sh)"]
async fn commands_over_mqtt_cbor() -> anyhow::Result<()> {
    commands_over_mqtt_in(Serialization::Cbor).await
}

async fn commands_over_mqtt_in(serialization: Serialization) -> anyhow::Result<()> {
    let Some(broker) = mosquitto::require() else {
        return Ok(());
    };
    let acme = Acme::start_mqtt(broker.port).await?;
    let mut cfg = config("");
    cfg.binding = BindingKind::Mqtt;
    cfg.serialization = serialization;
    cfg.mqtt = Some(MqttConfig::new(format!("mqtt://127.0.0.1:{}", broker.port)));
    commands_flow(&acme.url, enable(cfg)).await
}

/// Commands created while the gateway is stopped: executed once on start, or `expired`
/// when past `not_after`; a command handled before the stop is not executed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the ACME CSE (tests/peers/acme.sh)"]
async fn commands_created_while_stopped_run_once_on_start() -> anyhow::Result<()> {
    let acme = Acme::start().await?;
    let url = acme.url.as_str();
    register_platform(url).await?;
    let cfg = enable(config(url));
    let dir = tempfile::tempdir()?;
    let gw = Gateway::start(&cfg, dir.path(), target());
    wait_commands_ready(url, WAIT).await?;
    create_command(
        url,
        PLATFORM,
        json!({"id": "before", "set": {"dim_level": 5}}),
        true,
    )
    .await?;
    wait_results(url, 1, WAIT).await?;
    gw.stop().await;

    create_command(
        url,
        PLATFORM,
        json!({"id": "offline", "set": {"pulse": 1}}),
        true,
    )
    .await?;
    create_command(
        url,
        PLATFORM,
        json!({"id": "too-late", "set": {"dim_level": 50}, "not_after": "2020-01-01T00:00:00Z"}),
        true,
    )
    .await?;
    let gw = Gateway::start(&cfg, dir.path(), target());
    let results = wait_results(url, 3, WAIT).await?;
    let outcomes: Vec<(&str, &str)> = results
        .iter()
        .map(|r| (meta(r, "id"), meta(r, "outcome")))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("before", "done"),
            ("offline", "done"),
            ("too-late", "expired")
        ]
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ids: Vec<_> = gw
        .target
        .executed()
        .iter()
        .map(|e| e.command.id.clone())
        .collect();
    assert_eq!(
        ids,
        ["offline"],
        "the restarted gateway executes only the new command"
    );
    gw.stop().await;
    Ok(())
}
