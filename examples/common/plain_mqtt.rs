//! A plain oneM2M MQTT client for the benchmarks' ceilings, independent of the binding under
//! test: connected, subscribed to its response topic, ready to publish requests. Included with
//! `#[path]` by each benchmark that measures an MQTT ceiling.

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};

/// Connects as MQTT client `client_id`, subscribes to the responses for originator `orig`
/// (QoS 0, TCP_NODELAY) and waits for the SUBACK. Returns the client, its event loop and the
/// request topic towards the CSE `id-in`.
pub async fn connect(
    host: &str,
    port: u16,
    client_id: String,
    orig: &str,
) -> anyhow::Result<(AsyncClient, EventLoop, String)> {
    let mut opts = MqttOptions::new(client_id, host, port);
    opts.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut el) = AsyncClient::new(opts, 16);
    let mut net = el.network_options();
    net.set_tcp_nodelay(true);
    el.set_network_options(net);
    client
        .subscribe(format!("/oneM2M/resp/{orig}/+/#"), QoS::AtMostOnce)
        .await?;
    while !matches!(el.poll().await?, Event::Incoming(Packet::SubAck(_))) {}
    Ok((client, el, format!("/oneM2M/req/{orig}/id-in/json")))
}
