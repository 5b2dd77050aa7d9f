//! `mailroom`: the example mail and database MCP server, guarded by a Portcullis policy.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use mailroom::Options;
use tracing_subscriber::EnvFilter;

/// The example MCP server: mail, user profiles and a SQLite database, behind a Portcullis
/// policy (hot-reloaded) unless --no-policy is given.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Examples:\n  mailroom --config examples/mailroom/policies/mailroom.yaml\n  mailroom --config examples/mailroom/policies/macaroon.yaml --listen 127.0.0.1:8080\n  mailroom --no-policy --db /tmp/mail.db\n\nLogs go to stderr (default `warn,portcullis::audit=info`; set RUST_LOG to change it)."
)]
struct Args {
    /// The policy file, watched and reloaded while serving.
    #[arg(
        long,
        short,
        value_name = "POLICY.yaml",
        required_unless_present = "no_policy",
        conflicts_with = "no_policy"
    )]
    config: Option<PathBuf>,
    /// Serve streamable HTTP at http://ADDR/mcp instead of stdio.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Serve the bare server, without the policy layer (for comparisons and the proxy demo).
    #[arg(long)]
    no_policy: bool,
    /// A SQLite file for run_query (created and seeded when new); default: in memory.
    #[arg(long, value_name = "FILE")]
    db: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,portcullis::audit=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let options = Options {
        config: args.config,
        listen: args.listen,
        no_policy: args.no_policy,
        db: args.db,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        let shutdown = portcullis::proxy::shutdown_on_signals();
        mailroom::serve::run(options, shutdown).await
    });
    runtime.shutdown_timeout(mailroom::serve::SHUTDOWN_GRACE);
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let text = format!("{e:#}");
            // Policy load errors already start each line with "error: ".
            if text.starts_with("error: ") {
                eprintln!("{text}");
            } else {
                eprintln!("error: {text}");
            }
            ExitCode::FAILURE
        }
    }
}
