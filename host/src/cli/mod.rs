//! The `portcullis` command line. Exit codes: 0 allow / success, 1 bad input or config,
//! 2 deny, 3 needs approval (elicit).

mod check;
mod enforcers;
mod eval;
mod keys;
mod proxy;
mod token;
mod watch;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Exit code for bad input or an invalid policy (also used for usage errors, so that 2 and 3
/// always mean a policy decision).
pub const EXIT_BAD_INPUT: u8 = 1;
pub const EXIT_DENY: u8 = 2;
pub const EXIT_ELICIT: u8 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "portcullis",
    version,
    about = "Policy engine for MCP tool calls"
)]
struct Cli {
    /// Log format on stderr (audit events use target portcullis::audit).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Log filter, e.g. `info` or `warn,portcullis::audit=info`; RUST_LOG overrides it.
    #[arg(long, global = true, default_value = "warn,portcullis::audit=info")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a policy file and summarize it; exit 1 listing every error.
    Check(check::Args),
    /// Evaluate one tool call against a policy and explain the decision.
    Eval(eval::Args),
    /// Inspect and prepare WebAssembly enforcers.
    #[command(subcommand)]
    Enforcers(enforcers::Command),
    /// Keep a policy live with hot reload and log every reload (Ctrl-C to stop).
    Watch(watch::Args),
    /// Serve the policy layer in front of an MCP server (stdio or streamable HTTP).
    Proxy(proxy::Args),
    /// Mint, attenuate and inspect capability tokens; make discharges.
    #[command(subcommand)]
    Token(token::Command),
    /// Generate and show RSA key pairs (JWKS) for auth mode jwe; encrypt test tokens.
    #[command(subcommand)]
    Keys(keys::Command),
}

/// Runs the CLI with the process's arguments.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_BAD_INPUT } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_logging(cli.log_format, &cli.log);
    let code = match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Eval(args) => eval::run(&args),
        Command::Enforcers(cmd) => enforcers::run(&cmd),
        Command::Watch(args) => watch::run(&args),
        Command::Token(cmd) => token::run(&cmd),
        Command::Keys(cmd) => keys::run(&cmd),
        Command::Proxy(args) => proxy::run(&args),
    };
    ExitCode::from(code)
}

/// Prints a failure on stderr as `error: ...`, once: policy load errors already carry the
/// prefix on each line.
fn report(e: &anyhow::Error) {
    let text = format!("{e:#}");
    if text.starts_with("error: ") {
        eprintln!("{text}");
    } else {
        eprintln!("error: {text}");
    }
}

fn init_logging(format: LogFormat, default_filter: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(default_filter))
        .unwrap_or_else(|_| EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
