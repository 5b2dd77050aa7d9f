//! A streamable-HTTP upstream: its URL, the HTTP client (TLS with the system's roots plus an
//! optional CA bundle) and the static headers sent with every request.
//!
//! One client is built per proxy and shared by every session (reqwest clients are cheap
//! handles over one connection pool), so sessions reuse TLS connections to the upstream.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::common::client_side_sse::ExponentialBackoff;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use thiserror::Error;

/// Why an HTTP upstream could not be set up. Reported at startup.
#[derive(Debug, Error)]
pub enum UpstreamError {
    #[error("--upstream-url {url:?}: expected an http:// or https:// URL")]
    Scheme { url: String },
    #[error("--upstream-ca {path}: {message}")]
    Ca { path: String, message: String },
    #[error("--upstream-header {header:?}: {message}")]
    Header { header: String, message: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// Where and how to reach a streamable-HTTP MCP server.
#[derive(Clone)]
pub struct HttpUpstream {
    url: Arc<str>,
    client: reqwest::Client,
    headers: HashMap<HeaderName, HeaderValue>,
}

impl std::fmt::Debug for HttpUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Header values may be credentials: never print them.
        let names: Vec<&str> = self.headers.keys().map(HeaderName::as_str).collect();
        f.debug_struct("HttpUpstream")
            .field("url", &self.url)
            .field("headers", &names)
            .finish_non_exhaustive()
    }
}

impl HttpUpstream {
    /// An upstream at `url` (http or https). `ca_file` adds PEM certificates to the system's
    /// roots; `headers` are `Name: value` lines sent with every request (e.g. the upstream's
    /// own `Authorization`; the downstream client's credentials are never forwarded).
    pub fn new(
        url: &str,
        ca_file: Option<&Path>,
        headers: &[String],
    ) -> Result<Self, UpstreamError> {
        let lower = url.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            return Err(UpstreamError::Scheme { url: url.into() });
        }
        install_crypto_provider();
        let mut builder = reqwest::Client::builder();
        if let Some(path) = ca_file {
            let ca_error = |message: String| UpstreamError::Ca {
                path: path.display().to_string(),
                message,
            };
            let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| ca_error(format!("not a PEM certificate bundle: {e}")))?;
            if certs.is_empty() {
                return Err(ca_error("holds no PEM certificate".into()));
            }
            builder = builder.tls_certs_merge(certs);
        }
        let client = builder
            .build()
            .map_err(|e| UpstreamError::Client(e.to_string()))?;
        let mut parsed = HashMap::new();
        for line in headers {
            let bad = |message: &str| UpstreamError::Header {
                header: line.split(':').next().unwrap_or_default().to_string(),
                message: message.into(),
            };
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| bad("expected `Name: value`"))?;
            let name = HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| bad("not a valid header name"))?;
            let value = HeaderValue::from_str(value.trim())
                .map_err(|_| bad("the value is not visible ASCII"))?;
            parsed.insert(name, value);
        }
        Ok(HttpUpstream {
            url: Arc::from(url),
            client,
            headers: parsed,
        })
    }

    /// The upstream's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A transport for one session.
    pub(super) fn transport(&self) -> StreamableHttpClientTransport<reqwest::Client> {
        let mut config = StreamableHttpClientTransportConfig::with_uri(self.url.clone());
        config.custom_headers = self.headers.clone();
        config.retry_config = Arc::new(resume_policy());
        StreamableHttpClientTransport::with_client(self.client.clone(), config)
    }
}

/// How often a broken response stream is resumed before the call fails. rmcp's default
/// retries without end (doubling the wait each time), so a call in flight when the upstream
/// died waited for `--upstream-timeout` (300 s by default) before its client heard anything.
/// A few quick attempts still ride out a blip or a restarting server.
const RESUME_ATTEMPTS: usize = 3;

fn resume_policy() -> ExponentialBackoff {
    let mut policy = ExponentialBackoff::default();
    policy.max_times = Some(RESUME_ATTEMPTS);
    policy.base_duration = Duration::from_millis(250);
    policy.max_delay = Some(Duration::from_secs(2));
    policy
}

/// Installs `ring` as rustls' process-wide crypto provider, which reqwest (and so rmcp's HTTP
/// client transport) needs before its first client is built: this crate builds rustls without
/// a default provider. Call it before using rmcp's `StreamableHttpClientTransport::from_uri`
/// yourself; the proxy calls it. Installing twice is harmless (the first stays).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_are_named() {
        let e = HttpUpstream::new("ftp://x", None, &[]).unwrap_err();
        assert!(e.to_string().contains("http:// or https://"), "{e}");
        let e = HttpUpstream::new("https://x", None, &["NoColon".into()]).unwrap_err();
        assert!(e.to_string().contains("Name: value"), "{e}");
        let e = HttpUpstream::new("https://x", None, &["Bad Name: v".into()]).unwrap_err();
        assert!(e.to_string().contains("header name"), "{e}");
        let dir = std::env::temp_dir().join(format!("pc-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, "not a certificate").unwrap();
        let e = HttpUpstream::new("https://x", Some(&ca), &[]).unwrap_err();
        assert!(e.to_string().contains("ca.pem"), "{e}");
        let missing = dir.join("missing.pem");
        let e = HttpUpstream::new("https://x", Some(&missing), &[]).unwrap_err();
        assert!(e.to_string().contains("missing.pem"), "{e}");
        let ok =
            HttpUpstream::new("https://x/mcp", None, &["Authorization: Bearer s3".into()]).unwrap();
        assert!(
            !format!("{ok:?}").contains("s3"),
            "header values are not printed"
        );
    }
}
