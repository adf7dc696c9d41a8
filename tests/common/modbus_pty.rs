//! A serial Modbus device on a pseudo-terminal that understands only one line setting, as a
//! meter at 19200 baud with odd parity does. A pty carries bytes whatever its termios says, so
//! the device reads the settings the client put on the line (the pty's termios) for every
//! request: at another baud rate it hears noise and stays silent; at the right rate but another
//! parity it answers, and the client sees garbage (what a UART makes of a parity mismatch).
//!
//! The pty driver clears PARENB from every termios it is given, but keeps PARODD: so the
//! device can tell odd parity from the others, not even from none. Its parity is therefore a
//! flag: odd or not.
use super::modbus::{rtu_answer, Sim};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A running device; stops when dropped.
pub struct LineBoundRtu {
    /// The pty's path, for `rtu://PATH?baud=…`.
    pub path: String,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for LineBoundRtu {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The line settings the client set: baud rate and whether parity is odd (termios2).
fn line_of(slave: &File) -> Option<(u32, bool)> {
    // SAFETY: termios2 is plain data; TCGETS2 fills it for a tty fd we own.
    let mut t: libc::termios2 = unsafe { std::mem::zeroed() };
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TCGETS2, &mut t) } != 0 {
        return None;
    }
    Some((t.c_ospeed, t.c_cflag & libc::PARODD != 0))
}

/// Serves `sim` on a new pty, answering only while the line is at `baud` with odd parity
/// (`odd`) or another parity (`!odd`).
pub fn start_line_bound(sim: Sim, baud: u32, odd: bool) -> LineBoundRtu {
    let (mut master_fd, mut slave_fd) = (0, 0);
    // SAFETY: openpty writes two new fds; no name buffer, default termios and window size.
    let rc = unsafe {
        libc::openpty(
            &mut master_fd,
            &mut slave_fd,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both fds were just opened by openpty and are owned here from now on.
    let (mut master, slave) =
        unsafe { (File::from_raw_fd(master_fd), File::from_raw_fd(slave_fd)) };
    let path = std::fs::read_link(format!("/proc/self/fd/{slave_fd}"))
        .expect("pty path")
        .to_string_lossy()
        .into_owned();
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = Arc::clone(&stop);
    let thread = std::thread::spawn(move || {
        let mut pending = Vec::new();
        let mut buf = [0u8; 256];
        while !stopping.load(Ordering::SeqCst) {
            let mut pfd = libc::pollfd {
                fd: master.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one pollfd for an fd we own, 50 ms timeout.
            if unsafe { libc::poll(&mut pfd, 1, 50) } <= 0 {
                continue;
            }
            let Ok(n) = master.read(&mut buf) else {
                std::thread::sleep(std::time::Duration::from_millis(10));
                continue;
            };
            pending.extend_from_slice(&buf[..n]);
            while pending.len() >= 8 {
                let req: [u8; 8] = pending[..8].try_into().expect("8 bytes");
                pending.drain(..8);
                let Some((line_baud, line_odd)) = line_of(&slave) else {
                    continue;
                };
                if line_baud != baud {
                    continue; // noise at another speed: no frame, no answer
                }
                let Some(answer) = rtu_answer(&sim, &req) else {
                    continue;
                };
                let reply = if line_odd == odd {
                    answer
                } else {
                    vec![0xff; answer.len()] // what a UART makes of a parity mismatch
                };
                let _ = master.write_all(&reply);
            }
        }
        drop(slave);
    });
    LineBoundRtu {
        path,
        stop,
        thread: Some(thread),
    }
}
