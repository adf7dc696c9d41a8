//! `citygate decode …`: field tools that decode captured radio payloads offline.

use crate::southbound::ble;
use crate::southbound::lorawan::{decode_cli, DecodeKeys};
use clap::Subcommand;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum DecodeCommand {
    /// Decode a BLE advertisement or service data (BTHome v2 incl. encrypted, Ruuvi, iBeacon,
    /// Eddystone).
    Ble {
        /// A whole advertisement (AD structures) or, with --format, the bare payload, as hex.
        #[arg(long)]
        hex: String,
        /// bthome, ruuvi, ibeacon or eddystone (default: detect from the advertisement).
        #[arg(long)]
        format: Option<ble::Format>,
        /// The sender's MAC (needed to decrypt BTHome).
        #[arg(long)]
        mac: Option<String>,
        /// BTHome bindkey (32 hex characters).
        #[arg(long)]
        bindkey: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Decode a LoRaWAN PHYPayload: header fields, MIC ok/bad, decrypted payload.
    Lorawan {
        /// The PHYPayload as hex (e.g. from a forwarder log or an LNS frame view).
        #[arg(long)]
        hex: String,
        /// Network session key (32 hex characters), checks the MIC.
        #[arg(long = "nwkskey")]
        nwk_s_key: Option<String>,
        /// Application session key (32 hex characters), decrypts FRMPayload.
        #[arg(long = "appskey")]
        app_s_key: Option<String>,
        /// AppKey (32 hex characters), for join-requests and join-accepts.
        #[arg(long = "appkey")]
        app_key: Option<String>,
        /// Upper 16 bits of the frame counter, after a 16-bit rollover.
        #[arg(long = "fcnt-msb", default_value_t = 0)]
        fcnt_msb: u16,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: &DecodeCommand) -> ExitCode {
    match cmd {
        DecodeCommand::Ble {
            hex,
            format,
            mac,
            bindkey,
            json,
        } => match ble::decode_cli(hex, *format, mac.as_deref(), bindkey.as_deref(), *json) {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("citygate: {e}");
                ExitCode::FAILURE
            }
        },
        DecodeCommand::Lorawan {
            hex,
            nwk_s_key,
            app_s_key,
            app_key,
            fcnt_msb,
            json,
        } => {
            let keys = DecodeKeys {
                nwk_s_key: nwk_s_key.as_deref(),
                app_s_key: app_s_key.as_deref(),
                app_key: app_key.as_deref(),
                fcnt_msb: *fcnt_msb,
                json: *json,
            };
            println!("{}", decode_cli(hex, &keys));
            ExitCode::SUCCESS
        }
    }
}
