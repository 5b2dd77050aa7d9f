//! A small MCP server for the MCP-layer and proxy tests: a few tools with and without output
//! schemas, resources and prompts, a tool whose server asks the client itself (elicitation
//! relay), one that hangs and one that exits. Used in process by the tests and as the upstream
//! process `examples/fixture_server.rs`.

#![allow(dead_code, deprecated)]

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::*;
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{ErrorData as McpError, ServerHandler};
use serde_json::{Value, json};

/// The fixture server built as a process (`examples/fixture_server.rs`), next to the running
/// test binary, for tests that put it behind the proxy.
pub fn fixture_server() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(std::path::Path::parent).unwrap();
    let path = dir
        .join("examples")
        .join(format!("fixture_server{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test` (which builds examples)",
        path.display()
    );
    path
}

/// When set, `slow` writes this file if its request is cancelled.
pub const CANCEL_MARK_ENV: &str = "FIXTURE_CANCEL_MARK";
/// When set, every tools/call appends the tool's name and a newline to this file, so tests
/// can tell whether a call reached the upstream at all.
pub const CALL_LOG_ENV: &str = "FIXTURE_CALL_LOG";

#[derive(Clone, Default)]
pub struct FixtureServer;

fn object(v: Value) -> Arc<JsonObject> {
    match v {
        Value::Object(m) => Arc::new(m),
        _ => unreachable!("schemas are objects"),
    }
}

pub fn profile() -> Value {
    json!({
        "name": "Ann",
        "email": "ann@example.com",
        "user_pii": {"ssn": "123-45-6789", "phone": "555-0100"}
    })
}

pub fn emails() -> Value {
    json!({"emails": [
        {"from": "bob@example.com", "subject": "hi", "body": "the secret plan"},
        {"from": "eve@example.com", "subject": "re", "body": "more secrets"}
    ]})
}

pub fn tools() -> Vec<Tool> {
    let any = || object(json!({"type": "object"}));
    vec![
        Tool::new(
            "echo",
            "Echoes its text",
            object(json!({"type": "object", "properties": {"text": {"type": "string"}}})),
        ),
        Tool::new("admin_tool", "Dangerous", any()),
        Tool::new("get_user_profile", "A profile with PII", any()).with_raw_output_schema(object(
            json!({
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "email": {"type": "string", "format": "email"},
                    "user_pii": {"$ref": "#/$defs/Pii"}
                },
                "required": ["name", "email", "user_pii"],
                "$defs": {"Pii": {
                    "type": "object",
                    "properties": {
                        "ssn": {"type": "string", "pattern": "^[0-9]{3}-[0-9]{2}-[0-9]{4}$"},
                        "phone": {"type": "string"}
                    },
                    "required": ["ssn", "phone"]
                }}
            }),
        )),
        Tool::new("read_emails", "Emails with bodies", any()),
        Tool::new("delete_file", "Deletes a file", any()),
        Tool::new(
            "ask_user",
            "The server itself asks the user for a name",
            any(),
        ),
        Tool::new("slow", "Never answers in time", any()),
        Tool::new("crash", "The server process exits", any()),
        Tool::new(
            "progress",
            "Reports progress `steps` times (default 2), then answers",
            any(),
        ),
    ]
}

impl ServerHandler for FixtureServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_prompts()
                .build(),
        )
    }

    async fn list_tools(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult {
            tools: tools(),
            ..Default::default()
        })
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        if let Ok(path) = std::env::var(CALL_LOG_ENV) {
            use std::io::Write;
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                let _ = writeln!(f, "{}", request.name);
            }
        }
        let args = request.arguments.unwrap_or_default();
        let result = match request.name.as_ref() {
            "echo" => {
                let text = args.get("text").and_then(Value::as_str).unwrap_or("");
                CallToolResult::success(vec![ContentBlock::text(format!("echo: {text}"))])
            }
            "admin_tool" => CallToolResult::success(vec![ContentBlock::text("admin done")]),
            "get_user_profile" => CallToolResult::structured(profile()),
            "read_emails" => CallToolResult::structured(emails()),
            "delete_file" => CallToolResult::success(vec![ContentBlock::text("deleted")]),
            "ask_user" => {
                let schema = ElicitationSchema::builder()
                    .required_string_property("name", |s| s)
                    .build_unchecked();
                let answer = context
                    .peer
                    .create_elicitation(ElicitRequestParams::FormElicitationParams {
                        meta: None,
                        message: "What is your name?".into(),
                        requested_schema: schema,
                    })
                    .await
                    .map_err(|e| McpError::internal_error(e.to_string(), None))?;
                let name = answer
                    .content
                    .as_ref()
                    .and_then(|c| c["name"].as_str())
                    .unwrap_or("nobody")
                    .to_string();
                CallToolResult::success(vec![ContentBlock::text(format!("hello {name}"))])
            }
            "slow" => {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(600)) => {}
                    () = context.ct.cancelled() => {
                        // Tells the proxy tests that a cancellation reached the upstream.
                        if let Ok(path) = std::env::var(CANCEL_MARK_ENV) {
                            let _ = std::fs::write(path, "cancelled");
                        }
                        return Err(McpError::internal_error("cancelled", None));
                    }
                }
                CallToolResult::success(vec![ContentBlock::text("too late")])
            }
            "crash" => std::process::exit(3),
            "progress" => {
                let token = context.meta.get_progress_token();
                let steps = args
                    .get("steps")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(2);
                if let Some(token) = token.clone() {
                    for step in 1..=steps {
                        let p = ProgressNotificationParam::new(token.clone(), step as f64)
                            .with_total(steps as f64);
                        let _ = context.peer.notify_progress(p).await;
                    }
                }
                let said = token.map_or("none".to_string(), |t| format!("{:?}", t.0));
                let trace = context.meta.get_traceparent().unwrap_or("none");
                CallToolResult::success(vec![ContentBlock::text(format!(
                    "token {said} traceparent {trace}"
                ))])
            }
            other => {
                return Err(McpError::invalid_params(format!("no tool {other}"), None));
            }
        };
        Ok(result.into())
    }

    async fn list_resources(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        Ok(ListResourcesResult {
            resources: vec![
                Resource::new("file:///public/readme.txt", "readme"),
                Resource::new("file:///secret/keys.txt", "keys"),
            ],
            ..Default::default()
        })
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let text = match request.uri.as_str() {
            "file:///public/readme.txt" => "hello",
            "file:///secret/keys.txt" => "k=1",
            other => {
                return Err(McpError::resource_not_found(format!("no {other}"), None));
            }
        };
        Ok(ReadResourceResult::new(vec![ResourceContents::text(text, request.uri)]).into())
    }

    async fn list_prompts(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        Ok(ListPromptsResult {
            prompts: vec![
                Prompt::new("greet", Some("Say hello"), None),
                Prompt::new("admin_prompt", Some("Internal"), None),
            ],
            ..Default::default()
        })
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        Ok(GetPromptResult::new(vec![PromptMessage::new_text(
            Role::User,
            format!("prompt {}", request.name),
        )])
        .into())
    }
}

/// Client side, for the tests: a tools/call request for `name` with object `args`.
pub fn call(name: &str, args: Value) -> CallToolRequestParams {
    let Value::Object(m) = args else {
        panic!("tool arguments must be a JSON object")
    };
    CallToolRequestParams::new(name.to_string()).with_arguments(m)
}

/// Client side, for the tests: every text item of a result, one per line.
pub fn text(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}
