//! Capability trimming (`config.hide_denied_capabilities`) and the methods let through without
//! identity or rules (`config.bypass_methods`), in process: rmcp's client against the fixture
//! server wrapped by `PolicyLayer`, identified as the policy's `auth` section says.

#![allow(deprecated)]

mod mcp_fixture;

use std::sync::Arc;

use mcp_fixture::FixtureServer;
use portcullis::Engine;
use portcullis::mcp::PolicyLayer;
use portcullis::mcp::identity::{Authenticator, Transport};
use rmcp::model::*;
use rmcp::service::{RoleClient, RunningService};
use rmcp::{ServiceError, ServiceExt};

const KEYS: &str = r#"{"key-ann-0123456789": {"user": "ann", "roles": ["staff"]},
                       "key-olga-0123456789": {"user": "olga", "roles": ["ops"]}}"#;

/// Connects a client to the fixture server behind a layer built from `policy`, over stdio
/// identity with `api_key` (if any) as the client's `PORTCULLIS_API_KEY`.
async fn connect(policy: &str, api_key: Option<&str>) -> RunningService<RoleClient, ()> {
    let engine = Arc::new(Engine::from_str(policy, "policy.yaml").unwrap());
    let env = |name: &str| match name {
        "TEST_KEYS" => Some(KEYS.to_string()),
        "PORTCULLIS_API_KEY" => api_key.map(String::from),
        _ => None,
    };
    let config = engine.snapshot().config().auth.clone();
    let auth = Authenticator::from_config(&config, Transport::Stdio, &engine, &env).unwrap();
    let layer = PolicyLayer::new(engine).with_authenticator(Arc::new(auth));
    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        if let Ok(running) = layer.wrap(FixtureServer).serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    ().serve(client_io).await.unwrap()
}

fn policy(config: &str, rules: &str) -> String {
    format!(
        "config:\n  default_effect: deny\n  auth: {{ mode: api_keys, keys_env: TEST_KEYS }}\n{config}policies:\n{rules}"
    )
}

/// Tools, resources and prompts for role ops only; `echo` for everyone when `echo_for_all`.
fn ops_rules(echo_for_all: bool) -> String {
    let mut rules = String::from(
        r#"  - name: ops-tools
    tools: ["*"]
    subjects: { roles: [ops] }
    action: allow
  - name: ops-files
    tools: ["resource:file:///*", "prompt:*"]
    subjects: { roles: [ops] }
    action: allow
"#,
    );
    if echo_for_all {
        rules.push_str("  - \"bf:echo:tool_access:allow\"\n");
    }
    rules
}

/// (tools, resources, prompts) announced in the client's `initialize` answer.
fn announced(client: &RunningService<RoleClient, ()>) -> (bool, bool, bool) {
    let caps = &client.peer_info().expect("initialized").capabilities;
    (
        caps.tools.is_some(),
        caps.resources.is_some(),
        caps.prompts.is_some(),
    )
}

#[tokio::test]
async fn capabilities_the_caller_may_use_none_of_are_left_out_of_initialize() {
    let trim = "  hide_denied_capabilities: true\n";
    let ann = Some("key-ann-0123456789");
    let olga = Some("key-olga-0123456789");

    let client = connect(&policy(trim, &ops_rules(false)), ann).await;
    assert_eq!(
        announced(&client),
        (false, false, false),
        "ann may use nothing"
    );
    client.cancel().await.unwrap();

    let client = connect(&policy(trim, &ops_rules(false)), olga).await;
    assert_eq!(announced(&client), (true, true, true), "ops may use all");
    client.cancel().await.unwrap();

    let client = connect(&policy(trim, &ops_rules(true)), ann).await;
    assert_eq!(
        announced(&client),
        (true, false, false),
        "ann may use echo only"
    );
    client.cancel().await.unwrap();

    let client = connect(&policy("", &ops_rules(false)), ann).await;
    assert_eq!(
        announced(&client),
        (true, true, true),
        "trimming is off by default"
    );
    client.cancel().await.unwrap();

    // Resources and prompts the policy does not speak about are not policed, so not trimmed.
    let tools_only =
        "  - name: ops\n    tools: [echo]\n    subjects: { roles: [ops] }\n    action: allow\n";
    let client = connect(&policy(trim, tools_only), ann).await;
    assert_eq!(announced(&client), (false, true, true));
    client.cancel().await.unwrap();

    // A caller who cannot be identified may use nothing.
    let client = connect(&policy(trim, &ops_rules(true)), None).await;
    assert_eq!(announced(&client), (false, false, false));
    client.cancel().await.unwrap();
}

fn refused(e: ServiceError) -> String {
    match e {
        ServiceError::McpError(e) => e.message.into_owned(),
        other => panic!("expected a JSON-RPC error, got {other}"),
    }
}

#[tokio::test]
async fn bypassed_methods_pass_without_identity_and_the_others_need_it() {
    // No API key: the default bypass list lets the handshake and ping through, nothing else.
    let client = connect(&policy("", &ops_rules(true)), None).await;
    client
        .send_request(ClientRequest::PingRequest(Default::default()))
        .await
        .unwrap();
    let e = refused(client.list_all_tools().await.unwrap_err());
    assert!(
        e.contains("no credential: set the environment variable PORTCULLIS_API_KEY"),
        "{e}"
    );
    let e = refused(client.list_all_prompts().await.unwrap_err());
    assert!(e.contains("no credential"), "{e}");
    client.cancel().await.unwrap();

    // tools/list bypassed: listed in full, unfiltered; ping no longer bypassed: refused.
    let bypass = "  bypass_methods: [initialize, \"notifications/*\", tools/list]\n";
    let client = connect(&policy(bypass, &ops_rules(true)), None).await;
    let tools = client.list_all_tools().await.unwrap();
    assert!(
        tools.iter().any(|t| t.name == "admin_tool"),
        "unfiltered: {tools:?}"
    );
    let e = refused(
        client
            .send_request(ClientRequest::PingRequest(Default::default()))
            .await
            .unwrap_err(),
    );
    assert!(e.contains("no credential"), "{e}");
    // A call is never bypassed.
    let r = client
        .call_tool(mcp_fixture::call("echo", serde_json::json!({"text": "x"})))
        .await;
    assert!(r.is_err(), "{r:?}");
    client.cancel().await.unwrap();

    // With a key, the same listing bypassed is still unfiltered; not bypassed, it is filtered.
    let client = connect(
        &policy(bypass, &ops_rules(true)),
        Some("key-ann-0123456789"),
    )
    .await;
    assert!(client.list_all_tools().await.unwrap().len() > 1);
    client.cancel().await.unwrap();
    let client = connect(&policy("", &ops_rules(true)), Some("key-ann-0123456789")).await;
    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(names, ["echo"]);
    client.cancel().await.unwrap();
}

#[test]
fn bypassing_a_decided_method_is_refused_at_its_line() {
    let text = policy(
        "  bypass_methods:\n    - ping\n    - tools/*\n",
        "  - \"bf:echo:tool_access:allow\"\n",
    );
    let e = portcullis::policy::load_str(&text, "p.yaml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("p.yaml:6"), "{e}");
    assert!(
        e.contains("\"tools/*\" would let tools/call through unchecked"),
        "{e}"
    );
}
