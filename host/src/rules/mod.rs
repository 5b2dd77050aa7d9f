//! The built-in policies, evaluated natively: `tool_access`, `field_access`, `allow_attempts`,
//! and `pdp`, whose answer an external decision point gives (asked before evaluation).

mod attempts;
mod field_access;
pub mod pdp;

pub use attempts::{Attempts, Budget};
pub use field_access::{FieldRule, redact_result};

use std::sync::Arc;

use thiserror::Error;

use crate::decision::{Effect, Phase};
use crate::paths::FieldPath;

/// Names of the built-in policies, in the order the docs list them.
pub const BUILTINS: &[&str] = &["tool_access", "field_access", "allow_attempts", "pdp"];

/// What a rule does once it applies, checked and pre-parsed at load time.
#[derive(Debug, Clone)]
pub enum PolicyKind {
    /// Allow, deny or ask before the call.
    ToolAccess,
    /// Redact (deny) or withhold until approved (elicit) these paths in the result.
    FieldAccess(Vec<FieldPath>),
    /// Let each subject make this many calls per process, then deny.
    AllowAttempts(u64),
    /// A custom enforcer (a WASM component) by name; it gives the verdict.
    Enforcer(Arc<str>),
    /// An external policy decision point gives the verdict (see [`pdp`]).
    Pdp(Arc<pdp::PdpSpec>),
}

/// Why a built-in rule's phase, action or parameters do not fit the policy.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RuleError {
    #[error("{policy} runs in the {expected} phase ({short}), not {found}")]
    Phase {
        policy: &'static str,
        expected: Phase,
        short: &'static str,
        found: Phase,
    },
    #[error("tool_access takes no parameters, found {0:?}")]
    ToolAccessParams(Vec<String>),
    #[error(
        "field_access needs at least one field path parameter, e.g. user.email or items[*].ssn"
    )]
    NoFieldPaths,
    #[error("{0}")]
    FieldPath(String),
    #[error("allow_attempts only takes the action allow (it allows N calls), found {0}")]
    AttemptsAction(Effect),
    #[error(
        "allow_attempts needs exactly one parameter, the number of calls (a positive integer), found {0:?}"
    )]
    AttemptsParams(Vec<String>),
    #[error("allow_attempts count {0:?} is not a positive integer")]
    AttemptsCount(String),
    #[error(
        "pdp's action is what a refusal from the PDP does: deny or elicit (a permit from the PDP allows the call), found allow"
    )]
    PdpAction,
    #[error("{0}")]
    Pdp(String),
}

/// Compiles a built-in policy; `None` means `policy` is not a built-in.
pub fn compile(
    policy: &str,
    phase: Phase,
    action: Effect,
    params: &[String],
) -> Option<Result<PolicyKind, RuleError>> {
    let need_phase = |p: &'static str, expected: Phase| {
        if phase == expected {
            Ok(())
        } else {
            Err(RuleError::Phase {
                policy: p,
                expected,
                short: if expected == Phase::Before {
                    "bf"
                } else {
                    "af"
                },
                found: phase,
            })
        }
    };
    let result = match policy {
        "tool_access" => need_phase("tool_access", Phase::Before).and_then(|_| {
            if params.is_empty() {
                Ok(PolicyKind::ToolAccess)
            } else {
                Err(RuleError::ToolAccessParams(params.to_vec()))
            }
        }),
        "field_access" => need_phase("field_access", Phase::After).and_then(|_| {
            if params.is_empty() {
                return Err(RuleError::NoFieldPaths);
            }
            params
                .iter()
                .map(|p| FieldPath::parse(p).map_err(|e| RuleError::FieldPath(e.to_string())))
                .collect::<Result<Vec<_>, _>>()
                .map(PolicyKind::FieldAccess)
        }),
        "allow_attempts" => need_phase("allow_attempts", Phase::Before).and_then(|_| {
            if action != Effect::Allow {
                return Err(RuleError::AttemptsAction(action));
            }
            match params {
                [n] => match n.parse::<u64>() {
                    Ok(count) if count > 0 => Ok(PolicyKind::AllowAttempts(count)),
                    _ => Err(RuleError::AttemptsCount(n.clone())),
                },
                _ => Err(RuleError::AttemptsParams(params.to_vec())),
            }
        }),
        "pdp" => need_phase("pdp", Phase::Before).and_then(|_| {
            if action == Effect::Allow {
                return Err(RuleError::PdpAction);
            }
            pdp::PdpSpec::parse(params)
                .map(|spec| PolicyKind::Pdp(Arc::new(spec)))
                .map_err(RuleError::Pdp)
        }),
        _ => return None,
    };
    Some(result)
}
