//! The command line: `run`, `check`, `status`, `devices`, `tail`, `buffer …`, field tools,
//! `version`. `anyhow` lives here and in
//! `main.rs` only.

mod buffer_cmd;
mod check;
mod config_cmd;
mod daemon_api;
mod decode;
mod field;
mod live;
mod run;
mod status;
mod write;

use crate::config::{self, LoadError, DEFAULT_CONFIG_PATH, EXIT_CONFIG};
use crate::telemetry::logging::{self, LogFormat};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "citygate",
    version,
    about = "Edge gateway: field devices to a oneM2M platform, with a durable buffer"
)]
pub struct Cli {
    /// Config file.
    #[arg(short, long, global = true, env = "CITYGATE_CONFIG", default_value = DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,
    /// Log format (overrides `[log] format`).
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Whether this is the gateway itself (`run`) rather than a one-shot tool.
    pub fn runs_daemon(&self) -> bool {
        matches!(self.command, Command::Run)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway until SIGTERM/SIGINT.
    Run,
    /// Check the config file; prints every problem as FILE:LINE:COL. Exit 0 valid, 78 invalid.
    Check,
    /// Ask the running daemon how it is doing (its /status endpoint).
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Every device the running daemon hears: last seen, up/down, last values and quality.
    Devices {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Print records as the running daemon commits them (Ctrl-C to stop).
    Tail {
        /// Only this device id.
        #[arg(long)]
        device: Option<String>,
        /// Only this adapter id.
        #[arg(long)]
        adapter: Option<String>,
        /// One JSON record per line.
        #[arg(long)]
        json: bool,
    },
    /// Inspect the local buffer.
    #[command(subcommand)]
    Buffer(BufferCommand),
    /// Print each Modbus device's reads per poll cycle and the estimated bus time.
    Plan,
    /// Talk to a device directly (field tool; does not need a config).
    #[command(subcommand)]
    Probe(field::ProbeCommand),
    /// Write one value to a device and read it back (field tool; does not need a config).
    #[command(subcommand)]
    Write(write::WriteCommand),
    /// Find devices on a bus (field tool; does not need a config).
    #[command(subcommand)]
    Scan(field::ScanCommand),
    /// Decode captured radio payloads (field tool, works offline).
    #[command(subcommand)]
    Decode(decode::DecodeCommand),
    /// Print version and build information.
    Version,
    /// The config file as tools see it (`config schema`: its JSON Schema, for editors).
    #[command(subcommand)]
    Config(config_cmd::ConfigCommand),
}

#[derive(Debug, Subcommand)]
pub enum BufferCommand {
    /// Pending records, sizes, drops by reason, dead letters.
    Stats {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Records the platform refused permanently (newest first).
    DeadLetters {
        /// How many to show.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Copy every readable record, dead letter, state key and drop counter of a damaged buffer
    /// into a new file (stop the daemon first; see docs/buffer.md).
    Salvage {
        /// The new buffer file to write (must not exist).
        #[arg(long)]
        out: std::path::PathBuf,
        #[arg(long)]
        json: bool,
    },
}

/// Runs the parsed command. Config problems are printed here and become exit code 78.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // rustls with ring only: every HTTPS/TLS client (CSE, status, MQTT) needs the provider.
    crate::northbound::install_crypto_provider();
    match &cli.command {
        Command::Version => {
            println!("citygate {}", env!("CARGO_PKG_VERSION"));
            println!("buffer schema {}", crate::buffer::SCHEMA_VERSION);
            println!(
                "adapters: {}",
                crate::southbound::AdapterConfig::TYPES.join(", ")
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Check => Ok(check::check(&cli.config)),
        Command::Config(cmd) => Ok(config_cmd::run(cmd)),
        Command::Decode(cmd) => Ok(decode::run(cmd)),
        Command::Probe(cmd) => field::probe(cmd),
        Command::Scan(cmd) => field::scan(cmd),
        Command::Write(cmd) => write::run(cmd),
        Command::Status { json } => {
            let Some(cfg) = load_or_report(&cli.config) else {
                return Ok(ExitCode::from(EXIT_CONFIG));
            };
            status::run(&cfg, *json)
        }
        Command::Devices { json } => {
            let Some(cfg) = load_or_report(&cli.config) else {
                return Ok(ExitCode::from(EXIT_CONFIG));
            };
            live::devices(&cfg, *json)
        }
        Command::Tail {
            device,
            adapter,
            json,
        } => {
            let Some(cfg) = load_or_report(&cli.config) else {
                return Ok(ExitCode::from(EXIT_CONFIG));
            };
            live::tail(&cfg, device.as_deref(), adapter.as_deref(), *json)
        }
        Command::Plan => {
            let Some(cfg) = load_or_report(&cli.config) else {
                return Ok(ExitCode::from(EXIT_CONFIG));
            };
            Ok(field::plan(&cfg))
        }
        Command::Run => {
            let Some(cfg) = load_or_report(&cli.config) else {
                return Ok(ExitCode::from(EXIT_CONFIG));
            };
            logging::init(&cfg.log.level, cli.log_format.unwrap_or(cfg.log.format));
            run::run(cfg)
        }
        Command::Buffer(cmd) => {
            let Some(cfg) = load_or_report(&cli.config) else {
                return Ok(ExitCode::from(EXIT_CONFIG));
            };
            logging::init("warn", cli.log_format.unwrap_or(LogFormat::Auto));
            buffer_cmd::run(&cfg, cmd)
        }
    }
}

/// Loads the config or prints why not (every problem) to stderr.
fn load_or_report(path: &std::path::Path) -> Option<config::Config> {
    match config::load(path) {
        Ok(c) => Some(c),
        Err(LoadError::Invalid(report)) => {
            eprintln!("{report}");
            eprintln!("{} problem(s) in {}", report.issues.len(), path.display());
            None
        }
        Err(e @ LoadError::Io { .. }) => {
            eprintln!("citygate: {e}");
            eprintln!("    hint: pass the config with -c FILE (default {DEFAULT_CONFIG_PATH})");
            None
        }
    }
}
