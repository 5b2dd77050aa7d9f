//! The fixtures the MCP conformance suite (`@modelcontextprotocol/conformance` 0.1.13) calls by
//! name: tools, prompts, resources, a resource template, completions, logging, progress,
//! sampling and elicitation. Each answers exactly what the suite's scenario describes, so a
//! failure in a run points at the transport or the policy layer, not at the fixture.
//!
//! A few extra entries (`admin_reset`, `internal_prompt`, `test://internal/secrets`) exist only
//! so that the policy in `policy.yaml` has something to deny and hide; the suite never calls
//! them.

#![allow(deprecated)] // logging, sampling and resources/subscribe are legacy MCP, still tested

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::*;
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{ErrorData as McpError, ServerHandler};
use serde_json::{Value, json};

/// A 1x1 red PNG.
pub const PNG_BASE64: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC";
/// Half a millisecond of silence: 8 kHz, mono, 16-bit PCM WAV.
pub const WAV_BASE64: &str =
    "UklGRjQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YRAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// Name of the tool whose input schema uses JSON Schema 2020-12 keywords (SEP-1613).
pub const JSON_SCHEMA_TOOL: &str = "json_schema_2020_12_tool";
/// The resource template the suite reads as `test://template/123/data`.
pub const TEMPLATE: &str = "test://template/{id}/data";

/// One MCP session's server: the logging level the client set and the resources it subscribed
/// to are per session, as the protocol describes them.
#[derive(Default)]
pub struct ConformanceServer {
    log_level: Mutex<Option<LoggingLevel>>,
    subscriptions: Mutex<BTreeSet<String>>,
}

fn object(v: Value) -> Arc<JsonObject> {
    match v {
        Value::Object(m) => Arc::new(m),
        other => panic!("a JSON schema must be an object, not {other}"),
    }
}

fn no_arguments() -> Arc<JsonObject> {
    object(json!({"type": "object", "properties": {}}))
}

fn string_argument(name: &str, description: &str) -> Arc<JsonObject> {
    object(json!({
        "type": "object",
        "properties": {name: {"type": "string", "description": description}},
        "required": [name]
    }))
}

/// Every tool, in the order `tools/list` gives them.
pub fn tools() -> Vec<Tool> {
    vec![
        Tool::new("test_simple_text", "Returns one text item", no_arguments()),
        Tool::new("test_image_content", "Returns a PNG image", no_arguments()),
        Tool::new("test_audio_content", "Returns a WAV clip", no_arguments()),
        Tool::new(
            "test_embedded_resource",
            "Returns an embedded text resource",
            no_arguments(),
        ),
        Tool::new(
            "test_multiple_content_types",
            "Returns text, an image and an embedded JSON resource",
            no_arguments(),
        ),
        Tool::new(
            "test_tool_with_logging",
            "Sends three info log messages 50 ms apart while it runs",
            no_arguments(),
        ),
        Tool::new(
            "test_tool_with_progress",
            "Reports progress 0, 50 and 100 of 100, 50 ms apart",
            no_arguments(),
        ),
        Tool::new(
            "test_error_handling",
            "Always fails with an isError result",
            no_arguments(),
        ),
        Tool::new(
            "test_sampling",
            "Asks the client's LLM to answer a prompt (sampling/createMessage)",
            string_argument("prompt", "The prompt to send to the LLM"),
        ),
        Tool::new(
            "test_elicitation",
            "Asks the user for a username and an email (elicitation/create)",
            string_argument("message", "The message to show the user"),
        ),
        Tool::new(
            "test_elicitation_sep1034_defaults",
            "Elicitation whose fields all carry defaults (SEP-1034)",
            no_arguments(),
        ),
        Tool::new(
            "test_elicitation_sep1330_enums",
            "Elicitation with the five enum forms (SEP-1330)",
            no_arguments(),
        ),
        Tool::new(
            "test_reconnection",
            "Answers after a few seconds; the bare server closes its stream first (SEP-1699)",
            no_arguments(),
        ),
        Tool::new(
            JSON_SCHEMA_TOOL,
            "Tool with JSON Schema 2020-12 features",
            object(json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "$defs": {
                    "address": {
                        "type": "object",
                        "properties": {
                            "street": {"type": "string"},
                            "city": {"type": "string"}
                        }
                    }
                },
                "properties": {
                    "name": {"type": "string"},
                    "address": {"$ref": "#/$defs/address"}
                },
                "additionalProperties": false
            })),
        ),
        Tool::new(
            "admin_reset",
            "Not part of the suite: the policy denies it, so it is never listed",
            no_arguments(),
        ),
    ]
}

/// The SEP-1034 elicitation form: one field of each primitive type, each with a default.
pub fn sep1034_schema() -> ElicitationSchema {
    schema(json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "User name", "default": "John Doe"},
            "age": {"type": "integer", "description": "User age", "default": 30},
            "score": {"type": "number", "description": "User score", "default": 95.5},
            "status": {
                "type": "string",
                "description": "User status",
                "enum": ["active", "inactive", "pending"],
                "default": "active"
            },
            "verified": {"type": "boolean", "description": "Verification status", "default": true}
        }
    }))
}

/// The SEP-1330 elicitation form: untitled and titled single-select, the legacy `enumNames`
/// form, untitled and titled multi-select.
pub fn sep1330_schema() -> ElicitationSchema {
    schema(json!({
        "type": "object",
        "properties": {
            "untitledSingle": {
                "type": "string",
                "description": "Pick one option",
                "enum": ["option1", "option2", "option3"]
            },
            "titledSingle": {
                "type": "string",
                "description": "Pick one titled option",
                "oneOf": [
                    {"const": "value1", "title": "First Option"},
                    {"const": "value2", "title": "Second Option"},
                    {"const": "value3", "title": "Third Option"}
                ]
            },
            "legacyEnum": {
                "type": "string",
                "description": "Pick one (legacy enumNames)",
                "enum": ["opt1", "opt2", "opt3"],
                "enumNames": ["Option One", "Option Two", "Option Three"]
            },
            "untitledMulti": {
                "type": "array",
                "description": "Pick several options",
                "items": {"type": "string", "enum": ["option1", "option2", "option3"]}
            },
            "titledMulti": {
                "type": "array",
                "description": "Pick several titled options",
                "items": {"anyOf": [
                    {"const": "value1", "title": "First Choice"},
                    {"const": "value2", "title": "Second Choice"},
                    {"const": "value3", "title": "Third Choice"}
                ]}
            }
        }
    }))
}

/// The `test_elicitation` form: a username and an email, both required.
pub fn user_info_schema() -> ElicitationSchema {
    schema(json!({
        "type": "object",
        "properties": {
            "username": {"type": "string", "description": "User's response"},
            "email": {"type": "string", "description": "User's email address"}
        },
        "required": ["username", "email"]
    }))
}

fn schema(v: Value) -> ElicitationSchema {
    let Value::Object(m) = v else {
        panic!("an elicitation schema must be an object")
    };
    ElicitationSchema::from_json_schema(m)
        .unwrap_or_else(|e| panic!("the fixture's elicitation schema does not parse: {e}"))
}

/// Every direct resource, in the order `resources/list` gives them.
pub fn resources() -> Vec<Resource> {
    vec![
        Resource::new("test://static-text", "static-text")
            .with_description("A static text resource")
            .with_mime_type("text/plain"),
        Resource::new("test://static-binary", "static-binary")
            .with_description("A static PNG image")
            .with_mime_type("image/png"),
        Resource::new("test://watched-resource", "watched-resource")
            .with_description("A resource clients may subscribe to")
            .with_mime_type("text/plain"),
        Resource::new("test://internal/secrets", "internal-secrets")
            .with_description("Not part of the suite: the policy denies it, so it is never listed")
            .with_mime_type("text/plain"),
    ]
}

/// Every prompt, in the order `prompts/list` gives them.
pub fn prompts() -> Vec<Prompt> {
    let required = |name: &str, description: &str| {
        PromptArgument::new(name)
            .with_description(description)
            .with_required(true)
    };
    vec![
        Prompt::new(
            "test_simple_prompt",
            Some("A prompt without arguments"),
            None,
        ),
        Prompt::new(
            "test_prompt_with_arguments",
            Some("A prompt with two required arguments"),
            Some(vec![
                required("arg1", "First test argument"),
                required("arg2", "Second test argument"),
            ]),
        ),
        Prompt::new(
            "test_prompt_with_embedded_resource",
            Some("A prompt embedding a resource"),
            Some(vec![required(
                "resourceUri",
                "URI of the resource to embed",
            )]),
        ),
        Prompt::new(
            "test_prompt_with_image",
            Some("A prompt with an image"),
            None,
        ),
        Prompt::new(
            "internal_prompt",
            Some("Not part of the suite: the policy denies it, so it is never listed"),
            None,
        ),
    ]
}

/// Values offered by `completion/complete` for a prompt argument, filtered by prefix.
fn completion_candidates(argument: &str) -> &'static [&'static str] {
    match argument {
        "arg1" => &["paris", "park", "party", "test-value"],
        "arg2" => &["alpha", "beta", "gamma"],
        "resourceUri" => &["test://static-text", "test://static-binary"],
        "id" => &["1", "123", "42"],
        _ => &[],
    }
}

/// How long `test_reconnection` works: past the `retry` interval rmcp's HTTP service
/// advertises (3 s), so a client that honours `retry` before reconnecting (rmcp's own, inside
/// `portcullis proxy`) is back before the result exists. rmcp 3.9's session worker drops a
/// request's event cache as soon as the response is sent, so a reconnect after that finds
/// nothing to replay; see `polling`.
pub fn reconnection_work() -> Duration {
    let retry = rmcp::transport::StreamableHttpServerConfig::default()
        .sse_retry
        .unwrap_or_default();
    retry + Duration::from_millis(500)
}

fn text_result(text: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(text)])
}

fn string_arg<'a>(args: &'a JsonObject, name: &str) -> Result<&'a str, McpError> {
    args.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| McpError::invalid_params(format!("missing string argument {name:?}"), None))
}

/// `id` from `test://template/{id}/data`, if `uri` has that form.
fn template_id(uri: &str) -> Option<&str> {
    let id = uri
        .strip_prefix("test://template/")?
        .strip_suffix("/data")?;
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

fn level_rank(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

fn elicit_text(result: &ElicitResult) -> String {
    let action = serde_json::to_value(&result.action).unwrap_or(Value::Null);
    let action = action.as_str().unwrap_or("unknown");
    let content = result.content.clone().unwrap_or(Value::Null);
    format!("action={action}, content={content}")
}

impl ConformanceServer {
    /// Sends a log message unless the client asked for a higher level.
    async fn log(&self, ctx: &RequestContext<RoleServer>, level: LoggingLevel, text: &str) {
        let threshold = self
            .log_level
            .lock()
            .map(|l| l.unwrap_or(LoggingLevel::Debug))
            .unwrap_or(LoggingLevel::Debug);
        if level_rank(level) < level_rank(threshold) {
            return;
        }
        let message = LoggingMessageNotificationParam::new(level, Value::String(text.into()))
            .with_logger("conformance-server");
        // A client that went away cannot be logged to; the tool still answers.
        let _ = ctx.peer.notify_logging_message(message).await;
    }

    async fn elicit(
        &self,
        ctx: &RequestContext<RoleServer>,
        message: String,
        requested_schema: ElicitationSchema,
    ) -> Result<ElicitResult, McpError> {
        let supported = ctx
            .peer
            .peer_info()
            .is_some_and(|i| i.capabilities.elicitation.is_some());
        if !supported {
            return Err(McpError::invalid_request(
                "the client does not support elicitation",
                None,
            ));
        }
        ctx.peer
            .create_elicitation(ElicitRequestParams::FormElicitationParams {
                meta: None,
                message,
                requested_schema,
            })
            .await
            .map_err(|e| McpError::internal_error(format!("elicitation failed: {e}"), None))
    }

    async fn run_tool(
        &self,
        name: &str,
        args: &JsonObject,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let pause = || tokio::time::sleep(Duration::from_millis(50));
        Ok(match name {
            "test_simple_text" => text_result("This is a simple text response for testing."),
            "test_image_content" => {
                CallToolResult::success(vec![ContentBlock::image(PNG_BASE64, "image/png")])
            }
            "test_audio_content" => {
                CallToolResult::success(vec![ContentBlock::audio(WAV_BASE64, "audio/wav")])
            }
            "test_embedded_resource" => CallToolResult::success(vec![ContentBlock::resource(
                ResourceContents::text(
                    "This is an embedded resource content.",
                    "test://embedded-resource",
                )
                .with_mime_type("text/plain"),
            )]),
            "test_multiple_content_types" => CallToolResult::success(vec![
                ContentBlock::text("Multiple content types test:"),
                ContentBlock::image(PNG_BASE64, "image/png"),
                ContentBlock::resource(
                    ResourceContents::text(
                        r#"{"test":"data","value":123}"#,
                        "test://mixed-content-resource",
                    )
                    .with_mime_type("application/json"),
                ),
            ]),
            "test_tool_with_logging" => {
                self.log(ctx, LoggingLevel::Info, "Tool execution started")
                    .await;
                pause().await;
                self.log(ctx, LoggingLevel::Info, "Tool processing data")
                    .await;
                pause().await;
                self.log(ctx, LoggingLevel::Info, "Tool execution completed")
                    .await;
                text_result("Tool with logging executed successfully")
            }
            "test_tool_with_progress" => {
                let token = ctx.meta.get_progress_token();
                for (i, progress) in [0.0, 50.0, 100.0].into_iter().enumerate() {
                    if i > 0 {
                        pause().await;
                    }
                    if let Some(token) = &token {
                        let note = ProgressNotificationParam::new(token.clone(), progress)
                            .with_total(100.0);
                        let _ = ctx.peer.notify_progress(note).await;
                    }
                }
                text_result("Tool with progress executed successfully")
            }
            "test_error_handling" => CallToolResult::error(vec![ContentBlock::text(
                "This tool intentionally returns an error for testing",
            )]),
            "test_sampling" => {
                let prompt = string_arg(args, "prompt")?;
                let supported = ctx
                    .peer
                    .peer_info()
                    .is_some_and(|i| i.capabilities.sampling.is_some());
                if !supported {
                    return Ok(CallToolResult::error(vec![ContentBlock::text(
                        "the client does not support sampling",
                    )]));
                }
                let request =
                    CreateMessageRequestParams::new(vec![SamplingMessage::user_text(prompt)], 100);
                let answer =
                    ctx.peer.create_message(request).await.map_err(|e| {
                        McpError::internal_error(format!("sampling failed: {e}"), None)
                    })?;
                let text = answer
                    .message
                    .content
                    .first()
                    .and_then(|c| c.as_text())
                    .map(|t| t.text.clone())
                    .unwrap_or_default();
                text_result(format!("LLM response: {text}"))
            }
            "test_elicitation" => {
                let message = string_arg(args, "message")?.to_string();
                let answer = self.elicit(ctx, message, user_info_schema()).await?;
                text_result(format!("User response: {}", elicit_text(&answer)))
            }
            "test_elicitation_sep1034_defaults" => {
                let message = "Please review and update the form fields with defaults".to_string();
                let answer = self.elicit(ctx, message, sep1034_schema()).await?;
                text_result(format!("Elicitation completed: {}", elicit_text(&answer)))
            }
            "test_elicitation_sep1330_enums" => {
                let message = "Please select options from the enum fields".to_string();
                let answer = self.elicit(ctx, message, sep1330_schema()).await?;
                text_result(format!("Elicitation completed: {}", elicit_text(&answer)))
            }
            "test_reconnection" => {
                tokio::time::sleep(reconnection_work()).await;
                text_result("Reconnection test completed")
            }
            JSON_SCHEMA_TOOL => text_result(format!("received {}", Value::Object(args.clone()))),
            "admin_reset" => text_result("everything was reset"),
            other => {
                return Err(McpError::invalid_params(
                    format!("unknown tool {other:?}"),
                    None,
                ));
            }
        })
    }
}

impl ServerHandler for ConformanceServer {
    fn get_info(&self) -> ServerConfig {
        let mut info = ServerConfig::new(
            ServerCapabilities::builder()
                .enable_logging()
                .enable_completions()
                .enable_prompts()
                .enable_resources()
                .enable_resources_subscribe()
                .enable_tools()
                .build(),
        );
        info.server_info =
            Implementation::new("portcullis-conformance-server", env!("CARGO_PKG_VERSION"));
        info.instructions = Some(
            "Fixtures for the MCP conformance suite (@modelcontextprotocol/conformance)".into(),
        );
        info
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
        let args = request.arguments.clone().unwrap_or_default();
        let result = self.run_tool(&request.name, &args, &context).await?;
        Ok(result.into())
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        if let Ok(mut level) = self.log_level.lock() {
            *level = Some(request.level);
        }
        Ok(())
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        let typed = request.argument.value.as_str();
        let values: Vec<String> = completion_candidates(&request.argument.name)
            .iter()
            .filter(|v| v.starts_with(typed))
            .map(|v| v.to_string())
            .collect();
        let total = values.len() as u32;
        let mut info =
            CompletionInfo::new(values).map_err(|e| McpError::internal_error(e, None))?;
        info.total = Some(total);
        info.has_more = Some(false);
        Ok(CompleteResult::new(info))
    }

    async fn list_resources(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        Ok(ListResourcesResult {
            resources: resources(),
            ..Default::default()
        })
    }

    async fn list_resource_templates(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(ListResourceTemplatesResult {
            resource_templates: vec![
                ResourceTemplate::new(TEMPLATE, "template-data")
                    .with_description("JSON data for any id")
                    .with_mime_type("application/json"),
            ],
            ..Default::default()
        })
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let uri = request.uri.as_str();
        let contents = match uri {
            "test://static-text" => {
                ResourceContents::text("This is the content of the static text resource.", uri)
                    .with_mime_type("text/plain")
            }
            "test://static-binary" => {
                ResourceContents::blob(PNG_BASE64, uri).with_mime_type("image/png")
            }
            "test://watched-resource" => ResourceContents::text("Watched resource content.", uri)
                .with_mime_type("text/plain"),
            "test://internal/secrets" => {
                ResourceContents::text("root password: hunter2", uri).with_mime_type("text/plain")
            }
            _ => match template_id(uri) {
                Some(id) => ResourceContents::text(
                    json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")})
                        .to_string(),
                    uri,
                )
                .with_mime_type("application/json"),
                None => {
                    return Err(McpError::resource_not_found(
                        format!("no resource {uri}"),
                        Some(json!({"uri": uri})),
                    ));
                }
            },
        };
        Ok(ReadResourceResult::new(vec![contents]).into())
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        if let Ok(mut subs) = self.subscriptions.lock() {
            subs.insert(request.uri);
        }
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        if let Ok(mut subs) = self.subscriptions.lock() {
            subs.remove(&request.uri);
        }
        Ok(())
    }

    async fn list_prompts(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        Ok(ListPromptsResult {
            prompts: prompts(),
            ..Default::default()
        })
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let args = request.arguments.clone().unwrap_or_default();
        let messages = match request.name.as_str() {
            "test_simple_prompt" => vec![PromptMessage::new_text(
                Role::User,
                "This is a simple prompt for testing.",
            )],
            "test_prompt_with_arguments" => {
                let arg1 = string_arg(&args, "arg1")?;
                let arg2 = string_arg(&args, "arg2")?;
                vec![PromptMessage::new_text(
                    Role::User,
                    format!("Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"),
                )]
            }
            "test_prompt_with_embedded_resource" => {
                let uri = string_arg(&args, "resourceUri")?;
                vec![
                    PromptMessage::new(
                        Role::User,
                        ContentBlock::resource(
                            ResourceContents::text("Embedded resource content for testing.", uri)
                                .with_mime_type("text/plain"),
                        ),
                    ),
                    PromptMessage::new_text(
                        Role::User,
                        "Please process the embedded resource above.",
                    ),
                ]
            }
            "test_prompt_with_image" => vec![
                PromptMessage::new(Role::User, ContentBlock::image(PNG_BASE64, "image/png")),
                PromptMessage::new_text(Role::User, "Please analyze the image above."),
            ],
            "internal_prompt" => vec![PromptMessage::new_text(
                Role::User,
                "Reveal the system configuration.",
            )],
            other => {
                return Err(McpError::invalid_params(
                    format!("unknown prompt {other:?}"),
                    None,
                ));
            }
        };
        Ok(GetPromptResult::new(messages).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn properties(schema: &ElicitationSchema) -> Value {
        serde_json::to_value(schema).unwrap()["properties"].clone()
    }

    #[test]
    fn sep1034_defaults_survive_serialization() {
        let p = properties(&sep1034_schema());
        assert_eq!(p["name"]["default"], "John Doe");
        assert_eq!(p["age"]["type"], "integer");
        assert_eq!(p["age"]["default"], 30);
        assert_eq!(p["score"]["default"], 95.5);
        assert_eq!(p["status"]["default"], "active");
        assert_eq!(p["status"]["enum"][0], "active");
        assert_eq!(p["verified"]["default"], true);
    }

    #[test]
    fn sep1330_enum_forms_survive_serialization() {
        let p = properties(&sep1330_schema());
        assert!(p["untitledSingle"]["enum"].is_array());
        assert!(p["untitledSingle"].get("oneOf").is_none());
        assert_eq!(p["titledSingle"]["oneOf"][0]["const"], "value1");
        assert!(p["titledSingle"].get("enum").is_none());
        assert_eq!(p["legacyEnum"]["enumNames"].as_array().unwrap().len(), 3);
        assert_eq!(p["untitledMulti"]["items"]["enum"][2], "option3");
        assert_eq!(
            p["titledMulti"]["items"]["anyOf"][1]["title"],
            "Second Choice"
        );
    }

    #[test]
    fn json_schema_2020_12_keywords_are_kept() {
        let tool = tools()
            .into_iter()
            .find(|t| t.name == JSON_SCHEMA_TOOL)
            .unwrap();
        let schema = serde_json::to_value(&tool.input_schema).unwrap();
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        assert!(schema["$defs"]["address"].is_object());
        assert_eq!(schema["additionalProperties"], false);
    }

    #[test]
    fn template_ids_are_parsed() {
        assert_eq!(template_id("test://template/123/data"), Some("123"));
        assert_eq!(template_id("test://template//data"), None);
        assert_eq!(template_id("test://template/1/2/data"), None);
        assert_eq!(template_id("test://static-text"), None);
    }

    #[test]
    fn every_tool_and_prompt_has_a_description() {
        assert!(tools().iter().all(|t| t.description.is_some()));
        assert!(prompts().iter().all(|p| p.description.is_some()));
        assert!(resources().iter().all(|r| r.description.is_some()));
    }
}
