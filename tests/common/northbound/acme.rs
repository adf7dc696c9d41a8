//! Starts a real ACME CSE (PyPI `acmecse`) on 127.0.0.1 for the northbound tests.
//!
//! The venv comes from `tests/peers/acme.sh` (idempotent; `CITYGATE_ACME_VENV` or
//! `<crate>/target/peers/acme-venv`). Each instance gets its own temp base dir with the minimal
//! `acme.ini` (without it ACME starts an interactive onboarding dialog), an in-memory DB,
//! waitress (`--http-wsgi`, keep-alive; it sends `X-M2m-Rsc` header case). Ready means a real
//! RETRIEVE of the CSEBase answered 2000 (the port opens before the CSEBase exists). ACME
//! runs in its own session (`setsid`); its process group is killed (killpg) on drop.
#![allow(dead_code)]
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ADMIN: &str = "CAdmin";

pub struct Acme {
    pub port: u16,
    /// `http://127.0.0.1:<port>`
    pub url: String,
    /// The broker port of an instance with the MQTT binding enabled.
    pub mqtt_port: Option<u16>,
    /// The UDP port of an instance with the CoAP binding enabled ([`Acme::start_coap`]).
    pub coap_port: Option<u16>,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

/// Installs (once) and returns the venv holding `acmecse`.
pub fn venv() -> anyhow::Result<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/acme.sh");
    let out = Command::new("bash")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()
        .context("running tests/peers/acme.sh")?;
    if !out.status.success() {
        bail!("tests/peers/acme.sh failed ({})", out.status);
    }
    Ok(PathBuf::from(String::from_utf8(out.stdout)?.trim()))
}

/// A TCP port on 127.0.0.1 that was free a moment ago (also `common::daemon::free_port`).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// TLS and HTTP authentication for [`Acme::start_secure`] (ACME cannot combine TLS with
/// waitress, so a secure instance runs werkzeug without keep-alive).
#[derive(Debug, Clone, Default)]
pub struct Security {
    pub tls: bool,
    pub basic: Option<(String, String)>,
    pub token: Option<String>,
}

impl Acme {
    /// Starts ACME on a free port and waits until it answers.
    pub async fn start() -> anyhow::Result<Acme> {
        Acme::start_on(free_port()).await
    }

    /// Starts ACME on `port` (e.g. again on the port of a killed instance).
    pub async fn start_on(port: u16) -> anyhow::Result<Acme> {
        Acme::launch(port, &Security::default(), None, None).await
    }

    /// Starts ACME with its MQTT binding (TS-0010) enabled towards the broker on 127.0.0.1:
    /// `broker_port` (HTTP stays enabled, for checks). Ready means it answered a RETRIEVE of
    /// the CSEBase over MQTT too.
    pub async fn start_mqtt(broker_port: u16) -> anyhow::Result<Acme> {
        Acme::start_mqtt_on(free_port(), broker_port).await
    }

    /// [`Acme::start_mqtt`] on a given HTTP port (a restart).
    pub async fn start_mqtt_on(port: u16, broker_port: u16) -> anyhow::Result<Acme> {
        let mut acme = Acme::launch(port, &Security::default(), Some(broker_port), None).await?;
        if let Err(e) = wait_mqtt_ready(broker_port, Duration::from_secs(60)).await {
            let out =
                std::fs::read_to_string(acme.dir.path().join("stdout.log")).unwrap_or_default();
            acme.kill();
            bail!("ACME did not answer over MQTT: {e}\n{out}");
        }
        Ok(acme)
    }

    /// Starts ACME with TLS (self-signed cert for IP 127.0.0.1, see [`Acme::cert_file`])
    /// and/or basic/bearer authentication.
    pub async fn start_secure(sec: &Security) -> anyhow::Result<Acme> {
        Acme::launch(free_port(), sec, None, None).await
    }

    /// The CA (PEM) that signed a TLS instance's certificate: what clients must trust.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("certs/ca.pem")
    }

    /// The instance's PKI (e.g. to sign a client certificate).
    pub fn pki(&self) -> Pki {
        let dir = self.dir.path().join("certs");
        Pki {
            ca_cert: dir.join("ca.pem"),
            ca_key: dir.join("ca_key.pem"),
            dir,
        }
    }

    /// The instance's log (what ACME printed), for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stdout.log")).unwrap_or_default()
    }

    /// The instance's base directory (e.g. to put client key material next to it).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub(super) async fn launch(
        port: u16,
        sec: &Security,
        mqtt: Option<u16>,
        coap: Option<u16>,
    ) -> anyhow::Result<Acme> {
        let venv = venv()?;
        let dir = tempfile::tempdir()?;
        let mut ini = acme_ini(port, dir.path(), sec.tls);
        if let Some(broker) = mqtt {
            ini = ini.replace(
                "[mqtt]\nenable=false\naddress=127.0.0.1\nport=1883\n",
                &format!("[mqtt]\nenable=true\naddress=127.0.0.1\nport={broker}\n"),
            );
        }
        if let Some(udp) = coap {
            ini.push_str(&format!(
                "[coap]\nenable=true\nlistenIF=127.0.0.1\nport={udp}\n"
            ));
        }
        if sec.tls || sec.basic.is_some() || sec.token.is_some() {
            ini.push_str(&security_ini(dir.path(), &venv, sec)?);
        }
        std::fs::write(dir.path().join("acme.ini"), ini)?;
        let log = std::fs::File::create(dir.path().join("stdout.log"))?;
        // setsid: its own session and process group, detached from any terminal, so it can
        // neither signal nor be signalled with the test runner's group; killed as a group.
        let mut cmd = Command::new("setsid");
        cmd.arg(venv.join("bin/acmecse"))
            .arg("--base-directory")
            .arg(dir.path())
            .args(["--headless", "--http-port", &port.to_string()])
            .args(["--db-type", "memory", "--db-reset"]);
        cmd.arg(if sec.tls { "--https" } else { "--http-wsgi" });
        if mqtt.is_some() {
            cmd.arg("--mqtt");
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting acmecse")?;
        let scheme = if sec.tls { "https" } else { "http" };
        let mut acme = Acme {
            port,
            url: format!("{scheme}://127.0.0.1:{port}"),
            mqtt_port: mqtt,
            coap_port: coap,
            child: Some(child),
            dir,
        };
        let probe = probe_client(&acme, sec)?;
        if let Err(e) = wait_ready(&probe, &acme.url, Duration::from_secs(60)).await {
            let out =
                std::fs::read_to_string(acme.dir.path().join("stdout.log")).unwrap_or_default();
            acme.kill();
            bail!("ACME did not become ready: {e}\n{out}");
        }
        Ok(acme)
    }

    /// Kills the whole process group (SIGKILL: a crash, the memory DB is gone).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // killpg(2) directly: `kill -KILL -<pgid>` from procps-ng 4.0.2 (Debian 12) acts
            // like `kill -KILL -1` and takes down every process on the machine.
            if let Ok(pgid) = libc::pid_t::try_from(child.id()) {
                if pgid > 1 {
                    // SAFETY: plain syscall on a process group we created (setsid) and have
                    // not reaped yet, so the id cannot have been reused.
                    unsafe {
                        libc::killpg(pgid, libc::SIGKILL);
                    }
                }
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A client for the readiness probe that trusts the instance's certificate and carries
/// its credentials.
fn probe_client(acme: &Acme, sec: &Security) -> anyhow::Result<reqwest::Client> {
    citygate::northbound::install_crypto_provider();
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some((user, password)) = &sec.basic {
        let raw = format!("{user}:{password}");
        let value = format!("Basic {}", base64_encode(raw.as_bytes()));
        headers.insert("authorization", value.parse()?);
    } else if let Some(token) = &sec.token {
        headers.insert("authorization", format!("Bearer {token}").parse()?);
    }
    let mut b = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .default_headers(headers);
    if sec.tls {
        let pem = std::fs::read(acme.ca_file())?;
        b = b.tls_certs_only(reqwest::Certificate::from_pem_bundle(&pem)?);
    }
    Ok(b.build()?)
}

fn base64_encode(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A small PKI made with openssl: a CA, and leaf certificates it signs.
pub struct Pki {
    pub dir: PathBuf,
    /// The CA certificate (what clients put in `ca_file`).
    pub ca_cert: PathBuf,
    ca_key: PathBuf,
}

impl Pki {
    pub fn new(dir: &Path) -> anyhow::Result<Pki> {
        std::fs::create_dir_all(dir)?;
        let (ca_cert, ca_key) = (dir.join("ca.pem"), dir.join("ca_key.pem"));
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=citygate test CA",
            "-keyout",
            path(&ca_key),
            "-out",
            path(&ca_cert),
        ])?;
        Ok(Pki {
            dir: dir.to_path_buf(),
            ca_cert,
            ca_key,
        })
    }

    /// A leaf certificate for IP 127.0.0.1 signed by the CA: (cert, key). `usage` is
    /// `serverAuth` or `clientAuth`. (webpki refuses a self-signed CA cert as a server cert.)
    pub fn leaf(&self, name: &str, usage: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
        let d = &self.dir;
        let (cert, key, csr, ext) = (
            d.join(format!("{name}.pem")),
            d.join(format!("{name}_key.pem")),
            d.join(format!("{name}.csr")),
            d.join(format!("{name}.ext")),
        );
        std::fs::write(
            &ext,
            format!(
                "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n\
                 extendedKeyUsage={usage}\nsubjectAltName=IP:127.0.0.1\n"
            ),
        )?;
        openssl(&[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            path(&key),
            "-out",
            path(&csr),
        ])?;
        openssl(&[
            "x509",
            "-req",
            "-in",
            path(&csr),
            "-CA",
            path(&self.ca_cert),
            "-CAkey",
            path(&self.ca_key),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            path(&ext),
            "-out",
            path(&cert),
        ])?;
        Ok((cert, key))
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

fn openssl(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("openssl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running openssl")?;
    if !out.status.success() {
        bail!(
            "openssl {} failed: {}",
            args.first().unwrap_or(&""),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// `[http.security]`: ACME stores HMAC-SHA256(secret "acme", password) in hex, not the password.
fn security_ini(dir: &Path, venv: &Path, sec: &Security) -> anyhow::Result<String> {
    let certs = dir.join("certs");
    let pki = Pki::new(&certs)?;
    let (cert, key) = pki.leaf("server", "serverAuth")?;
    let hmac = |secret: &str| -> anyhow::Result<String> {
        let out = Command::new(venv.join("bin/python"))
            .args([
                "-c",
                "import hmac,hashlib,sys;print(hmac.new(b'acme',sys.argv[1].encode(),hashlib.sha256).hexdigest())",
                secret,
            ])
            .output()?;
        Ok(String::from_utf8(out.stdout)?.trim().to_string())
    };
    let basic_file = certs.join("basic.txt");
    let token_file = certs.join("token.txt");
    if let Some((user, password)) = &sec.basic {
        std::fs::write(&basic_file, format!("{user}:{}\n", hmac(password)?))?;
    }
    if let Some(token) = &sec.token {
        std::fs::write(&token_file, format!("{}\n", hmac(token)?))?;
    }
    Ok(format!(
        "[http.security]
useTLS={}
caCertificateFile={}
caPrivateKeyFile={}
tlsVersion=auto
enableBasicAuth={}
basicAuthFile={}
enableTokenAuth={}
tokenAuthFile={}
",
        sec.tls,
        cert.display(),
        key.display(),
        sec.basic.is_some(),
        basic_file.display(),
        sec.token.is_some(),
        token_file.display()
    ))
}

impl Drop for Acme {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `GET /cse-in` as the admin until `X-M2M-RSC: 2000`.
pub async fn wait_ready(
    client: &reqwest::Client,
    url: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("no answer");
    while Instant::now() < deadline {
        match client
            .get(format!("{url}/cse-in"))
            .header("X-M2M-Origin", ADMIN)
            .header("X-M2M-RI", "ready")
            .header("X-M2M-RVI", "3")
            .header("Accept", "application/json")
            .send()
            .await
        {
            Ok(r) => {
                let rsc = r
                    .headers()
                    .get("x-m2m-rsc")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                if rsc == "2000" {
                    return Ok(());
                }
                last = format!("HTTP {} rsc {rsc:?}", r.status());
            }
            Err(e) => last = format!("{e}: {:?}", std::error::Error::source(&e)),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("timeout after {timeout:?}: {last}")
}

/// Sends RETRIEVE `cse-in` as the admin over MQTT (with a plain rumqttc client, independent of
/// the code under test) until ACME answers 2000 on the response topic.
pub async fn wait_mqtt_ready(broker_port: u16, timeout: Duration) -> anyhow::Result<()> {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let deadline = Instant::now() + timeout;
    let id = format!("probe-{}", free_port());
    let mut opts = MqttOptions::new(id, "127.0.0.1", broker_port);
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut events) = AsyncClient::new(opts, 16);
    let req_topic = format!("/oneM2M/req/{ADMIN}/id-in/json");
    let mut last = String::from("no answer");
    let mut n = 0u32;
    let mut next_probe = Instant::now();
    while Instant::now() < deadline {
        if Instant::now() >= next_probe {
            n += 1;
            let body =
                format!(r#"{{"op":2,"to":"cse-in","fr":"{ADMIN}","rqi":"ready-{n}","rvi":"3"}}"#);
            let _ = client.try_publish(req_topic.as_str(), QoS::AtLeastOnce, false, body);
            next_probe = Instant::now() + Duration::from_millis(500);
        }
        match tokio::time::timeout(Duration::from_millis(200), events.poll()).await {
            Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => {
                client
                    .subscribe(format!("/oneM2M/resp/{ADMIN}/+/#"), QoS::AtLeastOnce)
                    .await?;
            }
            Ok(Ok(Event::Incoming(Packet::Publish(p)))) => {
                let v: serde_json::Value = serde_json::from_slice(&p.payload).unwrap_or_default();
                if v["rsc"] == 2000 {
                    let _ = client.try_disconnect();
                    return Ok(());
                }
                last = format!("answer {v}");
            }
            Ok(Ok(_)) | Err(_) => {}
            Ok(Err(e)) => {
                last = format!("broker: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    bail!("timeout after {timeout:?}: {last}")
}

fn acme_ini(port: u16, dir: &Path, tls: bool) -> String {
    format!(
        "[basic.config]
cseType=IN
cseID=id-in
cseName=cse-in
adminID={ADMIN}
serviceProviderID=//acme.example.com
networkInterface=127.0.0.1
cseHost=127.0.0.1
httpPort={port}
logLevel=warning
databaseType=memory
consoleTheme=dark
consoleType=simple
[cse]
enableRemoteCSE=false
[http.wsgi]
enable={}
[mqtt]
enable=false
address=127.0.0.1
port=1883
[database]
resetOnStartup=true
[logging]
enableFileLogging=true
enableScreenLogging=false
path={}/logs
[cse.statistics]
enable=false
[textui]
enable=false
startWithTUI=false
[webui]
enable=false
[scripting]
fileMonitoringInterval=0
",
        !tls,
        dir.display()
    )
}

/// A RETRIEVE done with a plain client (independent of the code under test):
/// (rsc, JSON body).
///
/// A read is made again (up to 5 times) when ACME answers 5000: it does so now and then for a
/// read with children (`rcn=4`) while one is being created (it sorts them by `ct`, which the
/// new one does not have yet: "'<' not supported between instances of 'NoneType' and 'str'").
/// No test expects a server error from a read.
pub async fn retrieve(
    url: &str,
    path_and_query: &str,
    originator: &str,
) -> anyhow::Result<(u16, serde_json::Value)> {
    let mut attempt = 1;
    loop {
        let (rsc, body) = retrieve_once(url, path_and_query, originator).await?;
        if rsc != 5000 || attempt == 5 {
            return Ok((rsc, body));
        }
        attempt += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn retrieve_once(
    url: &str,
    path_and_query: &str,
    originator: &str,
) -> anyhow::Result<(u16, serde_json::Value)> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let r = client
        .get(format!("{url}/{path_and_query}"))
        .header("X-M2M-Origin", originator)
        .header("X-M2M-RI", "verify")
        .header("X-M2M-RVI", "3")
        .header("Accept", "application/json")
        .send()
        .await?;
    let rsc: u16 = r
        .headers()
        .get("x-m2m-rsc")
        .context("no X-M2M-RSC")?
        .to_str()?
        .parse()?;
    let body = r.bytes().await?;
    let value = if body.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&body)?
    };
    Ok((rsc, value))
}

/// All contentInstances of a container, in creation order (by `st`), read with `rcn=4`.
pub async fn cins_of(
    url: &str,
    container: &str,
    originator: &str,
) -> anyhow::Result<Vec<serde_json::Value>> {
    let (rsc, body) = retrieve(url, &format!("{container}?rcn=4"), originator).await?;
    if rsc != 2000 {
        bail!("RETRIEVE {container}: rsc {rsc} {body}");
    }
    let mut cins: Vec<serde_json::Value> = body["m2m:cnt"]["m2m:cin"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    cins.sort_by_key(|c| c["st"].as_u64());
    Ok(cins)
}

/// Discovery of the contentInstances under a container (`?fu=1&ty=4`): their addresses.
pub async fn discover_cins(
    url: &str,
    container: &str,
    originator: &str,
) -> anyhow::Result<Vec<String>> {
    let (rsc, body) = retrieve(url, &format!("{container}?fu=1&ty=4"), originator).await?;
    if rsc != 2000 {
        bail!("discovery under {container}: rsc {rsc} {body}");
    }
    Ok(body["m2m:uril"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default())
}

/// The platform grants the gateway's originator CREATE of `<node>` (ty 14) on the CSEBase:
/// a rule added to the CSEBase's ACP (docs/management.md).
pub async fn grant_node_creation(url: &str, originator: &str) -> anyhow::Result<()> {
    let (rsc, acp) = retrieve(url, "cse-in/acpCreateRootResources", ADMIN).await?;
    anyhow::ensure!(rsc == 2000, "ACP: {rsc} {acp}");
    let mut acr = acp["m2m:acp"]["pv"]["acr"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    acr.push(serde_json::json!({"acor": [originator], "acod": [{"chty": [14]}], "acop": 1}));
    let r = reqwest::Client::new()
        .put(format!("{url}/cse-in/acpCreateRootResources"))
        .header("X-M2M-Origin", ADMIN)
        .header("X-M2M-RI", "grant")
        .header("X-M2M-RVI", "3")
        .header("Content-Type", "application/json")
        .json(&serde_json::json!({"m2m:acp": {"pv": {"acr": acr}}}))
        .send()
        .await?;
    let rsc = r
        .headers()
        .get("x-m2m-rsc")
        .map(|v| v.to_str().unwrap_or("").to_string());
    anyhow::ensure!(
        rsc.as_deref() == Some("2004"),
        "grant: {rsc:?} {}",
        r.text().await?
    );
    Ok(())
}
