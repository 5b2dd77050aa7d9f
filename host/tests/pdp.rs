//! The `pdp` built-in against a stub decision point on loopback (axum): AuthZEN and OPA
//! answers, every way of failing (timeout, 500, malformed JSON, refused connection, no answer
//! at all), the decision cache, what the PDP is sent, at the engine, through the MCP layer and
//! through `portcullis eval`; and the load-time checks of `pdp` rules.

#![allow(deprecated)]

mod mcp_fixture;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use mcp_fixture::{FixtureServer, call, text};
use portcullis::mcp::PolicyLayer;
use portcullis::rules::pdp::PdpOutcome;
use portcullis::{Effect, Engine, Request, Subject};
use rmcp::ServiceExt;
use serde_json::{Value, json};

/// What the stub received: (path, JSON body), in order.
type Log = Arc<Mutex<Vec<(String, Value)>>>;

/// A stub PDP. Its answer depends on the path:
/// - `/allow`, `/deny`: AuthZEN `{"decision": true|false}`
/// - `/public`: permits when the argument `path` starts with `/public`
/// - `/slow`: answers `true` after 2 s
/// - `/error`: HTTP 500; `/garbage`: a 200 that is not JSON; `/nodecision`: `{}`;
///   `/huge`: a permit padded past 64 KiB
/// - `/moved`: a 302 to `/allow` (must not be followed)
/// - `/authed`: permits with `Authorization: Bearer pdp-key-0123`, else HTTP 401
/// - `/v1/data/mcp/allow`: OPA `{"result": true}`; `/v1/data/mcp/object`:
///   `{"result": {"allow": false}}`; `/v1/data/mcp/undefined`: `{}`
struct Stub {
    base: String,
    log: Log,
}

impl Stub {
    async fn start() -> Stub {
        let log: Log = Arc::default();
        let app = Router::new().fallback(answer).with_state(log.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Stub {
            base: format!("http://{addr}"),
            log,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn hits(&self, path: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .count()
    }

    fn last(&self) -> Value {
        self.log
            .lock()
            .unwrap()
            .last()
            .expect("a request")
            .1
            .clone()
    }
}

async fn answer(
    State(log): State<Log>,
    uri: Uri,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    let doc: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    log.lock()
        .unwrap()
        .push((uri.path().to_string(), doc.clone()));
    let ok = |v: Value| (StatusCode::OK, [("location", "/allow")], v.to_string());
    match uri.path() {
        "/allow" => ok(json!({"decision": true})),
        "/deny" => ok(json!({"decision": false})),
        "/public" => {
            let path = doc["resource"]["properties"]["arg_path"]
                .as_str()
                .unwrap_or("");
            ok(json!({"decision": path.starts_with("/public")}))
        }
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(2)).await;
            ok(json!({"decision": true}))
        }
        "/error" => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [("location", "/allow")],
            "boom".into(),
        ),
        "/garbage" => (
            StatusCode::OK,
            [("location", "/allow")],
            "<html>yes</html>".into(),
        ),
        "/nodecision" => ok(json!({})),
        // Permit.io-style: only a caller with the PDP's API key gets an answer.
        "/authed" => match headers.get("authorization").and_then(|v| v.to_str().ok()) {
            Some("Bearer pdp-key-0123") => ok(json!({"decision": true})),
            _ => (
                StatusCode::UNAUTHORIZED,
                [("location", "/allow")],
                String::new(),
            ),
        },
        "/huge" => ok(json!({"decision": true, "padding": "x".repeat(100 * 1024)})),
        "/moved" => (StatusCode::FOUND, [("location", "/allow")], String::new()),
        "/v1/data/mcp/allow" => ok(json!({"result": true})),
        "/v1/data/mcp/object" => ok(json!({"result": {"allow": false}})),
        "/v1/data/mcp/undefined" => ok(json!({})),
        _ => (
            StatusCode::NOT_FOUND,
            [("location", "/allow")],
            String::new(),
        ),
    }
}

fn engine(policy: &str) -> Engine {
    Engine::from_str(policy, "pdp.yaml").unwrap_or_else(|e| panic!("{e}"))
}

/// One compact pdp rule for `tool` with these params, under default deny.
fn compact(tool: &str, action: &str, params: &str) -> String {
    format!(
        "config: {{ default_effect: deny }}\npolicies:\n  - \"bf:{tool}:pdp:{action}:{params}\"\n"
    )
}

fn ann() -> Subject {
    Subject::user("ann").with_role("analyst")
}

/// Asks the decision points (as the MCP layer does), then decides.
async fn decide(engine: &Engine, req: &Request) -> portcullis::Decision {
    match portcullis::pdp::with_answers(engine, req, None).await {
        Some(asked) => engine.before(&asked),
        None => engine.before(req),
    }
}

#[tokio::test]
async fn authzen_permit_allows_and_refusal_denies() {
    let stub = Stub::start().await;
    let e = engine(&format!(
        "config: {{ default_effect: deny }}\npolicies:\n  - \"bf:read:pdp:deny:url={}\"\n  - \"bf:write:pdp:deny:url={}\"\n",
        stub.url("/allow"),
        stub.url("/deny")
    ));
    let d = decide(&e, &Request::new(ann(), "read", json!({}))).await;
    assert_eq!(d.effect, Effect::Allow, "{d:?}");
    assert_eq!(&*d.matched[0].policy, "pdp");
    let d = decide(&e, &Request::new(ann(), "write", json!({}))).await;
    assert_eq!(d.effect, Effect::Deny, "{d:?}");
    assert!(d.reason.contains("refuses tool \"write\""), "{}", d.reason);
    assert!(d.reason.contains(&stub.url("/deny")), "{}", d.reason);
    assert_eq!((stub.hits("/allow"), stub.hits("/deny")), (1, 1));
}

#[tokio::test]
async fn the_pdp_gets_an_authzen_request_with_arguments_as_arg_properties() {
    let stub = Stub::start().await;
    let e = engine(&compact(
        "files_*",
        "deny",
        &stub.url("/public").replace("http", "url=http"),
    ));
    let mut subject = ann();
    subject.agent = Some("claude".into());
    let req = Request::new(
        subject,
        "files_read",
        json!({"path": "/public/a.txt", "limit": 3}),
    );
    let d = decide(&e, &req).await;
    assert_eq!(d.effect, Effect::Allow, "{d:?}");
    let sent = stub.last();
    assert_eq!(sent["subject"]["type"], "user");
    assert_eq!(sent["subject"]["id"], "ann");
    assert_eq!(sent["subject"]["properties"]["roles"], json!(["analyst"]));
    assert_eq!(sent["subject"]["properties"]["agent"], "claude");
    assert_eq!(sent["action"]["name"], "tools/call");
    assert_eq!(sent["resource"]["type"], "tool");
    assert_eq!(sent["resource"]["id"], "files_read");
    assert_eq!(sent["resource"]["properties"]["arg_path"], "/public/a.txt");
    assert_eq!(sent["resource"]["properties"]["arg_limit"], 3);
    assert_eq!(sent["context"]["policy_rule"], "pdp.yaml:3");

    let secret = Request::new(ann(), "files_read", json!({"path": "/etc/shadow"}));
    assert_eq!(decide(&e, &secret).await.effect, Effect::Deny);
}

#[tokio::test]
async fn opa_mode_reads_result_or_result_allow_and_denies_an_undefined_decision() {
    let stub = Stub::start().await;
    let policy = format!(
        r#"
config: {{ default_effect: deny }}
policies:
  - name: opa-bool
    tools: [a]
    policy: pdp
    action: deny
    params: ["url={base}", "mode=opa", "path=mcp/allow"]
  - name: opa-object
    tools: [b]
    policy: pdp
    action: deny
    params: ["url={base}", "mode=opa", "path=mcp.object"]
  - name: opa-undefined
    tools: [c]
    policy: pdp
    action: deny
    params: ["url={base}/v1/data/mcp/undefined", "mode=opa"]
"#,
        base = stub.base
    );
    let e = engine(&policy);
    let d = decide(&e, &Request::new(ann(), "a", json!({"x": 1}))).await;
    assert_eq!(d.effect, Effect::Allow, "{d:?}");
    let sent = stub.last();
    assert_eq!(
        sent["input"]["resource"]["id"], "a",
        "OPA gets {{input: ...}}"
    );
    assert_eq!(sent["input"]["resource"]["properties"]["arg_x"], 1);
    let d = decide(&e, &Request::new(ann(), "b", json!({}))).await;
    assert_eq!(d.effect, Effect::Deny, "{d:?}");
    assert!(d.reason.contains("refuses"), "{}", d.reason);
    let d = decide(&e, &Request::new(ann(), "c", json!({}))).await;
    assert_eq!(d.effect, Effect::Deny, "{d:?}");
    assert!(d.reason.contains("undefined"), "{}", d.reason);
    assert!(d.reason.contains("fail closed"), "{}", d.reason);
    assert_eq!(stub.hits("/v1/data/mcp/allow"), 1);
    assert_eq!(stub.hits("/v1/data/mcp/object"), 1);
}

/// Every way a decision point can fail denies, and says how it failed.
#[tokio::test]
async fn every_failure_fails_closed_with_the_reason() {
    let stub = Stub::start().await;
    // A port nothing listens on: bind one, then let it go.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let cases = [
        (stub.url("/slow"), "did not answer within 100 ms"),
        (stub.url("/error"), "answered HTTP 500"),
        (stub.url("/garbage"), "malformed JSON"),
        (stub.url("/nodecision"), "without a decision"),
        (stub.url("/huge"), "answered with more than 64 KiB"),
        (stub.url("/moved"), "answered HTTP 302"),
        (
            format!("http://127.0.0.1:{closed}/x"),
            "could not be reached",
        ),
    ];
    // default_effect allow: only the pdp rule can deny.
    let mut policy = "config: { default_effect: allow }\npolicies:\n".to_string();
    for (i, (url, _)) in cases.iter().enumerate() {
        policy += &format!("  - \"bf:t{i}:pdp:deny:url={url}:timeout_ms=100\"\n");
    }
    let e = engine(&policy);
    for (i, (url, want)) in cases.iter().enumerate() {
        let started = std::time::Instant::now();
        let d = decide(&e, &Request::new(ann(), format!("t{i}"), json!({}))).await;
        assert_eq!(d.effect, Effect::Deny, "{url}: {d:?}");
        assert!(d.reason.contains(want), "{url}: {}", d.reason);
        assert!(d.reason.contains(&format!("PDP {url}")), "{}", d.reason);
        assert!(d.reason.contains("denied (fail closed)"), "{}", d.reason);
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{url}: the timeout bounds the wait ({:?})",
            started.elapsed()
        );
    }
    assert_eq!(stub.hits("/allow"), 0, "the redirect was not followed");
}

/// An elicit pdp rule asks the user when the PDP refuses; errors still deny outright.
#[tokio::test]
async fn an_elicit_rule_asks_on_refusal_but_denies_on_error() {
    let stub = Stub::start().await;
    let e = engine(&format!(
        "policies:\n  - \"bf:a:pdp:elicit:url={}\"\n  - \"bf:b:pdp:elicit:url={}\"\n  - \"bf:c:pdp:elicit:url={}\"\n",
        stub.url("/deny"),
        stub.url("/allow"),
        stub.url("/error")
    ));
    assert_eq!(
        decide(&e, &Request::new(ann(), "a", json!({})))
            .await
            .effect,
        Effect::Elicit
    );
    assert_eq!(
        decide(&e, &Request::new(ann(), "b", json!({})))
            .await
            .effect,
        Effect::Allow
    );
    assert_eq!(
        decide(&e, &Request::new(ann(), "c", json!({})))
            .await
            .effect,
        Effect::Deny
    );
}

/// A permit does not override another rule's deny; a refusal beats another rule's allow.
#[tokio::test]
async fn a_permit_is_an_allow_among_the_other_rules() {
    let stub = Stub::start().await;
    let e = engine(&format!(
        r#"
config: {{ default_effect: deny }}
policies:
  - "bf:*:pdp:deny:url={allow}"
  - "bf:admin:tool_access:deny"
  - "bf:special:pdp:deny:url={deny}"
  - "bf:special:tool_access:allow"
"#,
        allow = stub.url("/allow"),
        deny = stub.url("/deny")
    ));
    assert_eq!(
        decide(&e, &Request::new(ann(), "read", json!({})))
            .await
            .effect,
        Effect::Allow
    );
    assert_eq!(
        decide(&e, &Request::new(ann(), "admin", json!({})))
            .await
            .effect,
        Effect::Deny
    );
    let d = decide(&e, &Request::new(ann(), "special", json!({}))).await;
    assert_eq!(d.effect, Effect::Deny, "{d:?}");
    assert_eq!(stub.hits("/allow"), 3, "two rules for special, both asked");
    assert_eq!(stub.hits("/deny"), 1);
}

/// Rules whose subjects or conditions do not match are not asked.
#[tokio::test]
async fn only_applicable_rules_are_asked() {
    let stub = Stub::start().await;
    let e = engine(&format!(
        r#"
config: {{ default_effect: allow }}
policies:
  - name: big-queries
    tools: [query]
    subjects: {{ roles: [analyst] }}
    when: [{{ field: args.limit, op: gt, value: 100 }}]
    policy: pdp
    action: deny
    params: ["url={}"]
"#,
        stub.url("/deny")
    ));
    let small = Request::new(ann(), "query", json!({"limit": 5}));
    assert_eq!(decide(&e, &small).await.effect, Effect::Allow);
    let other = Request::new(Subject::user("bob"), "query", json!({"limit": 500}));
    assert_eq!(decide(&e, &other).await.effect, Effect::Allow);
    assert_eq!(stub.hits("/deny"), 0);
    let big = Request::new(ann(), "query", json!({"limit": 500}));
    assert_eq!(decide(&e, &big).await.effect, Effect::Deny);
    assert_eq!(stub.hits("/deny"), 1);
}

#[tokio::test]
async fn answers_are_cached_for_the_identical_request_until_the_ttl() {
    let stub = Stub::start().await;
    let e = engine(&compact(
        "read",
        "deny",
        &format!("url={}:cache_ttl_ms=400", stub.url("/allow")),
    ));
    let req = Request::new(ann(), "read", json!({"id": 1}));
    assert_eq!(decide(&e, &req).await.effect, Effect::Allow);
    let asked = portcullis::pdp::with_answers(&e, &req, None).await.unwrap();
    assert_eq!(asked.pdp[0].outcome, PdpOutcome::Permit { cached: true });
    assert!(e.before(&asked).reason.contains("allowed"));
    assert_eq!(
        stub.hits("/allow"),
        1,
        "the second identical call is answered from the cache"
    );

    let other = Request::new(ann(), "read", json!({"id": 2}));
    assert_eq!(decide(&e, &other).await.effect, Effect::Allow);
    assert_eq!(stub.hits("/allow"), 2, "other arguments, another question");
    let bob = Request::new(Subject::user("bob"), "read", json!({"id": 1}));
    decide(&e, &bob).await;
    assert_eq!(stub.hits("/allow"), 3, "another subject, another question");

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(decide(&e, &req).await.effect, Effect::Allow);
    assert_eq!(
        stub.hits("/allow"),
        4,
        "after the TTL the PDP is asked again"
    );
}

#[tokio::test]
async fn failures_are_not_cached() {
    let stub = Stub::start().await;
    let e = engine(&compact(
        "read",
        "deny",
        &format!("url={}:cache_ttl_ms=60000", stub.url("/error")),
    ));
    let req = Request::new(ann(), "read", json!({}));
    decide(&e, &req).await;
    decide(&e, &req).await;
    assert_eq!(stub.hits("/error"), 2);
}

/// Without the async step (an embedder calling `Engine::before` directly), a pdp rule denies.
#[test]
fn a_rule_whose_pdp_was_not_consulted_denies() {
    let e = engine(&compact(
        "read",
        "deny",
        "url=https://pdp.invalid/access/v1/evaluation",
    ));
    let d = e.before(&Request::new(ann(), "read", json!({})));
    assert_eq!(d.effect, Effect::Deny);
    assert!(d.reason.contains("was not consulted"), "{}", d.reason);
    assert!(d.reason.contains("fail closed"), "{}", d.reason);
}

/// A policy without pdp rules asks nothing and copies nothing.
#[tokio::test]
async fn no_pdp_rule_no_consultation() {
    let e = engine("policies: [\"bf:read:tool_access:allow\"]");
    assert!(!e.snapshot().has_pdp());
    let req = Request::new(ann(), "read", json!({}));
    assert!(
        portcullis::pdp::with_answers(&e, &req, None)
            .await
            .is_none()
    );
}

// ---- through the MCP layer ----

async fn mcp_client(policy: &str) -> rmcp::service::RunningService<rmcp::service::RoleClient, ()> {
    let engine = Arc::new(engine(policy));
    let layer = PolicyLayer::new(engine);
    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        if let Ok(running) = layer.wrap(FixtureServer).serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    ().serve(client_io).await.unwrap()
}

#[tokio::test]
async fn mcp_calls_are_decided_by_the_pdp() {
    let stub = Stub::start().await;
    let client = mcp_client(&format!(
        r#"
config: {{ default_effect: deny }}
policies:
  - "bf:echo:pdp:deny:url={public}"
  - "bf:admin_tool:pdp:deny:url={slow}:timeout_ms=150"
  - "bf:get_user_profile:pdp:deny:url={error}"
"#,
        public = stub.url("/public"),
        slow = stub.url("/slow"),
        error = stub.url("/error")
    ))
    .await;
    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| &*t.name).collect();
    assert!(
        names.contains(&"echo"),
        "a PDP may permit it: listed ({names:?})"
    );
    assert!(!names.contains(&"read_emails"), "{names:?}");
    assert_eq!(stub.log.lock().unwrap().len(), 0, "listing asks no PDP");

    let r = client
        .call_tool(call("echo", json!({"text": "hi", "path": "/public/x"})))
        .await
        .unwrap();
    assert_ne!(r.is_error, Some(true), "{}", text(&r));
    assert_eq!(text(&r), "echo: hi");
    let sent = stub.last();
    assert_eq!(sent["resource"]["properties"]["arg_text"], "hi");
    assert_eq!(sent["resource"]["properties"]["arg_path"], "/public/x");
    assert_eq!(sent["subject"]["id"], "local");

    let r = client
        .call_tool(call("echo", json!({"text": "hi", "path": "/private"})))
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(true));
    assert!(text(&r).contains("Denied by policy: PDP"), "{}", text(&r));
    assert!(text(&r).contains("refuses tool \"echo\""), "{}", text(&r));

    let started = std::time::Instant::now();
    let r = client
        .call_tool(call("admin_tool", json!({})))
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(true));
    assert!(
        text(&r).contains("did not answer within 150 ms: denied (fail closed)"),
        "{}",
        text(&r)
    );
    assert!(started.elapsed() < Duration::from_millis(1500));

    let r = client
        .call_tool(call("get_user_profile", json!({})))
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(true));
    assert!(text(&r).contains("answered HTTP 500"), "{}", text(&r));
    let meta = r
        .meta
        .as_ref()
        .unwrap()
        .0
        .get("portcullis/decision")
        .unwrap();
    assert_eq!(meta["effect"], "deny");
    client.cancel().await.unwrap();
}

/// Two pdp rules for one call are asked concurrently: two 2-second PDPs with 300 ms budgets
/// cost one budget, not two.
#[tokio::test]
async fn several_decision_points_are_asked_concurrently() {
    let stub = Stub::start().await;
    let e = engine(&format!(
        "config: {{ default_effect: allow }}\npolicies:\n  - \"bf:t:pdp:deny:url={slow}:timeout_ms=300\"\n  - \"bf:t:pdp:elicit:url={slow}:timeout_ms=300\"\n",
        slow = stub.url("/slow")
    ));
    let started = std::time::Instant::now();
    let d = decide(&e, &Request::new(ann(), "t", json!({}))).await;
    let took = started.elapsed();
    assert_eq!(d.effect, Effect::Deny);
    assert_eq!(d.matched.len(), 2, "{d:?}");
    assert!(
        took < Duration::from_millis(590),
        "asked one after the other? {took:?}"
    );
}

// ---- loading ----

#[test]
fn bad_pdp_rules_are_rejected_at_load_naming_the_line() {
    let cases = [
        (
            "\"bf:t:pdp:deny:url=ftp://pdp/x\"",
            "must be http:// or https://",
        ),
        ("\"bf:t:pdp:deny\"", "pdp needs a url parameter"),
        ("\"bf:t:pdp:allow:url=https://pdp/x\"", "deny or elicit"),
        (
            "\"af:t:pdp:deny:url=https://pdp/x\"",
            "pdp runs in the before phase",
        ),
        (
            "\"bf:t:pdp:deny:url=https://pdp/x:timeout_ms=0\"",
            "timeout_ms \"0\" is out of range",
        ),
        (
            "\"bf:t:pdp:deny:url=https://pdp/x:mode=grpc\"",
            "unknown mode \"grpc\"",
        ),
        (
            "{ tools: [t], policy: pdp, action: deny, params: [\"url=https://pdp/x\", \"cache_ttl=5\"] }",
            "unknown parameter \"cache_ttl\"",
        ),
    ];
    for (rule, want) in cases {
        let text = format!("config: {{ default_effect: deny }}\npolicies:\n  - {rule}\n");
        let err = Engine::from_str(&text, "p.yaml")
            .err()
            .expect(rule)
            .to_string();
        assert!(err.contains("p.yaml:3:"), "{rule}: {err}");
        assert!(err.contains(want), "{rule}: {err}");
    }
}

#[test]
fn a_token_cannot_carry_a_pdp_rule() {
    use portcullis::Origin;
    use portcullis::policy::Rule;
    let rule = "bf:*:pdp:deny:url=http://attacker.example/x";
    let err = Rule::from_compact(rule, Arc::from("t"), Origin::Token).unwrap_err();
    assert!(
        err.contains("a token cannot name a decision point"),
        "{err}"
    );
    assert!(Rule::from_compact(rule, Arc::from("t"), Origin::Server).is_ok());
}

// ---- the command line ----

fn write_policy(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn check_reports_bad_pdp_params_and_summarizes_good_ones() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write_policy(
        &dir,
        "policies:\n  - \"bf:t:pdp:deny:url=file:///etc/passwd\"\n",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["check", "-c"])
        .arg(&bad)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("policy.yaml:2:"), "{stderr}");
    assert!(stderr.contains("must be http:// or https://"), "{stderr}");

    let good = write_policy(
        &dir,
        "policies:\n  - \"bf:t:pdp:elicit:url=https://pdp.internal/access/v1/evaluation:cache_ttl_ms=500\"\n",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["check", "-c"])
        .arg(&good)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("asks https://pdp.internal/access/v1/evaluation (authzen, timeout 200 ms, answers cached 500 ms; a refusal does elicit, an error denies)"),
        "{stdout}"
    );
}

#[tokio::test]
async fn eval_consults_the_pdp() {
    let stub = Stub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(
        &dir,
        &format!(
            "policies:\n  - \"bf:files_*:pdp:deny:url={}\"\n  - \"bf:broken:pdp:deny:url={}\"\n",
            stub.url("/public"),
            stub.url("/error")
        ),
    );
    let run = |tool: &'static str, args: &'static str| {
        let policy = policy.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
                .env_remove("RUST_LOG")
                .args([
                    "eval", "--user", "ann", "--tool", tool, "--args", args, "-c",
                ])
                .arg(&policy)
                .output()
                .unwrap()
        })
    };
    let out = run("files_read", r#"{"path": "/public/a"}"#).await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        stub.last()["resource"]["properties"]["arg_path"],
        "/public/a"
    );
    let out = run("files_read", r#"{"path": "/etc"}"#).await.unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = run("broken", "{}").await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(stdout.contains("answered HTTP 500"), "{stdout}");
    assert!(stdout.contains("denied (fail closed)"), "{stdout}");
}

/// `token_env`: the PDP's bearer token comes from the environment at each query, never from
/// the policy; unset, the rule fails closed without asking.
#[tokio::test]
async fn token_env_sends_the_bearer_token_the_pdp_requires() {
    let stub = Stub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(
        &dir,
        &format!(
            "policies:\n  - \"bf:read:pdp:deny:url={}:token_env=TEST_PDP_KEY\"\n",
            stub.url("/authed")
        ),
    );
    let run = |key: Option<&'static str>| {
        let policy = policy.clone();
        tokio::task::spawn_blocking(move || {
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"));
            cmd.env_remove("RUST_LOG").env_remove("TEST_PDP_KEY");
            if let Some(key) = key {
                cmd.env("TEST_PDP_KEY", key);
            }
            cmd.args(["eval", "--user", "ann", "--tool", "read", "-c"])
                .arg(&policy)
                .output()
                .unwrap()
        })
    };
    let out = run(Some("pdp-key-0123")).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let out = run(Some("wrong-key")).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(stdout.contains("answered HTTP 401"), "{stdout}");
    let hits = stub.hits("/authed");
    let out = run(None).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains("environment variable TEST_PDP_KEY (its bearer token) is not set"),
        "{stdout}"
    );
    assert_eq!(stub.hits("/authed"), hits, "not asked without its token");
    let Err(bad) = Engine::from_str(
        "policies:\n  - name: r\n    tools: [t]\n    policy: pdp\n    action: deny\n    params: [url=https://pdp/x, \"token_env=Bearer abc\"]\n",
        "p.yaml",
    ) else {
        panic!("a token_env that is not a variable name loaded")
    };
    let bad = bad.to_string();
    assert!(bad.contains("is not an environment variable name"), "{bad}");
}
