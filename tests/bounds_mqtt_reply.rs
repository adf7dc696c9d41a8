//! The MQTT binding against a real broker (mosquitto) and a responder that answers with a
//! 4 MiB payload: the binding refuses the packet from its header (`max_reply_bytes`, 1 MiB),
//! the request fails with a retryable error, and the next request after the reconnect works.

mod common;

use citygate::northbound::config::{BindingKind, MqttConfig};
use citygate::northbound::onem2m::primitive::{Request, Rsc};
use citygate::northbound::retry::{classify, Outcome};
use citygate::northbound::{Binding, MqttBinding, NorthboundConfig};
use common::mosquitto;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::time::Duration;

const HUGE: usize = 4 * 1024 * 1024;

/// Answers `cse-in/huge` with a HUGE `m2m:dbg`, anything else with a small one.
async fn responder(port: u16, ready: tokio::sync::oneshot::Sender<()>) {
    let mut opts = MqttOptions::new("C::id-in-huge", "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(5));
    opts.set_max_packet_size(2 * HUGE, 2 * HUGE);
    let (client, mut events) = AsyncClient::new(opts, 64);
    let mut ready = Some(ready);
    loop {
        let Ok(ev) = events.poll().await else {
            return;
        };
        match ev {
            Event::Incoming(Packet::ConnAck(_)) => {
                client
                    .subscribe("/oneM2M/req/+/id-in/#", QoS::AtLeastOnce)
                    .await
                    .unwrap();
            }
            Event::Incoming(Packet::SubAck(_)) => {
                if let Some(tx) = ready.take() {
                    let _ = tx.send(());
                }
            }
            Event::Incoming(Packet::Publish(p)) => {
                let req: serde_json::Value = serde_json::from_slice(&p.payload).unwrap();
                let topic = p.topic.replacen("/req/", "/resp/", 1);
                let dbg = if req["to"] == "cse-in/huge" {
                    "x".repeat(HUGE)
                } else {
                    "small".to_string()
                };
                let body = serde_json::json!({"rsc": 2000, "rqi": req["rqi"], "rvi": "3",
                    "pc": {"m2m:dbg": dbg}});
                client
                    .try_publish(topic, QoS::AtMostOnce, false, body.to_string())
                    .unwrap();
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs mosquitto"]
async fn a_reply_over_max_reply_bytes_is_refused_and_the_binding_recovers() {
    let Some(broker) = mosquitto::require() else {
        return;
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(responder(broker.port, tx));
    common::within(10, rx).await.unwrap();
    let mut cfg = NorthboundConfig::new("");
    cfg.binding = BindingKind::Mqtt;
    cfg.originator = "Cgw".into();
    cfg.request_timeout = Duration::from_secs(3);
    cfg.mqtt = Some(MqttConfig::new(format!("mqtt://127.0.0.1:{}", broker.port)));
    let binding = MqttBinding::new(&cfg).unwrap();

    let ok = common::within(
        10,
        binding.send(Request::retrieve("cse-in/small", "Cgw", "3")),
    )
    .await;
    assert_eq!(ok.expect("small reply").rsc, Rsc::OK);

    let huge = common::within(
        10,
        binding.send(Request::retrieve("cse-in/huge", "Cgw", "3")),
    )
    .await;
    let err = huge.as_ref().expect_err("a 4 MiB reply must be refused");
    let text = err.to_string();
    eprintln!("{text}");
    assert!(text.contains("max_reply_bytes"), "{text}");
    assert!(
        matches!(classify(&huge), Outcome::Retry { .. }),
        "{:?}",
        classify(&huge)
    );

    // The binding reconnects by itself; the next request is answered.
    let again = common::within(15, async {
        loop {
            match binding
                .send(Request::retrieve("cse-in/small", "Cgw", "3"))
                .await
            {
                Ok(r) => break r,
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    })
    .await;
    assert_eq!(again.rsc, Rsc::OK);
}
