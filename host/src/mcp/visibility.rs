//! Which tools, resources and prompts a caller could ever be allowed to use, for filtering the
//! list endpoints. This is a static reading of the rules, never an evaluation: listing must not
//! spend `allow_attempts` budgets, run enforcers or write audit events.

use crate::decision::{Effect, Phase};
use crate::engine::Snapshot;
use crate::policy::Rule;
use crate::request::Subject;
use crate::rules::PolicyKind;
use crate::token::VerifiedToken;

/// Prefix of the engine tool name for `resources/read` (`resource:<uri>`).
pub const RESOURCE_PREFIX: &str = "resource:";
/// Prefix of the engine tool name for `prompts/get` (`prompt:<name>`).
pub const PROMPT_PREFIX: &str = "prompt:";

/// False only when no argument could make the call pass: an unconditional `tool_access` deny
/// applies to the caller, or no rule could allow or ask for it and `default_effect` is deny,
/// or the caller's token does not cover it.
pub fn may_call(
    snapshot: &Snapshot,
    subject: &Subject,
    token: Option<&VerifiedToken>,
    name: &str,
    now_unix_ms: u64,
) -> bool {
    if let Some(tok) = token
        && tok.tool_globs().any(|g| !g.matches(name))
    {
        return false;
    }
    let mut could_pass = snapshot.config().default_effect == Effect::Allow;
    for rule in applicable(snapshot.rules(), subject, name, now_unix_ms) {
        match (rule.action, &rule.kind) {
            (Effect::Deny, PolicyKind::ToolAccess) if rule.when.is_empty() => return false,
            // A decision point may permit it (it is not asked for a listing).
            (Effect::Allow | Effect::Elicit, _) | (_, PolicyKind::Pdp(_)) => could_pass = true,
            _ => {}
        }
    }
    could_pass
}

/// Whether some target starting with `prefix` (`resource:`) could pass for the caller: the
/// default allows, or an allow or ask rule for them names such targets. For targets not
/// listed (resource templates), where [`may_call`] has no name to judge.
pub fn may_use_any(
    snapshot: &Snapshot,
    subject: &Subject,
    token: Option<&VerifiedToken>,
    prefix: &str,
    now_unix_ms: u64,
) -> bool {
    let reaches = |p: &str| p.starts_with(prefix) || p.starts_with('*');
    if let Some(tok) = token
        && tok.tool_globs().any(|g| !reaches(g.as_str()))
    {
        return false;
    }
    snapshot.config().default_effect == Effect::Allow
        || snapshot.rules().iter().any(|r| {
            r.phase == Phase::Before
                && !r.is_expired(now_unix_ms)
                && r.subjects.matches(subject)
                && (matches!(r.action, Effect::Allow | Effect::Elicit)
                    || matches!(r.kind, PolicyKind::Pdp(_)))
                && r.tools.iter().any(|p| reaches(p.as_str()))
        })
}

fn applicable<'a>(
    rules: &'a [Rule],
    subject: &'a Subject,
    name: &'a str,
    now_unix_ms: u64,
) -> impl Iterator<Item = &'a Rule> + 'a {
    rules.iter().filter(move |r| {
        r.phase == Phase::Before
            && !r.is_expired(now_unix_ms)
            && r.subjects.matches(subject)
            && r.tools.iter().any(|p| p.matches(name))
    })
}

/// Whether the policy speaks about a kind of target at all (a rule whose pattern starts with
/// `prefix`). Resources and prompts are policed only then, so adding Portcullis in front of a
/// server does not suddenly hide its resources under `default_effect: deny`.
pub fn polices(snapshot: &Snapshot, prefix: &str) -> bool {
    snapshot
        .rules()
        .iter()
        .any(|r| r.tools.iter().any(|p| p.as_str().starts_with(prefix)))
}

/// The field paths after-phase `field_access` rules may redact from `name`'s results (any
/// subject: one schema is advertised per tool).
pub fn redacted_paths<'a>(snapshot: &'a Snapshot, name: &str) -> Vec<&'a crate::paths::FieldPath> {
    snapshot
        .rules()
        .iter()
        .filter(|r| r.phase == Phase::After && r.tools.iter().any(|p| p.matches(name)))
        .filter(|r| r.action != Effect::Allow)
        .filter_map(|r| match &r.kind {
            PolicyKind::FieldAccess(paths) => Some(paths.iter()),
            _ => None,
        })
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Engine;

    #[test]
    fn hidden_only_when_no_arguments_could_pass() {
        let engine = Engine::from_str(
            r#"
policies:
  - "bf:admin_tool:tool_access:deny"
  - "bf:*:tool_access:allow"
  - name: limited
    tools: [query]
    when: [{ field: args.limit, op: lte, value: 10 }]
    action: deny
  - name: ops-only
    tools: [restart]
    subjects: { roles: [ops] }
    action: deny
"#,
            "p.yaml",
        )
        .unwrap();
        let s = engine.snapshot();
        let ann = Subject::user("ann");
        let ops = Subject::user("olga").with_role("ops");
        assert!(!may_call(&s, &ann, None, "admin_tool", 0));
        assert!(may_call(&s, &ann, None, "query", 0), "a conditional deny");
        assert!(may_call(&s, &ann, None, "restart", 0));
        assert!(!may_call(&s, &ops, None, "restart", 0));

        let closed = Engine::from_str("policies: [\"bf:read:tool_access:elicit\"]", "p").unwrap();
        let s = closed.snapshot();
        assert!(
            may_call(&s, &ann, None, "read", 0),
            "an approval could allow it"
        );
        assert!(
            !may_call(&s, &ann, None, "write", 0),
            "default deny, no rule"
        );
    }
}
