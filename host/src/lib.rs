//! Portcullis: a policy engine for MCP tool calls.
//!
//! Load a policy into an [`Engine`], then ask it about each call: [`Engine::before`] decides
//! allow / deny / elicit, [`Engine::after`] redacts the result. Every decision carries the
//! rules that made it and is written to the audit trail (`tracing` target
//! `portcullis::audit`).
//!
//! ```
//! use portcullis::{Effect, Engine, Request, Subject, ToolResult};
//! use serde_json::json;
//!
//! let engine = Engine::from_str(
//!     r#"
//! config:
//!   default_effect: deny
//! policies:
//!   - "bf:get_user_profile:tool_access:allow"
//!   - "af:get_user_profile:field_access:deny:user_pii.ssn"
//!   - name: analysts-read
//!     tools: ["list_*"]
//!     subjects: { roles: [analyst] }
//!     when: [{ field: args.limit, op: lte, value: 1000 }]
//!     action: allow
//! "#,
//!     "inline.yaml",
//! )
//! .expect("valid policy");
//!
//! let call = Request::new(Subject::user("ann"), "get_user_profile", json!({}));
//! assert_eq!(engine.before(&call).effect, Effect::Allow);
//!
//! let result = ToolResult::from_json_value(json!({"name": "Ann", "user_pii": {"ssn": "123-45-6789"}}));
//! let (decision, redacted) = engine.after(&call, result);
//! assert_eq!(redacted.structured.unwrap()["user_pii"]["ssn"], "[REDACTED]");
//! assert_eq!(&*decision.redactions[0].path, "user_pii.ssn");
//!
//! let analyst = Subject::user("bob").with_role("analyst");
//! let list = Request::new(analyst, "list_tickets", json!({"limit": 5000}));
//! assert_eq!(engine.before(&list).effect, Effect::Deny); // over the limit: default deny
//! ```

pub mod audit;
pub mod cli;
pub mod condition;
pub mod decision;
pub mod engine;
pub mod jwe;
pub mod mcp;
pub mod paths;
pub mod pdp;
pub mod policy;
pub mod proxy;
pub mod reload;
pub mod request;
pub mod result;
pub mod rules;
pub mod token;
pub mod wasm;

pub use decision::{Decision, Effect, MatchedRule, Origin, Phase, Redaction};
pub use engine::{Engine, Snapshot};
pub use request::{Request, Subject};
pub use result::{Content, ToolResult};
