//! A real Mosquitto broker on 127.0.0.1 for a test: own config, free port, killed on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Mosquitto {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// TLS listener on `port`: (certificate, key) PEM files, plus a plain listener on
    /// `plain_port` for test clients.
    tls: Option<(PathBuf, PathBuf)>,
    pub plain_port: u16,
}

/// The broker binary, or `None` (then the test panics under `CITYGATE_REQUIRE_PEERS`).
pub fn binary() -> Option<PathBuf> {
    ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

impl Mosquitto {
    pub fn start() -> Option<Mosquitto> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let mut m = Mosquitto {
            port,
            child: None,
            dir: tempfile::tempdir().ok()?,
            tls: None,
            plain_port: port,
        };
        m.restart();
        Some(m)
    }

    /// A broker with a TLS listener on `port` (this server certificate and key) and a plain
    /// one on `plain_port`.
    pub fn start_tls(cert: PathBuf, key: PathBuf) -> Option<Mosquitto> {
        let free = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .ok()?
                .local_addr()
                .ok()
                .map(|a| a.port())
        };
        let (port, plain_port) = (free()?, free()?);
        let mut m = Mosquitto {
            port,
            child: None,
            dir: tempfile::tempdir().ok()?,
            tls: Some((cert, key)),
            plain_port,
        };
        m.restart();
        Some(m)
    }

    /// (Re)starts the broker on the same port.
    pub fn restart(&mut self) {
        self.stop();
        let conf = self.dir.path().join("mosquitto.conf");
        let tls = match &self.tls {
            Some((cert, key)) => format!(
                // Started as root, mosquitto drops to its own user, which cannot read the
                // test's key in a private temporary directory.
                "certfile {}\nkeyfile {}\nlistener {} 127.0.0.1\nuser root\n",
                cert.display(),
                key.display(),
                self.plain_port
            ),
            None => String::new(),
        };
        std::fs::write(
            &conf,
            format!(
                "listener {} 127.0.0.1\n{tls}allow_anonymous true\npersistence false\nset_tcp_nodelay true\n",
                self.port
            ),
        )
        .expect("write mosquitto.conf");
        let child = Command::new(binary().expect("mosquitto installed"))
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Skips (returns `None`) without a broker, unless `CITYGATE_REQUIRE_PEERS` is set.
pub fn require() -> Option<Mosquitto> {
    if binary().is_none() {
        assert!(
            std::env::var_os("CITYGATE_REQUIRE_PEERS").is_none(),
            "mosquitto is not installed (apt-get install mosquitto)"
        );
        eprintln!("SKIP: mosquitto is not installed");
        return None;
    }
    Mosquitto::start()
}
