//! `portcullis proxy`: serve the policy layer in front of an MCP server.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::engine::Engine;
use crate::mcp::http::{DEFAULT_MAX_BODY_BYTES, HttpOptions};
use crate::mcp::{Authenticator, PolicyLayer, Transport};
use crate::proxy::{self, HttpUpstream, ProxyOptions, UpstreamSpec};
use crate::reload::Reloader;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  portcullis proxy --config policy.yaml -- npx -y @modelcontextprotocol/server-everything\n  portcullis proxy --config policy.yaml --listen 127.0.0.1:8080 --upstream-url http://127.0.0.1:9000/mcp"
)]
pub struct Args {
    /// The policy file (hot-reloaded while serving).
    #[arg(long, short)]
    config: PathBuf,
    /// Serve streamable HTTP at http://ADDR/mcp instead of stdio.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Forward to a streamable-HTTP MCP server (http:// or https://) instead of a command.
    #[arg(long, value_name = "URL", conflicts_with = "command")]
    upstream_url: Option<String>,
    /// PEM file with CA certificates to trust for an https upstream, besides the system's.
    #[arg(long, value_name = "FILE", requires = "upstream_url")]
    upstream_ca: Option<PathBuf>,
    /// A header sent with every request to an HTTP upstream, as `Name: value` (repeatable),
    /// e.g. the upstream's own credentials. Client credentials are never forwarded.
    #[arg(
        long = "upstream-header",
        value_name = "HEADER",
        requires = "upstream_url"
    )]
    upstream_headers: Vec<String>,
    /// `Host` values accepted over HTTP (repeatable; default: localhost, 127.0.0.1, ::1).
    #[arg(long = "allowed-host", value_name = "HOST")]
    allowed_hosts: Vec<String>,
    /// Browser `Origin`s accepted over HTTP, replacing the default (repeatable; default:
    /// loopback pages, e.g. http://localhost:*).
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    allowed_origins: Vec<String>,
    /// Largest HTTP request body, in bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// Seconds an upstream request may take before the client gets an error.
    #[arg(long, default_value_t = proxy::DEFAULT_UPSTREAM_TIMEOUT.as_secs())]
    upstream_timeout: u64,
    /// The upstream server command and its arguments, after `--`.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<OsString>,
}

pub fn run(args: &Args) -> u8 {
    match serve(args) {
        Ok(()) => 0,
        Err(e) => {
            super::report(&e);
            super::EXIT_BAD_INPUT
        }
    }
}

/// The settings that make up the token keyring.
fn key_settings(
    config: &crate::policy::Config,
) -> (String, String, Vec<crate::policy::RetiredKey>) {
    (
        config.key_id.clone(),
        config.secret_key_env.clone(),
        config.retired_keys.clone(),
    )
}

fn serve(args: &Args) -> anyhow::Result<()> {
    let upstream = match (&args.upstream_url, args.command.split_first()) {
        (Some(url), _) => UpstreamSpec::Url(HttpUpstream::new(
            url,
            args.upstream_ca.as_deref(),
            &args.upstream_headers,
        )?),
        (None, Some((program, rest))) => UpstreamSpec::Command {
            program: program.clone(),
            args: rest.to_vec(),
        },
        (None, None) => bail!(
            "no upstream: give the server command after `--` (e.g. `-- npx -y @modelcontextprotocol/server-everything`) or --upstream-url URL"
        ),
    };
    if args.upstream_timeout == 0 {
        bail!("--upstream-timeout must be at least 1 second");
    }
    let engine = Arc::new(Engine::from_file(&args.config).map_err(|e| {
        anyhow::anyhow!("{e}\n{}: the policy was not loaded", args.config.display())
    })?);
    let transport = if args.listen.is_some() {
        Transport::Http
    } else {
        Transport::Stdio
    };
    let auth_config = engine.snapshot().config().auth.clone();
    let auth = Authenticator::from_config(&auth_config, transport, &engine, &|name| {
        std::env::var(name).ok()
    })
    .with_context(|| format!("{}: config.auth", args.config.display()))?;
    tracing::info!(mode = auth.mode_name(), "identity mode");
    // The identity layer, and with it the token keyring, is built once (the keys' secrets are
    // in this process's environment, which cannot change): say so when a reload changes
    // `config.auth` or, with tokens, the keys. Until a restart the old ones stay in force.
    let watched = engine.clone();
    let uses_keys = auth.keyring().is_some();
    let keys_config = key_settings(engine.snapshot().config());
    let _reloader = Reloader::start(engine.clone(), args.config.clone(), None, move |outcome| {
        if outcome.is_err() {
            return;
        }
        let snapshot = watched.snapshot();
        let config = snapshot.config();
        if config.auth != auth_config {
            tracing::warn!("config.auth changed; identity changes take effect after a restart");
        }
        if uses_keys && key_settings(config) != keys_config {
            tracing::warn!(
                "config.key_id, secret_key_env or retired_keys changed; the proxy keeps verifying tokens with the keys it started with until it is restarted (with the new key variables set)"
            );
        }
    })
    .map_err(|e| anyhow::anyhow!("cannot watch the policy: {e}"))?;
    let layer = PolicyLayer::new(engine.clone()).with_authenticator(Arc::new(auth));
    let mut http = HttpOptions {
        max_body_bytes: args.max_body_bytes,
        ..HttpOptions::default()
    };
    if !args.allowed_hosts.is_empty() {
        http.allowed_hosts = args.allowed_hosts.clone();
    }
    if !args.allowed_origins.is_empty() {
        http.allowed_origins = args.allowed_origins.clone();
    }
    let options = ProxyOptions {
        upstream,
        timeout: Duration::from_secs(args.upstream_timeout),
        http,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let shutdown = proxy::shutdown_on_signals();
        match args.listen {
            Some(addr) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr}"))?;
                let local = listener.local_addr().unwrap_or(addr);
                eprintln!("portcullis proxy: serving http://{local}/mcp");
                proxy::serve_http(layer, options, listener, shutdown).await?;
            }
            None => proxy::serve_stdio(layer, options, shutdown).await?,
        }
        anyhow::Ok(())
    })?;
    // Upstream processes are killed by tasks on the runtime; give them a moment.
    runtime.shutdown_timeout(Duration::from_secs(2));
    Ok(())
}
