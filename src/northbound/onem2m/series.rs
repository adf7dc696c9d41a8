//! The timeSeries mapping (`[northbound] resource = "timeSeries"`): each device is a
//! `<timeSeries>` (ty 29), each record a `<timeSeriesInstance>` (ty 30) with `dgt` = the
//! record's source time and `snr` = its sequence number.
//!
//! For a device that reports periodically (a polled Modbus device) the timeSeries declares
//! its period, so the CSE itself detects missing readings (TS-0001 §9.6.36): `pei` = the
//! period, `peid` = a quarter of it (a reading's source time may be that far off its slot),
//! `mdd` = true, `mdt` = three quarters of a period (how long after the expected time the CSE
//! waits for the reading before it lists it as missing) and `mdn` = how many missing entries
//! the CSE keeps in `mdlt` (a day's worth, [`MDN_MIN`]..=[`MDN_MAX`]). The CSE lists each
//! missing period's expected time in `mdlt` and counts them in `mdc`.
//!
//! Why `mdt` < `pei`: ACME (2026.5.3) remembers only the last `dgt` it received, and checks a
//! period when its timer fires; by then the next period's reading must not have arrived yet,
//! or the checked one counts as missing. What a platform reads is in docs/timeseries.md.
use super::attributes::{Common, InstanceHolder};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// Fewest / most missing-data entries a timeSeries keeps (`mdn`).
pub const MDN_MIN: u64 = 10;
pub const MDN_MAX: u64 = 1000;

/// Where the northbound learns a device's reporting period (by device key): the adapters
/// declare it (the device roster), `None` for devices that report on their own schedule.
pub type PeriodLookup = Arc<dyn Fn(&str) -> Option<Duration> + Send + Sync>;

/// `m2m:ts`: one per device.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TimeSeries {
    #[serde(flatten)]
    pub holder: InstanceHolder,
    /// periodicInterval, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pei: Option<u64>,
    /// periodicIntervalDelta, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peid: Option<u64>,
    /// missingDataDetect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mdd: Option<bool>,
    /// missingDataDetectTimer, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mdt: Option<u64>,
    /// missingDataMaxNr.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mdn: Option<u64>,
    /// missingDataList (set by the CSE): expected times of missing readings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mdlt: Option<Vec<String>>,
    /// missingDataCurrentNr (set by the CSE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mdc: Option<u64>,
    #[serde(flatten)]
    pub common: Common,
}

impl TimeSeries {
    /// Declares `period` with missing-data detection on (see the module doc).
    pub fn with_period(mut self, period: Duration) -> Self {
        let pei = u64::try_from(period.as_millis()).unwrap_or(u64::MAX).max(2);
        self.pei = Some(pei);
        self.peid = Some(pei / 4);
        self.mdd = Some(true);
        self.mdt = Some(pei - pei / 4);
        self.mdn = Some((86_400_000 / pei).clamp(MDN_MIN, MDN_MAX));
        self
    }
}

/// `m2m:tsi`: one per record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeSeriesInstance {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rn: Option<String>,
    /// dataGenerationTime (mandatory): the record's source time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dgt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub con: Option<serde_json::Value>,
    /// sequenceNr: the record's buffer sequence number (increasing per device).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snr: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cs: Option<u64>,
    #[serde(flatten)]
    pub common: Common,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::northbound::onem2m::resource::{record_tsi, Resource};
    use crate::northbound::serialization::Serialization;
    use crate::record::{parse_ts, Record, StoredRecord};

    #[test]
    fn period_sets_missing_data_detection() {
        let ts = TimeSeries {
            holder: InstanceHolder {
                rn: Some("meter-1".into()),
                ..Default::default()
            },
            ..Default::default()
        }
        .with_period(Duration::from_secs(10));
        assert_eq!(
            Resource::TimeSeries(ts).to_pc(),
            serde_json::json!({"m2m:ts": {"rn": "meter-1", "pei": 10000, "peid": 2500,
                "mdd": true, "mdt": 7500, "mdn": 1000}})
        );
        let slow = TimeSeries::default().with_period(Duration::from_secs(3600));
        assert_eq!(slow.mdn, Some(24));
        let glacial = TimeSeries::default().with_period(Duration::from_secs(86_400 * 7));
        assert_eq!(glacial.mdn, Some(MDN_MIN));
    }

    #[test]
    fn record_becomes_tsi_with_dgt_and_snr() {
        let mut r = Record::now("mb1", "meter-1").with("p", 21.5);
        r.ts_ms = parse_ts("2026-11-23T10:00:00.250Z").unwrap();
        let rec = StoredRecord { seq: 7, record: r };
        let tsi = record_tsi("ep", &rec, Serialization::Cbor);
        assert_eq!(tsi.rn.as_deref(), Some("ep-7"));
        assert_eq!(tsi.dgt.as_deref(), Some("20261123T100000,250000"));
        assert_eq!(tsi.snr, Some(7));
        assert_eq!(tsi.con.as_ref().unwrap()["values"]["p"], 21.5);
        let json = record_tsi("ep", &rec, Serialization::Json);
        assert!(json.con.unwrap().is_string());
        let pc = Resource::TimeSeriesInstance(tsi).to_pc();
        assert!(pc["m2m:tsi"].get("cs").is_none());
    }
}
