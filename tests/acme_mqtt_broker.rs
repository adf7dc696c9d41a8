//! The MQTT binding against a real broker (Debian's mosquitto) and a scripted responder in
//! place of the CSE: responses are matched by `rqi` even when they come back in reverse order,
//! several requests are in flight at once, an unanswered request times out (a PUBACK is not a
//! response), and a CSE-assigned registration goes over `reg_req`/`reg_resp`.
//! Run: `cargo test --test acme_mqtt_broker -- --ignored --test-threads=1`.
mod common;

use citygate::northbound::config::{BindingKind, MqttConfig};
use citygate::northbound::onem2m::primitive::{Request, Rsc};
use citygate::northbound::onem2m::resource::{Ae, Resource};
use citygate::northbound::{Binding, BindingError, MqttBinding, NorthboundConfig};
use common::mosquitto;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::time::{Duration, Instant};

const BATCH: usize = 6;

/// A fake CSE: collects BATCH requests, then answers them in reverse order (rsc 2000, the
/// request's `to` echoed in `pc`); requests to `cse-in/silent` are never answered; a
/// registration on `reg_req` is answered on `reg_resp` with an assigned AE-ID.
async fn fake_cse(port: u16, ready: tokio::sync::oneshot::Sender<()>) {
    let mut opts = MqttOptions::new("C::id-in-fake", "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut events) = AsyncClient::new(opts, 64);
    let mut ready = Some(ready);
    let mut held: Vec<(String, serde_json::Value)> = Vec::new();
    loop {
        let Ok(ev) = events.poll().await else {
            return;
        };
        match ev {
            Event::Incoming(Packet::ConnAck(_)) => {
                for t in ["/oneM2M/req/+/id-in/#", "/oneM2M/reg_req/+/id-in/#"] {
                    client.subscribe(t, QoS::AtLeastOnce).await.unwrap();
                }
            }
            Event::Incoming(Packet::SubAck(_)) => {
                if let Some(tx) = ready.take() {
                    let _ = tx.send(());
                }
            }
            Event::Incoming(Packet::Publish(p)) => {
                let req: serde_json::Value = serde_json::from_slice(&p.payload).unwrap();
                let resp_topic = p
                    .topic
                    .replacen("/reg_req/", "/reg_resp/", 1)
                    .replacen("/req/", "/resp/", 1);
                if p.topic.contains("/reg_req/") {
                    let body = serde_json::json!({"rsc": 2001, "rqi": req["rqi"], "rvi": "3",
                        "pc": {"m2m:ae": {"rn": "gw", "api": "Ncitygate", "aei": "CAssigned1", "ri": "CAssigned1"}}});
                    client
                        .try_publish(resp_topic, QoS::AtLeastOnce, false, body.to_string())
                        .unwrap();
                    continue;
                }
                if req["to"] == "cse-in/silent" {
                    continue;
                }
                held.push((resp_topic, req));
                if held.len() == BATCH {
                    for (topic, req) in held.drain(..).rev() {
                        let body = serde_json::json!({"rsc": 2000, "rqi": req["rqi"], "rvi": "3",
                            "to": req["fr"], "fr": "/id-in", "pc": {"m2m:dbg": req["to"]}});
                        client
                            .try_publish(topic, QoS::AtLeastOnce, false, body.to_string())
                            .unwrap();
                    }
                }
            }
            _ => {}
        }
    }
}

fn config(port: u16, originator: &str) -> NorthboundConfig {
    let mut cfg = NorthboundConfig::new("");
    cfg.binding = BindingKind::Mqtt;
    cfg.originator = originator.into();
    cfg.ae_name = "gw".into();
    cfg.request_timeout = Duration::from_secs(2);
    cfg.mqtt = Some(MqttConfig::new(format!("mqtt://127.0.0.1:{port}")));
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs mosquitto"]
async fn responses_matched_by_rqi_out_of_order() {
    let Some(broker) = mosquitto::require() else {
        return;
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    let responder = tokio::spawn(fake_cse(broker.port, tx));
    tokio::time::timeout(Duration::from_secs(10), rx)
        .await
        .unwrap()
        .unwrap();
    let binding = std::sync::Arc::new(MqttBinding::new(&config(broker.port, "Cgw")).unwrap());

    // BATCH requests in flight at once, answered in reverse order: each gets its own answer.
    let mut tasks = Vec::new();
    for i in 0..BATCH {
        let b = binding.clone();
        tasks.push(tokio::spawn(async move {
            b.send(Request::retrieve(format!("cse-in/gw/dev-{i}"), "Cgw", "3"))
                .await
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        let resp = t.await.unwrap().expect("answered");
        assert_eq!(resp.rsc, Rsc::OK);
        assert_eq!(
            resp.dbg.as_deref(),
            Some(format!("cse-in/gw/dev-{i}").as_str())
        );
    }
    assert!(binding.is_connected());

    // The broker accepts (PUBACKs) a request nobody answers: that is a timeout, not success.
    let start = Instant::now();
    let r = binding
        .send(Request::retrieve("cse-in/silent", "Cgw", "3"))
        .await;
    assert!(matches!(r, Err(BindingError::Timeout(_))), "{r:?}");
    assert!(start.elapsed() >= Duration::from_secs(2) && start.elapsed() < Duration::from_secs(4));

    // Registration with a CSE-assigned AE-ID goes on reg_req and is answered on reg_resp.
    let reg_binding = MqttBinding::new(&config(broker.port, "C")).unwrap();
    let ae = Resource::Ae(Ae {
        rn: Some("gw".into()),
        api: "Ncitygate".into(),
        rr: false,
        srv: vec!["3".into()],
        lbl: None,
        aei: None,
        common: Default::default(),
    });
    let resp = reg_binding
        .send(Request::create("cse-in", "C", "3", &ae))
        .await
        .expect("registration answered");
    assert_eq!(resp.rsc, Rsc::CREATED);
    let pc = resp.pc.expect("AE in the response");
    assert_eq!(pc["m2m:ae"]["aei"], "CAssigned1", "{pc}");
    responder.abort();
}
