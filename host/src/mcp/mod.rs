//! The MCP layer: wrap any rmcp [`ServerHandler`] so every request is decided by the engine's
//! current snapshot.
//!
//! - `tools/call`: identity -> before phase (deny: an `isError` result with the reason; elicit:
//!   ask the user) -> the inner handler -> after phase (redaction of `structuredContent` and of
//!   every JSON text item alike).
//! - `tools/list`: tools the caller can never call are left out (`config.hide_denied_tools`),
//!   and output schemas are widened so redacted results still validate.
//! - `resources/read`, `prompts/get` and their lists: policed as `resource:<uri>` and
//!   `prompt:<name>` once the policy has a rule for that kind (see [`visibility::polices`]).
//! - `initialize` / `server/discover`: capabilities the caller may use none of are left out
//!   (`config.hide_denied_capabilities`).
//! - Everything else (completions, logging, subscriptions, tasks, ...) passes once the caller
//!   is identified; the methods in `config.bypass_methods` (by default the handshake, ping and
//!   notifications) pass without identity or rules.
//!
//! Approvals: protocol versions up to 2025-11-25 get a server-to-client `elicitation/create`
//! with a boolean confirmation; 2026-07-28 gets an InputRequired result carrying the question
//! and a sealed request state, resumed when the client retries. A client without elicitation
//! is denied with "approval required". Answers become sealed grants in the caller's token
//! (see [`approvals`]); a caller that presented a token gets the refreshed one back in the
//! result's `_meta` under [`TOKEN_META_KEY`].
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use portcullis::{Engine, mcp::PolicyLayer};
//! # fn demo<H: rmcp::ServerHandler>(my_server: H) {
//! let engine = Arc::new(Engine::from_file("policy.yaml".as_ref()).unwrap());
//! let guarded = PolicyLayer::new(engine).wrap(my_server);
//! // serve `guarded` like any rmcp server: guarded.serve(rmcp::transport::stdio())
//! # }
//! ```

#![allow(deprecated)] // logging (set_level) is deprecated by SEP-2577 but still forwarded

pub mod approvals;
mod convert;
pub mod http;
pub mod identity;
pub mod schema;
pub mod state;
pub mod visibility;

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rmcp::model::Extensions;
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams,
    CancelledNotificationParam, CompleteRequestParams, CompleteResult, ContentBlock,
    CustomNotification, CustomRequest, CustomResult, DiscoverResult, ElicitRequest,
    ElicitRequestParams, ElicitationAction, ElicitationSchema, ErrorCode, GetPromptRequestParams,
    GetPromptResponse, GetSkillRequestParams, GetSkillResult, GetTaskParams, GetTaskResult,
    InitializeRequestParams, InitializeResult, InputRequest, InputRequests, InputRequiredResult,
    InputResponses, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult,
    ListSkillsResult, ListToolsResult, MetaObject, PaginatedRequestParams,
    ProgressNotificationParam, ProtocolVersion, ReadResourceDirectoryRequestParams,
    ReadResourceDirectoryResult, ReadResourceRequestParams, ReadResourceResponse,
    ServerCapabilities, ServerConfig, SetLevelRequestParams, SubscribeRequestParams,
    SubscriptionFilter, Tool, UnsubscribeRequestParams, UpdateTaskParams,
};
use rmcp::service::{
    ElicitationMode, NotificationContext, RequestContext, RoleServer, SubscriptionContext,
};
use rmcp::{ErrorData as McpError, ServerHandler};
use serde_json::{Value, json};

use crate::decision::{Decision, Effect, Phase};
use crate::engine::Engine;
use crate::request::{Request, now_unix_ms};
pub use approvals::{ApprovalError, Approvals, Held};
pub use identity::{AuthError, AuthSetupError, Authenticator, Identity, Transport};
use state::{PhaseTag, Sealer};
use visibility::{PROMPT_PREFIX, RESOURCE_PREFIX};

/// `_meta` key under which a refreshed token (after an approval) goes back to the client.
pub const TOKEN_META_KEY: &str = "portcullis/token";
/// `_meta` key with the decision behind a denial: effect, reason and rule ids.
pub const DECISION_META_KEY: &str = "portcullis/decision";
/// Key of the approval question in an InputRequired result's `inputRequests`.
pub const APPROVAL_INPUT_KEY: &str = "portcullis_approval";
/// Name of the boolean the approval form asks for.
pub const APPROVE_FIELD: &str = "approve";
/// JSON-RPC error code for a caller whose credentials were refused (stdio).
pub const UNAUTHORIZED: ErrorCode = ErrorCode(-32001);
/// JSON-RPC error code for a resource read or prompt denied by policy.
pub const FORBIDDEN: ErrorCode = ErrorCode(-32003);
/// How long the user has to answer an elicitation before the call is denied.
pub const ELICIT_TIMEOUT: Duration = Duration::from_secs(600);

/// What every wrapped handler of one server shares: the engine, the identity layer, where
/// approvals are kept and the key that seals request states. Cheap to clone; `wrap` makes one
/// [`Policed`] handler per session.
#[derive(Clone)]
pub struct PolicyLayer {
    engine: Arc<Engine>,
    auth: Arc<Authenticator>,
    approvals: Arc<Approvals>,
    sealer: Arc<Sealer>,
    schemas: Arc<schema::AdvertisedSchemas>,
}

impl PolicyLayer {
    /// A layer with a fixed `local` identity, answers kept in server-held session tokens under
    /// a per-process key, and a random sealing key for request states.
    pub fn new(engine: Arc<Engine>) -> Self {
        PolicyLayer {
            engine,
            auth: Arc::new(Authenticator::fixed(crate::request::Subject::user(
                identity::DEFAULT_FIXED_USER,
            ))),
            approvals: Arc::new(Approvals::process_local(&process_secret())),
            sealer: Arc::new(Sealer::with_key(process_secret())),
            schemas: Arc::default(),
        }
    }

    /// Uses `auth` to identify callers. With tokens (mode `macaroon`), answers are sealed
    /// with the same keyring, so refreshed tokens verify wherever the caller's token does.
    pub fn with_authenticator(mut self, auth: Arc<Authenticator>) -> Self {
        if let Some(keys) = auth.keyring() {
            self.approvals = Arc::new(Approvals::new(keys.clone()));
        }
        self.auth = auth;
        self
    }

    /// Where answers are kept, e.g. to count session tokens.
    pub fn approvals(&self) -> &Arc<Approvals> {
        &self.approvals
    }

    /// Seals request states with `sealer` (e.g. keyed from the token root key).
    pub fn with_sealer(mut self, sealer: Arc<Sealer>) -> Self {
        self.sealer = sealer;
        self
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    pub fn authenticator(&self) -> &Arc<Authenticator> {
        &self.auth
    }

    /// Wraps `inner`; the result is an rmcp server handler enforcing the policy.
    pub fn wrap<H: ServerHandler>(&self, inner: H) -> Policed<H> {
        Policed {
            inner,
            layer: self.clone(),
            session: OnceLock::new(),
        }
    }
}

/// 32 random bytes, for keys that never leave this process. Without OS randomness (which
/// only a broken system lacks) a key at least unique to this process and moment.
fn process_secret() -> [u8; 32] {
    let mut key = [0u8; 32];
    if getrandom::fill(&mut key).is_err() {
        use sha2::Digest;
        let seed = format!("{}:{}", std::process::id(), now_unix_ms());
        key = sha2::Sha256::digest(seed.as_bytes()).into();
    }
    key
}

fn random_id() -> String {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        return format!("{:x}", now_unix_ms());
    }
    crate::token::identifier::hex(&b)
}

/// An rmcp server handler that enforces the policy around an inner handler.
pub struct Policed<H> {
    inner: H,
    layer: PolicyLayer,
    /// Used as the session id when the transport has none (stdio); made on first use, since
    /// over HTTP a handler is made for every request.
    session: OnceLock<String>,
}

/// The identity the HTTP layer established, carried in the request's extensions.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Arc<Identity>);

/// What asking the user came to.
enum Asked {
    Answer(bool),
    /// 2026-07-28: the question goes back as an InputRequired result.
    Input(InputRequiredResult),
    /// The client cannot be asked; the text says why.
    Unavailable(String),
}

/// One before-phase outcome: go on (with an optional refreshed token) or answer now.
enum Gate<T> {
    Proceed(Option<String>),
    Stop(T),
}

/// What an approval is for: a noun phrase for denials, and the question to ask.
struct Asking {
    what: String,
    question: String,
}

/// Who is calling and the token their call is decided with.
struct Caller {
    identity: Arc<Identity>,
    held: Held,
}

impl<H: ServerHandler> Policed<H> {
    /// The inner handler.
    pub fn inner(&self) -> &H {
        &self.inner
    }

    fn identify(&self, ctx: &RequestContext<RoleServer>) -> Result<Arc<Identity>, McpError> {
        self.identify_in(&ctx.extensions)
    }

    fn identify_in(&self, extensions: &Extensions) -> Result<Arc<Identity>, McpError> {
        if let Some(parts) = extensions.get::<::http::request::Parts>() {
            if let Some(Authenticated(id)) = parts.extensions.get::<Authenticated>() {
                return Ok(id.clone());
            }
            return self
                .layer
                .auth
                .authenticate_headers(&parts.headers)
                .map(Arc::new)
                .map_err(unauthorized);
        }
        self.layer
            .auth
            .authenticate_stdio()
            .map(Arc::new)
            .map_err(unauthorized)
    }

    /// Whether `config.bypass_methods` lets `method` through without identity or rules.
    fn bypassed(&self, method: &str) -> bool {
        self.layer
            .engine
            .snapshot()
            .config()
            .bypass_methods
            .matches(method)
    }

    /// Identifies the caller of `method` unless it is bypassed.
    fn admit(&self, method: &str, ctx: &RequestContext<RoleServer>) -> Result<(), McpError> {
        if !self.bypassed(method) {
            self.identify(ctx)?;
        }
        Ok(())
    }

    /// Whether a notification may be handled: bypassed, or from an identified caller. A
    /// notification cannot be answered with an error, so one that fails is dropped and logged.
    fn admit_notification(&self, method: &str, ctx: &NotificationContext<RoleServer>) -> bool {
        if self.bypassed(method) {
            return true;
        }
        match self.identify_in(&ctx.extensions) {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(method, reason = %e.message, "notification dropped: caller not identified");
                false
            }
        }
    }

    /// The caller of a listing `method`, or `None` when the method is bypassed (listed in
    /// full, as the inner server lists it).
    fn lister(
        &self,
        method: &str,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<Option<Caller>, McpError> {
        if self.bypassed(method) {
            return Ok(None);
        }
        self.caller(ctx).map(Some)
    }

    /// The caller and their current token (refreshed by earlier answers, if any).
    fn caller(&self, ctx: &RequestContext<RoleServer>) -> Result<Caller, McpError> {
        let identity = self.identify(ctx)?;
        let held = self
            .layer
            .approvals
            .held(&self.layer.engine, &identity, now_unix_ms());
        Ok(Caller { identity, held })
    }

    /// `config.hide_denied_capabilities`: leaves out of `capabilities` each of tools,
    /// resources and prompts the caller may use none of, judged from the inner server's own
    /// lists (every page) as the list endpoints would filter them. A caller that cannot be
    /// identified may use nothing. A listing that fails leaves its capability in place: the
    /// calls are still decided one by one.
    async fn trim_capabilities(
        &self,
        capabilities: &mut ServerCapabilities,
        ctx: &RequestContext<RoleServer>,
    ) {
        let caller = self.caller(ctx).ok();
        let snapshot = self.layer.engine.snapshot();
        let now = now_unix_ms();
        // True when a listing succeeded and the caller may use none of it (`prefix` + name).
        let none_usable = |names: Option<Vec<String>>, prefix: &str| {
            names.is_some_and(|names| {
                !names.iter().any(|name| {
                    caller.as_ref().is_some_and(|c| {
                        visibility::may_call(
                            &snapshot,
                            &c.identity.subject,
                            c.held.verified(),
                            &format!("{prefix}{name}"),
                            now,
                        )
                    })
                })
            })
        };
        if capabilities.tools.is_some() {
            let names = self.every_page(
                ctx,
                |p, c| self.inner.list_tools(p, c),
                |r| {
                    let names = r.tools.into_iter().map(|t| t.name.into_owned());
                    (names.collect(), r.next_cursor)
                },
            );
            if none_usable(names.await, "") {
                capabilities.tools = None;
            }
        }
        if capabilities.prompts.is_some() && visibility::polices(&snapshot, PROMPT_PREFIX) {
            let names = self.every_page(
                ctx,
                |p, c| self.inner.list_prompts(p, c),
                |r| {
                    (
                        r.prompts.into_iter().map(|p| p.name).collect(),
                        r.next_cursor,
                    )
                },
            );
            if none_usable(names.await, PROMPT_PREFIX) {
                capabilities.prompts = None;
            }
        }
        if capabilities.resources.is_some() && visibility::polices(&snapshot, RESOURCE_PREFIX) {
            let uris = self.every_page(
                ctx,
                |p, c| self.inner.list_resources(p, c),
                |r| {
                    (
                        r.resources.into_iter().map(|r| r.uri).collect(),
                        r.next_cursor,
                    )
                },
            );
            // A template names resources not listed: they count unless no rule could ever
            // let this caller read any resource.
            let may_read_any = caller.as_ref().is_some_and(|c| {
                visibility::may_use_any(
                    &snapshot,
                    &c.identity.subject,
                    c.held.verified(),
                    RESOURCE_PREFIX,
                    now,
                )
            });
            if none_usable(uris.await, RESOURCE_PREFIX) {
                let templated = may_read_any && {
                    let templates = self.every_page(
                        ctx,
                        |p, c| self.inner.list_resource_templates(p, c),
                        |r| (r.resource_templates, r.next_cursor),
                    );
                    templates.await.is_none_or(|t| !t.is_empty())
                };
                if !templated {
                    capabilities.resources = None;
                }
            }
        }
    }

    /// Every item of a paginated inner listing, or `None` if a page fails (or the server
    /// pages without end).
    async fn every_page<R, T, F, Fut>(
        &self,
        ctx: &RequestContext<RoleServer>,
        list: F,
        split: impl Fn(R) -> (Vec<T>, Option<String>),
    ) -> Option<Vec<T>>
    where
        F: Fn(Option<PaginatedRequestParams>, RequestContext<RoleServer>) -> Fut,
        Fut: Future<Output = Result<R, McpError>>,
    {
        const MAX_PAGES: usize = 100;
        let mut items = Vec::new();
        let mut cursor = None;
        for _ in 0..MAX_PAGES {
            let params = cursor.map(|c| PaginatedRequestParams::default().with_cursor(Some(c)));
            let (page, next) = split(list(params, ctx.clone()).await.ok()?);
            items.extend(page);
            match next {
                Some(c) => cursor = Some(c),
                None => return Some(items),
            }
        }
        None
    }

    fn session_id(&self, ctx: &RequestContext<RoleServer>) -> String {
        ctx.extensions
            .get::<::http::request::Parts>()
            .and_then(|p| p.headers.get("mcp-session-id"))
            .and_then(|v| v.to_str().ok())
            .map(String::from)
            .unwrap_or_else(|| self.session.get_or_init(random_id).clone())
    }

    fn request(
        &self,
        ctx: &RequestContext<RoleServer>,
        identity: &Identity,
        tool: String,
        arguments: Value,
    ) -> Request {
        let mut req = Request::new(identity.subject.clone(), tool, arguments);
        req.session = self.session_id(ctx);
        req
    }

    /// Takes this layer's answer out of a retried request (2026-07-28): checks the sealed
    /// state and returns the phase it was asked in and whether the user approved.
    fn take_answer(
        &self,
        state: &mut Option<String>,
        responses: &mut Option<InputResponses>,
        req: &Request,
    ) -> Result<Option<(PhaseTag, bool)>, McpError> {
        let Some(s) = state.as_deref().filter(|s| s.starts_with(state::PREFIX)) else {
            return Ok(None);
        };
        let pending = self
            .layer
            .sealer
            .open(s, req)
            .map_err(|e| McpError::invalid_params(e.to_string(), None))?;
        let response = responses
            .as_mut()
            .and_then(|m| m.remove(APPROVAL_INPUT_KEY));
        if responses.as_ref().is_some_and(|m| m.is_empty()) {
            *responses = None;
        }
        *state = None;
        let accepted = response.is_some_and(|r| approved(&r));
        Ok(Some((pending.phase, accepted)))
    }

    /// Asks the user to approve; `question` names the tool or fields and the grant's length.
    async fn ask(
        &self,
        ctx: &RequestContext<RoleServer>,
        req: &Request,
        phase: Phase,
        question: String,
    ) -> Asked {
        let schema = approval_schema();
        let modern = ctx
            .protocol_version()
            .is_some_and(|v| v.as_str() >= ProtocolVersion::V_2026_07_28.as_str());
        let can_elicit = ctx
            .client_capabilities()
            .is_some_and(|c| c.elicitation.is_some());
        if !can_elicit {
            return Asked::Unavailable(
                "this client does not support elicitation, so the user cannot be asked".into(),
            );
        }
        let params = ElicitRequestParams::FormElicitationParams {
            meta: None,
            message: question,
            requested_schema: schema,
        };
        if modern {
            let mut requests = InputRequests::new();
            requests.insert(
                APPROVAL_INPUT_KEY.to_string(),
                InputRequest::Elicitation(ElicitRequest::new(params)),
            );
            let state = self.layer.sealer.seal(req, phase);
            return Asked::Input(InputRequiredResult::new(Some(requests), Some(state)));
        }
        if !ctx
            .peer
            .supported_elicitation_modes()
            .contains(&ElicitationMode::Form)
        {
            return Asked::Unavailable(
                "this client does not support form elicitation, so the user cannot be asked".into(),
            );
        }
        // A call the client cancels (or whose session ends) while the user is being asked is
        // abandoned at once: an answer arriving later must not run it.
        let asked = tokio::select! {
            asked = ctx
                .peer
                .create_elicitation_with_timeout(params, Some(ELICIT_TIMEOUT)) => asked,
            () = ctx.ct.cancelled() => {
                return Asked::Unavailable("the request was cancelled while the user was being asked".into());
            }
        };
        match asked {
            Ok(r) => Asked::Answer(
                r.action == ElicitationAction::Accept
                    && r.content.as_ref().is_some_and(|c| c[APPROVE_FIELD] == true),
            ),
            Err(e) => Asked::Unavailable(format!("asking the user failed: {e}")),
        }
    }

    /// The before phase for any target: decide, ask if needed, record the answer (or the
    /// caveats an enforcer attached to its allow) in the caller's token.
    #[allow(clippy::too_many_arguments)]
    async fn gate<T>(
        &self,
        ctx: &RequestContext<RoleServer>,
        caller: &Caller,
        req: &Request,
        answered: Option<(PhaseTag, bool)>,
        what: &Asking,
        deny: impl Fn(&Decision, String) -> T,
        input: impl Fn(InputRequiredResult) -> T,
    ) -> Result<Gate<T>, McpError> {
        let engine = &self.layer.engine;
        let approvals = &self.layer.approvals;
        // Decision points are asked here, concurrently and with their timeouts, so the
        // engine decides synchronously with their answers in hand (none: no copy, no cost).
        let asked = crate::pdp::with_answers(engine, req, caller.held.verified()).await;
        let req = asked.as_ref().unwrap_or(req);
        let d = engine.before_with(req, caller.held.verified());
        match d.effect {
            Effect::Allow => match approvals.append_caveats(engine, &caller.held, req, &d) {
                Ok(refreshed) => Ok(Gate::Proceed(refreshed)),
                // The enforcer allowed only on condition: without its caveats, fail closed.
                Err(e) => Ok(Gate::Stop(deny(&d, format!("Denied: {e}")))),
            },
            Effect::Deny => {
                let text = format!("Denied by policy: {}", d.reason);
                Ok(Gate::Stop(deny(&d, text)))
            }
            Effect::Elicit => {
                let accepted = match answered {
                    Some((PhaseTag::Before, a)) => a,
                    _ => {
                        // The reason names the rule, or is the enforcer's own question.
                        let reason = d.reason.trim_end();
                        let stop = if reason.ends_with(['.', '!', '?']) {
                            ""
                        } else {
                            "."
                        };
                        let question = format!(
                            "{} {reason}{stop} If you approve, you are not asked again for {}.",
                            what.question,
                            duration_words(engine.snapshot().config().elicit_expiry_secs)
                        );
                        match self.ask(ctx, req, Phase::Before, question).await {
                            Asked::Answer(a) => a,
                            Asked::Input(ir) => return Ok(Gate::Stop(input(ir))),
                            Asked::Unavailable(why) => {
                                let text =
                                    format!("Denied: approval required. {} ({why}).", d.reason);
                                return Ok(Gate::Stop(deny(&d, text)));
                            }
                        }
                    }
                };
                let refreshed = match approvals.record(engine, &caller.held, req, &d, accepted) {
                    Ok(t) => t,
                    Err(e) => return Ok(Gate::Stop(deny(&d, format!("Denied: {e}")))),
                };
                if accepted {
                    Ok(Gate::Proceed(refreshed))
                } else {
                    let text = format!("Denied: the user declined to approve {}.", what.what);
                    Ok(Gate::Stop(deny(&d, text)))
                }
            }
        }
    }

    async fn police_call(
        &self,
        mut params: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let mut caller = self.caller(&ctx)?;
        let arguments = params
            .arguments
            .clone()
            .map(Value::Object)
            .unwrap_or(Value::Null);
        let req = self.request(&ctx, &caller.identity, params.name.to_string(), arguments);
        let answered =
            self.take_answer(&mut params.request_state, &mut params.input_responses, &req)?;
        let what = Asking {
            what: format!("tool {:?}", req.tool),
            question: format!("Allow tool {:?} to run?", req.tool),
        };
        let mut refreshed = match self
            .gate(
                &ctx,
                &caller,
                &req,
                answered,
                &what,
                |d, text| CallToolResponse::Complete(denied(d, text)),
                CallToolResponse::InputRequired,
            )
            .await?
        {
            Gate::Proceed(t) => t,
            Gate::Stop(r) => return Ok(r),
        };
        let engine = &self.layer.engine;
        let approvals = &self.layer.approvals;
        if refreshed.is_some() {
            // The after phase sees what the before phase just added to the token.
            caller.held = approvals.held(engine, &caller.identity, req.now_unix_ms);
        }
        // What asking the user later needs, without the request's HTTP parts: the context
        // itself goes to the inner handler uncopied.
        let mut asking = RequestContext::new(ctx.id.clone(), ctx.peer.clone());
        asking.meta = ctx.meta.clone();
        asking.ct = ctx.ct.clone();
        let response = self.inner.call_tool(params, ctx).await?;
        let ctx = asking;
        // The policy in force when the result arrives decides what happens to it.
        let touches = engine
            .snapshot()
            .touches_results(&req.tool, caller.held.verified());
        let mut result = match response {
            CallToolResponse::Complete(r) => r,
            CallToolResponse::Task(t) if touches => {
                drop(t);
                let text = format!(
                    "Denied: tool {:?} answered with a task, whose result the policy cannot inspect; tools with after-phase rules must answer directly",
                    req.tool
                );
                return Ok(CallToolResult::error(vec![ContentBlock::text(text)]).into());
            }
            // The inner server's own InputRequired rounds and tasks pass; on its final round
            // the before phase runs again (answers are remembered) and the after phase applies.
            other => return Ok(other),
        };
        if !touches {
            // No after-phase rule names this tool: the result goes out exactly as it came.
            if let Some(token) = refreshed {
                set_meta(&mut result.meta, TOKEN_META_KEY, Value::String(token));
            }
            return Ok(result.into());
        }
        let seen = convert::to_tool_result(&result);
        let (d, mut out) = engine.after_with(&req, seen.clone(), caller.held.verified());
        if d.effect == Effect::Elicit && d.pending_fields().next().is_some() {
            let fields: Vec<&str> = d.pending_fields().map(|r| &*r.path).collect();
            let accepted = match answered {
                Some((PhaseTag::After, a)) => Some(a),
                _ => {
                    let question = format!(
                        "Show the field(s) {} in the result of tool {:?}? Until you approve they are redacted. Your answer is kept for {}.",
                        fields.join(", "),
                        req.tool,
                        duration_words(engine.snapshot().config().elicit_expiry_secs)
                    );
                    match self.ask(&ctx, &req, Phase::After, question).await {
                        Asked::Answer(a) => Some(a),
                        Asked::Input(ir) => return Ok(ir.into()),
                        Asked::Unavailable(why) => {
                            tracing::info!(
                                tool = %req.tool,
                                "fields stay redacted: approval required ({why})"
                            );
                            None
                        }
                    }
                }
            };
            if let Some(accepted) = accepted {
                match approvals.record(engine, &caller.held, &req, &d, accepted) {
                    Ok(t) => {
                        refreshed = t.or(refreshed);
                        if accepted {
                            let held = approvals.held(engine, &caller.identity, req.now_unix_ms);
                            let (_, again) = engine.after_with(&req, seen.clone(), held.verified());
                            out = again;
                        }
                    }
                    Err(e) => tracing::warn!(tool = %req.tool, "{e}; fields stay redacted"),
                }
            }
        }
        // Nothing withheld: the inner result goes out exactly as it came.
        let mut result = if out == seen {
            result
        } else {
            convert::from_tool_result(out, &result)
        };
        if let Some(token) = refreshed {
            set_meta(&mut result.meta, TOKEN_META_KEY, Value::String(token));
        }
        Ok(result.into())
    }
}

fn approved(response: &Value) -> bool {
    response["action"] == "accept" && response["content"][APPROVE_FIELD] == true
}

fn approval_schema() -> ElicitationSchema {
    ElicitationSchema::builder()
        .required_bool_property(APPROVE_FIELD, |b| {
            b.title("Approve")
                .description("Check to approve; leave unchecked or decline to refuse.")
        })
        .build_unchecked()
}

/// "1 hour", "30 minutes", "90 seconds": how long an answer lasts, in words.
pub fn duration_words(secs: u64) -> String {
    let plural = |n: u64, unit: &str| {
        if n == 1 {
            format!("1 {unit}")
        } else {
            format!("{n} {unit}s")
        }
    };
    match secs {
        s if s >= 86_400 && s % 86_400 == 0 => plural(s / 86_400, "day"),
        s if s >= 3_600 && s % 3_600 == 0 => plural(s / 3_600, "hour"),
        s if s >= 60 && s % 60 == 0 => plural(s / 60, "minute"),
        s => plural(s, "second"),
    }
}

fn unauthorized(e: AuthError) -> McpError {
    match &e {
        AuthError::Invalid(_) => McpError::new(UNAUTHORIZED, format!("unauthorized: {e}"), None),
        AuthError::MissingClaims { missing } => McpError::new(
            FORBIDDEN,
            format!("forbidden: {e}"),
            Some(json!({"error": "insufficient_scope", "missing": missing})),
        ),
    }
}

fn forbidden(_: &Decision, text: String) -> McpError {
    McpError::new(FORBIDDEN, text, None)
}

/// The tool result a denied call gets: `isError`, the reason as text, the decision in `_meta`.
fn denied(d: &Decision, text: String) -> CallToolResult {
    let mut r = CallToolResult::error(vec![ContentBlock::text(text)]);
    let rules: Vec<&str> = d.matched.iter().map(|m| &*m.id).collect();
    set_meta(
        &mut r.meta,
        DECISION_META_KEY,
        json!({"effect": d.effect.as_str(), "reason": d.reason, "rules": rules}),
    );
    r
}

fn set_meta(meta: &mut Option<MetaObject>, key: &str, value: Value) {
    meta.get_or_insert_with(MetaObject::default)
        .0
        .insert(key.to_string(), value);
}

impl<H: ServerHandler> ServerHandler for Policed<H> {
    async fn ping(&self, context: RequestContext<RoleServer>) -> Result<(), McpError> {
        self.admit("ping", &context)?;
        self.inner.ping(context).await
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, McpError> {
        self.admit("initialize", &context)?;
        let mut result = self.inner.initialize(request, context.clone()).await?;
        if self
            .layer
            .engine
            .snapshot()
            .config()
            .hide_denied_capabilities
        {
            self.trim_capabilities(&mut result.capabilities, &context)
                .await;
        }
        Ok(result)
    }

    fn negotiate_initialize(
        &self,
        request: &InitializeRequestParams,
    ) -> Result<InitializeResult, McpError> {
        self.inner.negotiate_initialize(request)
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        self.inner.supported_protocol_versions()
    }

    async fn discover(
        &self,
        context: RequestContext<RoleServer>,
    ) -> Result<DiscoverResult, McpError> {
        self.admit("server/discover", &context)?;
        let mut result = self.inner.discover(context.clone()).await?;
        if self
            .layer
            .engine
            .snapshot()
            .config()
            .hide_denied_capabilities
        {
            self.trim_capabilities(&mut result.capabilities, &context)
                .await;
            // What this caller was shown is not what another would be.
            result.cache_scope = CacheScope::Private;
        }
        Ok(result)
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        self.admit("completion/complete", &context)?;
        self.inner.complete(request, context).await
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.admit("logging/setLevel", &context)?;
        self.inner.set_level(request, context).await
    }

    async fn get_prompt(
        &self,
        mut request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let caller = self.caller(&context)?;
        if !visibility::polices(&self.layer.engine.snapshot(), PROMPT_PREFIX) {
            return self.inner.get_prompt(request, context).await;
        }
        let arguments = request
            .arguments
            .clone()
            .map(Value::Object)
            .unwrap_or(Value::Null);
        let target = format!("{PROMPT_PREFIX}{}", request.name);
        let req = self.request(&context, &caller.identity, target, arguments);
        let answered = self.take_answer(
            &mut request.request_state,
            &mut request.input_responses,
            &req,
        )?;
        let what = Asking {
            what: format!("prompt {:?}", request.name),
            question: format!("Allow getting prompt {:?}?", request.name),
        };
        match self
            .gate(
                &context,
                &caller,
                &req,
                answered,
                &what,
                |d, t| Err(forbidden(d, t)),
                |ir| Ok(GetPromptResponse::InputRequired(ir)),
            )
            .await?
        {
            Gate::Proceed(refreshed) => match self.inner.get_prompt(request, context).await? {
                GetPromptResponse::Complete(mut r) => {
                    if let Some(token) = refreshed {
                        set_meta(&mut r.meta, TOKEN_META_KEY, Value::String(token));
                    }
                    Ok(GetPromptResponse::Complete(r))
                }
                other => Ok(other),
            },
            Gate::Stop(r) => r,
        }
    }

    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        let Some(caller) = self.lister("prompts/list", &context)? else {
            return self.inner.list_prompts(request, context).await;
        };
        let mut result = self.inner.list_prompts(request, context).await?;
        hide_uncallable(
            &self.layer.engine,
            &caller,
            PROMPT_PREFIX,
            &mut result.prompts,
            |p| &p.name,
        );
        Ok(result)
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let Some(caller) = self.lister("resources/list", &context)? else {
            return self.inner.list_resources(request, context).await;
        };
        let mut result = self.inner.list_resources(request, context).await?;
        hide_uncallable(
            &self.layer.engine,
            &caller,
            RESOURCE_PREFIX,
            &mut result.resources,
            |r| &r.uri,
        );
        Ok(result)
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        self.admit("resources/templates/list", &context)?;
        self.inner.list_resource_templates(request, context).await
    }

    async fn read_resource(
        &self,
        mut request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let mut caller = self.caller(&context)?;
        if !visibility::polices(&self.layer.engine.snapshot(), RESOURCE_PREFIX) {
            return self.inner.read_resource(request, context).await;
        }
        let target = format!("{RESOURCE_PREFIX}{}", request.uri);
        let req = self.request(
            &context,
            &caller.identity,
            target,
            json!({"uri": request.uri}),
        );
        let answered = self.take_answer(
            &mut request.request_state,
            &mut request.input_responses,
            &req,
        )?;
        let what = Asking {
            what: format!("reading resource {:?}", request.uri),
            question: format!("Allow reading resource {:?}?", request.uri),
        };
        let refreshed = match self
            .gate(
                &context,
                &caller,
                &req,
                answered,
                &what,
                |d, t| Err(forbidden(d, t)),
                |ir| Ok(ReadResourceResponse::InputRequired(ir)),
            )
            .await?
        {
            Gate::Proceed(t) => t,
            Gate::Stop(r) => return r,
        };
        let engine = &self.layer.engine;
        if refreshed.is_some() {
            caller.held = self
                .layer
                .approvals
                .held(engine, &caller.identity, req.now_unix_ms);
        }
        match self.inner.read_resource(request, context).await? {
            ReadResourceResponse::Complete(result) => {
                let (d, out) = engine.after_with(
                    &req,
                    convert::resource_to_tool_result(&result),
                    caller.held.verified(),
                );
                if d.effect == Effect::Deny {
                    return Err(forbidden(&d, format!("Denied by policy: {}", d.reason)));
                }
                let mut result = convert::resource_from_tool_result(out, result);
                if let Some(token) = refreshed {
                    set_meta(&mut result.meta, TOKEN_META_KEY, Value::String(token));
                }
                Ok(ReadResourceResponse::Complete(result))
            }
            other => Ok(other),
        }
    }

    #[allow(deprecated)]
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.admit("resources/subscribe", &context)?;
        self.inner.subscribe(request, context).await
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.admit("resources/unsubscribe", &context)?;
        self.inner.unsubscribe(request, context).await
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        self.police_call(request, context).await
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let caller = self.lister("tools/list", &context)?;
        let mut result = self.inner.list_tools(request, context).await?;
        let snapshot = self.layer.engine.snapshot();
        if let Some(caller) = caller.filter(|_| snapshot.config().hide_denied_tools) {
            let now = now_unix_ms();
            result.tools.retain(|t| {
                visibility::may_call(
                    &snapshot,
                    &caller.identity.subject,
                    caller.held.verified(),
                    &t.name,
                    now,
                )
            });
        }
        for tool in result.tools.iter_mut() {
            self.layer.schemas.adjust(tool, &snapshot);
        }
        Ok(result)
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        let mut tool = self.inner.get_tool(name)?;
        let snapshot = self.layer.engine.snapshot();
        self.layer.schemas.adjust(&mut tool, &snapshot);
        Some(tool)
    }

    async fn on_custom_request(
        &self,
        request: CustomRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, McpError> {
        self.admit(&request.method, &context)?;
        self.inner.on_custom_request(request, context).await
    }

    async fn on_cancelled(
        &self,
        notification: CancelledNotificationParam,
        context: NotificationContext<RoleServer>,
    ) {
        if self.admit_notification("notifications/cancelled", &context) {
            self.inner.on_cancelled(notification, context).await
        }
    }

    async fn on_progress(
        &self,
        notification: ProgressNotificationParam,
        context: NotificationContext<RoleServer>,
    ) {
        if self.admit_notification("notifications/progress", &context) {
            self.inner.on_progress(notification, context).await
        }
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        if self.admit_notification("notifications/initialized", &context) {
            self.inner.on_initialized(context).await
        }
    }

    async fn on_roots_list_changed(&self, context: NotificationContext<RoleServer>) {
        if self.admit_notification("notifications/roots/list_changed", &context) {
            self.inner.on_roots_list_changed(context).await
        }
    }

    async fn on_custom_notification(
        &self,
        notification: CustomNotification,
        context: NotificationContext<RoleServer>,
    ) {
        if self.admit_notification(&notification.method, &context) {
            self.inner
                .on_custom_notification(notification, context)
                .await
        }
    }

    fn get_info(&self) -> ServerConfig {
        self.inner.get_info()
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        self.inner.accepted_subscription_filter(requested)
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), McpError> {
        if !self.bypassed("subscriptions/listen") {
            self.identify(context.request_context())?;
        }
        self.inner.listen(context).await
    }

    // Tasks exist only for tools without after-phase rules (see `police_call`), so their
    // results need no redaction; the caller must still be identified.
    async fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, McpError> {
        self.admit("tasks/get", &context)?;
        self.inner.get_task(request, context).await
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.admit("tasks/update", &context)?;
        self.inner.update_task(request, context).await
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.admit("tasks/cancel", &context)?;
        self.inner.cancel_task(request, context).await
    }

    async fn list_skills(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListSkillsResult, McpError> {
        self.admit("skills/list", &context)?;
        self.inner.list_skills(request, context).await
    }

    async fn get_skill(
        &self,
        request: GetSkillRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetSkillResult, McpError> {
        self.admit("skills/get", &context)?;
        self.inner.get_skill(request, context).await
    }

    async fn read_resource_directory(
        &self,
        request: ReadResourceDirectoryRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceDirectoryResult, McpError> {
        let Some(caller) = self.lister("resources/directory/read", &context)? else {
            return self.inner.read_resource_directory(request, context).await;
        };
        let mut result = self.inner.read_resource_directory(request, context).await?;
        hide_uncallable(
            &self.layer.engine,
            &caller,
            RESOURCE_PREFIX,
            &mut result.resources,
            |r| &r.uri,
        );
        Ok(result)
    }
}

/// Drops the listed prompts or resources (named `prefix` + `name(item)`) that this caller could
/// never get, when the policy polices that kind and `hide_denied_tools` is on.
fn hide_uncallable<T>(
    engine: &Engine,
    caller: &Caller,
    prefix: &str,
    items: &mut Vec<T>,
    name: impl Fn(&T) -> &str,
) {
    let snapshot = engine.snapshot();
    if !snapshot.config().hide_denied_tools || !visibility::polices(&snapshot, prefix) {
        return;
    }
    let now = now_unix_ms();
    let mut target = String::new();
    items.retain(|item| {
        target.clear();
        target.push_str(prefix);
        target.push_str(name(item));
        visibility::may_call(
            &snapshot,
            &caller.identity.subject,
            caller.held.verified(),
            &target,
            now,
        )
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration_words(3600), "1 hour");
        assert_eq!(duration_words(7200), "2 hours");
        assert_eq!(duration_words(1800), "30 minutes");
        assert_eq!(duration_words(90), "90 seconds");
        assert_eq!(duration_words(86_400), "1 day");
    }
}
