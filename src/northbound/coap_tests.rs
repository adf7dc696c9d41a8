//! The message layer against a scripted CoAP server on 127.0.0.1: what ACME seldom does on
//! its own (separate responses, duplicated responses, a lost first transmission, RST).
use super::*;
use crate::northbound::onem2m::primitive::Rsc;
use coap_lite::MessageType;
use tokio::net::UdpSocket;

fn binding(port: u16, metrics: CoapMetrics) -> CoapBinding {
    let mut cfg = NorthboundConfig::new(format!("coap://127.0.0.1:{port}"));
    cfg.request_timeout = Duration::from_secs(8);
    CoapBinding::new(&cfg, metrics).unwrap()
}

fn answer(req: &Packet, kind: MessageType, mid: u16, rsc: u32) -> Vec<u8> {
    let mut p = Packet::new();
    p.header.set_type(kind);
    p.header.message_id = mid;
    p.header.code = MessageClass::Response(ResponseType::Created);
    p.set_token(req.get_token().to_vec());
    p.add_option(CoapOption::Unknown(307), coap_options::encode_uint(rsc));
    p.to_bytes().unwrap()
}

async fn server() -> (Arc<UdpSocket>, u16) {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = s.local_addr().unwrap().port();
    (Arc::new(s), port)
}

async fn recv(s: &UdpSocket) -> (Packet, std::net::SocketAddr) {
    let mut buf = vec![0u8; 4096];
    let (n, from) = s.recv_from(&mut buf).await.unwrap();
    (Packet::from_bytes(&buf[..n]).unwrap(), from)
}

/// Empty ACK, then the response as CON, sent twice: the binding returns it once, ACKs both
/// copies and counts the second as a duplicate.
#[tokio::test]
async fn separate_response_is_acked_and_its_duplicate_dropped() {
    let (s, port) = server().await;
    let metrics = CoapMetrics::detached();
    let b = binding(port, metrics.clone());
    let srv = s.clone();
    let script = tokio::spawn(async move {
        let (req, from) = recv(&srv).await;
        assert_eq!(req.header.get_type(), MessageType::Confirmable);
        let mut ack = Packet::new();
        ack.header.set_type(MessageType::Acknowledgement);
        ack.header.message_id = req.header.message_id;
        srv.send_to(&ack.to_bytes().unwrap(), from).await.unwrap();
        let resp = answer(&req, MessageType::Confirmable, 7000, 2001);
        srv.send_to(&resp, from).await.unwrap();
        srv.send_to(&resp, from).await.unwrap();
        let mut acks = 0;
        while acks < 2 {
            let (p, _) = recv(&srv).await;
            if p.header.get_type() == MessageType::Acknowledgement && p.header.message_id == 7000 {
                acks += 1;
            }
        }
        acks
    });
    let req = Request::retrieve("cse-in", "Cx", "3");
    let resp = b.send(req).await.unwrap();
    assert_eq!(resp.rsc, Rsc::CREATED);
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), script)
            .await
            .unwrap()
            .unwrap(),
        2
    );
    assert_eq!(metrics.separate.get(), 1);
    assert_eq!(metrics.duplicate.get(), 1);
    assert_eq!(metrics.retransmitted.get(), 0);
}

/// The first transmission is lost: the same message (same id, same token) comes again after
/// ACK_TIMEOUT..1.5 × ACK_TIMEOUT and its piggybacked answer completes the request.
#[tokio::test]
async fn lost_request_is_retransmitted_with_the_same_message_id() {
    let (s, port) = server().await;
    let metrics = CoapMetrics::detached();
    let b = binding(port, metrics.clone());
    let srv = s.clone();
    let script = tokio::spawn(async move {
        let (first, _) = recv(&srv).await;
        let t0 = std::time::Instant::now();
        let (again, from) = recv(&srv).await;
        let waited = t0.elapsed();
        assert_eq!(again.header.message_id, first.header.message_id);
        assert_eq!(again.get_token(), first.get_token());
        let resp = answer(
            &again,
            MessageType::Acknowledgement,
            again.header.message_id,
            2001,
        );
        srv.send_to(&resp, from).await.unwrap();
        waited
    });
    let resp = b
        .send(Request::retrieve("cse-in", "Cx", "3"))
        .await
        .unwrap();
    assert_eq!(resp.rsc, Rsc::CREATED);
    let waited = script.await.unwrap();
    assert!(
        (Duration::from_millis(1900)..Duration::from_millis(3200)).contains(&waited),
        "{waited:?}"
    );
    assert_eq!(metrics.retransmitted.get(), 1);
}

/// An ACK whose token is not the request's, and an RST: neither is taken for the answer; the
/// RST ends the exchange as a transport error (retried by the syncer).
#[tokio::test]
async fn foreign_token_is_ignored_and_reset_fails_the_exchange() {
    let (s, port) = server().await;
    let b = binding(port, CoapMetrics::detached());
    let srv = s.clone();
    tokio::spawn(async move {
        let (req, from) = recv(&srv).await;
        let mut foreign = req.clone();
        foreign.set_token(vec![1, 2, 3]);
        let wrong = answer(
            &foreign,
            MessageType::Acknowledgement,
            req.header.message_id,
            2001,
        );
        srv.send_to(&wrong, from).await.unwrap();
        let mut rst = Packet::new();
        rst.header.set_type(MessageType::Reset);
        rst.header.message_id = req.header.message_id;
        srv.send_to(&rst.to_bytes().unwrap(), from).await.unwrap();
    });
    let err = b
        .send(Request::retrieve("cse-in", "Cx", "3"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, BindingError::Transport(ref m) if m.contains("RST")),
        "{err}"
    );
}
