//! Load test (issue 6): `portcullis proxy --listen` (the real binary) in front of the fixture
//! server, driven over loopback HTTP by many concurrent raw-HTTP MCP sessions for a fixed time
//! while a writer rewrites the policy file and replaces the enforcer file every 200 ms. Run it
//! with `bash bench/load.sh` (which builds release binaries and runs private copies); it is
//! too long for CI, which only builds it.
//!
//! ```sh
//! bash bench/load.sh                      # 200 clients, 60 s, a rewrite every 200 ms
//! bash bench/load.sh 50 10                # 50 clients for 10 s
//! bash bench/load.sh 200 60 200 --upstream-url   # one fixture server over HTTP for all
//! ```
//!
//! The upstream is the fixture server as a command (`portcullis proxy ... -- fixture_server`),
//! so every session has its own upstream process, as an operator wrapping a stdio server gets;
//! with `--upstream-url` one fixture server over HTTP serves every session instead. The proxy
//! runs with its default log filter, so the audit trail (one line per decision, one per
//! reload) is written under load as it would be in service; the run counts its reload lines.
//!
//! Counted: successes, policy denials (expected) and failures (anything else: a session that
//! does not open, an HTTP error, a JSON-RPC error, no answer within 30 s, or a decision no
//! complete snapshot makes). Exit status 1 on any failure, on a proxy panic or exit, on a
//! peak RSS over 512 MiB, or when the proxy's memory keeps growing.
//!
//! The policy file alternates between two versions, A and B, and the enforcer `gate.wasm`
//! between two builds, A and B, each every 200 ms, the enforcer half a period after the
//! policy (each file is written to a hidden name and renamed, so every read sees one whole
//! version). The proxy goes through all four (policy, gate) pairs, each a complete snapshot. A decision shows which version made it:
//! - version A allows `echo` and denies `admin_tool` with three rules, `vA-deny-1/2/3`, at
//!   the start, the middle and the end of the file (between filler rules); version B the
//!   other way round. A denial must name exactly the three deny rules of one version: a
//!   snapshot holding part of a file, or parts of both versions, names fewer, or a mix, or
//!   denies by default. A success shows its version by which tool it is (`echo` only A
//!   allows, `admin_tool` only B), and the same snapshot denies the other tool, so a
//!   half-loaded snapshot that allows shows itself in the denials it gives.
//! - `read_emails` is allowed by `vX-read` and guarded by `vX-gate`, a rule for the enforcer,
//!   which always denies with "gate A says no" or "gate B says no". The denial must name the
//!   rules of one policy version and carry one of the two enforcer reasons; an enforcer
//!   missing, half-written or failing gives another reason.
//!
//! The proxy's memory is read from /proc/PID/status (VmRSS every 250 ms, and VmHWM, the
//! peak): the run fails when the peak exceeds 512 MiB (`RSS_BOUND_MIB`), or when the last
//! third of the run's RSS exceeds the first third's (after a 10 s warm-up) by more than half
//! plus 32 MiB. The upstream processes' memory is reported, not bounded (it is not the
//! proxy's).

#[path = "../tests/common/mod.rs"]
mod common;
mod harness;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Body, enforcer_module};
use serde_json::{Value, json};

const ROOT_KEY: &str = "load-test-root-key-0123456789abcdef-0123456789";
/// Filler rules between the versioned ones, so the file is not trivially small.
const FILLER: usize = 40;
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
const RSS_EVERY: Duration = Duration::from_millis(250);
const WARM_UP: Duration = Duration::from_secs(10);
/// The proxy's peak RSS (VmHWM) above which the run fails.
const RSS_BOUND_MIB: u64 = 512;

fn policy(version: char) -> String {
    let (allowed, denied) = match version {
        'A' => ("echo", "admin_tool"),
        _ => ("admin_tool", "echo"),
    };
    let v = version;
    let mut p = format!(
        "config:\n  default_effect: deny\n  enforcers_dir: enf\n  auth: {{ mode: macaroon }}\npolicies:\n  - {{ name: v{v}-deny-1, tools: [{denied}], policy: tool_access, action: deny }}\n  - {{ name: v{v}-allow, tools: [{allowed}], policy: tool_access, action: allow }}\n"
    );
    for i in 0..FILLER / 2 {
        p.push_str(&format!("  - \"bf:filler_{v}_{i}_*:tool_access:allow\"\n"));
    }
    p.push_str(&format!(
        "  - {{ name: v{v}-deny-2, tools: [{denied}], policy: tool_access, action: deny }}\n  - {{ name: v{v}-read, tools: [read_emails], policy: tool_access, action: allow }}\n  - {{ name: v{v}-gate, tools: [read_emails], policy: gate, action: deny }}\n"
    ));
    for i in FILLER / 2..FILLER {
        p.push_str(&format!("  - \"bf:filler_{v}_{i}_*:tool_access:allow\"\n"));
    }
    p.push_str(&format!(
        "  - {{ name: v{v}-deny-3, tools: [{denied}], policy: tool_access, action: deny }}\n"
    ));
    p
}

fn gate(version: char) -> Vec<u8> {
    enforcer_module("gate", Body::Verdict(1, format!("gate {version} says no")))
}

/// A hidden temp file, then a rename: readers see the old or the new file, whole.
fn put(path: &Path, bytes: &[u8]) {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// What one call came to.
enum Outcome {
    Success,
    Denied,
    Failure(String),
}

/// One judged call: the outcome, the policy version its decision shows and, for the gated
/// tool, the enforcer build that gave the verdict.
struct Judged {
    outcome: Outcome,
    policy: Option<char>,
    gate: Option<char>,
}

impl Judged {
    fn failure(why: String) -> Self {
        Judged {
            outcome: Outcome::Failure(why),
            policy: None,
            gate: None,
        }
    }
}

/// Classifies one tools/call answer against the two complete versions.
fn judge(tool: &str, answer: &Value) -> Judged {
    if let Some(e) = answer.get("error") {
        return Judged::failure(format!("{tool}: JSON-RPC error {e}"));
    }
    let result = &answer["result"];
    let text = result["content"][0]["text"].as_str().unwrap_or_default();
    if result["isError"] != true {
        let policy = match (tool, text) {
            ("echo", "echo: hello") => 'A',
            ("admin_tool", "admin done") => 'B',
            _ => return Judged::failure(format!("{tool}: unexpected success {result}")),
        };
        return Judged {
            outcome: Outcome::Success,
            policy: Some(policy),
            gate: None,
        };
    }
    let decision = &result["_meta"]["portcullis/decision"];
    if decision.is_null() {
        // An error result the policy did not make (the upstream's own, or the proxy's).
        return Judged::failure(format!("{tool}: an error result with no decision: {text}"));
    }
    let rules: BTreeSet<&str> = decision["rules"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let versions: BTreeSet<char> = rules
        .iter()
        .filter_map(|r| r.strip_prefix('v').and_then(|r| r.chars().next()))
        .collect();
    let Some(&v) = versions.first().filter(|_| versions.len() == 1) else {
        return Judged::failure(format!(
            "{tool}: denied by rules of no single version: {rules:?} ({text})"
        ));
    };
    let expected: BTreeSet<String> = match (tool, v) {
        ("admin_tool", 'A') | ("echo", 'B') => (1..=3).map(|i| format!("v{v}-deny-{i}")).collect(),
        ("read_emails", _) => [format!("v{v}-gate"), format!("v{v}-read")].into(),
        _ => BTreeSet::new(),
    };
    let named: BTreeSet<String> = rules.iter().map(|r| r.to_string()).collect();
    // The gate rule's allow partner may be left out of the denial's list; the gate never.
    let consistent = if tool == "read_emails" {
        named.is_subset(&expected) && named.contains(&format!("v{v}-gate"))
    } else {
        named == expected
    };
    if !consistent {
        return Judged::failure(format!(
            "{tool}: half-loaded snapshot? rules {rules:?}, expected {expected:?} ({text})"
        ));
    }
    let gate = if tool == "read_emails" {
        match (
            text.contains("gate A says no"),
            text.contains("gate B says no"),
        ) {
            (true, false) => Some('A'),
            (false, true) => Some('B'),
            _ => {
                return Judged::failure(format!(
                    "{tool}: the gate gave no verdict of its own: {text}"
                ));
            }
        }
    } else {
        None
    };
    Judged {
        outcome: Outcome::Denied,
        policy: Some(v),
        gate,
    }
}

/// One MCP session on its own HTTP/1.1 connection (as in benches/mcp.rs): hyper directly,
/// TCP_NODELAY, the smallest client that speaks the protocol, so the load generator takes as
/// little CPU from the proxy as it can.
struct RawSession {
    send: hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>,
    host: String,
    session: String,
    bearer: String,
}

impl RawSession {
    async fn post(&mut self, body: String) -> Result<(http::HeaderMap, bytes::Bytes), String> {
        use http_body_util::BodyExt;
        let mut request = http::Request::post("/mcp")
            .header("host", &self.host)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("mcp-protocol-version", "2025-11-25")
            .header("authorization", format!("Bearer {}", self.bearer));
        if !self.session.is_empty() {
            request = request.header("mcp-session-id", &self.session);
        }
        let request = request
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        self.send
            .ready()
            .await
            .map_err(|e| format!("connection: {e}"))?;
        let response = self
            .send
            .send_request(request)
            .await
            .map_err(|e| format!("request: {e}"))?;
        let (parts, body) = response.into_parts();
        let bytes = body
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        if !parts.status.is_success() {
            return Err(format!(
                "HTTP {}: {}",
                parts.status,
                String::from_utf8_lossy(&bytes)
            ));
        }
        Ok((parts.headers, bytes))
    }

    async fn open(addr: &str, bearer: String) -> Result<Self, String> {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        let (send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let mut s = RawSession {
            send,
            host: addr.to_string(),
            session: String::new(),
            bearer,
        };
        let (headers, _) = s
            .post(
                json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "load", "version": "1"}}})
                .to_string(),
            )
            .await?;
        s.session = headers
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .ok_or("no session id")?
            .to_string();
        s.post(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_string())
            .await?;
        Ok(s)
    }

    /// One tools/call; the JSON-RPC answer with this id.
    async fn call(&mut self, id: u64, tool: &str) -> Result<Value, String> {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{{"text":"hello"}}}}}}"#
        );
        let (_, answer) = self.post(body).await?;
        let text = String::from_utf8_lossy(&answer);
        // A JSON body, or an SSE stream whose data lines are JSON-RPC messages.
        let messages: Vec<Value> = if text.trim_start().starts_with('{') {
            serde_json::from_str(&text).into_iter().collect()
        } else {
            text.lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .filter_map(|d| serde_json::from_str(d.trim()).ok())
                .collect()
        };
        messages
            .into_iter()
            .find(|m| m["id"] == id)
            .ok_or_else(|| format!("no answer with id {id} in {text}"))
    }
}

fn token(user: &str) -> String {
    use portcullis::token::{Keyring, MintSpec, RootKey, UncheckedEnforcers, encode, mint};
    let keys = Keyring::new(
        RootKey::from_secret("k1", ROOT_KEY.as_bytes()).unwrap(),
        vec![],
    )
    .unwrap();
    let spec = MintSpec {
        user: user.into(),
        ..MintSpec::default()
    };
    let now = portcullis::request::now_unix_ms();
    encode(
        &mint(&keys, &spec, now, &UncheckedEnforcers).unwrap(),
        false,
    )
    .unwrap()
}

/// VmRSS and VmHWM of `pid`, in KiB.
fn memory(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// The processes whose parent is `pid` (from /proc; zombies excluded).
fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
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
    out
}

/// A child killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Path from an environment variable, or the build's own.
fn binary(var: &str, built: PathBuf) -> PathBuf {
    std::env::var_os(var).map(PathBuf::from).unwrap_or(built)
}

/// What the run counts, shared by the client tasks.
#[derive(Default)]
struct Counts {
    success: AtomicU64,
    denied: AtomicU64,
    failed: AtomicU64,
    /// Decisions by policy version: [A, B].
    by_policy: [AtomicU64; 2],
    /// `read_emails` verdicts by (policy, gate): [AA, AB, BA, BB].
    by_pair: [AtomicU64; 4],
    /// Times a client saw the version change between two of its calls.
    flips: AtomicU64,
    samples: Mutex<Vec<String>>,
}

impl Counts {
    fn fail(&self, why: String) {
        if let Ok(mut s) = self.samples.lock()
            && s.len() < 10
        {
            s.push(why);
        }
        self.failed.fetch_add(1, Ordering::Relaxed);
    }
}

fn index(v: char) -> usize {
    usize::from(v == 'B')
}

/// The run's settings: `load [CLIENTS] [SECONDS] [REWRITE_MS] [--upstream-url]`.
struct Settings {
    clients: usize,
    secs: u64,
    every: Duration,
    http_upstream: bool,
}

fn settings() -> Result<Settings, String> {
    let mut numbers = Vec::new();
    let mut http_upstream = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--upstream-url" => http_upstream = true,
            // cargo bench passes this to harness=false benches.
            "--bench" => {}
            a => numbers.push(a.parse::<u64>().map_err(|_| {
                format!("unexpected argument {a:?}: usage: load [CLIENTS] [SECONDS] [REWRITE_MS] [--upstream-url]")
            })?),
        }
    }
    let settings = Settings {
        clients: numbers.first().copied().unwrap_or(200) as usize,
        secs: numbers.get(1).copied().unwrap_or(60),
        every: Duration::from_millis(numbers.get(2).copied().unwrap_or(200)),
        http_upstream,
    };
    if settings.clients == 0 || settings.secs == 0 || settings.every.is_zero() {
        return Err("CLIENTS, SECONDS and REWRITE_MS must be above 0".into());
    }
    Ok(settings)
}

fn main() {
    let Settings {
        clients,
        secs,
        every,
        http_upstream,
    } = settings().unwrap_or_else(|e| {
        eprintln!("load: {e}");
        std::process::exit(2)
    });
    let portcullis = binary(
        "PORTCULLIS_LOAD_BIN",
        PathBuf::from(env!("CARGO_BIN_EXE_portcullis")),
    );
    let fixture = binary("PORTCULLIS_LOAD_FIXTURE", {
        let exe = std::env::current_exe().unwrap();
        exe.parent()
            .and_then(Path::parent)
            .unwrap()
            .join("examples/fixture_server")
    });

    let dir = tempfile::tempdir().unwrap();
    let enf = dir.path().join("enf");
    std::fs::create_dir(&enf).unwrap();
    let gates = [gate('A'), gate('B')];
    let policies = [policy('A'), policy('B')];
    put(&enf.join("gate.wasm"), &gates[0]);
    let config = dir.path().join("policy.yaml");
    put(&config, policies[0].as_bytes());

    // With --upstream-url: the fixture server over HTTP, one process for every session.
    let upstream = http_upstream.then(|| {
        let mut upstream = Command::new(&fixture)
            .args(["--http", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", fixture.display()));
        let mut lines = BufReader::new(upstream.stdout.take().unwrap()).lines();
        let addr = lines.next().unwrap().unwrap();
        std::thread::spawn(move || for _ in lines {});
        (Proc(upstream), addr)
    });

    let mut command = Command::new(&portcullis);
    command
        .args(["proxy", "--config"])
        .arg(&config)
        .args(["--listen", "127.0.0.1:0"]);
    match &upstream {
        Some((_, addr)) => command
            .arg("--upstream-url")
            .arg(format!("http://{addr}/mcp")),
        None => command.arg("--").arg(&fixture),
    };
    let mut proxy = command
        .env("PORTCULLIS_ROOT_KEY", ROOT_KEY)
        .env("PORTCULLIS_CACHE_DIR", dir.path().join("cache"))
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", portcullis.display()));
    let mut stderr = BufReader::new(proxy.stderr.take().unwrap()).lines();
    let addr = loop {
        let Some(Ok(line)) = stderr.next() else {
            eprintln!("load: FAIL: the proxy exited before serving");
            drop(upstream);
            drop(dir);
            std::process::exit(1);
        };
        if let Some(rest) = line.strip_prefix("portcullis proxy: serving http://") {
            break rest.trim_end_matches("/mcp").to_string();
        }
        eprintln!("proxy: {line}");
    };
    let proxy_pid = proxy.id();
    let mut proxy = Proc(proxy);
    // The proxy's log: reloads counted, audit decisions skipped, anything else kept.
    let reloads_ok = Arc::new(AtomicU64::new(0));
    let reloads_failed = Arc::new(AtomicU64::new(0));
    let decisions_logged = Arc::new(AtomicU64::new(0));
    let proxy_log = Arc::new(Mutex::new(Vec::<String>::new()));
    let log_reader = {
        let (log, ok, failed, decisions) = (
            proxy_log.clone(),
            reloads_ok.clone(),
            reloads_failed.clone(),
            decisions_logged.clone(),
        );
        std::thread::spawn(move || {
            for line in stderr.map_while(Result::ok) {
                if line.contains("portcullis::audit: decision") {
                    decisions.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                if line.contains("policy reloaded") {
                    ok.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                if line.contains("reload failed") {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                if let Ok(mut log) = log.lock() {
                    log.push(line);
                }
            }
        })
    };

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "load: {clients} clients for {secs} s, policy and enforcer rewritten every {} ms; upstream: {}; proxy pid {proxy_pid} at {addr}",
        every.as_millis(),
        match &upstream {
            Some((_, a)) => format!("one fixture server at http://{a}/mcp"),
            None => "a fixture server process per session".to_string(),
        }
    );
    let counts = Arc::new(Counts::default());
    let opened = Instant::now();
    let sessions: Vec<(usize, RawSession)> = rt.block_on(async {
        let mut v = Vec::with_capacity(clients);
        for i in 0..clients {
            match RawSession::open(&addr, token(&format!("user{i}"))).await {
                Ok(s) => v.push((i, s)),
                Err(e) => counts.fail(format!("client {i}: the session did not open: {e}")),
            }
        }
        v
    });
    println!(
        "  {} of {clients} sessions open in {:.1} s",
        sessions.len(),
        opened.elapsed().as_secs_f64()
    );

    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();

    // The writer: each file every `every`, alternating versions, the enforcer half a period
    // after the policy, so the proxy goes through all four (policy, gate) pairs.
    let writes = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, writes, enf, config) =
            (stop.clone(), writes.clone(), enf.clone(), config.clone());
        std::thread::spawn(move || {
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(every / 2);
                n += 1;
                put(&config, policies[n % 2].as_bytes());
                std::thread::sleep(every / 2);
                put(&enf.join("gate.wasm"), &gates[n % 2]);
                writes.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    // Memory of the proxy, sampled; of its upstream processes, every 2 s.
    let rss = Arc::new(Mutex::new(Vec::<(Duration, u64)>::new()));
    let upstream_peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, rss, upstream_peak) = (stop.clone(), rss.clone(), upstream_peak.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if let Some((now, _)) = memory(proxy_pid)
                    && let Ok(mut rss) = rss.lock()
                {
                    rss.push((start.elapsed(), now));
                }
                if n.is_multiple_of(8) {
                    let total: u64 = children(proxy_pid)
                        .into_iter()
                        .filter_map(|c| memory(c).map(|(r, _)| r))
                        .sum();
                    upstream_peak.fetch_max(total, Ordering::Relaxed);
                }
                n += 1;
                std::thread::sleep(RSS_EVERY);
            }
        })
    };

    let latencies = Arc::new(Mutex::new(Vec::<Duration>::new()));
    let tasks: Vec<_> = sessions
        .into_iter()
        .map(|(i, mut session)| {
            let (stop, counts, latencies) = (stop.clone(), counts.clone(), latencies.clone());
            rt.spawn(async move {
                let tools = ["echo", "admin_tool", "read_emails"];
                let mut id = 1u64;
                let mut last_version = None;
                let mut mine = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let tool = tools[(id as usize + i) % tools.len()];
                    let t = Instant::now();
                    let answer = tokio::time::timeout(CALL_TIMEOUT, session.call(id, tool)).await;
                    mine.push(t.elapsed());
                    let judged = match answer {
                        Err(_) => Judged::failure(format!("{tool}: no answer within 30 s")),
                        Ok(Err(e)) => Judged::failure(format!("{tool}: {e}")),
                        Ok(Ok(answer)) => judge(tool, &answer),
                    };
                    match judged.outcome {
                        Outcome::Success => {
                            counts.success.fetch_add(1, Ordering::Relaxed);
                        }
                        Outcome::Denied => {
                            counts.denied.fetch_add(1, Ordering::Relaxed);
                        }
                        Outcome::Failure(why) => counts.fail(format!("client {i}: {why}")),
                    }
                    if let Some(p) = judged.policy {
                        counts.by_policy[index(p)].fetch_add(1, Ordering::Relaxed);
                        if let Some(g) = judged.gate {
                            counts.by_pair[index(p) * 2 + index(g)].fetch_add(1, Ordering::Relaxed);
                        }
                        if last_version.is_some_and(|l| l != p) {
                            counts.flips.fetch_add(1, Ordering::Relaxed);
                        }
                        last_version = Some(p);
                    }
                    id += 1;
                }
                if let Ok(mut l) = latencies.lock() {
                    l.extend(mine);
                }
            })
        })
        .collect();

    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    let elapsed = start.elapsed();
    rt.block_on(async {
        for t in tasks {
            if let Err(e) = t.await {
                counts.fail(format!("a client task failed: {e}"));
            }
        }
    });
    let load_elapsed = start.elapsed();
    writer.join().unwrap();
    sampler.join().unwrap();
    let still_running = proxy.0.try_wait().unwrap().is_none();
    let (rss_end, hwm) = memory(proxy_pid).unwrap_or((0, 0));
    let upstream_mem = match &upstream {
        Some((p, _)) => memory(p.0.id()).map(|(_, h)| h).unwrap_or(0),
        None => upstream_peak.load(Ordering::Relaxed),
    };
    let upstreams_now = children(proxy_pid).len();

    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let (s, d, f) = (
        get(&counts.success),
        get(&counts.denied),
        get(&counts.failed),
    );
    let calls_done = s + d + f;
    let lat = latencies.lock().unwrap().clone();
    let (p50, p99) = if lat.is_empty() {
        (Duration::ZERO, Duration::ZERO)
    } else {
        harness::percentiles(lat)
    };
    let rss = rss.lock().unwrap().clone();
    let third = |from: f64, to: f64| -> u64 {
        let span = elapsed.saturating_sub(WARM_UP).as_secs_f64();
        rss.iter()
            .filter(|(t, _)| {
                let x = t.saturating_sub(WARM_UP).as_secs_f64();
                *t >= WARM_UP && x >= span * from && x <= span * to
            })
            .map(|&(_, r)| r)
            .max()
            .unwrap_or(0)
    };
    let (early, late) = (third(0.0, 1.0 / 3.0), third(2.0 / 3.0, 1.0));
    let at = |secs: u64| {
        rss.iter()
            .find(|(t, _)| *t >= Duration::from_secs(secs))
            .map(|&(_, r)| format!("{} MiB", r / 1024))
            .unwrap_or_else(|| "-".into())
    };
    let mib = |k: u64| k as f64 / 1024.0;

    println!(
        "  calls: {calls_done} in {:.1} s = {:.0} calls/s (every call answered and checked)",
        load_elapsed.as_secs_f64(),
        calls_done as f64 / load_elapsed.as_secs_f64()
    );
    println!("  successes {s}, policy denials {d} (expected), failures {f}");
    println!(
        "  decided by policy A: {}, by policy B: {}; read_emails denials by (policy, gate): AA {}, AB {}, BA {}, BB {}",
        get(&counts.by_policy[0]),
        get(&counts.by_policy[1]),
        get(&counts.by_pair[0]),
        get(&counts.by_pair[1]),
        get(&counts.by_pair[2]),
        get(&counts.by_pair[3]),
    );
    println!(
        "  latency p50 {:.2} ms, p99 {:.2} ms",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
    println!(
        "  rewrites: {} (policy + enforcer each); version changes seen by clients: {}",
        get(&writes),
        get(&counts.flips),
    );
    println!(
        "  proxy RSS: {} at 5 s, {} at 30 s, {:.0} MiB at the end; peak (VmHWM) {:.0} MiB (bound {RSS_BOUND_MIB} MiB); max RSS first third {:.0} MiB, last third {:.0} MiB",
        at(5),
        at(30),
        mib(rss_end),
        mib(hwm),
        mib(early),
        mib(late)
    );
    match &upstream {
        Some(_) => println!(
            "  upstream (one fixture server) peak RSS {:.0} MiB",
            mib(upstream_mem)
        ),
        None => println!(
            "  upstream processes: {upstreams_now} running at the end, {:.0} MiB RSS together at most",
            mib(upstream_mem)
        ),
    }
    for sample in counts.samples.lock().unwrap().iter() {
        println!("  failure: {sample}");
    }

    let mut bad = Vec::new();
    if f > 0 {
        bad.push(format!("{f} failed calls"));
    }
    if s == 0 || d == 0 {
        bad.push("no successes or no denials: the check saw nothing".to_string());
    }
    if get(&counts.by_policy[0]) == 0 || get(&counts.by_policy[1]) == 0 {
        bad.push("one policy version made no decision: the rewrites were not seen".to_string());
    }
    if !still_running {
        bad.push("the proxy exited during the run".to_string());
    }
    if hwm > RSS_BOUND_MIB * 1024 {
        bad.push(format!(
            "peak RSS {:.0} MiB is over {RSS_BOUND_MIB} MiB",
            mib(hwm)
        ));
    }
    if early > 0 && late as f64 > early as f64 * 1.5 + 32.0 * 1024.0 {
        bad.push(format!(
            "RSS kept growing: {:.0} MiB in the first third, {:.0} MiB in the last",
            mib(early),
            mib(late)
        ));
    }
    // A clean shutdown still works after the load.
    if still_running {
        let _ = Command::new("kill")
            .args(["-TERM", &proxy_pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(st) = proxy.0.try_wait().unwrap() {
                break Some(st);
            }
            if Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        match status {
            Some(st) if st.success() => println!("  SIGTERM: the proxy exited 0"),
            other => bad.push(format!("no clean exit on SIGTERM: {other:?}")),
        }
    }
    drop(proxy);
    let _ = log_reader.join();
    let log = proxy_log.lock().unwrap().clone();
    println!(
        "  proxy log: {} reloads ok, {} reloads failed, {} decisions in the audit trail",
        get(&reloads_ok),
        get(&reloads_failed),
        get(&decisions_logged),
    );
    // Every call the proxy answered was decided once and audited once.
    if f == 0 && get(&decisions_logged) != s + d {
        bad.push(format!(
            "{} decisions in the audit trail for {} calls decided",
            get(&decisions_logged),
            s + d
        ));
    }
    let panics = log.iter().filter(|l| l.contains("panicked")).count();
    if panics > 0 {
        bad.push("the proxy panicked".to_string());
    }
    for line in log.iter().take(10) {
        println!("  proxy said: {line}");
    }
    if log.len() > 10 {
        println!("  ... and {} more lines", log.len() - 10);
    }
    drop(upstream);
    if bad.is_empty() {
        println!("load: PASS");
    } else {
        println!("load: FAIL: {}", bad.join("; "));
        // exit skips destructors: remove the temporary folder first.
        drop(dir);
        std::process::exit(1);
    }
}
