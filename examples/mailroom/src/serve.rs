//! Wiring the server to a transport, with or without the policy layer: what `main` runs, kept
//! in the library so the tests build the guarded server exactly the way the binary does.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use portcullis::Engine;
use portcullis::mcp::http::HttpOptions;
use portcullis::mcp::{Authenticator, PolicyLayer, Transport};
use portcullis::reload::Reloader;
use portcullis::wasm::Runtime;
use rmcp::transport::streamable_http_server::StreamableHttpService;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::{ServerHandler, ServiceExt};
use tokio_util::sync::CancellationToken;

use crate::db::Database;
use crate::server::Mailroom;

/// What to serve and how (the command line, parsed).
#[derive(Debug, Clone)]
pub struct Options {
    /// The policy file; `None` only together with `no_policy`.
    pub config: Option<PathBuf>,
    /// Serve streamable HTTP at `http://ADDR/mcp` instead of stdio.
    pub listen: Option<SocketAddr>,
    /// Serve the bare server, without the policy layer.
    pub no_policy: bool,
    /// SQLite file for `run_query`; `None`: in memory.
    pub db: Option<PathBuf>,
}

/// A loaded policy: the engine (swapped by hot reload) and the layer that applies it.
pub struct Policy {
    /// Decides every call; hot reload swaps its snapshot.
    pub engine: Arc<Engine>,
    /// Wraps a server handler so the engine polices it (`layer.wrap(server)`).
    pub layer: PolicyLayer,
    /// The sandbox its enforcers were loaded with, reused by reloads.
    runtime: Option<Arc<Runtime>>,
}

impl Policy {
    /// Loads `path` and sets up identity from its `config.auth` for `transport`. `runtime` is
    /// the WebAssembly sandbox for its enforcers (`None`: the process-wide one, with the
    /// default compile cache); `env` reads environment variables (credentials, key files).
    pub fn load(
        path: &Path,
        transport: Transport,
        runtime: Option<&Arc<Runtime>>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Policy> {
        let snapshot = portcullis::engine::load_snapshot(path, runtime)
            .map_err(|e| anyhow!("{e}\n{}: the policy was not loaded", path.display()))?;
        let engine = Arc::new(Engine::new(snapshot));
        let auth =
            Authenticator::from_config(&engine.snapshot().config().auth, transport, &engine, env)
                .with_context(|| format!("{}: config.auth", path.display()))?;
        let layer = PolicyLayer::new(engine.clone()).with_authenticator(Arc::new(auth));
        Ok(Policy {
            engine,
            layer,
            runtime: runtime.cloned(),
        })
    }

    /// Keeps the policy live: every change to the file (or its enforcers) is loaded and swapped
    /// in; a change that does not load is logged and the last good policy stays. Dropping the
    /// returned watcher stops it.
    pub fn watch(&self, path: &Path) -> anyhow::Result<Reloader> {
        let auth = self.engine.snapshot().config().auth.clone();
        let engine = self.engine.clone();
        Reloader::start(
            self.engine.clone(),
            path.to_path_buf(),
            self.runtime.clone(),
            move |outcome| {
                // Identity is set up once, at startup.
                if outcome.is_ok() && engine.snapshot().config().auth != auth {
                    tracing::warn!(
                        "config.auth changed; identity changes take effect after a restart"
                    );
                }
            },
        )
        .map_err(|e| anyhow!("cannot watch the policy {}: {e}", path.display()))
    }
}

/// Opens the database the options name (in memory by default).
pub fn open_database(db: Option<&Path>) -> anyhow::Result<Database> {
    match db {
        Some(path) => Database::open(path),
        None => Database::in_memory(),
    }
}

/// Runs the server until the client disconnects (stdio) or `shutdown` fires.
pub async fn run(options: Options, shutdown: CancellationToken) -> anyhow::Result<()> {
    let transport = if options.listen.is_some() {
        Transport::Http
    } else {
        Transport::Stdio
    };
    // Load the policy before opening anything else, so a bad file fails fast.
    let policy = match (&options.config, options.no_policy) {
        (_, true) => None,
        (Some(path), false) => {
            let policy = Policy::load(path, transport, None, &|name| std::env::var(name).ok())?;
            let watcher = policy.watch(path)?;
            tracing::info!(
                policy = %path.display(),
                mode = policy.layer.authenticator().mode_name(),
                "policy loaded; watching it for changes"
            );
            Some((policy, watcher))
        }
        (None, false) => {
            return Err(anyhow!(
                "no policy: give --config POLICY.yaml, or --no-policy to serve without one"
            ));
        }
    };
    let server = Mailroom::new(open_database(options.db.as_deref())?);
    match (options.listen, policy) {
        (None, Some((policy, _watcher))) => serve_stdio(policy.layer.wrap(server), shutdown).await,
        (None, None) => serve_stdio(server, shutdown).await,
        (Some(addr), policy) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?;
            let local = listener.local_addr().unwrap_or(addr);
            let options = HttpOptions::default();
            let router = match &policy {
                Some((policy, _)) => portcullis::mcp::http::router(
                    policy.layer.clone(),
                    move || Ok(server.clone()),
                    &options,
                    shutdown.clone(),
                ),
                None => bare_router(server, &options, shutdown.clone()),
            };
            eprintln!(
                "mailroom: serving http://{local}{}{}",
                portcullis::mcp::http::ENDPOINT,
                if policy.is_some() {
                    ""
                } else {
                    " without a policy"
                }
            );
            portcullis::mcp::http::serve(listener, router, shutdown)
                .await
                .context("the HTTP server failed")
        }
    }
}

async fn serve_stdio<H: ServerHandler>(
    handler: H,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let running = handler
        .serve_with_ct(rmcp::transport::stdio(), shutdown.child_token())
        .await
        .map_err(|e| anyhow!("cannot serve on stdio: {e}"))?;
    let reason = running
        .waiting()
        .await
        .map_err(|e| anyhow!("the stdio session failed: {e}"))?;
    tracing::info!(?reason, "stdio session ended");
    Ok(())
}

/// The bare server over HTTP, with the same Host / Origin / body-size hardening as the guarded
/// one but no identity check: `--no-policy --listen`.
fn bare_router(
    server: Mailroom,
    options: &HttpOptions,
    shutdown: CancellationToken,
) -> axum::Router {
    let config = options.server_config(shutdown);
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    axum::Router::new().nest_service(portcullis::mcp::http::ENDPOINT, service)
}

/// How long to wait for sessions to wind down after a signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
