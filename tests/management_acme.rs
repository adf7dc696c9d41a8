//! Device management against a real ACME CSE: a platform-side client (the admin originator)
//! reads the gateway's node, its mgmtObjs and the field devices' nodes. Run:
//! `cargo test --test management_acme -- --ignored --test-threads=1`.
mod common;

use citygate::management::{Management, ManagementConfig};
use citygate::northbound::onem2m::primitive::{Request, Response};
use citygate::northbound::{Binding, BindingError, HttpBinding, NorthboundConfig, Syncer};
use citygate::southbound::modbus::ModbusAdapter;
use citygate::southbound::replay::{ReplayAdapter, ReplayConfig};
use citygate::southbound::Adapter;
use citygate::telemetry::problem_log::ProblemLog;
use citygate::telemetry::{Metrics, ModbusMetrics, ReplayMetrics, SyncMetrics};
use common::modbus::{sdm630_unit, start_tcp, Sim};
use common::northbound::acme::{self, grant_node_creation, Acme, ADMIN};
use common::northbound::mem_store::MemStore;
use common::northbound::{config, AE_NAME, ORIGINATOR};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Counts the requests the management publisher sends (each one reaches the CSE).
struct Counting {
    inner: Arc<dyn Binding>,
    sent: AtomicU64,
}

#[async_trait::async_trait]
impl Binding for Counting {
    async fn send(&self, req: Request) -> Result<Response, BindingError> {
        self.sent.fetch_add(1, Ordering::SeqCst);
        self.inner.send(req).await
    }
}

struct Gateway {
    metrics: Metrics,
    binding: Arc<Counting>,
    cancel: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Gateway {
    /// The syncer (registers the AE) and the management publisher over HTTP, as `citygate
    /// run` wires them.
    fn start(url: &str, mcfg: ManagementConfig, metrics: Metrics, problems: ProblemLog) -> Gateway {
        let cfg: NorthboundConfig = config(url);
        let binding: Arc<dyn Binding> = Arc::new(HttpBinding::new(&cfg).expect("binding"));
        Gateway::start_with(cfg, binding, mcfg, metrics, problems)
    }

    /// Both share one binding (one MQTT connection), as in `runtime::northbound`.
    fn start_with(
        cfg: NorthboundConfig,
        inner: Arc<dyn Binding>,
        mcfg: ManagementConfig,
        metrics: Metrics,
        problems: ProblemLog,
    ) -> Gateway {
        let binding = Arc::new(Counting {
            inner: inner.clone(),
            sent: AtomicU64::new(0),
        });
        let syncer = Syncer::new(
            cfg.clone(),
            inner,
            MemStore::new("e0e0e0e0"),
            SyncMetrics::detached(),
        );
        let publisher = Management::new(
            mcfg,
            Arc::new(cfg),
            binding.clone(),
            syncer.tree(),
            &metrics,
        )
        .with_problems(problems);
        let cancel = CancellationToken::new();
        let tasks = vec![
            tokio::spawn(syncer.run(cancel.clone())),
            tokio::spawn(publisher.run(cancel.clone())),
        ];
        Gateway {
            metrics,
            binding,
            cancel,
            tasks,
        }
    }

    async fn stop(self) {
        self.cancel.cancel();
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    }
}

fn mcfg(update_interval: Duration) -> ManagementConfig {
    ManagementConfig {
        enabled: true,
        location: "Main St 17, cabinet 4".into(),
        manufacturer: "ACME Cabinets".into(),
        model: "SC-2".into(),
        update_interval,
        debounce: Duration::from_millis(300),
        allow_restart: false,
        ..ManagementConfig::default()
    }
}

/// Retrieves `path` as the platform until `pred` holds on the body (bounded).
async fn until(url: &str, path: &str, limit: Duration, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + limit;
    let mut last = Value::Null;
    while Instant::now() < deadline {
        if let Ok((2000, body)) = acme::retrieve(url, path, ADMIN).await {
            if pred(&body) {
                return body;
            }
            last = body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{path} never matched within {limit:?}; last: {last}");
}

fn status_of(andi: &Value) -> &str {
    andi["m2m:andi"]["ss"].as_str().unwrap_or("")
}

fn meminfo_kb(key: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap();
    text.lines()
        .find_map(|l| {
            l.strip_prefix(key)?
                .strip_prefix(':')?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ACME"]
async fn platform_reads_the_gateway_node_and_every_mgmt_obj() -> anyhow::Result<()> {
    let acme = Acme::start().await?;
    grant_node_creation(&acme.url, ORIGINATOR).await?;
    let metrics = Metrics::new();
    metrics
        .device_roster
        .configure("mb1", "modbus_tcp", ["meter-1".into(), "meter-2".into()]);
    metrics.device_roster.configure("lora", "lorawan_udp", []);
    let problems = ProblemLog::default();
    problems.push(
        "2026-11-30T10:00:00.000Z WARN citygate::runtime::supervisor: adapter failed; restarting",
    );
    let gw = Gateway::start(&acme.url, mcfg(Duration::from_secs(60)), metrics, problems);

    let node = until(
        &acme.url,
        &format!("cse-in/{AE_NAME}-node?rcn=4"),
        Duration::from_secs(15),
        |b| {
            b["m2m:nod"]["m2m:ani"]
                .as_array()
                .is_some_and(|a| a.len() == 2)
        },
    )
    .await;
    let nod = &node["m2m:nod"];
    assert_eq!(nod["ni"], json!(format!("citygate:{AE_NAME}")));
    assert_eq!(nod["hael"], json!([ORIGINATOR]));
    let dvi = &nod["m2m:dvi"][0];
    assert_eq!(dvi["mgd"], json!(1007));
    assert_eq!(dvi["fwv"], json!(env!("CARGO_PKG_VERSION")));
    assert_eq!(
        (&dvi["man"], &dvi["mod"], &dvi["dty"]),
        (&json!("ACME Cabinets"), &json!("SC-2"), &json!("gateway"))
    );
    assert_eq!(dvi["loc"], json!("Main St 17, cabinet 4"));
    assert!(
        dvi["osv"].as_str().is_some_and(|s| s.contains("linux")),
        "{dvi}"
    );
    let fwr = &nod["m2m:fwr"][0];
    assert_eq!(
        (&fwr["vr"], &fwr["fwn"]),
        (&json!(env!("CARGO_PKG_VERSION")), &json!("citygate"))
    );
    let mem = &nod["m2m:mem"][0];
    assert_eq!(mem["mmt"].as_u64(), Some(meminfo_kb("MemTotal") * 1024));
    let mma = mem["mma"].as_u64().unwrap();
    let now = meminfo_kb("MemAvailable") * 1024;
    assert!(
        mma > now / 2 && mma < now * 2 && mma <= mem["mmt"].as_u64().unwrap(),
        "mma {mma}, now {now}"
    );
    let evl = &nod["m2m:evl"][0];
    assert!(
        evl["lgd"]
            .as_str()
            .unwrap()
            .contains("adapter failed; restarting"),
        "{evl}"
    );
    let mut ani: Vec<(String, Value, Value)> = nod["m2m:ani"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["rn"].as_str().unwrap().to_string(),
                a["ant"].clone(),
                a["ldv"].clone(),
            )
        })
        .collect();
    ani.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        ani,
        vec![
            ("areaNwkInfo-lora".into(), json!("lorawan_udp"), json!([])),
            (
                "areaNwkInfo-mb1".into(),
                json!("modbus_tcp"),
                json!(["meter-1", "meter-2"])
            ),
        ]
    );
    // The AE links its node; each configured device has its node, status unknown until polled.
    let ri = nod["ri"].as_str().unwrap().to_string();
    until(
        &acme.url,
        &format!("cse-in/{AE_NAME}"),
        Duration::from_secs(5),
        |b| b["m2m:ae"]["nl"] == json!(ri),
    )
    .await;
    let andi = until(
        &acme.url,
        &format!("cse-in/{AE_NAME}-dev-meter-2/areaNwkDeviceInfo"),
        Duration::from_secs(5),
        |_| true,
    )
    .await;
    assert_eq!(
        (
            &andi["m2m:andi"]["dvd"],
            &andi["m2m:andi"]["dvt"],
            &andi["m2m:andi"]["awi"],
            status_of(&andi)
        ),
        (
            &json!("meter-2"),
            &json!("modbus_tcp"),
            &json!("mb1"),
            "unknown"
        )
    );
    assert_eq!(
        gw.metrics
            .management_requests
            .with_label_values(&["refused"])
            .get(),
        0
    );
    gw.stop().await;
    Ok(())
}

/// A Modbus device that stops answering turns `down` within one liveness period (its next
/// failed poll, plus the debounce) and `up` again when it recovers; the request budget over a
/// steady period is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ACME"]
async fn modbus_device_goes_down_and_up_and_the_budget_holds() -> anyhow::Result<()> {
    let acme = Acme::start().await?;
    grant_node_creation(&acme.url, ORIGINATOR).await?;
    let (unit, _) = sdm630_unit();
    let sim = Sim::with([(1, unit)]);
    let (addr, server) = start_tcp(sim.clone(), "127.0.0.1:0".parse().unwrap()).await;
    let metrics = Metrics::new();
    let mb: citygate::southbound::modbus::ModbusConfig = toml::from_str(&format!(
        "type = \"modbus_tcp\"\nhost = \"{addr}\"\n[[devices]]\nid = \"meter-1\"\nunit = 1\nprofile = \"eastron_sdm630\"\npoll_interval = \"200ms\"\ntimeout = \"200ms\"\n"
    ))?;
    metrics
        .device_roster
        .configure("mb1", "modbus_tcp", ["meter-1".into()]);
    let sink = common::Sink::new();
    let out = sink.buffer.sender_for("mb1", &metrics);
    let stop_adapter = CancellationToken::new();
    let mut adapter = ModbusAdapter::new("mb1", mb, Arc::new(ModbusMetrics::detached()));
    let s = stop_adapter.clone();
    let adapter_task = tokio::spawn(async move { adapter.run(&out, &s).await });
    let interval = Duration::from_secs(5);
    let gw = Gateway::start(&acme.url, mcfg(interval), metrics, ProblemLog::default());
    let andi = format!("cse-in/{AE_NAME}-dev-meter-1/areaNwkDeviceInfo");
    until(&acme.url, &andi, Duration::from_secs(15), |b| {
        status_of(b) == "up"
    })
    .await;

    // Steady: 20 s of polls every 200 ms (100 cycles) with counters every 5 s.
    let before = gw.binding.sent.load(Ordering::SeqCst);
    let steady = Duration::from_secs(20);
    tokio::time::sleep(steady).await;
    let steady_requests = gw.binding.sent.load(Ordering::SeqCst) - before;
    // The rule: at most 2 counter updates (memory, eventLog) per interval, plus the tick that
    // may straddle the window.
    let bound = 2 * (steady.as_secs() / interval.as_secs() + 1);
    println!("steady: {steady_requests} management requests in {steady:?} (update_interval {interval:?}), bound {bound}");
    assert!(steady_requests <= bound, "{steady_requests} > {bound}");
    assert!(steady_requests >= 1, "memory goes out every interval");

    // Power cut: down within one liveness period (a failed poll: 200 ms timeout, backoff) + debounce.
    server.abort();
    let t = Instant::now();
    let down = until(&acme.url, &andi, Duration::from_secs(10), |b| {
        status_of(b) == "down"
    })
    .await;
    println!("down seen at the CSE after {:?}", t.elapsed());
    let lbl = down["m2m:andi"]["lbl"].to_string();
    assert!(
        lbl.contains("lastSeen/") && lbl.contains("statusSince/"),
        "{lbl}"
    );
    let (_, server2) = start_tcp(sim.clone(), addr).await;
    let t = Instant::now();
    until(&acme.url, &andi, Duration::from_secs(30), |b| {
        status_of(b) == "up"
    })
    .await;
    println!("up seen at the CSE after {:?}", t.elapsed());
    assert_eq!(
        gw.metrics
            .management_requests
            .with_label_values(&["failed"])
            .get(),
        0
    );
    stop_adapter.cancel();
    let _ = adapter_task.await;
    server2.abort();
    gw.stop().await;
    Ok(())
}

/// A device first heard at run time (replay-fed) gets its node, its adapter's list grows, and
/// its battery level becomes a battery mgmtObj. A CSE that lost everything (restarted) gets
/// the resources again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ACME"]
async fn a_new_device_appears_and_a_restarted_cse_gets_everything_again() -> anyhow::Result<()> {
    let mut acme = Acme::start().await?;
    grant_node_creation(&acme.url, ORIGINATOR).await?;
    let metrics = Metrics::new();
    metrics.device_roster.configure("replay", "replay", []);
    let gw = Gateway::start(
        &acme.url,
        mcfg(Duration::from_secs(2)),
        metrics.clone(),
        ProblemLog::default(),
    );
    let ani = format!("cse-in/{AE_NAME}-node/areaNwkInfo-replay");
    until(&acme.url, &ani, Duration::from_secs(15), |b| {
        b["m2m:ani"]["ldv"] == json!([])
    })
    .await;

    let dir = tempfile::tempdir()?;
    let file = dir.path().join("feed.jsonl");
    std::fs::write(
        &file,
        "{\"device\":\"tag-new\",\"values\":{\"temperature\":21.5,\"battery\":77}}\n",
    )?;
    let cfg: ReplayConfig = toml::from_str(&format!("file = {file:?}\nrate = 0.0\n"))?;
    let sink = common::Sink::new();
    let out = sink.buffer.sender_for("replay", &metrics);
    let mut replay = ReplayAdapter::new("replay", cfg, ReplayMetrics::detached());
    let stop = CancellationToken::new();
    let s = stop.clone();
    let replay_task = tokio::spawn(async move { replay.run(&out, &s).await });

    until(&acme.url, &ani, Duration::from_secs(10), |b| {
        b["m2m:ani"]["ldv"] == json!(["tag-new"])
    })
    .await;
    let andi = until(
        &acme.url,
        &format!("cse-in/{AE_NAME}-dev-tag-new/areaNwkDeviceInfo"),
        Duration::from_secs(5),
        |b| status_of(b) == "up",
    )
    .await;
    assert_eq!(
        (&andi["m2m:andi"]["dvt"], &andi["m2m:andi"]["awi"]),
        (&json!("replay"), &json!("replay"))
    );
    let bat = until(
        &acme.url,
        &format!("cse-in/{AE_NAME}-dev-tag-new/battery"),
        Duration::from_secs(5),
        |_| true,
    )
    .await;
    assert_eq!(
        (&bat["m2m:bat"]["btl"], &bat["m2m:bat"]["bts"]),
        (&json!(77), &json!(1))
    );

    // The CSE restarts empty: the AE and the nodes come back (4004 on the next update).
    let port = acme.port;
    acme.kill();
    let acme = Acme::start_on(port).await?;
    grant_node_creation(&acme.url, ORIGINATOR).await?;
    let node = until(
        &acme.url,
        &format!("cse-in/{AE_NAME}-node?rcn=4"),
        Duration::from_secs(30),
        |b| b["m2m:nod"]["m2m:dvi"].is_array(),
    )
    .await;
    until(
        &acme.url,
        &format!("cse-in/{AE_NAME}-dev-tag-new/areaNwkDeviceInfo"),
        Duration::from_secs(10),
        |b| status_of(b) == "up",
    )
    .await;
    let ri = node["m2m:nod"]["ri"].as_str().unwrap().to_string();
    until(
        &acme.url,
        &format!("cse-in/{AE_NAME}"),
        Duration::from_secs(10),
        |b| b["m2m:ae"]["nl"] == json!(ri),
    )
    .await;
    assert!(
        metrics
            .management_requests
            .with_label_values(&["not_found"])
            .get()
            >= 1
    );
    stop.cancel();
    let _ = replay_task.await;
    gw.stop().await;
    Ok(())
}

/// The same over the MQTT binding (TS-0010): the publisher uses the `Binding` trait only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs mosquitto and ACME"]
async fn over_mqtt_the_platform_sees_the_node_and_a_device() -> anyhow::Result<()> {
    let Some(broker) = common::mosquitto::require() else {
        return Ok(());
    };
    let acme = Acme::start_mqtt(broker.port).await?;
    grant_node_creation(&acme.url, ORIGINATOR).await?;
    let mut cfg = config("");
    cfg.binding = citygate::northbound::config::BindingKind::Mqtt;
    cfg.request_timeout = Duration::from_secs(3);
    cfg.mqtt = Some(citygate::northbound::config::MqttConfig::new(format!(
        "mqtt://127.0.0.1:{}",
        broker.port
    )));
    let binding: Arc<dyn Binding> = Arc::new(citygate::northbound::MqttBinding::new(&cfg)?);
    let metrics = Metrics::new();
    metrics
        .device_roster
        .configure("mb1", "modbus_tcp", ["meter-1".into()]);
    let gw = Gateway::start_with(
        cfg,
        binding,
        mcfg(Duration::from_secs(60)),
        metrics.clone(),
        ProblemLog::default(),
    );
    let node = until(
        &acme.url,
        &format!("cse-in/{AE_NAME}-node?rcn=4"),
        Duration::from_secs(20),
        |b| b["m2m:nod"]["m2m:ani"].is_array() && b["m2m:nod"]["m2m:dvi"].is_array(),
    )
    .await;
    assert_eq!(
        node["m2m:nod"]["m2m:fwr"][0]["vr"],
        json!(env!("CARGO_PKG_VERSION"))
    );
    metrics.observe_device("mb1", "meter-1", false, 1_795_428_000.0);
    until(
        &acme.url,
        &format!("cse-in/{AE_NAME}-dev-meter-1/areaNwkDeviceInfo"),
        Duration::from_secs(10),
        |b| status_of(b) == "down",
    )
    .await;
    gw.stop().await;
    Ok(())
}
