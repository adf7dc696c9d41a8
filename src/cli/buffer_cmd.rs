//! `citygate buffer stats`, `citygate buffer dead-letters` and `citygate buffer salvage`.

use super::BufferCommand;
use crate::buffer::{Buffer, BufferStats};
use crate::config::Config;
use crate::record::format_ts;
use anyhow::Context;
use std::process::ExitCode;

pub fn run(cfg: &Config, cmd: &BufferCommand) -> anyhow::Result<ExitCode> {
    let path = cfg.buffer.db_path(&cfg.gateway.state_dir());
    if !path.exists() {
        anyhow::bail!(
            "no buffer at {} yet (it is created by `citygate run`)",
            path.display()
        );
    }
    if let BufferCommand::Salvage { out, json } = cmd {
        return salvage(&path, out, &cfg.buffer, *json);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (buffer, thread) =
        Buffer::open(&path, &cfg.buffer).with_context(|| format!("opening {}", path.display()))?;
    let result = rt.block_on(async {
        match cmd {
            BufferCommand::Stats { json } => {
                let s = buffer.stats().await?;
                if *json {
                    println!("{}", serde_json::to_string_pretty(&s)?);
                } else {
                    print_stats(&s);
                }
            }
            BufferCommand::DeadLetters { limit, json } => {
                let letters = buffer.dead_letters(*limit).await?;
                if *json {
                    println!("{}", serde_json::to_string_pretty(&letters)?);
                } else if letters.is_empty() {
                    println!("no dead letters");
                } else {
                    for d in letters {
                        println!(
                            "seq {} device {} measured {} refused {} rsc {} reason: {}\n    {}",
                            d.seq,
                            d.device,
                            format_ts(d.ts_ms),
                            format_ts(d.dead_ms),
                            d.rsc.map(|r| r.to_string()).unwrap_or_else(|| "-".into()),
                            d.reason,
                            d.body
                        );
                    }
                }
            }
            BufferCommand::Salvage { .. } => unreachable!("handled before opening the buffer"),
        }
        anyhow::Ok(())
    });
    drop(buffer);
    thread.close();
    result.map(|_| ExitCode::SUCCESS)
}

fn print_stats(s: &BufferStats) {
    println!("buffer            {}", s.path.display());
    println!("state             {}", s.health.as_str());
    println!("epoch             {}", s.epoch);
    println!("pending records   {}", s.pending_records);
    println!("database bytes    {} (+ WAL {})", s.db_bytes, s.wal_bytes);
    println!(
        "bound             max_bytes {}{} when_full {}",
        s.max_bytes,
        s.max_records
            .map(|m| format!(", max_records {m}"))
            .unwrap_or_default(),
        s.when_full
    );
    match s.oldest_pending_enqueued_ms {
        Some(ms) => println!("oldest pending    committed {}", format_ts(ms)),
        None => println!("oldest pending    -"),
    }
    println!("last seq          {}", s.last_seq);
    println!("dead letters      {}", s.dead_letters);
    if s.damaged_records > 0 {
        println!(
            "damaged records   {} (unreadable, skipped: see `citygate buffer salvage`)",
            s.damaged_records
        );
    }
    if s.dropped.is_empty() {
        println!("dropped           none");
    } else {
        for (reason, n) in &s.dropped {
            println!("dropped           {n} ({reason})");
        }
    }
}

/// Copies what can be read from `path` into the new file `out` and says what was lost.
fn salvage(
    path: &std::path::Path,
    out: &std::path::Path,
    cfg: &crate::buffer::BufferConfig,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let r = crate::buffer::salvage::salvage(path, out, cfg)
        .with_context(|| format!("salvaging {}", path.display()))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!("salvaged {} into {}", path.display(), out.display());
        println!(
            "epoch             {}",
            r.epoch.as_deref().unwrap_or("(unreadable: new epoch)")
        );
        println!("last seq          {}", r.last_seq);
        println!("records copied    {}", r.records_copied);
        println!(
            "records lost      {} ({} already counted as damaged)",
            r.records_unreadable, r.records_known_damaged
        );
        println!(
            "dead letters      {} copied, {} unreadable",
            r.dead_letters_copied, r.dead_letters_unreadable
        );
        println!("state keys        {}", r.state_keys_copied);
        for (reason, n) in &r.dropped {
            println!("dropped           {n} ({reason})");
        }
        if !r.incomplete_tables.is_empty() {
            println!(
                "incomplete        {} (pages skipped: rows there may be missing and uncounted)",
                r.incomplete_tables.join(", ")
            );
        }
        println!(
            "next: stop citygate, move {} away, move {} to {}, start citygate",
            path.display(),
            out.display(),
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
