//! What to do with the answer to a request: one explicit class per outcome. The delay between
//! retries comes from [`crate::backoff`].
//!
//! The table (protocols.md §1.3, design recommendation):
//! - delivered: 2xxx;
//! - already there: 4105 CONFLICT / 5106 ALREADY_EXISTS — the record's deterministic `rn`
//!   exists, so an earlier attempt whose response was lost did commit it;
//! - retry: transport errors, timeouts, unusable answers, 4008, 1xxx (not tracked), and every
//!   5xxx except 5001/5105/5207;
//! - tree missing: 4004 / 4106 — the container or the AE vanished (CSE wiped): rebuild, retry;
//! - permanent: the record itself is unacceptable (4000, 4102, 4005, 4015, 4108, 5001, 5207,
//!   6xxx, other 4xxx): dead-letter it and go on;
//! - refused: the CSE refuses the gateway, not a record (4001, 4101, 4103, 4107, 4126, 5105,
//!   HTTP 401/403 without RSC): stop syncing, report unhealthy, retry slowly. 4117 (already
//!   registered) is refused too; registration handles it before classifying (RETRIEVE, reuse).
use super::binding::BindingError;
use super::onem2m::primitive::{Response, Rsc};

/// Why a request should be retried (a metrics label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RetryReason {
    /// Connect failure, broken connection.
    Transport,
    /// No answer within the request timeout, or 4008.
    Timeout,
    /// 5xxx (or 1xxx) from the CSE.
    Server,
    /// An answer that was not a usable oneM2M response.
    BadResponse,
}

impl RetryReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RetryReason::Transport => "transport",
            RetryReason::Timeout => "timeout",
            RetryReason::Server => "server",
            RetryReason::BadResponse => "bad_response",
        }
    }
}

/// The class of one request's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    AlreadyThere,
    Retry { reason: RetryReason, detail: String },
    TreeMissing { detail: String },
    Permanent { rsc: Option<u16>, detail: String },
    Refused { rsc: Option<u16>, detail: String },
}

impl Outcome {
    /// A short text for logs and the state's `last_error`.
    pub fn describe(&self) -> String {
        match self {
            Outcome::Delivered => "delivered".into(),
            Outcome::AlreadyThere => "already there".into(),
            Outcome::Retry { reason, detail } => format!("retry ({}): {detail}", reason.as_str()),
            Outcome::TreeMissing { detail } => format!("tree missing: {detail}"),
            Outcome::Permanent { detail, .. } => format!("permanent: {detail}"),
            Outcome::Refused { detail, .. } => format!("refused: {detail}"),
        }
    }
}

/// Classifies a request's result.
pub fn classify(result: &Result<Response, BindingError>) -> Outcome {
    match result {
        Ok(resp) => classify_response(resp),
        Err(e) => classify_error(e),
    }
}

fn classify_error(e: &BindingError) -> Outcome {
    let detail = e.to_string();
    match e {
        BindingError::Timeout(_) => Outcome::Retry {
            reason: RetryReason::Timeout,
            detail,
        },
        BindingError::Connect(_) | BindingError::Transport(_) => Outcome::Retry {
            reason: RetryReason::Transport,
            detail,
        },
        BindingError::MissingRsc { .. }
        | BindingError::BadBody { .. }
        | BindingError::ForeignResponse { .. }
        | BindingError::ReplyTooLarge { .. } => Outcome::Retry {
            reason: RetryReason::BadResponse,
            detail,
        },
        BindingError::AuthRefused { .. } | BindingError::Config(_) => {
            Outcome::Refused { rsc: None, detail }
        }
    }
}

/// Classifies a response by its `rsc` alone.
pub fn classify_response(resp: &Response) -> Outcome {
    let code = resp.rsc.0;
    let detail = match &resp.dbg {
        // The CSE's text: bounded and escaped before it reaches logs and dead letters.
        Some(dbg) => format!(
            "{}: {}",
            resp.rsc,
            crate::telemetry::untrusted::Untrusted(dbg)
        ),
        None => resp.rsc.to_string(),
    };
    match code {
        2000..=2999 => Outcome::Delivered,
        4105 | 5106 => Outcome::AlreadyThere,
        4004 | 4106 => Outcome::TreeMissing { detail },
        4008 => Outcome::Retry {
            reason: RetryReason::Timeout,
            detail,
        },
        4001 | 4101 | 4103 | 4107 | 4117 | 4126 | 5105 => Outcome::Refused {
            rsc: Some(code),
            detail,
        },
        5001 | 5207 => Outcome::Permanent {
            rsc: Some(code),
            detail,
        },
        1000..=1999 | 5000..=5999 => Outcome::Retry {
            reason: RetryReason::Server,
            detail,
        },
        4000..=4999 | 6000..=6999 => Outcome::Permanent {
            rsc: Some(code),
            detail,
        },
        _ => Outcome::Retry {
            reason: RetryReason::BadResponse,
            detail: format!("unexpected response status code {}", Rsc(code)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rsc(code: u16) -> Outcome {
        classify(&Ok(Response::from_parts(Rsc(code), "r", None)))
    }

    #[test]
    fn response_codes_map_to_classes() {
        for c in [2000, 2001, 2004] {
            assert_eq!(rsc(c), Outcome::Delivered, "{c}");
        }
        for c in [4105, 5106] {
            assert_eq!(rsc(c), Outcome::AlreadyThere, "{c}");
        }
        for c in [4004, 4106] {
            assert!(matches!(rsc(c), Outcome::TreeMissing { .. }), "{c}");
        }
        for c in [4008, 5000, 5103, 5107, 5204, 1000, 1001] {
            assert!(matches!(rsc(c), Outcome::Retry { .. }), "{c}");
        }
        for c in [
            4000, 4102, 4005, 4015, 4108, 4110, 5001, 5207, 6010, 6023, 6024,
        ] {
            assert!(
                matches!(rsc(c), Outcome::Permanent { rsc: Some(x), .. } if x == c),
                "{c}"
            );
        }
        for c in [4001, 4101, 4103, 4107, 4117, 4126, 5105] {
            assert!(
                matches!(rsc(c), Outcome::Refused { rsc: Some(x), .. } if x == c),
                "{c}"
            );
        }
        assert!(matches!(
            rsc(3000),
            Outcome::Retry {
                reason: RetryReason::BadResponse,
                ..
            }
        ));
    }

    #[test]
    fn binding_errors_map_to_classes() {
        let retry = |e: BindingError, want: RetryReason| {
            assert!(
                matches!(classify(&Err(e.clone())), Outcome::Retry { reason, .. } if reason == want),
                "{e}"
            );
        };
        retry(
            BindingError::Timeout(Duration::from_secs(1)),
            RetryReason::Timeout,
        );
        retry(
            BindingError::Connect("refused".into()),
            RetryReason::Transport,
        );
        retry(
            BindingError::Transport("reset".into()),
            RetryReason::Transport,
        );
        retry(
            BindingError::MissingRsc {
                status: 502,
                detail: String::new(),
            },
            RetryReason::BadResponse,
        );
        retry(
            BindingError::BadBody {
                rsc: 2001,
                detail: String::new(),
            },
            RetryReason::BadResponse,
        );
        assert!(matches!(
            classify(&Err(BindingError::AuthRefused { status: 401 })),
            Outcome::Refused { rsc: None, .. }
        ));
    }

    #[test]
    fn dbg_text_is_kept_in_the_detail() {
        let o = classify(&Ok(Response::from_parts(
            Rsc(4000),
            "r",
            Some(serde_json::json!({"m2m:dbg": "Invalid ID: rn: a/b"})),
        )));
        assert_eq!(
            o.describe(),
            "permanent: 4000 BAD_REQUEST: Invalid ID: rn: a/b"
        );
    }
}
