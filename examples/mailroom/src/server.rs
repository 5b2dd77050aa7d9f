//! The mail and database service itself: an ordinary rmcp server with no policy code in it.
//! Everything Portcullis does (who may call what, what they may see, when to ask) happens in
//! the layer wrapped around it; `mailroom --no-policy` serves this handler bare.

use std::sync::{Arc, Mutex};

use rmcp::handler::server::router::prompt::PromptRouter;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::model::{
    Implementation, ListResourceTemplatesResult, ListResourcesResult, PaginatedRequestParams,
    PromptMessage, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, ResourceTemplate, Role, ServerCapabilities, ServerConfig,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{
    ErrorData as McpError, ServerHandler, prompt, prompt_handler, prompt_router, tool,
    tool_handler, tool_router,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::data::{self, Email, Folder, UserProfile};
use crate::db::{Database, QueryOutput};

/// Scheme of the mail resources: `mail://inbox/m1`, `mail://drafts/d1`, `mail://sent/s1`.
pub const RESOURCE_SCHEME: &str = "mail://";
/// Emails `read_emails` returns when no limit is given.
pub const DEFAULT_LIMIT: u32 = 20;
/// Most emails `read_emails` returns at once.
pub const MAX_LIMIT: u32 = 100;

/// Arguments of `read_emails`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ReadEmailsArgs {
    /// The folder to read (default: inbox).
    pub folder: Option<Folder>,
    /// How many emails, newest first (default 20, at most 100).
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<u32>,
}

/// What `read_emails` returns.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ReadEmailsOutput {
    pub folder: Folder,
    /// Emails in the folder, of which `emails` holds up to `limit`.
    pub total: usize,
    pub emails: Vec<Email>,
}

/// Arguments of `send_email`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SendEmailArgs {
    /// Recipient address.
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// What `send_email` returns.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct SentEmail {
    /// Id of the copy in the sent folder.
    pub id: String,
    pub to: String,
    pub subject: String,
}

/// What an administrator can do to the mailbox.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AdminAction {
    /// Restore every folder to its initial content.
    ResetMailbox,
    /// Delete every sent email.
    PurgeSent,
}

/// Arguments of `admin_tool`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct AdminArgs {
    pub action: AdminAction,
}

/// What `admin_tool` returns.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct AdminOutput {
    pub action: AdminAction,
    pub message: String,
}

/// Arguments of `run_query`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RunQueryArgs {
    /// SQL for SQLite; tables: users, orders, products.
    pub query: String,
}

/// Arguments of `get_user_profile`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ProfileArgs {
    /// A user id such as `u1`.
    pub user_id: String,
}

/// Arguments of the `summarize_inbox` prompt.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct SummarizeArgs {
    /// What to pay attention to (e.g. "deadlines").
    pub focus: Option<String>,
}

/// Arguments of the `draft_reply` prompt.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct DraftReplyArgs {
    /// The id of the inbox email to answer, e.g. `m1`.
    pub email_id: String,
}

/// The mail folders, shared by every session of one server.
struct Mailbox {
    emails: Vec<(Folder, Email)>,
    next_sent: u64,
}

impl Mailbox {
    fn seeded() -> Mailbox {
        Mailbox {
            emails: data::seed_mailbox(),
            next_sent: 2,
        }
    }
}

struct State {
    mailbox: Mutex<Mailbox>,
    users: Vec<UserProfile>,
    db: Database,
}

/// The example MCP server: tools `read_emails`, `send_email`, `admin_tool`, `run_query` and
/// `get_user_profile`, one resource per email, and prompts `summarize_inbox` and
/// `draft_reply`. Clones share the mailbox and the database, so an HTTP server can hand one
/// to each session.
#[derive(Clone)]
pub struct Mailroom {
    state: Arc<State>,
    tool_router: ToolRouter<Mailroom>,
    prompt_router: PromptRouter<Mailroom>,
}

impl Mailroom {
    /// A server over `db`, with the seeded mailbox and user directory.
    pub fn new(db: Database) -> Mailroom {
        Mailroom {
            state: Arc::new(State {
                mailbox: Mutex::new(Mailbox::seeded()),
                users: data::users(),
                db,
            }),
            tool_router: Self::tool_router(),
            prompt_router: Self::prompt_router(),
        }
    }

    fn mailbox(&self) -> std::sync::MutexGuard<'_, Mailbox> {
        // The mailbox is plain data; a panic elsewhere cannot leave it inconsistent.
        self.state.mailbox.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn find_email(&self, folder: Folder, id: &str) -> Option<Email> {
        self.mailbox()
            .emails
            .iter()
            .find(|(f, e)| *f == folder && e.id == id)
            .map(|(_, e)| e.clone())
    }
}

#[tool_router]
impl Mailroom {
    #[tool(
        description = "Read the emails in a folder (inbox, drafts or sent), newest first, with their bodies and attachments.",
        annotations(read_only_hint = true)
    )]
    async fn read_emails(
        &self,
        Parameters(args): Parameters<ReadEmailsArgs>,
    ) -> Json<ReadEmailsOutput> {
        let folder = args.folder.unwrap_or(Folder::Inbox);
        let limit = args.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT) as usize;
        let mailbox = self.mailbox();
        let all: Vec<&Email> = mailbox
            .emails
            .iter()
            .rev()
            .filter(|(f, _)| *f == folder)
            .map(|(_, e)| e)
            .collect();
        Json(ReadEmailsOutput {
            folder,
            total: all.len(),
            emails: all.into_iter().take(limit).cloned().collect(),
        })
    }

    #[tool(
        description = "Send an email. A copy is kept in the sent folder.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            open_world_hint = true
        )
    )]
    async fn send_email(
        &self,
        Parameters(args): Parameters<SendEmailArgs>,
    ) -> Result<Json<SentEmail>, String> {
        let to = args.to.trim();
        let valid = to.split_once('@').is_some_and(|(user, domain)| {
            !user.is_empty() && domain.contains('.') && !to.contains(char::is_whitespace)
        });
        if !valid {
            return Err(format!(
                "{:?} is not an email address (expected name@domain)",
                args.to
            ));
        }
        let mut mailbox = self.mailbox();
        let id = format!("s{}", mailbox.next_sent);
        mailbox.next_sent += 1;
        let email = Email {
            id: id.clone(),
            from: "ann@example.com".into(),
            to: to.into(),
            subject: args.subject.clone(),
            body: args.body,
            attachments: Vec::new(),
        };
        mailbox.emails.push((Folder::Sent, email));
        Ok(Json(SentEmail {
            id,
            to: to.into(),
            subject: args.subject,
        }))
    }

    #[tool(
        description = "Administer the mailbox: reset_mailbox restores every folder, purge_sent deletes all sent mail.",
        annotations(destructive_hint = true)
    )]
    async fn admin_tool(&self, Parameters(args): Parameters<AdminArgs>) -> Json<AdminOutput> {
        let mut mailbox = self.mailbox();
        let message = match args.action {
            AdminAction::ResetMailbox => {
                *mailbox = Mailbox::seeded();
                "every folder was restored to its initial content".to_string()
            }
            AdminAction::PurgeSent => {
                let before = mailbox.emails.len();
                mailbox.emails.retain(|(f, _)| *f != Folder::Sent);
                format!("{} sent emails deleted", before - mailbox.emails.len())
            }
        };
        Json(AdminOutput {
            action: args.action,
            message,
        })
    }

    #[tool(
        description = "Run SQL against the SQLite database (tables users, orders, products) and return the rows of the last statement that has columns."
    )]
    async fn run_query(
        &self,
        Parameters(args): Parameters<RunQueryArgs>,
    ) -> Result<Json<QueryOutput>, String> {
        self.state.db.query(args.query).await.map(Json)
    }

    #[tool(
        description = "A user's profile: name, email, personal data (social security number, phone, bank account) and addresses.",
        annotations(read_only_hint = true)
    )]
    async fn get_user_profile(
        &self,
        Parameters(args): Parameters<ProfileArgs>,
    ) -> Result<Json<UserProfile>, String> {
        self.state
            .users
            .iter()
            .find(|u| u.user_id == args.user_id)
            .cloned()
            .map(Json)
            .ok_or_else(|| {
                let known: Vec<&str> = self.state.users.iter().map(|u| &*u.user_id).collect();
                format!(
                    "no user {:?} (known users: {})",
                    args.user_id,
                    known.join(", ")
                )
            })
    }
}

#[prompt_router]
impl Mailroom {
    #[prompt(description = "Ask the assistant to summarize the inbox.")]
    async fn summarize_inbox(
        &self,
        Parameters(args): Parameters<SummarizeArgs>,
    ) -> Vec<PromptMessage> {
        let mailbox = self.mailbox();
        let lines: Vec<String> = mailbox
            .emails
            .iter()
            .filter(|(f, _)| *f == Folder::Inbox)
            .map(|(_, e)| format!("- {} from {}: {}", e.id, e.from, e.subject))
            .collect();
        let focus = args
            .focus
            .map(|f| format!(" Pay particular attention to {f}."))
            .unwrap_or_default();
        vec![PromptMessage::new_text(
            Role::User,
            format!(
                "Summarize my inbox in three bullet points.{focus}\n{}",
                lines.join("\n")
            ),
        )]
    }

    #[prompt(description = "Ask the assistant to draft a reply to an inbox email.")]
    async fn draft_reply(
        &self,
        Parameters(args): Parameters<DraftReplyArgs>,
    ) -> Result<Vec<PromptMessage>, McpError> {
        let email = self
            .find_email(Folder::Inbox, &args.email_id)
            .ok_or_else(|| {
                McpError::invalid_params(format!("no inbox email {:?}", args.email_id), None)
            })?;
        Ok(vec![PromptMessage::new_text(
            Role::User,
            format!(
                "Draft a short, friendly reply to this email from {}.\nSubject: {}\n\n{}",
                email.from, email.subject, email.body
            ),
        )])
    }
}

/// The resource URI of an email.
pub fn resource_uri(folder: Folder, id: &str) -> String {
    format!("{RESOURCE_SCHEME}{}/{id}", folder.as_str())
}

#[tool_handler(router = self.tool_router)]
#[prompt_handler(router = self.prompt_router)]
impl ServerHandler for Mailroom {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_prompts()
                .enable_resources()
                .build(),
        )
        .with_server_info(Implementation::new("mailroom", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "A small mail and database service: read and send email, look up user profiles, query the orders database.",
        )
    }

    async fn list_resources(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let resources = self
            .mailbox()
            .emails
            .iter()
            .map(|(folder, e)| {
                Resource::new(resource_uri(*folder, &e.id), e.id.clone())
                    .with_title(e.subject.clone())
                    .with_description(format!("{} email from {}", folder.as_str(), e.from))
                    .with_mime_type("application/json")
            })
            .collect();
        Ok(ListResourcesResult {
            resources,
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
                ResourceTemplate::new(format!("{RESOURCE_SCHEME}{{folder}}/{{id}}"), "email")
                    .with_description("One email as JSON; folder is inbox, drafts or sent")
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
        let not_found = || McpError::resource_not_found(format!("no {}", request.uri), None);
        let (folder, id) = request
            .uri
            .strip_prefix(RESOURCE_SCHEME)
            .and_then(|rest| rest.split_once('/'))
            .ok_or_else(not_found)?;
        let folder = Folder::parse(folder).ok_or_else(not_found)?;
        let email = self.find_email(folder, id).ok_or_else(not_found)?;
        let text = serde_json::to_string_pretty(&email)
            .map_err(|e| McpError::internal_error(e.to_string(), None))?;
        Ok(ReadResourceResult::new(vec![
            ResourceContents::text(text, request.uri.clone()).with_mime_type("application/json"),
        ])
        .into())
    }
}
