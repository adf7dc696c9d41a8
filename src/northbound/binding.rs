//! The transport seam: a [`Binding`] carries one request primitive to the CSE and brings back
//! its response. HTTP (TS-0009) and MQTT (TS-0010, responses correlated by `rqi`) implement it;
//! registration, the tree and the syncer are the same over both.
use super::onem2m::primitive::{Request, Response, Rsc};

/// Why no oneM2M response came back. An error is never a oneM2M outcome: a response with an
/// error `rsc` (4004, 5000 …) is an `Ok(Response)`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BindingError {
    /// The binding could not be built (bad URL, unreadable CA/secret file …).
    #[error("northbound binding configuration: {0}")]
    Config(String),
    /// Could not connect (refused, DNS, TLS handshake).
    #[error("cannot connect to the CSE: {0}")]
    Connect(String),
    /// No complete response within the request timeout.
    #[error("request timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// The connection broke while sending or receiving.
    #[error("transport error: {0}")]
    Transport(String),
    /// HTTP 401/403 without `X-M2M-RSC`: the HTTP layer (basic/bearer auth, a proxy) refused us.
    #[error("the CSE refused our credentials (HTTP {status} without X-M2M-RSC)")]
    AuthRefused { status: u16 },
    /// HTTP 429 / 503 without `X-M2M-RSC`: the server (or a proxy in front of it) is
    /// overloaded; `retry_after` is its `Retry-After`, if it sent one.
    #[error("the CSE is overloaded (HTTP {status}{}); retry later", retry_after.map(|d| format!(", Retry-After {}s", d.as_secs())).unwrap_or_default())]
    Overloaded {
        status: u16,
        retry_after: Option<std::time::Duration>,
    },
    /// A response without a usable oneM2M status code (not a oneM2M server, a proxy error page).
    #[error("HTTP {status} response without a valid X-M2M-RSC ({detail})")]
    MissingRsc { status: u16, detail: String },
    /// A reply larger than `[northbound] max_reply_bytes`, refused without reading it whole.
    #[error("reply from the CSE exceeds max_reply_bytes = {limit} ({detail})")]
    ReplyTooLarge { limit: u64, detail: String },
    /// A response whose body is not the JSON or CBOR it claims to be.
    #[error("unreadable response body (rsc {rsc}): {detail}")]
    BadBody { rsc: u16, detail: String },
    /// A response that names another request id than the one sent: no verdict on this request.
    #[error("response (rsc {rsc}) names request id {got:?}, not {sent:?}")]
    ForeignResponse { rsc: u16, sent: String, got: String },
}

#[async_trait::async_trait]
pub trait Binding: Send + Sync + 'static {
    /// Sends one request and waits for its response (bounded by the binding's timeout).
    async fn send(&self, req: Request) -> Result<Response, BindingError>;
}

/// The response primitive for the request `sent_rqi`. A response whose request id names
/// another request is refused: it is no verdict on this one. A CSE that is still starting
/// answers like that (ACME sends `4000` with request id `None` before it can read requests),
/// and taking such an answer as a rejection would dead-letter a good record. Without a request
/// id the response is taken as ours (the binding matched it to the request already).
pub(super) fn response_for(
    rsc: u16,
    got_rqi: Option<&str>,
    sent_rqi: &str,
    body: Option<serde_json::Value>,
) -> Result<Response, BindingError> {
    match got_rqi {
        Some(got) if got != sent_rqi => Err(BindingError::ForeignResponse {
            rsc,
            sent: sent_rqi.to_string(),
            got: crate::telemetry::untrusted::snippet(got.as_bytes()),
        }),
        _ => Ok(Response::from_parts(Rsc(rsc), sent_rqi, body)),
    }
}

/// Reads a certificate, key or CA file named in the config; a failure is a config error.
pub(super) fn read_config_file(path: &std::path::Path) -> Result<Vec<u8>, BindingError> {
    std::fs::read(path).map_err(|e| BindingError::Config(format!("{}: {e}", path.display())))
}

/// Nothing but whitespace.
pub(super) fn is_blank(body: &[u8]) -> bool {
    body.iter().all(u8::is_ascii_whitespace)
}
