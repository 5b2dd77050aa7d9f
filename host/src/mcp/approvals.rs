//! The user's answers to approval prompts, and how they change decisions.
//!
//! [`Approvals`] is the seam between the MCP layer and wherever answers are kept. The MCP layer
//! asks it for decisions (so answers already given are applied) and tells it each new answer.
//! [`MemoryApprovals`] keeps answers in process memory, per user, until `elicit_expiry`, the way
//! the Python seed kept one macaroon per user. A token-backed implementation records answers as
//! sealed grants instead and returns the refreshed token, which the MCP layer hands back in the
//! result's `_meta` under [`TOKEN_META_KEY`](super::TOKEN_META_KEY).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use thiserror::Error;

use crate::decision::{Decision, Effect, Phase, Redaction};
use crate::engine::Engine;
use crate::paths::FieldPath;
use crate::request::Request;
use crate::result::ToolResult;
use crate::rules::{FieldRule, redact_result};
use crate::token::VerifiedToken;

/// Why an answer could not be recorded.
#[derive(Debug, Error)]
#[error("cannot record the approval: {0}")]
pub struct ApprovalError(pub String);

/// Where the user's answers live, and how they change a decision.
pub trait Approvals: Send + Sync + 'static {
    /// The before-phase decision with earlier answers applied: an approved elicit allows.
    fn before(&self, engine: &Engine, req: &Request, token: Option<&VerifiedToken>) -> Decision;

    /// The after-phase decision and result with earlier answers applied: approved fields are
    /// shown, declined ones stay redacted.
    fn after(
        &self,
        engine: &Engine,
        req: &Request,
        result: ToolResult,
        token: Option<&VerifiedToken>,
    ) -> (Decision, ToolResult);

    /// Records the user's answer to an elicit `decision`. Returns a refreshed token when the
    /// answer is kept in the caller's token (to send back to the client), `None` otherwise.
    fn record(
        &self,
        engine: &Engine,
        req: &Request,
        decision: &Decision,
        accepted: bool,
        token: Option<&VerifiedToken>,
    ) -> Result<Option<String>, ApprovalError>;
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    user: String,
    phase: Phase,
    tool: String,
    rule: Arc<str>,
}

#[derive(Clone, Copy)]
struct Answer {
    accepted: bool,
    expires_unix_ms: u64,
}

/// Most answers kept; the oldest-expiring are dropped first when full.
const MAX_ANSWERS: usize = 100_000;

/// Answers in process memory, per user, tool and rule, each lasting `elicit_expiry`.
#[derive(Default)]
pub struct MemoryApprovals {
    answers: Mutex<HashMap<Key, Answer>>,
}

impl MemoryApprovals {
    pub fn new() -> Self {
        Self::default()
    }

    fn lookup(&self, req: &Request, phase: Phase, rule: &Arc<str>) -> Option<bool> {
        let key = Key {
            user: req.subject.user.clone(),
            phase,
            tool: req.tool.clone(),
            rule: rule.clone(),
        };
        let answers = self.answers.lock().unwrap_or_else(PoisonError::into_inner);
        answers
            .get(&key)
            .filter(|a| req.now_unix_ms < a.expires_unix_ms)
            .map(|a| a.accepted)
    }

    /// Number of answers kept (expired ones included until they are pruned).
    pub fn len(&self) -> usize {
        self.answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// True when no answer is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Approvals for MemoryApprovals {
    fn before(&self, engine: &Engine, req: &Request, token: Option<&VerifiedToken>) -> Decision {
        let mut d = engine.before_with(req, token);
        if d.effect != Effect::Elicit {
            return d;
        }
        // Only an approval of every rule that asks lets the call through; deny never gets here.
        let asking: Vec<&Arc<str>> = d
            .matched
            .iter()
            .filter(|m| m.effect == Effect::Elicit)
            .map(|m| &m.id)
            .collect();
        let approved = !asking.is_empty()
            && asking
                .iter()
                .all(|id| self.lookup(req, Phase::Before, id) == Some(true));
        if approved {
            let ids: Vec<&str> = asking.iter().map(|i| &***i).collect();
            d.effect = Effect::Allow;
            d.reason = format!(
                "allowed: approved by the user earlier (rule {})",
                ids.join(", ")
            )
            .into();
            d.notes
                .push("an earlier approval (in server memory) answered the elicit".into());
        }
        d
    }

    fn after(
        &self,
        engine: &Engine,
        req: &Request,
        result: ToolResult,
        token: Option<&VerifiedToken>,
    ) -> (Decision, ToolResult) {
        // Keep the original only when an answer could lift a pending field.
        let snapshot = engine.snapshot();
        let may_lift = snapshot.rules().iter().any(|r| {
            r.phase == Phase::After
                && r.action == Effect::Elicit
                && r.tools.iter().any(|p| p.matches(&req.tool))
        });
        let original = may_lift.then(|| result.clone());
        let (mut d, redacted) = engine.after_with(req, result, token);
        let Some(original) = original else {
            return (d, redacted);
        };
        if d.effect != Effect::Elicit || d.pending_fields().next().is_none() {
            return (d, redacted);
        }
        let mut changed = false;
        let mut lifted: Vec<Arc<str>> = Vec::new();
        for r in d
            .redactions
            .iter_mut()
            .filter(|r| r.effect == Effect::Elicit)
        {
            match self.lookup(req, Phase::After, &r.rule) {
                Some(true) => {
                    lifted.push(r.path.clone());
                    changed = true;
                }
                Some(false) => {
                    // Declined earlier: stays redacted until the answer expires, not asked again.
                    r.effect = Effect::Deny;
                    changed = true;
                }
                None => {}
            }
        }
        if !changed {
            return (d, redacted);
        }
        let rewritten = d
            .matched
            .iter()
            .any(|m| m.detail.as_deref() == Some("rewrote the result"));
        let out = if lifted.is_empty() || rewritten {
            if rewritten && !lifted.is_empty() {
                d.notes.push(
                    "an enforcer rewrote the result, so approved fields stay redacted".into(),
                );
                for r in d.redactions.iter_mut() {
                    if lifted.contains(&r.path) {
                        r.effect = Effect::Deny;
                    }
                }
            }
            redacted
        } else {
            d.redactions.retain(|r| !lifted.contains(&r.path));
            redo(
                original,
                &d.redactions,
                snapshot.config().redaction,
                &mut d.notes,
            )
        };
        let pending: Vec<&str> = d.pending_fields().map(|r| &*r.path).collect();
        if pending.is_empty() {
            d.effect = Effect::Allow;
            d.reason = if d.redactions.is_empty() {
                "result returned unchanged (fields approved by the user)".into()
            } else {
                format!(
                    "{} field path(s) redacted (policy or the user's earlier answer)",
                    d.redactions.len()
                )
                .into()
            };
        }
        (d, out)
    }

    fn record(
        &self,
        engine: &Engine,
        req: &Request,
        decision: &Decision,
        accepted: bool,
        _token: Option<&VerifiedToken>,
    ) -> Result<Option<String>, ApprovalError> {
        if decision.effect != Effect::Elicit {
            return Err(ApprovalError(format!(
                "the decision is {}, not elicit",
                decision.effect
            )));
        }
        // A declined tool is asked again next time (seed behaviour); a declined field stays
        // redacted until the answer expires.
        if !accepted && decision.phase == Phase::Before {
            return Ok(None);
        }
        let expiry_ms = engine
            .snapshot()
            .config()
            .elicit_expiry_secs
            .saturating_mul(1000);
        let answer = Answer {
            accepted,
            expires_unix_ms: req.now_unix_ms.saturating_add(expiry_ms),
        };
        let rules: Vec<Arc<str>> = match decision.phase {
            Phase::Before => decision
                .matched
                .iter()
                .filter(|m| m.effect == Effect::Elicit)
                .map(|m| m.id.clone())
                .collect(),
            Phase::After => decision.pending_fields().map(|r| r.rule.clone()).collect(),
        };
        let mut answers = self.answers.lock().unwrap_or_else(PoisonError::into_inner);
        if answers.len() >= MAX_ANSWERS {
            answers.retain(|_, a| req.now_unix_ms < a.expires_unix_ms);
        }
        if answers.len() >= MAX_ANSWERS {
            return Err(ApprovalError(format!(
                "{MAX_ANSWERS} unexpired answers are already kept in memory"
            )));
        }
        for rule in rules {
            answers.insert(
                Key {
                    user: req.subject.user.clone(),
                    phase: decision.phase,
                    tool: req.tool.clone(),
                    rule,
                },
                answer,
            );
        }
        Ok(None)
    }
}

/// Redacts `original` again with the given redactions (paths re-parsed from their text; they
/// parsed when the policy loaded, so failure is not expected, and withholds everything if it
/// happens).
fn redo(
    mut original: ToolResult,
    redactions: &[Redaction],
    mode: crate::paths::RedactMode,
    notes: &mut Vec<String>,
) -> ToolResult {
    let mut parsed = Vec::with_capacity(redactions.len());
    for r in redactions {
        match FieldPath::parse(&r.path) {
            Ok(p) => parsed.push((p, r)),
            Err(e) => {
                return ToolResult::error(format!("result withheld: {e}"));
            }
        }
    }
    let fields: Vec<FieldRule<'_>> = parsed
        .iter()
        .map(|(path, r)| FieldRule {
            path,
            rule: &r.rule,
            effect: r.effect,
        })
        .collect();
    if !fields.is_empty() {
        redact_result(&mut original, &fields, mode, notes);
    }
    original
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Subject;
    use serde_json::json;

    const POLICY: &str = r#"
config: { elicit_expiry: 60 }
policies:
  - "bf:delete:tool_access:elicit"
  - "bf:read:tool_access:allow"
  - "af:read:field_access:elicit:secret"
  - "af:read:field_access:deny:ssn"
"#;

    fn call(tool: &str, at: u64) -> Request {
        Request::new(Subject::user("ann"), tool, json!({})).at(at)
    }

    #[test]
    fn approved_tool_is_allowed_until_expiry_and_declines_ask_again() {
        let engine = Engine::from_str(POLICY, "p.yaml").unwrap();
        let store = MemoryApprovals::new();
        let d = store.before(&engine, &call("delete", 1_000), None);
        assert_eq!(d.effect, Effect::Elicit);
        store
            .record(&engine, &call("delete", 1_000), &d, false, None)
            .unwrap();
        assert_eq!(
            store.before(&engine, &call("delete", 2_000), None).effect,
            Effect::Elicit
        );
        store
            .record(&engine, &call("delete", 2_000), &d, true, None)
            .unwrap();
        assert_eq!(
            store.before(&engine, &call("delete", 3_000), None).effect,
            Effect::Allow
        );
        assert_eq!(
            store.before(&engine, &call("delete", 62_001), None).effect,
            Effect::Elicit,
            "the approval expired"
        );
        let bob = Request::new(Subject::user("bob"), "delete", json!({})).at(3_000);
        assert_eq!(store.before(&engine, &bob, None).effect, Effect::Elicit);
    }

    #[test]
    fn approved_field_is_shown_declined_field_stays_redacted() {
        let engine = Engine::from_str(POLICY, "p.yaml").unwrap();
        let result = || ToolResult::from_json_value(json!({"secret": "s3", "ssn": "123", "x": 1}));
        for (accepted, secret) in [(true, json!("s3")), (false, json!("[REDACTED]"))] {
            let store = MemoryApprovals::new();
            let (d, r) = store.after(&engine, &call("read", 1_000), result(), None);
            assert_eq!(d.effect, Effect::Elicit);
            assert_eq!(r.structured.as_ref().unwrap()["secret"], "[REDACTED]");
            store
                .record(&engine, &call("read", 1_000), &d, accepted, None)
                .unwrap();
            let (d, r) = store.after(&engine, &call("read", 2_000), result(), None);
            assert_eq!(d.effect, Effect::Allow, "answered: not asked again");
            let s = r.structured.unwrap();
            assert_eq!(s["secret"], secret);
            assert_eq!(s["ssn"], "[REDACTED]", "denied fields stay redacted");
            let crate::result::Content::Text(text) = &r.content[0] else {
                panic!("text item expected")
            };
            let t: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(t["secret"], secret, "text and structured agree");
        }
    }
}
