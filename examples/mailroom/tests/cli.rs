//! The `mailroom` and `walkthrough` binaries as a user runs them: bad input, stdio with a
//! capability token, HTTP with its 401, signals, and the walkthrough end to end.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use portcullis::token::{Keyring, MintSpec, UncheckedEnforcers};
use rmcp::ServiceExt;
use rmcp::transport::TokioChildProcess;
use serde_json::json;

/// A root key for the tests (at least 32 bytes), never used anywhere else.
const ROOT_KEY: &str = "mailroom-tests-root-key-0123456789abcdef";

fn mailroom() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mailroom"));
    c.env("RUST_LOG", "warn")
        .env(
            "PORTCULLIS_CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("wasm-cache"),
        )
        .stdin(Stdio::null());
    c
}

fn run(mut c: Command) -> (Option<i32>, String) {
    let Output { status, stderr, .. } = c.output().expect("the binary runs");
    (status.code(), String::from_utf8_lossy(&stderr).into_owned())
}

#[test]
fn a_missing_policy_file_is_a_clear_error() {
    let (code, err) = run({
        let mut c = mailroom();
        c.args(["--config", "/nonexistent/policy.yaml"]);
        c
    });
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("/nonexistent/policy.yaml"), "{err}");
    assert!(err.contains("cannot read policy file"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_bad_policy_names_the_file_line_and_mistake() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.yaml");
    std::fs::write(
        &path,
        "config:\n  default_effect: deny\npolicies:\n  - \"bf:admin_tool:tool_acess:deny\"\n",
    )
    .unwrap();
    let (code, err) = run({
        let mut c = mailroom();
        c.arg("--config").arg(&path);
        c
    });
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("typo.yaml:4:"), "{err}");
    assert!(err.contains("did you mean \"tool_access\""), "{err}");
    assert!(err.contains("the policy was not loaded"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_auth_settings_and_databases_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.yaml");
    std::fs::write(
        &path,
        "config:\n  auth: { mode: api_keys, keys_file: missing-keys.yaml }\npolicies: []\n",
    )
    .unwrap();
    let (code, err) = run({
        let mut c = mailroom();
        c.arg("--config").arg(&path);
        c
    });
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("keys.yaml: config.auth") && err.contains("missing-keys.yaml"),
        "{err}"
    );

    let not_db = dir.path().join("notes.db");
    std::fs::write(
        &not_db,
        "plain text, not an SQLite database at all, honestly",
    )
    .unwrap();
    let (code, err) = run({
        let mut c = mailroom();
        c.arg("--no-policy").arg("--db").arg(&not_db);
        c
    });
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("notes.db"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn the_command_line_needs_a_policy_or_no_policy() {
    let (code, err) = run(mailroom());
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--config"), "{err}");
    let (code, err) = run({
        let mut c = mailroom();
        c.args(["--config", "x.yaml", "--no-policy"]);
        c
    });
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cannot be used with"), "{err}");
}

fn mint(user: &str, roles: &[&str], caveats: &[&str]) -> String {
    let snapshot = portcullis::engine::load_snapshot(&policy("macaroon.yaml"), None).unwrap();
    let keys = Keyring::from_config(snapshot.config(), |var| {
        (var == "PORTCULLIS_ROOT_KEY").then(|| Ok(ROOT_KEY.to_string()))
    })
    .unwrap();
    let spec = MintSpec {
        user: user.into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        ttl: Some(Duration::from_secs(600)),
        caveats: caveats.iter().map(|c| c.to_string()).collect(),
    };
    let now = portcullis::request::now_unix_ms();
    let m = portcullis::token::mint(&keys, &spec, now, &UncheckedEnforcers).unwrap();
    portcullis::token::encode(&m, false).unwrap()
}

#[tokio::test]
async fn stdio_with_a_capability_token() {
    // The token is Ann's, narrowed by her to reading tools and resources; the policy allows
    // more.
    let token = mint("ann", &["staff"], &["tool = {read_*,get_*,resource:*}"]);
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_mailroom"));
    command
        .args(["--config"])
        .arg(policy("macaroon.yaml"))
        .env("RUST_LOG", "warn")
        .env("PORTCULLIS_ROOT_KEY", ROOT_KEY)
        .env("PORTCULLIS_TOKEN", &token);
    let (transport, _) = TokioChildProcess::builder(command)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = TestClient::new(Answer::Decline)
        .serve(transport)
        .await
        .unwrap();
    let mut listed: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    listed.sort();
    assert_eq!(listed, ["get_user_profile", "read_emails"]);
    let p = call_tool(&client, "get_user_profile", json!({"user_id": "u1"})).await;
    assert_eq!(structured(&p)["user_pii"], "[REDACTED]");
    let q = call_tool(&client, "run_query", json!({"query": "SELECT 1"})).await;
    assert_denied(&q, &["the token does not permit tool \"run_query\""]);
    // Resources need the staff role, which comes from the token.
    let resources = client.list_all_resources().await.unwrap();
    assert!(!resources.is_empty());
    // Prompts are outside what the token permits.
    assert!(client.list_all_prompts().await.unwrap().is_empty());
    let _ = client.cancel().await;
}

/// Starts `mailroom ARGS --listen 127.0.0.1:0` and returns it with the address it serves.
/// The caller waits for it ([`terminate`]); the lint cannot see that through the return.
#[allow(clippy::zombie_processes)]
fn serve_http(args: &[&str]) -> (std::process::Child, String) {
    let mut child = mailroom()
        .args(args)
        .args(["--listen", "127.0.0.1:0"])
        .env("PORTCULLIS_ROOT_KEY", ROOT_KEY)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        line.clear();
        if stderr.read_line(&mut line).unwrap() == 0 || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("mailroom did not start serving: {line}");
        }
        if let Some(rest) = line.trim().strip_prefix("mailroom: serving http://") {
            let addr = rest.split('/').next().unwrap().to_string();
            // Keep draining stderr so the server never blocks on a full pipe.
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut stderr, &mut std::io::sink());
            });
            return (child, addr);
        }
    }
}

fn post_initialize(addr: &str, bearer: Option<&str>) -> String {
    let body = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "raw", "version": "1"}}
    })
    .to_string();
    let auth = bearer
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
}

fn terminate(mut child: std::process::Child) -> Option<i32> {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("mailroom did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn http_refuses_callers_without_a_token_and_stops_on_sigterm() {
    let config = policy("macaroon.yaml");
    let (child, addr) = serve_http(&["--config", config.to_str().unwrap()]);
    let refused = post_initialize(&addr, None);
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    assert!(
        refused.to_lowercase().contains("www-authenticate: bearer"),
        "{refused}"
    );
    let forged = post_initialize(&addr, Some("not-a-token"));
    assert!(forged.starts_with("HTTP/1.1 401"), "{forged}");
    let token = mint("ann", &["staff"], &[]);
    let accepted = post_initialize(&addr, Some(&token));
    assert!(accepted.starts_with("HTTP/1.1 200"), "{accepted}");
    assert!(accepted.contains("mailroom"), "{accepted}");
    assert_eq!(terminate(child), Some(0));
}

#[test]
fn http_without_a_policy_serves_anyone() {
    let (child, addr) = serve_http(&["--no-policy"]);
    let response = post_initialize(&addr, None);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert_eq!(terminate(child), Some(0));
}

#[test]
fn the_walkthrough_passes_against_the_guarded_server_and_fails_against_the_bare_one() {
    require_enforcers();
    let walkthrough = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_walkthrough"));
        c.env(
            "PORTCULLIS_CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("wasm-cache"),
        )
        .env("RUST_LOG", "warn")
        // A cold compile cache means compiling the 12 MB JavaScript enforcer first; leave
        // room for a loaded two-core CI machine.
        .args(["--start-timeout", "600", "--"])
        .arg(env!("CARGO_BIN_EXE_mailroom"));
        c
    };
    let out = walkthrough()
        .arg("--config")
        .arg(policy("mailroom.yaml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("steps behaved as expected"), "{stdout}");
    assert!(
        stdout.contains("answer: accept") && stdout.contains("answer: decline"),
        "{stdout}"
    );
    assert!(!stdout.contains("[FAIL]"), "{stdout}");

    // Without the policy the same walk must notice: the smoke test can fail.
    let bare = walkthrough().arg("--no-policy").output().unwrap();
    let stdout = String::from_utf8_lossy(&bare.stdout);
    assert_eq!(bare.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("[FAIL] tools/list"), "{stdout}");
    assert!(stdout.contains("[FAIL] admin_tool"), "{stdout}");
}
