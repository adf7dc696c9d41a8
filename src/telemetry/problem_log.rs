//! The last problems citygate logged, kept in memory for the platform (the eventLog mgmtObj).
//!
//! The source is the log itself: every `WARN` or `ERROR` event of citygate's own modules. That
//! is where an adapter failure ("adapter failed; restarting"), a buffer state change (read
//! only, disk full, I/O error, damaged) and a northbound failure (retries, refusals) are
//! already reported, rate limited where the source could flood. A [`ProblemLayer`] in the
//! logging subscriber copies each one, as one line, into a ring of at most
//! [`MAX_PROBLEMS`] entries of at most [`MAX_LINE_CHARS`] characters: the memory is bounded
//! whatever happens, the oldest problem goes first.
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, OnceLock};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// Problems kept.
pub const MAX_PROBLEMS: usize = 20;

/// Longest line kept per problem (characters); longer ones are cut with `…`.
pub const MAX_LINE_CHARS: usize = 240;

#[derive(Default)]
struct Inner {
    lines: VecDeque<String>,
    /// Problems recorded since start (so a reader can tell that something new came in).
    total: u64,
}

/// A bounded ring of problem lines, shared between the logging layer and its readers.
#[derive(Clone, Default)]
pub struct ProblemLog {
    inner: Arc<Mutex<Inner>>,
}

impl ProblemLog {
    /// The process's log, the one [`crate::telemetry::logging::init`] feeds.
    pub fn global() -> &'static ProblemLog {
        static LOG: OnceLock<ProblemLog> = OnceLock::new();
        LOG.get_or_init(ProblemLog::default)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds one line (cut to [`MAX_LINE_CHARS`]), dropping the oldest beyond [`MAX_PROBLEMS`].
    pub fn push(&self, line: &str) {
        let mut cut: String = line.chars().take(MAX_LINE_CHARS).collect();
        if cut.len() < line.len() {
            cut.pop();
            cut.push('…');
        }
        let mut inner = self.lock();
        if inner.lines.len() == MAX_PROBLEMS {
            inner.lines.pop_front();
        }
        inner.lines.push_back(cut);
        inner.total += 1;
    }

    /// The kept lines, oldest first, and the number recorded since start.
    pub fn snapshot(&self) -> (Vec<String>, u64) {
        let inner = self.lock();
        (inner.lines.iter().cloned().collect(), inner.total)
    }

    /// A tracing layer feeding this log.
    pub fn layer(&self) -> ProblemLayer {
        ProblemLayer { log: self.clone() }
    }
}

/// Copies citygate's own `WARN`/`ERROR` events into a [`ProblemLog`].
pub struct ProblemLayer {
    log: ProblemLog,
}

impl<S: Subscriber> Layer<S> for ProblemLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if *meta.level() > Level::WARN || !meta.target().starts_with("citygate") {
            return;
        }
        let mut line = format!(
            "{} {} {}:",
            crate::record::format_ts(crate::record::now_ms()),
            meta.level(),
            meta.target()
        );
        event.record(&mut LineVisitor(&mut line));
        self.log.push(&line);
    }
}

/// Writes `message` first as is, then `key=value` pairs, on one line.
struct LineVisitor<'a>(&'a mut String);

impl Visit for LineVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn keeps_the_last_warnings_and_errors_bounded() {
        let log = ProblemLog::default();
        let subscriber = tracing_subscriber::registry().with(log.layer());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("not a problem");
            tracing::warn!(
                adapter = "mb1",
                kind = "transport",
                "adapter failed; restarting"
            );
            for i in 0..MAX_PROBLEMS + 5 {
                tracing::error!(n = i, "buffer write failed");
            }
        });
        let (lines, total) = log.snapshot();
        assert_eq!(total, MAX_PROBLEMS as u64 + 6);
        assert_eq!(lines.len(), MAX_PROBLEMS);
        assert!(
            lines[0].contains("ERROR") && lines[0].contains("n=5"),
            "{lines:?}"
        );
        assert!(lines.iter().all(|l| !l.contains("not a problem")));
    }

    #[test]
    fn lines_are_cut() {
        let log = ProblemLog::default();
        log.push(&"x".repeat(1000));
        let (lines, _) = log.snapshot();
        assert_eq!(lines[0].chars().count(), MAX_LINE_CHARS);
        assert!(lines[0].ends_with('…'));
    }
}
