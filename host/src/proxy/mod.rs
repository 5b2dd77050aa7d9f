//! `portcullis proxy`: the policy layer in front of any MCP server, without touching its code.
//!
//! Downstream, clients connect over stdio (the default) or streamable HTTP at `/mcp`. Each
//! downstream session gets its own upstream connection (a fresh process for a command
//! upstream), so whatever the upstream asks (elicitations, sampling, roots) reaches the client
//! that caused it. Every request passes through [`crate::mcp::Policed`]; what the policy does
//! not police passes unchanged.
//!
//! Failure: an upstream that cannot start, exits, or does not answer within the timeout gives
//! the client a JSON-RPC error saying so; the proxy keeps serving other sessions (stdio: the
//! client should restart the proxy). An HTTP upstream's broken response stream is resumed a
//! few times, then the call fails the same way. SIGINT and SIGTERM end every session, stop
//! the upstream processes and exit cleanly. The README's "Failure behaviour" lists every case
//! and the test in `tests/faults.rs` that shows it.

mod flights;
mod forward;
mod http_upstream;
mod progress;

use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use forward::{Forwarder, InProcess, Relay, UpstreamSpec};
pub use http_upstream::{HttpUpstream, UpstreamError, install_crypto_provider};

use crate::mcp::PolicyLayer;
use crate::mcp::http::{self, HttpOptions};
use rmcp::ServiceExt;

/// Default time an upstream request may take (including an upstream's own elicitation).
pub const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(300);

/// What the proxy forwards to and how.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    pub upstream: UpstreamSpec,
    pub timeout: Duration,
    pub http: HttpOptions,
}

/// Why serving stopped with an error.
#[derive(Debug, Error)]
pub enum ProxyError {
    #[error("cannot serve on stdio: {0}")]
    Stdio(String),
    #[error("HTTP server failed: {0}")]
    Http(#[from] std::io::Error),
}

/// Serves one downstream client on stdin/stdout until it disconnects or `shutdown` fires.
pub async fn serve_stdio(
    layer: PolicyLayer,
    options: ProxyOptions,
    shutdown: CancellationToken,
) -> Result<(), ProxyError> {
    let forwarder = Forwarder::new(Arc::new(options.upstream), options.timeout);
    let running = layer
        .wrap(forwarder)
        .serve_with_ct(rmcp::transport::stdio(), shutdown.child_token())
        .await
        .map_err(|e| ProxyError::Stdio(e.to_string()))?;
    let reason = running
        .waiting()
        .await
        .map_err(|e| ProxyError::Stdio(e.to_string()))?;
    tracing::info!(?reason, "stdio session ended");
    Ok(())
}

/// Serves streamable HTTP at `/mcp` on `listener` until `shutdown` fires.
pub async fn serve_http(
    layer: PolicyLayer,
    options: ProxyOptions,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ProxyError> {
    let spec = Arc::new(options.upstream);
    let timeout = options.timeout;
    let router = http::router(
        layer,
        move || Ok(Forwarder::new(spec.clone(), timeout)),
        &options.http,
        shutdown.clone(),
    );
    http::serve(listener, router, shutdown).await?;
    Ok(())
}

/// A token cancelled on the first SIGINT or SIGTERM.
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("signal received: shutting down");
        t.cancel();
    });
    token
}
