//! Fault tests: what `portcullis proxy` (the real binary, with the fixture server as a real
//! upstream process) does when something around it fails. Each test asserts the behaviour the
//! README's "Failure behaviour" section documents: a clear error to the client, the proxy
//! serving the next request or session, no panic, and the exit code where there is one.
//!
//! - the upstream killed while a call is in flight (stdio and HTTP downstream, command and
//!   HTTP upstream);
//! - the upstream hanging (the timeout);
//! - the client going away while it is being asked to approve a call (stdio EOF, an HTTP
//!   connection dropped, a session deleted, a call cancelled and answered anyway);
//! - the enforcers folder deleted while serving, and at startup;
//! - the compile cache unwritable or corrupt;
//! - the root key rotated while serving.

#![allow(deprecated)]

mod common;
mod mcp_fixture;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::*;
use rmcp::service::{RequestContext, RoleClient, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, ErrorData as McpError, ServiceExt};
use serde_json::{Value, json};

use common::{Body, enforcer_module};
use mcp_fixture::{CALL_LOG_ENV, CANCEL_MARK_ENV, call, fixture_server, text};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

// ------------------------------------------------------------------------------ helpers

/// A client that can be asked (and approves) and that answers the upstream's own questions.
#[derive(Clone)]
struct Client;

impl ClientHandler for Client {
    async fn create_elicitation(
        &self,
        _: ElicitRequestParams,
        _: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, McpError> {
        let mut r = ElicitResult::new(ElicitationAction::Accept);
        r.content = Some(json!({"approve": true, "name": "Ann"}));
        Ok(r)
    }

    fn get_info(&self) -> ClientInfo {
        let mut caps = ClientCapabilities::default();
        caps.elicitation = Some(ElicitationCapability::default());
        ClientInfo::new(caps, Implementation::new("fault-test", "1.0"))
            .with_protocol_version(ProtocolVersion::V_2025_11_25)
    }
}

/// Writes a file the way careful writers do: a hidden temp file, then a rename.
fn put(path: &Path, bytes: &[u8]) {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn policy(config: &str) -> String {
    format!(
        r#"config:
  default_effect: deny
{config}
policies:
  - "bf:echo:tool_access:allow"
  - "bf:slow:tool_access:allow"
  - "bf:delete_file:tool_access:elicit"
"#
    )
}

/// Polls `check` every 20 ms until it holds; panics after `secs` seconds.
fn eventually(what: &str, secs: u64, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within {secs} s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The processes whose parent is `pid` (from /proc; zombies excluded).
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(child) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so split after its last ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        let ppid: Option<u32> = fields.next().and_then(|p| p.parse().ok());
        if ppid == Some(pid) && state != Some("Z") {
            out.push(child);
        }
    }
    out.sort_unstable();
    out
}

/// Whether `pid` is a live process (not gone, not a zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.split_whitespace().next() != Some("Z"))
        })
        .unwrap_or(false)
}

fn kill(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

fn calls_logged(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

/// What a process wrote on stderr so far, collected by a thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<String>>);

impl Captured {
    fn drain(&self, stream: impl Read + Send + 'static) {
        let sink = self.0.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
    }

    fn drain_async(&self, stream: tokio::process::ChildStderr) {
        use tokio::io::AsyncBufReadExt;
        let sink = self.0.clone();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
    }

    fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }

    fn assert_no_panic(&self) {
        let t = self.text();
        assert!(!t.contains("panicked"), "the proxy panicked:\n{t}");
    }
}

/// `portcullis proxy` over stdio in front of the fixture server, with an rmcp client.
async fn stdio_proxy(
    config: &Path,
    extra: &[&str],
    env: &[(&str, &Path)],
) -> (RunningService<RoleClient, Client>, u32, Captured) {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(["--log", "warn", "proxy", "--config"])
        .arg(config)
        .args(extra)
        .arg("--")
        .arg(fixture_server());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let (transport, stderr) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = transport.id().unwrap();
    let captured = Captured::default();
    if let Some(stderr) = stderr {
        captured.drain_async(stderr);
    }
    (Client.serve(transport).await.unwrap(), pid, captured)
}

/// A process serving HTTP; killed when dropped.
struct Served {
    child: Child,
    addr: String,
    stderr: Captured,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the exit status.
    fn terminate(mut self) -> std::process::ExitStatus {
        kill(self.pid(), "-TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The fixture server over HTTP (it prints its address on stdout).
fn http_fixture(env: &[(&str, &Path)]) -> Served {
    let mut cmd = Command::new(fixture_server());
    cmd.args(["--http", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = lines.next().unwrap().unwrap();
    std::thread::spawn(move || for _ in lines {});
    Served {
        child,
        addr,
        stderr: Captured::default(),
    }
}

/// `portcullis proxy --listen` in front of `upstream` (a URL, or the fixture server as a
/// command, one process per session).
fn http_proxy(
    config: &Path,
    upstream: Option<&str>,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Served {
    let mut cmd = Command::new(BIN);
    cmd.args(["--log", "warn", "proxy", "--config"])
        .arg(config)
        .args(["--listen", "127.0.0.1:0"])
        .args(extra);
    match upstream {
        Some(url) => {
            cmd.args(["--upstream-url", url]);
        }
        None => {
            cmd.arg("--").arg(fixture_server());
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut reader = BufReader::new(child.stderr.take().unwrap());
    let stderr = Captured::default();
    let mut addr = String::new();
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap() > 0 {
        if let Some(rest) = line
            .trim()
            .strip_prefix("portcullis proxy: serving http://")
        {
            addr = rest.trim_end_matches("/mcp").to_string();
            break;
        }
        stderr.0.lock().unwrap().push_str(&line);
        line.clear();
    }
    assert!(
        !addr.is_empty(),
        "the proxy did not start:\n{}",
        stderr.text()
    );
    stderr.drain(reader);
    Served {
        child,
        addr,
        stderr,
    }
}

async fn http_client(url: &str, bearer: Option<&str>) -> RunningService<RoleClient, Client> {
    portcullis::proxy::install_crypto_provider();
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.to_string());
    if let Some(b) = bearer {
        config = config.auth_header(b.to_string());
    }
    Client
        .serve(StreamableHttpClientTransport::from_config(config))
        .await
        .unwrap()
}

/// A raw HTTP/1.1 exchange with the proxy's /mcp: one connection per request, so a test can
/// drop one mid-stream. Reads until `done` holds for what arrived, or the server closes.
fn raw(
    addr: &str,
    method: &str,
    session: Option<&str>,
    bearer: Option<&str>,
    body: &str,
    done: impl Fn(&str) -> bool,
) -> (TcpStream, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = format!(
        "{method} /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json, text/event-stream\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(id) = session {
        head.push_str(&format!(
            "Mcp-Session-Id: {id}\r\nMcp-Protocol-Version: 2025-11-25\r\n"
        ));
    }
    if let Some(b) = bearer {
        head.push_str(&format!("Authorization: Bearer {b}\r\n"));
    }
    write!(s, "{head}\r\n{body}").unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if done(&String::from_utf8_lossy(&got)) {
            break;
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    (s, String::from_utf8_lossy(&got).into_owned())
}

/// Opens a session (initialize + initialized) with elicitation support; returns its id.
fn raw_session(addr: &str, bearer: Option<&str>) -> String {
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {"elicitation": {}},
        "clientInfo": {"name": "fault-test", "version": "1"}}})
    .to_string();
    let (_, response) = raw(addr, "POST", None, bearer, &init, |t| {
        t.contains("\"result\"")
    });
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let session = response
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("mcp-session-id")
                .then(|| value.trim().to_string())
        })
        .expect("a session id");
    let note = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    let (_, response) = raw(addr, "POST", Some(&session), bearer, note, |_| false);
    assert!(response.starts_with("HTTP/1.1 202"), "{response}");
    session
}

/// The JSON-RPC messages in an SSE body (its `data:` lines).
fn sse_messages(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str(d.trim()).ok())
        .collect()
}

fn raw_echo(addr: &str, session: &str, id: u64) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "still here"}}})
    .to_string();
    let (_, response) = raw(addr, "POST", Some(session), None, &body, |t| {
        t.contains("\"result\"") || t.contains("\"error\"")
    });
    sse_messages(&response)
        .into_iter()
        .find(|m| m["id"] == id)
        .unwrap_or_else(|| panic!("no answer to echo: {response}"))
}

// ------------------------------------------------------------ upstream killed mid-call

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_killed_mid_call_over_stdio_gives_a_clear_error_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("policy.yaml");
    put(&config, policy("").as_bytes());
    let log = dir.path().join("calls.log");
    let (client, proxy, stderr) = stdio_proxy(&config, &[], &[(CALL_LOG_ENV, log.as_path())]).await;
    let upstream = children(proxy);
    assert_eq!(upstream.len(), 1, "one upstream process: {upstream:?}");

    let peer = client.peer().clone();
    let started = Instant::now();
    let in_flight = tokio::spawn(async move { peer.call_tool(call("slow", json!({}))).await });
    eventually("the call reached the upstream", 10, || {
        calls_logged(&log).contains("slow")
    });
    kill(upstream[0], "-KILL");
    let err = tokio::time::timeout(Duration::from_secs(10), in_flight)
        .await
        .expect("the call in flight is answered")
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(err.contains("is gone"), "{err}");
    assert!(err.contains("fixture_server"), "names the upstream: {err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "answered when the upstream died, not at the 300 s timeout"
    );
    // The next request is told the same; the proxy itself is still there.
    let next = client
        .call_tool(call("echo", json!({"text": "x"})))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        next.contains("is gone") && next.contains("restart"),
        "{next}"
    );
    assert!(alive(proxy), "the proxy process is still running");
    client.cancel().await.unwrap();
    stderr.assert_no_panic();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_killed_mid_call_over_http_other_sessions_keep_serving() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("policy.yaml");
    put(
        &config,
        policy("  auth: { mode: fixed, user: ann }").as_bytes(),
    );
    let log = dir.path().join("calls.log");
    let log_env = log.to_string_lossy().to_string();
    let proxy = http_proxy(&config, None, &[], &[(CALL_LOG_ENV, log_env.as_str())]);
    let one = http_client(&proxy.url(), None).await;
    let first = children(proxy.pid());
    let two = http_client(&proxy.url(), None).await;
    let both = children(proxy.pid());
    assert_eq!((first.len(), both.len()), (1, 2), "{first:?} {both:?}");
    let victim = first[0];

    let peer = one.peer().clone();
    let in_flight = tokio::spawn(async move { peer.call_tool(call("slow", json!({}))).await });
    eventually("the call reached the upstream", 10, || {
        calls_logged(&log).contains("slow")
    });
    kill(victim, "-KILL");
    let err = tokio::time::timeout(Duration::from_secs(10), in_flight)
        .await
        .expect("the call in flight is answered")
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(err.contains("is gone"), "{err}");

    // The other session, and a new one, are not affected.
    let r = two
        .call_tool(call("echo", json!({"text": "two"})))
        .await
        .unwrap();
    assert_eq!(text(&r), "echo: two");
    let three = http_client(&proxy.url(), None).await;
    let r = three
        .call_tool(call("echo", json!({"text": "three"})))
        .await
        .unwrap();
    assert_eq!(text(&r), "echo: three");
    // The broken session keeps saying why.
    let again = one
        .call_tool(call("echo", json!({"text": "x"})))
        .await
        .unwrap_err()
        .to_string();
    assert!(again.contains("is gone"), "{again}");
    for c in [one, two, three] {
        let _ = c.cancel().await;
    }
    proxy.stderr.assert_no_panic();
    assert!(proxy.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_upstream_killed_mid_call_gives_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("policy.yaml");
    put(
        &config,
        policy("  auth: { mode: fixed, user: ann }").as_bytes(),
    );
    let log = dir.path().join("calls.log");
    let upstream = http_fixture(&[(CALL_LOG_ENV, log.as_path())]);
    let proxy = http_proxy(&config, Some(&upstream.url()), &[], &[]);
    let client = http_client(&proxy.url(), None).await;
    let r = client
        .call_tool(call("echo", json!({"text": "up"})))
        .await
        .unwrap();
    assert_eq!(text(&r), "echo: up");

    let peer = client.peer().clone();
    let in_flight = tokio::spawn(async move { peer.call_tool(call("slow", json!({}))).await });
    eventually("the call reached the upstream", 10, || {
        calls_logged(&log).contains("slow")
    });
    let killed = Instant::now();
    drop(upstream); // SIGKILL
    // A few quick attempts to resume the response stream, then the error (not the 300 s
    // upstream timeout).
    let err = tokio::time::timeout(Duration::from_secs(20), in_flight)
        .await
        .expect("the call in flight is answered")
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(err.contains("is gone"), "{err}");
    assert!(err.contains("http://"), "names the upstream: {err}");
    eprintln!("answered {:?} after the upstream died", killed.elapsed());
    let _ = client.cancel().await;
    proxy.stderr.assert_no_panic();
    assert!(proxy.terminate().success());
}

// ------------------------------------------------------------------------ upstream hangs

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_upstream_times_out_and_the_session_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("policy.yaml");
    put(
        &config,
        policy("  auth: { mode: fixed, user: ann }").as_bytes(),
    );
    let mark = dir.path().join("cancelled");
    let mark_env = mark.to_string_lossy().to_string();
    let proxy = http_proxy(
        &config,
        None,
        &["--upstream-timeout", "2"],
        &[(CANCEL_MARK_ENV, mark_env.as_str())],
    );
    let one = http_client(&proxy.url(), None).await;
    let two = http_client(&proxy.url(), None).await;

    let peer = one.peer().clone();
    let started = Instant::now();
    let hanging = tokio::spawn(async move { peer.call_tool(call("slow", json!({}))).await });
    // Meanwhile another session is served as usual.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = two
        .call_tool(call("echo", json!({"text": "meanwhile"})))
        .await
        .unwrap();
    assert_eq!(text(&r), "echo: meanwhile");
    assert!(!hanging.is_finished());

    let err = hanging.await.unwrap().unwrap_err().to_string();
    let took = started.elapsed();
    assert!(err.contains("did not answer within 2 s"), "{err}");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(10),
        "{took:?}"
    );
    eventually("the upstream was told to stop", 5, || mark.exists());
    // The same session goes on.
    let r = one
        .call_tool(call("echo", json!({"text": "after"})))
        .await
        .unwrap();
    assert_eq!(text(&r), "echo: after");
    for c in [one, two] {
        let _ = c.cancel().await;
    }
    proxy.stderr.assert_no_panic();
    assert!(proxy.terminate().success());
}

// ------------------------------------------------------- client gone during an approval

/// Over stdio the client closing its end while it is being asked ends the session: the proxy
/// exits 0, the call is never made, and the upstream process is stopped.
#[test]
fn stdio_client_gone_during_an_approval_ends_the_session_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("policy.yaml");
    put(&config, policy("").as_bytes());
    let log = dir.path().join("calls.log");
    let mut proxy = Command::new(BIN)
        .args(["--log", "warn", "proxy", "--config"])
        .arg(&config)
        .arg("--")
        .arg(fixture_server())
        .env(CALL_LOG_ENV, &log)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = Captured::default();
    stderr.drain(proxy.stderr.take().unwrap());
    let mut stdin = proxy.stdin.take().unwrap();
    let mut stdout = BufReader::new(proxy.stdout.take().unwrap()).lines();
    let mut send = |v: Value| writeln!(stdin, "{v}").unwrap();
    send(
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {"elicitation": {}},
        "clientInfo": {"name": "fault-test", "version": "1"}}}),
    );
    let init = stdout.next().unwrap().unwrap();
    assert!(init.contains("\"result\""), "{init}");
    send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    send(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "delete_file", "arguments": {}}}));
    let asked = stdout.next().unwrap().unwrap();
    assert!(asked.contains("elicitation/create"), "{asked}");
    let upstream = children(proxy.id());
    assert_eq!(upstream.len(), 1, "{upstream:?}");

    drop(stdin); // the client is gone
    std::thread::spawn(move || for _ in stdout {});
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = proxy.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the proxy did not exit after its client left"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");
    eventually("the upstream process stopped", 5, || !alive(upstream[0]));
    assert!(
        !calls_logged(&log).contains("delete_file"),
        "the unapproved call reached the upstream"
    );
    stderr.assert_no_panic();
}

/// Over HTTP a dropped connection is not a cancellation (the client may resume the stream):
/// the question stays pending, nothing is called, other sessions are served. Deleting the
/// session (or its idle timeout) abandons it and stops the session's upstream process.
#[test]
fn http_client_gone_during_an_approval_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("policy.yaml");
    put(
        &config,
        policy("  auth: { mode: fixed, user: ann }").as_bytes(),
    );
    let log = dir.path().join("calls.log");
    let log_env = log.to_string_lossy().to_string();
    let proxy = http_proxy(&config, None, &[], &[(CALL_LOG_ENV, log_env.as_str())]);
    let session = raw_session(&proxy.addr, None);
    let upstream = children(proxy.pid());
    assert_eq!(upstream.len(), 1);

    let ask = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "delete_file", "arguments": {}}})
    .to_string();
    let (connection, seen) = raw(&proxy.addr, "POST", Some(&session), None, &ask, |t| {
        t.contains("elicitation/create")
    });
    assert!(seen.contains("elicitation/create"), "{seen}");
    drop(connection); // gone mid-stream, without a word

    let other = raw_session(&proxy.addr, None);
    let r = raw_echo(&proxy.addr, &other, 5);
    assert_eq!(r["result"]["content"][0]["text"], "echo: still here", "{r}");
    std::thread::sleep(Duration::from_millis(500));
    assert!(!calls_logged(&log).contains("delete_file"));

    let (_, deleted) = raw(&proxy.addr, "DELETE", Some(&session), None, "", |_| false);
    assert!(deleted.starts_with("HTTP/1.1 2"), "{deleted}");
    eventually("the deleted session's upstream stopped", 10, || {
        !alive(upstream[0])
    });
    assert!(
        !calls_logged(&log).contains("delete_file"),
        "the unapproved call reached the upstream"
    );
    let r = raw_echo(&proxy.addr, &other, 6);
    assert_eq!(r["result"]["content"][0]["text"], "echo: still here", "{r}");
    proxy.stderr.assert_no_panic();
    assert!(proxy.terminate().success());
}

/// A call the client cancels while being asked is abandoned then: an approval sent after the
/// cancellation does not run it.
#[test]
fn a_call_cancelled_during_its_approval_is_not_run_when_approved_later() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("policy.yaml");
    put(
        &config,
        policy("  auth: { mode: fixed, user: ann }").as_bytes(),
    );
    let log = dir.path().join("calls.log");
    let log_env = log.to_string_lossy().to_string();
    let proxy = http_proxy(&config, None, &[], &[(CALL_LOG_ENV, log_env.as_str())]);
    let session = raw_session(&proxy.addr, None);

    let ask = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "delete_file", "arguments": {}}})
    .to_string();
    let (stream, seen) = raw(&proxy.addr, "POST", Some(&session), None, &ask, |t| {
        t.contains("elicitation/create")
    });
    let question = sse_messages(&seen)
        .into_iter()
        .find(|m| m["method"] == "elicitation/create")
        .unwrap_or_else(|| panic!("no question: {seen}"));
    let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
        "params": {"requestId": 2, "reason": "changed my mind"}})
    .to_string();
    let (_, r) = raw(&proxy.addr, "POST", Some(&session), None, &cancel, |_| {
        false
    });
    assert!(r.starts_with("HTTP/1.1 202"), "{r}");
    std::thread::sleep(Duration::from_millis(300));
    let answer = json!({"jsonrpc": "2.0", "id": question["id"],
        "result": {"action": "accept", "content": {"approve": true}}})
    .to_string();
    let _ = raw(&proxy.addr, "POST", Some(&session), None, &answer, |_| {
        false
    });
    std::thread::sleep(Duration::from_millis(700));
    drop(stream);
    assert!(
        !calls_logged(&log).contains("delete_file"),
        "a cancelled call ran: {}",
        calls_logged(&log)
    );
    let r = raw_echo(&proxy.addr, &session, 3);
    assert_eq!(r["result"]["content"][0]["text"], "echo: still here", "{r}");
    proxy.stderr.assert_no_panic();
    assert!(proxy.terminate().success());
}

// --------------------------------------------------------------- enforcers folder deleted

fn gate(verdict: Body) -> Vec<u8> {
    enforcer_module("gate", verdict)
}

const GATED: &str = r#"config:
  default_effect: deny
  enforcers_dir: enf
policies:
  - "bf:echo:tool_access:allow"
  - { name: gate-guard, tools: [echo], policy: gate, action: deny }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforcers_folder_deleted_while_serving_keeps_the_last_good_policy() {
    let dir = tempfile::tempdir().unwrap();
    let enf = dir.path().join("enf");
    std::fs::create_dir(&enf).unwrap();
    put(
        &enf.join("gate.wasm"),
        &gate(Body::Verdict(0, String::new())),
    );
    let config = dir.path().join("policy.yaml");
    put(&config, GATED.as_bytes());
    let cache = dir.path().join("cache");
    let (client, _, stderr) =
        stdio_proxy(&config, &[], &[("PORTCULLIS_CACHE_DIR", cache.as_path())]).await;
    let echo = || client.call_tool(call("echo", json!({"text": "x"})));
    assert_eq!(text(&echo().await.unwrap()), "echo: x");

    std::fs::remove_dir_all(&enf).unwrap();
    eventually("the failed reload is logged", 10, || {
        stderr.text().contains("cannot read the enforcers folder")
    });
    let log = stderr.text();
    assert!(log.contains("the last good policy stays in force"), "{log}");
    let r = echo().await.unwrap();
    assert_eq!(text(&r), "echo: x", "the last good snapshot still serves");

    // The folder comes back with a gate that says no: the watcher sees it.
    let staged = dir.path().join(".enf.new");
    std::fs::create_dir(&staged).unwrap();
    put(
        &staged.join("gate.wasm"),
        &gate(Body::Verdict(1, "gate v2 says no".into())),
    );
    std::fs::rename(&staged, &enf).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = echo().await.unwrap();
        if r.is_error == Some(true) {
            assert!(text(&r).contains("gate v2 says no"), "{}", text(&r));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the restored folder was not seen"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client.cancel().await.unwrap();
    stderr.assert_no_panic();
}

#[test]
fn enforcers_folder_missing_at_startup_stops_the_proxy_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("policy.yaml");
    put(&config, GATED.as_bytes());
    let out = Command::new(BIN)
        .args(["proxy", "--config"])
        .arg(&config)
        .arg("--")
        .arg(fixture_server())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot read the enforcers folder"), "{err}");
    assert!(err.contains("the policy was not loaded"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

// ------------------------------------------------------------------- compile cache faults

/// `portcullis enforcers list --json` with the given cache directory: (exit code, whether the
/// gate came from the cache, stderr).
fn list_enforcers(config: &Path, cache: &Path) -> (Option<i32>, Option<bool>, String) {
    let out = Command::new(BIN)
        .args(["enforcers", "list", "--json", "--config"])
        .arg(config)
        .env("PORTCULLIS_CACHE_DIR", cache)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let hit = serde_json::from_str::<Value>(&stdout)
        .ok()
        .and_then(|v| v[0]["cache_hit"].as_bool());
    (
        out.status.code(),
        hit,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn gated_policy(dir: &Path) -> PathBuf {
    let enf = dir.join("enf");
    std::fs::create_dir_all(&enf).unwrap();
    put(
        &enf.join("gate.wasm"),
        &gate(Body::Verdict(0, String::new())),
    );
    let config = dir.join("policy.yaml");
    put(&config, GATED.as_bytes());
    config
}

fn cache_entries(cache: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(cache)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .collect()
}

#[test]
fn an_unusable_compile_cache_only_costs_compiling() {
    let dir = tempfile::tempdir().unwrap();
    let config = gated_policy(dir.path());

    // The cache folder cannot be created (its parent is a file): loads, warns, no cache.
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let (code, hit, err) = list_enforcers(&config, &file.join("cache"));
    assert_eq!((code, hit), (Some(0), Some(false)), "{err}");
    assert!(err.contains("compile cache disabled"), "{err}");

    // An entry cannot be written (its name is taken by a folder): loads, warns, every run.
    let cache = dir.path().join("cache");
    let (code, hit, err) = list_enforcers(&config, &cache);
    assert_eq!((code, hit), (Some(0), Some(false)), "{err}");
    let entries = cache_entries(&cache);
    assert_eq!(entries.len(), 1);
    std::fs::remove_file(&entries[0]).unwrap();
    std::fs::create_dir(&entries[0]).unwrap();
    for _ in 0..2 {
        let (code, hit, err) = list_enforcers(&config, &cache);
        assert_eq!((code, hit), (Some(0), Some(false)), "{err}");
        assert!(err.contains("compile cache: cannot write"), "{err}");
        assert!(err.contains(".cwasm"), "names the entry: {err}");
    }
}

#[test]
fn a_corrupt_compile_cache_entry_is_reported_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let config = gated_policy(dir.path());
    let cache = dir.path().join("cache");
    let (code, hit, _) = list_enforcers(&config, &cache);
    assert_eq!((code, hit), (Some(0), Some(false)));
    let (code, hit, _) = list_enforcers(&config, &cache);
    assert_eq!((code, hit), (Some(0), Some(true)), "cached");

    let entry = cache_entries(&cache).remove(0);
    for damage in ["flip", "truncate", "empty"] {
        let mut bytes = std::fs::read(&entry).unwrap();
        match damage {
            "flip" => {
                let mid = bytes.len() / 2;
                bytes[mid] ^= 0xff;
            }
            "truncate" => bytes.truncate(bytes.len() / 3),
            _ => bytes.clear(),
        }
        std::fs::write(&entry, &bytes).unwrap();
        let (code, hit, err) = list_enforcers(&config, &cache);
        assert_eq!((code, hit), (Some(0), Some(false)), "{damage}: {err}");
        assert!(err.contains("recompiling"), "{damage}: {err}");
        assert!(
            err.contains("integrity check") || err.contains("no valid header"),
            "{damage}: {err}"
        );
        let (code, hit, err) = list_enforcers(&config, &cache);
        assert_eq!((code, hit), (Some(0), Some(true)), "rebuilt: {err}");
        assert!(!err.contains("recompiling"), "{err}");
    }
}

// ----------------------------------------------------------------- root key rotation

const KEY_A: &str = "first-root-key-for-the-rotation-test-0123456789";
const KEY_B: &str = "second-root-key-for-the-rotation-test-987654321";

fn token(id: &str, secret: &str) -> String {
    use portcullis::token::{Keyring, MintSpec, RootKey, UncheckedEnforcers, encode, mint};
    let keys = Keyring::new(RootKey::from_secret(id, secret.as_bytes()).unwrap(), vec![]).unwrap();
    let spec = MintSpec {
        user: "ann".into(),
        ..MintSpec::default()
    };
    let now = portcullis::request::now_unix_ms();
    encode(
        &mint(&keys, &spec, now, &UncheckedEnforcers).unwrap(),
        false,
    )
    .unwrap()
}

fn keys_policy(keys: &str) -> String {
    policy(&format!("  auth: {{ mode: macaroon }}\n{keys}"))
}

/// The status line of an initialize presenting `bearer`, and the body.
fn initialize_with(addr: &str, bearer: &str) -> String {
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "fault-test", "version": "1"}}})
    .to_string();
    raw(addr, "POST", None, Some(bearer), &init, |t| {
        t.contains("\"result\"")
    })
    .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_key_rotation_takes_effect_at_restart_and_a_removed_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("policy.yaml");
    let (old, new) = (token("k1", KEY_A), token("k2", KEY_B));
    put(&config, keys_policy("  key_id: k1").as_bytes());
    let proxy = http_proxy(&config, None, &[], &[("PORTCULLIS_ROOT_KEY", KEY_A)]);
    let ok = |addr: &str, t: &str| initialize_with(addr, t).starts_with("HTTP/1.1 200");
    assert!(ok(&proxy.addr, &old));
    let client = http_client(&proxy.url(), Some(&old)).await;

    // Rotated in the file while serving: the running proxy says it keeps its keys.
    let rotated = "  key_id: k2\n  retired_keys: [{ id: k1, env: OLD_ROOT_KEY }]";
    put(&config, keys_policy(rotated).as_bytes());
    eventually("the restart warning", 10, || {
        proxy
            .stderr
            .text()
            .contains("keeps verifying tokens with the keys it started with")
    });
    let r = client
        .call_tool(call("echo", json!({"text": "same keys"})))
        .await
        .unwrap();
    assert_eq!(text(&r), "echo: same keys", "sessions go on");
    let refused = initialize_with(&proxy.addr, &new);
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    assert!(refused.contains(r#"unknown key id \"k2\""#), "{refused}");
    let _ = client.cancel().await;
    assert!(proxy.terminate().success());

    // Restarted with both secrets: old tokens verify under the retired key, new ones too.
    let env = [("PORTCULLIS_ROOT_KEY", KEY_B), ("OLD_ROOT_KEY", KEY_A)];
    let proxy = http_proxy(&config, None, &[], &env);
    assert!(ok(&proxy.addr, &old), "a token of the retired key");
    assert!(ok(&proxy.addr, &new), "a token of the current key");
    assert!(proxy.terminate().success());

    // A listed retired key whose secret is missing: the proxy does not start, and says why.
    let out = Command::new(BIN)
        .args(["proxy", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--")
        .arg(fixture_server())
        .env("PORTCULLIS_ROOT_KEY", KEY_B)
        .env_remove("OLD_ROOT_KEY")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("OLD_ROOT_KEY is not set"), "{err}");

    // The retired key removed, restarted: its tokens get a 401 that names the key.
    put(&config, keys_policy("  key_id: k2").as_bytes());
    let proxy = http_proxy(&config, None, &[], &[("PORTCULLIS_ROOT_KEY", KEY_B)]);
    let refused = initialize_with(&proxy.addr, &old);
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    let lower = refused.to_ascii_lowercase();
    assert!(lower.contains("www-authenticate: bearer"), "{refused}");
    assert!(refused.contains(r#"unknown key id \"k1\""#), "{refused}");
    assert!(refused.contains("retired_keys"), "says why: {refused}");
    assert!(ok(&proxy.addr, &new));
    proxy.stderr.assert_no_panic();
    assert!(proxy.terminate().success());
}
