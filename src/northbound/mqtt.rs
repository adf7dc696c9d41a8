//! TS-0010 MQTT binding over rumqttc (`mqtt://`, or `mqtts://` with rustls + ring).
//!
//! Topics (protocols.md §1.5): a request is published on `/oneM2M/req/<fr>/<cse-id>/json`
//! (`…/cbor` with `serialization = "cbor"`, the payload then CBOR), its response comes back on
//! `/oneM2M/resp/<fr>/<cse-id>/json` (decoded as its topic's last level says); IDs in topic levels lose their
//! leading `/` and map `/` to `:`. An AE create with a bare `C`/`S` originator (the CSE assigns
//! the AE-ID) goes on `/oneM2M/reg_req/<credential-id>/…` and is answered on `reg_resp`. The
//! payload is the bare request primitive (`{"op":…,"to":…,"fr":…,"rqi":…,"rvi":…}`).
//!
//! One task owns the rumqttc event loop: it routes responses to their waiting request by `rqi`
//! (ACME answers out of order; a PUBACK only means the broker has the request), resubscribes
//! on every ConnAck and, when the connection breaks, fails every waiting request at once as a
//! retryable transport error. While the broker is unreachable requests fail immediately (the
//! syncer backs off); no request waits longer than `request_timeout`.
use super::binding::{read_config_file, Binding, BindingError};
use super::config::{MqttConfig, NorthboundConfig};
use super::mqtt_primitive::publish_size;
pub use super::mqtt_primitive::{parse_response, parse_response_as};
use super::onem2m::primitive::{Operation, Request, ResourceType, Response};
use super::serialization::Serialization;
use crate::backoff::Backoff;
use crate::telemetry::WireMetrics;
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, MqttOptions, Packet, QoS,
    StateError, SubscribeReasonCode, TlsConfiguration, Transport,
};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

/// Trusted for `mqtts://` when no `ca_file` is configured (Debian's bundle).
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// Largest request primitive we send (replies: `[northbound] max_reply_bytes`).
const MAX_PACKET: usize = 1 << 20;
/// Reconnect pacing of the event loop.
const RECONNECT_MIN: Duration = Duration::from_millis(200);
const RECONNECT_MAX: Duration = Duration::from_secs(5);
/// How long a request made before the very first connection attempt finished waits for it.
const FIRST_CONNECT_WAIT: Duration = Duration::from_secs(3);

type Reply = oneshot::Sender<Result<Response, BindingError>>;

/// Connection state shared by the requests and the event-loop task.
#[derive(Default)]
struct State {
    connected: bool,
    /// Why the last connection attempt failed (for the fail-fast error).
    last_error: Option<String>,
    /// The broker refused our credentials: a gateway problem, not an outage.
    refused: bool,
    /// Response topic filters; renewed on every ConnAck (clean session).
    subscribed: BTreeSet<String>,
    /// Requests waiting for their response, by `rqi`.
    pending: HashMap<String, Reply>,
    /// Where requests from the CSE to the AE go (notifications), once someone listens.
    incoming: Option<mpsc::Sender<IncomingRequest>>,
}

/// A request the CSE published on the AE's request topic (a notification): answered with
/// [`MqttBinding::respond`].
#[derive(Debug, Clone)]
pub struct IncomingRequest {
    /// `/oneM2M/req/<originator>/<AE-ID>/json`.
    pub topic: String,
    pub payload: Vec<u8>,
}

/// Requests from the CSE waiting to be handled; beyond this they are dropped (logged) and the
/// CSE's catch-up path picks their instances up.
const INCOMING_QUEUE: usize = 256;

struct Shared {
    state: Mutex<State>,
    /// Counts received responses (the event loop sees them).
    wire: Mutex<WireMetrics>,
    /// `false` until the first connection attempt has finished, either way.
    first_attempt: watch::Sender<bool>,
    /// Counts (re)connections: a listener catches up on what it missed while offline.
    connects: watch::Sender<u64>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Short critical sections without panics inside: the data cannot be half-written.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The MQTT binding: one broker connection shared by all requests.
pub struct MqttBinding {
    client: AsyncClient,
    shared: Arc<Shared>,
    broker: String,
    /// CSE-ID as a topic level (`id-in`).
    cse_topic: String,
    /// Originator level of `reg_req` for CSE-assigned AE-IDs.
    credential_id: String,
    timeout: Duration,
    /// QoS of requests and of the response subscriptions (`[northbound.mqtt] qos`).
    qos: QoS,
    /// Payload serialization and topic suffix (`json` / `cbor`).
    serialization: Serialization,
    wire: WireMetrics,
    /// Stops the event-loop task when the binding is dropped.
    cancel: CancellationToken,
}

impl std::fmt::Debug for MqttBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttBinding")
            .field("broker", &self.broker)
            .field("cse_topic", &self.cse_topic)
            .finish_non_exhaustive()
    }
}

/// The serialization a topic's last level names (TS-0010: `…/json`, `…/cbor`); JSON when it
/// names neither.
pub fn topic_serialization(topic: &str) -> Serialization {
    topic
        .rsplit('/')
        .next()
        .and_then(Serialization::from_media_type)
        .unwrap_or_default()
}

/// An ID as a topic level: leading `/` stripped, `/` → `:` (`/id-in/Cabc` → `id-in:Cabc`).
pub fn topic_id(id: &str) -> String {
    id.strip_prefix('/').unwrap_or(id).replace('/', ":")
}

/// Host and port of `mqtt://host[:port]` / `mqtts://host[:port]`, and whether it is TLS.
pub fn parse_broker(url: &str) -> Result<(String, u16, bool), BindingError> {
    let bad = || {
        BindingError::Config(format!(
            "broker {url:?} is not mqtt://host[:port] or mqtts://host[:port]"
        ))
    };
    let url = url.trim();
    let (tls, rest) = if let Some(r) = url.strip_prefix("mqtts://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("mqtt://") {
        (false, r)
    } else {
        return Err(bad());
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad())?),
        None => (rest, if tls { 8883 } else { 1883 }),
    };
    if host.is_empty() || port == 0 || host.contains(['/', '?', '#', '@']) {
        return Err(bad());
    }
    Ok((host.to_string(), port, tls))
}

impl MqttBinding {
    /// Connects in the background (must be called inside a tokio runtime): the event-loop task
    /// runs until the binding is dropped.
    pub fn new(cfg: &NorthboundConfig) -> Result<Self, BindingError> {
        super::install_crypto_provider();
        let m = cfg.mqtt.as_ref().ok_or_else(|| {
            BindingError::Config("binding = \"mqtt\" without [northbound.mqtt]".into())
        })?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            BindingError::Config("the MQTT binding must be created inside a tokio runtime".into())
        })?;
        let (host, port, tls) = parse_broker(&m.broker)?;
        let assigned = cfg.cse_assigns_ae_id();
        let client_id = m.client_id.clone().unwrap_or_else(|| {
            if assigned {
                format!("A::{}", cfg.ae_name)
            } else {
                format!("A::{}", cfg.originator)
            }
        });
        let mut opts = MqttOptions::new(client_id.clone(), host, port);
        opts.set_keep_alive(m.keep_alive)
            .set_clean_session(true)
            // Incoming: a larger packet is refused by rumqttc from its header, before it is
            // buffered; the connection is dropped and pending requests fail (retried).
            .set_max_packet_size(
                usize::try_from(cfg.max_reply_bytes).unwrap_or(MAX_PACKET),
                MAX_PACKET,
            )
            .set_inflight(u16::try_from(cfg.max_in_flight * 2 + 16).unwrap_or(u16::MAX));
        if let Some(user) = &m.username {
            let password = m
                .password()
                .map_err(|e| BindingError::Config(format!("MQTT password: {e}")))?
                .unwrap_or_default();
            if !tls {
                tracing::warn!(broker = %m.broker, "MQTT credentials are sent over plain mqtt://");
            }
            opts.set_credentials(user.clone(), password);
        }
        if tls {
            opts.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
                Arc::new(tls_config(m)?),
            )));
        }
        let (client, mut eventloop) = AsyncClient::new(opts, cfg.max_in_flight * 4 + 64);
        let mut net = eventloop.network_options();
        net.set_connection_timeout(cfg.request_timeout.as_secs().clamp(1, 10));
        // Small request/response exchanges: Nagle + delayed ACK would add ~40 ms to each.
        net.set_tcp_nodelay(true);
        eventloop.set_network_options(net);
        let (first_attempt, _) = watch::channel(false);
        let wire = WireMetrics::detached();
        let shared = Arc::new(Shared {
            wire: Mutex::new(wire.clone()),
            state: Mutex::new(State::default()),
            first_attempt,
            connects: watch::channel(0).0,
        });
        let cancel = CancellationToken::new();
        runtime.spawn(event_loop(
            eventloop,
            client.clone(),
            shared.clone(),
            cancel.clone(),
            m.broker.clone(),
        ));
        let credential_id = m.credential_id.clone().unwrap_or_else(|| {
            let prefix = if cfg.originator == "S" { "S" } else { "C" };
            format!("{prefix}{}", cfg.ae_name)
        });
        tracing::info!(broker = %m.broker, client_id = %client_id, "MQTT binding started");
        Ok(MqttBinding {
            client,
            shared,
            broker: m.broker.clone(),
            cse_topic: topic_id(&cfg.cse_id),
            credential_id,
            timeout: cfg.request_timeout,
            qos: if m.qos == 0 {
                QoS::AtMostOnce
            } else {
                QoS::AtLeastOnce
            },
            serialization: cfg.serialization,
            wire,
            cancel,
        })
    }

    /// Builder: count bytes on the wire into these handles (`citygate_northbound_bytes_total`).
    pub fn with_wire_metrics(mut self, wire: WireMetrics) -> Self {
        *self.shared.wire.lock().unwrap_or_else(|p| p.into_inner()) = wire.clone();
        self.wire = wire;
        self
    }

    /// Subscribes to the requests the CSE sends to `ae_id` (`/oneM2M/req/+/<AE-ID>/#`, kept
    /// across reconnects) and returns them. A second call replaces the first listener.
    pub fn listen(&self, ae_id: &str) -> mpsc::Receiver<IncomingRequest> {
        let (tx, rx) = mpsc::channel(INCOMING_QUEUE);
        let filter = format!("/oneM2M/req/+/{}/#", topic_id(ae_id));
        let mut st = self.shared.lock();
        st.incoming = Some(tx);
        if st.subscribed.insert(filter.clone()) && st.connected {
            if let Err(e) = self.client.try_subscribe(filter.clone(), QoS::AtLeastOnce) {
                tracing::warn!(filter = %filter, error = %e, "MQTT subscribe not queued (retried on reconnect)");
            }
        }
        tracing::debug!(filter = %filter, "listening for requests from the CSE");
        rx
    }

    /// Publishes the response to a request from the CSE on the matching response topic
    /// (`/oneM2M/req/<o>/<r>/<ser>` → `/oneM2M/resp/<o>/<r>/<ser>`).
    pub fn respond(
        &self,
        request_topic: &str,
        response: &serde_json::Value,
    ) -> Result<(), BindingError> {
        let rest = request_topic.strip_prefix("/oneM2M/req/").ok_or_else(|| {
            BindingError::Transport(format!("{request_topic} is not a request topic"))
        })?;
        let topic = format!("/oneM2M/resp/{rest}");
        // Answered in the serialization the request came in.
        let payload = topic_serialization(request_topic).encode(response)?;
        self.client
            .try_publish(topic, QoS::AtLeastOnce, false, payload)
            .map_err(|e| BindingError::Transport(format!("MQTT publish queue: {e}")))
    }

    /// Changes on every (re)connection to the broker.
    pub fn connections(&self) -> watch::Receiver<u64> {
        self.shared.connects.subscribe()
    }

    /// True while the broker connection is up.
    pub fn is_connected(&self) -> bool {
        self.shared.lock().connected
    }

    /// (request topic, response topic filter) of a request.
    pub fn topics_for(&self, req: &Request) -> Result<(String, String), BindingError> {
        let bare = matches!(req.fr.as_str(), "" | "C" | "S");
        let registration = req.op == Operation::Create && req.ty == Some(ResourceType::Ae);
        let (kind, resp_kind, originator) = if bare {
            if !registration {
                return Err(BindingError::Config(format!(
                    "request to {} without an AE-ID as originator",
                    req.to
                )));
            }
            ("reg_req", "reg_resp", self.credential_id.clone())
        } else {
            ("req", "resp", topic_id(&req.fr))
        };
        if originator.is_empty() || originator.contains(['+', '#']) {
            return Err(BindingError::Config(format!(
                "originator {originator:?} cannot be a topic level"
            )));
        }
        Ok((
            format!(
                "/oneM2M/{kind}/{originator}/{}/{}",
                self.cse_topic,
                self.serialization.topic_suffix()
            ),
            format!("/oneM2M/{resp_kind}/{originator}/+/#"),
        ))
    }

    /// Fails fast while disconnected; right after start, waits briefly for the first attempt.
    async fn check_connected(&self) -> Result<(), BindingError> {
        let mut first = self.shared.first_attempt.subscribe();
        if !*first.borrow_and_update() {
            let wait = self.timeout.min(FIRST_CONNECT_WAIT);
            let _ = tokio::time::timeout(wait, first.wait_for(|done| *done)).await;
        }
        let st = self.shared.lock();
        if st.connected {
            return Ok(());
        }
        let why = st.last_error.as_deref().unwrap_or("connecting");
        if st.refused {
            return Err(BindingError::Config(format!(
                "MQTT broker {} refused the connection: {why}",
                self.broker
            )));
        }
        Err(BindingError::Connect(format!(
            "MQTT broker {} not connected: {why}",
            self.broker
        )))
    }
}

impl Drop for MqttBinding {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Removes a request's waiter when its future ends (answered, timed out or cancelled).
struct PendingGuard<'a> {
    shared: &'a Shared,
    rqi: String,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.shared.lock().pending.remove(&self.rqi);
    }
}

#[async_trait::async_trait]
impl Binding for MqttBinding {
    async fn send(&self, req: Request) -> Result<Response, BindingError> {
        let (topic, filter) = self.topics_for(&req)?;
        let payload = self.serialization.encode(&req)?;
        self.check_connected().await?;
        let (tx, rx) = oneshot::channel();
        {
            let mut st = self.shared.lock();
            if !st.connected {
                return Err(BindingError::Connect(format!(
                    "MQTT broker {} not connected",
                    self.broker
                )));
            }
            if st.pending.contains_key(&req.rqi) {
                return Err(BindingError::Transport(format!(
                    "request {} is already in flight",
                    req.rqi
                )));
            }
            // Queued before the publish on the same connection: the broker has the
            // subscription before the CSE can answer.
            if !st.subscribed.contains(&filter) {
                self.client
                    .try_subscribe(filter.clone(), self.qos)
                    .map_err(|e| BindingError::Transport(format!("MQTT subscribe: {e}")))?;
                tracing::debug!(filter = %filter, "subscribed to responses");
                st.subscribed.insert(filter);
            }
            let size = publish_size(&topic, payload.len());
            self.client
                .try_publish(topic.as_str(), self.qos, false, payload)
                .map_err(|e| BindingError::Transport(format!("MQTT publish queue: {e}")))?;
            self.wire.sent.inc_by(size);
            self.wire.requests.inc();
            st.pending.insert(req.rqi.clone(), tx);
        }
        let _guard = PendingGuard {
            shared: &self.shared,
            rqi: req.rqi.clone(),
        };
        tracing::trace!(topic = %topic, rqi = %req.rqi, "request published");
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(BindingError::Transport("the MQTT binding stopped".into())),
            Err(_) => Err(BindingError::Timeout(self.timeout)),
        }
    }
}

/// Owns the rumqttc event loop until `cancel` fires.
async fn event_loop(
    mut eventloop: EventLoop,
    client: AsyncClient,
    shared: Arc<Shared>,
    cancel: CancellationToken,
    broker: String,
) {
    let mut backoff = Backoff::new(RECONNECT_MIN, RECONNECT_MAX);
    loop {
        let event = tokio::select! {
            _ = cancel.cancelled() => {
                // Best effort: the broker notices a dropped connection on its own anyway.
                let _ = client.try_disconnect();
                fail_all(&shared, "the MQTT binding stopped");
                return;
            }
            ev = eventloop.poll() => ev,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                let mut st = shared.lock();
                for filter in &st.subscribed {
                    if let Err(e) = client.try_subscribe(filter.clone(), QoS::AtLeastOnce) {
                        tracing::warn!(broker = %broker, filter = %filter, error = %e, "MQTT resubscribe not queued");
                    }
                }
                st.connected = true;
                st.refused = false;
                st.last_error = None;
                drop(st);
                shared.first_attempt.send_replace(true);
                shared.connects.send_modify(|n| *n += 1);
                backoff.reset();
                tracing::info!(broker = %broker, "connected to the MQTT broker");
            }
            Ok(Event::Incoming(Packet::Publish(p))) => deliver(&shared, &p.topic, &p.payload),
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                if ack.return_codes.contains(&SubscribeReasonCode::Failure) {
                    tracing::error!(broker = %broker, pkid = ack.pkid, "the broker refused a response subscription (ACL?)");
                }
            }
            Ok(_) => {}
            Err(e) => {
                let refused = matches!(
                    &e,
                    ConnectionError::ConnectionRefused(
                        ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized
                    )
                );
                let detail = match &e {
                    ConnectionError::MqttState(StateError::Deserialization(
                        rumqttc::mqttbytes::Error::PayloadSizeLimitExceeded(n),
                    )) => format!("a packet of {n} bytes from the broker exceeds max_reply_bytes"),
                    _ => e.to_string(),
                };
                let (was_connected, failed) = {
                    let mut st = shared.lock();
                    let was = st.connected;
                    st.connected = false;
                    st.refused = refused;
                    st.last_error = Some(detail.clone());
                    (
                        was,
                        st.pending.drain().map(|(_, tx)| tx).collect::<Vec<_>>(),
                    )
                };
                shared.first_attempt.send_replace(true);
                let lost = failed.len();
                for tx in failed {
                    let _ = tx.send(Err(BindingError::Transport(format!(
                        "MQTT connection lost: {detail}"
                    ))));
                }
                let delay = backoff.next_delay();
                if was_connected || refused {
                    tracing::warn!(broker = %broker, error = %detail, failed_requests = lost, "MQTT connection error; reconnecting");
                } else {
                    tracing::debug!(broker = %broker, error = %detail, retry_in = ?delay, "MQTT broker unreachable");
                }
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

fn fail_all(shared: &Shared, why: &str) {
    let failed: Vec<Reply> = {
        let mut st = shared.lock();
        st.connected = false;
        st.pending.drain().map(|(_, tx)| tx).collect()
    };
    for tx in failed {
        let _ = tx.send(Err(BindingError::Transport(why.to_string())));
    }
}

/// Routes a message from a response topic to the request with its `rqi`, and a request from
/// the CSE to the listener.
fn deliver(shared: &Shared, topic: &str, payload: &[u8]) {
    if topic.starts_with("/oneM2M/req/") {
        let incoming = shared.lock().incoming.clone();
        let request = IncomingRequest {
            topic: topic.to_string(),
            payload: payload.to_vec(),
        };
        match incoming.map(|tx| tx.try_send(request)) {
            Some(Ok(())) => {}
            _ => {
                tracing::warn!(topic = %topic, "request from the CSE dropped (no listener or queue full)")
            }
        }
        return;
    }
    shared
        .wire
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .received
        .inc_by(publish_size(topic, payload.len()));
    let ser = topic_serialization(topic);
    let (rqi, result) = match parse_response_as(ser, payload) {
        Ok(resp) => (resp.rqi.clone(), Ok(resp)),
        Err((Some(rqi), e)) => (rqi, Err(e)),
        Err((None, e)) => {
            tracing::warn!(topic = %topic, error = %e, "MQTT response without a usable rqi dropped");
            return;
        }
    };
    let waiter = shared.lock().pending.remove(&rqi);
    match waiter {
        Some(tx) => {
            let _ = tx.send(result);
        }
        None => {
            tracing::debug!(topic = %topic, rqi = %rqi, "response to no waiting request (late or not ours)")
        }
    }
}

/// rustls client config: the CA bundle (`ca_file` or the system's) and an optional client
/// certificate, with the ring provider.
pub(crate) fn tls_config(m: &MqttConfig) -> Result<rustls::ClientConfig, BindingError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let ca_path = m.ca_file.clone().unwrap_or_else(|| SYSTEM_CA_BUNDLE.into());
    let pem = read_config_file(&ca_path)?;
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok);
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(BindingError::Config(format!(
            "CA file {} holds no usable certificate",
            ca_path.display()
        )));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| BindingError::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots);
    match (&m.client_cert_file, &m.client_key_file) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_slice_iter(&read_config_file(cert)?)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| BindingError::Config(format!("{}: {e}", cert.display())))?;
            let key_der = PrivateKeyDer::from_pem_slice(&read_config_file(key)?)
                .map_err(|e| BindingError::Config(format!("{}: {e}", key.display())))?;
            builder.with_client_auth_cert(chain, key_der).map_err(|e| {
                BindingError::Config(format!("client certificate {}: {e}", cert.display()))
            })
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

#[cfg(test)]
#[path = "mqtt_tests.rs"]
mod tests;
