//! How the field tools reach the running daemon: its telemetry endpoints (`[telemetry] listen`).

use crate::config::Config;
use anyhow::Context;
use std::time::Duration;

/// `http://<listen><path>`, or why the daemon cannot be asked.
pub fn endpoint(cfg: &Config, path: &str) -> anyhow::Result<String> {
    if !cfg.telemetry.enabled {
        anyhow::bail!("[telemetry] enabled = false: the daemon serves no {path}");
    }
    Ok(format!("http://{}{path}", cfg.telemetry.listen))
}

/// GETs a JSON document from the daemon (5 s timeout).
pub fn get_json(cfg: &Config, path: &str) -> anyhow::Result<serde_json::Value> {
    let url = endpoint(cfg, path)?;
    runtime()?.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?;
        let resp = client
            .get(&url)
            .send()
            .await
            .with_context(|| format!("is citygate running? no answer from {url}"))?;
        anyhow::Ok(
            resp.json()
                .await
                .with_context(|| format!("reading {path}"))?,
        )
    })
}

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}
