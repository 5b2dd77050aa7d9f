//! `conformance-server`: the MCP conformance suite's fixtures as an rmcp server over streamable
//! HTTP at `/mcp`, either bare or wrapped in Portcullis' policy layer (`--policy FILE`), so the
//! suite's results with and without the layer can be compared on the same server.
//!
//! ```text
//! conformance-server --listen 127.0.0.1:0                        # bare rmcp server
//! conformance-server --listen 127.0.0.1:0 --policy policy.yaml   # behind PolicyLayer
//! ```
//!
//! Both forms use the same HTTP settings (`Host` and `Origin` allow-lists, body cap), taken from
//! `portcullis::mcp::http::HttpOptions`, so the only difference between them is the layer.
//! The address actually bound is printed on stderr as `serving http://ADDR/mcp`.

mod fixtures;
mod polling;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use clap::Parser;
use portcullis::Engine;
use portcullis::mcp::http::{self, DEFAULT_MAX_BODY_BYTES, HttpOptions};
use portcullis::mcp::{Authenticator, PolicyLayer, Transport};
use rmcp::transport::streamable_http_server::StreamableHttpService;
use tokio_util::sync::CancellationToken;

use fixtures::ConformanceServer;
use polling::PollingSessions;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "The MCP conformance fixtures, bare or behind Portcullis"
)]
struct Args {
    /// Address to serve http://ADDR/mcp on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Wrap the server in Portcullis' policy layer with this policy file.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// `Host` values accepted (repeatable; default: localhost, 127.0.0.1, ::1).
    #[arg(long = "allowed-host", value_name = "HOST")]
    allowed_hosts: Vec<String>,
    /// Browser `Origin`s accepted, replacing the default (repeatable; default: loopback pages).
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    allowed_origins: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logging();
    let mut options = HttpOptions {
        max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        ..HttpOptions::default()
    };
    if !args.allowed_hosts.is_empty() {
        options.allowed_hosts = args.allowed_hosts.clone();
    }
    if !args.allowed_origins.is_empty() {
        options.allowed_origins = args.allowed_origins.clone();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args, options))
}

/// Audit events (`portcullis::audit`) go to stderr so a run can show the layer decided every
/// request; `RUST_LOG` overrides the filter.
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,portcullis::audit=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}

async fn serve(args: Args, options: HttpOptions) -> anyhow::Result<()> {
    let shutdown = portcullis::proxy::shutdown_on_signals();
    let (router, mode) = match &args.policy {
        Some(path) => (policed(path, &options, shutdown.clone())?, "policy layer"),
        None => (bare(&options, shutdown.clone()), "bare"),
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let local = listener.local_addr().unwrap_or(args.listen);
    eprintln!("conformance-server ({mode}): serving http://{local}/mcp");
    portcullis::mcp::http::serve(listener, router, shutdown)
        .await
        .context("HTTP server failed")
}

/// The fixtures behind `PolicyLayer`, served by Portcullis' own router (identity check, then
/// rmcp's streamable HTTP service), exactly as an application embedding Portcullis would.
fn policed(
    path: &std::path::Path,
    options: &HttpOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<Router> {
    let engine = Arc::new(
        Engine::from_file(path)
            .map_err(|e| anyhow::anyhow!("{e}\n{}: the policy was not loaded", path.display()))?,
    );
    let auth_config = engine.snapshot().config().auth.clone();
    let auth = Authenticator::from_config(&auth_config, Transport::Http, &engine, &|name| {
        std::env::var(name).ok()
    })
    .with_context(|| format!("{}: config.auth", path.display()))?;
    let layer = PolicyLayer::new(engine).with_authenticator(Arc::new(auth));
    Ok(http::router(
        layer,
        || Ok(ConformanceServer::default()),
        options,
        shutdown,
    ))
}

/// The fixtures with no layer: rmcp's service configured like `portcullis::mcp::http::router`
/// configures it, so a difference in results is the layer's doing. Its session manager adds the
/// SSE polling disconnect of `test_reconnection` (see [`polling`]).
fn bare(options: &HttpOptions, shutdown: CancellationToken) -> Router {
    let config = options.server_config(shutdown);
    let service = StreamableHttpService::new(
        || Ok(ConformanceServer::default()),
        Arc::new(PollingSessions::default()),
        config,
    );
    Router::new().nest_service(http::ENDPOINT, service)
}
