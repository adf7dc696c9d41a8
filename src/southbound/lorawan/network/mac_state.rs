//! The MAC layer of one device as the edge network server keeps it: requests sent and not yet
//! answered (re-sent with every downlink until answered, and persisted with the session so a
//! restart does not forget them), the SNR history ADR works from, and when the device was last
//! asked for its status. The answers to one uplink are computed by [`answer`], pure.

use super::adr::{self, AdrStep, HISTORY};
use super::mac::{DevStatusAns, DownlinkCommand, LinkAdrReq, LinkCheckAns, UplinkCommand};
use super::mac_setup::{self, Channel, DeviceRadio, RadioDefaults, RadioSetup, SetupAnswer};
use super::region::Region;
use serde::{Deserialize, Serialize};

pub use super::mac_setup::PendingReq;

/// Persisted MAC state of a device.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MacState {
    #[serde(default)]
    pub pending: Vec<PendingReq>,
    /// SNR of the last uplinks, oldest first, at most [`HISTORY`].
    #[serde(default)]
    pub snr_history: Vec<f64>,
    /// TXPower index the device uses (0 after a join).
    #[serde(default)]
    pub tx_power: u8,
    /// When DevStatusReq was last sent, UTC ms.
    #[serde(default)]
    pub dev_status_at_ms: i64,
    /// RX settings and channels the device acknowledged (see [`mac_setup`](super::mac_setup)).
    #[serde(default)]
    pub radio: DeviceRadio,
}

impl MacState {
    /// After a join the device uses its default RX settings and channels again: forget what
    /// it acknowledged and the setup requests of the old session (the refusals stay).
    pub fn reset_radio(&mut self) {
        let refused = std::mem::take(&mut self.radio.refused);
        self.radio = DeviceRadio {
            refused,
            ..DeviceRadio::default()
        };
        self.pending.retain(|r| mac_setup::command(r).is_none());
    }
}

/// The MAC settings of an adapter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MacPolicy {
    pub region: Region,
    pub adr: bool,
    pub margin_db: f64,
    pub min_dr: u8,
    pub max_dr: u8,
    pub dev_status_every_ms: Option<i64>,
    /// US915/AU915 sub-band, for the channel mask of LinkADRReq.
    pub sub_band: Option<u8>,
    /// RX1 delay and RX1DROffset of the join-accept (the device's defaults).
    pub rx1_delay_s: u8,
    pub rx1_dr_offset: u8,
}

impl MacPolicy {
    /// The settings a device has before any setup request.
    pub fn radio_defaults(&self) -> RadioDefaults {
        let p = self.region.params();
        RadioDefaults {
            rx1_delay_s: self.rx1_delay_s.max(1),
            rx1_dr_offset: self.rx1_dr_offset,
            rx2_dr: p.rx2_dr,
            rx2_freq_hz: p.rx2_freq_hz,
        }
    }
}

/// What one uplink's MAC commands call for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MacReply {
    /// Commands for the downlink (answers first, then requests).
    pub commands: Vec<DownlinkCommand>,
    /// The device reported its status.
    pub dev_status: Option<DevStatusAns>,
    /// A downlink must go out even if empty (ADRACKReq).
    pub force: bool,
    /// Answers to requests citygate never sends (logged and counted by the caller).
    pub unexpected: Vec<&'static str>,
    /// Answers to setup requests (logged; refusals counted by the caller).
    pub setup: Vec<SetupAnswer>,
}

/// The uplink, as far as the MAC layer cares.
pub struct MacUplink<'a> {
    pub datr: &'a str,
    pub snr: Option<f64>,
    pub adr: bool,
    pub adr_ack_req: bool,
    pub commands: &'a [UplinkCommand],
}

/// Answers the MAC commands of one uplink and adds the requests that are due.
pub fn answer(st: &mut MacState, up: &MacUplink<'_>, p: &MacPolicy, now_ms: i64) -> MacReply {
    answer_with(st, up, p, &RadioSetup::default(), now_ms)
}

/// [`answer`], also asking the device for the radio settings of `setup`.
pub fn answer_with(
    st: &mut MacState,
    up: &MacUplink<'_>,
    p: &MacPolicy,
    setup: &RadioSetup,
    now_ms: i64,
) -> MacReply {
    let mut reply = MacReply::default();
    let (mut sticky_param, mut sticky_timing) = (false, false);
    let params = p.region.params();
    let dr = p.region.dr_of_datr(up.datr);
    let sf = super::region::parse_datr(up.datr).map_or(12, |d| d.sf);
    for c in up.commands {
        match c {
            UplinkCommand::LinkCheckReq => {
                let margin = up.snr.map_or(0.0, |s| s - adr::required_snr_db(sf));
                reply
                    .commands
                    .push(DownlinkCommand::LinkCheckAns(LinkCheckAns {
                        margin_db: margin.clamp(0.0, 254.0) as u8,
                        // Copies heard by other gateways are deduplicated before this point.
                        gw_cnt: 1,
                    }));
            }
            UplinkCommand::LinkAdrAns(ans) => {
                if let Some(i) = st
                    .pending
                    .iter()
                    .position(|r| matches!(r, PendingReq::LinkAdr { .. }))
                {
                    if let PendingReq::LinkAdr { tx_power, .. } = st.pending.remove(i) {
                        if ans.accepted() {
                            // The history was measured at the old settings (as ChirpStack).
                            st.tx_power = tx_power;
                            st.snr_history.clear();
                        }
                    }
                }
            }
            UplinkCommand::DevStatusAns(ans) => {
                st.pending.retain(|r| *r != PendingReq::DevStatus);
                reply.dev_status = Some(*ans);
            }
            other => {
                let sticky = match other {
                    UplinkCommand::RxParamSetupAns(_) => {
                        sticky_param = true;
                        true
                    }
                    UplinkCommand::RxTimingSetupAns => {
                        sticky_timing = true;
                        true
                    }
                    _ => false,
                };
                // The device repeats these until it hears a downlink: always send one.
                reply.force |= sticky;
                match mac_setup::on_answer(&mut st.pending, &mut st.radio, other) {
                    Some(Some(a)) => reply.setup.push(a),
                    // A repeat of an answer already handled.
                    Some(None) if sticky => {}
                    Some(None) | None => reply.unexpected.push(other.name()),
                }
            }
        }
    }
    if let Some(snr) = up.snr {
        st.snr_history.push(snr);
        if st.snr_history.len() > HISTORY {
            st.snr_history.remove(0);
        }
    }
    if p.adr && up.adr {
        if let Some(dr) = dr.filter(|d| *d >= p.min_dr && *d <= p.max_dr) {
            let max_snr = st.snr_history.iter().copied().fold(f64::MIN, f64::max);
            let current = AdrStep {
                dr,
                tx_power: st.tx_power,
            };
            let next = adr::decide(
                max_snr,
                sf,
                current,
                p.margin_db,
                p.max_dr,
                params.max_tx_power_index,
            );
            let pending_adr = st
                .pending
                .iter()
                .any(|r| matches!(r, PendingReq::LinkAdr { .. }));
            if next != current && !pending_adr {
                st.pending.push(PendingReq::LinkAdr {
                    dr: next.dr,
                    tx_power: next.tx_power,
                });
            }
        }
    }
    if up.adr_ack_req {
        reply.force = true;
    }
    if let Some(every) = p.dev_status_every_ms {
        let due = now_ms.saturating_sub(st.dev_status_at_ms) >= every;
        if due && !st.pending.contains(&PendingReq::DevStatus) {
            st.pending.push(PendingReq::DevStatus);
            st.dev_status_at_ms = now_ms;
        }
    }
    mac_setup::queue_due(
        &mut st.pending,
        &mut st.radio,
        setup,
        &p.radio_defaults(),
        sticky_param,
        sticky_timing,
    );
    for r in &st.pending {
        reply.commands.push(match *r {
            PendingReq::DevStatus => DownlinkCommand::DevStatusReq,
            PendingReq::LinkAdr { dr, tx_power } => {
                let (ch_mask, ch_mask_cntl) = channel_mask(p, &st.radio.channels);
                DownlinkCommand::LinkAdrReq(LinkAdrReq {
                    data_rate: dr,
                    tx_power,
                    ch_mask,
                    ch_mask_cntl,
                    nb_trans: 1,
                })
            }
            other => match mac_setup::command(&other) {
                Some(c) => c,
                None => continue,
            },
        });
    }
    reply
}

/// The channel mask LinkADRReq repeats: the default channels of a dynamic plan and the extra
/// channels the device acknowledged (NewChannelReq), or the gateway's sub-band of a fixed plan
/// (its block of 16 channels; without a sub-band, all 125 kHz channels on).
fn channel_mask(p: &MacPolicy, extra: &[Channel]) -> (u16, u8) {
    if !p.region.is_fixed_channel_plan() {
        let n = p.region.params().default_channels_hz.len().min(16);
        let defaults = ((1u32 << n) - 1) as u16;
        let added = extra
            .iter()
            .filter(|c| c.index < 16)
            .fold(0u16, |m, c| m | 1 << c.index);
        return (defaults | added, 0);
    }
    match p.sub_band {
        Some(k @ 1..=8) => (0x00ff << (8 * ((k - 1) % 2)), (k - 1) / 2),
        _ => (0x00ff, 6),
    }
}

#[cfg(test)]
#[path = "mac_state_tests.rs"]
mod tests;
