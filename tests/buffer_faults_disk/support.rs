//! Helpers of the disk fault tests: mounts, the daemon process, its telemetry endpoints.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub fn sh(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn require_root() {
    let uid = String::from_utf8(Command::new("id").arg("-u").output().unwrap().stdout).unwrap();
    assert_eq!(
        uid.trim(),
        "0",
        "this test mounts file systems: run it as root"
    );
}

/// A mounted file system, unmounted (lazily if still busy) on drop.
pub struct Mount {
    pub point: PathBuf,
}

impl Mount {
    /// A 32 MiB ext4 image on a loop device, remounted read-only by the kernel on errors.
    pub fn ext4(dir: &Path) -> Mount {
        let img = dir.join("sd.img");
        let f = std::fs::File::create(&img).unwrap();
        f.set_len(32 << 20).unwrap();
        sh("mkfs.ext4", &["-q", "-F", img.to_str().unwrap()]);
        let point = dir.join("sd");
        std::fs::create_dir_all(&point).unwrap();
        sh(
            "mount",
            &[
                "-o",
                "loop,errors=remount-ro",
                img.to_str().unwrap(),
                point.to_str().unwrap(),
            ],
        );
        Mount { point }
    }

    pub fn tmpfs(dir: &Path, size: &str) -> Mount {
        let point = dir.join("tmpfs");
        std::fs::create_dir_all(&point).unwrap();
        sh(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "tmpfs",
                point.to_str().unwrap(),
            ],
        );
        Mount { point }
    }

    /// The loop device's name (`loop3`), as in /sys/fs/ext4/.
    pub fn device(&self) -> String {
        let out = Command::new("findmnt")
            .args(["-n", "-o", "SOURCE"])
            .arg(&self.point)
            .output()
            .unwrap();
        let src = String::from_utf8(out.stdout).unwrap();
        Path::new(src.trim())
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    /// What an SD card's I/O error does to ext4 with `errors=remount-ro`: the journal aborts
    /// and the file system turns read-only under the running daemon.
    pub fn fail_ext4(&self) {
        std::fs::write(
            format!("/sys/fs/ext4/{}/trigger_fs_error", self.device()),
            "citygate test: simulated SD card error\n",
        )
        .unwrap();
    }

    pub fn umount(&self) {
        sh("umount", &[self.point.to_str().unwrap()]);
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.point)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.point).status();
        }
    }
}

pub struct Daemon(pub Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Daemon {
    pub fn stop(mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .unwrap();
        let end = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(s) = self.0.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < end, "daemon did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// GET on the telemetry port: (status code, body).
pub fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let code = out.split(' ').nth(1)?.parse().ok()?;
    let body = out.split_once("\r\n\r\n")?.1.to_owned();
    Some((code, body))
}

/// A metric's value, summed over label sets matching `labels` (e.g. `reason="io_error"`).
pub fn metric(text: &str, name: &str, labels: &str) -> u64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter(|l| l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}
