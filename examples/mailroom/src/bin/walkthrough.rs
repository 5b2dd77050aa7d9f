//! `walkthrough`: an MCP client that starts a server command over stdio and walks through what
//! Portcullis does to it, step by step, checking each step. It answers approval questions by
//! itself: it accepts the one about `send_email` and declines every other.
//!
//! It expects the behaviour of `examples/mailroom/policies/mailroom.yaml`, whether the policy
//! is embedded (`mailroom --config ...`) or applied by the proxy in front of the bare server
//! (`portcullis proxy --config ... -- mailroom --no-policy`). It exits 1 when any step does not
//! behave as expected, so it doubles as a smoke test.

use std::ffi::OsString;
use std::process::{ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::Parser;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, ElicitRequestParams,
    ElicitResult, ElicitationAction, ElicitationCapability, GetPromptRequestParams, Implementation,
    ReadResourceRequestParams,
};
use rmcp::service::{RequestContext, RoleClient, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, ErrorData as McpError, ServiceExt};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

/// Walks an MCP server through the Mailroom policy and checks every step.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Examples:\n  walkthrough -- target/debug/mailroom --config examples/mailroom/policies/mailroom.yaml\n  walkthrough -- target/debug/portcullis proxy --config examples/mailroom/policies/mailroom.yaml -- target/debug/mailroom --no-policy"
)]
struct Args {
    /// Seconds to wait for the server to start (compiling enforcers the first time takes a while).
    #[arg(long, default_value_t = 180)]
    start_timeout: u64,
    /// Seconds to wait for each request.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Pass the server's stderr (its logs and audit trail) through instead of keeping it for
    /// failures.
    #[arg(long)]
    server_log: bool,
    /// The server command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<OsString>,
}

/// Answers approval questions: accept the one about `send_email`, decline the rest.
#[derive(Clone, Default)]
struct Answerer {
    questions: Arc<Mutex<Vec<String>>>,
}

impl Answerer {
    fn asked(&self) -> usize {
        self.questions.lock().map(|q| q.len()).unwrap_or(0)
    }
}

impl ClientHandler for Answerer {
    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, McpError> {
        let message = match &request {
            ElicitRequestParams::FormElicitationParams { message, .. } => message.clone(),
            other => format!("{other:?}"),
        };
        let accept = message.contains("send_email");
        println!(
            "       asked: {message}\n       answer: {}",
            if accept { "accept" } else { "decline" }
        );
        if let Ok(mut q) = self.questions.lock() {
            q.push(message);
        }
        Ok(if accept {
            let mut r = ElicitResult::new(ElicitationAction::Accept);
            r.content = Some(json!({"approve": true}));
            r
        } else {
            ElicitResult::new(ElicitationAction::Decline)
        })
    }

    fn get_info(&self) -> ClientConfig {
        let mut caps = ClientCapabilities::default();
        caps.elicitation = Some(ElicitationCapability::default());
        ClientConfig::new(caps, Implementation::new("mailroom-walkthrough", "0.1.0"))
    }
}

struct Walk {
    client: RunningService<RoleClient, Answerer>,
    answers: Answerer,
    timeout: Duration,
    steps: usize,
    failures: Vec<String>,
    token: Option<String>,
}

impl Walk {
    fn check(&mut self, step: &str, ok: bool, detail: impl AsRef<str>) {
        self.steps += 1;
        let detail = detail.as_ref();
        if ok {
            println!("[ok]   {step}: {detail}");
        } else {
            println!("[FAIL] {step}: {detail}");
            self.failures.push(step.to_string());
        }
    }

    async fn call(&mut self, tool: &str, args: Value) -> anyhow::Result<CallToolResult> {
        let Value::Object(m) = args else {
            return Err(anyhow!("arguments must be an object"));
        };
        let request = CallToolRequestParams::new(tool.to_string()).with_arguments(m);
        let result = tokio::time::timeout(self.timeout, self.client.call_tool(request))
            .await
            .map_err(|_| anyhow!("{tool}: no answer within {:?}", self.timeout))?
            .with_context(|| format!("{tool}: the call failed"))?;
        if let Some(t) = result
            .meta
            .as_ref()
            .and_then(|m| m.0.get(portcullis::mcp::TOKEN_META_KEY))
            .and_then(Value::as_str)
        {
            self.token = Some(t.to_string());
        }
        Ok(result)
    }

    async fn run(&mut self) -> anyhow::Result<()> {
        // 1. Which tools the caller sees.
        let tools = tokio::time::timeout(self.timeout, self.client.list_all_tools())
            .await
            .map_err(|_| anyhow!("tools/list: no answer"))??;
        let mut names: Vec<&str> = tools.iter().map(|t| &*t.name).collect();
        names.sort();
        self.check(
            "tools/list",
            names == ["get_user_profile", "read_emails", "run_query", "send_email"],
            format!("{} (admin_tool is hidden)", names.join(", ")),
        );

        // 2. A denied call: the reason, and the server is never called.
        let r = self
            .call("admin_tool", json!({"action": "reset_mailbox"}))
            .await?;
        self.check(
            "admin_tool reset_mailbox",
            is_error(&r) && text(&r).contains("admin_tool"),
            format!("denied: {}", first_line(&text(&r))),
        );

        // 3. An allowed call whose result is redacted.
        let r = self
            .call("get_user_profile", json!({"user_id": "u1"}))
            .await?;
        let s = structured(&r);
        let pii = &s["user_pii"];
        let both_views = !text(&r).contains("123-45-6789");
        self.check(
            "get_user_profile u1",
            !is_error(&r)
                && pii["social_security_number"] == "[REDACTED]"
                && pii["bank"]["account_number"] == "[REDACTED]"
                && pii["phone"] == "+1-202-555-0147"
                && both_views,
            format!(
                "name {}, ssn {}, account {}, phone {} (redacted in structuredContent and text)",
                s["name"],
                pii["social_security_number"],
                pii["bank"]["account_number"],
                pii["phone"]
            ),
        );

        // 4. SQL: a read runs, writes and stacked statements are refused by sql_safety.
        let r = self
            .call(
                "run_query",
                json!({"query": "SELECT id, name, plan FROM users ORDER BY id"}),
            )
            .await?;
        let s = structured(&r);
        let rows: Vec<String> = s["rows"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .map(|r| format!("{} {}", r["id"].as_str().unwrap_or("?"), r["name"]))
                    .collect()
            })
            .unwrap_or_default();
        self.check(
            "run_query SELECT",
            !is_error(&r) && s["row_count"] == 3,
            format!("{} rows: {}", s["row_count"], rows.join(", ")),
        );
        for query in ["DROP TABLE users", "SELECT 1; DELETE FROM orders"] {
            let r = self.call("run_query", json!({"query": query})).await?;
            self.check(
                &format!("run_query {query:?}"),
                is_error(&r) && text(&r).contains("sql_safety"),
                format!("denied: {}", first_line(&text(&r))),
            );
        }
        let r = self
            .call(
                "run_query",
                json!({"query": "SELECT count(*) AS n FROM users"}),
            )
            .await?;
        self.check(
            "users table intact",
            structured(&r)["rows"][0]["n"] == 3,
            format!("{} users", structured(&r)["rows"][0]["n"]),
        );

        // 5. Approval accepted, then remembered.
        let before = self.answers.asked();
        let mail = json!({"to": "bob@example.com", "subject": "Lunch", "body": "Friday at noon?"});
        let r = self.call("send_email", mail.clone()).await?;
        self.check(
            "send_email (asks)",
            !is_error(&r) && self.answers.asked() == before + 1,
            format!("sent as {}", structured(&r)["id"]),
        );
        let r = self.call("send_email", mail).await?;
        self.check(
            "send_email again",
            !is_error(&r) && self.answers.asked() == before + 1,
            format!("not asked again; sent as {}", structured(&r)["id"]),
        );

        // 6. Approval declined: the fields stay redacted.
        let before = self.answers.asked();
        let r = self.call("read_emails", json!({"limit": 3})).await?;
        let s = structured(&r);
        let emails = s["emails"].as_array().cloned().unwrap_or_default();
        let withheld = !emails.is_empty()
            && emails.iter().all(|e| e["attachments"] == "[REDACTED]")
            && emails.iter().all(|e| e["body"].is_string());
        self.check(
            "read_emails (asks about attachments)",
            !is_error(&r) && withheld && self.answers.asked() == before + 1,
            format!(
                "{} emails, subjects {}; attachments {}",
                emails.len(),
                emails
                    .iter()
                    .map(|e| e["subject"].to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                emails
                    .first()
                    .map(|e| e["attachments"].to_string())
                    .unwrap_or_default()
            ),
        );

        // 7. Resources and prompts.
        let inbox = tokio::time::timeout(
            self.timeout,
            self.client
                .read_resource(ReadResourceRequestParams::new("mail://inbox/m1")),
        )
        .await?;
        self.check(
            "resource mail://inbox/m1",
            inbox.is_ok(),
            match &inbox {
                Ok(r) => format!("read, {} content item(s)", r.contents.len()),
                Err(e) => format!("refused: {e}"),
            },
        );
        let draft = tokio::time::timeout(
            self.timeout,
            self.client
                .read_resource(ReadResourceRequestParams::new("mail://drafts/d1")),
        )
        .await?;
        self.check(
            "resource mail://drafts/d1",
            draft.is_err(),
            match &draft {
                Ok(_) => "read, but the draft should have needed approval".to_string(),
                Err(e) => format!("refused: {}", first_line(&e.to_string())),
            },
        );
        let prompts = tokio::time::timeout(self.timeout, self.client.list_all_prompts()).await??;
        let names: Vec<&str> = prompts.iter().map(|p| p.name.as_str()).collect();
        let reply = tokio::time::timeout(
            self.timeout,
            self.client
                .get_prompt(GetPromptRequestParams::new("draft_reply")),
        )
        .await?;
        self.check(
            "prompts",
            names == ["summarize_inbox"] && reply.is_err(),
            format!("listed: {}; draft_reply refused", names.join(", ")),
        );
        Ok(())
    }
}

fn is_error(r: &CallToolResult) -> bool {
    r.is_error == Some(true)
}

fn text(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn structured(r: &CallToolResult) -> Value {
    r.structured_content.clone().unwrap_or(Value::Null)
}

fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or("");
    if line.chars().count() > 160 {
        format!("{}...", line.chars().take(160).collect::<String>())
    } else {
        line.to_string()
    }
}

async fn walk(args: Args) -> anyhow::Result<bool> {
    let (program, rest) = args
        .command
        .split_first()
        .ok_or_else(|| anyhow!("give the server command after `--`"))?;
    let shown: Vec<String> = args
        .command
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    println!("== Portcullis walkthrough: {}", shown.join(" "));
    let mut command = tokio::process::Command::new(program);
    command.args(rest);
    let stderr = if args.server_log {
        Stdio::inherit()
    } else {
        Stdio::piped()
    };
    let (transport, child_stderr) = TokioChildProcess::builder(command)
        .stderr(stderr)
        .spawn()
        .with_context(|| format!("cannot start {}", program.to_string_lossy()))?;
    // Keep the server's stderr (bounded) to show it if something goes wrong.
    let log = Arc::new(Mutex::new(Vec::<u8>::new()));
    if let Some(mut err) = child_stderr {
        let log = log.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                if let Ok(mut l) = log.lock() {
                    l.extend_from_slice(&buf[..n]);
                    let excess = l.len().saturating_sub(64 * 1024);
                    l.drain(..excess);
                }
            }
        });
    }
    let answers = Answerer::default();
    let started = tokio::time::timeout(
        Duration::from_secs(args.start_timeout),
        answers.clone().serve(transport),
    )
    .await;
    let client = match started {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            print_log(&log);
            return Err(anyhow!("the server did not start an MCP session: {e}"));
        }
        Err(_) => {
            print_log(&log);
            return Err(anyhow!(
                "the server did not answer within {} s",
                args.start_timeout
            ));
        }
    };
    let mut walk = Walk {
        client,
        answers,
        timeout: Duration::from_secs(args.timeout),
        steps: 0,
        failures: Vec::new(),
        token: None,
    };
    let outcome = walk.run().await;
    match &walk.token {
        Some(t) => println!(
            "       _meta[\"portcullis/token\"]: a refreshed token ({} characters) came back with an approval",
            t.len()
        ),
        None => println!(
            "       _meta[\"portcullis/token\"]: none (this caller presented no token: its approvals are sealed into a session token the server keeps)"
        ),
    }
    let Walk {
        client,
        steps,
        failures,
        ..
    } = walk;
    let _ = client.cancel().await;
    if let Err(e) = outcome {
        print_log(&log);
        return Err(e);
    }
    if failures.is_empty() {
        println!("== all {steps} steps behaved as expected");
        Ok(true)
    } else {
        print_log(&log);
        println!(
            "== {} of {steps} steps did not behave as expected: {}",
            failures.len(),
            failures.join("; ")
        );
        Ok(false)
    }
}

fn print_log(log: &Mutex<Vec<u8>>) {
    if let Ok(l) = log.lock()
        && !l.is_empty()
    {
        eprintln!("-- server stderr (last part) --");
        eprintln!("{}", String::from_utf8_lossy(&l));
        eprintln!("-- end of server stderr --");
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(walk(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
