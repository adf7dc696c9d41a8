//! Keeping the daemon's resident memory small (a cabinet router has 128 MB for everything).
//!
//! Two things dominate a gateway's RSS besides its own data: the allocator's per-thread arenas
//! and the pages of the binary itself. glibc gives every thread that allocates its own arena
//! (up to 8 per core) and keeps freed memory in each; citygate allocates little and mostly on
//! one thread at a time, so one arena does ([`limit_allocator_arenas`]). The binary's code and
//! read-only data are mapped in 64 KiB windows (the kernel's fault-around) as start-up code
//! runs through them (config parsing, every subsystem's set-up, registration), which leaves
//! most of the 10 MB binary resident although a running gateway uses a fraction of it:
//! [`release_startup_pages`] hands those pages back once the daemon runs. Both are about
//! resident memory only; nothing a gateway does changes.

/// Makes glibc's malloc use one arena for all threads (like `MALLOC_ARENA_MAX=1`), unless the
/// environment sets `MALLOC_ARENA_MAX` itself. Call before any thread starts. Other C
/// libraries (musl, the static ARM builds) have a single heap anyway.
pub fn limit_allocator_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes malloc's tuning; called before other threads exist.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

/// How long after start-up [`release_startup_pages_after`] waits: the daemon has registered
/// with the CSE and run every adapter's first cycle by then.
pub const STARTUP_SETTLE: std::time::Duration = std::time::Duration::from_secs(5);

/// [`release_startup_pages`] once, `after` the daemon reported ready (or never, when it stops
/// first).
pub async fn release_startup_pages_after(
    after: std::time::Duration,
    token: tokio_util::sync::CancellationToken,
) {
    tokio::select! {
        _ = token.cancelled() => {}
        _ = tokio::time::sleep(after) => {
            let bytes = release_startup_pages();
            tracing::debug!(bytes, "released the start-up pages of the binary");
        }
    }
}

/// Unmaps the pages of the binary's (and its libraries') code and read-only data, and gives
/// glibc's free heap memory back to the kernel; what the daemon uses afterwards faults back in
/// from the page cache (a minor fault, no I/O while the file stays cached). Only segments that
/// are never written (no `PF_W`) are touched: `MADV_DONTNEED` on a page that was never
/// written drops nothing but the mapping. Returns the bytes of address range unmapped.
pub fn release_startup_pages() -> usize {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: returns free memory of malloc's heap to the kernel; no allocation is touched.
    unsafe {
        libc::malloc_trim(0);
    }
    #[cfg(target_os = "linux")]
    {
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        // SAFETY: the callback only reads the program headers the loader hands it.
        unsafe {
            libc::dl_iterate_phdr(
                Some(collect_read_only),
                (&mut ranges as *mut Vec<(usize, usize)>).cast(),
            );
        }
        let mut advised = 0;
        for (start, len) in ranges {
            // SAFETY: the range is a mapped, never-written segment of a loaded object:
            // dropping its pages loses nothing, they fault back in from the file.
            if unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED) } == 0 {
                advised += len;
            }
        }
        advised
    }
    #[cfg(not(target_os = "linux"))]
    0
}

/// `dl_iterate_phdr` callback: appends the page-aligned ranges of the object's loadable
/// segments that are not writable (code, read-only data; not RELRO, which the loader wrote).
#[cfg(target_os = "linux")]
unsafe extern "C" fn collect_read_only(
    info: *mut libc::dl_phdr_info,
    _size: libc::size_t,
    data: *mut libc::c_void,
) -> libc::c_int {
    // SAFETY: the loader passes a valid info and our own Vec pointer.
    let (info, ranges) = unsafe { (&*info, &mut *data.cast::<Vec<(usize, usize)>>()) };
    if !info.dlpi_name.is_null() {
        // SAFETY: a NUL-terminated name owned by the loader.
        let name = unsafe { std::ffi::CStr::from_ptr(info.dlpi_name) };
        if name.to_bytes().starts_with(b"linux-") {
            return 0; // the vDSO: a kernel page, not a file mapping
        }
    }
    if info.dlpi_phdr.is_null() {
        return 0;
    }
    let page = page_size();
    // SAFETY: dlpi_phdr points at dlpi_phnum program headers.
    let headers = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) };
    for h in headers {
        if h.p_type != libc::PT_LOAD || h.p_flags & libc::PF_W != 0 {
            continue;
        }
        let start = info.dlpi_addr as usize + h.p_vaddr as usize;
        let end = start + h.p_memsz as usize;
        // Whole pages inside the segment only: a page shared with a writable segment stays.
        let first = start.div_ceil(page) * page;
        let last = end / page * page;
        if last > first {
            ranges.push((first, last - first));
        }
    }
    0
}

#[cfg(target_os = "linux")]
fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releasing_read_only_pages_keeps_code_and_data_usable() {
        let table: Vec<u64> = (0..10_000).collect();
        let text = format!("{:?}", "constant data");
        let advised = release_startup_pages();
        if cfg!(target_os = "linux") {
            assert!(advised > 0, "the test binary's code is a read-only segment");
        }
        // Code and constant data fault back in; heap data and relocated data are untouched.
        assert_eq!(table.iter().sum::<u64>(), 49_995_000);
        assert_eq!(text, "\"constant data\"");
        assert_eq!(format!("{:?}", "constant data"), text);
        // Twice is harmless.
        assert_eq!(release_startup_pages(), advised);
    }

    #[tokio::test]
    async fn a_stopping_daemon_does_not_wait_for_the_release() {
        let token = tokio_util::sync::CancellationToken::new();
        token.cancel();
        let waited = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            release_startup_pages_after(std::time::Duration::from_secs(3600), token),
        )
        .await;
        assert!(
            waited.is_ok(),
            "returns on cancellation, not after the delay"
        );
    }
}
