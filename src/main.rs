use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Before any thread exists: one malloc arena (see runtime::memory).
    citygate::runtime::memory::limit_allocator_arenas();
    let cli = citygate::cli::Cli::parse();
    if !cli.runs_daemon() {
        // A tool piped into `head` ends quietly when the pipe closes, like any Unix tool,
        // instead of panicking in println!. The daemon keeps ignoring SIGPIPE: a closed
        // socket is an error it handles.
        // SAFETY: sets the default action of one signal before any thread exists.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    match citygate::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("citygate: {e:#}");
            ExitCode::FAILURE
        }
    }
}
