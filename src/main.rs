use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = citygate::cli::Cli::parse();
    match citygate::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("citygate: {e:#}");
            ExitCode::FAILURE
        }
    }
}
