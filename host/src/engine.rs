//! The engine: an immutable [`Snapshot`] of compiled rules, swapped atomically, evaluated per
//! call. Precedence: deny beats elicit beats allow; when no before-phase rule applies to a
//! call, `config.default_effect` decides.

mod index;
mod load;

pub use load::load_snapshot;

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
use crate::wasm::{self, Enforcer, EnforcerSet, Verdict, guest};
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
    enforcers: Arc<EnforcerSet>,
    /// The WIT caveat record of each enforcer rule, by rule position (built once, not per call).
    caveats: Vec<Option<guest::Caveat>>,
}

/// Accumulates one phase's verdicts.
struct Tally {
    strongest: Option<Effect>,
    matched: Vec<MatchedRule>,
    notes: Vec<String>,
    caveats: Vec<String>,
}

impl Tally {
    fn new() -> Self {
        Tally {
            strongest: None,
            matched: Vec::new(),
            notes: Vec::new(),
            caveats: Vec::new(),
        }
    }

    /// Records a rule; `counts` is false for a guard enforcer's "no objection".
    fn add(&mut self, rule: &Rule, effect: Effect, counts: bool, detail: Option<String>) {
        if counts {
            self.strongest = self.strongest.max(Some(effect));
        }
        self.matched.push(MatchedRule {
            id: rule.id.clone(),
            origin: rule.origin,
            policy: rule.policy.clone(),
            effect,
            priority: rule.priority,
            detail,
        });
    }

    /// Runs one enforcer rule and records its verdict. Returns the rewritten result, if any.
    fn enforce(
        &mut self,
        rule: &Rule,
        enforcer: Option<&Arc<Enforcer>>,
        caveat: Option<&guest::Caveat>,
        subject: &guest::Subject,
        request: &guest::Request,
    ) -> Option<serde_json::Value> {
        let (Some(enforcer), Some(caveat)) = (enforcer, caveat) else {
            let why = format!("enforcer {} is not loaded", rule.policy);
            self.add(rule, Effect::Deny, true, Some(why));
            return None;
        };
        match enforcer.enforce(caveat, subject, request, rule.phase) {
            Ok(Verdict::Allow(caveats)) => {
                self.caveats.extend(caveats);
                // An allow rule grants; a deny/elicit rule is a guard with no objection.
                self.add(rule, Effect::Allow, rule.action == Effect::Allow, None);
                None
            }
            Ok(Verdict::Deny(reason)) => {
                self.add(rule, Effect::Deny, true, Some(reason));
                None
            }
            Ok(Verdict::Elicit(question)) => {
                self.add(rule, Effect::Elicit, true, Some(question));
                None
            }
            Ok(Verdict::Replace(value)) => {
                let note = format!(
                    "enforcer {} rewrote the result (rule {})",
                    rule.policy, rule.id
                );
                self.add(
                    rule,
                    Effect::Allow,
                    false,
                    Some("rewrote the result".into()),
                );
                self.notes.push(note);
                Some(value)
            }
            Err(e) => {
                self.add(rule, Effect::Deny, true, Some(e.to_string()));
                None
            }
        }
    }

    /// The reason for the winning effect: the first such rule's own words if it has them.
    fn reason(&self, effect: Effect, generic: impl FnOnce(&str) -> String) -> Cow<'static, str> {
        let first = self.matched.iter().find(|m| m.effect == effect);
        match first {
            Some(m) => match &m.detail {
                Some(d) => Cow::Owned(format!("{d} ({} rule {})", m.policy, m.id)),
                None => Cow::Owned(generic(&m.id)),
            },
            None => Cow::Borrowed("denied"),
        }
    }
}

impl Snapshot {
    /// Indexes a loaded policy that uses built-in policies only.
    pub fn new(policy: PolicySet) -> Result<Self, LoadErrors> {
        Snapshot::with_enforcers(policy, Arc::new(EnforcerSet::default()))
    }

    /// Indexes a loaded policy together with the enforcers its rules name.
    pub fn with_enforcers(
        policy: PolicySet,
        enforcers: Arc<EnforcerSet>,
    ) -> Result<Self, LoadErrors> {
        let index = |phase| {
            PhaseIndex::build(&policy.rules, phase).map_err(|e| {
                LoadErrors::whole_file(&policy.source, format!("tool globs cannot be indexed: {e}"))
            })
        };
        let before = index(Phase::Before)?;
        let after = index(Phase::After)?;
        let caveats = policy
            .rules
            .iter()
            .map(|r| matches!(r.kind, PolicyKind::Enforcer(_)).then(|| wasm::guest_caveat(r)))
            .collect();
        Ok(Snapshot {
            policy,
            before,
            after,
            enforcers,
            caveats,
        })
    }

    pub fn config(&self) -> &Config {
        &self.policy.config
    }

    pub fn rules(&self) -> &[Rule] {
        &self.policy.rules
    }

    /// The enforcers this snapshot was built with.
    pub fn enforcers(&self) -> &EnforcerSet {
        &self.enforcers
    }

    /// Where the policy came from.
    pub fn source(&self) -> &str {
        &self.policy.source
    }

    fn enforcer_of(&self, i: usize) -> (&Rule, Option<&Arc<Enforcer>>, Option<&guest::Caveat>) {
        let rule = &self.policy.rules[i];
        let enforcer = match &rule.kind {
            PolicyKind::Enforcer(name) => self.enforcers.get(name),
            _ => None,
        };
        (rule, enforcer, self.caveats[i].as_ref())
    }

    fn before(&self, req: &Request, attempts: &Attempts) -> Decision {
        let start = Instant::now();
        let mut cands = Candidates::new();
        self.before.candidates(&req.tool, &mut cands);
        let mut t = Tally::new();
        let mut budgets: SmallVec<[Budget<'_>; 2]> = SmallVec::new();
        let mut enforcer_rules: SmallVec<[usize; 4]> = SmallVec::new();
        for &i in &cands {
            let rule = &self.policy.rules[i as usize];
            if !applies(rule, req, &mut t.notes) {
                continue;
            }
            match rule.kind {
                PolicyKind::AllowAttempts(limit) => {
                    budgets.push(Budget {
                        rule: &rule.id,
                        limit,
                    });
                    t.add(rule, Effect::Allow, true, None);
                }
                PolicyKind::Enforcer(_) => enforcer_rules.push(i as usize),
                PolicyKind::ToolAccess | PolicyKind::FieldAccess(_) => {
                    t.add(rule, rule.action, true, None)
                }
            }
        }
        if !enforcer_rules.is_empty() {
            if t.strongest == Some(Effect::Deny) {
                t.notes.push(format!(
                    "{} enforcer rule(s) not run: a built-in rule already denies",
                    enforcer_rules.len()
                ));
            } else {
                let subject = wasm::guest_subject(&req.subject);
                let request = wasm::guest_request(req, req.arguments.to_string(), None);
                for (n, &i) in enforcer_rules.iter().enumerate() {
                    let (rule, enforcer, caveat) = self.enforcer_of(i);
                    t.enforce(rule, enforcer, caveat, &subject, &request);
                    if t.strongest == Some(Effect::Deny) && n + 1 < enforcer_rules.len() {
                        t.notes.push(format!(
                            "{} enforcer rule(s) not run: already denied",
                            enforcer_rules.len() - n - 1
                        ));
                        break;
                    }
                }
            }
        }
        sort_trace(&mut t.matched);
        let (effect, reason, by_default) = match t.strongest {
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
                t.reason(Effect::Deny, |id| {
                    format!("tool {:?} denied by policy rule {id}", req.tool)
                }),
                false,
            ),
            Some(Effect::Elicit) => (
                Effect::Elicit,
                t.reason(Effect::Elicit, |id| {
                    format!("tool {:?} needs the user's approval (rule {id})", req.tool)
                }),
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
        if effect != Effect::Allow {
            t.caveats.clear();
        }
        Decision {
            phase: Phase::Before,
            effect,
            reason,
            matched: t.matched,
            by_default,
            redactions: Vec::new(),
            caveats: t.caveats,
            notes: t.notes,
            elapsed: start.elapsed(),
        }
    }

    fn after(&self, req: &Request, result: &mut ToolResult) -> Decision {
        let start = Instant::now();
        let mut cands = Candidates::new();
        self.after.candidates(&req.tool, &mut cands);
        let mut t = Tally::new();
        let mut fields: SmallVec<[FieldRule<'_>; 8]> = SmallVec::new();
        let mut enforcer_rules: SmallVec<[usize; 4]> = SmallVec::new();
        for &i in &cands {
            let rule = &self.policy.rules[i as usize];
            if !applies(rule, req, &mut t.notes) {
                continue;
            }
            match &rule.kind {
                PolicyKind::FieldAccess(paths) => {
                    if rule.action != Effect::Allow {
                        fields.extend(paths.iter().map(|path| FieldRule {
                            path,
                            rule: &rule.id,
                            effect: rule.action,
                        }));
                    }
                    // Field rules shape the result; they never decide the call.
                    t.add(rule, rule.action, false, None);
                }
                PolicyKind::Enforcer(_) => enforcer_rules.push(i as usize),
                PolicyKind::ToolAccess | PolicyKind::AllowAttempts(_) => {}
            }
        }
        // Deny paths first, so a field both denied and pending is reported as denied.
        fields.sort_by_key(|f| std::cmp::Reverse(f.effect));
        let redactions = if fields.is_empty() {
            Vec::new()
        } else {
            redact_result(result, &fields, self.policy.config.redaction, &mut t.notes)
        };
        if !enforcer_rules.is_empty() {
            let subject = wasm::guest_subject(&req.subject);
            let arguments = req.arguments.to_string();
            for &i in &enforcer_rules {
                let (rule, enforcer, caveat) = self.enforcer_of(i);
                // The result is re-read for each rule: an earlier enforcer may have rewritten it.
                let request = wasm::guest_request(
                    req,
                    arguments.clone(),
                    Some(result.to_mcp_json().to_string()),
                );
                if let Some(replacement) = t.enforce(rule, enforcer, caveat, &subject, &request) {
                    match ToolResult::from_mcp_json(&replacement) {
                        Some(r) => *result = r,
                        None => t.add(
                            rule,
                            Effect::Deny,
                            true,
                            Some("replacement is not a CallToolResult".into()),
                        ),
                    }
                }
                if t.strongest == Some(Effect::Deny) {
                    break;
                }
            }
        }
        sort_trace(&mut t.matched);
        let pending: Vec<&str> = redactions
            .iter()
            .filter(|r| r.effect == Effect::Elicit)
            .map(|r| &*r.path)
            .collect();
        let (effect, reason) = match t.strongest {
            Some(Effect::Deny) => {
                let reason = t.reason(Effect::Deny, |id| format!("result withheld by rule {id}"));
                *result = ToolResult::error(format!("result withheld: {reason}"));
                (Effect::Deny, reason)
            }
            Some(Effect::Elicit) => {
                let reason = t.reason(Effect::Elicit, |id| {
                    format!("approval required by rule {id}")
                });
                *result =
                    ToolResult::error(format!("result withheld until the user approves: {reason}"));
                (Effect::Elicit, reason)
            }
            _ if !pending.is_empty() => (
                Effect::Elicit,
                Cow::Owned(format!(
                    "fields of {:?} withheld until the user approves: {}",
                    req.tool,
                    pending.join(", ")
                )),
            ),
            _ if redactions.is_empty() => {
                (Effect::Allow, Cow::Borrowed("result returned unchanged"))
            }
            _ => (
                Effect::Allow,
                Cow::Owned(format!(
                    "{} field path(s) redacted by policy",
                    redactions.len()
                )),
            ),
        };
        if effect != Effect::Allow {
            t.caveats.clear();
        }
        Decision {
            phase: Phase::After,
            effect,
            reason,
            matched: t.matched,
            by_default: false,
            redactions,
            caveats: t.caveats,
            notes: t.notes,
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

/// Most severe first, then highest priority; ties keep file order (the sort is stable).
fn sort_trace(matched: &mut [MatchedRule]) {
    if matched.len() > 1 {
        matched.sort_by(|a, b| b.effect.cmp(&a.effect).then(b.priority.cmp(&a.priority)));
    }
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

    /// Loads a policy file, and the enforcers it names, with the process-wide sandbox.
    pub fn from_file(path: &Path) -> Result<Self, LoadErrors> {
        Ok(Engine::new(load_snapshot(path, None)?))
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
