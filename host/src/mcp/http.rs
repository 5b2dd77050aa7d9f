//! Streamable HTTP serving: rmcp's service at `/mcp`, behind an identity check that answers a
//! missing or bad credential with `401` and `WWW-Authenticate: Bearer`, before any MCP
//! processing (`403` with `error="insufficient_scope"` for a valid JWE token that lacks a
//! required claim). Mode `jwe` also serves its public JWKS at [`JWKS_PATH`] and the claims a
//! token must carry at [`AUTH_DISCOVERY_PATH`]. Host and Origin allow-lists and the body size cap default to safe values.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode, header};
use rmcp::ServerHandler;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::identity::{AuthError, Authenticator};
use super::{Authenticated, PolicyLayer};

/// Path the MCP endpoint is served at.
pub const ENDPOINT: &str = "/mcp";

/// Mode `jwe`: where the public JWKS is served (no credential needed).
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
/// Mode `jwe`: where what a token must carry is served (no credential needed):
/// `{"mode": "jwe", "jwks_uri", "required_claims", "alg_values_supported",
/// "enc_values_supported", "scopes_supported"}`.
pub const AUTH_DISCOVERY_PATH: &str = "/.well-known/portcullis-auth";

/// Default body cap: 4 MiB, ample for tool arguments, small enough to bound memory.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Browser origins accepted by default: pages served from this machine.
pub const LOOPBACK_ORIGINS: [&str; 6] = [
    "http://localhost:*",
    "http://127.0.0.1:*",
    "http://[::1]:*",
    "https://localhost:*",
    "https://127.0.0.1:*",
    "https://[::1]:*",
];

/// HTTP hardening settings.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// `Host` values accepted (DNS-rebinding protection); default: loopback names only.
    pub allowed_hosts: Vec<String>,
    /// Browser `Origin`s accepted; default: pages served from this machine (loopback names,
    /// any port). A DNS-rebinding page has its own origin and is refused. Requests without
    /// `Origin` (non-browser clients) always pass.
    pub allowed_origins: Vec<String>,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            allowed_origins: LOOPBACK_ORIGINS.iter().map(|o| o.to_string()).collect(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

impl HttpOptions {
    /// rmcp's server configuration with these settings; for serving a server without the
    /// policy layer exactly as [`router`] serves one with it.
    pub fn server_config(&self, shutdown: CancellationToken) -> StreamableHttpServerConfig {
        StreamableHttpServerConfig::default()
            .with_allowed_hosts(self.allowed_hosts.clone())
            .with_allowed_origins(self.allowed_origins.clone())
            .enforce_origin_validation()
            .with_max_request_body_bytes(self.max_body_bytes)
            .with_cancellation_token(shutdown)
    }
}

/// An axum router serving `factory`'s handlers, each wrapped by `layer`, at [`ENDPOINT`].
/// `factory` is called once per MCP session. Cancelling `shutdown` ends every session.
pub fn router<S, F>(
    layer: PolicyLayer,
    factory: F,
    options: &HttpOptions,
    shutdown: CancellationToken,
) -> Router
where
    S: ServerHandler,
    F: Fn() -> Result<S, std::io::Error> + Send + Sync + 'static,
{
    let config = options.server_config(shutdown);
    let auth = layer.authenticator().clone();
    let service = StreamableHttpService::new(
        move || factory().map(|inner| layer.wrap(inner)),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let mut router = Router::new();
    if let (Some(jwks), Some(claims)) = (auth.public_jwks(), auth.required_claims()) {
        let discovery = serde_json::json!({
            "mode": "jwe",
            "jwks_uri": JWKS_PATH,
            "required_claims": claims,
            "alg_values_supported": [crate::jwe::RSA_OAEP_256, crate::jwe::RSA_OAEP],
            "enc_values_supported": [crate::jwe::A256GCM],
            // The same list in the shape mcp-auth-middleware's clients read.
            "scopes_supported": claims
                .iter()
                .map(|c| serde_json::json!({"scope": c}))
                .collect::<Vec<_>>(),
        });
        router = router
            .route_service(JWKS_PATH, PublicJson(Arc::new(jwks.to_string())))
            .route_service(
                AUTH_DISCOVERY_PATH,
                PublicJson(Arc::new(discovery.to_string())),
            );
    }
    router.nest_service(
        ENDPOINT,
        Authenticate {
            auth,
            inner: service,
        },
    )
}

/// A fixed public JSON document (GET or HEAD; other methods get 405), readable from any
/// origin: it holds only public keys and the required claim names.
#[derive(Clone)]
struct PublicJson(Arc<String>);

impl tower_service::Service<Request> for PublicJson {
    type Response = Response;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let mut response = if request.method() == Method::GET || request.method() == Method::HEAD {
            (StatusCode::OK, self.0.to_string()).into_response()
        } else {
            let mut r = StatusCode::METHOD_NOT_ALLOWED.into_response();
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return std::future::ready(Ok(r));
        };
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        );
        std::future::ready(Ok(response))
    }
}

/// Serves `router` on `listener` until `shutdown` fires, with `TCP_NODELAY` on every
/// connection: an MCP response stream ends with a small final chunk, which Nagle's algorithm
/// would otherwise hold back until the client's delayed ACK (about 40 ms), stalling the next
/// request on that connection.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

/// Establishes each HTTP request's identity before rmcp sees it, or answers 401. A plain
/// service wrapper rather than axum's `from_fn` middleware, which boxes and clones the inner
/// service on every request (measurable on the per-call path; see BENCHMARKS.md).
#[derive(Clone)]
struct Authenticate<S> {
    auth: Arc<Authenticator>,
    inner: S,
}

impl<S> tower_service::Service<Request> for Authenticate<S>
where
    S: tower_service::Service<Request, Error = Infallible>,
    S::Response: IntoResponse,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        match self.auth.authenticate_headers(request.headers()) {
            Ok(identity) => {
                request
                    .extensions_mut()
                    .insert(Authenticated(Arc::new(identity)));
                let response = self.inner.call(request);
                Box::pin(async move { Ok(response.await?.into_response()) })
            }
            Err(e) => Box::pin(std::future::ready(Ok(refused(&e)))),
        }
    }
}

/// The answer to refused credentials: [`unauthorized`] (401) or, for a valid token without a
/// required claim, [`insufficient_claims`] (403).
pub fn refused(e: &AuthError) -> Response {
    match e {
        AuthError::Invalid(reason) => unauthorized(reason),
        AuthError::MissingClaims { missing } => insufficient_claims(missing),
    }
}

/// `401` with `WWW-Authenticate: Bearer` and the reason, as RFC 6750 describes.
pub fn unauthorized(reason: &str) -> Response {
    let body = serde_json::json!({"error": "unauthorized", "message": reason});
    challenge(StatusCode::UNAUTHORIZED, "invalid_token", reason, body)
}

/// `403` with `WWW-Authenticate: Bearer error="insufficient_scope"` (RFC 6750 section 3.1) and
/// a JSON body listing the missing claims: `{"error": "insufficient_scope", "message": ..,
/// "missing": [..]}`.
pub fn insufficient_claims(missing: &[String]) -> Response {
    let reason = format!("the token lacks required claims: {}", missing.join(", "));
    let body = serde_json::json!({
        "error": "insufficient_scope",
        "message": reason,
        "missing": missing,
    });
    challenge(StatusCode::FORBIDDEN, "insufficient_scope", &reason, body)
}

fn challenge(status: StatusCode, error: &str, reason: &str, body: Value) -> Response {
    let quoted: String = reason
        .chars()
        .filter(|c| (' '..='~').contains(c) && *c != '"' && *c != '\\')
        .collect();
    let challenge =
        format!("Bearer realm=\"portcullis\", error=\"{error}\", error_description=\"{quoted}\"");
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // The request body was not read, so the connection cannot be reused: say so, or a client
    // that sends its next request on it races the server closing it.
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    headers.insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_str(&challenge)
            .unwrap_or_else(|_| HeaderValue::from_static("Bearer realm=\"portcullis\"")),
    );
    response
}
