//! Shared test helpers: the policy files, the shipped enforcers, and an rmcp client that
//! answers the policy layer's approval questions.

#![allow(dead_code)] // each test binary uses a different part

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use mailroom::{Database, Mailroom, Policy};
use portcullis::mcp::Transport;
use portcullis::wasm::Runtime;
use rmcp::model::*;
use rmcp::service::{RequestContext, RoleClient, RunningService};
use rmcp::{ClientHandler, ErrorData as McpError, ServiceExt};
use serde_json::{Value, json};

/// The example's policy folder.
pub fn policies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")
}

/// A policy file of the example, by name.
pub fn policy(name: &str) -> PathBuf {
    policies().join(name)
}

/// The shipped enforcers, built by `bash enforcers/build.sh`.
pub fn dist() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../enforcers/dist")
}

/// Fails (as the host's enforcer tests do) when the shipped enforcers have not been built.
pub fn require_enforcers() {
    for name in ["business_hours", "sql_safety", "pii_guard"] {
        let path = dist().join(format!("{name}.wasm"));
        assert!(
            path.exists(),
            "{} is missing: run `bash scripts/test.sh` (it builds the enforcers)",
            path.display()
        );
    }
}

/// One sandbox per test binary. Compiled components persist under the target directory (as
/// in the host's tests), so the 12 MB JavaScript enforcer is compiled once, not every run.
pub fn runtime() -> &'static Arc<Runtime> {
    static RT: OnceLock<Arc<Runtime>> = OnceLock::new();
    RT.get_or_init(|| {
        let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wasm-cache");
        Runtime::new(Some(cache)).expect("runtime")
    })
}

/// How the test client answers approval questions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Accept,
    Decline,
    Cancel,
}

/// An rmcp client that answers every approval question with `answer`, counting and keeping
/// the questions.
#[derive(Clone)]
pub struct TestClient {
    pub answer: Answer,
    pub asked: Arc<AtomicUsize>,
    pub questions: Arc<Mutex<Vec<String>>>,
}

impl TestClient {
    pub fn new(answer: Answer) -> Self {
        TestClient {
            answer,
            asked: Arc::default(),
            questions: Arc::default(),
        }
    }

    pub fn asked(&self) -> usize {
        self.asked.load(Ordering::SeqCst)
    }

    pub fn last_question(&self) -> String {
        self.questions
            .lock()
            .unwrap()
            .last()
            .cloned()
            .unwrap_or_default()
    }
}

impl ClientHandler for TestClient {
    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, McpError> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        if let ElicitRequestParams::FormElicitationParams { message, .. } = &request {
            self.questions.lock().unwrap().push(message.clone());
        }
        Ok(match self.answer {
            Answer::Accept => {
                let mut r = ElicitResult::new(ElicitationAction::Accept);
                r.content = Some(json!({"approve": true}));
                r
            }
            Answer::Decline => ElicitResult::new(ElicitationAction::Decline),
            Answer::Cancel => ElicitResult::new(ElicitationAction::Cancel),
        })
    }

    fn get_info(&self) -> ClientConfig {
        let mut caps = ClientCapabilities::default();
        caps.elicitation = Some(ElicitationCapability::default());
        ClientConfig::new(caps, Implementation::new("mailroom-test", "1.0"))
            .with_protocol_version(ProtocolVersion::V_2025_11_25)
    }
}

pub type Client = RunningService<RoleClient, TestClient>;

/// Connects `client` over an in-memory duplex to a fresh Mailroom (in-memory database) behind
/// the policy file `name`, loaded the way `mailroom --config` loads it. `env` supplies
/// credentials (`PORTCULLIS_API_KEY`, ...).
pub async fn connect_with_env(
    name: &str,
    client: TestClient,
    env: &dyn Fn(&str) -> Option<String>,
) -> Client {
    if std::fs::read_to_string(policy(name)).is_ok_and(|t| t.contains("enforcers_dir")) {
        require_enforcers();
    }
    let policy = Policy::load(&policy(name), Transport::Stdio, Some(runtime()), env)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let server = policy
        .layer
        .wrap(Mailroom::new(Database::in_memory().unwrap()));
    serve_in_process(server, client).await
}

/// [`connect_with_env`] with no environment.
pub async fn connect(name: &str, client: TestClient) -> Client {
    connect_with_env(name, client, &|_| None).await
}

/// The bare server, without any policy: what `mailroom --no-policy` serves.
pub async fn connect_bare(client: TestClient) -> Client {
    serve_in_process(Mailroom::new(Database::in_memory().unwrap()), client).await
}

async fn serve_in_process<H: rmcp::ServerHandler>(server: H, client: TestClient) -> Client {
    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        if let Ok(running) = server.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    client.serve(client_io).await.expect("client connects")
}

/// A tools/call request for `name` with object `args`.
pub fn call(name: &str, args: Value) -> CallToolRequestParams {
    let Value::Object(m) = args else {
        panic!("tool arguments must be a JSON object")
    };
    CallToolRequestParams::new(name.to_string()).with_arguments(m)
}

/// Every text item of a result, one per line.
pub fn text(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Calls a tool; a JSON-RPC error fails the test.
pub async fn call_tool(client: &Client, name: &str, args: Value) -> CallToolResult {
    client
        .call_tool(call(name, args))
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The structured content of a successful result, checked to agree with its JSON text item.
pub fn structured(r: &CallToolResult) -> Value {
    assert_ne!(r.is_error, Some(true), "unexpected error: {}", text(r));
    let s = r
        .structured_content
        .clone()
        .unwrap_or_else(|| panic!("no structuredContent in {r:?}"));
    let from_text: Value = serde_json::from_str(&text(r))
        .unwrap_or_else(|e| panic!("text item is not JSON ({e}): {}", text(r)));
    assert_eq!(from_text, s, "the text item and structuredContent disagree");
    s
}

/// Asserts a denial: an `isError` result whose text contains every one of `needles`.
pub fn assert_denied(r: &CallToolResult, needles: &[&str]) {
    assert_eq!(r.is_error, Some(true), "expected a denial, got {}", text(r));
    let t = text(r);
    for n in needles {
        assert!(t.contains(n), "{n:?} not in {t:?}");
    }
}

/// The output schema `tools/list` advertises for `tool`.
pub async fn output_schema(client: &Client, tool: &str) -> Value {
    let tools = client.list_all_tools().await.unwrap();
    let t = tools
        .iter()
        .find(|t| t.name == tool)
        .unwrap_or_else(|| panic!("{tool} not listed"));
    Value::Object((**t.output_schema.as_ref().expect("an output schema")).clone())
}

/// Validates `instance` against `schema`, listing every violation.
pub fn schema_errors(schema: &Value, instance: &Value) -> Vec<String> {
    let validator = jsonschema::validator_for(schema).expect("a valid JSON Schema");
    validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}
