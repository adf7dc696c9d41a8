//! Field tools for Modbus: `citygate plan` (what will be read, and how long it takes),
//! `citygate probe modbus` (read a few registers and show every interpretation) and
//! `citygate scan modbus` (which unit ids answer).

use crate::config::Config;
use crate::southbound::{modbus, AdapterConfig};
use clap::Subcommand;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum ProbeCommand {
    /// Read registers from a Modbus device and print them decoded in every type and word order.
    Modbus {
        /// `tcp://HOST:PORT`, `rtu+tcp://HOST:PORT` or `rtu:///dev/ttyUSB0?baud=9600&parity=even`.
        url: String,
        /// Unit id (slave address).
        #[arg(long, default_value_t = 1)]
        unit: u8,
        /// `TABLE:ADDRESS:COUNT`, e.g. `holding:100:2`, `input:0:4`, `coil:0:8`.
        #[arg(long)]
        read: String,
    },
}

/// `citygate plan`: the Modbus request plan of every Modbus adapter in the config.
pub fn plan(cfg: &Config) -> ExitCode {
    let mut any = false;
    for (id, adapter) in &cfg.southbound {
        if let AdapterConfig::Modbus(m) = adapter {
            any = true;
            println!("[southbound.{id}] {}", adapter.type_name());
            println!("{}", modbus::timing::explain(m));
            println!("{}", modbus::device_limits::explain(m));
        }
    }
    if !any {
        println!("no Modbus adapters in {}", cfg.source.display());
    }
    ExitCode::SUCCESS
}

pub fn probe(cmd: &ProbeCommand) -> anyhow::Result<ExitCode> {
    let ProbeCommand::Modbus { url, unit, read } = cmd;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match rt.block_on(modbus::probe::probe(url, *unit, read)) {
        Ok(table) => {
            println!("{table}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("citygate: probe failed: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ScanCommand {
    /// Find the unit ids that answer on a Modbus bus (one small read per unit, in turn).
    Modbus {
        /// `tcp://HOST:PORT`, `rtu+tcp://HOST:PORT` or `rtu:///dev/ttyUSB0?baud=9600&parity=even`.
        url: String,
        /// Unit ids to try: `FIRST-LAST` or one id.
        #[arg(long, default_value = "1-247")]
        units: String,
        /// The read each unit gets, `TABLE:ADDRESS:COUNT` (an exception also proves a device).
        #[arg(long, default_value = "holding:0:1")]
        read: String,
        /// How long to wait for each unit, in milliseconds.
        #[arg(long, default_value_t = 200)]
        timeout_ms: u64,
        /// Serial lines only: find the baud rate and parity first, trying the URL's setting,
        /// then 9600..115200 baud with even, none and odd parity (keep --units narrow: each
        /// setting waits --timeout-ms for every silent unit).
        #[arg(long)]
        serial_search: bool,
    },
    /// Show nearby BLE advertisements decoded live, with RSSI (through BlueZ).
    Ble {
        /// The Bluetooth adapter.
        #[arg(long, default_value = "hci0")]
        adapter: String,
        /// How long to listen, in seconds.
        #[arg(long, default_value_t = 10)]
        duration_s: u64,
        /// `MAC=KEY` (32 hex digits) to decrypt a BTHome sensor's data; may be repeated.
        #[arg(long = "bindkey")]
        bindkeys: Vec<String>,
    },
}

pub fn scan(cmd: &ScanCommand) -> anyhow::Result<ExitCode> {
    let (url, units, read, timeout_ms, serial_search) = match cmd {
        ScanCommand::Modbus {
            url,
            units,
            read,
            timeout_ms,
            serial_search,
        } => (url, units, read, timeout_ms, serial_search),
        ScanCommand::Ble {
            adapter,
            duration_s,
            bindkeys,
        } => return scan_ble(adapter, *duration_s, bindkeys),
    };
    let (target, req, units) = match (
        modbus::probe::parse_url(url),
        modbus::probe::parse_read(read),
        modbus::scan::parse_units(units),
    ) {
        (Ok(t), Ok(r), Ok(u)) => (t, r, u),
        (t, r, u) => {
            for e in [
                t.err().map(|e| e.to_string()),
                r.err().map(|e| e.to_string()),
                u.err(),
            ]
            .into_iter()
            .flatten()
            {
                eprintln!("citygate: scan: {e}");
            }
            return Ok(ExitCode::from(2));
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let timeout = std::time::Duration::from_millis(*timeout_ms);
    if *serial_search {
        let base = match modbus::probe::parse_rtu(url) {
            Ok(base) => base,
            Err(e) => {
                eprintln!("citygate: scan: --serial-search needs a serial line: {e}");
                return Ok(ExitCode::from(2));
            }
        };
        println!(
            "{}: searching the line settings with units {}..={}",
            base.port,
            units.start(),
            units.end()
        );
        let search = rt.block_on(modbus::serial_search::search(
            &base,
            units.clone(),
            &req,
            timeout,
        ));
        return match search {
            Ok(search) => {
                print!("{}", modbus::serial_search::render(&search));
                if let Some((settings, found)) = &search.found {
                    let target = modbus::probe::rtu_target(settings.clone());
                    print!("{}", modbus::scan::render(&target, &units, found));
                    Ok(ExitCode::SUCCESS)
                } else {
                    Ok(ExitCode::FAILURE)
                }
            }
            Err(e) => {
                eprintln!("citygate: scan failed: {e}");
                Ok(ExitCode::FAILURE)
            }
        };
    }
    match rt.block_on(modbus::scan::scan(&target, units.clone(), &req, timeout)) {
        Ok(found) => {
            print!("{}", modbus::scan::render(&target, &units, &found));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("citygate: scan failed: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn scan_ble(adapter: &str, duration_s: u64, bindkeys: &[String]) -> anyhow::Result<ExitCode> {
    use crate::southbound::ble::{config::parse_bindkey, decoders::Mac, scan_tool};
    let mut keys = std::collections::HashMap::new();
    for spec in bindkeys {
        let parsed = spec.split_once('=').and_then(|(mac, key)| {
            Some((mac.trim().parse::<Mac>().ok()?, parse_bindkey(key.trim())?))
        });
        match parsed {
            Some((mac, key)) => {
                keys.insert(mac, key);
            }
            None => {
                eprintln!("citygate: scan: --bindkey {spec:?} is not MAC=KEY (KEY: 32 hex digits)");
                return Ok(ExitCode::from(2));
            }
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    println!("listening on {adapter} for {duration_s} s (MAC, RSSI, format, values)");
    let duration = std::time::Duration::from_secs(duration_s);
    match rt.block_on(scan_tool::scan(adapter, duration, &keys, |line| {
        println!("{line}");
    })) {
        Ok(heard) => {
            print!("{}", scan_tool::render_summary(&heard));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("citygate: scan failed: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
