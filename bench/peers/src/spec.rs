//! What bench/py/spec.py writes: the rule sets, the calls with their expected decisions, the
//! documents to redact and the MCP comparison. Every engine here and on the Python side reads
//! the same file.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct Spec {
    pub rule_sets: Vec<RuleSet>,
    pub redaction: Redaction,
    pub mcp: Mcp,
}

#[derive(Debug, Deserialize)]
pub struct RuleSet {
    pub n: usize,
    pub default_effect: String,
    pub rules: Vec<Rule>,
    pub cases: Vec<Case>,
    /// The same rules in the seed's compact grammar (no roles).
    pub compact: Vec<String>,
    pub compact_default_effect: String,
    pub compact_cases: Vec<String>,
    pub hours: Hours,
}

#[derive(Debug, Deserialize)]
pub struct Rule {
    pub name: String,
    pub tool: String,
    /// Empty: any caller.
    pub roles: Vec<String>,
    pub effect: String,
}

#[derive(Debug, Deserialize)]
pub struct Case {
    pub case: String,
    pub user: String,
    pub roles: Vec<String>,
    pub tool: String,
    pub expect: String,
    /// The rule that must decide; `None` for a default decision.
    pub rule: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Hours {
    pub tool: String,
    pub params: Vec<String>,
    pub inside_ms: u64,
    pub outside_ms: u64,
}

#[derive(Debug, Deserialize)]
pub struct Redaction {
    pub tool: String,
    pub fields: Vec<String>,
    pub compact: Vec<String>,
    pub documents: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
pub struct Mcp {
    pub n: usize,
    pub tool: String,
    pub args: serde_json::Map<String, serde_json::Value>,
    pub blocks: usize,
    pub per_block: usize,
}
