//! What the MCP policy layer adds to a tools/call, against the same server without it, with
//! the same client in the same run; and tools/call throughput over HTTP with 64 concurrent
//! clients, directly and through the proxy.
//!
//! ```sh
//! cargo bench -p portcullis --bench mcp                 # everything (about a minute)
//! cargo bench -p portcullis --bench mcp -- latency      # only the latency part
//! cargo bench -p portcullis --bench mcp -- throughput   # only the throughput part
//! ```
//!
//! Latency: one client calls sequentially, on a single-threaded runtime (see `current_thread`);
//! bare and policed servers are measured in alternating blocks so machine noise hits both
//! alike. "cpu/call" is this process's CPU time per call (for stdio, the client's only).
//! Transports:
//! - in process: an in-memory pipe with stdio's framing (the layer's cost with the least
//!   transport noise around it);
//! - stdio: the server is this bench binary re-run as a child process (real OS pipes);
//! - HTTP: streamable HTTP on loopback (rmcp's server behind axum; rmcp's reqwest client).
//!
//! Policed means `PolicyLayer::wrap` around the same server: identity, snapshot load, the before
//! phase (tool_access), the inner call, the after phase (field_access redaction of a nested
//! path, structured content and JSON text alike), and the audit event per decision. The
//! `macaroon` rows also verify a bearer token on every request (cached after the first).
//!
//! Throughput: 64 rmcp clients over streamable HTTP on loopback, each calling `echo` in a loop
//! for a fixed time. "direct" is the bare server; "proxy" is `portcullis::proxy::serve_http`
//! (policy layer + forwarding) with the upstream in the same process (`UpstreamSpec::InProcess`),
//! so the number is the proxy's own capacity, not an upstream's.

mod harness;
#[path = "../tests/mcp_fixture/mod.rs"]
mod mcp_fixture;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mcp_fixture::{FixtureServer, call};
use portcullis::Engine;
use portcullis::mcp::http::HttpOptions;
use portcullis::mcp::{Authenticator, PolicyLayer, Transport};
use portcullis::proxy::{InProcess, ProxyOptions, UpstreamSpec};
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::streamable_http_server::StreamableHttpService;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ServerHandler, ServiceExt};
use serde_json::json;
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

// The allocator the `portcullis` binary uses, so the numbers are the shipped proxy's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Environment variable that makes this binary an MCP server on stdio (`bare` or `policed`).
const SERVE_ENV: &str = "PORTCULLIS_BENCH_SERVE";
const ROOT_KEY: &str = "bench-root-key-0123456789abcdef-0123456789";

/// A realistic policy: an allow per tool, a nested redaction, rules for other tools.
fn policy(auth: &str) -> String {
    let mut p = format!(
        "config:\n  default_effect: deny\n  auth: {auth}\npolicies:\n  - \"bf:echo:tool_access:allow\"\n  - \"bf:get_user_profile:tool_access:allow\"\n  - \"af:get_user_profile:field_access:deny:user_pii.ssn\"\n  - \"bf:admin_tool:tool_access:deny\"\n"
    );
    for i in 0..50 {
        p.push_str(&format!("  - \"bf:tool_{i}_*:tool_access:allow\"\n"));
    }
    p
}

fn engine(auth: &str) -> Arc<Engine> {
    Arc::new(Engine::from_str(&policy(auth), "bench.yaml").expect("bench policy loads"))
}

fn layer(auth: &str, transport: Transport) -> PolicyLayer {
    let engine = engine(auth);
    let env = |name: &str| (name == "PORTCULLIS_ROOT_KEY").then(|| ROOT_KEY.to_string());
    let config = engine.snapshot().config().auth.clone();
    let authenticator =
        Authenticator::from_config(&config, transport, &engine, &env).expect("bench auth config");
    PolicyLayer::new(engine).with_authenticator(Arc::new(authenticator))
}

fn token() -> String {
    use portcullis::token::{Keyring, MintSpec, RootKey, UncheckedEnforcers, encode, mint};
    let keys = Keyring::new(
        RootKey::from_secret("k1", ROOT_KEY.as_bytes()).unwrap(),
        vec![],
    )
    .unwrap();
    let spec = MintSpec {
        user: "ann".into(),
        caveats: vec!["tool = *".into()],
        ..MintSpec::default()
    };
    let now = portcullis::request::now_unix_ms();
    encode(
        &mint(&keys, &spec, now, &UncheckedEnforcers).unwrap(),
        false,
    )
    .unwrap()
}

const FIXED: &str = "{ mode: fixed, user: ann }";
const MACAROON: &str = "{ mode: macaroon }";

fn main() {
    if let Ok(which) = std::env::var(SERVE_ENV) {
        serve_stdio(&which);
        return;
    }
    portcullis::proxy::install_crypto_provider();
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wants = |part: &str| filter.as_deref().is_none_or(|f| part.contains(f));
    if wants("latency") {
        latency(&current_thread());
    }
    if wants("throughput") {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        throughput(&rt);
    }
}

/// A single-threaded runtime: latency is measured on one thread per process, where a call's
/// time is the work done for it. On a 2-core machine a multi-threaded runtime adds wake-up
/// hops that vary by tens of µs from one block to the next and swamp the layer's cost.
fn current_thread() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The child side of the stdio measurement.
fn serve_stdio(which: &str) {
    let rt = current_thread();
    rt.block_on(async {
        let io = rmcp::transport::stdio();
        match which {
            "bare" => FixtureServer.serve(io).await.unwrap().waiting().await,
            _ => {
                layer(FIXED, Transport::Stdio)
                    .wrap(FixtureServer)
                    .serve(io)
                    .await
                    .unwrap()
                    .waiting()
                    .await
            }
        }
        .unwrap();
    });
}

type Client = RunningService<RoleClient, ()>;

async fn stdio_client(which: &str) -> Client {
    let mut cmd = tokio::process::Command::new(std::env::current_exe().unwrap());
    cmd.env(SERVE_ENV, which);
    ().serve(TokioChildProcess::new(cmd).unwrap())
        .await
        .unwrap()
}

/// Serves `router` on a loopback port until `stop` fires; returns the /mcp URL.
async fn serve(router: axum::Router, stop: CancellationToken) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(async move {
        portcullis::mcp::http::serve(listener, router, stop)
            .await
            .unwrap();
    });
    url
}

/// rmcp's service alone, with the HTTP hardening `portcullis::mcp::http::router` applies (Host and
/// Origin checks, body cap), so the difference measured is the policy layer's.
fn bare_router<S: ServerHandler + Clone>(server: S, stop: CancellationToken) -> axum::Router {
    let config = HttpOptions::default().server_config(stop);
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    axum::Router::new().nest_service("/mcp", service)
}

async fn http_client(url: &str, bearer: Option<&str>) -> Client {
    let mut config = StreamableHttpClientTransportConfig::with_uri(url);
    if let Some(t) = bearer {
        config = config.auth_header(t);
    }
    ().serve(StreamableHttpClientTransport::from_config(config))
        .await
        .unwrap()
}

/// CPU time this process has used, all threads (clients and, except for stdio, servers).
fn process_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec it is given.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Per-call round trips of `params` on each client, in alternating blocks; prints p50/p99,
/// this process's CPU time per call, and for every client after the first (the bare
/// baseline) what it adds to both. `check` sees every result.
fn compare(
    rt: &Runtime,
    title: &str,
    clients: &[(&str, &Client)],
    params: &CallToolRequestParams,
    check: impl Fn(usize, &CallToolResult),
) {
    const BLOCKS: usize = 20;
    const PER_BLOCK: usize = 250;
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); clients.len()];
    let mut cpu = vec![Duration::ZERO; clients.len()];
    for (_, c) in clients {
        for _ in 0..200 {
            rt.block_on(c.call_tool(params.clone())).unwrap();
        }
    }
    for _ in 0..BLOCKS {
        for (i, (_, c)) in clients.iter().enumerate() {
            let cpu_start = process_cpu();
            for _ in 0..PER_BLOCK {
                let p = params.clone();
                let t = Instant::now();
                let r = rt.block_on(c.call_tool(p)).unwrap();
                samples[i].push(t.elapsed());
                check(i, &r);
            }
            cpu[i] += process_cpu() - cpu_start;
        }
    }
    println!("\n{title}");
    let mut base = None;
    for (((label, _), s), cpu) in clients.iter().zip(samples).zip(cpu) {
        let n = s.len();
        let cpu_per_call = cpu.as_secs_f64() * 1e6 / n as f64;
        let (p50, p99) = harness::percentiles(s);
        let added = match base {
            None => {
                base = Some((p50, cpu_per_call));
                String::new()
            }
            Some((b, b_cpu)) => format!(
                "   added: p50 {:>+6.1} µs (ratio {:.2}), cpu {:>+6.1} µs",
                (p50.as_secs_f64() - b.as_secs_f64()) * 1e6,
                p50.as_secs_f64() / b.as_secs_f64(),
                cpu_per_call - b_cpu
            ),
        };
        println!(
            "  {label:<32} p50 {:>7.1} µs  p99 {:>7.1} µs  cpu/call {cpu_per_call:>6.1} µs{added}",
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6
        );
    }
}

/// Every call allowed; the profile's SSN redacted by every policed server (index > 0).
fn allowed_and_redacted(i: usize, r: &CallToolResult) {
    assert_ne!(r.is_error, Some(true), "the call was refused: {r:?}");
    if let Some(s) = &r.structured_content {
        let ssn = &s["user_pii"]["ssn"];
        assert_eq!(i > 0, ssn == "[REDACTED]", "client {i}: ssn {ssn}");
    }
}

/// A client connected to `server` over an in-memory pipe (stdio framing, no OS pipes).
async fn duplex_client<S: ServerHandler>(server: S) -> Client {
    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        if let Ok(running) = server.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    ().serve(client_io).await.unwrap()
}

fn latency(rt: &Runtime) {
    let echo = call("echo", json!({"text": "hello"}));
    let profile = call("get_user_profile", json!({}));

    let (bare, policed) = rt.block_on(async {
        (
            duplex_client(FixtureServer).await,
            duplex_client(layer(FIXED, Transport::Stdio).wrap(FixtureServer)).await,
        )
    });
    let clients = [
        ("bare server", &bare),
        ("policed (fixed identity)", &policed),
    ];
    compare(
        rt,
        "in process (in-memory pipe, stdio framing): echo",
        &clients,
        &echo,
        allowed_and_redacted,
    );
    compare(
        rt,
        "in process: get_user_profile (1 nested field redacted)",
        &clients,
        &profile,
        allowed_and_redacted,
    );

    let (bare, policed) =
        rt.block_on(async { (stdio_client("bare").await, stdio_client("policed").await) });
    let clients = [
        ("bare server", &bare),
        ("policed (fixed identity)", &policed),
    ];
    compare(
        rt,
        "stdio (child process, OS pipes): echo",
        &clients,
        &echo,
        allowed_and_redacted,
    );
    compare(
        rt,
        "stdio: get_user_profile (1 nested field redacted)",
        &clients,
        &profile,
        allowed_and_redacted,
    );
    rt.block_on(async {
        bare.cancel().await.unwrap();
        policed.cancel().await.unwrap();
    });

    let stop = CancellationToken::new();
    let policed = |auth: &str| {
        let router = portcullis::mcp::http::router(
            layer(auth, Transport::Http),
            || Ok(FixtureServer),
            &HttpOptions::default(),
            stop.clone(),
        );
        serve(router, stop.clone())
    };
    let (bare, fixed, macaroon) = rt.block_on(async {
        let bare_url = serve(bare_router(FixtureServer, stop.clone()), stop.clone()).await;
        let fixed_url = policed(FIXED).await;
        let macaroon_url = policed(MACAROON).await;
        (
            http_client(&bare_url, None).await,
            http_client(&fixed_url, None).await,
            http_client(&macaroon_url, Some(&token())).await,
        )
    });
    let clients = [
        ("bare server", &bare),
        ("policed (fixed identity)", &fixed),
        ("policed (macaroon bearer token)", &macaroon),
    ];
    compare(
        rt,
        "HTTP (loopback): echo",
        &clients,
        &echo,
        allowed_and_redacted,
    );
    compare(
        rt,
        "HTTP: get_user_profile (1 nested field redacted)",
        &clients,
        &profile,
        allowed_and_redacted,
    );
    stop.cancel();
}

/// One MCP session on its own HTTP/1.1 connection, driven with hyper directly: the smallest
/// client that still speaks the protocol (initialize, initialized, then tools/call on the
/// session), so the load generator, which shares the machine's two cores, takes as little CPU
/// from the servers as it can.
struct RawSession {
    send: hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>,
    host: String,
    session: String,
    bearer: Option<String>,
}

impl RawSession {
    async fn post(&mut self, body: String) -> (http::StatusCode, http::HeaderMap, bytes::Bytes) {
        use http_body_util::BodyExt;
        let mut request = http::Request::post("/mcp")
            .header("host", &self.host)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("mcp-protocol-version", "2025-11-25");
        if !self.session.is_empty() {
            request = request.header("mcp-session-id", &self.session);
        }
        if let Some(b) = &self.bearer {
            request = request.header("authorization", format!("Bearer {b}"));
        }
        let request = request
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .unwrap();
        self.send.ready().await.unwrap();
        let response = self.send.send_request(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (parts.status, parts.headers, bytes)
    }

    async fn open(url: &str, bearer: Option<&str>) -> Self {
        let host = url
            .trim_start_matches("http://")
            .trim_end_matches("/mcp")
            .to_string();
        let tcp = tokio::net::TcpStream::connect(&host).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let (send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .unwrap();
        tokio::spawn(conn);
        let mut s = RawSession {
            send,
            host,
            session: String::new(),
            bearer: bearer.map(String::from),
        };
        let (status, headers, _) = s
            .post(
                json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "bench", "version": "1"}}})
                .to_string(),
            )
            .await;
        assert!(status.is_success(), "initialize: {status}");
        s.session = headers["mcp-session-id"].to_str().unwrap().to_string();
        let (status, _, _) = s
            .post(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_string())
            .await;
        assert!(status.is_success(), "initialized: {status}");
        s
    }

    /// One tools/call; true when the answer is a result that is not an error.
    async fn call_echo(&mut self, id: u64) -> bool {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"hello"}}}}}}"#
        );
        let (status, _, answer) = self.post(body).await;
        let answer = &answer[..];
        status.is_success()
            && memchr::memmem::find(answer, b"\"result\"").is_some()
            && memchr::memmem::find(answer, b"\"isError\":true").is_none()
    }
}

/// Calls per second from `clients` concurrent sessions over `secs` seconds.
fn load(rt: &Runtime, url: &str, bearer: Option<&str>, clients: usize, secs: u64) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let sessions: Vec<RawSession> = rt.block_on(async {
        let mut v = Vec::new();
        for _ in 0..clients {
            v.push(RawSession::open(url, bearer).await);
        }
        v
    });
    let start = Instant::now();
    let tasks: Vec<_> = sessions
        .into_iter()
        .map(|mut session| {
            let (done, stop) = (done.clone(), stop.clone());
            rt.spawn(async move {
                let mut id = 1;
                while !stop.load(Ordering::Relaxed) {
                    assert!(session.call_echo(id).await, "a throughput call failed");
                    done.fetch_add(1, Ordering::Relaxed);
                    id += 1;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    let calls = done.load(Ordering::Relaxed);
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    rt.block_on(async {
        for t in tasks {
            t.await.unwrap();
        }
    });
    calls as f64 / elapsed.as_secs_f64()
}

fn throughput(rt: &Runtime) {
    const CLIENTS: usize = 64;
    const SECS: u64 = 3;
    const ROUNDS: usize = 3;
    let stop = CancellationToken::new();
    let direct_url = rt.block_on(serve(
        bare_router(FixtureServer, stop.clone()),
        stop.clone(),
    ));
    let proxy_url = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/mcp", listener.local_addr().unwrap());
        let upstream = UpstreamSpec::InProcess(InProcess(Arc::new(|| {
            let (client_end, server_end) = tokio::io::duplex(1 << 16);
            tokio::spawn(async move {
                if let Ok(running) = FixtureServer.serve(server_end).await {
                    let _ = running.waiting().await;
                }
            });
            client_end
        })));
        let options = ProxyOptions {
            upstream,
            timeout: Duration::from_secs(30),
            http: HttpOptions::default(),
        };
        let layer = layer(MACAROON, Transport::Http);
        let stop = stop.clone();
        tokio::spawn(async move {
            portcullis::proxy::serve_http(layer, options, listener, stop)
                .await
                .unwrap();
        });
        url
    });
    let token = token();
    println!(
        "\nthroughput: {CLIENTS} concurrent clients over HTTP, tools/call echo; {ROUNDS} rounds of {SECS} s each, alternating"
    );
    // PORTCULLIS_BENCH_PROXY_SECS=N: only the proxy, for N seconds (for profiling it).
    if let Some(secs) = std::env::var("PORTCULLIS_BENCH_PROXY_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        let proxied = load(rt, &proxy_url, Some(&token), CLIENTS, secs);
        println!("  proxy only: {proxied:.0} calls/s");
        stop.cancel();
        return;
    }
    let (mut direct, mut proxied) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        direct.push(load(rt, &direct_url, None, CLIENTS, SECS));
        proxied.push(load(rt, &proxy_url, Some(&token), CLIENTS, SECS));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let rounds = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (d, p) = (rounds(&direct), rounds(&proxied));
    let (dm, pm) = (median(&mut direct), median(&mut proxied));
    println!(
        "  {:<34} median {dm:>7.0} calls/s   (rounds: {d})",
        "direct (bare server)"
    );
    println!(
        "  {:<34} median {pm:>7.0} calls/s   (rounds: {p}; {:.0}% of direct)",
        "proxy (policy + macaroon auth)",
        pm / dm * 100.0
    );
    stop.cancel();
}
