//! The outcome of one evaluation, with the trace that explains it.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

/// What the engine says about a call. Ordered by severity: `Deny` beats `Elicit` beats `Allow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Allow,
    Elicit,
    Deny,
}

impl Effect {
    /// The word used in policy files, traces and CLI output.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::Elicit => "elicit",
            Effect::Deny => "deny",
        }
    }
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When a rule runs: before the tool (may stop it) or after (may redact its result).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Before,
    After,
}

impl Phase {
    /// The word used in structured policies and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Before => "before",
            Phase::After => "after",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a rule came from, so a trace can tell the server's policy from the caller's token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// The server's policy file.
    Server,
    /// A caveat carried by the caller's capability token.
    Token,
}

impl Origin {
    /// The word used in traces.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Server => "server",
            Origin::Token => "token",
        }
    }
}

/// One rule that applied to the call: the "why" of a decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MatchedRule {
    /// Stable rule id: the rule's name, or `file:line` for compact rules.
    pub id: Arc<str>,
    pub origin: Origin,
    /// The built-in policy or enforcer the rule invokes.
    pub policy: Arc<str>,
    /// What this rule contributed.
    pub effect: Effect,
    pub priority: i32,
    /// What an enforcer said (its deny reason, question, or failure); `None` for built-ins.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A field the after phase withheld from the caller.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Redaction {
    /// The path as written in the policy.
    pub path: Arc<str>,
    /// The rule that asked for it.
    pub rule: Arc<str>,
    /// `Deny` for a plain redaction, `Elicit` for one that approval would lift.
    pub effect: Effect,
}

/// The engine's answer for one phase of one call.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub phase: Phase,
    pub effect: Effect,
    /// A sentence for the client (and the model) saying why.
    pub reason: Cow<'static, str>,
    /// Rules that applied, most severe first, then by priority (highest first).
    pub matched: Vec<MatchedRule>,
    /// True when no rule applied and `default_effect` decided.
    pub by_default: bool,
    /// After phase: fields that were redacted (deny) or await approval (elicit).
    pub redactions: Vec<Redaction>,
    /// Caveats enforcers asked to append to the caller's token (compact grammar, validated);
    /// only kept when the decision allows.
    pub caveats: Vec<String>,
    /// Anything the caller or an operator should know about how the decision was reached
    /// (a condition that could not be evaluated, a text item that was not JSON, ...).
    pub notes: Vec<String>,
    #[serde(rename = "elapsed_us", serialize_with = "micros")]
    pub elapsed: Duration,
}

impl Decision {
    /// Fields that stay redacted until the user approves them.
    pub fn pending_fields(&self) -> impl Iterator<Item = &Redaction> {
        self.redactions
            .iter()
            .filter(|r| r.effect == Effect::Elicit)
    }

    /// The matched rule ids joined by commas, for logs and one-line output.
    pub fn rule_ids(&self) -> RuleIds<'_> {
        RuleIds(&self.matched)
    }
}

/// Lazily formatted list of rule ids, so audit events cost nothing when nobody listens.
pub struct RuleIds<'a>(&'a [MatchedRule]);

impl fmt::Display for RuleIds<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, m) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(&m.id)?;
        }
        Ok(())
    }
}

fn micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    // Tenths of a microsecond: finer digits are timer noise.
    s.serialize_f64((d.as_secs_f64() * 1e7).round() / 10.0)
}
