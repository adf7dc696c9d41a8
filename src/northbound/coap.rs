//! TS-0008 CoAP binding over UDP: for cabinets on NB-IoT / LTE-M links, where a TCP handshake
//! and HTTP header text cost more than the record.
//!
//! - Mapping of the primitive onto CoAP options and back: [`super::coap_options`].
//! - Message layer (confirmable requests, RFC 7252 retransmission, ACKs of separate responses,
//!   duplicate detection, several exchanges in flight matched by token):
//!   [`super::coap_endpoint`], timing in [`super::coap_timing`].
//! - Here: one request as a CoAP exchange, with block-wise transfer (RFC 7959) above
//!   [`BLOCK_SIZE`]: Block1 for a large request body, Block2 for a large response, which is
//!   reassembled up to `max_reply_bytes` and refused beyond it
//!   ([`BindingError::ReplyTooLarge`], retried, like HTTP).
//!
//! The whole exchange (every block, every retransmission) is bounded by `request_timeout`.
//! The socket is opened on the first request (inside the runtime) and closed when the binding
//! is dropped. `coaps://` (DTLS) is refused by the config check.
use super::binding::{Binding, BindingError};
use super::coap_endpoint::{Endpoint, Exchange};
use super::coap_options::{self, parse_authority, parse_response, request_message_as};
use super::config::NorthboundConfig;
use super::onem2m::primitive::{Request, Response};
use super::serialization::Serialization;
use crate::telemetry::CoapMetrics;
use coap_lite::block_handler::BlockValue;
use coap_lite::{CoapOption, MessageClass, Packet, ResponseType};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;
use tokio_util::sync::{CancellationToken, DropGuard};

/// Block size of block-wise transfer (SZX 6): a body above it goes in blocks. 1024 bytes plus
/// the oneM2M options stay within one 1280-byte datagram (the IPv6 minimum MTU, so nothing is
/// fragmented on a mobile link), and it is the block size ACME answers with.
pub const BLOCK_SIZE: usize = 1024;

/// The CoAP binding towards one CSE.
pub struct CoapBinding {
    host: String,
    port: u16,
    timeout: Duration,
    max_reply_bytes: u64,
    serialization: Serialization,
    metrics: CoapMetrics,
    endpoint: OnceCell<Arc<Endpoint>>,
    stop: CancellationToken,
    _stop_on_drop: DropGuard,
}

impl CoapBinding {
    /// Checks `cse_url` (`coap://HOST[:PORT]`); nothing is opened until the first request.
    pub fn new(cfg: &NorthboundConfig, metrics: CoapMetrics) -> Result<Self, BindingError> {
        let url = cfg.cse_url.trim();
        let (host, port) = match url.split_once("://") {
            Some(("coap", rest)) => parse_authority(rest)
                .map_err(|why| BindingError::Config(format!("cse_url {url:?}: {why}")))?,
            Some(("coaps", _)) => {
                return Err(BindingError::Config(
                    "coaps:// (CoAP over DTLS) is not supported".into(),
                ))
            }
            _ => {
                return Err(BindingError::Config(format!(
                    "cse_url {url:?} is not coap://"
                )))
            }
        };
        let stop = CancellationToken::new();
        Ok(CoapBinding {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            timeout: cfg.request_timeout,
            max_reply_bytes: cfg.max_reply_bytes,
            serialization: cfg.serialization,
            metrics,
            endpoint: OnceCell::new(),
            _stop_on_drop: stop.clone().drop_guard(),
            stop,
        })
    }

    async fn endpoint(&self) -> Result<&Arc<Endpoint>, BindingError> {
        self.endpoint
            .get_or_try_init(|| {
                Endpoint::connect(
                    &self.host,
                    self.port,
                    self.metrics.clone(),
                    self.stop.clone(),
                )
            })
            .await
    }

    async fn exchange(&self, req: &Request) -> Result<Response, BindingError> {
        let (base, body) = request_message_as(req, self.serialization)?;
        self.metrics.wire.requests.inc();
        let mut ex = self.endpoint().await?.open_exchange();
        let first = if body.len() > BLOCK_SIZE {
            send_block1(&mut ex, &base, &body).await?
        } else {
            let mut p = base.clone();
            p.payload = body;
            ex.confirmable(p).await?
        };
        let payload = self.receive_block2(&mut ex, &base, &first).await?;
        parse_response(&first, &payload, &req.rqi)
    }

    /// The whole response body: the first response's payload, and when it carries Block2
    /// with more to come, the following blocks asked for one by one under the same token
    /// (the same request without body, with Block2 = next number). Bounded by
    /// `max_reply_bytes` (also checked against Size2 up front).
    async fn receive_block2(
        &self,
        ex: &mut Exchange,
        base: &Packet,
        first: &Packet,
    ) -> Result<Vec<u8>, BindingError> {
        let limit = self.max_reply_bytes;
        let too_large = |detail: String| BindingError::ReplyTooLarge { limit, detail };
        if first.payload.len() as u64 > limit {
            return Err(too_large(format!(
                "{} bytes in one message",
                first.payload.len()
            )));
        }
        let Some(mut block) = block_option(first, CoapOption::Block2)? else {
            return Ok(first.payload.clone());
        };
        if let Some(size2) = first
            .get_first_option(CoapOption::Size2)
            .and_then(|v| coap_options::decode_uint(v))
            .filter(|s| u64::from(*s) > limit)
        {
            return Err(too_large(format!("Size2 {size2}")));
        }
        let mut body = first.payload.clone();
        while block.more {
            let size = block.size();
            let num = body.len() / size;
            let mut p = base.clone();
            p.add_option_as(CoapOption::Block2, block_value(num, false, size)?);
            let next = ex.confirmable(p).await?;
            let got = block_option(&next, CoapOption::Block2)?.ok_or_else(|| {
                BindingError::Transport(format!(
                    "block-wise reply broke off: block {num} came without Block2 (CoAP {})",
                    coap_options::code_text(next.header.code)
                ))
            })?;
            if usize::from(got.num) * got.size() != body.len() {
                return Err(BindingError::Transport(format!(
                    "block-wise reply out of step: asked for byte {}, got block {} of {} bytes",
                    body.len(),
                    got.num,
                    got.size()
                )));
            }
            if (body.len() + next.payload.len()) as u64 > limit {
                return Err(too_large(format!(
                    "more than {} bytes received",
                    body.len() + next.payload.len()
                )));
            }
            body.extend_from_slice(&next.payload);
            block = got;
        }
        Ok(body)
    }
}

/// Sends a body larger than one block with Block1 (RFC 7959 §2.5): each block confirmable,
/// the next one only after 2.31 Continue; Size1 announces the total on the first. A smaller
/// block size in the CSE's Continue is adopted. Any other answer ends the transfer and is
/// the response (an error like 4.13 is then read like any response).
async fn send_block1(
    ex: &mut Exchange,
    base: &Packet,
    body: &[u8],
) -> Result<Packet, BindingError> {
    let mut size = BLOCK_SIZE;
    let mut offset = 0;
    loop {
        let end = (offset + size).min(body.len());
        let more = end < body.len();
        let mut p = base.clone();
        p.add_option_as(CoapOption::Block1, block_value(offset / size, more, size)?);
        if offset == 0 {
            p.add_option(
                CoapOption::Size1,
                coap_options::encode_uint(u32::try_from(body.len()).unwrap_or(u32::MAX)),
            );
        }
        p.payload = body[offset..end].to_vec();
        let resp = ex.confirmable(p).await?;
        if !more || resp.header.code != MessageClass::Response(ResponseType::Continue) {
            return Ok(resp);
        }
        if let Some(b) = block_option(&resp, CoapOption::Block1)? {
            if b.size() < size {
                size = b.size();
            }
        }
        offset = end;
    }
}

fn block_value(num: usize, more: bool, size: usize) -> Result<BlockValue, BindingError> {
    BlockValue::new(num, more, size)
        .map_err(|e| BindingError::Transport(format!("block {num} of {size} bytes: {e:?}")))
}

/// A Block1/Block2 option of a response; a malformed one is an unusable answer.
fn block_option(p: &Packet, which: CoapOption) -> Result<Option<BlockValue>, BindingError> {
    match p.get_first_option_as::<BlockValue>(which) {
        None => Ok(None),
        Some(Ok(b)) if b.size_exponent <= 6 => Ok(Some(b)),
        Some(_) => Err(BindingError::MissingRsc {
            status: coap_options::code_number(p.header.code),
            detail: format!("malformed {which:?} option"),
        }),
    }
}

#[async_trait::async_trait]
impl Binding for CoapBinding {
    async fn send(&self, req: Request) -> Result<Response, BindingError> {
        tokio::time::timeout(self.timeout, self.exchange(&req))
            .await
            .map_err(|_| BindingError::Timeout(self.timeout))?
    }
}

#[cfg(test)]
#[path = "coap_tests.rs"]
mod tests;
