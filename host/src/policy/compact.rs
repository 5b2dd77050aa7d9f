//! The compact caveat grammar of mcp-macaroon-middleware:
//! `PHASE:TOOL:POLICY:ACTION[:PARAM...][:time<YYYYMMDDTHHMMSSZ]`.
//!
//! Parsed strictly: where the seed silently dropped a malformed expiry (so the caveat never
//! expired), this parser rejects it. The same parser serves policy files and token caveats.

use chrono::NaiveDateTime;
use thiserror::Error;

use crate::decision::{Effect, Phase};

/// A compact caveat split into its parts; names are not yet checked against known policies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactCaveat {
    pub phase: Phase,
    pub tool: String,
    pub policy: String,
    pub action: Effect,
    pub params: Vec<String>,
    /// Expiry from a `time<` suffix, in Unix milliseconds.
    pub expires_unix_ms: Option<u64>,
}

/// What is wrong with a compact caveat, naming the part that is.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CompactError {
    #[error(
        "expected PHASE:TOOL:POLICY:ACTION[:PARAM...][:time<YYYYMMDDTHHMMSSZ], found {0} part(s)"
    )]
    TooFewParts(usize),
    #[error("unknown phase {0:?}: expected bf (before the call) or af (after the call)")]
    Phase(String),
    #[error("empty tool name: expected a tool name or glob such as read_* ")]
    EmptyTool,
    #[error(
        "empty policy name: expected tool_access, field_access, allow_attempts, pdp or an enforcer"
    )]
    EmptyPolicy,
    #[error("unknown action {0:?}: expected allow, deny or elicit")]
    Action(String),
    #[error("parameter {0} is empty: remove the extra ':'")]
    EmptyParam(usize),
    #[error("bad expiry {0:?}: expected time<YYYYMMDDTHHMMSSZ in UTC, e.g. time<20261231T235959Z")]
    Expiry(String),
    #[error("expiry {0:?} must be the last part of the caveat")]
    ExpiryNotLast(String),
}

/// Parses an action word shared by both policy forms.
pub fn parse_action(word: &str) -> Option<Effect> {
    match word {
        "allow" => Some(Effect::Allow),
        "deny" => Some(Effect::Deny),
        "elicit" => Some(Effect::Elicit),
        _ => None,
    }
}

/// Parses a `YYYYMMDDTHHMMSSZ` UTC timestamp into Unix milliseconds.
pub fn parse_compact_time(text: &str) -> Option<u64> {
    let t = NaiveDateTime::parse_from_str(text, "%Y%m%dT%H%M%SZ").ok()?;
    u64::try_from(t.and_utc().timestamp_millis()).ok()
}

/// Parses one compact caveat.
pub fn parse(text: &str) -> Result<CompactCaveat, CompactError> {
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() < 4 {
        return Err(CompactError::TooFewParts(parts.len()));
    }
    let phase = match parts[0] {
        "bf" => Phase::Before,
        "af" => Phase::After,
        other => return Err(CompactError::Phase(other.to_string())),
    };
    let tool = parts[1];
    if tool.is_empty() {
        return Err(CompactError::EmptyTool);
    }
    let policy = parts[2];
    if policy.is_empty() {
        return Err(CompactError::EmptyPolicy);
    }
    let action = parse_action(parts[3]).ok_or_else(|| CompactError::Action(parts[3].into()))?;
    let mut params = Vec::with_capacity(parts.len() - 4);
    let mut expires_unix_ms = None;
    let rest = &parts[4..];
    for (i, part) in rest.iter().enumerate() {
        if let Some(stamp) = part.strip_prefix("time<") {
            if i + 1 != rest.len() {
                return Err(CompactError::ExpiryNotLast(part.to_string()));
            }
            expires_unix_ms = Some(
                parse_compact_time(stamp).ok_or_else(|| CompactError::Expiry(part.to_string()))?,
            );
        } else if part.is_empty() {
            return Err(CompactError::EmptyParam(i + 1));
        } else {
            params.push(part.to_string());
        }
    }
    Ok(CompactCaveat {
        phase,
        tool: tool.to_string(),
        policy: policy.to_string(),
        action,
        params,
        expires_unix_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_seed_form() {
        let c = parse("bf:admin_tool:tool_access:deny").unwrap();
        assert_eq!(c.phase, Phase::Before);
        assert_eq!(c.tool, "admin_tool");
        assert_eq!(c.policy, "tool_access");
        assert_eq!(c.action, Effect::Deny);
        assert!(c.params.is_empty());
        assert_eq!(c.expires_unix_ms, None);

        let c = parse("af:get_user_profile:field_access:deny:user_pii.ssn:email").unwrap();
        assert_eq!(c.phase, Phase::After);
        assert_eq!(c.params, vec!["user_pii.ssn", "email"]);

        let c =
            parse("af:read_emails:field_access:allow:attachments:time<20261231T235959Z").unwrap();
        assert_eq!(c.action, Effect::Allow);
        assert_eq!(c.params, vec!["attachments"]);
        assert_eq!(c.expires_unix_ms, Some(1_798_761_599_000));

        let c = parse("bf:read_*:tool_access:elicit").unwrap();
        assert_eq!(c.tool, "read_*");
        assert_eq!(c.action, Effect::Elicit);
    }

    #[test]
    fn every_error_names_the_part() {
        let cases: &[(&str, &str)] = &[
            ("bf:admin_tool:tool_access", "found 3 part(s)"),
            ("xx:t:tool_access:deny", "unknown phase \"xx\": expected bf"),
            ("bf::tool_access:deny", "empty tool name"),
            ("bf:t::deny", "empty policy name"),
            (
                "bf:t:tool_access:alow",
                "unknown action \"alow\": expected allow, deny or elicit",
            ),
            ("af:t:field_access:deny::b", "parameter 1 is empty"),
            (
                "bf:t:tool_access:deny:time<2026",
                "bad expiry \"time<2026\"",
            ),
            ("bf:t:tool_access:deny:time<20261301T000000Z", "bad expiry"),
            (
                "bf:t:x:deny:time<20261231T000000Z:p",
                "must be the last part",
            ),
        ];
        for (text, want) in cases {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: got {err:?}, want {want:?}");
        }
    }
}
