//! What Portcullis' rmcp layer adds to a tools/call inside a real MCP server: the same echo
//! server bare and wrapped in `PolicyLayer`, each behind an in-memory pipe (stdio framing, no
//! OS pipes) to the same rmcp client, in one process on a single-threaded runtime, measured in
//! alternating blocks (as host/benches/mcp.rs does). The layer has the N=10 structured rule
//! set and a fixed identity (ann, role analyst): identity, the before phase, the inner call,
//! and the after phase only if an after-phase rule names the tool (none does here).

use std::sync::Arc;
use std::time::Instant;

use portcullis::mcp::{Authenticator, PolicyLayer};
use portcullis::{Engine, Subject};
use rmcp::model::*;
use rmcp::service::{RequestContext, RoleClient, RoleServer, RunningService};
use rmcp::{ErrorData as McpError, ServerHandler, ServiceExt};
use serde::Serialize;
use serde_json::Value;

use crate::portcullis_side::structured_policy;
use crate::spec::{Mcp, Spec};

/// One tool that echoes its `text` argument, as the FastMCP server on the Python side.
#[derive(Clone)]
struct Echo {
    tool: String,
}

impl ServerHandler for Echo {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let schema = serde_json::json!({"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]});
        let Value::Object(schema) = schema else {
            unreachable!()
        };
        Ok(ListToolsResult {
            tools: vec![Tool::new(
                self.tool.clone(),
                "Echoes its text",
                Arc::new(schema),
            )],
            ..Default::default()
        })
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let args = request.arguments.unwrap_or_default();
        let text = args.get("text").and_then(Value::as_str).unwrap_or("");
        Ok(CallToolResult::success(vec![ContentBlock::text(format!("echo: {text}"))]).into())
    }
}

type Client = RunningService<RoleClient, ()>;

async fn duplex_client<S: ServerHandler>(server: S) -> Client {
    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        if let Ok(running) = server.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    ().serve(client_io).await.expect("client connects")
}

fn text(r: &CallToolResult) -> Option<&str> {
    r.content.first()?.as_text().map(|t| t.text.as_str())
}

#[derive(Debug, Serialize)]
pub struct McpResult {
    pub p50_us: std::collections::BTreeMap<String, f64>,
    pub calls: usize,
    pub policy_rules: usize,
}

fn p50(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

pub fn run(spec: &Spec) -> McpResult {
    let Mcp {
        n,
        tool,
        args,
        blocks,
        per_block,
    } = &spec.mcp;
    let set = spec.rule_sets.iter().find(|s| s.n == *n).expect("rule set");
    assert_eq!(
        &set.cases[0].tool, tool,
        "the tool is allowed by the last rule"
    );
    let engine = Arc::new(Engine::from_str(&structured_policy(set, "", ""), "peers.yaml").unwrap());
    let who = Subject::user("ann").with_role("analyst");
    let layer = PolicyLayer::new(engine).with_authenticator(Arc::new(Authenticator::fixed(who)));
    let echo = Echo { tool: tool.clone() };

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let params = CallToolRequestParams::new(tool.clone()).with_arguments(args.clone());
    let expected = format!("echo: {}", args["text"].as_str().unwrap());
    let (bare, policed) = rt.block_on(async {
        (
            duplex_client(echo.clone()).await,
            duplex_client(layer.wrap(echo.clone())).await,
        )
    });
    // The layer really polices: admin_tool is refused before the server sees it.
    let admin = rt
        .block_on(policed.call_tool(CallToolRequestParams::new("admin_tool")))
        .unwrap();
    assert_eq!(admin.is_error, Some(true), "{admin:?}");
    let clients = [("bare", &bare), ("portcullis", &policed)];
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); clients.len()];
    for (_, c) in clients {
        for _ in 0..200 {
            rt.block_on(c.call_tool(params.clone())).unwrap();
        }
    }
    for _ in 0..*blocks {
        for (i, (name, c)) in clients.iter().enumerate() {
            for _ in 0..*per_block {
                let p = params.clone();
                let t = Instant::now();
                let r = rt.block_on(c.call_tool(p)).unwrap();
                samples[i].push(t.elapsed().as_nanos() as f64 / 1000.0);
                assert!(
                    r.is_error != Some(true) && text(&r) == Some(&expected),
                    "{name}: {r:?}"
                );
            }
        }
    }
    let p50_us = clients
        .iter()
        .zip(samples)
        .map(|((name, _), s)| (name.to_string(), p50(s)))
        .collect();
    rt.block_on(async {
        bare.cancel().await.unwrap();
        policed.cancel().await.unwrap();
    });
    McpResult {
        p50_us,
        calls: blocks * per_block,
        policy_rules: *n,
    }
}
