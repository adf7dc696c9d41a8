//! What a LoRaWAN packet forwarder would send (uplink frames, GWMP rxpk entries), the ABP test
//! device the LoRaWAN tests share, a `lorawan_udp` adapter running in the test, and the
//! downlinks it sends read back.

use base64::Engine;
use citygate::buffer::RecordSender;
use citygate::southbound::lorawan::network::crypto::AesKey;
use citygate::southbound::lorawan::network::frame::{
    self, crypt_frm_payload, data_mic, PhyPayload,
};
use citygate::southbound::lorawan::transport::gwmp::{self, RxPk, TxPk};
use citygate::southbound::lorawan::LorawanUdpAdapter;
use citygate::southbound::Adapter;
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;

/// The ABP test device: its DevEUI, DevAddr and session keys (network, application).
pub const DEV_EUI: &str = "70b3d57ed0000001";
pub const DEV_ADDR: u32 = 0x2601_1bda;
pub const NWK: &str = "2b7e151628aed2a6abf7158809cf4f3c";
pub const APP: &str = "000102030405060708090a0b0c0d0e0f";

/// The test device's session keys: (NwkSKey, AppSKey).
pub fn keys() -> (AesKey, AesKey) {
    (
        AesKey::from_hex(NWK).unwrap(),
        AesKey::from_hex(APP).unwrap(),
    )
}

/// The test device in a `devices` table entry: its `dev_eui` and `abp` lines.
pub fn abp_device() -> String {
    format!(
        "dev_eui = \"{DEV_EUI}\"\nabp = {{ dev_addr = \"{DEV_ADDR:08x}\", nwk_s_key = \"{NWK}\", app_s_key = \"{APP}\" }}\n"
    )
}

/// An uplink of the test device (FPort 2, payload `[1]`) with FCtrl bits and FOpts, in an
/// rxpk at `tmst` (868.1 MHz, SF7BW125).
pub fn device_uplink(confirmed: bool, fctrl: u8, fopts: &[u8], fcnt: u32, tmst: u32) -> RxPk {
    let (nwk, app) = keys();
    rxpk(
        &uplink_with(confirmed, fctrl, fopts, DEV_ADDR, fcnt, &nwk, &app, &[1]),
        tmst,
    )
}

/// A confirmed uplink of the test device at SF12BW125 (about 1 s of airtime for its ACK), at
/// `tmst` = FCnt × 10 µs.
pub fn confirmed_sf12(fcnt: u32) -> RxPk {
    let mut rx = device_uplink(true, 0, &[], fcnt, fcnt * 10);
    rx.datr = gwmp::Datr::Lora("SF12BW125".into());
    rx
}

/// A data uplink on FPort 2 (encrypted with `app`, MIC with `nwk`).
pub fn uplink(
    confirmed: bool,
    dev_addr: u32,
    fcnt32: u32,
    nwk: &AesKey,
    app: &AesKey,
    pl: &[u8],
) -> Vec<u8> {
    uplink_with(confirmed, 0, &[], dev_addr, fcnt32, nwk, app, pl)
}

/// What a downlink frame says in the clear.
#[derive(Debug, Clone, PartialEq)]
pub struct Down {
    pub ack: bool,
    pub fcnt16: u16,
    pub fopts: Vec<u8>,
}

/// The data frame in a PULL_RESP's txpk (panics on anything else).
pub fn read_down(txpk: &TxPk) -> Down {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&txpk.data)
        .unwrap();
    let Ok(PhyPayload::Data(d)) = frame::parse(&bytes) else {
        panic!("not a data frame")
    };
    Down {
        ack: d.ack(),
        fcnt16: d.fcnt16,
        fopts: d.fopts.to_vec(),
    }
}

/// A `lorawan_udp` adapter running in the test, its records going to `out`.
pub struct AdapterTask {
    /// Where its GWMP socket listens.
    pub server: SocketAddr,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
}

/// Runs `adapter` until [`AdapterTask::stop`]; returns once its socket is bound.
pub async fn spawn_adapter(mut adapter: LorawanUdpAdapter, out: RecordSender) -> AdapterTask {
    let mut bound = adapter.bound_addr();
    let shutdown = CancellationToken::new();
    let task = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move { adapter.run(&out, &shutdown).await.unwrap() })
    };
    let server = super::within(5, bound.wait_for(|a| a.is_some()))
        .await
        .unwrap()
        .unwrap();
    AdapterTask {
        server,
        shutdown,
        task,
    }
}

impl AdapterTask {
    pub async fn stop(self) {
        self.shutdown.cancel();
        super::within(5, self.task).await.unwrap();
    }
}

/// An rxpk as a concentrator reports a frame received on 868.1 MHz, SF7BW125, CRC ok.
pub fn rxpk(phy: &[u8], tmst: u32) -> RxPk {
    RxPk {
        time: None,
        tmst,
        freq: 868.1,
        chan: Some(0),
        rfch: Some(0),
        stat: 1,
        modu: "LORA".into(),
        datr: gwmp::Datr::Lora("SF7BW125".into()),
        codr: Some("4/5".into()),
        lsnr: Some(9.5),
        rssi: -42.0,
        size: Some(phy.len() as u32),
        data: base64::engine::general_purpose::STANDARD.encode(phy),
    }
}

/// A data uplink with any FCtrl bits and FOpts, on FPort 2.
#[allow(clippy::too_many_arguments)]
pub fn uplink_with(
    confirmed: bool,
    fctrl_bits: u8,
    fopts: &[u8],
    dev_addr: u32,
    fcnt32: u32,
    nwk: &AesKey,
    app: &AesKey,
    pl: &[u8],
) -> Vec<u8> {
    let mut raw = vec![if confirmed { 0x80 } else { 0x40 }];
    raw.extend_from_slice(&dev_addr.to_le_bytes());
    raw.push((fctrl_bits & 0xf0) | fopts.len() as u8);
    raw.extend_from_slice(&(fcnt32 as u16).to_le_bytes());
    raw.extend_from_slice(fopts);
    raw.push(2);
    let mut enc = pl.to_vec();
    crypt_frm_payload(app, true, dev_addr, fcnt32, &mut enc);
    raw.extend_from_slice(&enc);
    let mic = data_mic(nwk, true, dev_addr, fcnt32, &raw);
    raw.extend_from_slice(&mic);
    raw
}

/// A packet forwarder on 127.0.0.1 speaking GWMP v2 to a `lorawan_udp` adapter.
pub struct Forwarder {
    pub sock: tokio::net::UdpSocket,
    pub server: std::net::SocketAddr,
    pub gateway: gwmp::GatewayEui,
    token: u16,
    /// PULL_RESPs that arrived while waiting for a PUSH_ACK (UDP does not keep the order of
    /// the server's answers), handed out by `pull_resp` first.
    held: std::sync::Mutex<std::collections::VecDeque<([u8; 2], gwmp::TxPk)>>,
}

impl Forwarder {
    pub async fn new(server: std::net::SocketAddr) -> Forwarder {
        Forwarder {
            sock: tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            server,
            gateway: gwmp::GatewayEui([0xaa, 0x55, 0x5a, 0, 0, 0, 0, 7]),
            token: 0x2000,
            held: Default::default(),
        }
    }

    /// A forwarder that has opened the downlink path to `server` (PULL_DATA answered).
    pub async fn pulled(server: std::net::SocketAddr) -> Forwarder {
        let mut fwd = Forwarder::new(server).await;
        fwd.pull().await;
        fwd
    }

    fn next_token(&mut self) -> [u8; 2] {
        self.token = self.token.wrapping_add(1);
        self.token.to_be_bytes()
    }

    async fn send(&self, p: &gwmp::Packet) {
        self.sock
            .send_to(&gwmp::encode(p), self.server)
            .await
            .unwrap();
    }

    /// The next datagram from the server, if one comes within `secs`.
    pub async fn recv_within(&self, secs: f64) -> Option<gwmp::Packet> {
        let mut buf = vec![0u8; 4096];
        let d = std::time::Duration::from_secs_f64(secs);
        let (n, _) = tokio::time::timeout(d, self.sock.recv_from(&mut buf))
            .await
            .ok()?
            .unwrap();
        Some(gwmp::parse(&buf[..n]).unwrap())
    }

    /// PULL_DATA (opens the downlink path); waits for PULL_ACK.
    pub async fn pull(&mut self) {
        let token = self.next_token();
        let gateway = self.gateway;
        self.send(&gwmp::Packet::PullData {
            version: 2,
            token,
            gateway,
        })
        .await;
        match self.recv_within(5.0).await {
            Some(gwmp::Packet::PullAck { .. }) => {}
            other => panic!("expected PULL_ACK, got {other:?}"),
        }
    }

    /// PUSH_DATA with `rx`; waits for the PUSH_ACK.
    pub async fn push(&mut self, rx: RxPk) {
        let token = self.next_token();
        let p = gwmp::Packet::PushData {
            version: 2,
            token,
            gateway: self.gateway,
            payload: gwmp::PushPayload {
                rxpk: vec![rx],
                stat: None,
            },
        };
        self.send(&p).await;
        loop {
            match self.recv_within(5.0).await {
                Some(gwmp::Packet::PushAck { token: t, .. }) => {
                    assert_eq!(t, token);
                    return;
                }
                // A downlink for an earlier uplink, overtaking this PUSH_ACK.
                Some(gwmp::Packet::PullResp { token, payload, .. }) => {
                    self.held.lock().unwrap().push_back((token, payload.txpk))
                }
                other => panic!("expected PUSH_ACK, got {other:?}"),
            }
        }
    }

    /// The next PULL_RESP within `secs`: its token and txpk.
    pub async fn pull_resp(&self, secs: f64) -> Option<([u8; 2], gwmp::TxPk)> {
        if let Some(held) = self.held.lock().unwrap().pop_front() {
            return Some(held);
        }
        match self.recv_within(secs).await? {
            gwmp::Packet::PullResp { token, payload, .. } => Some((token, payload.txpk)),
            other => panic!("expected PULL_RESP, got {other:?}"),
        }
    }

    /// TX_ACK for `token`, with an error name or none.
    pub async fn tx_ack(&self, token: [u8; 2], error: Option<&str>) {
        let payload = error.map(|e| gwmp::TxAckPayload {
            txpk_ack: gwmp::TxAckInfo {
                error: Some(e.into()),
                warn: None,
            },
        });
        self.send(&gwmp::Packet::TxAck {
            version: 2,
            token,
            gateway: self.gateway,
            payload,
        })
        .await;
    }
}
