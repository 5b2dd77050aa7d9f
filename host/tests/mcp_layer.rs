//! The MCP layer in process: rmcp's own client against a fixture server wrapped by
//! `PolicyLayer`, over an in-memory duplex stream.

#![allow(deprecated)]

mod mcp_fixture;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use mcp_fixture::{FixtureServer, call, text};
use portcullis::Engine;
use portcullis::mcp::{PolicyLayer, TOKEN_META_KEY};
use rmcp::model::*;
use rmcp::service::{RequestContext, RoleClient, RunningService};
use rmcp::{ClientHandler, ErrorData as McpError, ServiceExt};
use serde_json::{Value, json};

/// A client that answers approval questions with `answer` (None: cancel) and counts them.
#[derive(Clone)]
struct TestClient {
    answer: Option<bool>,
    elicitation: bool,
    protocol: ProtocolVersion,
    asked: Arc<AtomicUsize>,
    questions: Arc<Mutex<Vec<String>>>,
}

impl TestClient {
    fn new(answer: Option<bool>) -> Self {
        TestClient {
            answer,
            elicitation: true,
            protocol: ProtocolVersion::V_2025_11_25,
            asked: Arc::default(),
            questions: Arc::default(),
        }
    }
}

impl ClientHandler for TestClient {
    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, McpError> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        let ElicitRequestParams::FormElicitationParams { message, .. } = request else {
            return Ok(ElicitResult::new(ElicitationAction::Decline));
        };
        self.questions.lock().unwrap().push(message.clone());
        if message.contains("What is your name") {
            let mut r = ElicitResult::new(ElicitationAction::Accept);
            r.content = Some(json!({"name": "Ann"}));
            return Ok(r);
        }
        Ok(match self.answer {
            Some(true) => {
                let mut r = ElicitResult::new(ElicitationAction::Accept);
                r.content = Some(json!({"approve": true}));
                r
            }
            Some(false) => ElicitResult::new(ElicitationAction::Decline),
            None => ElicitResult::new(ElicitationAction::Cancel),
        })
    }

    fn get_info(&self) -> ClientInfo {
        let mut caps = ClientCapabilities::default();
        if self.elicitation {
            caps.elicitation = Some(ElicitationCapability::default());
        }
        ClientInfo::new(caps, Implementation::new("test-client", "1.0"))
            .with_protocol_version(self.protocol.clone())
    }
}

const POLICY: &str = r#"
config:
  default_effect: deny
  elicit_expiry: 600
policies:
  - "bf:echo:tool_access:allow"
  - "bf:admin_tool:tool_access:deny"
  - "bf:get_user_profile:tool_access:allow"
  - "af:get_user_profile:field_access:deny:user_pii.ssn"
  - "bf:read_emails:tool_access:allow"
  - "af:read_emails:field_access:elicit:emails[*].body"
  - "bf:delete_file:tool_access:elicit"
  - "bf:ask_user:tool_access:allow"
  - name: public-resources
    tools: ["resource:file:///public/*", "prompt:greet"]
    action: allow
"#;

async fn connect(
    policy: &str,
    client: TestClient,
) -> (RunningService<RoleClient, TestClient>, Arc<Engine>) {
    let engine = Arc::new(Engine::from_str(policy, "policy.yaml").unwrap());
    let layer = PolicyLayer::new(engine.clone());
    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        if let Ok(running) = layer.wrap(FixtureServer).serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    (client.serve(client_io).await.unwrap(), engine)
}

/// A pair on protocol 2026-07-28, which has no initialize handshake: both sides are told the
/// other's info directly, as a stateless session would be.
fn connect_2026(policy: &str, client: TestClient) -> RunningService<RoleClient, TestClient> {
    use rmcp::service::{RoleServer, serve_directly};
    let engine = Arc::new(Engine::from_str(policy, "policy.yaml").unwrap());
    let layer = PolicyLayer::new(engine);
    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    let client_info = client.get_info();
    let mut server_info =
        InitializeResult::new(ServerCapabilities::builder().enable_tools().build());
    server_info.protocol_version = ProtocolVersion::V_2026_07_28;
    let server = serve_directly::<RoleServer, _, _, _, _>(
        layer.wrap(FixtureServer),
        server_io,
        Some(client_info),
    );
    tokio::spawn(async move {
        let _ = server.waiting().await;
    });
    serve_directly::<RoleClient, _, _, _, _>(client, client_io, Some(server_info.into()))
}

#[tokio::test]
async fn tools_list_hides_denied_tools_and_widens_schemas() {
    let (client, _) = connect(POLICY, TestClient::new(Some(true))).await;
    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| &*t.name).collect();
    assert!(
        !names.contains(&"admin_tool"),
        "denied tool listed: {names:?}"
    );
    assert!(
        !names.contains(&"slow"),
        "default-deny tool listed: {names:?}"
    );
    for n in ["echo", "get_user_profile", "read_emails", "delete_file"] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    let profile = tools.iter().find(|t| t.name == "get_user_profile").unwrap();
    let schema = Value::Object((**profile.output_schema.as_ref().unwrap()).clone());
    let ssn = &schema["properties"]["user_pii"]["properties"]["ssn"];
    assert_eq!(ssn["anyOf"][1]["const"], "[REDACTED]", "schema: {schema}");
    assert_eq!(
        schema["$defs"]["Pii"]["properties"]["ssn"]["pattern"], "^[0-9]{3}-[0-9]{2}-[0-9]{4}$",
        "shared definition left alone"
    );
}

#[tokio::test]
async fn denied_tool_is_an_error_result_with_the_reason() {
    let (client, _) = connect(POLICY, TestClient::new(Some(true))).await;
    let r = client
        .call_tool(call("admin_tool", json!({})))
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(true));
    assert!(text(&r).contains("Denied by policy"), "{}", text(&r));
    assert!(text(&r).contains("admin_tool"), "{}", text(&r));
    let unknown = client.call_tool(call("slow", json!({}))).await.unwrap();
    assert_eq!(unknown.is_error, Some(true), "default deny");
}

#[tokio::test]
async fn allowed_tool_result_is_unchanged() {
    let (client, _) = connect(POLICY, TestClient::new(Some(true))).await;
    let r = client
        .call_tool(call("echo", json!({"text": "hi"})))
        .await
        .unwrap();
    // The same call against the bare server, same client.
    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        if let Ok(running) = FixtureServer.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    let bare = TestClient::new(None).serve(client_io).await.unwrap();
    let direct = bare
        .call_tool(call("echo", json!({"text": "hi"})))
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(&r).unwrap(),
        serde_json::to_value(&direct).unwrap()
    );
}

#[tokio::test]
async fn redaction_is_consistent_and_matches_the_advertised_schema() {
    let (client, _) = connect(POLICY, TestClient::new(Some(true))).await;
    let r = client
        .call_tool(call("get_user_profile", json!({})))
        .await
        .unwrap();
    let structured = r.structured_content.clone().unwrap();
    assert_eq!(structured["user_pii"]["ssn"], "[REDACTED]");
    assert_eq!(structured["user_pii"]["phone"], "555-0100");
    let from_text: Value = serde_json::from_str(&text(&r)).unwrap();
    assert_eq!(from_text, structured, "text and structured content agree");
    // The result validates against the schema the layer advertised (checked by hand for the
    // redacted field: the widened schema accepts the marker, the original pattern would not).
    let tools = client.list_all_tools().await.unwrap();
    let profile = tools.iter().find(|t| t.name == "get_user_profile").unwrap();
    let schema = Value::Object((**profile.output_schema.as_ref().unwrap()).clone());
    let ssn_schema = &schema["properties"]["user_pii"]["properties"]["ssn"]["anyOf"];
    assert!(
        ssn_schema
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["const"] == structured["user_pii"]["ssn"])
    );
}

#[tokio::test]
async fn elicit_tool_accept_is_remembered() {
    let client_impl = TestClient::new(Some(true));
    let asked = client_impl.asked.clone();
    let questions = client_impl.questions.clone();
    let (client, _) = connect(POLICY, client_impl).await;
    let r = client
        .call_tool(call("delete_file", json!({"path": "/tmp/x"})))
        .await
        .unwrap();
    assert_eq!(text(&r), "deleted");
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    let q = questions.lock().unwrap()[0].clone();
    assert!(q.contains("delete_file") && q.contains("10 minutes"), "{q}");
    let again = client
        .call_tool(call("delete_file", json!({"path": "/tmp/y"})))
        .await
        .unwrap();
    assert_eq!(text(&again), "deleted");
    assert_eq!(asked.load(Ordering::SeqCst), 1, "not asked twice");
    assert!(
        again
            .meta
            .as_ref()
            .is_none_or(|m| !m.0.contains_key(TOKEN_META_KEY))
    );
}

#[tokio::test]
async fn elicit_tool_decline_and_cancel_deny_and_ask_again() {
    for answer in [Some(false), None] {
        let client_impl = TestClient::new(answer);
        let asked = client_impl.asked.clone();
        let (client, _) = connect(POLICY, client_impl).await;
        for round in 1..=2 {
            let r = client
                .call_tool(call("delete_file", json!({})))
                .await
                .unwrap();
            assert_eq!(r.is_error, Some(true));
            assert!(text(&r).contains("declined"), "{}", text(&r));
            assert_eq!(asked.load(Ordering::SeqCst), round);
        }
    }
}

#[tokio::test]
async fn elicit_field_accept_shows_decline_redacts() {
    for (answer, body) in [(Some(true), "the secret plan"), (Some(false), "[REDACTED]")] {
        let client_impl = TestClient::new(answer);
        let asked = client_impl.asked.clone();
        let (client, _) = connect(POLICY, client_impl).await;
        for _ in 0..2 {
            let r = client
                .call_tool(call("read_emails", json!({})))
                .await
                .unwrap();
            let s = r.structured_content.clone().unwrap();
            assert_eq!(s["emails"][0]["body"], body);
            assert_eq!(s["emails"][1]["from"], "eve@example.com");
            let t: Value = serde_json::from_str(&text(&r)).unwrap();
            assert_eq!(t, s);
        }
        assert_eq!(asked.load(Ordering::SeqCst), 1, "answer remembered");
    }
}

#[tokio::test]
async fn client_without_elicitation_is_told_approval_is_required() {
    let mut client_impl = TestClient::new(Some(true));
    client_impl.elicitation = false;
    let (client, _) = connect(POLICY, client_impl).await;
    let r = client
        .call_tool(call("delete_file", json!({})))
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(true));
    assert!(text(&r).contains("approval required"), "{}", text(&r));
    let emails = client
        .call_tool(call("read_emails", json!({})))
        .await
        .unwrap();
    assert_eq!(
        emails.structured_content.unwrap()["emails"][0]["body"],
        "[REDACTED]"
    );
}

#[tokio::test]
async fn protocol_2026_uses_input_required_with_a_sealed_state() {
    let mut client_impl = TestClient::new(Some(true));
    client_impl.protocol = ProtocolVersion::V_2026_07_28;
    let asked = client_impl.asked.clone();
    let client = connect_2026(POLICY, client_impl);
    // The raw first round: InputRequired with our question and a sealed state.
    let first = client
        .call_tool_once(call("delete_file", json!({"path": "a"})))
        .await
        .unwrap();
    let CallToolResponse::InputRequired(ir) = first else {
        panic!("expected InputRequired, got {first:?}")
    };
    let state = ir.request_state.clone().unwrap();
    assert!(state.starts_with("pcs1."));
    // A forged approval for other arguments is refused.
    let mut responses = InputResponses::new();
    responses.insert(
        "portcullis_approval".into(),
        json!({"action": "accept", "content": {"approve": true}}),
    );
    let mut forged = call("delete_file", json!({"path": "b"}));
    forged.request_state = Some(state.clone());
    forged.input_responses = Some(responses);
    assert!(client.call_tool_once(forged).await.is_err());
    // rmcp's client drives the round trip through the elicitation handler.
    let r = client
        .call_tool(call("delete_file", json!({"path": "a"})))
        .await
        .unwrap();
    assert_eq!(text(&r), "deleted");
    assert_eq!(asked.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn resources_and_prompts_are_policed_by_uri_and_name() {
    let (client, _) = connect(POLICY, TestClient::new(Some(true))).await;
    let resources = client.list_all_resources().await.unwrap();
    let uris: Vec<&str> = resources.iter().map(|r| r.uri.as_str()).collect();
    assert_eq!(uris, ["file:///public/readme.txt"]);
    let ok = client
        .read_resource(ReadResourceRequestParams::new("file:///public/readme.txt"))
        .await
        .unwrap();
    assert_eq!(ok.contents.len(), 1);
    let err = client
        .read_resource(ReadResourceRequestParams::new("file:///secret/keys.txt"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Denied by policy"), "{err}");
    let prompts = client.list_all_prompts().await.unwrap();
    let names: Vec<&str> = prompts.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["greet"]);
    assert!(
        client
            .get_prompt(GetPromptRequestParams::new("admin_prompt"))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn policy_swap_changes_the_next_decision() {
    let (client, engine) = connect(POLICY, TestClient::new(Some(true))).await;
    let r = client
        .call_tool(call("echo", json!({"text": "a"})))
        .await
        .unwrap();
    assert_ne!(r.is_error, Some(true));
    let stricter = POLICY.replace("bf:echo:tool_access:allow", "bf:echo:tool_access:deny");
    let policy = portcullis::policy::load_str(&stricter, "policy.yaml").unwrap();
    engine.swap(portcullis::Snapshot::new(policy).unwrap());
    let r = client
        .call_tool(call("echo", json!({"text": "a"})))
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(true));
}

const ROOT_KEY: &str = "mcp-layer-test-root-key-0123456789abcdef";

fn keys() -> portcullis::token::Keyring {
    portcullis::token::Keyring::new(
        portcullis::token::RootKey::from_secret("k1", ROOT_KEY.as_bytes()).unwrap(),
        vec![],
    )
    .unwrap()
}

fn mint(user: &str) -> String {
    use portcullis::token::{MintSpec, UncheckedEnforcers, encode, mint};
    let spec = MintSpec {
        user: user.into(),
        ..MintSpec::default()
    };
    encode(
        &mint(
            &keys(),
            &spec,
            portcullis::request::now_unix_ms(),
            &UncheckedEnforcers,
        )
        .unwrap(),
        false,
    )
    .unwrap()
}

/// A layer in auth mode `macaroon` over stdio (the token comes from the server's environment,
/// as `PORTCULLIS_TOKEN`): one "host". Each call makes a fresh host with no shared state.
async fn connect_with_token(
    token: &str,
    client: TestClient,
) -> Result<RunningService<RoleClient, TestClient>, String> {
    use portcullis::mcp::{Authenticator, Transport};
    use portcullis::policy::{AuthConfig, AuthMode};
    let engine = Arc::new(Engine::from_str(POLICY, "policy.yaml").unwrap());
    let config = AuthConfig {
        mode: Some(AuthMode::Macaroon),
        ..AuthConfig::default()
    };
    let token = token.to_string();
    let env = move |name: &str| match name {
        "PORTCULLIS_ROOT_KEY" => Some(ROOT_KEY.to_string()),
        "PORTCULLIS_TOKEN" => Some(token.clone()),
        _ => None,
    };
    let auth = Authenticator::from_config(&config, Transport::Stdio, &engine, &env)
        .map_err(|e| e.to_string())?;
    let layer = PolicyLayer::new(engine).with_authenticator(Arc::new(auth));
    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        if let Ok(running) = layer.wrap(FixtureServer).serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    client.serve(client_io).await.map_err(|e| e.to_string())
}

fn meta_token(r: &CallToolResult) -> Option<String> {
    r.meta
        .as_ref()?
        .0
        .get(TOKEN_META_KEY)?
        .as_str()
        .map(String::from)
}

#[tokio::test]
async fn an_approval_becomes_a_sealed_grant_in_the_token_returned_in_meta() {
    let token = mint("ann");
    let client_impl = TestClient::new(Some(true));
    let asked = client_impl.asked.clone();
    let client = connect_with_token(&token, client_impl).await.unwrap();
    let first = client
        .call_tool(call("delete_file", json!({"path": "a"})))
        .await
        .unwrap();
    assert_eq!(text(&first), "deleted");
    let refreshed = meta_token(&first).expect("the refreshed token comes back in _meta");
    assert_ne!(refreshed, token);
    // The same client, still presenting its old token: this host remembers the refreshed one.
    let second = client
        .call_tool(call("delete_file", json!({"path": "b"})))
        .await
        .unwrap();
    assert_eq!(text(&second), "deleted");
    assert_eq!(asked.load(Ordering::SeqCst), 1, "not asked again");
    assert!(meta_token(&second).is_none(), "nothing new to hand back");

    // Another host sharing the root key, no shared state: the refreshed token alone carries
    // the approval.
    let client_impl = TestClient::new(Some(false));
    let asked_elsewhere = client_impl.asked.clone();
    let elsewhere = connect_with_token(&refreshed, client_impl).await.unwrap();
    let r = elsewhere
        .call_tool(call("delete_file", json!({"path": "c"})))
        .await
        .unwrap();
    assert_eq!(text(&r), "deleted");
    assert_eq!(asked_elsewhere.load(Ordering::SeqCst), 0);

    // The old token on a fresh host still asks: the approval lives in the new token only.
    let client_impl = TestClient::new(Some(false));
    let asked_fresh = client_impl.asked.clone();
    let fresh = connect_with_token(&token, client_impl).await.unwrap();
    let r = fresh
        .call_tool(call("delete_file", json!({"path": "d"})))
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(true));
    assert_eq!(asked_fresh.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_forged_grant_in_a_returned_token_is_refused() {
    let token = mint("ann");
    let client = connect_with_token(&token, TestClient::new(Some(true)))
        .await
        .unwrap();
    let first = client
        .call_tool(call("delete_file", json!({})))
        .await
        .unwrap();
    let refreshed = meta_token(&first).unwrap();
    // Move the grant to another user's token: the seal binds it to the identifier.
    let opts = portcullis::token::VerifyOptions {
        now_unix_ms: portcullis::request::now_unix_ms(),
        user: None,
    };
    let engine = Engine::from_str(POLICY, "p.yaml").unwrap();
    let v = engine
        .verify_token(&keys(), &refreshed, &[], &opts)
        .unwrap();
    let grant = v.grants[0].to_caveat();
    let bob = mint("bob");
    let mut m = portcullis::token::decode(&bob, "token").unwrap();
    // By hand: `attenuate` itself refuses to add grant-looking caveats.
    m.add_first_party_caveat(grant.as_bytes()).unwrap();
    let forged = portcullis::token::encode(&m, false).unwrap();
    let client = connect_with_token(&forged, TestClient::new(Some(true)))
        .await
        .unwrap();
    let err = client
        .call_tool(call("delete_file", json!({})))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("unauthorized"), "{err}");
    assert!(err.to_string().contains("grant"), "{err}");
}

#[tokio::test]
async fn an_approved_field_stays_shown_for_the_token_holder() {
    let token = mint("ann");
    let client_impl = TestClient::new(Some(true));
    let asked = client_impl.asked.clone();
    let client = connect_with_token(&token, client_impl).await.unwrap();
    let first = client
        .call_tool(call("read_emails", json!({})))
        .await
        .unwrap();
    assert_eq!(
        first.structured_content.as_ref().unwrap()["emails"][0]["body"],
        "the secret plan"
    );
    let refreshed = meta_token(&first).expect("the field grant comes back in _meta");
    let client_impl = TestClient::new(Some(false));
    let asked_elsewhere = client_impl.asked.clone();
    let elsewhere = connect_with_token(&refreshed, client_impl).await.unwrap();
    let r = elsewhere
        .call_tool(call("read_emails", json!({})))
        .await
        .unwrap();
    assert_eq!(
        r.structured_content.unwrap()["emails"][0]["body"],
        "the secret plan"
    );
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    assert_eq!(asked_elsewhere.load(Ordering::SeqCst), 0);
}

/// A server whose only tool answers with a task (whose result arrives later, out of the
/// policy's sight).
struct TaskServer;

impl rmcp::ServerHandler for TaskServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn call_tool(
        &self,
        _: CallToolRequestParams,
        _: RequestContext<rmcp::service::RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let now = "2026-11-30T00:00:00Z";
        let task = Task::new("t1", TaskStatus::Working, now, now);
        Ok(CallToolResponse::Task(CreateTaskResult::new(task)))
    }
}

#[tokio::test]
async fn a_task_answer_cannot_slip_past_after_phase_rules() {
    let policy = r#"
policies:
  - "bf:report:tool_access:allow"
  - "af:report:field_access:deny:secret"
"#;
    let engine = Arc::new(Engine::from_str(policy, "policy.yaml").unwrap());
    let layer = PolicyLayer::new(engine);
    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        if let Ok(running) = layer.wrap(TaskServer).serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    let client = TestClient::new(None).serve(client_io).await.unwrap();
    let r = client
        .call_tool_once(call("report", json!({})))
        .await
        .unwrap();
    let CallToolResponse::Complete(r) = r else {
        panic!("the task went through: {r:?}")
    };
    assert_eq!(r.is_error, Some(true));
    assert!(text(&r).contains("answered with a task"), "{}", text(&r));
}
