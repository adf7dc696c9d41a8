//! `citygate devices` and `citygate tail`: what the running daemon hears, for the technician
//! commissioning a cabinet (from `/devices` and `/tail`, see `crate::telemetry::live`).

use super::daemon_api;
use crate::config::Config;
use crate::record::{format_ts, now_ms, Record, Value};
use anyhow::Context;
use std::io::Write;
use std::process::ExitCode;

/// A table of every device with its last record: adapter, age, up/down, values, quality.
pub fn devices(cfg: &Config, json: bool) -> anyhow::Result<ExitCode> {
    let body = daemon_api::get_json(cfg, "/devices")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(ExitCode::SUCCESS);
    }
    let rows = body.as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        println!("no device has reported yet");
        return Ok(ExitCode::SUCCESS);
    }
    let now = now_ms();
    let table: Vec<[String; 5]> = rows
        .iter()
        .map(|d| {
            let age = (now - d["last_seen_ms"].as_i64().unwrap_or(now)).max(0);
            [
                d["adapter"].as_str().unwrap_or("?").to_owned(),
                d["device"].as_str().unwrap_or("?").to_owned(),
                if d["up"].as_bool() == Some(true) {
                    "up"
                } else {
                    "down"
                }
                .to_owned(),
                format!("{} ago", human_age(age)),
                points(&d["values"], &d["quality"]),
            ]
        })
        .collect();
    let header = [
        "ADAPTER",
        "DEVICE",
        "STATE",
        "LAST SEEN",
        "VALUES (quality)",
    ];
    let width = |i: usize| {
        table
            .iter()
            .map(|r| r[i].chars().count())
            .chain([header[i].len()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..4).map(width).collect();
    let line = |r: &[&str]| {
        format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}",
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        )
    };
    println!("{}", line(&header));
    for r in &table {
        println!("{}", line(&r.each_ref().map(String::as_str)));
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints records as the daemon commits them, until interrupted.
pub fn tail(
    cfg: &Config,
    device: Option<&str>,
    adapter: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let mut url = daemon_api::endpoint(cfg, "/tail")?;
    let mut query = Vec::new();
    if let Some(d) = device {
        query.push(format!("device={}", encode(d)));
    }
    if let Some(a) = adapter {
        query.push(format!("adapter={}", encode(a)));
    }
    if !query.is_empty() {
        url = format!("{url}?{}", query.join("&"));
    }
    daemon_api::runtime()?.block_on(async {
        let client = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .build()?;
        let mut resp = client
            .get(&url)
            .send()
            .await
            .with_context(|| format!("is citygate running? no answer from {url}"))?;
        let mut pending = Vec::new();
        let mut out = std::io::stdout().lock();
        while let Some(chunk) = resp.chunk().await.context("reading /tail")? {
            pending.extend_from_slice(&chunk);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end();
                let shown = if json {
                    text.to_owned()
                } else {
                    human_line(text)
                };
                // A closed pipe (`| head`) ends the tool quietly.
                if writeln!(out, "{shown}").and_then(|_| out.flush()).is_err() {
                    return anyhow::Ok(());
                }
            }
        }
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `2026-11-30T22:10:01.123Z  mb/meter-1  voltage=230.1 current=1.2  (quality.x=bad: timeout)`
fn human_line(text: &str) -> String {
    if let Ok(r) = serde_json::from_str::<Record>(text) {
        let values = serde_json::to_value(&r.values).unwrap_or_default();
        let quality: serde_json::Map<String, serde_json::Value> = r
            .meta
            .iter()
            .filter_map(|(k, v)| {
                Some((
                    k.strip_prefix("quality.")?.to_owned(),
                    serde_json::to_value(v).ok()?,
                ))
            })
            .collect();
        return format!(
            "{}  {}/{}  {}",
            format_ts(r.ts_ms),
            r.adapter,
            r.device,
            points(&values, &serde_json::Value::Object(quality))
        );
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) if v.get("missed").is_some() => {
            format!(
                "… {} records missed (this terminal was too slow)",
                v["missed"]
            )
        }
        _ => text.to_owned(),
    }
}

/// `name=value` pairs, then `(point: quality)` flags.
fn points(values: &serde_json::Value, quality: &serde_json::Value) -> String {
    let mut parts: Vec<String> = values
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", show(v)))
        .collect();
    parts.extend(
        quality
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("({k}: {})", v.as_str().unwrap_or(&v.to_string()))),
    );
    parts.join(" ")
}

/// A value as a technician reads it: floats without 17-digit tails.
fn show(v: &serde_json::Value) -> String {
    match serde_json::from_value::<Value>(v.clone()) {
        Ok(Value::F64(f)) => readable_float(f),
        Ok(Value::Str(s)) => s,
        _ => v.to_string(),
    }
}

/// At most 6 decimal places, trailing zeros removed (`230.10000000000002` → `230.1`).
pub fn readable_float(f: f64) -> String {
    if !f.is_finite() {
        return f.to_string();
    }
    let s = format!("{f:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_owned()
    }
}

fn human_age(ms: i64) -> String {
    let s = ms / 1000;
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        _ => format!("{} h", s / 3600),
    }
}

/// Percent-encodes a query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_read_like_a_meter_display() {
        assert_eq!(readable_float(230.10000000000002), "230.1");
        assert_eq!(readable_float(230.10000610351562), "230.100006");
        assert_eq!(readable_float(230.1), "230.1");
        assert_eq!(readable_float(2.0), "2");
        assert_eq!(readable_float(-0.0000001), "0");
        assert_eq!(readable_float(1e-7), "0");
    }

    #[test]
    fn a_tail_line_reads_as_time_device_values_quality() {
        let line = r#"{"adapter":"mb","device":"meter-1","ts_ms":0,"values":{"v":230.5,"on":true},"meta":{"quality.i":"bad: timeout","rssi":-80}}"#;
        assert_eq!(
            human_line(line),
            "1970-01-01T00:00:00.000Z  mb/meter-1  v=230.5 on=true (i: bad: timeout)"
        );
        assert_eq!(
            human_line(r#"{"missed":12}"#),
            "… 12 records missed (this terminal was too slow)"
        );
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(encode("pump 3/a"), "pump%203%2Fa");
    }
}
