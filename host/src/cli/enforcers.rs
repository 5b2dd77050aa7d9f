//! `portcullis enforcers ...`: inspect and prepare enforcers.

use std::path::{Path, PathBuf};

use serde_json::json;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List the enforcers a policy loads: name, version, file, sha256, size, load time, cache hit.
    List {
        /// The policy file (its config.enforcers_dir is loaded).
        #[arg(long, short)]
        config: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Turn a core module built with wit-bindgen into a component.
    Componentize {
        /// The core module (.wasm).
        input: PathBuf,
        /// Where to write the component.
        #[arg(long, short)]
        output: PathBuf,
    },
}

pub fn run(cmd: &Command) -> u8 {
    match cmd {
        Command::List { config, json } => list(config, *json),
        Command::Componentize { input, output } => componentize(input, output),
    }
}

fn list(config: &Path, as_json: bool) -> u8 {
    let snapshot = match crate::engine::load_snapshot(config, None) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            eprintln!("{}: the policy was not loaded", config.display());
            return super::EXIT_BAD_INPUT;
        }
    };
    let infos: Vec<_> = snapshot
        .enforcers()
        .by_name
        .values()
        .map(|e| &e.info)
        .collect();
    if as_json {
        let list: Vec<_> = infos
            .iter()
            .map(|i| {
                json!({
                    "name": &*i.name,
                    "version": i.version,
                    "description": i.description,
                    "phases": i.phases,
                    "file": i.file.display().to_string(),
                    "sha256": i.sha256,
                    "size": i.size,
                    "load_ms": i.load_time.as_secs_f64() * 1e3,
                    "cache_hit": i.cache_hit,
                    "timeout_ms": i.limits.timeout_ms,
                    "memory_mib": i.limits.memory_mib,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&list).unwrap_or_default()
        );
        return 0;
    }
    if infos.is_empty() {
        println!("no enforcers (config.enforcers_dir is not set or the folder has no .wasm files)");
        return 0;
    }
    println!(
        "{:<16} {:<9} {:<13} {:>10} {:>9} {:<5} {:<12} FILE",
        "NAME", "VERSION", "PHASES", "SIZE", "LOAD", "CACHE", "SHA256"
    );
    for i in infos {
        let phases: Vec<&str> = i.phases.iter().map(|p| p.as_str()).collect();
        println!(
            "{:<16} {:<9} {:<13} {:>10} {:>7.1}ms {:<5} {:<12} {}",
            i.name,
            i.version,
            phases.join(","),
            i.size,
            i.load_time.as_secs_f64() * 1e3,
            if i.cache_hit { "hit" } else { "miss" },
            &i.sha256[..12],
            i.file.display()
        );
        println!(
            "    {} (timeout {} ms, memory {} MiB)",
            i.description, i.limits.timeout_ms, i.limits.memory_mib
        );
    }
    0
}

fn componentize(input: &Path, output: &Path) -> u8 {
    let bytes = match std::fs::read(input) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", input.display());
            return super::EXIT_BAD_INPUT;
        }
    };
    match crate::wasm::componentize(&bytes).and_then(|c| {
        std::fs::write(output, c).map_err(|e| format!("cannot write {}: {e}", output.display()))
    }) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {}: {e}", input.display());
            super::EXIT_BAD_INPUT
        }
    }
}
