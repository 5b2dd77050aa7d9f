//! The policy file as YAML holds it, before validation. Every struct rejects unknown fields.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use serde_saphyr::{Budget, Options, Spanned};

use super::error::{LoadError, LoadErrors};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    #[serde(default)]
    pub config: Option<RawConfig>,
    /// `None` for an absent or empty (`policies:` with nothing under it) list.
    #[serde(default)]
    pub policies: Option<Vec<Spanned<RawEntry>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub default_effect: Option<Spanned<String>>,
    pub elicit_expiry: Option<Spanned<u64>>,
    pub secret_key_env: Option<String>,
    /// Id of the current token root key, written into every token's identifier.
    pub key_id: Option<Spanned<String>>,
    /// Keys that still verify tokens (and grants) made before a rotation.
    pub retired_keys: Option<Vec<Spanned<RawRetiredKey>>>,
    /// Accepted only to reject it with a clear message (the seed kept keys in the file).
    pub secret_key: Option<Spanned<String>>,
    pub enforcers_dir: Option<String>,
    pub limits: Option<RawLimits>,
    pub redaction: Option<Spanned<String>>,
    /// MCP layer: hide tools the caller can never call from tools/list (default true).
    pub hide_denied_tools: Option<bool>,
    /// MCP layer: trim capabilities the caller may not use from `initialize` (default false).
    pub hide_denied_capabilities: Option<bool>,
    /// MCP layer: methods let through without identity or rules.
    pub bypass_methods: Option<Vec<Spanned<String>>>,
    /// MCP layer: how callers are identified.
    pub auth: Option<Spanned<super::auth::RawAuth>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRetiredKey {
    pub id: String,
    pub env: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    pub timeout_ms: Option<Spanned<u64>>,
    pub memory_mib: Option<Spanned<u64>>,
    /// Overrides by enforcer name.
    pub enforcers: Option<std::collections::BTreeMap<String, RawLimitOverride>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimitOverride {
    pub timeout_ms: Option<Spanned<u64>>,
    pub memory_mib: Option<Spanned<u64>>,
}

/// One entry of `policies:`: a compact string or a structured rule.
#[derive(Debug)]
pub(super) enum RawEntry {
    Compact(String),
    Structured(Box<RawRule>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    pub name: Option<String>,
    #[allow(dead_code)] // documentation for humans; kept so it is not an unknown field
    pub description: Option<String>,
    pub phase: Option<String>,
    pub tools: Vec<String>,
    pub subjects: Option<RawSubjects>,
    #[serde(default)]
    pub when: Vec<RawCondition>,
    pub policy: Option<String>,
    pub action: String,
    #[serde(default)]
    pub params: Vec<String>,
    #[serde(default)]
    pub priority: i32,
    pub expires: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSubjects {
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub agents: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCondition {
    pub field: String,
    pub op: String,
    pub value: Option<Value>,
}

impl<'de> Deserialize<'de> for RawEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct EntryVisitor;
        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = RawEntry;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a compact policy string (PHASE:TOOL:POLICY:ACTION[:PARAM...]) or a structured rule mapping")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawEntry, E> {
                Ok(RawEntry::Compact(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawEntry, A::Error> {
                RawRule::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|r| RawEntry::Structured(Box::new(r)))
            }
        }
        d.deserialize_any(EntryVisitor)
    }
}

/// Parses YAML with budgets sized for policy files: shallow, few aliases, one document.
///
/// Without aliases every node takes at least two bytes of input (`a,` or `- a`), so the node
/// and event budgets are derived from the input's size: an alias may reuse a value, but the
/// document can never expand beyond what its own text could spell out. A "billion laughs" is
/// therefore rejected after a few hundred nodes, not after the default 250 000.
pub(super) fn parse(text: &str) -> Result<RawFile, serde_saphyr::Error> {
    let mut budget = Budget::default();
    budget.max_depth = 32;
    budget.max_aliases = 100;
    budget.max_anchors = 100;
    budget.max_nodes = text.len() / 2 + 64;
    budget.max_events = text.len() * 2 + 128;
    budget.max_documents = 1;
    let mut options = Options::default();
    options.budget = Some(budget);
    options.with_snippet = false;
    serde_saphyr::from_str_with_options(text, options)
}

/// Turns a YAML error into a load error at the position the parser reports.
pub(super) fn yaml_error(source: &str, text: &str, e: &serde_saphyr::Error) -> LoadErrors {
    let (line, column) = e
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    let entry = usize::try_from(line)
        .ok()
        .and_then(|l| l.checked_sub(1))
        .and_then(|i| super::error::yaml_lines(text).get(i).copied())
        .map(super::error::quote_line);
    let mut message = e.without_snippet().to_string();
    // The location is already in front of the message; drop the parser's own trailing copy.
    if let Some(at) = message.rfind(" at line ")
        && message[at..]
            .split(", column ")
            .nth(1)
            .is_some_and(|c| c.chars().all(|c| c.is_ascii_digit()))
    {
        message.truncate(at);
    }
    if let Some(cut) = message.find(", set DuplicateKeyPolicy") {
        message.truncate(cut);
        message.push_str(": each key may appear only once");
    }
    if message.starts_with("budget breached") {
        message = format!(
            "YAML rejected: it nests deeper than 32 levels, uses more than 100 aliases, or its aliases expand it beyond its own size (a \"billion laughs\"); {message}"
        );
    }
    LoadErrors(vec![LoadError {
        file: source.to_string(),
        line,
        column,
        entry,
        message,
    }])
}
