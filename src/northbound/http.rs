//! TS-0009 HTTP binding over reqwest (rustls + ring, keep-alive pool).
//!
//! Mapping: CREATE/NOTIFY → POST, RETRIEVE → GET, UPDATE → PUT, DELETE → DELETE; `to` → path
//! (`cse-in/…` → `/cse-in/…`, SP-relative `/id-in/…` → `/~/id-in/…`, absolute `//sp/…` →
//! `/_/sp/…`); `fr`/`rqi`/`rvi` → `X-M2M-Origin`/`X-M2M-RI`/`X-M2M-RVI`; `ty` → exactly
//! `Content-Type: application/json;ty=N` (ACME rejects any other parameter, e.g. charset), or
//! `application/cbor;ty=N` with `serialization = "cbor"` (and `Accept` to match; an answer is
//! decoded as its own `Content-Type` says).
//! The outcome is always read from `X-M2M-RSC` (header names compared case-insensitively:
//! ACME behind waitress sends `X-M2m-Rsc`), never from the HTTP status alone, which is
//! ambiguous (404 is 4004 or 5103).
//!
//! A reply body is read in chunks up to `max_reply_bytes` and refused beyond it
//! ([`BindingError::ReplyTooLarge`], retried): a broken or hostile CSE cannot make citygate
//! buffer an arbitrarily large body.
use super::binding::{read_config_file, response_for, Binding, BindingError};
use super::config::{Credentials, NorthboundConfig};
use super::onem2m::name;
use super::onem2m::primitive::{Operation, Request, Response};
use super::serialization::Serialization;
use crate::telemetry::untrusted::snippet;
use crate::telemetry::WireMetrics;
use reqwest::header::HeaderMap;
use std::time::Duration;

/// Installs rustls' ring crypto provider for the process. Call once at start; later calls (or
/// another component having installed it already) are harmless.
pub fn install_crypto_provider() {
    // Err means a provider is already installed: fine, ours or the same one.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// `User-Agent` of every request (a client default header, counted in the wire size).
const USER_AGENT: &str = concat!("citygate/", env!("CARGO_PKG_VERSION"));

/// The HTTP binding: one reqwest client (connection pool) per configured CSE.
#[derive(Debug, Clone)]
pub struct HttpBinding {
    client: reqwest::Client,
    /// `cse_url` without a trailing slash.
    base: String,
    credentials: Option<Credentials>,
    timeout: Duration,
    max_reply_bytes: u64,
    serialization: Serialization,
    wire: WireMetrics,
}

impl HttpBinding {
    /// Builds the client: timeouts, pool sized for `max_in_flight`, custom CA / client
    /// certificate, credentials read from their file or environment variable.
    pub fn new(cfg: &NorthboundConfig) -> Result<Self, BindingError> {
        install_crypto_provider();
        let base = cfg.cse_url.trim().trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(BindingError::Config(format!(
                "cse_url {base:?} is not http:// or https://"
            )));
        }
        let credentials = cfg.auth.resolve().map_err(BindingError::Config)?;
        if credentials.is_some() && base.starts_with("http://") {
            tracing::warn!(cse_url = %base, "CSE credentials are sent over plain http");
        }
        let mut builder = reqwest::Client::builder()
            .timeout(cfg.request_timeout)
            .connect_timeout(cfg.request_timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(cfg.max_in_flight.max(1))
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .user_agent(USER_AGENT);
        if let Some(ca) = &cfg.tls.ca_file {
            let pem = read_config_file(ca)?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| BindingError::Config(format!("CA file {}: {e}", ca.display())))?;
            if certs.is_empty() {
                return Err(BindingError::Config(format!(
                    "CA file {} holds no certificate",
                    ca.display()
                )));
            }
            // A city CSE is usually signed by a private CA: trust exactly that one.
            builder = builder.tls_certs_only(certs);
        } else if base.starts_with("http://") {
            // Plain HTTP needs no CA roots. Loading the system's would stop a gateway without
            // the ca-certificates package from starting, and keeps ~150 certificates in memory.
            builder = builder.tls_certs_only(Vec::new());
        }
        if let (Some(cert), Some(key)) = (&cfg.tls.client_cert_file, &cfg.tls.client_key_file) {
            let mut pem = read_config_file(cert)?;
            pem.push(b'\n');
            pem.extend(read_config_file(key)?);
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                BindingError::Config(format!(
                    "client certificate {} / key {}: {e}",
                    cert.display(),
                    key.display()
                ))
            })?;
            builder = builder.identity(identity);
        }
        let client = builder
            .build()
            .map_err(|e| BindingError::Config(format!("HTTP client: {}", error_chain(&e))))?;
        Ok(HttpBinding {
            client,
            base,
            credentials,
            timeout: cfg.request_timeout,
            max_reply_bytes: cfg.max_reply_bytes,
            serialization: cfg.serialization,
            wire: WireMetrics::detached(),
        })
    }

    /// Builder: count bytes on the wire into these handles (`citygate_northbound_bytes_total`).
    pub fn with_wire_metrics(mut self, wire: WireMetrics) -> Self {
        self.wire = wire;
        self
    }

    /// The full URL of a request: base + mapped path (+ `?rcn=`). `to` comes with its
    /// segments percent-encoded ([`name::address`]); anything raw left in it that could end
    /// the path (`?`, `#`, spaces, non-ASCII) is encoded here too ([`name::url_path`]).
    pub fn url_for(&self, req: &Request) -> String {
        let to = name::url_path(&req.to);
        let path = if let Some(abs) = to.strip_prefix("//") {
            format!("/_/{abs}")
        } else if to.starts_with('/') {
            format!("/~{to}")
        } else {
            format!("/{to}")
        };
        match req.rcn {
            Some(rcn) => format!("{}{path}?rcn={rcn}", self.base),
            None => format!("{}{path}", self.base),
        }
    }

    fn map_error(&self, e: reqwest::Error) -> BindingError {
        let detail = error_chain(&e);
        if e.is_timeout() {
            BindingError::Timeout(self.timeout)
        } else if e.is_connect() {
            BindingError::Connect(detail)
        } else {
            BindingError::Transport(detail)
        }
    }
}

#[async_trait::async_trait]
impl Binding for HttpBinding {
    async fn send(&self, req: Request) -> Result<Response, BindingError> {
        let method = match req.op {
            Operation::Create | Operation::Notify => reqwest::Method::POST,
            Operation::Retrieve => reqwest::Method::GET,
            Operation::Update => reqwest::Method::PUT,
            Operation::Delete => reqwest::Method::DELETE,
        };
        let mut rb = self
            .client
            .request(method, self.url_for(&req))
            .header("X-M2M-RI", &req.rqi)
            .header("X-M2M-RVI", &req.rvi)
            .header("Accept", self.serialization.media_type());
        if let Some(rqet) = &req.rqet {
            // A long poll: the CSE holds the request until `rqet`; allow for that.
            rb = rb.header("X-M2M-RET", rqet);
            if let Some(until) = crate::record::parse_onem2m_ts(rqet) {
                let wait = (until - crate::record::now_ms()).max(0) as u64;
                rb = rb.timeout(self.timeout + Duration::from_millis(wait));
            }
        }
        // An AE create may go without originator; every other request needs one.
        if !req.fr.is_empty() {
            rb = rb.header("X-M2M-Origin", &req.fr);
        }
        if let Some(pc) = &req.pc {
            let media = self.serialization.media_type();
            let content_type = match req.ty {
                Some(ty) => format!("{media};ty={}", u16::from(ty)),
                None => media.to_string(),
            };
            let body = self.serialization.encode(pc)?;
            rb = rb.header("Content-Type", content_type).body(body);
        }
        rb = match &self.credentials {
            Some(Credentials::Basic { user, password }) => rb.basic_auth(user, Some(password)),
            Some(Credentials::Bearer { token }) => rb.bearer_auth(token),
            None => rb,
        };
        let request = rb.build().map_err(|e| self.map_error(e))?;
        self.wire.sent.inc_by(request_wire_size(&request));
        self.wire.requests.inc();
        let resp = self
            .client
            .execute(request)
            .await
            .map_err(|e| self.map_error(e))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = self.read_body(resp).await?;
        self.wire
            .received
            .inc_by(response_wire_size(status, &headers, body.len()));
        parse_response_as(self.serialization, status, &headers, &body, &req.rqi)
    }
}

impl HttpBinding {
    /// The body, up to `max_reply_bytes`. A larger one is refused as soon as that is known
    /// (from `Content-Length`, or while reading): dropping the response closes the connection
    /// instead of reading the rest.
    async fn read_body(&self, mut resp: reqwest::Response) -> Result<Vec<u8>, BindingError> {
        let limit = self.max_reply_bytes;
        let too_large = |detail: String| BindingError::ReplyTooLarge { limit, detail };
        if let Some(len) = resp.content_length().filter(|len| *len > limit) {
            return Err(too_large(format!("Content-Length {len}")));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.map_error(e))? {
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(too_large(format!(
                    "more than {} bytes received",
                    body.len() + chunk.len()
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// Size of a request as HTTP/1.1 puts it on the wire, as far as the binding sees it: request
/// line, the headers set here and by the client's defaults, `Host`, `Content-Length` and the
/// body (TLS framing and headers added by the connection layer are not seen).
fn request_wire_size(req: &reqwest::Request) -> u64 {
    let url = req.url();
    let target = url.path().len() + url.query().map_or(0, |q| q.len() + 1);
    let line = req.method().as_str().len() + 1 + target + " HTTP/1.1\r\n".len();
    let host = "Host: \r\n".len() + url.host_str().map_or(0, str::len) + 6;
    let body = req.body().and_then(|b| b.as_bytes()).map_or(0, <[u8]>::len);
    let length = if body > 0 {
        "Content-Length: \r\n".len() + body.to_string().len()
    } else {
        0
    };
    let agent = "user-agent: \r\n".len() + USER_AGENT.len();
    (line + host + agent + headers_size(req.headers()) + length + 2 + body) as u64
}

/// Size of a response: status line, headers and body.
fn response_wire_size(status: u16, headers: &HeaderMap, body: usize) -> u64 {
    let line = "HTTP/1.1 000 \r\n".len()
        + reqwest::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .map_or(0, str::len);
    (line + headers_size(headers) + 2 + body) as u64
}

fn headers_size(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(k, v)| k.as_str().len() + 2 + v.len() + 2)
        .sum()
}

/// Turns an HTTP answer into a response primitive. `X-M2M-RSC` decides; without it a 401/403
/// is an auth refusal and anything else an unusable (retryable) answer. The body is read as
/// JSON.
pub fn parse_response(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    sent_rqi: &str,
) -> Result<Response, BindingError> {
    parse_response_as(Serialization::Json, status, headers, body, sent_rqi)
}

/// [`parse_response`] for a binding that asked for `asked`: the body is decoded as its
/// `Content-Type` says (JSON or CBOR), as `asked` when it names neither.
pub fn parse_response_as(
    asked: Serialization,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    sent_rqi: &str,
) -> Result<Response, BindingError> {
    let retry_after = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| super::retry::parse_retry_after(v, chrono::Utc::now().timestamp()));
    // HeaderMap names are case-insensitive: this finds X-M2M-RSC and X-M2m-Rsc alike.
    let Some(raw) = headers.get("x-m2m-rsc") else {
        if status == 401 || status == 403 {
            return Err(BindingError::AuthRefused { status });
        }
        if status == 429 || status == 503 {
            return Err(BindingError::Overloaded {
                status,
                retry_after,
            });
        }
        return Err(BindingError::MissingRsc {
            status,
            detail: format!("no X-M2M-RSC header; body: {}", snippet(body)),
        });
    };
    let rsc = raw
        .to_str()
        .ok()
        .and_then(|s| s.trim().parse::<u16>().ok())
        .ok_or_else(|| BindingError::MissingRsc {
            status,
            detail: format!("X-M2M-RSC {raw:?} is not a number"),
        })?;
    let ser = headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(Serialization::from_media_type)
        .unwrap_or(asked);
    let body_value = ser.decode(rsc, body)?;
    let rqi = headers.get("x-m2m-ri").and_then(|v| v.to_str().ok());
    let mut response = response_for(rsc, rqi, sent_rqi, body_value)?;
    // Only where the server also refused the request: a 2xxx with Retry-After is a success.
    if status == 429 || status == 503 || rsc >= 5000 || rsc == 4008 {
        response.retry_after = retry_after;
    }
    Ok(response)
}

/// `error: cause: cause` — reqwest hides the useful part (refused, TLS) in its sources.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
