//! The transport seam: a [`Binding`] carries one request primitive to the CSE and brings back
//! its response. HTTP (TS-0009) and MQTT (TS-0010, responses correlated by `rqi`) implement it;
//! registration, the tree and the syncer are the same over both.
use super::onem2m::primitive::{Request, Response, Rsc};

pub use super::binding_error::BindingError;

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
