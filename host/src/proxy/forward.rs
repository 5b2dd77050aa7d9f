//! One downstream session's connection to the upstream server: a [`Forwarder`] (what the
//! downstream client talks to) and a [`Relay`] (what the upstream server talks to).
//!
//! The upstream is connected on the session's first request, with the downstream client's own
//! `initialize` parameters, so the upstream sees the client's real capabilities (elicitation,
//! sampling, roots) and its requests for them are relayed to that same client. Requests pass
//! with their `_meta` (progress tokens) intact; notifications pass both ways.

#![allow(deprecated)] // sampling, roots and logging are deprecated by SEP-2577 but still relayed

use std::ffi::OsString;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CancelTaskParams, ClientConfig, CompleteRequestParams,
    CompleteResult, CreateMessageRequestParams, CreateMessageResult, ElicitRequestParams,
    ElicitResult, GetPromptRequestParams, GetPromptResponse, GetTaskParams, GetTaskResult,
    InitializeRequestParams, InitializeResult, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, ListRootsResult, ListToolsResult, LoggingMessageNotificationParam,
    PaginatedRequestParams, ProgressNotificationParam, ReadResourceRequestParams,
    ReadResourceResponse, ResourceUpdatedNotificationParam, ServerCapabilities, ServerConfig,
    SetLevelRequestParams, SubscribeRequestParams, UnsubscribeRequestParams, UpdateTaskParams,
};
use rmcp::service::{
    NotificationContext, Peer, RequestContext, RoleClient, RoleServer, RunningService, ServiceError,
};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, ErrorData as McpError, ServerHandler, ServiceExt};
use tokio::sync::OnceCell;

use super::http_upstream::HttpUpstream;

/// Where the upstream server is.
#[derive(Debug, Clone)]
pub enum UpstreamSpec {
    /// A command speaking MCP over stdio; one process per downstream session.
    Command {
        program: OsString,
        args: Vec<OsString>,
    },
    /// A streamable-HTTP MCP endpoint.
    Url(HttpUpstream),
    /// A server in this process, reached over an in-memory pipe: no process or network hop,
    /// so the proxy's own cost can be measured, and embedders can put any rmcp server behind
    /// the proxy's session handling.
    InProcess(InProcess),
}

/// Starts one in-process server per session and returns the client end of its pipe (e.g. a
/// `tokio::io::duplex` whose other end a spawned task serves).
#[derive(Clone)]
pub struct InProcess(pub Arc<dyn Fn() -> tokio::io::DuplexStream + Send + Sync>);

impl std::fmt::Debug for InProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InProcess(..)")
    }
}

impl std::fmt::Display for UpstreamSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpstreamSpec::Command { program, args } => {
                write!(f, "{}", program.to_string_lossy())?;
                for a in args {
                    write!(f, " {}", a.to_string_lossy())?;
                }
                Ok(())
            }
            UpstreamSpec::Url(u) => f.write_str(u.url()),
            UpstreamSpec::InProcess(_) => f.write_str("in-process server"),
        }
    }
}

/// Answers the upstream's requests and notifications by passing them to the downstream client.
pub struct Relay {
    downstream: Peer<RoleServer>,
    info: ClientConfig,
}

fn relay_error(e: ServiceError) -> McpError {
    match e {
        ServiceError::McpError(e) => e,
        other => McpError::internal_error(format!("the client did not answer: {other}"), None),
    }
}

impl ClientHandler for Relay {
    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        _: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, McpError> {
        self.downstream
            .create_message(params)
            .await
            .map_err(relay_error)
    }

    async fn list_roots(&self, _: RequestContext<RoleClient>) -> Result<ListRootsResult, McpError> {
        self.downstream.list_roots().await.map_err(relay_error)
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, McpError> {
        self.downstream
            .create_elicitation(request)
            .await
            .map_err(relay_error)
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        let _ = self.downstream.notify_progress(params).await;
    }

    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        let _ = self.downstream.notify_logging_message(params).await;
    }

    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        let _ = self.downstream.notify_resource_updated(params).await;
    }

    async fn on_resource_list_changed(&self, _: NotificationContext<RoleClient>) {
        let _ = self.downstream.notify_resource_list_changed().await;
    }

    async fn on_tool_list_changed(&self, _: NotificationContext<RoleClient>) {
        let _ = self.downstream.notify_tool_list_changed().await;
    }

    async fn on_prompt_list_changed(&self, _: NotificationContext<RoleClient>) {
        let _ = self.downstream.notify_prompt_list_changed().await;
    }

    fn get_info(&self) -> ClientConfig {
        self.info.clone()
    }
}

/// The downstream side: an rmcp server handler that forwards every request upstream.
pub struct Forwarder {
    spec: Arc<UpstreamSpec>,
    timeout: Duration,
    upstream: OnceCell<Result<RunningService<RoleClient, Relay>, String>>,
    info: RwLock<Option<ServerConfig>>,
}

impl Forwarder {
    /// A forwarder that connects to `spec` on first use; each upstream request may take at
    /// most `timeout`.
    pub fn new(spec: Arc<UpstreamSpec>, timeout: Duration) -> Self {
        Forwarder {
            spec,
            timeout,
            upstream: OnceCell::new(),
            info: RwLock::new(None),
        }
    }

    async fn connect(&self, relay: Relay) -> Result<RunningService<RoleClient, Relay>, String> {
        let connected = match &*self.spec {
            UpstreamSpec::Command { program, args } => {
                let mut cmd = tokio::process::Command::new(program);
                cmd.args(args);
                let transport = TokioChildProcess::new(cmd).map_err(|e| {
                    format!("cannot start the upstream server `{}`: {e}", self.spec)
                })?;
                tokio::time::timeout(self.timeout, relay.serve(transport)).await
            }
            UpstreamSpec::Url(upstream) => {
                tokio::time::timeout(self.timeout, relay.serve(upstream.transport())).await
            }
            UpstreamSpec::InProcess(start) => {
                tokio::time::timeout(self.timeout, relay.serve((start.0)())).await
            }
        };
        let service = match connected {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                return Err(format!(
                    "the upstream server `{}` failed to initialize: {e}",
                    self.spec
                ));
            }
            Err(_) => {
                return Err(format!(
                    "the upstream server `{}` did not finish initializing within {} s",
                    self.spec,
                    self.timeout.as_secs()
                ));
            }
        };
        if let Some(info) = service.peer().peer_info()
            && let Ok(mut slot) = self.info.write()
        {
            let info = (*info).clone();
            let mut result = InitializeResult::new(info.capabilities);
            result.protocol_version = info.protocol_version;
            if let Some(server) = info.server_info {
                result.server_info = server;
            }
            result.instructions = info.instructions;
            result.meta = info.meta;
            *slot = Some(result);
        }
        Ok(service)
    }

    /// The upstream peer, connecting first if this is the session's first request.
    async fn peer(&self, ctx: &RequestContext<RoleServer>) -> Result<Peer<RoleClient>, McpError> {
        self.peer_with(ctx.peer.clone(), None).await
    }

    async fn peer_with(
        &self,
        downstream: Peer<RoleServer>,
        info: Option<InitializeRequestParams>,
    ) -> Result<Peer<RoleClient>, McpError> {
        let info = info
            .or_else(|| downstream.peer_info().map(|i| (*i).clone()))
            .unwrap_or_default();
        let relay = Relay { downstream, info };
        match self.upstream.get_or_init(|| self.connect(relay)).await {
            Ok(service) => {
                if service.is_closed() {
                    return Err(gone(&self.spec));
                }
                Ok(service.peer().clone())
            }
            Err(e) => Err(McpError::internal_error(e.clone(), None)),
        }
    }

    /// Runs one upstream request under the timeout, mapping failures to clear errors. When the
    /// downstream client cancels its request (`ctx.ct`), the upstream request is dropped, and
    /// rmcp sends the upstream a `notifications/cancelled` for it.
    async fn call<T>(
        &self,
        ctx: &RequestContext<RoleServer>,
        fut: impl Future<Output = Result<T, ServiceError>>,
    ) -> Result<T, McpError> {
        let outcome = tokio::select! {
            outcome = tokio::time::timeout(self.timeout, fut) => outcome,
            () = ctx.ct.cancelled() => {
                return Err(McpError::internal_error(
                    "the request was cancelled by the client; the upstream was told to stop",
                    None,
                ));
            }
        };
        match outcome {
            Ok(Ok(v)) => Ok(v),
            // The upstream's own JSON-RPC errors pass unchanged.
            Ok(Err(ServiceError::McpError(e))) => Err(e),
            Ok(Err(ServiceError::UnexpectedResponse)) => Err(McpError::internal_error(
                format!(
                    "the upstream server `{}` sent an unexpected response",
                    self.spec
                ),
                None,
            )),
            Ok(Err(_)) => Err(gone(&self.spec)),
            Err(_) => Err(McpError::internal_error(
                format!(
                    "the upstream server `{}` did not answer within {} s",
                    self.spec,
                    self.timeout.as_secs()
                ),
                None,
            )),
        }
    }
}

fn gone(spec: &UpstreamSpec) -> McpError {
    McpError::internal_error(
        format!(
            "the upstream server `{spec}` is gone (it exited or closed the connection); restart the proxy, or reconnect to start a new session"
        ),
        None,
    )
}

impl ServerHandler for Forwarder {
    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, McpError> {
        context.peer.set_peer_info(request.clone());
        self.peer_with(context.peer.clone(), Some(request)).await?;
        self.info
            .read()
            .ok()
            .and_then(|i| i.clone())
            .ok_or_else(|| {
                McpError::internal_error("the upstream server sent no initialize result", None)
            })
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        let peer = self.peer(&context).await?;
        self.call(&context, peer.complete(request)).await
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let peer = self.peer(&context).await?;
        self.call(&context, peer.set_level(request)).await
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let peer = self.peer(&context).await?;
        self.call(&context, peer.get_prompt_once(request)).await
    }

    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        let peer = self.peer(&context).await?;
        self.call(&context, peer.list_prompts(request)).await
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let peer = self.peer(&context).await?;
        self.call(&context, peer.list_resources(request)).await
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        let peer = self.peer(&context).await?;
        self.call(&context, peer.list_resource_templates(request))
            .await
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let peer = self.peer(&context).await?;
        self.call(&context, peer.read_resource_once(request)).await
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let peer = self.peer(&context).await?;
        self.call(&context, peer.subscribe(request)).await
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let peer = self.peer(&context).await?;
        self.call(&context, peer.unsubscribe(request)).await
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let peer = self.peer(&context).await?;
        self.call(&context, peer.call_tool_once(request)).await
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let peer = self.peer(&context).await?;
        self.call(&context, peer.list_tools(request)).await
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, McpError> {
        let peer = self.peer(&context).await?;
        self.call(&context, peer.get_task(request)).await
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let peer = self.peer(&context).await?;
        self.call(&context, peer.update_task(request)).await
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let peer = self.peer(&context).await?;
        self.call(&context, peer.cancel_task(request)).await
    }

    async fn on_progress(
        &self,
        notification: ProgressNotificationParam,
        context: NotificationContext<RoleServer>,
    ) {
        if let Some(Ok(up)) = self.upstream.get() {
            let _ = up.peer().notify_progress(notification).await;
        }
        let _ = context;
    }

    async fn on_roots_list_changed(&self, _: NotificationContext<RoleServer>) {
        if let Some(Ok(up)) = self.upstream.get() {
            let _ = up.peer().notify_roots_list_changed().await;
        }
    }

    fn get_info(&self) -> ServerConfig {
        self.info
            .read()
            .ok()
            .and_then(|i| i.clone())
            .unwrap_or_else(|| {
                ServerConfig::new(
                    ServerCapabilities::builder()
                        .enable_tools()
                        .enable_resources()
                        .enable_prompts()
                        .build(),
                )
            })
    }
}
