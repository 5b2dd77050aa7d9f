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
use crate::decision::{Decision, Effect, MatchedRule, Origin, Phase};
use crate::policy::{self, Config, LoadErrors, PolicySet, Rule};
use crate::request::Request;
use crate::result::ToolResult;
use crate::rules::pdp::{PdpOutcome, PdpSpec};
use crate::rules::{Attempts, Budget, FieldRule, PolicyKind, redact_result};
use crate::token::{
    self, CaveatCache, Grant, GrantTarget, Keyring, TokenError, VerifiedCache, VerifiedToken,
    VerifyOptions,
};
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
    /// Token caveats compiled against this snapshot's enforcers, by caveat text.
    token_caveats: CaveatCache,
    /// Tokens this snapshot verified successfully, so the HMAC chain is not recomputed on
    /// every call (expiry and the expected user are still judged per call).
    token_verified: VerifiedCache,
    /// Whether any rule is a `pdp` rule, so callers skip asking decision points otherwise.
    has_pdp: bool,
}

/// An enforcer rule to run: one of the server's (by position) or one from the caller's token.
enum EnforcerRule<'a> {
    Server(usize),
    Token(&'a Rule),
}

/// How a rule approved through a grant describes itself in the trace.
const APPROVED: &str = "approved by the user";

/// What the user's recorded answer (a grant in the token) makes of a rule, if anything.
#[derive(Clone, Copy)]
enum Answer<'a> {
    Approved(&'a Grant),
    Declined(&'a Grant),
}

impl Answer<'_> {
    fn detail(self) -> String {
        match self {
            Answer::Approved(g) => format!(
                "{APPROVED} until {} (grant)",
                token::rfc3339(g.expires_unix.saturating_mul(1000))
            ),
            Answer::Declined(g) => format!(
                "declined by the user; stays withheld until {} (grant)",
                token::rfc3339(g.expires_unix.saturating_mul(1000))
            ),
        }
    }
}

/// The latest unexpired grant in the token that answers `rule` for this call. A declined
/// before-phase elicit is asked again (seed behaviour), so only declines after the call count.
fn answer<'a>(rule: &Rule, req: &Request, grants: &'a [Grant]) -> Option<Answer<'a>> {
    let g = grants.iter().rev().find(|g| {
        g.matches(
            rule.phase,
            &req.tool,
            &rule.policy,
            &rule.params,
            req.now_unix_ms,
        )
    })?;
    match (g.accepted, rule.phase) {
        (true, _) => Some(Answer::Approved(g)),
        (false, Phase::After) => Some(Answer::Declined(g)),
        (false, Phase::Before) => None,
    }
}

/// The effect a built-in rule contributes once the token's grants are taken into account.
fn effect_with_answer(rule: &Rule, answer: Option<Answer<'_>>) -> (Effect, Option<String>) {
    if rule.action != Effect::Elicit {
        return (rule.action, None);
    }
    match answer {
        Some(a @ Answer::Approved(_)) => (Effect::Allow, Some(a.detail())),
        Some(a @ Answer::Declined(_)) => (Effect::Deny, Some(a.detail())),
        None => (Effect::Elicit, None),
    }
}

/// What a `pdp` rule contributes, from the decision point's answer on the request: a permit
/// allows; a refusal has the rule's action (an elicit the user already approved allows); an
/// error, a timeout, or no answer at all denies (fail closed). The text says which.
fn pdp_effect(rule: &Rule, spec: &PdpSpec, req: &Request, grants: &[Grant]) -> (Effect, String) {
    let url = &spec.url;
    let verdict = req
        .pdp
        .iter()
        .find(|v| v.rule == rule.id && *v.spec == *spec);
    let cached = |c: bool| if c { " (cached answer)" } else { "" };
    match verdict.map(|v| &v.outcome) {
        None => (
            Effect::Deny,
            format!("PDP {url} was not consulted for this call: denied (fail closed)"),
        ),
        Some(PdpOutcome::Failed(why)) => (
            Effect::Deny,
            format!("PDP {url} {why}: denied (fail closed)"),
        ),
        Some(PdpOutcome::Permit { cached: c }) => (
            Effect::Allow,
            format!("PDP {url} permits tool {:?}{}", req.tool, cached(*c)),
        ),
        Some(PdpOutcome::Refuse { cached: c }) => {
            let refused = format!("PDP {url} refuses tool {:?}{}", req.tool, cached(*c));
            match effect_with_answer(rule, answer(rule, req, grants)) {
                (effect, Some(d)) => (effect, format!("{d}; {refused}")),
                (effect, None) => (effect, refused),
            }
        }
    }
}

/// Whether an allow from this rule grants the call. Only the server's allow rules do: a
/// token's allow only narrows what the token may do.
fn grants_call(rule: &Rule) -> bool {
    rule.action == Effect::Allow && rule.origin == Origin::Server
}

/// Accumulates one phase's verdicts.
struct Tally {
    strongest: Option<Effect>,
    /// The strongest effect among the server's own rules: without one, `default_effect`
    /// decides what the server says, and a token can only add to that.
    server_strongest: Option<Effect>,
    matched: Vec<MatchedRule>,
    notes: Vec<String>,
    caveats: Vec<String>,
}

impl Tally {
    fn new() -> Self {
        Tally {
            strongest: None,
            server_strongest: None,
            matched: Vec::new(),
            notes: Vec::new(),
            caveats: Vec::new(),
        }
    }

    /// Records a rule; `counts` is false for a guard enforcer's "no objection".
    fn add(&mut self, rule: &Rule, effect: Effect, counts: bool, detail: Option<String>) {
        if counts {
            self.strongest = self.strongest.max(Some(effect));
            if rule.origin == Origin::Server {
                self.server_strongest = self.server_strongest.max(Some(effect));
            }
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
    /// `answer`: the user's recorded answer to this rule's question, which settles an elicit.
    #[allow(clippy::too_many_arguments)]
    fn enforce(
        &mut self,
        rule: &Rule,
        enforcer: Option<&Arc<Enforcer>>,
        caveat: Option<&guest::Caveat>,
        subject: &guest::Subject,
        request: &guest::Request,
        answer: Option<Answer<'_>>,
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
                self.add(rule, Effect::Allow, grants_call(rule), None);
                None
            }
            Ok(Verdict::Deny(reason)) => {
                self.add(rule, Effect::Deny, true, Some(reason));
                None
            }
            Ok(Verdict::Elicit(question)) => {
                match answer {
                    Some(a @ Answer::Approved(_)) => {
                        self.add(rule, Effect::Allow, grants_call(rule), Some(a.detail()))
                    }
                    Some(a @ Answer::Declined(_)) => {
                        self.add(rule, Effect::Deny, true, Some(a.detail()))
                    }
                    None => self.add(rule, Effect::Elicit, true, Some(question)),
                }
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

    /// Why a call is allowed: by policy, or because the user approved it earlier (a grant).
    fn allow_reason(&self) -> Cow<'static, str> {
        let approved = self.matched.iter().find_map(|m| {
            let d = m.detail.as_deref()?;
            (m.effect == Effect::Allow && d.starts_with(APPROVED)).then_some((d, &m.id))
        });
        match approved {
            Some((detail, id)) => Cow::Owned(format!("allowed: {detail} (rule {id})")),
            None => Cow::Borrowed("allowed by policy"),
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
        let has_pdp = policy
            .rules
            .iter()
            .any(|r| matches!(r.kind, PolicyKind::Pdp(_)));
        Ok(Snapshot {
            policy,
            before,
            after,
            enforcers,
            caveats,
            token_caveats: CaveatCache::default(),
            token_verified: VerifiedCache::default(),
            has_pdp,
        })
    }

    /// Whether the policy has `pdp` rules, whose decision points must be asked (with
    /// [`crate::pdp::consult`]) before a call is evaluated.
    pub fn has_pdp(&self) -> bool {
        self.has_pdp
    }

    /// The `pdp` rules that apply to this call (same tool, subject, expiry and condition
    /// matching as evaluation itself), by id: the decision points to ask before evaluating.
    /// None when the caller's token refuses the call anyway.
    pub fn pdp_rules(
        &self,
        req: &Request,
        token: Option<&VerifiedToken>,
    ) -> Vec<(Arc<str>, Arc<PdpSpec>)> {
        if !self.has_pdp || token.is_some_and(|t| refusal(req, t).is_some()) {
            return Vec::new();
        }
        let mut cands = Candidates::new();
        self.before.candidates(&req.tool, &mut cands);
        let mut notes = Vec::new();
        cands
            .iter()
            .map(|&i| &self.policy.rules[i as usize])
            .filter_map(|r| match &r.kind {
                PolicyKind::Pdp(spec) if applies(r, req, &mut notes) => {
                    Some((r.id.clone(), spec.clone()))
                }
                _ => None,
            })
            .collect()
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

    /// Verifies a token against this snapshot's enforcers, compiling its caveats through the
    /// snapshot's cache. A token (with the same discharges and keyring) this snapshot already
    /// verified is not verified again: its expiry and the expected user are re-checked
    /// against `opts`, and anything else is verified in full (see [`VerifiedCache`]).
    /// Shared, so a remembered verification is handed out without copying it.
    pub fn verify_token_shared(
        &self,
        keys: &Keyring,
        token: &str,
        discharges: &[&str],
        opts: &VerifyOptions<'_>,
    ) -> Result<Arc<VerifiedToken>, TokenError> {
        self.token_verified
            .get_or_verify(keys, token, discharges, opts, || {
                token::verify(
                    keys,
                    token,
                    discharges,
                    opts,
                    &self.token_caveats,
                    &*self.enforcers,
                )
            })
    }

    /// [`Snapshot::verify_token_shared`], owned.
    pub fn verify_token(
        &self,
        keys: &Keyring,
        token: &str,
        discharges: &[&str],
        opts: &VerifyOptions<'_>,
    ) -> Result<VerifiedToken, TokenError> {
        self.verify_token_shared(keys, token, discharges, opts)
            .map(Arc::unwrap_or_clone)
    }

    /// Whether any after-phase rule, the server's or the token's, names `tool`. When none does
    /// the after phase can only return the result unchanged, so a caller may skip it (the MCP
    /// layer does, and leaves the result untouched).
    pub fn touches_results(&self, tool: &str, token: Option<&VerifiedToken>) -> bool {
        let mut cands = Candidates::new();
        self.after.candidates(tool, &mut cands);
        !cands.is_empty()
            || token.is_some_and(|t| {
                t.rules
                    .iter()
                    .any(|r| r.phase == Phase::After && r.tools.iter().any(|p| p.matches(tool)))
            })
    }

    /// Number of verifications this snapshot remembers (for diagnostics).
    pub fn cached_verifications(&self) -> usize {
        self.token_verified.len()
    }

    /// Runs one enforcer rule, server or token, and records its verdict.
    /// The rules of one phase that name this call's tool: the server's candidates (with their
    /// positions, for the per-rule caveat records), then the token's own rules.
    fn phase_rules<'a>(
        &'a self,
        cands: &'a Candidates,
        phase: Phase,
        req: &'a Request,
        token: Option<&'a VerifiedToken>,
    ) -> impl Iterator<Item = (&'a Rule, Option<usize>)> + 'a {
        let server = cands
            .iter()
            .map(|&i| (&self.policy.rules[i as usize], Some(i as usize)));
        let from_token = token
            .into_iter()
            .flat_map(|tok| tok.rules.iter())
            .filter(move |r| r.phase == phase && r.tools.iter().any(|p| p.matches(&req.tool)))
            .map(|r| (&**r, None));
        server.chain(from_token)
    }

    fn run_enforcer(
        &self,
        t: &mut Tally,
        which: &EnforcerRule<'_>,
        subject: &guest::Subject,
        request: &guest::Request,
        req: &Request,
        grants: &[Grant],
    ) -> Option<serde_json::Value> {
        let (rule, owned, cached) = match *which {
            EnforcerRule::Server(i) => (&self.policy.rules[i], None, self.caveats[i].as_ref()),
            EnforcerRule::Token(rule) => (rule, Some(wasm::guest_caveat(rule)), None),
        };
        let enforcer = match &rule.kind {
            PolicyKind::Enforcer(name) => self.enforcers.get(name),
            _ => None,
        };
        let caveat = cached.or(owned.as_ref());
        let answer = answer(rule, req, grants);
        t.enforce(rule, enforcer, caveat, subject, request, answer)
    }

    fn before(
        &self,
        req: &Request,
        attempts: &Attempts,
        token: Option<&VerifiedToken>,
    ) -> Decision {
        let start = Instant::now();
        if let Some(tok) = token
            && let Some(refusal) = refusal(req, tok)
        {
            return refusal.decision(Phase::Before, start);
        }
        let grants = token.map_or(&[][..], |t| &t.grants[..]);
        let mut cands = Candidates::new();
        self.before.candidates(&req.tool, &mut cands);
        let mut t = Tally::new();
        let mut budgets: SmallVec<[Budget<'_>; 2]> = SmallVec::new();
        let mut enforcer_rules: SmallVec<[EnforcerRule<'_>; 4]> = SmallVec::new();
        for (rule, position) in self.phase_rules(&cands, Phase::Before, req, token) {
            if !applies(rule, req, &mut t.notes) {
                continue;
            }
            match rule.kind {
                PolicyKind::AllowAttempts(limit) => {
                    budgets.push(Budget {
                        rule: &rule.id,
                        limit,
                    });
                    t.add(rule, Effect::Allow, grants_call(rule), None);
                }
                PolicyKind::Enforcer(_) => enforcer_rules.push(match position {
                    Some(i) => EnforcerRule::Server(i),
                    None => EnforcerRule::Token(rule),
                }),
                PolicyKind::ToolAccess | PolicyKind::FieldAccess(_) => {
                    let (effect, detail) = effect_with_answer(rule, answer(rule, req, grants));
                    let counts = effect != Effect::Allow || rule.origin == Origin::Server;
                    t.add(rule, effect, counts, detail)
                }
                PolicyKind::Pdp(ref spec) => {
                    let (effect, detail) = pdp_effect(rule, spec, req, grants);
                    t.add(rule, effect, true, Some(detail))
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
                for (n, which) in enforcer_rules.iter().enumerate() {
                    self.run_enforcer(&mut t, which, &subject, &request, req, grants);
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
        // Server AND token: with no server rule, default_effect is the server's answer, and
        // the token's rules can only make it stricter.
        let default = self.policy.config.default_effect;
        let strongest = match (t.server_strongest, t.strongest) {
            (None, Some(token)) if token <= default => None,
            (_, all) => all,
        };
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
            Some(Effect::Allow) if budgets.is_empty() => (Effect::Allow, t.allow_reason(), false),
            Some(Effect::Allow) => match attempts.charge(&req.subject.user, &req.tool, &budgets) {
                Ok(()) => (Effect::Allow, t.allow_reason(), false),
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

    fn after(
        &self,
        req: &Request,
        result: &mut ToolResult,
        token: Option<&VerifiedToken>,
    ) -> Decision {
        let start = Instant::now();
        if let Some(tok) = token
            && let Some(refusal) = refusal(req, tok)
        {
            *result = ToolResult::error(format!("result withheld: {}", refusal.reason));
            return refusal.decision(Phase::After, start);
        }
        let grants = token.map_or(&[][..], |t| &t.grants[..]);
        let mut cands = Candidates::new();
        self.after.candidates(&req.tool, &mut cands);
        let mut t = Tally::new();
        let mut fields: SmallVec<[FieldRule<'_>; 8]> = SmallVec::new();
        let mut enforcer_rules: SmallVec<[EnforcerRule<'_>; 4]> = SmallVec::new();
        for (rule, position) in self.phase_rules(&cands, Phase::After, req, token) {
            if !applies(rule, req, &mut t.notes) {
                continue;
            }
            match &rule.kind {
                PolicyKind::FieldAccess(paths) => {
                    let (effect, detail) = effect_with_answer(rule, answer(rule, req, grants));
                    if effect != Effect::Allow {
                        fields.extend(paths.iter().map(|path| FieldRule {
                            path,
                            rule: &rule.id,
                            effect,
                        }));
                    }
                    // Field rules shape the result; they never decide the call.
                    t.add(rule, effect, false, detail);
                }
                PolicyKind::Enforcer(_) => enforcer_rules.push(match position {
                    Some(i) => EnforcerRule::Server(i),
                    None => EnforcerRule::Token(rule),
                }),
                PolicyKind::ToolAccess | PolicyKind::AllowAttempts(_) | PolicyKind::Pdp(_) => {}
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
            for which in &enforcer_rules {
                // The result is re-read for each rule: an earlier enforcer may have rewritten it.
                let request = wasm::guest_request(
                    req,
                    arguments.clone(),
                    Some(result.to_mcp_json().to_string()),
                );
                if let Some(replacement) =
                    self.run_enforcer(&mut t, which, &subject, &request, req, grants)
                {
                    match ToolResult::from_mcp_json(&replacement) {
                        Some(r) => *result = r,
                        None => {
                            let rule = match *which {
                                EnforcerRule::Server(i) => &self.policy.rules[i],
                                EnforcerRule::Token(rule) => rule,
                            };
                            t.add(
                                rule,
                                Effect::Deny,
                                true,
                                Some("replacement is not a CallToolResult".into()),
                            )
                        }
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

/// Why a token refuses a call outright, before any rule is looked at.
struct Refusal {
    id: Arc<str>,
    policy: Arc<str>,
    reason: String,
}

impl Refusal {
    fn decision(self, phase: Phase, start: Instant) -> Decision {
        Decision {
            phase,
            effect: Effect::Deny,
            matched: vec![MatchedRule {
                id: self.id,
                origin: Origin::Token,
                policy: self.policy,
                effect: Effect::Deny,
                priority: 0,
                detail: None,
            }],
            reason: Cow::Owned(self.reason),
            by_default: false,
            redactions: Vec::new(),
            caveats: Vec::new(),
            notes: Vec::new(),
            elapsed: start.elapsed(),
        }
    }
}

/// The token's own limits: it speaks for one subject, and its `tool = GLOB` caveats and
/// before-phase `allow` caveats each narrow it to the tools they cover (all must cover the
/// call; an expired `allow` caveat covers nothing). Appending a caveat can only add a limit.
fn refusal(req: &Request, tok: &VerifiedToken) -> Option<Refusal> {
    let subject_refusal = |reason: String| Refusal {
        id: Arc::from("token subject"),
        policy: Arc::from("token"),
        reason,
    };
    if req.subject.user != tok.subject.user {
        return Some(subject_refusal(format!(
            "the token was issued to user {:?}, not {:?}",
            tok.subject.user, req.subject.user
        )));
    }
    if let Some(role) = req
        .subject
        .roles
        .iter()
        .find(|r| !tok.subject.roles.contains(r))
    {
        return Some(subject_refusal(format!(
            "the request claims role {role:?}, which the token does not carry"
        )));
    }
    for glob in tok.tool_globs() {
        if !glob.matches(&req.tool) {
            return Some(Refusal {
                id: Arc::from(format!("tool = {}", glob.as_str())),
                policy: Arc::from("tool_access"),
                reason: format!(
                    "the token does not permit tool {:?} (caveat `tool = {}`)",
                    req.tool,
                    glob.as_str()
                ),
            });
        }
    }
    let narrowing = tok
        .rules
        .iter()
        .filter(|r| r.phase == Phase::Before && r.action == Effect::Allow);
    for rule in narrowing {
        let covers = rule.tools.iter().any(|p| p.matches(&req.tool));
        let expired = rule.is_expired(req.now_unix_ms);
        if !covers || expired {
            let why = if covers { "; it has expired" } else { "" };
            return Some(Refusal {
                id: rule.id.clone(),
                policy: rule.policy.clone(),
                reason: format!(
                    "the token does not permit tool {:?} (caveat `{}`{why})",
                    req.tool, rule.text
                ),
            });
        }
    }
    None
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

    /// Whether the current policy has `pdp` rules (decision points to ask before evaluating);
    /// no reference count taken, so the per-call check costs next to nothing.
    pub fn has_pdp(&self) -> bool {
        self.snapshot.load().has_pdp()
    }

    /// Per-process `allow_attempts` counters.
    pub fn attempts(&self) -> &Attempts {
        &self.attempts
    }

    /// Decides whether the call may run. Emits one audit event.
    pub fn before(&self, req: &Request) -> Decision {
        self.before_with(req, None)
    }

    /// Redacts the tool's result; the decision lists what was withheld and whether approval
    /// could lift it (effect `Elicit`). Emits one audit event.
    pub fn after(&self, req: &Request, result: ToolResult) -> (Decision, ToolResult) {
        self.after_with(req, result, None)
    }

    /// [`Engine::before`] for a caller holding a verified token: the decision is the server's
    /// policy AND the token's. The token's deny and elicit caveats add to the server's rules;
    /// its allow caveats and `tool = GLOB` caveats only narrow it (a tool they do not cover
    /// is denied), never overriding a server deny or elicit; its grants answer elicits the
    /// user already approved. The request's subject must be the token's.
    pub fn before_with(&self, req: &Request, token: Option<&VerifiedToken>) -> Decision {
        let decision = self.snapshot.load().before(req, &self.attempts, token);
        audit::record_with_token(req, &decision, token.map(|t| &t.identifier));
        decision
    }

    /// [`Engine::after`] for a caller holding a verified token: the token's field caveats add
    /// redactions, and its grants lift (approved) or fix (declined) pending fields.
    pub fn after_with(
        &self,
        req: &Request,
        mut result: ToolResult,
        token: Option<&VerifiedToken>,
    ) -> (Decision, ToolResult) {
        let decision = self.snapshot.load().after(req, &mut result, token);
        audit::record_with_token(req, &decision, token.map(|t| &t.identifier));
        (decision, result)
    }

    /// Verifies a token (and its discharges) for a request at `opts.now_unix_ms`, compiling
    /// its policy caveats against the current snapshot's enforcers.
    pub fn verify_token(
        &self,
        keys: &Keyring,
        token: &str,
        discharges: &[&str],
        opts: &VerifyOptions<'_>,
    ) -> Result<VerifiedToken, TokenError> {
        self.snapshot
            .load()
            .verify_token(keys, token, discharges, opts)
    }

    /// [`Engine::verify_token`], shared: no copy of a remembered verification (the MCP
    /// layer's per-request path).
    pub fn verify_token_shared(
        &self,
        keys: &Keyring,
        token: &str,
        discharges: &[&str],
        opts: &VerifyOptions<'_>,
    ) -> Result<Arc<VerifiedToken>, TokenError> {
        self.snapshot
            .load()
            .verify_token_shared(keys, token, discharges, opts)
    }

    /// The decision for a call whose token was refused: deny, with the reason. Emits one
    /// audit event, so refused tokens show in the trail like any other denial.
    pub fn reject(&self, req: &Request, phase: Phase, error: &TokenError) -> Decision {
        let decision = Decision {
            phase,
            effect: Effect::Deny,
            reason: Cow::Owned(format!("token rejected: {error}")),
            matched: Vec::new(),
            by_default: false,
            redactions: Vec::new(),
            caveats: Vec::new(),
            notes: Vec::new(),
            elapsed: std::time::Duration::ZERO,
        };
        audit::record(req, &decision);
        decision
    }

    /// Records the user's answer to an elicit `decision` in the token: one sealed grant per
    /// rule that asked, expiring after `config.elicit_expiry`. Returns the new token for the
    /// client. Declining a tool stores nothing (the user is asked again next time); declining
    /// fields keeps them redacted until the grant expires.
    pub fn grant(
        &self,
        keys: &Keyring,
        token: &VerifiedToken,
        req: &Request,
        decision: &Decision,
        accepted: bool,
    ) -> Result<String, TokenError> {
        if decision.effect != Effect::Elicit {
            return Err(TokenError::Invalid(format!(
                "the decision is {}, not elicit: there is nothing to approve or decline",
                decision.effect
            )));
        }
        if req.subject.user != token.subject.user {
            return Err(TokenError::Invalid(format!(
                "the request is for user {:?} but the token for {:?}",
                req.subject.user, token.subject.user
            )));
        }
        let snapshot = self.snapshot.load();
        let mut targets: Vec<GrantTarget> = Vec::new();
        for m in decision
            .matched
            .iter()
            .filter(|m| m.effect == Effect::Elicit)
        {
            let rule = match m.origin {
                Origin::Server => snapshot.rules().iter().find(|r| r.id == m.id),
                Origin::Token => token.rules.iter().map(|r| &**r).find(|r| r.id == m.id),
            };
            let Some(rule) = rule else {
                return Err(TokenError::Invalid(format!(
                    "rule {} of the decision is no longer in the policy (it was reloaded): evaluate the call again",
                    m.id
                )));
            };
            let target = GrantTarget {
                phase: decision.phase,
                tool: req.tool.clone(),
                policy: rule.policy.to_string(),
                params: rule.params.clone(),
            };
            if !targets.contains(&target) {
                targets.push(target);
            }
        }
        let expiry = snapshot.config().elicit_expiry_secs;
        token::grant::append(keys, token, &targets, accepted, req.now_unix_ms, expiry)
            .map(|(text, _)| text)
    }
}
