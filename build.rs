//! Places the functions a running gateway executes next to each other in the release binary.
//!
//! The kernel maps a binary's code into a process in 64 KiB windows, and the functions that run
//! every second (tokio, the Modbus client, SQLite, the HTTP client, the syncer) are otherwise
//! spread over all of the code, which then stays resident: about 5.5 MiB of a gateway's RSS.
//! `cross/hot-functions.txt` lists them (made by `benches/hot-functions.sh`); the linker's
//! `--symbol-ordering-file` puts them first. Names the build no longer has are ignored, so a
//! stale list costs memory, never correctness.
//!
//! Only where rustc links with lld on its own: x86_64-unknown-linux-gnu from Rust 1.90. The
//! cross builds link with zig, which has no such option (cross/README.md).

use std::process::Command;

fn main() {
    const LIST: &str = "cross/hot-functions.txt";
    println!("cargo:rerun-if-changed={LIST}");
    println!("cargo:rerun-if-changed=build.rs");
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let target = std::env::var("TARGET").unwrap_or_default();
    if !release || target != "x86_64-unknown-linux-gnu" || !rustc_links_with_lld() {
        return;
    }
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let list = std::path::Path::new(&dir).join(LIST);
    if list.is_file() {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            list.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}

/// Rust 1.90 made its own lld the linker of x86_64-unknown-linux-gnu; older ones use the
/// system's `ld`, which does not know `--symbol-ordering-file`.
fn rustc_links_with_lld() -> bool {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(out) = Command::new(rustc).arg("--version").output() else {
        return false;
    };
    // "rustc 1.95.0 (59807616e 2026-04-14)"
    let text = String::from_utf8_lossy(&out.stdout);
    let minor = text
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.split('.').nth(1))
        .and_then(|m| m.parse::<u32>().ok());
    minor.is_some_and(|m| m >= 90)
}
