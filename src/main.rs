use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Before any thread exists: one malloc arena (see runtime::memory).
    citygate::runtime::memory::limit_allocator_arenas();
    let cli = citygate::cli::Cli::parse();
    match citygate::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("citygate: {e:#}");
            ExitCode::FAILURE
        }
    }
}
