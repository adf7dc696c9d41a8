use super::*;
use crate::southbound::lorawan::network::mac::LinkAdrAns;

fn policy() -> MacPolicy {
    MacPolicy {
        region: Region::Eu868,
        adr: true,
        margin_db: 10.0,
        min_dr: 0,
        max_dr: 5,
        dev_status_every_ms: None,
        sub_band: None,
        rx1_delay_s: 1,
        rx1_dr_offset: 0,
    }
}

fn up<'a>(datr: &'a str, snr: f64, commands: &'a [UplinkCommand]) -> MacUplink<'a> {
    MacUplink {
        datr,
        snr: Some(snr),
        adr: true,
        adr_ack_req: false,
        commands,
    }
}

#[test]
fn link_check_margin_from_snr_and_dr() {
    let mut st = MacState::default();
    let p = MacPolicy {
        adr: false,
        ..policy()
    };
    // SF9 needs -12.5 dB: at 3.5 dB the margin is 16 dB.
    let r = answer(
        &mut st,
        &up("SF9BW125", 3.5, &[UplinkCommand::LinkCheckReq]),
        &p,
        0,
    );
    assert_eq!(
        r.commands,
        [DownlinkCommand::LinkCheckAns(LinkCheckAns {
            margin_db: 16,
            gw_cnt: 1
        })]
    );
}

#[test]
fn adr_step_is_requested_until_answered_then_applied() {
    let mut st = MacState::default();
    let r = answer(&mut st, &up("SF12BW125", 10.0, &[]), &policy(), 0);
    let want = LinkAdrReq {
        data_rate: 5,
        tx_power: 1,
        ch_mask: 0x0007,
        ch_mask_cntl: 0,
        nb_trans: 1,
    };
    assert_eq!(r.commands, [DownlinkCommand::LinkAdrReq(want)]);
    // Not answered: the request is sent again (and survives a restart via the JSON).
    let st2: MacState = serde_json::from_str(&serde_json::to_string(&st).unwrap()).unwrap();
    assert_eq!(st2, st);
    let r = answer(&mut st, &up("SF12BW125", 10.0, &[]), &policy(), 0);
    assert_eq!(r.commands, [DownlinkCommand::LinkAdrReq(want)]);
    // Accepted: the device is at DR5 and TXPower 1 now; the SNR history measured at the old
    // settings is dropped. At 3 dB on SF7 the margin is 3 + 7.5 - 10 = 0.5 dB: it stays.
    let ans = [UplinkCommand::LinkAdrAns(LinkAdrAns {
        power_ack: true,
        data_rate_ack: true,
        channel_mask_ack: true,
    })];
    let r = answer(&mut st, &up("SF7BW125", 3.0, &ans), &policy(), 0);
    assert_eq!(st.tx_power, 1);
    assert_eq!(st.snr_history, [3.0]);
    assert!(r.commands.is_empty(), "{:?}", r.commands);
}

#[test]
fn adr_ack_req_forces_a_downlink_and_dev_status_is_polled() {
    let mut st = MacState::default();
    let p = MacPolicy {
        adr: false,
        dev_status_every_ms: Some(1000),
        ..policy()
    };
    let mut u = up("SF7BW125", 5.0, &[]);
    u.adr_ack_req = true;
    let r = answer(&mut st, &u, &p, 5_000);
    assert!(r.force);
    assert_eq!(r.commands, [DownlinkCommand::DevStatusReq]);
    let ans = [UplinkCommand::DevStatusAns(DevStatusAns {
        battery: crate::southbound::lorawan::network::mac::Battery::Level(127),
        margin_db: 7,
    })];
    let r = answer(&mut st, &up("SF7BW125", 5.0, &ans), &p, 5_500);
    assert_eq!(r.dev_status.map(|d| d.margin_db), Some(7));
    assert!(r.commands.is_empty(), "answered, and not due again yet");
    let r = answer(&mut st, &up("SF7BW125", 5.0, &[]), &p, 6_000);
    assert_eq!(r.commands, [DownlinkCommand::DevStatusReq]);
}

#[test]
fn us915_sub_band_channel_mask() {
    let p = MacPolicy {
        region: Region::Us915,
        sub_band: Some(2),
        max_dr: 3,
        ..policy()
    };
    assert_eq!(channel_mask(&p, &[]), (0xff00, 0));
    let p = MacPolicy {
        sub_band: Some(3),
        ..p
    };
    assert_eq!(channel_mask(&p, &[]), (0x00ff, 1));
}
