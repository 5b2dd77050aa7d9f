//! One downstream session's connection to the upstream server: a [`Forwarder`] (what the
//! downstream client talks to) and a [`Relay`] (what the upstream server talks to).
//!
//! The upstream is connected on the session's first request, with the downstream client's own
//! `initialize` parameters, so the upstream sees the client's real capabilities (elicitation,
//! sampling, roots) and its requests for them are relayed to that same client, on the stream of
//! the client request they belong to. Requests pass with their `_meta`; progress comes back
//! under the client's own progress token; a client's cancellation cancels the upstream request;
//! notifications pass both ways.

#![allow(deprecated)] // sampling, roots and logging are deprecated by SEP-2577 but still relayed

use std::ffi::OsString;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResponse, CancelTaskParams, CancelTaskRequest,
    CancelledNotificationParam, ClientConfig, ClientRequest, ClientResult, CompleteRequest,
    CompleteRequestParams, CompleteResult, CreateMessageRequest, CreateMessageRequestParams,
    CreateMessageResult, ElicitRequest, ElicitRequestParams, ElicitResult, GetExtensions,
    GetPromptRequest, GetPromptRequestParams, GetPromptResponse, GetSkillRequest,
    GetSkillRequestParams, GetSkillResult, GetTaskParams, GetTaskRequest, GetTaskResult,
    InitializeRequestParams, InitializeResult, ListPromptsRequest, ListPromptsResult,
    ListResourceTemplatesRequest, ListResourceTemplatesResult, ListResourcesRequest,
    ListResourcesResult, ListRootsRequest, ListRootsResult, ListSkillsRequest, ListSkillsResult,
    ListToolsRequest, ListToolsResult, LoggingMessageNotificationParam, PaginatedRequestParams,
    ProgressNotificationParam, ReadResourceDirectoryRequest, ReadResourceDirectoryRequestParams,
    ReadResourceDirectoryResult, ReadResourceRequest, ReadResourceRequestParams,
    ReadResourceResponse, RequestId, ResourceUpdatedNotificationParam, ServerCapabilities,
    ServerConfig, ServerRequest, ServerResult, SetLevelRequest, SetLevelRequestParams,
    SubscribeRequest, SubscribeRequestParams, UnsubscribeRequest, UnsubscribeRequestParams,
    UpdateTaskParams, UpdateTaskRequest,
};
use rmcp::service::{
    InboundStreamOrigin, NotificationContext, OriginatingRequestId, Peer, PeerRequestOptions,
    RequestContext, RoleClient, RoleServer, RunningService, ServiceError,
};
use rmcp::transport::{IntoTransport, TokioChildProcess};
use rmcp::{ClientHandler, ErrorData as McpError, ServerHandler, ServiceExt};
use tokio::sync::OnceCell;

use super::flights::Flights;
use super::http_upstream::HttpUpstream;
use super::progress::InOrder;

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
    flights: Arc<Flights>,
}

fn relay_error(e: ServiceError) -> McpError {
    match e {
        ServiceError::McpError(e) => e,
        other => McpError::internal_error(format!("the client did not answer: {other}"), None),
    }
}

fn unexpected_answer() -> McpError {
    McpError::internal_error("the client sent an unexpected answer", None)
}

impl Relay {
    /// Sends the upstream's request to the client, on the stream of the client request the
    /// upstream is serving (so a client listening only there still gets it).
    async fn ask(
        &self,
        mut request: ServerRequest,
        ctx: &RequestContext<RoleClient>,
    ) -> Result<ClientResult, McpError> {
        if let Some(origin) = self
            .flights
            .origin(ctx.extensions.get::<InboundStreamOrigin>())
        {
            request
                .extensions_mut()
                .insert(OriginatingRequestId(origin));
        }
        // Sent from a task of its own: rmcp would otherwise stamp the upstream's request id
        // (this handler's) as the originating request, overwriting the client's.
        let peer = self.downstream.clone();
        tokio::spawn(async move { peer.send_request(request).await })
            .await
            .map_err(|e| McpError::internal_error(format!("relaying failed: {e}"), None))?
            .map_err(relay_error)
    }
}

impl ClientHandler for Relay {
    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        ctx: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, McpError> {
        let request = ServerRequest::CreateMessageRequest(CreateMessageRequest::new(params));
        match self.ask(request, &ctx).await? {
            ClientResult::CreateMessageResult(r) => Ok(*r),
            _ => Err(unexpected_answer()),
        }
    }

    async fn list_roots(
        &self,
        ctx: RequestContext<RoleClient>,
    ) -> Result<ListRootsResult, McpError> {
        let request = ServerRequest::ListRootsRequest(ListRootsRequest {
            method: Default::default(),
            extensions: Default::default(),
        });
        match self.ask(request, &ctx).await? {
            ClientResult::ListRootsResult(r) => Ok(r),
            _ => Err(unexpected_answer()),
        }
    }

    async fn create_elicitation(
        &self,
        params: ElicitRequestParams,
        ctx: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, McpError> {
        let request = ServerRequest::ElicitRequest(ElicitRequest::new(params));
        match self.ask(request, &ctx).await? {
            ClientResult::ElicitResult(r) => Ok(r),
            _ => Err(unexpected_answer()),
        }
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
    flights: Arc<Flights>,
}

/// `_meta` keys rmcp sets itself on every upstream request (the lifecycle the proxy negotiated
/// upstream, and its own progress token); the client's values for them are not forwarded.
const OWN_META_KEYS: [&str; 4] = [
    "progressToken",
    "io.modelcontextprotocol/protocolVersion",
    "io.modelcontextprotocol/clientInfo",
    "io.modelcontextprotocol/clientCapabilities",
];

impl Forwarder {
    /// A forwarder that connects to `spec` on first use; each upstream request may take at
    /// most `timeout`.
    pub fn new(spec: Arc<UpstreamSpec>, timeout: Duration) -> Self {
        Forwarder {
            spec,
            timeout,
            upstream: OnceCell::new(),
            info: RwLock::new(None),
            flights: Arc::default(),
        }
    }

    async fn connect(&self, relay: Relay) -> Result<RunningService<RoleClient, Relay>, String> {
        let (flights, downstream) = (self.flights.clone(), relay.downstream.clone());
        let connected = match &*self.spec {
            UpstreamSpec::Command { program, args } => {
                let mut cmd = tokio::process::Command::new(program);
                cmd.args(args);
                let transport = TokioChildProcess::new(cmd).map_err(|e| {
                    format!("cannot start the upstream server `{}`: {e}", self.spec)
                })?;
                let transport = InOrder::new(transport, flights, downstream);
                tokio::time::timeout(self.timeout, relay.serve(transport)).await
            }
            UpstreamSpec::Url(upstream) => {
                let transport = InOrder::new(upstream.transport(), flights, downstream);
                tokio::time::timeout(self.timeout, relay.serve(transport)).await
            }
            UpstreamSpec::InProcess(start) => {
                let transport = IntoTransport::<RoleClient, _, _>::into_transport((start.0)());
                let transport = InOrder::new(transport, flights, downstream);
                tokio::time::timeout(self.timeout, relay.serve(transport)).await
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
        // The relay (with a copy of the client's info) is only built for the first request.
        let connect = || async {
            let info = info
                .or_else(|| downstream.peer_info().map(|i| (*i).clone()))
                .unwrap_or_default();
            let relay = Relay {
                downstream,
                info,
                flights: self.flights.clone(),
            };
            self.connect(relay).await
        };
        match self.upstream.get_or_init(connect).await {
            Ok(service) => {
                if service.is_closed() {
                    return Err(gone(&self.spec));
                }
                Ok(service.peer().clone())
            }
            Err(e) => Err(McpError::internal_error(e.clone(), None)),
        }
    }

    /// Sends the client's request upstream with the client's `_meta`, under the timeout, and
    /// returns the upstream's answer; failures become clear errors. While it is in flight the
    /// upstream's progress and questions are routed back to this client request. When the
    /// client cancels (`ctx.ct`) or the timeout passes, the upstream is told to stop.
    async fn forward(
        &self,
        ctx: &RequestContext<RoleServer>,
        request: ClientRequest,
    ) -> Result<ServerResult, McpError> {
        let peer = self.peer(ctx).await?;
        let mut options = PeerRequestOptions::no_options();
        // Usually the client's `_meta` holds only what rmcp sets anyway: copy it only if not.
        if ctx
            .meta
            .keys()
            .any(|k| !OWN_META_KEYS.contains(&k.as_str()))
        {
            let mut meta = ctx.meta.clone();
            for key in OWN_META_KEYS {
                meta.remove(key);
            }
            options = options.with_meta(meta);
        }
        let handle = peer
            .send_request_with_option(request, options)
            .await
            .map_err(|_| gone(&self.spec))?;
        let upstream_id = handle.id.clone();
        let upstream_token = handle.progress_token.clone();
        let _boarding = self.flights.board(
            upstream_id.clone(),
            upstream_token.clone(),
            ctx.id.clone(),
            ctx.meta.get_progress_token(),
        );
        let outcome = tokio::select! {
            outcome = tokio::time::timeout(self.timeout, handle.await_response()) => outcome,
            () = ctx.ct.cancelled() => {
                cancel_upstream(&peer, upstream_id, "cancelled by the client").await;
                return Err(McpError::internal_error(
                    "the request was cancelled by the client; the upstream was told to stop",
                    None,
                ));
            }
        };
        if outcome.is_ok() {
            // The upstream answered: the progress it sent first goes out first.
            self.flights.drained(&upstream_token).await;
        }
        match outcome {
            Ok(Ok(result)) => Ok(result),
            // The upstream's own JSON-RPC errors pass unchanged.
            Ok(Err(ServiceError::McpError(e))) => Err(e),
            Ok(Err(ServiceError::UnexpectedResponse)) => Err(unexpected(&self.spec)),
            Ok(Err(_)) => Err(gone(&self.spec)),
            Err(_) => {
                cancel_upstream(&peer, upstream_id, "timed out at the proxy").await;
                Err(McpError::internal_error(
                    format!(
                        "the upstream server `{}` did not answer within {} s",
                        self.spec,
                        self.timeout.as_secs()
                    ),
                    None,
                ))
            }
        }
    }

    /// Forwards a request whose answer is an empty result.
    async fn forward_empty(
        &self,
        ctx: &RequestContext<RoleServer>,
        request: ClientRequest,
    ) -> Result<(), McpError> {
        match self.forward(ctx, request).await? {
            ServerResult::EmptyResult(_) | ServerResult::TaskAckResult(_) => Ok(()),
            _ => Err(unexpected(&self.spec)),
        }
    }
}

async fn cancel_upstream(peer: &Peer<RoleClient>, id: RequestId, reason: &str) {
    let params = CancelledNotificationParam::new(Some(id), Some(reason.to_string()));
    let _ = peer.notify_cancelled(params).await;
}

fn gone(spec: &UpstreamSpec) -> McpError {
    McpError::internal_error(
        format!(
            "the upstream server `{spec}` is gone (it exited or closed the connection); restart the proxy, or reconnect to start a new session"
        ),
        None,
    )
}

fn unexpected(spec: &UpstreamSpec) -> McpError {
    McpError::internal_error(
        format!("the upstream server `{spec}` sent an unexpected response"),
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
        let request = ClientRequest::CompleteRequest(CompleteRequest::new(request));
        match self.forward(&context, request).await? {
            ServerResult::CompleteResult(r) => Ok(r),
            _ => Err(unexpected(&self.spec)),
        }
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let request = ClientRequest::SetLevelRequest(SetLevelRequest::new(request));
        self.forward_empty(&context, request).await
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let request = ClientRequest::GetPromptRequest(GetPromptRequest::new(request));
        match self.forward(&context, request).await? {
            ServerResult::GetPromptResult(r) => Ok(GetPromptResponse::Complete(r)),
            ServerResult::InputRequiredResult(r) => Ok(GetPromptResponse::InputRequired(r)),
            _ => Err(unexpected(&self.spec)),
        }
    }

    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        let request = ClientRequest::ListPromptsRequest(ListPromptsRequest {
            method: Default::default(),
            params: request,
            extensions: Default::default(),
        });
        match self.forward(&context, request).await? {
            ServerResult::ListPromptsResult(r) => Ok(r),
            _ => Err(unexpected(&self.spec)),
        }
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let request = ClientRequest::ListResourcesRequest(ListResourcesRequest {
            method: Default::default(),
            params: request,
            extensions: Default::default(),
        });
        match self.forward(&context, request).await? {
            ServerResult::ListResourcesResult(r) => Ok(r),
            _ => Err(unexpected(&self.spec)),
        }
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        let request = ClientRequest::ListResourceTemplatesRequest(ListResourceTemplatesRequest {
            method: Default::default(),
            params: request,
            extensions: Default::default(),
        });
        match self.forward(&context, request).await? {
            ServerResult::ListResourceTemplatesResult(r) => Ok(r),
            _ => Err(unexpected(&self.spec)),
        }
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let request = ClientRequest::ReadResourceRequest(ReadResourceRequest::new(request));
        match self.forward(&context, request).await? {
            ServerResult::ReadResourceResult(r) => Ok(ReadResourceResponse::Complete(r)),
            ServerResult::InputRequiredResult(r) => Ok(ReadResourceResponse::InputRequired(r)),
            _ => Err(unexpected(&self.spec)),
        }
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let request = ClientRequest::SubscribeRequest(SubscribeRequest::new(request));
        self.forward_empty(&context, request).await
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let request = ClientRequest::UnsubscribeRequest(UnsubscribeRequest::new(request));
        self.forward_empty(&context, request).await
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(request));
        match self.forward(&context, request).await? {
            ServerResult::CallToolResult(r) => Ok(CallToolResponse::Complete(r)),
            ServerResult::InputRequiredResult(r) => Ok(CallToolResponse::InputRequired(r)),
            ServerResult::CreateTaskResult(r) => Ok(CallToolResponse::Task(r)),
            _ => Err(unexpected(&self.spec)),
        }
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let request = ClientRequest::ListToolsRequest(ListToolsRequest {
            method: Default::default(),
            params: request,
            extensions: Default::default(),
        });
        match self.forward(&context, request).await? {
            ServerResult::ListToolsResult(r) => Ok(r),
            _ => Err(unexpected(&self.spec)),
        }
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, McpError> {
        let request = ClientRequest::GetTaskRequest(GetTaskRequest::new(request));
        match self.forward(&context, request).await? {
            ServerResult::GetTaskResult(r) => Ok(r),
            _ => Err(unexpected(&self.spec)),
        }
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let request = ClientRequest::UpdateTaskRequest(UpdateTaskRequest::new(request));
        self.forward_empty(&context, request).await
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let request = ClientRequest::CancelTaskRequest(CancelTaskRequest::new(request));
        self.forward_empty(&context, request).await
    }

    async fn list_skills(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListSkillsResult, McpError> {
        let request = ClientRequest::ListSkillsRequest(ListSkillsRequest {
            method: Default::default(),
            params: request,
            extensions: Default::default(),
        });
        match self.forward(&context, request).await? {
            ServerResult::ListSkillsResult(r) => Ok(r),
            _ => Err(unexpected(&self.spec)),
        }
    }

    async fn get_skill(
        &self,
        request: GetSkillRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetSkillResult, McpError> {
        let request = ClientRequest::GetSkillRequest(GetSkillRequest::new(request));
        match self.forward(&context, request).await? {
            ServerResult::GetSkillResult(r) => Ok(r),
            _ => Err(unexpected(&self.spec)),
        }
    }

    async fn read_resource_directory(
        &self,
        request: ReadResourceDirectoryRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceDirectoryResult, McpError> {
        let request =
            ClientRequest::ReadResourceDirectoryRequest(ReadResourceDirectoryRequest::new(request));
        match self.forward(&context, request).await? {
            // A directory listing is a list of resources on the wire.
            ServerResult::ListResourcesResult(r) => Ok(r),
            _ => Err(unexpected(&self.spec)),
        }
    }

    async fn on_progress(
        &self,
        notification: ProgressNotificationParam,
        _: NotificationContext<RoleServer>,
    ) {
        if let Some(Ok(up)) = self.upstream.get() {
            let _ = up.peer().notify_progress(notification).await;
        }
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
