//! A UDP proxy between one client and a server that loses, duplicates and reorders datagrams
//! in both directions, with a seeded random source (a failing run can be repeated).
#![allow(dead_code)]
use rand::{Rng, SeedableRng};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

/// Probabilities per datagram.
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    pub loss: f64,
    pub duplicate: f64,
    /// Held back 5–60 ms, so that later datagrams overtake it.
    pub reorder: f64,
}

/// What the proxy did, both directions together.
#[derive(Debug, Default)]
pub struct Stats {
    pub forwarded: AtomicU64,
    /// UDP payload bytes forwarded (duplicates counted once).
    pub bytes: AtomicU64,
    pub dropped: AtomicU64,
    pub duplicated: AtomicU64,
    pub reordered: AtomicU64,
}

pub struct LossyProxy {
    /// The port clients send to (127.0.0.1).
    pub port: u16,
    pub stats: Arc<Stats>,
    stop: CancellationToken,
}

impl LossyProxy {
    pub async fn start(server_port: u16, faults: Faults, seed: u64) -> anyhow::Result<Self> {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
        let back = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
        back.connect(("127.0.0.1", server_port)).await?;
        let port = front.local_addr()?.port();
        let stats = Arc::new(Stats::default());
        let stop = CancellationToken::new();
        let client: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let rng = Arc::new(Mutex::new(rand::rngs::StdRng::seed_from_u64(seed)));
        let ctx = Ctx {
            faults,
            stats: stats.clone(),
            rng,
        };
        // client → server
        {
            let (front, back, client, ctx, stop) = (
                front.clone(),
                back.clone(),
                client.clone(),
                ctx.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                loop {
                    let (n, from) = tokio::select! {
                        _ = stop.cancelled() => return,
                        r = front.recv_from(&mut buf) => match r { Ok(r) => r, Err(_) => continue },
                    };
                    *client.lock().unwrap() = Some(from);
                    ctx.forward(buf[..n].to_vec(), back.clone(), None);
                }
            });
        }
        // server → client
        {
            let (front, back, client, ctx, stop) = (front, back, client, ctx, stop.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                loop {
                    let n = tokio::select! {
                        _ = stop.cancelled() => return,
                        r = back.recv(&mut buf) => match r { Ok(n) => n, Err(_) => continue },
                    };
                    let to = *client.lock().unwrap();
                    if let Some(to) = to {
                        ctx.forward(buf[..n].to_vec(), front.clone(), Some(to));
                    }
                }
            });
        }
        Ok(LossyProxy { port, stats, stop })
    }

    /// A proxy that only counts (no faults).
    pub async fn counting(server_port: u16) -> anyhow::Result<Self> {
        let none = Faults {
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
        };
        LossyProxy::start(server_port, none, 0).await
    }

    pub fn snapshot(&self) -> (u64, u64, u64, u64) {
        let s = &self.stats;
        (
            s.forwarded.load(Ordering::Relaxed),
            s.dropped.load(Ordering::Relaxed),
            s.duplicated.load(Ordering::Relaxed),
            s.reordered.load(Ordering::Relaxed),
        )
    }
}

impl Drop for LossyProxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[derive(Clone)]
struct Ctx {
    faults: Faults,
    stats: Arc<Stats>,
    rng: Arc<Mutex<rand::rngs::StdRng>>,
}

impl Ctx {
    /// Applies the faults to one datagram and sends what is left over `socket` (to `to`, or
    /// to its connected peer).
    fn forward(&self, data: Vec<u8>, socket: Arc<UdpSocket>, to: Option<SocketAddr>) {
        let (lose, dup, delay) = {
            let mut rng = self.rng.lock().unwrap();
            let lose = rng.random::<f64>() < self.faults.loss;
            let dup = rng.random::<f64>() < self.faults.duplicate;
            let delay = (rng.random::<f64>() < self.faults.reorder)
                .then(|| Duration::from_millis(rng.random_range(5..60)));
            (lose, dup, delay)
        };
        if lose {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let copies = if dup { 2 } else { 1 };
        if dup {
            self.stats.duplicated.fetch_add(1, Ordering::Relaxed);
        }
        self.stats.forwarded.fetch_add(1, Ordering::Relaxed);
        self.stats
            .bytes
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        let send = async move {
            for _ in 0..copies {
                let _ = match to {
                    Some(to) => socket.send_to(&data, to).await,
                    None => socket.send(&data).await,
                };
            }
        };
        match delay {
            Some(d) => {
                self.stats.reordered.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    tokio::time::sleep(d).await;
                    send.await;
                });
            }
            None => {
                tokio::spawn(send);
            }
        }
    }
}
