//! Field tools for Modbus: `citygate plan` (what will be read, and how long it takes) and
//! `citygate probe modbus` (read a few registers and show every interpretation).

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
