//! What to do with the answer to a request: one explicit class per outcome. The delay between
//! retries comes from [`crate::backoff`].
//!
//! The table (protocols.md §1.3, design recommendation):
//! - delivered: 2xxx;
//! - already there: 4105 CONFLICT / 5106 ALREADY_EXISTS — the record's deterministic `rn`
//!   exists, so an earlier attempt whose response was lost did commit it;
//! - retry: transport errors, timeouts, unusable answers, 4008, 1xxx (not tracked), and every
//!   5xxx except 5001/5105/5207; HTTP 429/503 without RSC is an overload answer. A server's
//!   `Retry-After` (HTTP) rides along as `after`: the syncer waits at least that long
//!   (capped by `backoff.retry_after_max`);
//! - tree missing: 4004 / 4106 — the container or the AE vanished (CSE wiped): rebuild, retry;
//! - permanent: the record itself is unacceptable (4000, 4102, 4005, 4015, 4108, 5001, 5207,
//!   6xxx, other 4xxx): dead-letter it and go on;
//! - refused: the CSE refuses the gateway, not a record (4001, 4101, 4103, 4107, 4126, 5105,
//!   HTTP 401/403 without RSC): stop syncing, report unhealthy, retry slowly. 4117 (already
//!   registered) is refused too; registration handles it before classifying (RETRIEVE, reuse).
use super::binding::BindingError;
use super::onem2m::primitive::{Response, Rsc};
use std::time::Duration;

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
    /// The server said it is overloaded: HTTP 429/503 (without RSC), or any retryable answer
    /// carrying `Retry-After`.
    Overload,
}

impl RetryReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RetryReason::Transport => "transport",
            RetryReason::Timeout => "timeout",
            RetryReason::Server => "server",
            RetryReason::BadResponse => "bad_response",
            RetryReason::Overload => "overload",
        }
    }

    /// A sign that the CSE (or the path to it) is struggling: the adaptive in-flight limit
    /// shrinks on these. A bad answer is the answer's fault, not load.
    pub fn is_congestion(self) -> bool {
        !matches!(self, RetryReason::BadResponse)
    }
}

/// The class of one request's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    AlreadyThere,
    /// `after`: the least wait the server asked for (`Retry-After`), if it did.
    Retry {
        reason: RetryReason,
        detail: String,
        after: Option<Duration>,
    },
    TreeMissing {
        detail: String,
    },
    Permanent {
        rsc: Option<u16>,
        detail: String,
    },
    Refused {
        rsc: Option<u16>,
        detail: String,
    },
}

impl Outcome {
    /// A retry without a server-requested wait.
    pub fn retry(reason: RetryReason, detail: impl Into<String>) -> Self {
        Outcome::Retry {
            reason,
            detail: detail.into(),
            after: None,
        }
    }

    /// A short text for logs and the state's `last_error`.
    pub fn describe(&self) -> String {
        match self {
            Outcome::Delivered => "delivered".into(),
            Outcome::AlreadyThere => "already there".into(),
            Outcome::Retry { reason, detail, .. } => {
                format!("retry ({}): {detail}", reason.as_str())
            }
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
        BindingError::Timeout(_) => Outcome::retry(RetryReason::Timeout, detail),
        BindingError::Connect(_) | BindingError::Transport(_) => {
            Outcome::retry(RetryReason::Transport, detail)
        }
        BindingError::Overloaded { retry_after, .. } => Outcome::Retry {
            reason: RetryReason::Overload,
            detail,
            after: *retry_after,
        },
        BindingError::MissingRsc { .. }
        | BindingError::BadBody { .. }
        | BindingError::ForeignResponse { .. }
        | BindingError::ReplyTooLarge { .. } => Outcome::retry(RetryReason::BadResponse, detail),
        BindingError::AuthRefused { .. } | BindingError::Config(_) => {
            Outcome::Refused { rsc: None, detail }
        }
    }
}

/// Classifies a response by its `rsc`; a retryable one keeps the server's `Retry-After`
/// (and then counts as an overload answer).
pub fn classify_response(resp: &Response) -> Outcome {
    match classify_rsc(resp) {
        Outcome::Retry { detail, .. } if resp.retry_after.is_some() => Outcome::Retry {
            reason: RetryReason::Overload,
            detail,
            after: resp.retry_after,
        },
        other => other,
    }
}

fn classify_rsc(resp: &Response) -> Outcome {
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
        4008 => Outcome::retry(RetryReason::Timeout, detail),
        4001 | 4101 | 4103 | 4107 | 4117 | 4126 | 5105 => Outcome::Refused {
            rsc: Some(code),
            detail,
        },
        5001 | 5207 => Outcome::Permanent {
            rsc: Some(code),
            detail,
        },
        1000..=1999 | 5000..=5999 => Outcome::retry(RetryReason::Server, detail),
        4000..=4999 | 6000..=6999 => Outcome::Permanent {
            rsc: Some(code),
            detail,
        },
        _ => Outcome::retry(
            RetryReason::BadResponse,
            format!("unexpected response status code {}", Rsc(code)),
        ),
    }
}

/// `Retry-After` (RFC 9110 §10.2.3): delay-seconds, or an HTTP date (relative to `now`, in
/// Unix seconds). A date in the past is no wait; anything unreadable is ignored (`None`), never
/// an error: the header is advice.
pub fn parse_retry_after(value: &str, now_unix_s: i64) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = date.timestamp().saturating_sub(now_unix_s).max(0);
    Some(Duration::from_secs(u64::try_from(wait).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        let now = 1_784_000_000; // 2026-07-14T05:33:20Z
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        // IMF-fixdate 90 s after `now`.
        let later = chrono::DateTime::from_timestamp(now + 90, 0)
            .expect("valid")
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past is no wait"
        );
        for bad in ["", "soon", "-5", "1.5", "Wed, 99 Oct 2015 07:28:00 GMT"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn overload_answers_carry_the_requested_wait() {
        let wait = Some(Duration::from_secs(30));
        // HTTP 429/503 without RSC.
        let o = classify(&Err(BindingError::Overloaded {
            status: 503,
            retry_after: wait,
        }));
        assert!(
            matches!(o, Outcome::Retry { reason: RetryReason::Overload, after, .. } if after == wait),
            "{o:?}"
        );
        // A retryable oneM2M answer (5000, 4008) with Retry-After.
        for code in [5000, 4008] {
            let mut resp = Response::from_parts(Rsc(code), "r", None);
            resp.retry_after = wait;
            let o = classify(&Ok(resp));
            assert!(
                matches!(o, Outcome::Retry { reason: RetryReason::Overload, after, .. } if after == wait),
                "{code}: {o:?}"
            );
        }
        // Without Retry-After: the plain reasons, no requested wait.
        assert!(matches!(
            rsc(4008),
            Outcome::Retry {
                reason: RetryReason::Timeout,
                after: None,
                ..
            }
        ));
        assert!(matches!(
            rsc(5103),
            Outcome::Retry {
                reason: RetryReason::Server,
                after: None,
                ..
            }
        ));
        // Retry-After on a success or a permanent answer changes nothing.
        let mut ok = Response::from_parts(Rsc(2001), "r", None);
        ok.retry_after = wait;
        assert_eq!(classify(&Ok(ok)), Outcome::Delivered);
        let mut bad = Response::from_parts(Rsc(4000), "r", None);
        bad.retry_after = wait;
        assert!(matches!(classify(&Ok(bad)), Outcome::Permanent { .. }));
    }

    #[test]
    fn congestion_reasons_exclude_bad_answers() {
        for r in [
            RetryReason::Transport,
            RetryReason::Timeout,
            RetryReason::Server,
            RetryReason::Overload,
        ] {
            assert!(r.is_congestion(), "{r:?}");
        }
        assert!(!RetryReason::BadResponse.is_congestion());
    }
}
