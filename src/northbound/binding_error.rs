//! What can go wrong between sending a request and having its response, in one place that
//! depends on nothing else of the northbound: the bindings, the serializations and the outcome
//! classes all speak it.

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

/// Nothing but whitespace.
pub(crate) fn is_blank(body: &[u8]) -> bool {
    body.iter().all(u8::is_ascii_whitespace)
}
