//! `citygate write modbus`: the field tool that writes one value to a device, reads it back
//! and prints both (no config needed).

use crate::southbound::modbus::write_tool::{write, WriteSpec};
use clap::Subcommand;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum WriteCommand {
    /// Write one value to a Modbus device (FC 05/06/16), read it back and print both.
    /// Exit 0 when the device holds what was written, 1 otherwise.
    Modbus {
        /// `tcp://HOST:PORT`, `rtu+tcp://HOST:PORT` or `rtu:///dev/ttyUSB0?baud=9600&parity=even`.
        url: String,
        /// Unit id (slave address).
        #[arg(long, default_value_t = 1)]
        unit: u8,
        /// `coil` or `holding` (input registers and discrete inputs are read-only).
        #[arg(long)]
        table: String,
        /// 0-based protocol address, decimal or 0x hex.
        #[arg(long)]
        address: String,
        /// `bool`, `u16`, `i16`, `u32`, `i32`, `u64`, `i64`, `f32`, `f64`.
        #[arg(long = "type")]
        kind: String,
        /// The value in engineering units (`true`/`false` for bool).
        #[arg(long, allow_hyphen_values = true)]
        value: String,
        /// Word order of a 32/64-bit value: ABCD (default), CDAB, BADC, DCBA.
        #[arg(long)]
        order: Option<String>,
        /// The point's scale (value = raw × scale + offset); the raw value written is
        /// (value − offset) / scale.
        #[arg(long, allow_hyphen_values = true)]
        scale: Option<f64>,
        #[arg(long, allow_hyphen_values = true)]
        offset: Option<f64>,
    },
}

pub fn run(cmd: &WriteCommand) -> anyhow::Result<ExitCode> {
    let WriteCommand::Modbus {
        url,
        unit,
        table,
        address,
        kind,
        value,
        order,
        scale,
        offset,
    } = cmd;
    let spec = WriteSpec {
        unit: *unit,
        table: table.clone(),
        address: address.clone(),
        kind: kind.clone(),
        value: value.clone(),
        order: order.clone(),
        scale: *scale,
        offset: *offset,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match rt.block_on(write(url, &spec)) {
        Ok(report) => {
            print!("{}", report.text);
            Ok(if report.matches {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Err(e) => {
            eprintln!("citygate: write failed: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
