//! The application downlinks of one device: queued commands, the one in flight, and how each
//! ends (the command's [`Outcome`]).
//!
//! Class A: a downlink can only go out right after an uplink, so commands wait here. One
//! command is in flight at a time (per-device order; LoRaWAN 1.0 allows one outstanding
//! confirmed downlink): it is `Sent` until the gateway's TX_ACK, then, if confirmed, waits for
//! the device's ACK in its next uplinks. Every job is answered exactly once: `done`,
//! `expired` (deadline passed before it could be sent), `failed` (gateway refused it for
//! good, retries used up, no ACK) or `unknown` (handed to the gateway, which never said
//! whether it transmitted).

use crate::commands::{Action, CommandJob, Downlink, Outcome};
use crate::record::{Value, Values};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Commands one device may have waiting; more are rejected.
pub const MAX_QUEUED: usize = 16;
/// Transmissions tried for one command (a TOO_LATE or collision is retried at the next uplink).
pub const MAX_ATTEMPTS: u8 = 3;
/// Uplinks without the ACK bit after which a confirmed downlink is `failed`.
pub const ACK_UPLINKS: u8 = 3;
/// A PULL_RESP without TX_ACK after this long is `unknown` (GWMP v2 forwarders always answer).
pub const TX_ACK_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the in-flight command is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Handed to the gateway in the PULL_RESP with this token.
    Sent { token: [u8; 2], at: Instant },
    /// Transmitted, confirmed: waiting for the device's ACK; uplinks seen without it.
    AwaitingAck { uplinks: u8 },
}

struct Queued {
    job: CommandJob,
    deadline_ms: i64,
    attempts: u8,
}

struct Active {
    q: Queued,
    stage: Stage,
    fcnt_down: u32,
    window: &'static str,
}

/// What the gateway's TX_ACK error means for the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxAckClass {
    /// Timing or a busy radio: worth another try at the next uplink.
    Retry,
    /// The gateway cannot transmit this (frequency, power, no GPS): fails.
    Fatal,
}

/// Classifies a GWMP v2 TX_ACK error (PROTOCOL.TXT §6).
pub fn classify_tx_ack(error: &str) -> TxAckClass {
    match error {
        "TOO_LATE" | "TOO_EARLY" | "COLLISION_PACKET" | "COLLISION_BEACON" => TxAckClass::Retry,
        _ => TxAckClass::Fatal,
    }
}

fn answer(job: CommandJob, outcome: Outcome) {
    // The dispatcher may be gone (shutdown); then nobody waits for the answer.
    let _ = job.done.send(outcome);
}

/// The queue of one device.
#[derive(Default)]
pub struct DeviceQueue {
    queue: VecDeque<Queued>,
    active: Option<Active>,
}

impl DeviceQueue {
    /// Takes a job; answers at once when it is already past `deadline_ms` or the queue is full.
    pub fn push(&mut self, job: CommandJob, deadline_ms: i64, now_ms: i64) {
        if now_ms > deadline_ms {
            return answer(
                job,
                expired("the command expired before it reached the device's queue"),
            );
        }
        if self.queue.len() >= MAX_QUEUED {
            return answer(
                job,
                Outcome::rejected(format!(
                    "the device already has {MAX_QUEUED} downlinks waiting for its next uplinks"
                )),
            );
        }
        self.queue.push_back(Queued {
            job,
            deadline_ms,
            attempts: 0,
        });
    }

    pub fn len(&self) -> usize {
        self.queue.len() + usize::from(self.active.is_some())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Answers what ran out of time: queued jobs past their deadline (`expired`), a PULL_RESP
    /// without TX_ACK for [`TX_ACK_TIMEOUT`] (`unknown`). Returns how many were answered.
    pub fn sweep(&mut self, now_ms: i64, now: Instant) -> usize {
        let before = self.len();
        let (keep, late): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut self.queue)
            .into_iter()
            .partition(|q| q.deadline_ms >= now_ms);
        self.queue = keep;
        for q in late {
            answer(
                q.job,
                expired("no uplink of the device opened a receive window before the deadline"),
            );
        }
        if let Some(Active {
            stage: Stage::Sent { at, .. },
            ..
        }) = &self.active
        {
            if now.saturating_duration_since(*at) > TX_ACK_TIMEOUT {
                if let Some(a) = self.active.take() {
                    answer(
                        a.q.job,
                        Outcome::Unknown {
                            reason: "the gateway never confirmed the transmission (no TX_ACK)"
                                .into(),
                        },
                    );
                }
            }
        }
        before - self.len()
    }

    /// The downlink to send in the next window, if none is in flight and one is due
    /// (`Set` commands never get here: they are rejected by the check).
    pub fn next(&self, now_ms: i64) -> Option<&Downlink> {
        if self.active.is_some() {
            return None;
        }
        let q = self.queue.front().filter(|q| q.deadline_ms >= now_ms)?;
        match &q.job.command.action {
            Action::Downlink(d) => Some(d),
            Action::Set(_) => None,
        }
    }

    /// The front job was handed to the gateway with `token` and FCntDown `fcnt_down`.
    pub fn sent(&mut self, token: [u8; 2], fcnt_down: u32, window: &'static str, at: Instant) {
        if let Some(mut q) = self.queue.pop_front() {
            q.attempts += 1;
            self.active = Some(Active {
                q,
                stage: Stage::Sent { token, at },
                fcnt_down,
                window,
            });
        }
    }

    /// The front job cannot go in any window now (`reason`): it stays for the next uplink,
    /// or fails once it has had [`MAX_ATTEMPTS`] chances.
    pub fn missed(&mut self, reason: &str) {
        let Some(q) = self.queue.front_mut() else {
            return;
        };
        q.attempts += 1;
        if q.attempts >= MAX_ATTEMPTS {
            if let Some(q) = self.queue.pop_front() {
                answer(
                    q.job,
                    Outcome::failed(format!(
                        "no receive window after {MAX_ATTEMPTS} uplinks: {reason}"
                    )),
                );
            }
        }
    }

    /// True if the in-flight job was sent with `token`.
    pub fn owns(&self, token: [u8; 2]) -> bool {
        matches!(&self.active, Some(Active { stage: Stage::Sent { token: t, .. }, .. }) if *t == token)
    }

    /// The gateway's TX_ACK for the in-flight job: `None` = transmitted. Also used right
    /// after sending to a GWMP v1 forwarder, which has no TX_ACK.
    pub fn tx_ack(&mut self, error: Option<&str>) {
        let Some(mut a) = self.active.take() else {
            return;
        };
        match error {
            None if a.q.job.command_confirmed() => {
                a.stage = Stage::AwaitingAck { uplinks: 0 };
                self.active = Some(a);
            }
            None => answer(a.q.job, done(a.fcnt_down, a.window)),
            Some(e) => match classify_tx_ack(e) {
                TxAckClass::Retry if a.q.attempts < MAX_ATTEMPTS => self.queue.push_front(a.q),
                TxAckClass::Retry => answer(
                    a.q.job,
                    Outcome::failed(format!(
                        "the gateway refused the downlink {MAX_ATTEMPTS} times, last with {e}"
                    )),
                ),
                TxAckClass::Fatal => answer(
                    a.q.job,
                    Outcome::failed(format!("the gateway cannot transmit it: {e}")),
                ),
            },
        }
    }

    /// A new uplink of the device: settles a confirmed downlink waiting for its ACK.
    pub fn uplink(&mut self, ack_bit: bool) {
        let Some(Active {
            stage: Stage::AwaitingAck { uplinks },
            ..
        }) = &mut self.active
        else {
            return;
        };
        *uplinks += 1;
        let give_up = *uplinks >= ACK_UPLINKS;
        if ack_bit || give_up {
            if let Some(a) = self.active.take() {
                let outcome = if ack_bit {
                    done(a.fcnt_down, a.window)
                } else {
                    Outcome::failed(format!("the device did not acknowledge the confirmed downlink in {ACK_UPLINKS} uplinks"))
                };
                answer(a.q.job, outcome);
            }
        }
    }
}

trait Confirmed {
    fn command_confirmed(&self) -> bool;
}

impl Confirmed for CommandJob {
    fn command_confirmed(&self) -> bool {
        matches!(&self.command.action, Action::Downlink(d) if d.confirmed)
    }
}

fn expired(reason: &str) -> Outcome {
    Outcome::Expired {
        reason: reason.into(),
    }
}

/// `done`, reporting the FCntDown and window it went out with.
fn done(fcnt_down: u32, window: &'static str) -> Outcome {
    let mut read_back = Values::new();
    read_back.insert("fcnt_down".into(), Value::I64(i64::from(fcnt_down)));
    read_back.insert("rx_window".into(), Value::Str(window.into()));
    Outcome::Done { read_back }
}

#[cfg(test)]
#[path = "queue_tests.rs"]
mod tests;
