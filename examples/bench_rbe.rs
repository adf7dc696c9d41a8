//! Records per hour of one three-phase meter with and without report by exception.
//!
//! `cargo run --example bench_rbe [DAYS] [SEED]`
//!
//! A simulated Eastron SDM630 (the built-in profile's 53 points) polled every 10 s for DAYS
//! days of virtual time (default 7): mains voltage drifting over the day with noise, 50 Hz with
//! slow wander, three phase loads that step to a new level now and then (about every 30 min
//! per phase) and drift in between, power factor moving with the load, energy counters
//! integrating the power. Every poll goes through the same filter the Modbus poller uses
//! (`ReportPolicy` + `ReportFilter`) with the report table in [`REPORT`]; the bench prints
//! records per hour, the send reasons, the JSON size of the records (the record payload only,
//! not the wire), and checks that no suppressed reading was further from the value last sent
//! than its deadband (no change above the deadband is lost).

use citygate::record::{Record, Value, Values};
use citygate::southbound::modbus::config::DeviceConfig;
use citygate::southbound::modbus::profile::resolve_device;
use citygate::southbound::modbus::report_policy::ReportPolicy;
use citygate::southbound::report_filter::{Deadband, Decision, Reading, ReportFilter, ReportRules};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::f64::consts::PI;
use std::time::{Duration, Instant};

const POLL_S: u64 = 10;

/// The device table both runs share.
const DEVICE: &str = r#"
id = "meter"
unit = 1
profile = "eastron_sdm630"
poll_interval = "10s"
"#;

/// Report tables: one deadband for every point (energy counters excepted), and one tuned per
/// point kind (the example in docs/config.md).
const REPORTS: [(&str, &str); 2] = [
    (
        "uniform 2 %",
        r#"
report.deadband = "2%"
report.max_interval = "15m"
report.points.energy_import = { deadband = 1 }
report.points.energy_total = { deadband = 1 }
report.points.reactive_energy_import = { deadband = 1 }
report.points.reactive_energy_total = { deadband = 1 }
"#,
    ),
    (
        "tuned per point",
        r#"
report.deadband = "2%"
report.max_interval = "15m"
report.points.frequency = { deadband = 0.05 }
report.points.power_factor_l1 = { deadband = 0.02 }
report.points.power_factor_l2 = { deadband = 0.02 }
report.points.power_factor_l3 = { deadband = 0.02 }
report.points.power_factor_total = { deadband = 0.02 }
report.points.phase_angle_l1 = { deadband = 3 }
report.points.phase_angle_l2 = { deadband = 3 }
report.points.phase_angle_l3 = { deadband = 3 }
report.points.phase_angle_total = { deadband = 3 }
report.points.reactive_power_l1 = { deadband = "20%" }
report.points.reactive_power_l2 = { deadband = "20%" }
report.points.reactive_power_l3 = { deadband = "20%" }
report.points.reactive_power_total = { deadband = "20%" }
report.points.power_demand = { deadband = "10%" }
report.points.apparent_power_demand = { deadband = "10%" }
report.points.current_neutral = { deadband = 1 }
report.points.neutral_current_demand = { deadband = 1 }
report.points.voltage_thd_l1 = { deadband = 0.5 }
report.points.voltage_thd_l2 = { deadband = 0.5 }
report.points.voltage_thd_l3 = { deadband = 0.5 }
report.points.current_thd_l1 = { deadband = 1 }
report.points.current_thd_l2 = { deadband = 1 }
report.points.current_thd_l3 = { deadband = 1 }
report.points.energy_import = { deadband = 1 }
report.points.energy_total = { deadband = 1 }
report.points.reactive_energy_import = { deadband = 1 }
report.points.reactive_energy_total = { deadband = 1 }
"#,
    ),
];

/// The state of the simulated installation.
struct Meter {
    rng: StdRng,
    /// Per phase: current level (A) the load steps between, and its power factor.
    load: [f64; 3],
    pf: [f64; 3],
    energy_kwh: f64,
    reactive_kvarh: f64,
    /// Last 90 power readings (15 min) for the demand values.
    window: Vec<f64>,
    demand_max: f64,
    apparent_demand_max: f64,
    neutral_demand_max: f64,
}

impl Meter {
    fn new(seed: u64) -> Self {
        Meter {
            rng: StdRng::seed_from_u64(seed),
            load: [12.0, 18.0, 9.0],
            pf: [0.95, 0.93, 0.96],
            energy_kwh: 12_345.6,
            reactive_kvarh: 2_345.6,
            window: Vec::new(),
            demand_max: 0.0,
            apparent_demand_max: 0.0,
            neutral_demand_max: 0.0,
        }
    }

    fn noise(&mut self, amplitude: f64) -> f64 {
        self.rng.random_range(-amplitude..=amplitude)
    }

    /// One poll at `t` seconds.
    fn read(&mut self, t: f64) -> Values {
        let day = 2.0 * PI * t / 86_400.0;
        // Load steps: each phase switches to a new level about every 30 minutes.
        for ph in 0..3 {
            if self.rng.random_bool(POLL_S as f64 / 1800.0) {
                self.load[ph] = self.rng.random_range(4.0..40.0);
                self.pf[ph] = self.rng.random_range(0.88..0.99);
            } else {
                // Slow drift of the load in between.
                self.load[ph] = (self.load[ph] * (1.0 + self.noise(0.002))).clamp(1.0, 60.0);
            }
        }
        let mut v = BTreeMap::<&str, f64>::new();
        let mut p_total = 0.0;
        let mut s_total = 0.0;
        let mut q_total = 0.0;
        let mut volts = [0.0; 3];
        let mut amps = [0.0; 3];
        for ph in 0..3 {
            let u = 230.0 + 3.0 * (day + ph as f64).sin() + self.noise(0.3);
            let i = self.load[ph] * (1.0 + self.noise(0.005));
            let pf = (self.pf[ph] + self.noise(0.003)).min(1.0);
            let s = u * i;
            let p = s * pf;
            let q = (s * s - p * p).max(0.0).sqrt();
            volts[ph] = u;
            amps[ph] = i;
            p_total += p;
            s_total += s;
            q_total += q;
            let n = ph + 1;
            v.insert(leak(format!("voltage_l{n}")), u);
            v.insert(leak(format!("current_l{n}")), i);
            v.insert(leak(format!("power_l{n}")), p);
            v.insert(leak(format!("apparent_power_l{n}")), s);
            v.insert(leak(format!("reactive_power_l{n}")), q);
            v.insert(leak(format!("power_factor_l{n}")), pf);
            v.insert(leak(format!("phase_angle_l{n}")), pf.acos().to_degrees());
            v.insert(leak(format!("voltage_thd_l{n}")), 2.5 + self.noise(0.1));
            v.insert(leak(format!("current_thd_l{n}")), 6.0 + self.noise(0.3));
        }
        let pf_total = p_total / s_total;
        let neutral = ((amps[0] - amps[1]).powi(2) + (amps[1] - amps[2]).powi(2)).sqrt() * 0.7;
        self.energy_kwh += p_total / 1000.0 * POLL_S as f64 / 3600.0;
        self.reactive_kvarh += q_total / 1000.0 * POLL_S as f64 / 3600.0;
        self.window.push(p_total);
        if self.window.len() > 90 {
            self.window.remove(0);
        }
        let demand = self.window.iter().sum::<f64>() / self.window.len() as f64;
        let apparent_demand = demand / pf_total;
        self.demand_max = self.demand_max.max(demand);
        self.apparent_demand_max = self.apparent_demand_max.max(apparent_demand);
        self.neutral_demand_max = self.neutral_demand_max.max(neutral);
        let ll = |a: f64, b: f64| (a * a + b * b + a * b).sqrt();
        let ln_avg = volts.iter().sum::<f64>() / 3.0;
        v.insert("voltage_ln_avg", ln_avg);
        v.insert("current_avg", amps.iter().sum::<f64>() / 3.0);
        v.insert("current_sum", amps.iter().sum());
        v.insert("power_total", p_total);
        v.insert("apparent_power_total", s_total);
        v.insert("reactive_power_total", q_total);
        v.insert("power_factor_total", pf_total);
        v.insert("phase_angle_total", pf_total.acos().to_degrees());
        v.insert(
            "frequency",
            50.0 + 0.02 * (t / 1000.0).sin() + self.noise(0.005),
        );
        v.insert("energy_import", self.energy_kwh);
        v.insert("energy_export", 0.0);
        v.insert("energy_total", self.energy_kwh);
        v.insert("reactive_energy_import", self.reactive_kvarh);
        v.insert("reactive_energy_export", 0.0);
        v.insert("reactive_energy_total", self.reactive_kvarh);
        v.insert("power_demand", demand);
        v.insert("power_demand_max", self.demand_max);
        v.insert("apparent_power_demand", apparent_demand);
        v.insert("apparent_power_demand_max", self.apparent_demand_max);
        v.insert("neutral_current_demand", neutral);
        v.insert("neutral_current_demand_max", self.neutral_demand_max);
        v.insert("voltage_l1_l2", ll(volts[0], volts[1]));
        v.insert("voltage_l2_l3", ll(volts[1], volts[2]));
        v.insert("voltage_l3_l1", ll(volts[2], volts[0]));
        v.insert("voltage_ll_avg", ln_avg * 3f64.sqrt());
        v.insert("current_neutral", neutral);
        // The meter reports f32; the record carries what the decoder makes of it.
        v.into_iter()
            .map(|(k, x)| (k.to_owned(), Value::F64(f64::from(x as f32))))
            .collect()
    }
}

/// How far `v` is from the value of `name` last sent, in deadbands (0 without a band).
fn moves(filter: &ReportFilter, policy: &ReportPolicy, name: &str, v: &Value) -> f64 {
    let (Some(Value::F64(old)), Value::F64(new)) = (filter.last_value(name), v) else {
        return 0.0;
    };
    let band = match policy.point(name).deadband {
        Deadband::Absolute(b) => b,
        Deadband::Percent(p) => old.abs() * p / 100.0,
    };
    if band > 0.0 {
        (new - old).abs() / band
    } else {
        0.0
    }
}

/// Point names built at run time live for the whole bench.
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let days: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(7)
        .clamp(1, 365);
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    println!(
        "SDM630 (53 points), poll every {POLL_S} s, {days} day(s) of virtual time, seed {seed}"
    );
    for (k, (name, report)) in REPORTS.iter().enumerate() {
        let device: DeviceConfig = toml::from_str(&format!("{DEVICE}{report}"))?;
        let r = run(&device, days, seed)?;
        let hours = (days * 24) as f64;
        if k == 0 {
            println!(
                "without report by exception: {:>6.1} records/hour, {:>7.0} JSON record bytes/hour",
                r.polls as f64 / hours,
                r.bytes_all as f64 / hours
            );
        }
        println!(
            "report by exception, {name:<16} {:>6.1} records/hour, {:>7.0} JSON record bytes/hour, {:.1}x fewer; sent because {:?}",
            r.sent as f64 / hours,
            r.bytes_sent as f64 / hours,
            r.polls as f64 / r.sent.max(1) as f64,
            r.reasons
        );
        println!(
            "  largest suppressed move {:.2} deadband(s) (must be <= 1); beyond their band in sent records, most often: {:?}",
            r.worst_unsent, r.top
        );
        if r.worst_unsent > 1.0 {
            return Err("a change beyond its deadband was not sent".into());
        }
    }
    Ok(())
}

/// What one run through the filter produced.
struct Run {
    polls: u64,
    sent: u64,
    bytes_all: u64,
    bytes_sent: u64,
    reasons: BTreeMap<String, u64>,
    /// Largest distance of a suppressed reading from the value last sent, in deadbands.
    worst_unsent: f64,
    /// Points most often beyond their deadband in a record that went out.
    top: Vec<(String, u64)>,
}

/// Polls the simulated meter for `days` and filters with `device`'s report table.
fn run(device: &DeviceConfig, days: u64, seed: u64) -> Result<Run, Box<dyn std::error::Error>> {
    let points = resolve_device(device).map_err(|e| format!("{e:?}"))?;
    let policy = ReportPolicy::new(device.report.as_ref().ok_or("no report table")?, &points);
    let mut meter = Meter::new(seed);
    let mut filter = ReportFilter::new();
    let t0 = Instant::now();
    let polls = days * 86_400 / POLL_S;
    let (mut sent, mut bytes_all, mut bytes_sent) = (0u64, 0u64, 0u64);
    let mut reasons = BTreeMap::<String, u64>::new();
    let mut triggers = BTreeMap::<String, u64>::new();
    let mut worst_unsent = 0.0f64;
    for k in 0..polls {
        let t = k * POLL_S;
        let values = meter.read(t as f64);
        assert_eq!(values.len(), points.len(), "the bench covers every point");
        let mut record = Record::now("bench", "meter");
        record.ts_ms = 1_767_225_600_000 + t as i64 * 1000;
        record.values = values;
        let size = serde_json::to_vec(&record)?.len() as u64;
        bytes_all += size;
        // Points beyond their deadband of the value last sent, before the filter decides.
        let moved: Vec<&String> = record
            .values
            .iter()
            .filter(|(name, v)| moves(&filter, &policy, name, v) > 1.0)
            .map(|(name, _)| name)
            .collect();
        let reading = Reading::values(&record.values);
        match filter.observe(t0 + Duration::from_secs(t), &reading, &policy) {
            Decision::Send(reason) => {
                sent += 1;
                bytes_sent += size;
                *reasons.entry(format!("{reason:?}")).or_default() += 1;
                for name in moved {
                    *triggers.entry(name.clone()).or_default() += 1;
                }
            }
            Decision::Suppress(_) => {
                for (name, v) in &record.values {
                    worst_unsent = worst_unsent.max(moves(&filter, &policy, name, v));
                }
            }
        }
    }
    let mut top: Vec<(String, u64)> = triggers.into_iter().collect();
    top.sort_by_key(|t| std::cmp::Reverse(t.1));
    top.truncate(4);
    Ok(Run {
        polls,
        sent,
        bytes_all,
        bytes_sent,
        reasons,
        worst_unsent,
        top,
    })
}
