//! `citygate config …`: the config file as tools see it.

use clap::Subcommand;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the JSON Schema of the config file (for editors: taplo, VS Code Even Better TOML).
    Schema,
}

pub fn run(cmd: &ConfigCommand) -> ExitCode {
    match cmd {
        ConfigCommand::Schema => {
            print!("{}", crate::config::schema::config_schema_text());
            ExitCode::SUCCESS
        }
    }
}
