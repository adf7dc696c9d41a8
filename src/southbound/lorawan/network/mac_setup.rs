//! The radio settings the network asks a device to change when the config says so:
//! RXTimingSetupReq (RX1 delay), RXParamSetupReq (RX1DROffset, RX2 data rate and frequency),
//! DutyCycleReq (aggregated duty cycle) and NewChannelReq (extra channels of a dynamic channel
//! plan), TS001-1.0.3 §5.3, §5.4, §5.6.1, §5.7.
//!
//! The device's settings as the network knows them ([`DeviceRadio`]) change only when the
//! device acknowledges a request; the downlink scheduler then uses them (RX1 delay, RX1DROffset,
//! RX2). A refused request (NACK) is asked again at most [`MAX_NACKS`] times with the same
//! values, then given up until the config asks for something else.
//!
//! RXParamSetupAns and RXTimingSetupAns are sticky (1.0.3 §5.4, §5.7): the device repeats them
//! in every uplink until it receives a downlink. So an uplink carrying one always gets a
//! downlink, a repeated answer with nothing pending is not an answer to anything new, and no
//! request of the same kind is queued in that downlink: if it were lost, the next repeat of the
//! old answer would be taken for the answer to the new request.

use super::mac::{DownlinkCommand, NewChannelReq, RxParamSetupReq, UplinkCommand};
use super::mac::{DutyCycleReq, RxTimingSetupReq};
use serde::{Deserialize, Serialize};

/// A request sent to the device and not answered yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "req", rename_all = "snake_case")]
pub enum PendingReq {
    LinkAdr {
        dr: u8,
        tx_power: u8,
    },
    DevStatus,
    /// RXTimingSetupReq, RX1 delay in seconds.
    RxTimingSetup {
        delay: u8,
    },
    RxParamSetup {
        rx1_dr_offset: u8,
        rx2_dr: u8,
        rx2_freq_hz: u32,
    },
    DutyCycle {
        max_dcycle: u8,
    },
    /// NewChannelReq; frequency 0 removes the channel.
    NewChannel {
        index: u8,
        frequency_hz: u32,
        min_dr: u8,
        max_dr: u8,
    },
}

/// NACKs of one request (same values) before citygate stops asking.
pub const MAX_NACKS: u8 = 3;

/// An uplink channel added with NewChannelReq (dynamic channel plans only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    /// Channel index; the region's default channels (0..=2 in EU868) cannot be changed.
    pub index: u8,
    pub frequency_hz: u32,
    pub min_dr: u8,
    pub max_dr: u8,
}

/// What the config asks of a device; `None` and an empty list ask nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RadioSetup {
    pub rx1_delay_s: Option<u8>,
    pub rx1_dr_offset: Option<u8>,
    pub rx2_dr: Option<u8>,
    pub rx2_freq_hz: Option<u32>,
    /// MaxDCycle: aggregated duty cycle 1/2^n.
    pub max_dcycle: Option<u8>,
    /// `Some`: exactly these extra channels (others added earlier are removed).
    pub channels: Option<Vec<Channel>>,
}

/// The settings a device uses until told otherwise: those of its join-accept (or of its ABP
/// provisioning) and of the region.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RadioDefaults {
    pub rx1_delay_s: u8,
    pub rx1_dr_offset: u8,
    pub rx2_dr: u8,
    pub rx2_freq_hz: u32,
}

/// A request the device refused, and how many times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub req: PendingReq,
    pub count: u8,
}

/// The device's radio settings the network knows of (acknowledged); `None` = the default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceRadio {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rx1_delay_s: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rx1_dr_offset: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rx2_dr: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rx2_freq_hz: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_dcycle: Option<u8>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<Channel>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<Refusal>,
}

/// The receive-window settings in force for a device.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Effective {
    pub rx1_delay_s: u8,
    pub rx1_dr_offset: u8,
    pub rx2_dr: u8,
    pub rx2_freq_hz: u32,
}

impl DeviceRadio {
    pub fn effective(&self, d: &RadioDefaults) -> Effective {
        Effective {
            rx1_delay_s: self.rx1_delay_s.unwrap_or(d.rx1_delay_s),
            rx1_dr_offset: self.rx1_dr_offset.unwrap_or(d.rx1_dr_offset),
            rx2_dr: self.rx2_dr.unwrap_or(d.rx2_dr),
            rx2_freq_hz: self.rx2_freq_hz.unwrap_or(d.rx2_freq_hz),
        }
    }

    fn refused_enough(&self, req: &PendingReq) -> bool {
        self.refused
            .iter()
            .any(|r| r.req == *req && r.count >= MAX_NACKS)
    }

    fn refuse(&mut self, req: PendingReq) -> u8 {
        match self.refused.iter_mut().find(|r| r.req == req) {
            Some(r) => {
                r.count = r.count.saturating_add(1);
                r.count
            }
            None => {
                self.refused.push(Refusal { req, count: 1 });
                1
            }
        }
    }
}

/// What the device said to a setup request.
#[derive(Debug, Clone, PartialEq)]
pub enum SetupAnswer {
    /// Applied; the new settings are in force from this uplink's receive windows on.
    Applied(PendingReq),
    /// Refused (the fields it did not accept), and how often these values were refused.
    Refused {
        req: PendingReq,
        fields: Vec<&'static str>,
        count: u8,
    },
}

/// Handles one uplink answer to a setup request. `None` if `c` is not one; `Some(None)` if
/// it answered nothing pending (a sticky answer repeated).
pub fn on_answer(
    pending: &mut Vec<PendingReq>,
    radio: &mut DeviceRadio,
    c: &UplinkCommand,
) -> Option<Option<SetupAnswer>> {
    let (is_kind, nacked): (fn(&PendingReq) -> bool, Vec<&'static str>) = match c {
        UplinkCommand::RxTimingSetupAns => {
            (|r| matches!(r, PendingReq::RxTimingSetup { .. }), vec![])
        }
        UplinkCommand::DutyCycleAns => (|r| matches!(r, PendingReq::DutyCycle { .. }), vec![]),
        UplinkCommand::RxParamSetupAns(a) => (
            |r| matches!(r, PendingReq::RxParamSetup { .. }),
            [
                (a.rx1_dr_offset_ack, "rx1_dr_offset"),
                (a.rx2_data_rate_ack, "rx2_dr"),
                (a.channel_ack, "rx2_frequency"),
            ]
            .iter()
            .filter(|(ok, _)| !ok)
            .map(|(_, n)| *n)
            .collect(),
        ),
        UplinkCommand::NewChannelAns(a) => (
            |r| matches!(r, PendingReq::NewChannel { .. }),
            [
                (a.data_rate_range_ok, "data rate range"),
                (a.channel_frequency_ok, "frequency"),
            ]
            .iter()
            .filter(|(ok, _)| !ok)
            .map(|(_, n)| *n)
            .collect(),
        ),
        _ => return None,
    };
    let Some(i) = pending.iter().position(is_kind) else {
        return Some(None);
    };
    let req = pending.remove(i);
    if !nacked.is_empty() {
        let count = radio.refuse(req);
        return Some(Some(SetupAnswer::Refused {
            req,
            fields: nacked,
            count,
        }));
    }
    let r = radio;
    match req {
        PendingReq::RxTimingSetup { delay } => r.rx1_delay_s = Some(delay.max(1)),
        PendingReq::DutyCycle { max_dcycle } => r.max_dcycle = Some(max_dcycle),
        PendingReq::RxParamSetup {
            rx1_dr_offset,
            rx2_dr,
            rx2_freq_hz,
        } => {
            r.rx1_dr_offset = Some(rx1_dr_offset);
            r.rx2_dr = Some(rx2_dr);
            r.rx2_freq_hz = Some(rx2_freq_hz);
        }
        PendingReq::NewChannel {
            index,
            frequency_hz,
            min_dr,
            max_dr,
        } => {
            r.channels.retain(|c| c.index != index);
            if frequency_hz != 0 {
                r.channels.push(Channel {
                    index,
                    frequency_hz,
                    min_dr,
                    max_dr,
                });
                r.channels.sort_by_key(|c| c.index);
            }
        }
        PendingReq::LinkAdr { .. } | PendingReq::DevStatus => {}
    }
    r.refused.retain(|x| x.req != req);
    Some(Some(SetupAnswer::Applied(req)))
}

/// Queues the setup requests the config calls for and the device has not applied. `sticky`:
/// this uplink repeated RXParamSetupAns / RXTimingSetupAns (no new request of that kind now).
pub fn queue_due(
    pending: &mut Vec<PendingReq>,
    radio: &mut DeviceRadio,
    want: &RadioSetup,
    d: &RadioDefaults,
    sticky_param: bool,
    sticky_timing: bool,
) {
    let cur = radio.effective(d);
    let mut due = Vec::new();
    if let Some(delay) = want
        .rx1_delay_s
        .filter(|v| *v != cur.rx1_delay_s && !sticky_timing)
    {
        due.push(PendingReq::RxTimingSetup { delay });
    }
    let param = PendingReq::RxParamSetup {
        rx1_dr_offset: want.rx1_dr_offset.unwrap_or(cur.rx1_dr_offset),
        rx2_dr: want.rx2_dr.unwrap_or(cur.rx2_dr),
        rx2_freq_hz: want.rx2_freq_hz.unwrap_or(cur.rx2_freq_hz),
    };
    let current_param = PendingReq::RxParamSetup {
        rx1_dr_offset: cur.rx1_dr_offset,
        rx2_dr: cur.rx2_dr,
        rx2_freq_hz: cur.rx2_freq_hz,
    };
    if param != current_param && !sticky_param {
        due.push(param);
    }
    if let Some(m) = want
        .max_dcycle
        .filter(|m| *m != radio.max_dcycle.unwrap_or(0))
    {
        due.push(PendingReq::DutyCycle { max_dcycle: m });
    }
    if let Some(channels) = &want.channels {
        for c in channels {
            if !radio.channels.contains(c) {
                due.push(PendingReq::NewChannel {
                    index: c.index,
                    frequency_hz: c.frequency_hz,
                    min_dr: c.min_dr,
                    max_dr: c.max_dr,
                });
            }
        }
        for c in &radio.channels {
            if !channels.iter().any(|w| w.index == c.index) {
                due.push(PendingReq::NewChannel {
                    index: c.index,
                    frequency_hz: 0,
                    min_dr: 0,
                    max_dr: 0,
                });
            }
        }
    }
    for req in due {
        let same_kind_pending = pending
            .iter()
            .any(|p| same_kind(p, &req) && !matches!(req, PendingReq::NewChannel { .. }));
        let same_channel_pending = pending.iter().any(|p| match (p, &req) {
            (PendingReq::NewChannel { index: a, .. }, PendingReq::NewChannel { index: b, .. }) => {
                a == b
            }
            _ => false,
        });
        if !same_kind_pending && !same_channel_pending && !radio.refused_enough(&req) {
            pending.push(req);
        }
    }
}

fn same_kind(a: &PendingReq, b: &PendingReq) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

/// The downlink command of a pending setup request (`None` for the other requests).
pub fn command(r: &PendingReq) -> Option<DownlinkCommand> {
    Some(match *r {
        PendingReq::RxTimingSetup { delay } => {
            DownlinkCommand::RxTimingSetupReq(RxTimingSetupReq { delay })
        }
        PendingReq::DutyCycle { max_dcycle } => {
            DownlinkCommand::DutyCycleReq(DutyCycleReq { max_dcycle })
        }
        PendingReq::RxParamSetup {
            rx1_dr_offset,
            rx2_dr,
            rx2_freq_hz,
        } => DownlinkCommand::RxParamSetupReq(RxParamSetupReq {
            rx1_dr_offset,
            rx2_data_rate: rx2_dr,
            frequency_hz: rx2_freq_hz,
        }),
        PendingReq::NewChannel {
            index,
            frequency_hz,
            min_dr,
            max_dr,
        } => DownlinkCommand::NewChannelReq(NewChannelReq {
            ch_index: index,
            frequency_hz,
            max_dr,
            min_dr,
        }),
        PendingReq::LinkAdr { .. } | PendingReq::DevStatus => return None,
    })
}

#[cfg(test)]
#[path = "mac_setup_tests.rs"]
mod tests;
