//! `portcullis watch`: keep a policy live with hot reload and report every reload.

use std::path::PathBuf;
use std::sync::Arc;

use crate::engine::Engine;
use crate::reload::Reloader;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The policy file.
    #[arg(long, short)]
    config: PathBuf,
}

pub fn run(args: &Args) -> u8 {
    let engine = match Engine::from_file(&args.config) {
        Ok(e) => Arc::new(e),
        Err(e) => {
            eprintln!("{e}");
            eprintln!("{}: the policy was not loaded", args.config.display());
            return super::EXIT_BAD_INPUT;
        }
    };
    let s = engine.snapshot();
    println!(
        "watching {} ({} rules, {} enforcers); edit the policy or the enforcers folder, Ctrl-C to stop",
        args.config.display(),
        s.rules().len(),
        s.enforcers().by_name.len()
    );
    drop(s);
    let reloader = Reloader::start(engine, args.config.clone(), None, |outcome| match outcome {
        Ok(s) => println!(
            "reloaded: {} rules, {} enforcers in {:.1} ms",
            s.rules,
            s.enforcers,
            s.elapsed.as_secs_f64() * 1e3
        ),
        Err(e) => println!("reload failed, keeping the last good policy:\n{e}"),
    });
    match reloader {
        Ok(_reloader) => loop {
            std::thread::park();
        },
        Err(e) => {
            eprintln!("error: {e}");
            super::EXIT_BAD_INPUT
        }
    }
}
