use super::*;
use crate::southbound::lorawan::network::mac::{NewChannelAns, RxParamSetupAns};
use crate::southbound::lorawan::network::mac_state::{answer_with, MacPolicy, MacState, MacUplink};
use crate::southbound::lorawan::network::region::Region;

fn policy() -> MacPolicy {
    MacPolicy {
        region: Region::Eu868,
        adr: false,
        margin_db: 10.0,
        min_dr: 0,
        max_dr: 5,
        dev_status_every_ms: None,
        sub_band: None,
        rx1_delay_s: 1,
        rx1_dr_offset: 0,
    }
}

fn up(commands: &[UplinkCommand]) -> MacUplink<'_> {
    MacUplink {
        datr: "SF7BW125",
        snr: Some(5.0),
        adr: false,
        adr_ack_req: false,
        commands,
    }
}

fn param_ans(ok: bool) -> UplinkCommand {
    UplinkCommand::RxParamSetupAns(RxParamSetupAns {
        rx1_dr_offset_ack: true,
        rx2_data_rate_ack: ok,
        channel_ack: true,
    })
}

fn setup() -> RadioSetup {
    RadioSetup {
        rx1_delay_s: Some(3),
        rx2_dr: Some(3),
        rx2_freq_hz: Some(869_525_000),
        max_dcycle: Some(7),
        channels: Some(vec![Channel {
            index: 3,
            frequency_hz: 867_100_000,
            min_dr: 0,
            max_dr: 5,
        }]),
        ..RadioSetup::default()
    }
}

#[test]
fn requests_are_sent_until_acknowledged_then_applied_and_sticky_answers_get_a_downlink() {
    let mut st = MacState::default();
    let p = policy();
    let want = setup();
    let r = answer_with(&mut st, &up(&[]), &p, &want, 0);
    assert_eq!(
        r.commands,
        [
            DownlinkCommand::RxTimingSetupReq(RxTimingSetupReq { delay: 3 }),
            DownlinkCommand::RxParamSetupReq(RxParamSetupReq {
                rx1_dr_offset: 0,
                rx2_data_rate: 3,
                frequency_hz: 869_525_000
            }),
            DownlinkCommand::DutyCycleReq(DutyCycleReq { max_dcycle: 7 }),
            DownlinkCommand::NewChannelReq(NewChannelReq {
                ch_index: 3,
                frequency_hz: 867_100_000,
                max_dr: 5,
                min_dr: 0
            }),
        ]
    );
    // Unanswered (the downlink was lost): the same requests again, nothing twice.
    let again = answer_with(&mut st, &up(&[]), &p, &want, 0);
    assert_eq!(again.commands, r.commands);
    assert_eq!(st.pending.len(), 4);

    // All acknowledged in one uplink.
    let answers = [
        UplinkCommand::RxTimingSetupAns,
        param_ans(true),
        UplinkCommand::DutyCycleAns,
        UplinkCommand::NewChannelAns(NewChannelAns {
            data_rate_range_ok: true,
            channel_frequency_ok: true,
        }),
    ];
    let r = answer_with(&mut st, &up(&answers), &p, &want, 0);
    assert!(r.force, "the sticky answers get a downlink");
    assert!(
        r.commands.is_empty() && st.pending.is_empty(),
        "{:?}",
        r.commands
    );
    assert_eq!(r.setup.len(), 4);
    let e = st.radio.effective(&p.radio_defaults());
    assert_eq!(
        (e.rx1_delay_s, e.rx2_dr, e.rx2_freq_hz),
        (3, 3, 869_525_000)
    );
    assert_eq!(st.radio.max_dcycle, Some(7));
    assert_eq!(st.radio.channels.len(), 1);

    // The downlink was lost: the device repeats both sticky answers. Nothing is re-applied or
    // counted as unexpected, and a downlink still goes out.
    let r = answer_with(
        &mut st,
        &up(&[UplinkCommand::RxTimingSetupAns, param_ans(true)]),
        &p,
        &want,
        0,
    );
    assert!(r.force && r.unexpected.is_empty() && r.setup.is_empty());

    // The state survives a restart (JSON with the session).
    let json = serde_json::to_string(&st).unwrap();
    assert_eq!(serde_json::from_str::<MacState>(&json).unwrap(), st);

    // LinkADRReq now enables the added channel 3 too.
    let p_adr = MacPolicy { adr: true, ..p };
    let mut u = up(&[]);
    u.adr = true;
    u.datr = "SF12BW125";
    let r = answer_with(&mut st, &u, &p_adr, &want, 0);
    let Some(DownlinkCommand::LinkAdrReq(l)) = r.commands.first() else {
        panic!("{:?}", r.commands)
    };
    assert_eq!(l.ch_mask, 0b1111);

    // Config without the channel: it is removed (frequency 0).
    let fewer = RadioSetup {
        channels: Some(vec![]),
        ..want
    };
    let r = answer_with(&mut st, &up(&[]), &p, &fewer, 0);
    assert!(r
        .commands
        .contains(&DownlinkCommand::NewChannelReq(NewChannelReq {
            ch_index: 3,
            frequency_hz: 0,
            max_dr: 0,
            min_dr: 0
        })));
    answer_with(
        &mut st,
        &up(&[UplinkCommand::NewChannelAns(NewChannelAns {
            data_rate_range_ok: true,
            channel_frequency_ok: true,
        })]),
        &p,
        &fewer,
        0,
    );
    assert!(st.radio.channels.is_empty());
}

#[test]
fn a_refused_request_is_asked_again_a_bounded_number_of_times() {
    let mut st = MacState::default();
    let p = policy();
    let want = RadioSetup {
        rx2_dr: Some(3),
        ..RadioSetup::default()
    };
    let mut nacks = 0;
    for _ in 0..10 {
        let r = answer_with(&mut st, &up(&[]), &p, &want, 0);
        if r.commands.is_empty() {
            break;
        }
        // NACK: RX2 data rate refused.
        let r = answer_with(&mut st, &up(&[param_ans(false)]), &p, &want, 0);
        assert!(r.force);
        assert!(
            r.commands.is_empty(),
            "no new request in the downlink that stops the sticky answer"
        );
        match &r.setup[..] {
            [SetupAnswer::Refused { fields, count, .. }] => {
                assert_eq!(fields, &["rx2_dr"]);
                nacks = *count;
            }
            other => panic!("{other:?}"),
        }
        // The device heard that downlink; its next uplink no longer carries the answer.
    }
    assert_eq!(nacks, MAX_NACKS);
    assert_eq!(
        st.radio.effective(&p.radio_defaults()).rx2_dr,
        0,
        "unchanged"
    );
    // Another value is a new request.
    let r = answer_with(
        &mut st,
        &up(&[]),
        &p,
        &RadioSetup {
            rx2_dr: Some(2),
            ..RadioSetup::default()
        },
        0,
    );
    assert_eq!(r.commands.len(), 1);
}

#[test]
fn a_new_session_starts_from_the_defaults() {
    let mut st = MacState::default();
    let p = policy();
    answer_with(&mut st, &up(&[]), &p, &setup(), 0);
    answer_with(
        &mut st,
        &up(&[UplinkCommand::RxTimingSetupAns]),
        &p,
        &setup(),
        0,
    );
    assert_eq!(st.radio.rx1_delay_s, Some(3));
    st.reset_radio();
    assert_eq!(st.radio.rx1_delay_s, None);
    assert!(st.pending.is_empty());
}
