//! Policy files: the YAML format, loading and validation.
//!
//! A file has a `config:` section and a `policies:` list whose entries are either compact
//! caveat strings (mcp-macaroon-middleware's grammar) or structured rules. Both compile to one
//! [`Rule`] type. A file loads completely or not at all: every problem is reported with file,
//! line, column, the offending line and what was expected.

mod auth;
pub mod compact;
mod error;
mod methods;
mod raw;
mod tool_pattern;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use auth::{AuthConfig, AuthMode, JweConfig, JwtAlgorithm, JwtConfig};
pub use error::{LoadError, LoadErrors};
pub use methods::{DEFAULT_BYPASS, MethodSet};
pub use tool_pattern::ToolPattern;

use crate::condition::Condition;
use crate::decision::{Effect, Origin, Phase};
use crate::paths::RedactMode;
use crate::request::Subject;
use crate::rules::{self, PolicyKind};
use raw::{RawEntry, RawFile, RawRule};

/// What the loader needs to know about custom enforcers; implemented by the WASM layer, so
/// this module does not depend on it.
pub trait EnforcerCatalog {
    /// The phases the named enforcer supports, or `None` if no enforcer has that name.
    fn phases(&self, name: &str) -> Option<&[Phase]>;
    /// Every enforcer name, for did-you-mean suggestions.
    fn names(&self) -> Vec<&str>;
    /// Lets the enforcer check a rule's parameters at load time.
    fn validate(&self, rule: &Rule) -> Result<(), String>;
}

/// The catalog of a policy without an enforcers folder.
pub struct NoEnforcers;

impl EnforcerCatalog for NoEnforcers {
    fn phases(&self, _: &str) -> Option<&[Phase]> {
        None
    }
    fn names(&self) -> Vec<&str> {
        Vec::new()
    }
    fn validate(&self, _: &Rule) -> Result<(), String> {
        Ok(())
    }
}

/// Largest memory cap an enforcer may be given, in MiB (the sandbox reserves this much
/// address space per instance slot).
pub const MAX_MEMORY_MIB: u64 = 256;

/// Largest policy file accepted; a policy is configuration, not data.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Sandbox limits for WASM enforcers (`config.limits`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// CPU deadline per evaluation, in milliseconds.
    pub timeout_ms: u64,
    /// Memory cap per evaluation, in MiB.
    pub memory_mib: u64,
    /// Overrides by enforcer name (`limits.enforcers.NAME`).
    pub enforcers: std::collections::BTreeMap<String, LimitOverride>,
}

/// Per-enforcer limits; an absent field keeps the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LimitOverride {
    pub timeout_ms: Option<u64>,
    pub memory_mib: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout_ms: 10,
            memory_mib: 16,
            enforcers: Default::default(),
        }
    }
}

/// The `config:` section with defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// What a tool no before-phase rule applies to gets: allow or deny (default deny).
    pub default_effect: Effect,
    /// Seconds an approval (or a decline) lasts.
    pub elicit_expiry_secs: u64,
    /// Environment variable holding the token root key.
    pub secret_key_env: String,
    /// Id of the current root key; tokens carry it so a host knows which key signed them.
    pub key_id: String,
    /// Keys rotated out that still verify tokens and grants made under them, until removed
    /// from this list.
    pub retired_keys: Vec<RetiredKey>,
    /// Folder of WASM enforcers, resolved against the policy file's folder.
    pub enforcers_dir: Option<PathBuf>,
    pub limits: Limits,
    /// How a redacted field looks: replaced by `"[REDACTED]"` or removed.
    pub redaction: RedactMode,
    /// MCP layer: tools/list leaves out tools the caller can never call (default on), so a
    /// model is not tempted by tools it will be refused.
    pub hide_denied_tools: bool,
    /// MCP layer: `initialize` (and `server/discover`) leave out the tools, resources or
    /// prompts capability when the caller may use none of them (off by default: it costs a
    /// listing at every handshake).
    pub hide_denied_capabilities: bool,
    /// MCP layer: methods let through without identity or rules.
    pub bypass_methods: MethodSet,
    /// MCP layer: how callers are identified (`config.auth`).
    pub auth: AuthConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            default_effect: Effect::Deny,
            elicit_expiry_secs: 3600,
            secret_key_env: "PORTCULLIS_ROOT_KEY".into(),
            key_id: DEFAULT_KEY_ID.into(),
            retired_keys: Vec::new(),
            enforcers_dir: None,
            limits: Limits::default(),
            redaction: RedactMode::Replace,
            hide_denied_tools: true,
            hide_denied_capabilities: false,
            bypass_methods: MethodSet::default(),
            auth: AuthConfig::default(),
        }
    }
}

/// Key id used when `config.key_id` is not set.
pub const DEFAULT_KEY_ID: &str = "k1";

/// A rotated-out root key: its id (as found in old tokens) and the environment variable that
/// still holds its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetiredKey {
    pub id: String,
    pub env: String,
}

/// Checks a key id: 1 to 32 characters from `A-Z a-z 0-9 . _ -`, so it can sit in a token
/// identifier without escaping.
pub fn check_key_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 32
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "bad key id {id:?}: expected 1 to 32 characters from A-Z, a-z, 0-9, '.', '_', '-'"
        ))
    }
}

/// Who a rule applies to; an empty list means "anyone". All non-empty lists must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectFilter {
    /// Exact user ids.
    pub users: Vec<String>,
    /// Roles; any overlap with the subject's roles matches.
    pub roles: Vec<String>,
    /// Exact agent ids.
    pub agents: Vec<String>,
}

impl SubjectFilter {
    /// True when the subject passes every non-empty list.
    pub fn matches(&self, s: &Subject) -> bool {
        (self.users.is_empty() || self.users.contains(&s.user))
            && (self.roles.is_empty() || self.roles.iter().any(|r| s.roles.contains(r)))
            && (self.agents.is_empty() || s.agent.as_ref().is_some_and(|a| self.agents.contains(a)))
    }

    fn is_empty(&self) -> bool {
        self.users.is_empty() && self.roles.is_empty() && self.agents.is_empty()
    }
}

/// One compiled rule, whichever form it was written in.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Stable id for traces: the rule's name, or `file:line` for compact rules.
    pub id: Arc<str>,
    pub origin: Origin,
    /// The rule as written (compact text, or the structured rule's name).
    pub text: Arc<str>,
    pub phase: Phase,
    pub tools: Vec<ToolPattern>,
    pub subjects: SubjectFilter,
    pub when: Vec<Condition>,
    /// The policy name as written (a built-in or, later, an enforcer).
    pub policy: Arc<str>,
    pub kind: PolicyKind,
    pub action: Effect,
    pub params: Vec<String>,
    /// Orders rules of the same effect in traces (highest first).
    pub priority: i32,
    /// Unix ms after which the rule no longer applies.
    pub expires_unix_ms: Option<u64>,
}

/// The enforcers a rule may name while it is compiled (a policy file's, or the snapshot's
/// for token caveats).
type Catalog<'a> = &'a dyn EnforcerCatalog;

impl Rule {
    /// Compiles a compact caveat that may use built-in policies only.
    pub fn from_compact(text: &str, id: Arc<str>, origin: Origin) -> Result<Rule, String> {
        Rule::from_compact_with(text, id, origin, &NoEnforcers)
    }

    /// Compiles a compact caveat whose policy may also name a loaded enforcer.
    pub fn from_compact_with(
        text: &str,
        id: Arc<str>,
        origin: Origin,
        catalog: Catalog<'_>,
    ) -> Result<Rule, String> {
        let c = compact::parse(text).map_err(|e| e.to_string())?;
        let tool = ToolPattern::parse(&c.tool)?;
        let kind = compile_policy(&c.policy, c.phase, c.action, &c.params, catalog)?;
        if origin == Origin::Token && matches!(kind, PolicyKind::Pdp(_)) {
            // The server would send its callers' identities and arguments to a URL the token
            // holder chose, and wait on it.
            return Err(
                "pdp rules belong in the server's policy: a token cannot name a decision point"
                    .into(),
            );
        }
        Ok(Rule {
            id,
            origin,
            text: Arc::from(text),
            phase: c.phase,
            tools: vec![tool],
            subjects: SubjectFilter::default(),
            when: Vec::new(),
            policy: Arc::from(c.policy.as_str()),
            kind,
            action: c.action,
            params: c.params,
            priority: 0,
            expires_unix_ms: c.expires_unix_ms,
        })
    }

    /// True once the rule's `time<` / `expires` moment has passed.
    pub fn is_expired(&self, now_unix_ms: u64) -> bool {
        self.expires_unix_ms.is_some_and(|t| now_unix_ms >= t)
    }
}

/// A loaded policy file.
#[derive(Debug, Clone)]
pub struct PolicySet {
    /// Where the policy came from, as named by the caller.
    pub source: String,
    pub config: Config,
    /// Rules in file order.
    pub rules: Vec<Rule>,
}

/// Loads a policy file that may use built-in policies only.
pub fn load_file(path: &Path) -> Result<PolicySet, LoadErrors> {
    load_file_with(path, |_| (NoEnforcers, Vec::new())).map(|(p, _)| p)
}

/// Loads a policy from text that may use built-in policies only; `source` names it in
/// errors and rule ids.
pub fn load_str(text: &str, source: &str) -> Result<PolicySet, LoadErrors> {
    load_str_with(text, source, None, |_| (NoEnforcers, Vec::new())).map(|(p, _)| p)
}

/// Loads a policy file. The file is size-checked before it is read. `enforcers` is called
/// with the parsed config (its `enforcers_dir` already resolved against the file's folder)
/// and returns the enforcers rules may name, plus problems with them.
pub fn load_file_with<C: EnforcerCatalog>(
    path: &Path,
    enforcers: impl FnOnce(&Config) -> (C, Vec<LoadError>),
) -> Result<(PolicySet, C), LoadErrors> {
    let name = path.display().to_string();
    let meta = std::fs::metadata(path)
        .map_err(|e| LoadErrors::whole_file(&name, format!("cannot read policy file: {e}")))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(LoadErrors::whole_file(
            &name,
            format!(
                "policy file is {} bytes; the limit is {MAX_FILE_BYTES} bytes (1 MiB)",
                meta.len()
            ),
        ));
    }
    let bytes = std::fs::read(path)
        .map_err(|e| LoadErrors::whole_file(&name, format!("cannot read policy file: {e}")))?;
    let text = String::from_utf8(bytes)
        .map_err(|e| LoadErrors::whole_file(&name, format!("policy file is not UTF-8: {e}")))?;
    load_str_with(&text, &name, path.parent(), enforcers)
}

/// Loads policy text; relative `enforcers_dir` paths resolve against `base_dir`.
pub fn load_str_with<C: EnforcerCatalog>(
    text: &str,
    source: &str,
    base_dir: Option<&Path>,
    enforcers: impl FnOnce(&Config) -> (C, Vec<LoadError>),
) -> Result<(PolicySet, C), LoadErrors> {
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(LoadErrors::whole_file(
            source,
            format!(
                "policy is {} bytes; the limit is {MAX_FILE_BYTES} bytes (1 MiB)",
                text.len()
            ),
        ));
    }
    let raw = raw::parse(text).map_err(|e| raw::yaml_error(source, text, &e))?;
    let mut compiler = Compiler {
        source,
        lines: error::yaml_lines(text),
        errors: Vec::new(),
    };
    let mut config = compiler.config(&raw);
    if let (Some(dir), Some(base)) = (&config.enforcers_dir, base_dir)
        && dir.is_relative()
        && !base.as_os_str().is_empty()
    {
        config.enforcers_dir = Some(base.join(dir));
    }
    if let Some(base) = base_dir.filter(|b| !b.as_os_str().is_empty()) {
        let auth = &mut config.auth;
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        if let Some(p) = auth.keys_file.as_mut() {
            resolve(p);
        }
        if let Some(p) = auth.jwt.as_mut().and_then(|j| j.public_key_file.as_mut()) {
            resolve(p);
        }
        if let Some(j) = auth.jwe.as_mut() {
            resolve(&mut j.key_file);
        }
    }
    let (catalog, problems) = enforcers(&config);
    let enforcer_trouble = !problems.is_empty();
    compiler.errors.extend(problems);
    let rules = compiler.rules(raw, &catalog, enforcer_trouble);
    if compiler.errors.is_empty() {
        Ok((
            PolicySet {
                source: source.to_string(),
                config,
                rules,
            },
            catalog,
        ))
    } else {
        Err(LoadErrors(compiler.errors))
    }
}

struct Compiler<'a> {
    source: &'a str,
    lines: Vec<&'a str>,
    errors: Vec<LoadError>,
}

impl Compiler<'_> {
    fn error(&mut self, line: u64, column: u64, message: impl Into<String>) {
        let entry = usize::try_from(line)
            .ok()
            .and_then(|l| l.checked_sub(1))
            .and_then(|i| self.lines.get(i))
            .map(|s| error::quote_line(s));
        self.errors.push(LoadError {
            file: self.source.to_string(),
            line,
            column,
            entry,
            message: message.into(),
        });
    }

    fn rules(&mut self, raw: RawFile, catalog: Catalog<'_>, enforcer_trouble: bool) -> Vec<Rule> {
        let entries = raw.policies.unwrap_or_default();
        let mut rules = Vec::with_capacity(entries.len());
        let mut names: HashSet<String> = HashSet::new();
        for entry in entries {
            let (line, column) = (entry.referenced.line(), entry.referenced.column());
            let result = match entry.value {
                RawEntry::Compact(text) => {
                    let id: Arc<str> = Arc::from(format!("{}:{line}", self.source));
                    Rule::from_compact_with(&text, id, Origin::Server, catalog).map_err(|e| vec![e])
                }
                RawEntry::Structured(rule) => {
                    if let Some(name) = &rule.name
                        && !names.insert(name.clone())
                    {
                        self.error(
                            line,
                            column,
                            format!("duplicate rule name {name:?}: rule names are ids and must be unique"),
                        );
                    }
                    self.structured(*rule, line, catalog)
                }
            };
            let result = result.and_then(|rule| {
                if let PolicyKind::Enforcer(name) = &rule.kind
                    && let Err(e) = catalog.validate(&rule)
                {
                    return Err(vec![format!("enforcer {name} rejects this rule: {e}")]);
                }
                Ok(rule)
            });
            match result {
                Ok(rule) => rules.push(rule),
                Err(mut messages) => {
                    if enforcer_trouble {
                        for m in messages
                            .iter_mut()
                            .filter(|m| m.starts_with("unknown policy"))
                        {
                            m.push_str(" (some enforcers failed to load; see the errors above)");
                        }
                    }
                    for m in messages {
                        self.error(line, column, m);
                    }
                }
            }
        }
        rules
    }

    fn config(&mut self, raw: &RawFile) -> Config {
        let mut config = Config::default();
        let Some(c) = &raw.config else { return config };
        if let Some(key) = &c.secret_key {
            self.error(
                key.referenced.line(),
                key.referenced.column(),
                "config.secret_key is not accepted: a key in a policy file leaks with the file; \
                 put it in the environment variable named by config.secret_key_env (default PORTCULLIS_ROOT_KEY)",
            );
        }
        if let Some(d) = &c.default_effect {
            match d.value.as_str() {
                "allow" => config.default_effect = Effect::Allow,
                "deny" => config.default_effect = Effect::Deny,
                other => self.error(
                    d.referenced.line(),
                    d.referenced.column(),
                    format!("unknown default_effect {other:?}: expected allow or deny"),
                ),
            }
        }
        if let Some(r) = &c.redaction {
            match r.value.as_str() {
                "replace" => config.redaction = RedactMode::Replace,
                "remove" => config.redaction = RedactMode::Remove,
                other => self.error(
                    r.referenced.line(),
                    r.referenced.column(),
                    format!("unknown redaction {other:?}: expected replace (with \"[REDACTED]\") or remove"),
                ),
            }
        }
        if let Some(h) = c.hide_denied_tools {
            config.hide_denied_tools = h;
        }
        if let Some(h) = c.hide_denied_capabilities {
            config.hide_denied_capabilities = h;
        }
        if let Some(methods) = &c.bypass_methods {
            let patterns = methods.iter().map(|m| m.value.as_str());
            match MethodSet::parse(patterns) {
                Ok(set) => config.bypass_methods = set,
                Err(message) => {
                    let at = methods
                        .iter()
                        .find(|m| message.contains(&format!("{:?}", m.value)))
                        .map_or((0, 0), |m| (m.referenced.line(), m.referenced.column()));
                    self.error(at.0, at.1, format!("config.{message}"));
                }
            }
        }
        if let Some(a) = &c.auth {
            match auth::compile(&a.value) {
                Ok(auth) => config.auth = auth,
                Err(messages) => {
                    for m in messages {
                        self.error(a.referenced.line(), a.referenced.column(), m);
                    }
                }
            }
        }
        if let Some(e) = &c.elicit_expiry {
            if e.value == 0 {
                self.error(
                    e.referenced.line(),
                    e.referenced.column(),
                    "elicit_expiry must be at least 1 second",
                );
            }
            config.elicit_expiry_secs = e.value;
        }
        if let Some(env) = &c.secret_key_env {
            config.secret_key_env = env.clone();
        }
        self.keys(c, &mut config);
        config.enforcers_dir = c.enforcers_dir.as_ref().map(PathBuf::from);
        if let Some(l) = &c.limits {
            if let Some(t) = &l.timeout_ms {
                config.limits.timeout_ms = self.timeout(t, "limits.timeout_ms");
            }
            if let Some(m) = &l.memory_mib {
                config.limits.memory_mib = self.memory(m, "limits.memory_mib");
            }
            for (name, o) in l.enforcers.iter().flatten() {
                let field = |f: &str| format!("limits.enforcers.{name}.{f}");
                let over = LimitOverride {
                    timeout_ms: o
                        .timeout_ms
                        .as_ref()
                        .map(|t| self.timeout(t, &field("timeout_ms"))),
                    memory_mib: o
                        .memory_mib
                        .as_ref()
                        .map(|m| self.memory(m, &field("memory_mib"))),
                };
                config.limits.enforcers.insert(name.clone(), over);
            }
        }
        config
    }

    /// `key_id` and `retired_keys`: valid ids, no id used twice, an environment variable each.
    fn keys(&mut self, c: &raw::RawConfig, config: &mut Config) {
        if let Some(k) = &c.key_id {
            if let Err(e) = check_key_id(&k.value) {
                self.error(
                    k.referenced.line(),
                    k.referenced.column(),
                    format!("key_id: {e}"),
                );
            }
            config.key_id = k.value.clone();
        }
        let mut seen: HashSet<String> = HashSet::from([config.key_id.clone()]);
        for (i, r) in c.retired_keys.iter().flatten().enumerate() {
            let (line, column) = (r.referenced.line(), r.referenced.column());
            let key = &r.value;
            if let Err(e) = check_key_id(&key.id) {
                self.error(line, column, format!("retired_keys[{i}].id: {e}"));
            } else if !seen.insert(key.id.clone()) {
                self.error(
                    line,
                    column,
                    format!(
                        "retired_keys[{i}].id {:?} is already used (by key_id or another retired key): each key needs its own id",
                        key.id
                    ),
                );
            }
            if key.env.trim().is_empty() {
                self.error(
                    line,
                    column,
                    format!("retired_keys[{i}].env is empty: expected the name of the environment variable holding that key"),
                );
            } else if key.env == config.secret_key_env {
                self.error(
                    line,
                    column,
                    format!(
                        "retired_keys[{i}].env {:?} is the current key's variable (secret_key_env): a retired key needs its own variable",
                        key.env
                    ),
                );
            }
            config.retired_keys.push(RetiredKey {
                id: key.id.clone(),
                env: key.env.clone(),
            });
        }
    }

    fn timeout(&mut self, t: &serde_saphyr::Spanned<u64>, field: &str) -> u64 {
        if !(1..=60_000).contains(&t.value) {
            self.error(
                t.referenced.line(),
                t.referenced.column(),
                format!("{field} {} is out of range: expected 1 to 60000", t.value),
            );
        }
        t.value
    }

    fn memory(&mut self, m: &serde_saphyr::Spanned<u64>, field: &str) -> u64 {
        if !(1..=MAX_MEMORY_MIB).contains(&m.value) {
            self.error(
                m.referenced.line(),
                m.referenced.column(),
                format!(
                    "{field} {} is out of range: expected 1 to {MAX_MEMORY_MIB}",
                    m.value
                ),
            );
        }
        m.value
    }

    fn structured(&self, r: RawRule, line: u64, catalog: Catalog<'_>) -> Result<Rule, Vec<String>> {
        let mut errors = Vec::new();
        let policy = r.policy.unwrap_or_else(|| "tool_access".to_string());
        let phase = match r.phase.as_deref() {
            None if policy == "field_access" => Phase::After,
            None => Phase::Before,
            Some("before" | "bf") => Phase::Before,
            Some("after" | "af") => Phase::After,
            Some(other) => {
                errors.push(format!("unknown phase {other:?}: expected before or after"));
                Phase::Before
            }
        };
        let action = compact::parse_action(&r.action).unwrap_or_else(|| {
            errors.push(format!(
                "unknown action {:?}: expected allow, deny or elicit",
                r.action
            ));
            Effect::Deny
        });
        if r.tools.is_empty() {
            errors.push("tools is empty: expected at least one tool name or glob".into());
        }
        let mut tools = Vec::with_capacity(r.tools.len());
        for t in &r.tools {
            match ToolPattern::parse(t) {
                Ok(p) => tools.push(p),
                Err(e) => errors.push(e),
            }
        }
        let mut when = Vec::with_capacity(r.when.len());
        for (i, c) in r.when.iter().enumerate() {
            match Condition::compile(&c.field, &c.op, c.value.as_ref()) {
                Ok(cond) => when.push(cond),
                Err(e) => errors.push(format!("when[{i}]: {e}")),
            }
        }
        let expires_unix_ms = r.expires.as_deref().and_then(|s| {
            match chrono::DateTime::parse_from_rfc3339(s) {
                Ok(t) => u64::try_from(t.timestamp_millis()).ok(),
                Err(e) => {
                    errors.push(format!("bad expires {s:?}: expected an RFC 3339 time such as 2026-12-31T23:59:59Z ({e})"));
                    None
                }
            }
        });
        let kind = match compile_policy(&policy, phase, action, &r.params, catalog) {
            Ok(k) => Some(k),
            Err(e) => {
                errors.push(e);
                None
            }
        };
        let subjects = r.subjects.map(|s| SubjectFilter {
            users: s.users,
            roles: s.roles,
            agents: s.agents,
        });
        if subjects.as_ref().is_some_and(SubjectFilter::is_empty) {
            errors.push("subjects is empty: list users, roles or agents, or leave subjects out to match everyone".into());
        }
        match kind {
            Some(kind) if errors.is_empty() => {
                let id: Arc<str> = match &r.name {
                    Some(n) => Arc::from(n.as_str()),
                    None => Arc::from(format!("{}:{line}", self.source)),
                };
                Ok(Rule {
                    text: id.clone(),
                    id,
                    origin: Origin::Server,
                    phase,
                    tools,
                    subjects: subjects.unwrap_or_default(),
                    when,
                    policy: Arc::from(policy.as_str()),
                    kind,
                    action,
                    params: r.params,
                    priority: r.priority,
                    expires_unix_ms,
                })
            }
            _ => Err(errors),
        }
    }
}

/// Checks a policy name and its phase, action and params; unknown names get a suggestion.
fn compile_policy(
    policy: &str,
    phase: Phase,
    action: Effect,
    params: &[String],
    catalog: Catalog<'_>,
) -> Result<PolicyKind, String> {
    if let Some(result) = rules::compile(policy, phase, action, params) {
        return result.map_err(|e| e.to_string());
    }
    if let Some(phases) = catalog.phases(policy) {
        if !phases.contains(&phase) {
            let supported: Vec<&str> = phases.iter().map(|p| p.as_str()).collect();
            return Err(format!(
                "enforcer {policy} does not run in the {phase} phase: it supports {}",
                supported.join(" and ")
            ));
        }
        return Ok(PolicyKind::Enforcer(Arc::from(policy)));
    }
    let names = catalog.names();
    let candidates = rules::BUILTINS.iter().copied().chain(names.iter().copied());
    let hint = did_you_mean(policy, candidates)
        .map(|s| format!(" (did you mean {s:?}?)"))
        .unwrap_or_default();
    let loaded = if names.is_empty() {
        "or a loaded enforcer".to_string()
    } else {
        format!("or a loaded enforcer ({})", names.join(", "))
    };
    Err(format!(
        "unknown policy {policy:?}{hint}: expected one of {} {loaded}",
        rules::BUILTINS.join(", ")
    ))
}

/// The closest candidate to a misspelt word, if one is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}
