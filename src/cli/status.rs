//! `citygate status`: asks the running daemon (its `/status` endpoint) how it is doing.

use crate::config::Config;
use std::process::ExitCode;

pub fn run(cfg: &Config, json: bool) -> anyhow::Result<ExitCode> {
    let body = super::daemon_api::get_json(cfg, "/status")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "citygate {} on {} — up {} s",
        body["version"].as_str().unwrap_or("?"),
        body["gateway"].as_str().unwrap_or("?"),
        body["uptime_seconds"]
    );
    println!(
        "northbound        {}",
        body["northbound"].as_str().unwrap_or("?")
    );
    println!(
        "buffer state      {}",
        body["buffer_state"].as_str().unwrap_or("?")
    );
    let b = &body["buffer"];
    if b.is_object() {
        println!(
            "buffer            {} pending, {} bytes on disk, {} dead letters",
            b["pending_records"],
            b["db_bytes"].as_u64().unwrap_or(0) + b["wal_bytes"].as_u64().unwrap_or(0),
            b["dead_letters"]
        );
        if let Some(d) = b["dropped"].as_object().filter(|d| !d.is_empty()) {
            let list: Vec<String> = d.iter().map(|(k, v)| format!("{v} ({k})")).collect();
            println!("dropped           {}", list.join(", "));
        }
    } else {
        println!("buffer            not answering");
    }
    for a in body["adapters"].as_array().into_iter().flatten() {
        println!(
            "adapter {:<10} {:<20} {:<5} {} records",
            a["id"].as_str().unwrap_or("?"),
            a["type"].as_str().unwrap_or("?"),
            if a["up"].as_bool() == Some(true) {
                "up"
            } else {
                "down"
            },
            a["records"]
        );
    }
    Ok(ExitCode::SUCCESS)
}
