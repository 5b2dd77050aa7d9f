//! The audit trail: one `tracing` event per decision, target `portcullis::audit`.
//!
//! Fields are formatted lazily, so when no subscriber listens the per-call cost is a level
//! check.

use std::fmt;

use crate::decision::{Decision, Redaction};
use crate::request::Request;
use crate::token::Identifier;

/// Target every audit event uses, so operators can route or filter the trail.
pub const TARGET: &str = "portcullis::audit";

/// Emits the audit event for one decision.
pub fn record(req: &Request, d: &Decision) {
    record_with_token(req, d, None);
}

/// Emits the audit event for one decision made for a token holder; `token` is the token's
/// nonce (hex), so every decision can be traced to the token that carried it.
pub fn record_with_token(req: &Request, d: &Decision, token: Option<&Identifier>) {
    tracing::info!(
        target: TARGET,
        user = %req.subject.user,
        roles = %Joined(&req.subject.roles),
        agent = req.subject.agent.as_deref().unwrap_or(""),
        session = %req.session,
        tool = %req.tool,
        phase = %d.phase,
        effect = %d.effect,
        rules = %d.rule_ids(),
        by_default = d.by_default,
        redacted = %Paths(&d.redactions),
        elapsed_us = d.elapsed.as_secs_f64() * 1e6,
        reason = %d.reason,
        token = %TokenId(token),
        "decision"
    );
}

struct Joined<'a>(&'a [String]);

impl fmt::Display for Joined<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(s)?;
        }
        Ok(())
    }
}

struct Paths<'a>(&'a [Redaction]);

impl fmt::Display for Paths<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(&r.path)?;
        }
        Ok(())
    }
}

struct TokenId<'a>(Option<&'a Identifier>);

impl fmt::Display for TokenId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(id) => {
                for b in id.nonce {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
            None => Ok(()),
        }
    }
}
