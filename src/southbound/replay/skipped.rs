//! Lines the replay adapter does not store: counted by reason and logged with their line
//! number, a few a minute at most.
//!
//! A damaged capture can hold millions of bad lines; one warning each would bury the log (and
//! wear the SD card), so after [`WARNINGS_PER_WINDOW`] warnings in a minute the rest are only
//! counted, and one summary says how many were held back. The counters are
//! `citygate_adapter_errors_total{adapter, kind}` with the kinds of [`ReplayMetrics`].

use super::line::LineError;
use crate::telemetry::untrusted::{LogLimiter, Untrusted};
use crate::telemetry::ReplayMetrics;
use std::time::Duration;

/// What was wrong with a line.
pub enum Skip<'a> {
    TooLong { bytes: u64 },
    Zeros { bytes: u64 },
    Invalid { error: LineError, line: &'a [u8] },
}

/// Warnings logged individually per window; the rest are summarised.
pub const WARNINGS_PER_WINDOW: u32 = 10;
const WINDOW: Duration = Duration::from_secs(60);
/// Bytes of a bad line quoted in its warning.
const EXCERPT_BYTES: usize = 40;

/// Counts skipped lines and logs them, rate limited (the one limiter of
/// [`crate::telemetry::untrusted`]).
pub struct SkipLog {
    adapter: String,
    limiter: LogLimiter,
}

/// The limiter's source key: one budget for the whole file.
const SOURCE: &str = "lines";

impl SkipLog {
    pub fn new(adapter: &str) -> Self {
        SkipLog {
            adapter: adapter.to_owned(),
            limiter: LogLimiter::new(WARNINGS_PER_WINDOW, WINDOW),
        }
    }

    /// Counts `skip` (line `number` of `file`) and logs it unless the window's budget is spent.
    pub fn record(&mut self, counters: &ReplayMetrics, file: &str, number: u64, skip: Skip<'_>) {
        let counter = match &skip {
            Skip::TooLong { .. } => &counters.line_too_long,
            Skip::Zeros { .. } => &counters.zero_filled,
            Skip::Invalid {
                error: LineError::Utf8 { .. },
                ..
            } => &counters.invalid_utf8,
            Skip::Invalid { .. } => &counters.invalid_record,
        };
        counter.inc();
        let Some(not_logged_before) = self.limiter.allow(SOURCE) else {
            return;
        };
        let adapter = self.adapter.as_str();
        match skip {
            Skip::TooLong { bytes } => {
                tracing::warn!(
                    adapter,
                    file,
                    line = number,
                    bytes,
                    not_logged_before,
                    "skipping replay line longer than max_line_bytes"
                )
            }
            Skip::Zeros { bytes } => {
                tracing::warn!(
                    adapter,
                    file,
                    line = number,
                    zero_bytes = bytes,
                    not_logged_before,
                    "skipping zero bytes in replay file (power-cut damage?)"
                )
            }
            Skip::Invalid { error, line } => {
                let error = error.to_string();
                tracing::warn!(adapter, file, line = number, error = %Untrusted(&error), excerpt = %excerpt(line), not_logged_before, "skipping bad replay line")
            }
        }
    }

    /// Logs how many warnings were held back, if any (at the end of a pass).
    pub fn finish(&mut self) {
        let held_back = self.limiter.take_suppressed(SOURCE);
        if held_back > 0 {
            tracing::warn!(adapter = %self.adapter, not_logged = held_back, "more bad replay lines were skipped than logged (see citygate_adapter_errors_total)");
        }
    }
}

/// The first bytes of a bad line, escaped (`\xff`, `\x00`, `\n`) so a log line stays one
/// short line of text whatever the file holds.
pub fn excerpt(line: &[u8]) -> String {
    let head = &line[..line.len().min(EXCERPT_BYTES)];
    let mut out = head.escape_ascii().to_string();
    if line.len() > EXCERPT_BYTES {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_short_and_escaped() {
        assert_eq!(excerpt(b"{\"a\xff\x00\n"), "{\\\"a\\xff\\x00\\n");
        let long = vec![b'z'; 10_000];
        let e = excerpt(&long);
        assert_eq!(e, format!("{}…", "z".repeat(EXCERPT_BYTES)));
    }

    #[test]
    fn every_skip_is_counted_but_only_a_few_are_logged() {
        let counters = ReplayMetrics::detached();
        let mut log = SkipLog::new("r");
        for n in 0..100 {
            let error = LineError::Utf8 { column: 1 };
            log.record(
                &counters,
                "f",
                n,
                Skip::Invalid {
                    error,
                    line: b"\xff",
                },
            );
        }
        log.record(&counters, "f", 101, Skip::TooLong { bytes: 5 });
        log.record(&counters, "f", 102, Skip::Zeros { bytes: 5 });
        let error = LineError::NoValues;
        log.record(&counters, "f", 103, Skip::Invalid { error, line: b"{}" });
        assert_eq!(counters.invalid_utf8.get(), 100);
        assert_eq!(counters.line_too_long.get(), 1);
        assert_eq!(counters.zero_filled.get(), 1);
        assert_eq!(counters.invalid_record.get(), 1);
        // 10 logged, the other 93 held back for the summary.
        assert_eq!(log.limiter.take_suppressed(SOURCE), 93);
        log.finish();
        assert_eq!(log.limiter.take_suppressed(SOURCE), 0);
    }
}
