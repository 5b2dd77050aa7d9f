//! Auth mode `jwe` over HTTP, against the real router (`portcullis::mcp::http::router`) with
//! the fixture server behind it: keys from `portcullis keys generate`, tokens encrypted for
//! the key the server publishes, and each way a token can be refused with its own status and
//! message.

#![allow(deprecated)]

mod mcp_fixture;

use std::path::Path;
use std::sync::Arc;

use mcp_fixture::{FixtureServer, call, text};
use portcullis::Engine;
use portcullis::jwe::{self, RSA_OAEP, RSA_OAEP_256};
use portcullis::mcp::http::{self, AUTH_DISCOVERY_PATH, HttpOptions, JWKS_PATH};
use portcullis::mcp::{Authenticator, PolicyLayer, Transport};
use rmcp::ServiceExt;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

const POLICY: &str = r#"
config:
  default_effect: deny
  auth: { mode: jwe, key_file: keys/private.jwks.json, required_claims: [name, email] }
policies:
  - name: analysts-echo
    tools: [echo]
    subjects: { roles: [analyst] }
    action: allow
"#;

/// A folder with a policy and a key pair made by the CLI (2048 bits: quicker to generate).
fn setup() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.yaml"), POLICY).unwrap();
    generate_keys(&dir.path().join("keys"));
    dir
}

fn generate_keys(out: &Path) {
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args([
            "--log", "warn", "keys", "generate", "--bits", "2048", "--out",
        ])
        .arg(out)
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

struct Server {
    addr: String,
    shutdown: CancellationToken,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The policy layer in auth mode `jwe` over streamable HTTP on a loopback port.
async fn serve(dir: &Path) -> Server {
    let engine = Arc::new(Engine::from_file(&dir.join("policy.yaml")).unwrap());
    let config = engine.snapshot().config().auth.clone();
    let auth = Authenticator::from_config(&config, Transport::Http, &engine, &|_| None).unwrap();
    assert_eq!(auth.mode_name(), "jwe");
    let layer = PolicyLayer::new(engine).with_authenticator(Arc::new(auth));
    let shutdown = CancellationToken::new();
    let router = http::router(
        layer,
        || Ok(FixtureServer),
        &HttpOptions::default(),
        shutdown.clone(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(http::serve(listener, router, shutdown.clone()));
    Server { addr, shutdown }
}

/// One raw HTTP/1.1 exchange: the status code, the headers (lowercased) and the body.
async fn raw(addr: &str, method: &str, path: &str, bearer: Option<&str>) -> (u16, String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let auth = bearer
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n{auth}Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        s.read_to_string(&mut out),
    )
    .await
    .expect("the server answers")
    .unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_string())
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn claims(user: &str) -> Value {
    json!({
        "sub": user,
        "name": "Ann Example",
        "email": "ann@example.com",
        "roles": ["analyst"],
        "exp": now() + 600,
    })
}

fn token_for(jwks: &Value, claims: &Value) -> String {
    jwe::encrypt(jwks, RSA_OAEP_256, claims.to_string().as_bytes()).unwrap()
}

/// An MCP client presenting `token`; calls echo and returns its text, or the error.
async fn echo_with(addr: &str, token: &str) -> Result<String, String> {
    portcullis::proxy::install_crypto_provider();
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(format!("http://{addr}/mcp"))
            .auth_header(token),
    );
    let client = ().serve(transport).await.map_err(|e| e.to_string())?;
    let r = client
        .call_tool(call("echo", json!({"text": "hi"})))
        .await
        .map_err(|e| e.to_string())?;
    let _ = client.cancel().await;
    Ok(if r.is_error == Some(true) {
        format!("denied: {}", text(&r))
    } else {
        text(&r)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwe_round_trip_with_cli_generated_keys_maps_claims_to_the_caller() {
    let dir = setup();
    let server = serve(dir.path()).await;
    let public = read_json(&dir.path().join("keys/public.jwks.json"));
    // Both accepted key-management algorithms.
    for alg in [RSA_OAEP_256, RSA_OAEP] {
        let token = jwe::encrypt(&public, alg, claims("ann").to_string().as_bytes()).unwrap();
        assert_eq!(echo_with(&server.addr, &token).await.unwrap(), "echo: hi");
    }
    // The roles claim decides: the same token without the analyst role is denied by policy.
    let mut no_role = claims("bob");
    no_role["roles"] = json!(["guest"]);
    let r = echo_with(&server.addr, &token_for(&public, &no_role))
        .await
        .unwrap();
    assert!(r.starts_with("denied: "), "{r}");
    // A token made with `portcullis keys encrypt` works too.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["keys", "encrypt", "--jwks"])
        .arg(dir.path().join("keys/public.jwks.json"))
        .args(["--claims", &claims("ann").to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let token = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        echo_with(&server.addr, token.trim()).await.unwrap(),
        "echo: hi"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwe_refusals_have_their_own_status_and_message_over_http() {
    let dir = setup();
    let server = serve(dir.path()).await;
    let public = read_json(&dir.path().join("keys/public.jwks.json"));
    let other = tempfile::tempdir().unwrap();
    generate_keys(other.path());
    let other_public = read_json(&other.path().join("public.jwks.json"));

    let good = token_for(&public, &claims("ann"));
    // Flip one byte of the ciphertext (the fourth part).
    let mut parts: Vec<String> = good.split('.').map(String::from).collect();
    let mut ct = parts[3].clone().into_bytes();
    ct[0] = if ct[0] == b'A' { b'B' } else { b'A' };
    parts[3] = String::from_utf8(ct).unwrap();
    let tampered = parts.join(".");
    let mut expired = claims("ann");
    expired["exp"] = json!(now() - 3600);
    let mut early = claims("ann");
    early["nbf"] = json!(now() + 3600);
    let mut no_email = claims("ann");
    no_email.as_object_mut().unwrap().remove("email");
    let mut no_user = claims("ann");
    no_user.as_object_mut().unwrap().remove("sub");
    no_user.as_object_mut().unwrap().remove("name");
    // Kid of the other key: names the key the server does not have.
    let wrong_key = token_for(&other_public, &claims("ann"));

    let cases: [(&str, Option<String>, u16, &str); 8] = [
        ("no token", None, 401, "missing bearer token"),
        ("wrong key", Some(wrong_key), 401, "no key with kid"),
        ("tampered", Some(tampered), 401, "does not decrypt"),
        (
            "garbage",
            Some("not.a.jwe".into()),
            401,
            "not a compact JWE",
        ),
        (
            "expired",
            Some(token_for(&public, &expired)),
            401,
            "expired",
        ),
        (
            "not yet valid",
            Some(token_for(&public, &early)),
            401,
            "not valid for another",
        ),
        (
            "missing claim",
            Some(token_for(&public, &no_email)),
            403,
            "lacks required claims: email",
        ),
        (
            "missing user and name",
            Some(token_for(&public, &no_user)),
            403,
            "lacks required claims: sub, name",
        ),
    ];
    for (what, token, status, message) in cases {
        let (got, head, body) = raw(&server.addr, "POST", "/mcp", token.as_deref()).await;
        assert_eq!(got, status, "{what}: {head}\n{body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        let text = body["message"].as_str().unwrap();
        assert!(text.contains(message), "{what}: {text}");
        assert!(head.contains("www-authenticate: bearer"), "{what}: {head}");
        if status == 403 {
            assert!(head.contains("error=\"insufficient_scope\""), "{head}");
            assert_eq!(body["error"], "insufficient_scope");
        } else {
            assert!(head.contains("error=\"invalid_token\""), "{what}: {head}");
        }
    }
    // The missing list names exactly what is missing.
    let (_, _, body) = raw(
        &server.addr,
        "POST",
        "/mcp",
        Some(&token_for(&public, &no_email)),
    )
    .await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["missing"],
        json!(["email"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_endpoint_serves_the_key_that_encrypts_accepted_tokens() {
    let dir = setup();
    let server = serve(dir.path()).await;
    let (status, head, body) = raw(&server.addr, "GET", JWKS_PATH, None).await;
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("content-type: application/json"), "{head}");
    let served: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(served, read_json(&dir.path().join("keys/public.jwks.json")));
    for member in ["d", "p", "q", "dp", "dq", "qi"] {
        assert!(
            served["keys"][0].get(member).is_none(),
            "private member {member} served"
        );
    }
    let token = token_for(&served, &claims("ann"));
    assert_eq!(echo_with(&server.addr, &token).await.unwrap(), "echo: hi");

    let (status, _, body) = raw(&server.addr, "GET", AUTH_DISCOVERY_PATH, None).await;
    assert_eq!(status, 200);
    let discovery: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        discovery["required_claims"],
        json!(["sub", "name", "email"])
    );
    assert_eq!(discovery["jwks_uri"], JWKS_PATH);
    assert_eq!(discovery["scopes_supported"][2], json!({"scope": "email"}));
    let (status, _, _) = raw(&server.addr, "POST", JWKS_PATH, None).await;
    assert_eq!(status, 405);
}
