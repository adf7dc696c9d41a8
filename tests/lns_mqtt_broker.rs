//! The `lorawan_lns_mqtt` adapter against a real broker (Debian's mosquitto): ChirpStack v4
//! uplinks become records once (deduplicated on `deduplicationId`), and after a broker restart
//! the adapter resubscribes and keeps receiving.

mod common;

use citygate::southbound::lorawan::{LnsMqttAdapter, LnsMqttConfig};
use citygate::southbound::Adapter;
use citygate::telemetry::LorawanMetrics;
use common::mosquitto;
use rumqttc::{AsyncClient, MqttOptions, QoS};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn vectors() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/lns_integrations.json"
    ))
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let payload = match &c["payload"] {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (c["topic"].as_str().unwrap().to_owned(), payload)
        })
        .collect()
}

async fn publish(port: u16, topic: &str, payload: &str) {
    let mut opts = MqttOptions::new(format!("test-pub-{}", rand_suffix()), "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut el) = AsyncClient::new(opts, 10);
    client
        .publish(topic, QoS::AtLeastOnce, false, payload.as_bytes().to_vec())
        .await
        .unwrap();
    // Drive the event loop until the PUBACK arrives.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ev = tokio::time::timeout_at(deadline, el.poll())
            .await
            .expect("puback in time");
        if let Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) = ev {
            break;
        }
    }
    let _ = client.disconnect().await;
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

async fn wait_records(sink: &common::Sink, n: usize) -> Vec<citygate::record::Record> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let r = sink.records().await;
        if r.len() >= n || tokio::time::Instant::now() > deadline {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
#[ignore = "needs mosquitto (tests/run.sh installs it)"]
async fn chirpstack_uplinks_through_a_real_broker_once_and_after_restart() {
    let Some(mut broker) = mosquitto::require() else {
        return;
    };
    let cfg: LnsMqttConfig = toml::from_str(&format!(
        "broker = \"mqtt://127.0.0.1:{}\"\nflavour = \"chirpstack\"\ncodec = {{ type = \"cayenne_lpp\" }}\n",
        broker.port
    ))
    .unwrap();
    assert!(cfg.validate().is_empty());
    let mut adapter = LnsMqttAdapter::new("lns", &cfg, LorawanMetrics::detached()).unwrap();
    let sink = common::Sink::new();
    let token = CancellationToken::new();
    let task = {
        let (out, token) = (sink.sender(), token.clone());
        tokio::spawn(async move { adapter.run(&out, &token).await })
    };
    tokio::time::sleep(Duration::from_millis(700)).await; // connect + subscribe

    // Both shared payloads carry the same deduplicationId: one record.
    let v = vectors();
    assert_eq!(v.len(), 2);
    for (topic, payload) in &v {
        publish(broker.port, topic, payload).await;
    }
    let records = wait_records(&sink, 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let records_after = sink.records().await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(
        records_after.len(),
        1,
        "the duplicate must not become a record"
    );
    assert_eq!(records[0].device, "0004a30b001c0530");
    assert!(!records[0].values.is_empty(), "{:?}", records[0]);

    // Broker restart: the adapter reconnects and resubscribes by itself.
    broker.restart();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (topic, payload) = &v[0];
    let next = payload.replace(
        "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
        "11111111-2222-3333-4444-555555555555",
    );
    let mut delivered = false;
    for _ in 0..10 {
        publish(broker.port, topic, &next).await;
        if wait_records(&sink, 2).await.len() >= 2 {
            delivered = true;
            break;
        }
    }
    assert!(
        delivered,
        "no record after the broker restart (not resubscribed?)"
    );
    assert_eq!(sink.records().await.len(), 2);

    token.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
}
