//! The CoAP message layer (RFC 7252 §4) over one UDP socket connected to the CSE: message ids,
//! tokens, confirmable transmission with retransmission ([`Retransmission`]), ACKs of separate
//! responses, and duplicate detection. Several exchanges run at once, each with its own token.
//!
//! One task reads the socket and routes every datagram:
//! - an ACK or RST is matched by message id to the confirmable message still waiting for it
//!   (and a piggybacked response must carry that message's token too): an ACK for no waiting
//!   message is a duplicate or a late one and is dropped;
//! - a CON or NON response (a separate response) is matched by token; a CON one is always
//!   ACKed (also when it is a duplicate: our first ACK may have been lost), and a message id
//!   already seen among the last [`SEEN_MIDS`] is dropped as a duplicate.
//!
//! Message ids count up from a random start and tokens are 8 bytes (random start, then a
//! counter), so a response to an earlier exchange can never complete a later one even when the
//! CSE's duplicate cache answers a reused message id.
use super::binding::BindingError;
use super::coap_timing::Retransmission;
use crate::telemetry::CoapMetrics;
use coap_lite::{MessageClass, MessageType, Packet};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How many of the CSE's message ids are remembered for duplicate detection. A CSE
/// retransmits a separate response within about 45 s (MAX_TRANSMIT_SPAN); far more than the
/// responses a gateway receives in that time.
pub const SEEN_MIDS: usize = 4096;
/// Largest datagram read: the UDP maximum, so that a CSE answering without block-wise transfer
/// is read whole (and then bounded by `max_reply_bytes`) instead of silently truncated.
const MAX_DATAGRAM: usize = 65_536;

pub type Token = [u8; 8];

/// What the receive task hands to an exchange.
#[derive(Debug)]
pub enum Event {
    /// An empty ACK of message `mid`: the response will come separately.
    Acked(u16),
    /// A response: piggybacked on the ACK of message `mid`, or separate (`None`).
    Response(Option<u16>, Packet),
    /// The CSE answered message `mid` with RST.
    Reset(u16),
    /// The socket reported the CSE unreachable (ICMP port unreachable).
    Unreachable(String),
}

#[derive(Default)]
struct Routes {
    /// Open exchanges by token.
    exchanges: HashMap<Token, mpsc::UnboundedSender<Event>>,
    /// Confirmable messages waiting for their ACK, by message id.
    waiting: HashMap<u16, Token>,
    /// Message ids of CON/NON messages received lately (duplicate detection).
    seen: HashSet<u16>,
    seen_order: VecDeque<u16>,
}

impl Routes {
    /// Remembers `mid`; false when it was already seen.
    fn first_sight(&mut self, mid: u16) -> bool {
        if !self.seen.insert(mid) {
            return false;
        }
        self.seen_order.push_back(mid);
        if self.seen_order.len() > SEEN_MIDS {
            if let Some(old) = self.seen_order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }
}

/// The socket and the routing state shared by the exchanges and the receive task.
pub struct Endpoint {
    socket: UdpSocket,
    routes: Mutex<Routes>,
    next_mid: AtomicU16,
    next_token: AtomicU64,
    metrics: CoapMetrics,
}

impl Endpoint {
    /// Resolves `host`, opens a UDP socket connected to it and starts the receive task (until
    /// `stop` is cancelled).
    pub async fn connect(
        host: &str,
        port: u16,
        metrics: CoapMetrics,
        stop: CancellationToken,
    ) -> Result<Arc<Endpoint>, BindingError> {
        let addr = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| BindingError::Connect(format!("{host}:{port}: {e}")))?
            .next()
            .ok_or_else(|| BindingError::Connect(format!("{host}: no address")))?;
        let local = if addr.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        let socket = UdpSocket::bind(local)
            .await
            .map_err(|e| BindingError::Connect(format!("UDP socket: {e}")))?;
        socket
            .connect(addr)
            .await
            .map_err(|e| BindingError::Connect(format!("{addr}: {e}")))?;
        let endpoint = Arc::new(Endpoint {
            socket,
            routes: Mutex::new(Routes::default()),
            next_mid: AtomicU16::new(rand::random()),
            next_token: AtomicU64::new(rand::random()),
            metrics,
        });
        tokio::spawn(receive_loop(endpoint.clone(), stop));
        Ok(endpoint)
    }

    /// Opens an exchange: a fresh token and the channel its responses arrive on.
    pub fn open_exchange(self: &Arc<Self>) -> Exchange {
        let token = self
            .next_token
            .fetch_add(1, Ordering::Relaxed)
            .to_be_bytes();
        let (tx, rx) = mpsc::unbounded_channel();
        self.routes().exchanges.insert(token, tx);
        Exchange {
            endpoint: self.clone(),
            token,
            rx,
        }
    }

    fn routes(&self) -> std::sync::MutexGuard<'_, Routes> {
        // A panic while routing cannot leave the maps inconsistent: recover them.
        self.routes.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn transmit(&self, bytes: &[u8]) -> Result<(), BindingError> {
        match self.socket.send(bytes).await {
            Ok(n) => {
                self.metrics.wire.sent.inc_by(n as u64);
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Err(
                BindingError::Connect(format!("CSE unreachable (port closed): {e}")),
            ),
            Err(e) => Err(BindingError::Transport(format!("UDP send: {e}"))),
        }
    }

    /// Routes one received datagram (see the module doc).
    fn dispatch(&self, p: Packet) {
        let mid = p.header.message_id;
        let is_response = matches!(p.header.code, MessageClass::Response(_));
        let mut routes = self.routes();
        match p.header.get_type() {
            MessageType::Acknowledgement | MessageType::Reset => {
                let Some(token) = routes.waiting.get(&mid).copied() else {
                    self.metrics.duplicate.inc();
                    return;
                };
                let event = match (p.header.get_type(), is_response) {
                    (MessageType::Reset, _) => {
                        self.metrics.reset.inc();
                        Event::Reset(mid)
                    }
                    (_, false) => Event::Acked(mid),
                    (_, true) if p.get_token() == token => Event::Response(Some(mid), p),
                    (_, true) => {
                        tracing::debug!(mid, "CoAP ACK with a foreign token dropped");
                        return;
                    }
                };
                if let Some(tx) = routes.exchanges.get(&token) {
                    let _ = tx.send(event);
                }
            }
            t @ (MessageType::Confirmable | MessageType::NonConfirmable) => {
                let confirmable = t == MessageType::Confirmable;
                if !is_response {
                    // A request or a ping: citygate serves nothing over CoAP.
                    if confirmable {
                        self.reply_empty(MessageType::Reset, mid);
                    }
                    return;
                }
                if confirmable {
                    self.reply_empty(MessageType::Acknowledgement, mid);
                }
                if !routes.first_sight(mid) {
                    self.metrics.duplicate.inc();
                    return;
                }
                let token: Option<Token> = p.get_token().try_into().ok();
                match token.and_then(|t| routes.exchanges.get(&t)) {
                    Some(tx) => {
                        self.metrics.separate.inc();
                        let _ = tx.send(Event::Response(None, p));
                    }
                    None => tracing::debug!(mid, "CoAP response for no open exchange dropped"),
                }
            }
        }
    }

    /// An empty ACK or RST of `mid` (best effort: a lost one makes the CSE retransmit).
    fn reply_empty(&self, kind: MessageType, mid: u16) {
        let mut p = Packet::new();
        p.header.set_type(kind);
        p.header.code = MessageClass::Empty;
        p.header.message_id = mid;
        if let Ok(bytes) = p.to_bytes() {
            if let Ok(n) = self.socket.try_send(&bytes) {
                self.metrics.wire.sent.inc_by(n as u64);
            }
        }
    }

    /// Tells every exchange waiting for an ACK that the CSE is unreachable.
    fn fail_waiting(&self, why: &str) {
        let routes = self.routes();
        let tokens: HashSet<Token> = routes.waiting.values().copied().collect();
        for token in tokens {
            if let Some(tx) = routes.exchanges.get(&token) {
                let _ = tx.send(Event::Unreachable(why.to_string()));
            }
        }
    }
}

async fn receive_loop(endpoint: Arc<Endpoint>, stop: CancellationToken) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let received = tokio::select! {
            _ = stop.cancelled() => return,
            r = endpoint.socket.recv(&mut buf) => r,
        };
        match received {
            Ok(n) => {
                endpoint.metrics.wire.received.inc_by(n as u64);
                match Packet::from_bytes(&buf[..n]) {
                    Ok(p) => endpoint.dispatch(p),
                    Err(e) => {
                        tracing::debug!(bytes = n, "undecodable CoAP datagram dropped: {e}")
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                endpoint.fail_waiting(&format!("CSE unreachable (port closed): {e}"));
            }
            Err(e) => {
                tracing::warn!("CoAP socket receive error: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// One request/response exchange: its token, and the responses routed to it.
pub struct Exchange {
    endpoint: Arc<Endpoint>,
    token: Token,
    rx: mpsc::UnboundedReceiver<Event>,
}

impl Exchange {
    /// Sends `packet` as a confirmable message under this exchange's token and returns its
    /// response (piggybacked, or separate after an empty ACK). Retransmits per RFC 7252 until
    /// ACKed; after MAX_RETRANSMIT retransmissions without ACK it fails with a timeout. The
    /// caller bounds the whole wait with the request timeout.
    pub async fn confirmable(&mut self, mut packet: Packet) -> Result<Packet, BindingError> {
        // Events left over from an earlier message of this exchange are stale.
        while self.rx.try_recv().is_ok() {}
        let mid = self.endpoint.next_mid.fetch_add(1, Ordering::Relaxed);
        packet.header.set_type(MessageType::Confirmable);
        packet.header.message_id = mid;
        packet.set_token(self.token.to_vec());
        let bytes = packet
            .to_bytes_unlimited()
            .map_err(|e| BindingError::Transport(format!("cannot encode CoAP message: {e}")))?;
        self.endpoint.routes().waiting.insert(mid, self.token);
        let result = self.await_response(mid, &bytes).await;
        self.endpoint.routes().waiting.remove(&mid);
        result
    }

    async fn await_response(&mut self, mid: u16, bytes: &[u8]) -> Result<Packet, BindingError> {
        let mut schedule = Retransmission::random();
        let started = tokio::time::Instant::now();
        let mut acked = false;
        self.endpoint.transmit(bytes).await?;
        let mut resend_at = tokio::time::Instant::now() + schedule.timeout();
        loop {
            let event = tokio::select! {
                e = self.rx.recv() => e,
                _ = tokio::time::sleep_until(resend_at), if !acked => {
                    if !schedule.on_timeout() {
                        return Err(BindingError::Timeout(started.elapsed()));
                    }
                    self.endpoint.metrics.retransmitted.inc();
                    self.endpoint.transmit(bytes).await?;
                    resend_at = tokio::time::Instant::now() + schedule.timeout();
                    continue;
                }
            };
            match event {
                None => return Err(BindingError::Transport("CoAP endpoint closed".into())),
                Some(Event::Acked(m)) if m == mid => acked = true,
                Some(Event::Response(Some(m), p)) if m == mid => return Ok(p),
                Some(Event::Response(None, p)) => return Ok(p),
                Some(Event::Reset(m)) if m == mid => {
                    return Err(BindingError::Transport(
                        "the CSE reset the CoAP message (RST)".into(),
                    ))
                }
                Some(Event::Unreachable(why)) => return Err(BindingError::Connect(why)),
                Some(_) => {} // about an earlier message of this exchange
            }
        }
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        let mut routes = self.endpoint.routes();
        routes.exchanges.remove(&self.token);
        routes.waiting.retain(|_, t| *t != self.token);
    }
}
