//! Text that comes from outside (a forwarder's error string, a CSE reply body, a broker
//! payload, an id heard over the air) never reaches the log as it is: [`Untrusted`] prints at
//! most [`MAX_CHARS`] characters with control characters, newlines and ANSI escapes escaped,
//! and [`LogLimiter`] lets through at most a few warnings per source and minute, then reports
//! how many it held back.
//!
//! Without this one hostile peer can write hundreds of megabytes of log in seconds, forge log
//! lines with embedded newlines, or drive a terminal with escape sequences.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

/// Characters of untrusted text printed; a longer text ends in `…(truncated, N bytes)`.
pub const MAX_CHARS: usize = 200;

/// Displays untrusted text truncated to [`MAX_CHARS`] characters and escaped
/// (`char::escape_debug`: `\n`, `\u{1b}`, … instead of the raw characters).
#[derive(Clone, Copy)]
pub struct Untrusted<'a>(pub &'a str);

impl fmt::Display for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_bounded(f, self.0, self.0.len())
    }
}

impl fmt::Debug for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// Writes at most [`MAX_CHARS`] characters of `text`, escaped; `total_bytes` is the size of
/// the whole original (which `text` may be only the head of).
fn write_bounded(f: &mut impl fmt::Write, text: &str, total_bytes: usize) -> fmt::Result {
    let mut shown = 0;
    for c in text.chars().take(MAX_CHARS) {
        // Quotes and backslashes stay as they are: only what could break a line, drive a
        // terminal or hide text is escaped.
        if c.is_control() || is_invisible_format(c) {
            write!(f, "{}", c.escape_debug())?;
        } else {
            f.write_char(c)?;
        }
        shown += c.len_utf8();
    }
    if shown < total_bytes {
        write!(f, "…(truncated, {total_bytes} bytes)")?;
    }
    Ok(())
}

/// Bidirectional overrides and zero-width characters: printable, but they make a log line
/// read differently from what it contains.
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// Untrusted bytes (a reply body, a payload) as bounded, escaped text: invalid UTF-8 becomes
/// U+FFFD, and only the first `4 * MAX_CHARS` bytes are looked at, so describing a 100 MB body
/// costs nothing.
pub fn snippet(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(4 * MAX_CHARS)];
    let text = String::from_utf8_lossy(head);
    let mut s = String::new();
    // Lossy decoding may change the length; compare what was decoded with the whole body.
    let total = if head.len() == bytes.len() {
        text.len()
    } else {
        bytes.len().max(text.len() + 1)
    };
    let _ = write_bounded(&mut s, &text, total);
    s
}

/// Warnings allowed per source and window by [`LogLimiter::default`].
pub const DEFAULT_PER_WINDOW: u32 = 5;
/// The window of [`LogLimiter::default`].
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(60);
/// Sources remembered at once; further sources share one bucket, so the limiter itself stays
/// bounded when the source names come from outside (gateway EUIs, addresses).
pub const MAX_SOURCES: usize = 256;
const OVERFLOW_KEY: &str = "(other sources)";

struct Bucket {
    window_start: Instant,
    logged: u32,
    suppressed: u64,
}

/// Per-source rate limit for log lines: at most `per_window` lines per source per `window`.
///
/// ```ignore
/// if let Some(suppressed) = limiter.allow(&gateway.to_string()) {
///     tracing::warn!(gateway = %gateway, error = %Untrusted(err), suppressed, "gateway refused downlink");
/// }
/// ```
pub struct LogLimiter {
    per_window: u32,
    window: Duration,
    buckets: HashMap<String, Bucket>,
}

impl Default for LogLimiter {
    fn default() -> Self {
        LogLimiter::new(DEFAULT_PER_WINDOW, DEFAULT_WINDOW)
    }
}

impl LogLimiter {
    pub fn new(per_window: u32, window: Duration) -> Self {
        LogLimiter {
            per_window: per_window.max(1),
            window,
            buckets: HashMap::new(),
        }
    }

    /// `Some(k)`: log this line now, and say that `k` lines of this source were held back
    /// since the last one logged. `None`: drop it (it is counted).
    pub fn allow(&mut self, source: &str) -> Option<u64> {
        self.allow_at(source, Instant::now())
    }

    /// [`allow`](Self::allow) at a given time (tests).
    pub fn allow_at(&mut self, source: &str, now: Instant) -> Option<u64> {
        if !self.buckets.contains_key(source) && self.buckets.len() >= MAX_SOURCES {
            let window = self.window;
            self.buckets.retain(|_, b| {
                now.saturating_duration_since(b.window_start) < window || b.suppressed > 0
            });
        }
        let key = if self.buckets.contains_key(source) || self.buckets.len() < MAX_SOURCES {
            source
        } else {
            OVERFLOW_KEY
        };
        // Allocate the key only for a new source: callers sit on hot paths.
        if !self.buckets.contains_key(key) {
            let fresh = Bucket {
                window_start: now,
                logged: 0,
                suppressed: 0,
            };
            self.buckets.insert(key.to_owned(), fresh);
        }
        let bucket = match self.buckets.get_mut(key) {
            Some(b) => b,
            // Just inserted; unreachable, and logging is the safe answer.
            None => return Some(0),
        };
        if now.saturating_duration_since(bucket.window_start) >= self.window {
            bucket.window_start = now;
            bucket.logged = 0;
        }
        if bucket.logged < self.per_window {
            bucket.logged += 1;
            Some(std::mem::take(&mut bucket.suppressed))
        } else {
            bucket.suppressed += 1;
            None
        }
    }

    /// Takes the count of lines of `source` held back since the last one let through (for a
    /// summary line when a pass ends).
    pub fn take_suppressed(&mut self, source: &str) -> u64 {
        self.buckets
            .get_mut(source)
            .map(|b| std::mem::take(&mut b.suppressed))
            .unwrap_or(0)
    }

    /// Sources currently remembered (at most [`MAX_SOURCES`] + 1).
    pub fn sources(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
#[path = "untrusted_tests.rs"]
mod tests;
