//! What the gateway says about itself: citygate's version and build, the operating system,
//! memory. Read from the machine, never configured.
use std::path::Path;

/// citygate's version: `CARGO_PKG_VERSION`, plus the build (`git describe` or a package
/// revision) when the build passed one in `CITYGATE_BUILD`.
pub fn version() -> String {
    match option_env!("CITYGATE_BUILD") {
        Some(build) if !build.trim().is_empty() => {
            format!("{} ({})", env!("CARGO_PKG_VERSION"), build.trim())
        }
        _ => env!("CARGO_PKG_VERSION").to_string(),
    }
}

/// The operating system: `PRETTY_NAME` of os-release and the kernel release, e.g.
/// `Debian GNU/Linux 12 (bookworm); Linux 6.1.0-27-arm64`.
pub fn os_version() -> String {
    let pretty = ["/etc/os-release", "/usr/lib/os-release"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .and_then(|text| os_release_pretty_name(&text));
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|k| format!("{} {}", std::env::consts::OS, k.trim()))
        .filter(|k| !k.ends_with(' '));
    match (pretty, kernel) {
        (Some(p), Some(k)) => format!("{p}; {k}"),
        (Some(p), None) => p,
        (None, Some(k)) => k,
        (None, None) => std::env::consts::OS.to_string(),
    }
}

/// `PRETTY_NAME` (else `NAME VERSION_ID`) of an os-release file, unquoted.
pub fn os_release_pretty_name(text: &str) -> Option<String> {
    let value = |key: &str| {
        text.lines().find_map(|l| {
            let v = l.strip_prefix(key)?.strip_prefix('=')?;
            let v = v.trim().trim_matches('"').trim_matches('\'');
            (!v.is_empty()).then(|| v.to_string())
        })
    };
    value("PRETTY_NAME").or_else(|| match (value("NAME"), value("VERSION_ID")) {
        (Some(n), Some(v)) => Some(format!("{n} {v}")),
        (Some(n), None) => Some(n),
        _ => None,
    })
}

/// Memory in bytes, as the memory mgmtObj wants it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// `MemAvailable`: what can be allocated without swapping.
    pub available: u64,
    /// `MemTotal`.
    pub total: u64,
}

/// Reads `/proc/meminfo` (Linux); `None` elsewhere or when unreadable.
pub fn memory() -> Option<Memory> {
    parse_meminfo(&std::fs::read_to_string(Path::new("/proc/meminfo")).ok()?)
}

/// `MemAvailable` and `MemTotal` of a meminfo text (kB values) in bytes.
pub fn parse_meminfo(text: &str) -> Option<Memory> {
    let kb = |key: &str| {
        text.lines().find_map(|l| {
            let rest = l.strip_prefix(key)?.strip_prefix(':')?;
            let n: u64 = rest.split_whitespace().next()?.parse().ok()?;
            n.checked_mul(1024)
        })
    };
    Some(Memory {
        available: kb("MemAvailable")?,
        total: kb("MemTotal")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_in_bytes() {
        let text = "MemTotal:        2014104 kB\nMemFree:          123456 kB\nMemAvailable:    1500000 kB\n";
        assert_eq!(
            parse_meminfo(text),
            Some(Memory {
                available: 1_536_000_000,
                total: 2_062_442_496
            })
        );
        assert_eq!(parse_meminfo("MemTotal: x kB"), None);
    }

    #[test]
    fn os_release_names() {
        let text = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n";
        assert_eq!(
            os_release_pretty_name(text).as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert_eq!(
            os_release_pretty_name("NAME=Alpine\nVERSION_ID=3.20\n").as_deref(),
            Some("Alpine 3.20")
        );
        assert_eq!(os_release_pretty_name("FOO=1"), None);
    }

    #[test]
    fn version_starts_with_the_package_version() {
        assert!(version().starts_with(env!("CARGO_PKG_VERSION")));
    }
}
