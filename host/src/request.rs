//! What the engine is asked about: who calls which tool with which arguments.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::rules::pdp::PdpVerdict;

/// The caller, as established by whichever identity layer sits in front of the engine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    /// Stable user id; rules match it exactly.
    pub user: String,
    /// Roles; a rule listing roles applies when any of them overlaps.
    pub roles: Vec<String>,
    /// The agent (AI client) acting for the user, when known.
    pub agent: Option<String>,
    /// Free-form attributes (claims, headers) that conditions can test as `user.attributes.KEY`.
    pub attributes: BTreeMap<String, String>,
}

impl Subject {
    /// A subject with a user id and no roles, the common case in tests and stdio use.
    pub fn user(user: impl Into<String>) -> Self {
        Subject {
            user: user.into(),
            ..Subject::default()
        }
    }

    /// Adds a role; returns self so subjects read well when built inline.
    pub fn with_role(mut self, role: impl Into<String>) -> Self {
        self.roles.push(role.into());
        self
    }
}

/// One tool call as the engine sees it.
#[derive(Debug, Clone)]
pub struct Request {
    pub subject: Subject,
    pub tool: String,
    /// The call's arguments (a JSON object for MCP tools; `Null` when there are none).
    pub arguments: Value,
    /// Session id, so per-session state (attempt counters, approvals) can be scoped.
    pub session: String,
    /// The clock every time-based rule is judged against, fixed once per request so that one
    /// decision never sees two different "now"s.
    pub now_unix_ms: u64,
    /// The answers of the external decision points (`pdp` rules) that apply to this call,
    /// asked by the async layer before evaluation ([`crate::pdp::consult`]). A `pdp` rule
    /// without an answer here is denied (fail closed). Empty, and never looked at, when the
    /// policy has no `pdp` rule.
    pub pdp: Vec<PdpVerdict>,
}

impl Request {
    /// A request stamped with the current time.
    pub fn new(subject: Subject, tool: impl Into<String>, arguments: Value) -> Self {
        Request {
            subject,
            tool: tool.into(),
            arguments,
            session: String::new(),
            now_unix_ms: now_unix_ms(),
            pdp: Vec::new(),
        }
    }

    /// Pins the request's clock, for reproducible evaluations and tests of expiry.
    pub fn at(mut self, unix_ms: u64) -> Self {
        self.now_unix_ms = unix_ms;
        self
    }
}

/// Milliseconds since the Unix epoch; a clock before 1970 reads as 0 rather than panicking.
pub fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
