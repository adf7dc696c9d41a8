//! ACME with its CoAP binding (TS-0008) enabled, and a plain CoAP client written directly on
//! `coap-lite` and a UDP socket, independent of citygate's binding: it probes readiness and
//! gives the benchmark its ceiling.
#![allow(dead_code)]
use super::acme::{free_port, Acme, Security, ADMIN};
use anyhow::bail;
use coap_lite::{CoapOption, MessageClass, MessageType, Packet, RequestType};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

/// A UDP port on 127.0.0.1 that was free a moment ago.
pub fn free_udp_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind udp 127.0.0.1:0");
    s.local_addr().expect("local addr").port()
}

impl Acme {
    /// Starts ACME with its CoAP binding on a free UDP port of 127.0.0.1 (HTTP stays enabled,
    /// for checks). Ready means it answered a RETRIEVE of the CSEBase over CoAP too.
    pub async fn start_coap() -> anyhow::Result<Acme> {
        Acme::start_coap_on(free_port(), free_udp_port()).await
    }

    /// [`Acme::start_coap`] on given ports (a restart).
    pub async fn start_coap_on(http_port: u16, udp_port: u16) -> anyhow::Result<Acme> {
        let mut acme = Acme::launch(http_port, &Security::default(), None, Some(udp_port)).await?;
        if let Err(e) = wait_coap_ready(udp_port, Duration::from_secs(60)).await {
            let log = acme.log();
            acme.kill();
            bail!("ACME did not answer over CoAP: {e}\n{log}");
        }
        Ok(acme)
    }

    /// `coap://127.0.0.1:<udp port>` of a CoAP instance.
    pub fn coap_url(&self) -> String {
        format!("coap://127.0.0.1:{}", self.coap_port.unwrap_or(0))
    }
}

/// A minimal CoAP client: one socket, one confirmable request at a time, the oneM2M options
/// set by hand, retransmitted every second until the response comes.
pub struct PlainCoap {
    socket: UdpSocket,
    mid: u16,
    token: u64,
}

/// What came back: CoAP code (`2.01`), oneM2M RSC, body.
pub struct PlainResponse {
    pub code: String,
    pub rsc: Option<u32>,
    pub body: Vec<u8>,
}

impl PlainCoap {
    pub async fn connect(port: u16) -> anyhow::Result<PlainCoap> {
        let socket = UdpSocket::bind("127.0.0.1:0").await?;
        socket.connect(("127.0.0.1", port)).await?;
        Ok(PlainCoap {
            socket,
            mid: rand::random(),
            token: rand::random(),
        })
    }

    /// A oneM2M request: `method` on `path` (segments), options `fr`, `rqi`, `rvi` (3), `ty`
    /// when given, JSON body when given.
    pub async fn request(
        &mut self,
        method: RequestType,
        path: &str,
        fr: &str,
        ty: Option<u8>,
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> anyhow::Result<PlainResponse> {
        self.mid = self.mid.wrapping_add(1);
        self.token = self.token.wrapping_add(1);
        let token = self.token.to_be_bytes().to_vec();
        let mut p = Packet::new();
        p.header.set_type(MessageType::Confirmable);
        p.header.code = MessageClass::Request(method);
        p.header.message_id = self.mid;
        p.set_token(token.clone());
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        for seg in path.split('/').filter(|s| !s.is_empty()) {
            p.add_option(CoapOption::UriPath, seg.as_bytes().to_vec());
        }
        for q in query.split('&').filter(|s| !s.is_empty()) {
            p.add_option(CoapOption::UriQuery, q.as_bytes().to_vec());
        }
        p.add_option(CoapOption::Unknown(279), fr.as_bytes().to_vec());
        p.add_option(
            CoapOption::Unknown(283),
            format!("plain-{}", self.mid).into_bytes(),
        );
        p.add_option(CoapOption::Unknown(271), b"3".to_vec());
        if let Some(ty) = ty {
            p.add_option(CoapOption::Unknown(267), vec![ty]);
        }
        if let Some(body) = body {
            p.add_option(CoapOption::ContentFormat, vec![50]);
            p.payload = body.to_vec();
        }
        let bytes = p.to_bytes()?;
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 8192];
        let mut acked = false;
        while Instant::now() < deadline {
            if !acked {
                self.socket.send(&bytes).await?;
            }
            let until = Instant::now() + Duration::from_secs(1);
            while Instant::now() < until {
                let left = until.saturating_duration_since(Instant::now());
                let Ok(r) = tokio::time::timeout(left, self.socket.recv(&mut buf)).await else {
                    break;
                };
                let n = match r {
                    Ok(n) => n,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        break; // port not open yet
                    }
                };
                let Ok(resp) = Packet::from_bytes(&buf[..n]) else {
                    continue;
                };
                let t = resp.header.get_type();
                if t == MessageType::Confirmable {
                    let mut ack = Packet::new();
                    ack.header.set_type(MessageType::Acknowledgement);
                    ack.header.message_id = resp.header.message_id;
                    self.socket.send(&ack.to_bytes()?).await?;
                }
                if t == MessageType::Acknowledgement
                    && resp.header.message_id == self.mid
                    && resp.header.code == MessageClass::Empty
                {
                    acked = true;
                    continue;
                }
                if resp.get_token() == token.as_slice()
                    && matches!(resp.header.code, MessageClass::Response(_))
                {
                    let rsc = resp
                        .get_first_option(CoapOption::Unknown(307))
                        .map(|v| v.iter().fold(0u32, |a, b| (a << 8) | u32::from(*b)));
                    return Ok(PlainResponse {
                        code: resp.header.get_code(),
                        rsc,
                        body: resp.payload,
                    });
                }
            }
        }
        bail!("no CoAP response within {timeout:?}")
    }
}

/// Sends RETRIEVE `cse-in` as the admin over CoAP until ACME answers RSC 2000.
pub async fn wait_coap_ready(port: u16, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut client = PlainCoap::connect(port).await?;
    let mut last = String::from("no answer");
    while Instant::now() < deadline {
        match client
            .request(
                RequestType::Get,
                "cse-in",
                ADMIN,
                None,
                None,
                Duration::from_secs(2),
            )
            .await
        {
            Ok(r) if r.rsc == Some(2000) => return Ok(()),
            Ok(r) => last = format!("CoAP {} rsc {:?}", r.code, r.rsc),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("CoAP readiness: timeout after {timeout:?}: {last}")
}
