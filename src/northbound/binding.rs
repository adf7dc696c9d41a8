//! The transport seam: a [`Binding`] carries one request primitive to the CSE and brings back
//! its response. HTTP (TS-0009) and MQTT (TS-0010, responses correlated by `rqi`) implement it;
//! registration, the tree and the syncer are the same over both.
use super::onem2m::primitive::{Request, Response};

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
    /// A response without a usable oneM2M status code (not a oneM2M server, a proxy error page).
    #[error("HTTP {status} response without a valid X-M2M-RSC ({detail})")]
    MissingRsc { status: u16, detail: String },
    /// A reply larger than `[northbound] max_reply_bytes`, refused without reading it whole.
    #[error("reply from the CSE exceeds max_reply_bytes = {limit} ({detail})")]
    ReplyTooLarge { limit: u64, detail: String },
    /// A response whose body is not the JSON or CBOR it claims to be.
    #[error("unreadable response body (rsc {rsc}): {detail}")]
    BadBody { rsc: u16, detail: String },
}

#[async_trait::async_trait]
pub trait Binding: Send + Sync + 'static {
    /// Sends one request and waits for its response (bounded by the binding's timeout).
    async fn send(&self, req: Request) -> Result<Response, BindingError>;
}

/// Reads a certificate, key or CA file named in the config; a failure is a config error.
pub(super) fn read_config_file(path: &std::path::Path) -> Result<Vec<u8>, BindingError> {
    std::fs::read(path).map_err(|e| BindingError::Config(format!("{}: {e}", path.display())))
}

/// Nothing but whitespace.
pub(super) fn is_blank(body: &[u8]) -> bool {
    body.iter().all(u8::is_ascii_whitespace)
}
