//! pymodbus, the independent Modbus implementation the tests use as a real device
//! (`tests/peers/pymodbus_server.py`: holding registers 0..19, coils 0..15, unit 1).
//!
//! Either start `tests/peers/pymodbus_server.py PORT` yourself and set
//! `CITYGATE_PYMODBUS_PORT=PORT`, or set `CITYGATE_PY_VENV` to a venv with pymodbus 3.x
//! (default `<crate>/target/peers/venv`, where tests/run.sh installs it) and the script is
//! started on a free port.
use std::path::PathBuf;
use std::time::Duration;

/// The peer's address, and the child process when it was started here (killed on drop).
pub async fn peer() -> (String, Option<tokio::process::Child>) {
    if let Ok(port) = std::env::var("CITYGATE_PYMODBUS_PORT") {
        return (format!("127.0.0.1:{port}"), None);
    }
    let venv = std::env::var("CITYGATE_PY_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target/peers/venv"))
        });
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "no python at {} (tests/run.sh installs it; or set CITYGATE_PY_VENV or CITYGATE_PYMODBUS_PORT)",
        python.display()
    );
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let child = tokio::process::Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/peers/pymodbus_server.py"
        ))
        .arg(port.to_string())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start pymodbus");
    let addr = format!("127.0.0.1:{port}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while tokio::net::TcpStream::connect(&addr).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "pymodbus did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (addr, Some(child))
}
