//! `portcullis proxy` as a process, with rmcp's client downstream and the fixture server
//! (`examples/fixture_server.rs`, built by `cargo test`) upstream, over stdio and HTTP.

#![allow(deprecated)]

mod mcp_fixture;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use rmcp::model::*;
use rmcp::service::{RequestContext, RoleClient, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, ErrorData as McpError, ServiceExt};
use serde_json::{Value, json};

use mcp_fixture::{call, fixture_server, text};

const API_KEY: &str = "test-key-0123456789abcdef";

#[derive(Clone)]
struct Client;

impl ClientHandler for Client {
    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, McpError> {
        let ElicitRequestParams::FormElicitationParams { message, .. } = request else {
            return Ok(ElicitResult::new(ElicitationAction::Decline));
        };
        let mut r = ElicitResult::new(ElicitationAction::Accept);
        r.content = Some(if message.contains("What is your name") {
            json!({"name": "Ann"})
        } else {
            json!({"approve": true})
        });
        Ok(r)
    }

    fn get_info(&self) -> ClientInfo {
        let mut caps = ClientCapabilities::default();
        caps.elicitation = Some(ElicitationCapability::default());
        ClientInfo::new(caps, Implementation::new("proxy-test", "1.0"))
            .with_protocol_version(ProtocolVersion::V_2025_11_25)
    }
}

fn policy(extra_auth: &str) -> String {
    format!(
        r#"
config:
  default_effect: deny
{extra_auth}
policies:
  - "bf:echo:tool_access:allow"
  - "bf:admin_tool:tool_access:deny"
  - "bf:get_user_profile:tool_access:allow"
  - "af:get_user_profile:field_access:deny:user_pii.ssn"
  - "bf:ask_user:tool_access:allow"
  - "bf:delete_file:tool_access:elicit"
  - "bf:slow:tool_access:allow"
  - "bf:crash:tool_access:allow"
"#
    )
}

fn write_policy(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("policy.yaml");
    let tmp = dir.join(".policy.yaml.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    path
}

async fn stdio_proxy(config: &Path, extra: &[&str]) -> RunningService<RoleClient, Client> {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_portcullis"));
    cmd.args(["--log", "warn", "proxy", "--config"])
        .arg(config)
        .args(extra)
        .arg("--")
        .arg(fixture_server());
    let transport = TokioChildProcess::new(cmd).unwrap();
    Client.serve(transport).await.unwrap()
}

/// The things every transport must get right, through one connected client.
async fn exercise(client: &RunningService<RoleClient, Client>) {
    let names: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    assert!(!names.contains(&"admin_tool".to_string()), "{names:?}");
    assert!(!names.contains(&"read_emails".to_string()), "{names:?}");
    assert!(names.contains(&"echo".to_string()), "{names:?}");

    let denied = client
        .call_tool(call("admin_tool", json!({})))
        .await
        .unwrap();
    assert_eq!(denied.is_error, Some(true));
    assert!(text(&denied).contains("Denied by policy"));

    let echo = client
        .call_tool(call("echo", json!({"text": "hi"})))
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(&echo).unwrap(),
        json!({"content": [{"type": "text", "text": "echo: hi"}], "isError": false})
    );

    let profile = client
        .call_tool(call("get_user_profile", json!({})))
        .await
        .unwrap();
    let s = profile.structured_content.clone().unwrap();
    assert_eq!(s["user_pii"]["ssn"], "[REDACTED]");
    let t: Value = serde_json::from_str(&text(&profile)).unwrap();
    assert_eq!(t, s);

    // The upstream's own elicitation reaches this client and its answer goes back.
    let asked = client.call_tool(call("ask_user", json!({}))).await.unwrap();
    assert_eq!(text(&asked), "hello Ann");

    // Our approval prompt, answered yes.
    let deleted = client
        .call_tool(call("delete_file", json!({})))
        .await
        .unwrap();
    assert_eq!(text(&deleted), "deleted");
}

#[tokio::test]
async fn stdio_proxy_polices_and_passes_through() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_policy(dir.path(), &policy(""));
    let client = stdio_proxy(&config, &[]).await;
    exercise(&client).await;
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn policy_rewrite_during_a_session_changes_the_next_decision() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_policy(dir.path(), &policy(""));
    let client = stdio_proxy(&config, &[]).await;
    let r = client
        .call_tool(call("echo", json!({"text": "a"})))
        .await
        .unwrap();
    assert_ne!(r.is_error, Some(true));
    write_policy(
        dir.path(),
        &policy("").replace("bf:echo:tool_access:allow", "bf:echo:tool_access:deny"),
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = client
            .call_tool(call("echo", json!({"text": "a"})))
            .await
            .unwrap();
        if r.is_error == Some(true) {
            assert!(text(&r).contains("Denied by policy"));
            break;
        }
        assert!(Instant::now() < deadline, "the rewrite was not picked up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn upstream_that_hangs_or_dies_gives_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_policy(dir.path(), &policy(""));
    let client = stdio_proxy(&config, &["--upstream-timeout", "1"]).await;
    let slow = client.call_tool(call("slow", json!({}))).await.unwrap_err();
    assert!(
        slow.to_string().contains("did not answer within 1 s"),
        "{slow}"
    );
    let _ = client.call_tool(call("crash", json!({}))).await;
    let after = client
        .call_tool(call("echo", json!({"text": "x"})))
        .await
        .unwrap_err();
    assert!(after.to_string().contains("is gone"), "{after}");
    client.cancel().await.unwrap();
}

/// A process whose stdout or stderr announces its HTTP address.
struct Spawned {
    child: std::process::Child,
    addr: String,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_announcing(mut cmd: std::process::Command, on_stderr: bool) -> Spawned {
    if on_stderr {
        cmd.stderr(Stdio::piped()).stdout(Stdio::null());
    } else {
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    }
    let mut child = cmd.spawn().unwrap();
    let stream: Box<dyn Read + Send> = if on_stderr {
        Box::new(child.stderr.take().unwrap())
    } else {
        Box::new(child.stdout.take().unwrap())
    };
    let mut lines = BufReader::new(stream).lines();
    let mut addr = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("portcullis proxy: serving http://") {
            addr = rest.trim_end_matches("/mcp").to_string();
            break;
        }
        if !on_stderr && !line.is_empty() {
            addr = line;
            break;
        }
    }
    assert!(!addr.is_empty(), "the process did not announce its address");
    // Keep draining so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Spawned { child, addr }
}

fn http_proxy(config: &Path) -> (Spawned, Spawned) {
    let mut upstream = std::process::Command::new(fixture_server());
    upstream.args(["--http", "127.0.0.1:0"]);
    let upstream = spawn_announcing(upstream, false);
    let mut proxy = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"));
    proxy
        .args(["--log", "warn", "proxy", "--config"])
        .arg(config)
        .args(["--listen", "127.0.0.1:0", "--upstream-url"])
        .arg(format!("http://{}/mcp", upstream.addr))
        .env(
            "TEST_API_KEYS",
            format!(r#"{{"{API_KEY}": {{"user": "ann", "roles": ["analyst"]}}}}"#),
        );
    let proxy = spawn_announcing(proxy, true);
    (upstream, proxy)
}

const API_KEYS_AUTH: &str = "  auth: { mode: api_keys, keys_env: TEST_API_KEYS }";

/// A raw keep-alive POST, to see the status line and headers an unauthenticated client gets.
fn raw_post(addr: &str, auth: Option<&str>) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n{auth}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[tokio::test]
async fn http_proxy_authenticates_polices_and_shuts_down_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_policy(dir.path(), &policy(API_KEYS_AUTH));
    let (_upstream, mut proxy) = http_proxy(&config);

    for auth in [None, Some("Bearer wrong-key-0123456789abcdef")] {
        let response = raw_post(&proxy.addr, auth);
        assert!(response.starts_with("HTTP/1.1 401"), "{response}");
        let lower = response.to_ascii_lowercase();
        assert!(lower.contains("www-authenticate: bearer"), "{response}");
        // A keep-alive request still gets its connection closed: the body was never read.
        assert!(lower.contains("connection: close"), "{response}");
    }

    portcullis::proxy::install_crypto_provider();
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(format!("http://{}/mcp", proxy.addr))
            .auth_header(API_KEY),
    );
    let client = Client.serve(transport).await.unwrap();
    exercise(&client).await;
    client.cancel().await.unwrap();

    let pid = proxy.child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = proxy.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the proxy did not exit on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");
}

/// A TLS terminator in front of `plain` (host:port): a fresh CA, a certificate for
/// `localhost` signed by it, and a loopback listener that decrypts and pipes each connection.
/// Returns the https port and the CA certificate in PEM.
async fn tls_terminator(plain: String) -> (u16, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    use tokio_rustls::TlsAcceptor;
    use tokio_rustls::rustls::ServerConfig;
    use tokio_rustls::rustls::pki_types::PrivateKeyDer;

    portcullis::proxy::install_crypto_provider();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
        .unwrap();
    let acceptor = TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let plain = plain.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                if let Ok(mut upstream) = tokio::net::TcpStream::connect(&plain).await {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
                }
            });
        }
    });
    (port, ca.pem())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_upstream_is_verified_against_the_given_ca() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_policy(dir.path(), &policy(""));
    let mut upstream = std::process::Command::new(fixture_server());
    upstream.args(["--http", "127.0.0.1:0"]);
    let upstream = spawn_announcing(upstream, false);
    let (port, ca_pem) = tls_terminator(upstream.addr.clone()).await;
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let url = format!("https://localhost:{port}/mcp");

    let proxy = |extra: &[&str]| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_portcullis"));
        cmd.args(["--log", "warn", "proxy", "--config"])
            .arg(&config)
            .args(["--upstream-url", &url])
            .args(extra);
        TokioChildProcess::new(cmd).unwrap()
    };
    // Trusting the CA: everything works through TLS.
    let ca_arg = ca.to_string_lossy().to_string();
    let client = Client
        .serve(proxy(&[
            "--upstream-ca",
            &ca_arg,
            "--upstream-header",
            "X-Upstream-Key: k",
        ]))
        .await
        .unwrap();
    exercise(&client).await;
    client.cancel().await.unwrap();

    // Without it, the certificate is refused, and the client is told why.
    let client = Client.serve(proxy(&[])).await;
    let err = match client {
        Err(e) => e.to_string(),
        Ok(c) => c
            .call_tool(call("echo", json!({"text": "x"})))
            .await
            .unwrap_err()
            .to_string(),
    };
    assert!(err.contains("failed to initialize"), "{err}");
}

#[tokio::test]
async fn a_cancelled_request_is_cancelled_upstream_too() {
    use rmcp::model::{CallToolRequest, ClientRequest};
    use rmcp::service::PeerRequestOptions;
    let dir = tempfile::tempdir().unwrap();
    let config = write_policy(dir.path(), &policy(""));
    let mark = dir.path().join("cancelled");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_portcullis"));
    cmd.args(["--log", "warn", "proxy", "--config"])
        .arg(&config)
        .arg("--")
        .arg(fixture_server())
        .env(mcp_fixture::CANCEL_MARK_ENV, &mark);
    let client = Client
        .serve(TokioChildProcess::new(cmd).unwrap())
        .await
        .unwrap();
    let request = ClientRequest::CallToolRequest(CallToolRequest::new(call("slow", json!({}))));
    let handle = client
        .send_cancellable_request(request, PeerRequestOptions::no_options())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!mark.exists(), "cancelled before the client asked");
    handle.cancel(Some("changed my mind".into())).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !mark.exists() {
        assert!(
            Instant::now() < deadline,
            "the upstream never saw the cancellation"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The session goes on.
    let r = client
        .call_tool(call("echo", json!({"text": "still here"})))
        .await
        .unwrap();
    assert_eq!(text(&r), "echo: still here");
    client.cancel().await.unwrap();
}

/// A client that records the progress it is sent.
#[derive(Clone, Default)]
struct Watcher(std::sync::Arc<std::sync::Mutex<Vec<ProgressNotificationParam>>>);

impl ClientHandler for Watcher {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _: rmcp::service::NotificationContext<RoleClient>,
    ) {
        self.0.lock().unwrap().push(params);
    }
}

#[tokio::test]
async fn progress_reaches_the_client_under_its_own_token() {
    use rmcp::model::{CallToolRequest, ClientRequest, RequestMetaObject, ServerResult};
    use rmcp::service::PeerRequestOptions;
    let dir = tempfile::tempdir().unwrap();
    let config = write_policy(
        dir.path(),
        &policy("").replace(
            "policies:\n",
            "policies:\n  - \"bf:progress:tool_access:allow\"\n",
        ),
    );
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_portcullis"));
    cmd.args(["--log", "warn", "proxy", "--config"])
        .arg(&config)
        .arg("--")
        .arg(fixture_server());
    let watcher = Watcher::default();
    let client = watcher
        .clone()
        .serve(TokioChildProcess::new(cmd).unwrap())
        .await
        .unwrap();
    // Pings, which the proxy answers itself, move the client's token counter ahead of the
    // proxy's upstream one: the two tokens differ, as they do in general.
    for _ in 0..3 {
        client
            .send_request(ClientRequest::PingRequest(Default::default()))
            .await
            .unwrap();
    }
    let trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let mut meta = RequestMetaObject::new();
    meta.set_traceparent(trace);
    let request = ClientRequest::CallToolRequest(CallToolRequest::new(call("progress", json!({}))));
    let handle = client
        .send_request_with_option(request, PeerRequestOptions::no_options().with_meta(meta))
        .await
        .unwrap();
    let token = handle.progress_token.clone();
    let ServerResult::CallToolResult(result) = handle.await_response().await.unwrap() else {
        panic!("not a tool result")
    };
    let said = text(&result);
    assert!(
        said.ends_with(&format!("traceparent {trace}")),
        "_meta forwarded: {said}"
    );
    assert!(
        !said.starts_with(&format!("token {:?} ", token.0)),
        "the upstream saw the proxy's own token, not the client's: {said}"
    );
    let deadline = Instant::now() + Duration::from_secs(2);
    while watcher.0.lock().unwrap().len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let seen = watcher.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "progress notifications: {seen:?}");
    assert!(
        seen.iter().all(|p| p.progress_token == token),
        "{seen:?} vs {token:?}"
    );
    // rmcp handles each incoming notification in a task of its own (in the proxy and in this
    // client), so the two may arrive in either order.
    let mut steps: Vec<f64> = seen.iter().map(|p| p.progress).collect();
    steps.sort_by(f64::total_cmp);
    assert_eq!(steps, [1.0, 2.0]);
    client.cancel().await.unwrap();
}

/// What a client reads on the wire, not what rmcp's client hands its handler (rmcp handles each
/// notification in a task of its own, which could reorder them there): every progress
/// notification the upstream sent before its answer reaches the client before the answer, in
/// the upstream's order. The conformance suite checks this too, and it failed on a busy CI
/// machine when the proxy relayed progress from rmcp's notification tasks.
#[test]
fn progress_reaches_the_client_in_order_and_before_the_answer() {
    const STEPS: u64 = 200;
    let dir = tempfile::tempdir().unwrap();
    let config = write_policy(
        dir.path(),
        &policy("").replace(
            "policies:\n",
            "policies:\n  - \"bf:progress:tool_access:allow\"\n",
        ),
    );
    let mut proxy = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["--log", "warn", "proxy", "--config"])
        .arg(&config)
        .arg("--")
        .arg(fixture_server())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = proxy.stdin.take().unwrap();
    let mut lines = BufReader::new(proxy.stdout.take().unwrap()).lines();
    let mut send = move |message: Value| writeln!(stdin, "{message}").unwrap();
    send(
        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "wire", "version": "1"}}}),
    );
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["id"], 0, "{first}");
    send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    for round in 1..=3 {
        let token = format!("client-{round}");
        send(
            json!({"jsonrpc": "2.0", "id": round, "method": "tools/call", "params": {
            "name": "progress", "arguments": {"steps": STEPS},
            "_meta": {"progressToken": token}}}),
        );
        let mut steps = Vec::new();
        loop {
            let line = lines.next().expect("the proxy closed stdout").unwrap();
            let message: Value = serde_json::from_str(&line).unwrap();
            if message["id"] == round {
                assert!(message["result"].is_object(), "{message}");
                break;
            }
            assert_eq!(message["method"], "notifications/progress", "{message}");
            assert_eq!(
                message["params"]["progressToken"],
                token.as_str(),
                "{message}"
            );
            steps.push(message["params"]["progress"].as_f64().unwrap() as u64);
        }
        let expected: Vec<u64> = (1..=STEPS).collect();
        assert_eq!(
            steps, expected,
            "round {round}: progress before the answer, in order"
        );
    }
    drop(send); // closes the proxy's stdin: the session ends
    assert!(proxy.wait().unwrap().success());
}

#[tokio::test]
async fn http_bodies_over_the_cap_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_policy(dir.path(), &policy("  auth: { mode: fixed }"));
    let mut proxy = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"));
    proxy
        .args(["--log", "warn", "proxy", "--config"])
        .arg(&config)
        .args(["--listen", "127.0.0.1:0", "--max-body-bytes", "1024", "--"])
        .arg(fixture_server());
    let proxy = spawn_announcing(proxy, true);
    let mut s = std::net::TcpStream::connect(&proxy.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"pad":"{}"}}}}"#,
        "x".repeat(4096)
    );
    write!(
        s,
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 413"), "{out}");
}
