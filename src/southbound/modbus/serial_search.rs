//! `citygate scan modbus --serial-search`: which baud rate and parity a serial bus speaks.
//!
//! On site the line settings are often unknown: a previous installer changed the meter from
//! its factory defaults and the label is gone. Each candidate setting is tried in turn, the
//! configured one first, then the rates and parities most common in the field. A setting is
//! found when a unit answers with a valid frame (data or an exception); a garbled answer means
//! something is on the line at another speed or parity, so the search moves on at once. With
//! the setting found, the units are scanned as `scan` does.
use super::config::{Parity, SerialSettings};
use super::plan::ReadRequest;
use super::probe::{rtu_target, ProbeError};
use super::scan::{scan, scan_until, Found, Reply};
use std::ops::RangeInclusive;
use std::time::Duration;

/// Baud rates tried, the most common on Modbus meters first.
pub const BAUDS: [u32; 7] = [9600, 19200, 38400, 115_200, 4800, 57600, 2400];
/// Parities tried: even is the Modbus over Serial Line default.
pub const PARITIES: [Parity; 3] = [Parity::Even, Parity::None, Parity::Odd];

/// What one setting gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trial {
    /// No unit in the range answered.
    Silent,
    /// Bytes came back that were no valid frame.
    Garbled(String),
    /// This unit answered with a valid frame.
    Answered(u8),
}

/// Every setting tried, in order, and the one that worked with its scan.
#[derive(Debug)]
pub struct Search {
    pub tried: Vec<(SerialSettings, Trial)>,
    pub found: Option<(SerialSettings, Vec<Found>)>,
}

/// The settings to try: `base` first, then every rate and parity (port, data and stop bits
/// as in `base`).
pub fn candidates(base: &SerialSettings) -> Vec<SerialSettings> {
    let mut all = vec![base.clone()];
    for baud in BAUDS {
        for parity in PARITIES {
            let s = SerialSettings {
                baud,
                parity,
                ..base.clone()
            };
            if !all.contains(&s) {
                all.push(s);
            }
        }
    }
    all
}

/// Tries each candidate until a unit in `units` answers validly, then scans `units` with it.
pub async fn search(
    base: &SerialSettings,
    units: RangeInclusive<u8>,
    read: &ReadRequest,
    timeout: Duration,
) -> Result<Search, ProbeError> {
    let mut tried = Vec::new();
    for settings in candidates(base) {
        let target = rtu_target(settings.clone());
        let first = scan_until(&target, units.clone(), read, timeout, |_| true).await?;
        let trial = match first.into_iter().next() {
            None => Trial::Silent,
            Some(Found {
                reply: Reply::Garbled(why),
                ..
            }) => Trial::Garbled(why),
            Some(Found { unit, .. }) => Trial::Answered(unit),
        };
        let answered = matches!(trial, Trial::Answered(_));
        tried.push((settings.clone(), trial));
        if answered {
            let found = scan(&target, units, read, timeout).await?;
            return Ok(Search {
                tried,
                found: Some((settings, found)),
            });
        }
    }
    Ok(Search { tried, found: None })
}

/// `19200 baud, parity none, 1 stop bit`.
pub fn describe(s: &SerialSettings) -> String {
    let parity = parity_name(s.parity);
    let plural = if s.stop_bits == 1 { "" } else { "s" };
    format!(
        "{} baud, parity {parity}, {} stop bit{plural}",
        s.baud, s.stop_bits
    )
}

/// The report: one line per setting tried, then the setting found (or not).
pub fn render(search: &Search) -> String {
    let mut out = String::new();
    for (settings, trial) in &search.tried {
        let what = match trial {
            Trial::Silent => "silent".to_string(),
            Trial::Garbled(why) => format!("garbled answer ({why})"),
            Trial::Answered(unit) => format!("unit {unit} answers"),
        };
        out.push_str(&format!("  {:<34} {what}\n", describe(settings)));
    }
    match &search.found {
        Some((settings, _)) => out.push_str(&format!(
            "line settings: {} (rtu://{}?baud={}&parity={}&stop_bits={})\n",
            describe(settings),
            settings.port,
            settings.baud,
            parity_name(settings.parity),
            settings.stop_bits
        )),
        None => out.push_str(
            "no setting worked: check the wiring (A/B swapped?), termination and the unit range\n",
        ),
    }
    out
}

fn parity_name(p: Parity) -> &'static str {
    match p {
        Parity::None => "none",
        Parity::Even => "even",
        Parity::Odd => "odd",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> SerialSettings {
        SerialSettings {
            port: "/dev/ttyUSB0".into(),
            baud: 19200,
            parity: Parity::None,
            stop_bits: 1,
            data_bits: 8,
        }
    }

    #[test]
    fn the_configured_setting_comes_first_and_nothing_twice() {
        let all = candidates(&base());
        assert_eq!(all[0], base());
        assert_eq!(all.len(), BAUDS.len() * PARITIES.len());
        for (i, a) in all.iter().enumerate() {
            assert!(!all[i + 1..].contains(a), "{a:?} twice");
        }
        assert_eq!((all[1].baud, all[1].parity), (9600, Parity::Even));
    }

    #[test]
    fn settings_read_like_a_meter_label() {
        assert_eq!(describe(&base()), "19200 baud, parity none, 1 stop bit");
        let two = SerialSettings {
            stop_bits: 2,
            ..base()
        };
        assert_eq!(describe(&two), "19200 baud, parity none, 2 stop bits");
    }
}
