//! Portcullis: a policy engine for MCP tool calls.
//!
//! Load a policy ([`policy::load_file`]) into an [`Engine`], then ask it about each call:
//! [`Engine::before`] decides allow / deny / elicit, [`Engine::after`] redacts the result.

pub mod audit;
pub mod cli;
pub mod condition;
pub mod decision;
pub mod engine;
pub mod paths;
pub mod policy;
pub mod request;
pub mod result;
pub mod rules;

pub use decision::{Decision, Effect, MatchedRule, Origin, Phase, Redaction};
pub use engine::{Engine, Snapshot};
pub use request::{Request, Subject};
pub use result::{Content, ToolResult};
