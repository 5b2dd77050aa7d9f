//! The engine: an immutable [`Snapshot`] of compiled rules, swapped atomically, evaluated per
//! call. Precedence: deny beats elicit beats allow; when no before-phase rule applies to a
//! call, `config.default_effect` decides.

mod index;

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use smallvec::SmallVec;

use crate::audit;
use crate::condition::Truth;
use crate::decision::{Decision, Effect, MatchedRule, Phase};
use crate::policy::{self, Config, LoadErrors, PolicySet, Rule};
use crate::request::Request;
use crate::result::ToolResult;
use crate::rules::{Attempts, Budget, FieldRule, PolicyKind, redact_result};
use index::PhaseIndex;

/// Rule positions gathered for one call; most calls touch only a handful of rules.
type Candidates = SmallVec<[u32; 16]>;

/// Everything needed to decide, built once per policy load and never mutated, so a reload can
/// swap a new one in while calls in flight finish on the one they started with.
#[derive(Debug)]
pub struct Snapshot {
    policy: PolicySet,
    before: PhaseIndex,
    after: PhaseIndex,
}

impl Snapshot {
    /// Indexes a loaded policy.
    pub fn new(policy: PolicySet) -> Result<Self, LoadErrors> {
        let index = |phase| {
            PhaseIndex::build(&policy.rules, phase).map_err(|e| {
                LoadErrors::whole_file(&policy.source, format!("tool globs cannot be indexed: {e}"))
            })
        };
        let before = index(Phase::Before)?;
        let after = index(Phase::After)?;
        Ok(Snapshot {
            policy,
            before,
            after,
        })
    }

    pub fn config(&self) -> &Config {
        &self.policy.config
    }

    pub fn rules(&self) -> &[Rule] {
        &self.policy.rules
    }

    /// Where the policy came from.
    pub fn source(&self) -> &str {
        &self.policy.source
    }

    fn before(&self, req: &Request, attempts: &Attempts) -> Decision {
        let start = Instant::now();
        let mut cands = Candidates::new();
        self.before.candidates(&req.tool, &mut cands);
        let mut matched = Vec::new();
        let mut notes = Vec::new();
        let mut budgets: SmallVec<[Budget<'_>; 2]> = SmallVec::new();
        let mut strongest: Option<Effect> = None;
        for &i in &cands {
            let rule = &self.policy.rules[i as usize];
            if !applies(rule, req, &mut notes) {
                continue;
            }
            let effect = match rule.kind {
                PolicyKind::AllowAttempts(limit) => {
                    budgets.push(Budget {
                        rule: &rule.id,
                        limit,
                    });
                    Effect::Allow
                }
                _ => rule.action,
            };
            strongest = strongest.max(Some(effect));
            matched.push(matched_rule(rule, effect));
        }
        sort_trace(&mut matched);
        let (effect, reason, by_default) = match strongest {
            None => {
                let effect = self.policy.config.default_effect;
                let reason = format!(
                    "no rule applies to tool {:?}; default_effect is {effect}",
                    req.tool
                );
                (effect, Cow::Owned(reason), true)
            }
            Some(Effect::Deny) => (
                Effect::Deny,
                Cow::Owned(format!(
                    "tool {:?} denied by policy rule {}",
                    req.tool,
                    first_id(&matched, Effect::Deny)
                )),
                false,
            ),
            Some(Effect::Elicit) => (
                Effect::Elicit,
                Cow::Owned(format!(
                    "tool {:?} needs the user's approval (rule {})",
                    req.tool,
                    first_id(&matched, Effect::Elicit)
                )),
                false,
            ),
            Some(Effect::Allow) if budgets.is_empty() => {
                (Effect::Allow, Cow::Borrowed("allowed by policy"), false)
            }
            Some(Effect::Allow) => match attempts.charge(&req.subject.user, &req.tool, &budgets) {
                Ok(()) => (Effect::Allow, Cow::Borrowed("allowed by policy"), false),
                Err((rule, limit)) => (
                    Effect::Deny,
                    Cow::Owned(format!(
                        "tool {:?} denied: user {:?} has used all {limit} allowed call(s) (rule {rule})",
                        req.tool, req.subject.user
                    )),
                    false,
                ),
            },
        };
        Decision {
            phase: Phase::Before,
            effect,
            reason,
            matched,
            by_default,
            redactions: Vec::new(),
            notes,
            elapsed: start.elapsed(),
        }
    }

    fn after(&self, req: &Request, result: &mut ToolResult) -> Decision {
        let start = Instant::now();
        let mut cands = Candidates::new();
        self.after.candidates(&req.tool, &mut cands);
        let mut matched = Vec::new();
        let mut notes = Vec::new();
        let mut fields: SmallVec<[FieldRule<'_>; 8]> = SmallVec::new();
        for &i in &cands {
            let rule = &self.policy.rules[i as usize];
            if !applies(rule, req, &mut notes) {
                continue;
            }
            if let PolicyKind::FieldAccess(paths) = &rule.kind
                && rule.action != Effect::Allow
            {
                fields.extend(paths.iter().map(|path| FieldRule {
                    path,
                    rule: &rule.id,
                    effect: rule.action,
                }));
            }
            matched.push(matched_rule(rule, rule.action));
        }
        sort_trace(&mut matched);
        // Deny paths first, so a field both denied and pending is reported as denied.
        fields.sort_by_key(|f| std::cmp::Reverse(f.effect));
        let redactions = if fields.is_empty() {
            Vec::new()
        } else {
            redact_result(result, &fields, self.policy.config.redaction, &mut notes)
        };
        let pending = redactions
            .iter()
            .filter(|r| r.effect == Effect::Elicit)
            .count();
        let (effect, reason) = if pending > 0 {
            let paths: Vec<&str> = redactions
                .iter()
                .filter(|r| r.effect == Effect::Elicit)
                .map(|r| &*r.path)
                .collect();
            (
                Effect::Elicit,
                Cow::Owned(format!(
                    "fields of {:?} withheld until the user approves: {}",
                    req.tool,
                    paths.join(", ")
                )),
            )
        } else if redactions.is_empty() {
            (Effect::Allow, Cow::Borrowed("result returned unchanged"))
        } else {
            (
                Effect::Allow,
                Cow::Owned(format!(
                    "{} field path(s) redacted by policy",
                    redactions.len()
                )),
            )
        };
        Decision {
            phase: Phase::After,
            effect,
            reason,
            matched,
            by_default: false,
            redactions,
            notes,
            elapsed: start.elapsed(),
        }
    }
}

/// Whether a rule applies to this request: not expired, subject matches, every condition
/// holds. A condition that cannot be evaluated fails closed: a deny or elicit rule applies
/// anyway, an allow rule does not.
fn applies(rule: &Rule, req: &Request, notes: &mut Vec<String>) -> bool {
    if rule.is_expired(req.now_unix_ms) || !rule.subjects.matches(&req.subject) {
        return false;
    }
    for cond in &rule.when {
        match cond.eval(req) {
            Truth::True => {}
            Truth::False => return false,
            Truth::Unknown => {
                let applies = rule.action != Effect::Allow;
                notes.push(format!(
                    "rule {}: condition `{cond}` could not be evaluated (wrong type); {}",
                    rule.id,
                    if applies {
                        "the rule applies anyway (fail closed)"
                    } else {
                        "the allow rule does not apply"
                    }
                ));
                if !applies {
                    return false;
                }
            }
        }
    }
    true
}

fn matched_rule(rule: &Rule, effect: Effect) -> MatchedRule {
    MatchedRule {
        id: rule.id.clone(),
        origin: rule.origin,
        policy: rule.policy.clone(),
        effect,
        priority: rule.priority,
    }
}

/// Most severe first, then highest priority; ties keep file order (the sort is stable).
fn sort_trace(matched: &mut [MatchedRule]) {
    if matched.len() > 1 {
        matched.sort_by(|a, b| b.effect.cmp(&a.effect).then(b.priority.cmp(&a.priority)));
    }
}

fn first_id(matched: &[MatchedRule], effect: Effect) -> &str {
    matched
        .iter()
        .find(|m| m.effect == effect)
        .map(|m| &*m.id)
        .unwrap_or("?")
}

/// The entry point for callers: the current snapshot plus per-process state (attempt counts).
pub struct Engine {
    snapshot: ArcSwap<Snapshot>,
    attempts: Attempts,
}

impl Engine {
    pub fn new(snapshot: Snapshot) -> Self {
        Engine {
            snapshot: ArcSwap::from_pointee(snapshot),
            attempts: Attempts::default(),
        }
    }

    /// Loads and indexes a policy file.
    pub fn from_file(path: &Path) -> Result<Self, LoadErrors> {
        Ok(Engine::new(Snapshot::new(policy::load_file(path)?)?))
    }

    /// Loads and indexes policy text; `source` names it in errors and rule ids.
    pub fn from_str(text: &str, source: &str) -> Result<Self, LoadErrors> {
        Ok(Engine::new(Snapshot::new(policy::load_str(text, source)?)?))
    }

    /// The snapshot calls are evaluated against right now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Replaces the snapshot atomically; calls already running keep the old one.
    pub fn swap(&self, snapshot: Snapshot) {
        self.snapshot.store(Arc::new(snapshot));
    }

    /// Per-process `allow_attempts` counters.
    pub fn attempts(&self) -> &Attempts {
        &self.attempts
    }

    /// Decides whether the call may run. Emits one audit event.
    pub fn before(&self, req: &Request) -> Decision {
        let decision = self.snapshot.load().before(req, &self.attempts);
        audit::record(req, &decision);
        decision
    }

    /// Redacts the tool's result; the decision lists what was withheld and whether approval
    /// could lift it (effect `Elicit`). Emits one audit event.
    pub fn after(&self, req: &Request, mut result: ToolResult) -> (Decision, ToolResult) {
        let decision = self.snapshot.load().after(req, &mut result);
        audit::record(req, &decision);
        (decision, result)
    }
}
