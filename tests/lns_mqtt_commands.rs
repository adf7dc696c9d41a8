//! Commands through `lorawan_lns_mqtt` at a real broker (Debian's mosquitto): the downlink is
//! published on ChirpStack v4's `application/<id>/device/<dev_eui>/command/down` with its JSON,
//! and the command is `done` ("queued at the network server") once the broker acknowledged it.

mod common;

use citygate::commands::{Action, Command, CommandJob, CommandRegistry, Downlink, Outcome};
use citygate::southbound::lorawan::{LnsMqttAdapter, LnsMqttConfig};
use citygate::southbound::Adapter;
use citygate::telemetry::LorawanMetrics;
use common::mosquitto;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const APP_ID: &str = "7f0c1ab2-55e3-4d3a-9a51-6a1d2b3c4d5e";

#[tokio::test]
#[ignore = "needs mosquitto (tests/run.sh installs it)"]
async fn chirpstack_downlink_topic_and_json_at_the_broker() {
    let Some(broker) = mosquitto::require() else {
        return;
    };
    let url = format!("mqtt://127.0.0.1:{}", broker.port);
    downlink_through(&url, broker.port, "").await;
}

/// The same over `mqtts://` with the CA from `ca_file` (the broker's certificate is signed by a
/// test CA made with openssl).
#[tokio::test]
#[ignore = "needs mosquitto and openssl (tests/run.sh installs them)"]
async fn chirpstack_downlink_over_mqtts() {
    if mosquitto::binary().is_none() {
        assert!(
            std::env::var_os("CITYGATE_REQUIRE_PEERS").is_none(),
            "mosquitto missing"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = common::northbound::acme::Pki::new(dir.path()).unwrap();
    let (cert, key) = pki.leaf("broker", "serverAuth").unwrap();
    let broker = mosquitto::Mosquitto::start_tls(cert, key).unwrap();
    let url = format!("mqtts://127.0.0.1:{}", broker.port);
    let extra = format!("ca_file = {:?}\n", pki.ca_cert);
    downlink_through(&url, broker.plain_port, &extra).await;
}

/// Sends one command through an adapter connected to `url`; checks what a subscriber on the
/// broker's plain port `ns_port` receives, and the outcome.
async fn downlink_through(url: &str, ns_port: u16, extra: &str) {
    // The network server's side: subscribed to the command topic.
    let mut opts = MqttOptions::new("test-chirpstack", "127.0.0.1", ns_port);
    opts.set_keep_alive(Duration::from_secs(5));
    let (ns, mut ns_events) = AsyncClient::new(opts, 10);
    ns.subscribe("application/+/device/+/command/down", QoS::AtLeastOnce)
        .await
        .unwrap();
    common::within(10, async {
        loop {
            if let Ok(Event::Incoming(Packet::SubAck(_))) = ns_events.poll().await {
                break;
            }
        }
    })
    .await;

    let cfg: LnsMqttConfig = toml::from_str(&format!(
        "broker = \"{url}\"\nflavour = \"chirpstack\"\ncommands = true\n{extra}\
         application_id = \"{APP_ID}\"\n[[devices]]\ndev_eui = \"0004A30B001C0530\"\n\
         downlink = {{ fports = [10], confirmed = true }}\n"
    ))
    .unwrap();
    assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
    let registry = CommandRegistry::new();
    let mut adapter = LnsMqttAdapter::new("lns", &cfg, LorawanMetrics::detached())
        .unwrap()
        .with_commands(&registry);
    let sink = common::Sink::new();
    let token = CancellationToken::new();
    let task = {
        let (out, token) = (sink.sender(), token.clone());
        tokio::spawn(async move { adapter.run(&out, &token).await })
    };
    let target = registry.get("0004a30b001c0530").expect("registered");
    let command = Command {
        key: "cin-1".into(),
        id: "valve-7".into(),
        device: "0004a30b001c0530".into(),
        action: Action::Downlink(Downlink {
            fport: 10,
            payload: vec![0x01, 0xff],
            confirmed: true,
        }),
        created_ms: citygate::record::now_ms(),
        not_after_ms: Some(citygate::record::now_ms() + 60_000),
        creator: "Cplatform".into(),
    };
    assert!(target.check(&command).is_ok());
    let (done, outcome) = tokio::sync::oneshot::channel();
    target.submit(CommandJob { command, done }).unwrap();

    let publish = common::within(10, async {
        loop {
            if let Ok(Event::Incoming(Packet::Publish(p))) = ns_events.poll().await {
                return p;
            }
        }
    })
    .await;
    assert_eq!(
        publish.topic,
        format!("application/{APP_ID}/device/0004a30b001c0530/command/down")
    );
    let json: serde_json::Value = serde_json::from_slice(&publish.payload).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"devEui": "0004a30b001c0530", "confirmed": true, "fPort": 10, "data": "Af8="})
    );
    match common::within(10, outcome).await.unwrap() {
        Outcome::Done { read_back } => assert_eq!(
            read_back["queued_at"],
            citygate::record::Value::Str("network_server".into())
        ),
        other => panic!("{other:?}"),
    }
    token.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
}
