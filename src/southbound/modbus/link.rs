//! The byte stream under tokio-modbus, watched by the bus.
//!
//! tokio-modbus owns the stream once a client is attached and tells little about what
//! happened on it. The bus hands it a [`LinkIo`] instead and keeps the [`Link`] handle, so it
//! can see:
//! - how the stream ended: end of file (the device closed the connection) or an I/O error;
//! - on Modbus/TCP, answers that belong to an earlier request. tokio-modbus numbers requests
//!   (MBAP transaction id) but only compares the ids: a late answer to a timed-out request is
//!   returned as an error for the *next* request, whose own answer is then read by the one
//!   after, and so on. The link reads the transaction id of each request written and drops
//!   whole answers carrying another id before tokio-modbus sees them, so a timeout of one
//!   unit costs nothing to the next request and the connection stays up;
//! - on RTU (no transaction id), the raw bytes received since the request, so a frame with a
//!   bad CRC (which tokio-modbus skips silently, ending in a timeout) is reported as such, and
//!   a way to [`Link::drain`] the line after a failed transaction: what arrives late is read
//!   and discarded until the line is quiet, instead of being taken as the next answer.

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// A byte stream a Modbus client can run on.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> Stream for T {}

/// Frame format on the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// MBAP header, transaction ids (Modbus/TCP).
    Tcp,
    /// Unit, PDU, CRC (serial line, or transparent converters over TCP).
    Rtu,
}

/// Bytes of a received RTU answer kept for diagnosis (the longest RTU frame is 256).
const RX_LOG_MAX: usize = 512;
/// MBAP: transaction id, protocol id, length; the length counts unit id and PDU.
const MBAP_PREFIX: usize = 6;
/// Largest MBAP length field: unit id + 253-byte PDU.
const MBAP_MAX_LEN: usize = 254;

/// The bus's handle on a connection's byte stream.
#[derive(Clone)]
pub struct Link {
    core: Arc<Mutex<Core>>,
}

/// The stream given to tokio-modbus; shares its state with the [`Link`].
struct LinkIo {
    core: Arc<Mutex<Core>>,
}

struct Core {
    inner: Box<dyn Stream>,
    framing: Framing,
    /// A read returned 0 bytes: the peer closed the stream.
    eof: bool,
    /// A read or write failed.
    failed: Option<io::ErrorKind>,
    /// RTU: bytes received since the current request was started.
    rx_log: Vec<u8>,
    /// TCP: the MBAP prefix of the request being written, until complete.
    out_prefix: Vec<u8>,
    /// TCP: bytes of the request being written still to come after its prefix.
    out_left: usize,
    /// TCP: transaction id of the last request written.
    expected_tid: Option<u16>,
    /// TCP: received bytes not yet a whole MBAP frame.
    inbuf: Vec<u8>,
    /// Bytes cleared for tokio-modbus, and how many of them it has taken.
    ready: Vec<u8>,
    ready_pos: usize,
    /// TCP: received bytes that are not MBAP frames; passed on as they are, and the stream
    /// can no longer be trusted.
    desync: bool,
    /// Answers dropped because they belonged to an earlier request.
    late: u64,
}

impl Link {
    /// Wraps `inner`; returns the handle and the stream to attach tokio-modbus to.
    pub fn new(inner: Box<dyn Stream>, framing: Framing) -> (Link, Box<dyn Stream>) {
        let core = Arc::new(Mutex::new(Core {
            inner,
            framing,
            eof: false,
            failed: None,
            rx_log: Vec::new(),
            out_prefix: Vec::new(),
            out_left: 0,
            expected_tid: None,
            inbuf: Vec::new(),
            ready: Vec::new(),
            ready_pos: 0,
            desync: false,
            late: 0,
        }));
        let io = LinkIo {
            core: Arc::clone(&core),
        };
        (Link { core }, Box::new(io))
    }

    fn lock(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks the start of a transaction: the RTU receive log starts afresh.
    pub fn begin_request(&self) {
        self.lock().rx_log.clear();
    }

    /// The peer closed the stream (a read returned end of file).
    pub fn eof(&self) -> bool {
        self.lock().eof
    }

    /// The stream is finished: closed by the peer or failed.
    pub fn ended(&self) -> bool {
        let core = self.lock();
        core.eof || core.failed.is_some()
    }

    /// RTU: raw bytes received since [`Link::begin_request`].
    pub fn rx_since_request(&self) -> Vec<u8> {
        self.lock().rx_log.clone()
    }

    /// TCP: the stream cannot be trusted any more: a request was cut off mid-write (a
    /// timeout while writing), or bytes arrived that are not MBAP frames.
    pub fn out_of_step(&self) -> bool {
        let core = self.lock();
        core.desync || !core.out_prefix.is_empty() || core.out_left > 0
    }

    /// Late answers dropped since the last call.
    pub fn take_late(&self) -> u64 {
        std::mem::take(&mut self.lock().late)
    }

    /// Reads and discards until nothing has arrived for `quiet`, for at most `limit`
    /// (continuous noise must not stall the bus). Returns the bytes discarded.
    pub async fn drain(&self, quiet: Duration, limit: Duration) -> usize {
        let deadline = Instant::now() + limit;
        let mut total = 0;
        loop {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let read = poll_fn(|cx| {
                let mut buf = [0u8; 256];
                let mut rb = ReadBuf::new(&mut buf);
                self.lock().poll_inner_read(cx, &mut rb)
            });
            match tokio::time::timeout(quiet.min(deadline - now), read).await {
                Ok(Ok(n)) if n > 0 => total += n,
                // Quiet, closed or failed: the next transaction reports the last two.
                _ => break,
            }
        }
        let mut core = self.lock();
        core.ready.clear();
        core.ready_pos = 0;
        total
    }
}

impl Core {
    /// One read from the inner stream, noting end of file and errors.
    fn poll_inner_read(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<usize>> {
        let before = buf.filled().len();
        let room = buf.remaining();
        match ready!(Pin::new(&mut self.inner).poll_read(cx, buf)) {
            Ok(()) => {
                let n = buf.filled().len() - before;
                if n == 0 && room > 0 {
                    self.eof = true;
                }
                Poll::Ready(Ok(n))
            }
            Err(e) => {
                self.failed = Some(e.kind());
                Poll::Ready(Err(e))
            }
        }
    }

    /// Hands bytes cleared for tokio-modbus over; false when there are none.
    fn give_ready(&mut self, buf: &mut ReadBuf<'_>) -> bool {
        let pending = &self.ready[self.ready_pos..];
        if pending.is_empty() {
            return false;
        }
        let n = pending.len().min(buf.remaining());
        buf.put_slice(&pending[..n]);
        self.ready_pos += n;
        if self.ready_pos == self.ready.len() {
            self.ready.clear();
            self.ready_pos = 0;
        }
        true
    }

    /// TCP: moves whole frames of the current transaction from `inbuf` to `ready`, drops
    /// frames of other transactions.
    fn sort_frames(&mut self) {
        while self.inbuf.len() >= MBAP_PREFIX {
            let protocol = u16::from_be_bytes([self.inbuf[2], self.inbuf[3]]);
            let len = usize::from(u16::from_be_bytes([self.inbuf[4], self.inbuf[5]]));
            if protocol != 0 || !(2..=MBAP_MAX_LEN).contains(&len) {
                // Not Modbus/TCP: let tokio-modbus see it and fail; the bus reconnects.
                self.desync = true;
                let rest = std::mem::take(&mut self.inbuf);
                self.ready.extend_from_slice(&rest);
                return;
            }
            let total = MBAP_PREFIX + len;
            if self.inbuf.len() < total {
                return;
            }
            let tid = u16::from_be_bytes([self.inbuf[0], self.inbuf[1]]);
            if self.expected_tid == Some(tid) {
                self.ready.extend_from_slice(&self.inbuf[..total]);
            } else {
                self.late += 1;
                tracing::debug!(transaction = tid, expected = ?self.expected_tid, "modbus: late answer dropped");
            }
            self.inbuf.drain(..total);
        }
    }

    fn poll_read_tcp(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if self.give_ready(buf) {
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; 1024];
            let mut rb = ReadBuf::new(&mut chunk);
            let n = ready!(self.poll_inner_read(cx, &mut rb))?;
            if n == 0 {
                return Poll::Ready(Ok(())); // end of file
            }
            self.inbuf.extend_from_slice(&chunk[..n]);
            if self.desync {
                let rest = std::mem::take(&mut self.inbuf);
                self.ready.extend_from_slice(&rest);
            } else {
                self.sort_frames();
            }
        }
    }

    fn poll_read_rtu(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let n = ready!(self.poll_inner_read(cx, buf))?;
        let room = RX_LOG_MAX.saturating_sub(self.rx_log.len());
        let got = &buf.filled()[before..before + n];
        self.rx_log.extend_from_slice(&got[..got.len().min(room)]);
        Poll::Ready(Ok(()))
    }

    /// TCP: follows the requests written, to learn each one's transaction id.
    fn saw_written(&mut self, mut written: &[u8]) {
        while !written.is_empty() {
            if self.out_left > 0 {
                let n = self.out_left.min(written.len());
                self.out_left -= n;
                written = &written[n..];
                continue;
            }
            let n = (MBAP_PREFIX - self.out_prefix.len()).min(written.len());
            self.out_prefix.extend_from_slice(&written[..n]);
            written = &written[n..];
            if self.out_prefix.len() == MBAP_PREFIX {
                let p = std::mem::take(&mut self.out_prefix);
                self.expected_tid = Some(u16::from_be_bytes([p[0], p[1]]));
                self.out_left = usize::from(u16::from_be_bytes([p[4], p[5]]));
                // Whatever was cleared for the previous request is stale now.
                self.ready.clear();
                self.ready_pos = 0;
            }
        }
    }
}

impl fmt::Debug for LinkIo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinkIo")
    }
}

impl LinkIo {
    fn lock(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl AsyncRead for LinkIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut core = self.lock();
        match core.framing {
            Framing::Tcp => core.poll_read_tcp(cx, buf),
            Framing::Rtu => core.poll_read_rtu(cx, buf),
        }
    }
}

impl AsyncWrite for LinkIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut core = self.lock();
        match ready!(Pin::new(&mut core.inner).poll_write(cx, buf)) {
            Ok(n) => {
                if core.framing == Framing::Tcp {
                    core.saw_written(&buf[..n.min(buf.len())]);
                }
                Poll::Ready(Ok(n))
            }
            Err(e) => {
                core.failed = Some(e.kind());
                Poll::Ready(Err(e))
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut core = self.lock();
        let r = ready!(Pin::new(&mut core.inner).poll_flush(cx));
        if let Err(e) = &r {
            core.failed = Some(e.kind());
        }
        Poll::Ready(r)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.lock().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn mbap(tid: u16, unit: u8, pdu: &[u8]) -> Vec<u8> {
        let mut f = tid.to_be_bytes().to_vec();
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(&(pdu.len() as u16 + 1).to_be_bytes());
        f.push(unit);
        f.extend_from_slice(pdu);
        f
    }

    #[tokio::test]
    async fn tcp_answers_to_earlier_requests_are_dropped() {
        let (client, mut device) = tokio::io::duplex(1024);
        let (link, mut io) = Link::new(Box::new(client), Framing::Tcp);
        // Request 7, written in two pieces.
        let req = mbap(7, 1, &[3, 0, 0, 0, 1]);
        io.write_all(&req[..3]).await.unwrap();
        assert!(link.out_of_step());
        io.write_all(&req[3..]).await.unwrap();
        assert!(!link.out_of_step());
        let mut got = vec![0u8; req.len()];
        device.read_exact(&mut got).await.unwrap();
        // A late answer to request 6, then the answer to 7, split across writes.
        let late = mbap(6, 2, &[3, 2, 0xAA, 0xBB]);
        let answer = mbap(7, 1, &[3, 2, 0x12, 0x34]);
        device.write_all(&late[..4]).await.unwrap();
        device.write_all(&late[4..]).await.unwrap();
        device.write_all(&answer[..9]).await.unwrap();
        device.write_all(&answer[9..]).await.unwrap();
        let mut out = vec![0u8; answer.len()];
        io.read_exact(&mut out).await.unwrap();
        assert_eq!(out, answer);
        assert_eq!(link.take_late(), 1);
        assert_eq!(link.take_late(), 0);
        assert!(!link.ended());
        drop(device);
        let mut rest = Vec::new();
        assert_eq!(io.read_to_end(&mut rest).await.unwrap(), 0);
        assert!(link.eof() && link.ended());
    }

    #[tokio::test]
    async fn tcp_garbage_is_passed_on_and_marks_the_stream() {
        let (client, mut device) = tokio::io::duplex(1024);
        let (link, mut io) = Link::new(Box::new(client), Framing::Tcp);
        io.write_all(&mbap(1, 1, &[3, 0, 0, 0, 1])).await.unwrap();
        device.write_all(b"HTTP/1.1 400").await.unwrap();
        let mut out = [0u8; 12];
        io.read_exact(&mut out).await.unwrap();
        assert_eq!(&out, b"HTTP/1.1 400");
        assert!(link.out_of_step());
    }

    #[tokio::test]
    async fn rtu_logs_what_arrived_and_drains_the_line() {
        let (client, mut device) = tokio::io::duplex(1024);
        let (link, mut io) = Link::new(Box::new(client), Framing::Rtu);
        link.begin_request();
        device.write_all(&[1, 3, 2, 0x12]).await.unwrap();
        let mut out = [0u8; 4];
        io.read_exact(&mut out).await.unwrap();
        assert_eq!(link.rx_since_request(), vec![1, 3, 2, 0x12]);
        // The rest of a late frame arrives in pieces, then the line is quiet.
        let feeder = tokio::spawn(async move {
            for b in [0x34u8, 0xAB, 0xCD] {
                device.write_all(&[b]).await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            device
        });
        tokio::time::sleep(Duration::from_millis(1)).await;
        let n = link
            .drain(Duration::from_millis(40), Duration::from_secs(2))
            .await;
        let mut device = feeder.await.unwrap();
        assert_eq!(n, 3);
        link.begin_request();
        assert!(link.rx_since_request().is_empty());
        // Continuous noise: the drain gives up at its limit.
        let noise = tokio::spawn(async move {
            for _ in 0..100 {
                if device.write_all(&[0xFF]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
        let t = Instant::now();
        link.drain(Duration::from_millis(50), Duration::from_millis(100))
            .await;
        assert!(
            t.elapsed() < Duration::from_millis(180),
            "{:?}",
            t.elapsed()
        );
        noise.abort();
    }
}
