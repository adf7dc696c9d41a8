//! The fleet bench over MQTT (TS-0010): the peers (mosquitto and ACME with its MQTT binding,
//! started by the same helpers as the tests), a counting TCP relay between the gateways and the
//! broker, and a plain MQTT client that measures ACME's MQTT ceiling through that relay.
//! Part of `examples/fleet_proxy.rs` (see benches/fleet/README.md).
//!
//! The relay forwards bytes unchanged in both directions and reads the MQTT packets on the way:
//! a PUBLISH on a `/oneM2M/req/…` or `reg_req` topic is a request (its `rqi`, `op`, `ty`
//! remembered), a PUBLISH on `resp`/`reg_resp` with the same `rqi` on the same connection is its
//! answer: one CSV line like the HTTP proxy's, with an empty HTTP `status`. Requests still
//! unanswered when a connection ends are logged as `abandoned`.
use crate::{acme, mosquitto};
use rumqttc::{AsyncClient, Event, EventLoop, Packet, QoS};
use serde_json::json;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

/// Requests seen on one connection and not answered yet: `rqi` -> (origin, op, sent at).
type Pending = Arc<Mutex<HashMap<String, (String, String, Instant)>>>;

/// Starts mosquitto and ACME with its MQTT binding, prints `HTTP_URL BROKER_PORT` and keeps
/// both until SIGTERM or Ctrl-C (then both are stopped by their helpers).
pub async fn run_peers() -> anyhow::Result<()> {
    let broker = mosquitto::Mosquitto::start()
        .ok_or_else(|| anyhow::anyhow!("cannot start mosquitto (apt-get install mosquitto)"))?;
    let cse = acme::Acme::start_mqtt(broker.port).await?;
    println!("{} {}", cse.url, broker.port);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    drop(cse);
    drop(broker);
    Ok(())
}

/// The relay: listens on `listen` and forwards to `upstream`. In `refuse` mode `up` false
/// closes the listener and every open connection (the broker gone, connections refused). In
/// `blackhole` mode (a network partition) connections stay open and new ones are accepted, but
/// no byte moves either way until `up` is true again: the bytes are delayed as TCP would delay
/// them, not lost, and whichever end gives up first (a keep-alive, a request timeout) closes.
pub async fn relay(
    listen: SocketAddr,
    upstream: String,
    up: watch::Receiver<bool>,
    blackhole: bool,
    log: mpsc::UnboundedSender<String>,
) -> anyhow::Result<()> {
    let mut ctl = up.clone();
    loop {
        let listener = TcpListener::bind(listen).await?;
        loop {
            tokio::select! {
                acc = listener.accept() => {
                    let (sock, _) = acc?;
                    let link = Link { up: up.clone(), blackhole };
                    tokio::spawn(connection(sock, upstream.clone(), link, log.clone()));
                }
                _ = ctl.wait_for(|u| !*u), if !blackhole => break,
            }
        }
        drop(listener);
        ctl.wait_for(|u| *u).await?;
    }
}

/// The platform's state as one connection sees it.
#[derive(Clone)]
struct Link {
    up: watch::Receiver<bool>,
    blackhole: bool,
}

impl Link {
    /// Returns when bytes may move: at once while the platform is up; in a partition, when it
    /// is back.
    async fn passable(&mut self) {
        if self.blackhole {
            let _ = self.up.wait_for(|u| *u).await;
        }
    }

    /// Returns when the connection is cut: the platform going down in `refuse` mode (never in
    /// a partition, which cuts nothing by itself).
    async fn cut(&mut self) {
        if self.blackhole {
            std::future::pending::<()>().await;
        }
        let _ = self.up.wait_for(|u| !*u).await;
    }
}

async fn connection(
    client: TcpStream,
    upstream: String,
    mut link: Link,
    log: mpsc::UnboundedSender<String>,
) {
    // In a partition a new connection reaches nothing until it heals.
    link.passable().await;
    let Ok(server) = TcpStream::connect(&upstream).await else {
        return;
    };
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    let pending: Pending = Arc::default();
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    tokio::select! {
        _ = pump(cr, sw, true, link.clone(), pending.clone(), log.clone()) => {}
        _ = pump(sr, cw, false, link.clone(), pending.clone(), log.clone()) => {}
        _ = link.cut() => {}
    }
    let left: Vec<_> = pending
        .lock()
        .map(|mut p| p.drain().collect())
        .unwrap_or_default();
    for (_, (origin, op, started)) in left {
        let _ = log.send(format!(
            "{},{origin},{op},0,abandoned,{}\n",
            crate::now_ms(),
            started.elapsed().as_millis()
        ));
    }
}

/// Copies `r` to `w` and reads the MQTT packets passing by (`to_broker`: the gateway's side).
async fn pump(
    mut r: OwnedReadHalf,
    mut w: OwnedWriteHalf,
    to_broker: bool,
    mut link: Link,
    pending: Pending,
    log: mpsc::UnboundedSender<String>,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 16 << 10];
    let mut acc: Vec<u8> = Vec::new();
    loop {
        link.passable().await;
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        // Bytes read just before a partition are held with the rest.
        link.passable().await;
        w.write_all(&buf[..n]).await?;
        acc.extend_from_slice(&buf[..n]);
        let mut off = 0;
        while let Some((len, hdr)) = packet_at(&acc[off..]) {
            let pkt = &acc[off..off + len];
            if pkt[0] >> 4 == 3 {
                on_publish(pkt[0], &pkt[hdr..], to_broker, &pending, &log);
            }
            off += len;
        }
        acc.drain(..off);
        if acc.len() > 8 << 20 {
            // Not MQTT as this reader understands it: keep relaying, stop reading.
            acc.clear();
        }
    }
}

/// The length of the complete packet at the start of `b` and of its fixed header.
fn packet_at(b: &[u8]) -> Option<(usize, usize)> {
    let mut len = 0usize;
    for i in 0..4 {
        let byte = *b.get(1 + i)?;
        len |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            let total = 2 + i + len;
            return (b.len() >= total).then_some((total, 2 + i));
        }
    }
    None
}

fn on_publish(
    flags: u8,
    body: &[u8],
    to_broker: bool,
    pending: &Pending,
    log: &mpsc::UnboundedSender<String>,
) {
    let Some(tl) = body
        .get(..2)
        .map(|t| usize::from(u16::from_be_bytes([t[0], t[1]])))
    else {
        return;
    };
    let Some(topic) = body
        .get(2..2 + tl)
        .and_then(|t| std::str::from_utf8(t).ok())
    else {
        return;
    };
    let skip = 2 + tl + if (flags >> 1) & 3 > 0 { 2 } else { 0 };
    let Some(v) = body
        .get(skip..)
        .and_then(|p| serde_json::from_slice::<serde_json::Value>(p).ok())
    else {
        return;
    };
    let levels: Vec<&str> = topic.split('/').collect();
    let (Some(kind), Some(origin)) = (levels.get(2), levels.get(3)) else {
        return;
    };
    let rqi = v["rqi"].as_str().unwrap_or("").to_string();
    let Ok(mut p) = pending.lock() else { return };
    match (*kind, to_broker) {
        ("req" | "reg_req", true) => {
            let op = match (v["op"].as_u64(), v["ty"].as_u64()) {
                (Some(1), Some(2)) => "ae".to_string(),
                (Some(1), Some(3)) => "cnt".to_string(),
                (Some(1), Some(4)) => "cin".to_string(),
                (Some(1), Some(t)) => format!("ty{t}"),
                (Some(2), _) => "get".to_string(),
                (Some(3), _) => "put".to_string(),
                (Some(4), _) => "delete".to_string(),
                (o, _) => format!("op{}", o.unwrap_or(0)),
            };
            p.insert(rqi, (origin.replace(',', "_"), op, Instant::now()));
        }
        ("resp" | "reg_resp", false) => {
            if let Some((origin, op, started)) = p.remove(&rqi) {
                let rsc = v["rsc"]
                    .as_u64()
                    .map(|r| r.to_string())
                    .or_else(|| v["rsc"].as_str().map(str::to_string))
                    .unwrap_or_else(|| "0".into());
                let _ = log.send(format!(
                    "{},{origin},{op},,{rsc},{}\n",
                    crate::now_ms(),
                    started.elapsed().as_millis()
                ));
            }
        }
        _ => {}
    }
}

/// Publishes one request primitive and waits for its response; returns its `rsc`.
async fn call(
    client: &AsyncClient,
    el: &mut EventLoop,
    topic: &str,
    req: serde_json::Value,
) -> anyhow::Result<u64> {
    let rqi = req["rqi"].clone();
    client
        .publish(topic, QoS::AtMostOnce, false, serde_json::to_vec(&req)?)
        .await?;
    loop {
        if let Event::Incoming(Packet::Publish(p)) = el.poll().await? {
            let v: serde_json::Value = serde_json::from_slice(&p.payload)?;
            if v["rqi"] == rqi {
                return Ok(v["rsc"].as_u64().unwrap_or(0));
            }
        }
    }
}

/// One stream of the ceiling: its own AE and container, one request in flight (QoS 0, what a
/// plain paho loop does) until `end`; returns the creates done.
async fn stream(
    broker: SocketAddr,
    name: String,
    start: Instant,
    end: Instant,
) -> anyhow::Result<u64> {
    let orig = format!("C{name}");
    let (client, mut el, topic) =
        crate::plain_mqtt::connect(&broker.ip().to_string(), broker.port(), name.clone(), &orig)
            .await?;
    let req = |rqi: String, to: String, ty: u8, pc: serde_json::Value| json!({"op": 1, "fr": orig, "rqi": rqi, "rvi": "3", "to": to, "ty": ty, "pc": pc});
    let ae = json!({"m2m:ae": {"rn": name, "api": "Nbench", "rr": false, "srv": ["3"]}});
    let rsc = call(
        &client,
        &mut el,
        &topic,
        req("ae".into(), "cse-in".into(), 2, ae),
    )
    .await?;
    anyhow::ensure!(rsc == 2001, "{name}: AE create answered {rsc}");
    let cnt = json!({"m2m:cnt": {"rn": "dev-0"}});
    let to = format!("cse-in/{name}");
    let rsc = call(&client, &mut el, &topic, req("cnt".into(), to, 3, cnt)).await?;
    anyhow::ensure!(rsc == 2001, "{name}: container create answered {rsc}");
    tokio::time::sleep_until(start.into()).await;
    let mut n = 0u64;
    while Instant::now() < end {
        let con = json!({"device": "dev-0", "seq": n, "values": {"v": n}}).to_string();
        let cin =
            json!({"m2m:cin": {"rn": format!("s-{n}"), "cnf": "application/json:0", "con": con}});
        let to = format!("cse-in/{name}/dev-0");
        let rsc = call(
            &client,
            &mut el,
            &topic,
            req(format!("{name}-{n}"), to, 4, cin),
        )
        .await?;
        anyhow::ensure!(rsc == 2001, "{name}: create answered {rsc}");
        n += 1;
    }
    let _ = client.disconnect().await;
    Ok(n)
}

/// ACME's MQTT ceiling through the relay: `concurrency` plain clients for `seconds`.
/// Prints `creates/s`.
pub async fn run_saturate(args: &[String]) -> anyhow::Result<()> {
    let broker: SocketAddr = crate::arg(args, "--broker")
        .ok_or_else(|| anyhow::anyhow!("--broker HOST:PORT"))?
        .parse()?;
    let seconds: f64 = crate::arg(args, "--seconds").map_or(Ok(20.0), |s| s.parse())?;
    let conc: usize = crate::arg(args, "--concurrency").map_or(Ok(4), |s| s.parse())?;
    let tag = crate::arg(args, "--tag").unwrap_or_else(|| "a".into());
    // Setting up each stream (AE, container) is outside the measured window.
    let start = Instant::now() + Duration::from_secs(3);
    let end = start + Duration::from_secs_f64(seconds);
    let tasks: Vec<_> = (0..conc)
        .map(|d| tokio::spawn(stream(broker, format!("saturate-{tag}-{d}"), start, end)))
        .collect();
    let mut done = 0;
    for t in tasks {
        done += t.await??;
    }
    let elapsed = start.elapsed().as_secs_f64().max(seconds);
    println!("{:.1}", done as f64 / elapsed);
    Ok(())
}
