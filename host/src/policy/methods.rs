//! `config.bypass_methods`: the MCP methods the policy layer lets through without identifying
//! the caller or applying rules (as permit-fastmcp's bypass list), e.g. health checks.
//!
//! A pattern is a method name (`ping`, `health/check`) or a prefix ending in `/*`
//! (`notifications/*`). The methods whose whole point is a policy decision (`tools/call`,
//! `resources/read`, `prompts/get`) cannot be bypassed: to open one to everyone, write an allow
//! rule, which is audited.

use std::fmt;

/// The default: the handshake, liveness and notifications, which carry no request to decide.
pub const DEFAULT_BYPASS: [&str; 4] = ["initialize", "server/discover", "ping", "notifications/*"];

/// Methods that are decided by the policy and so may never be bypassed.
const DECIDED: [&str; 3] = ["tools/call", "resources/read", "prompts/get"];

/// A set of method patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodSet(Vec<String>);

impl Default for MethodSet {
    fn default() -> Self {
        MethodSet(DEFAULT_BYPASS.iter().map(|m| m.to_string()).collect())
    }
}

impl MethodSet {
    /// Checks each pattern; the error says which one and why.
    pub fn parse<'a>(patterns: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut set = Vec::new();
        for p in patterns {
            check(p)?;
            set.push(p.to_string());
        }
        Ok(MethodSet(set))
    }

    /// Whether `method` is let through.
    pub fn matches(&self, method: &str) -> bool {
        self.0.iter().any(|p| pattern_matches(p, method))
    }
}

impl fmt::Display for MethodSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(", "))
    }
}

fn pattern_matches(pattern: &str, method: &str) -> bool {
    match pattern.strip_suffix("/*") {
        Some(prefix) => method
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/')),
        None => pattern == method,
    }
}

fn check(p: &str) -> Result<(), String> {
    if p.is_empty() || p.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "bypass_methods entry {p:?} is not a method name: expected e.g. ping or notifications/*"
        ));
    }
    let body = p.strip_suffix("/*").unwrap_or(p);
    if body.is_empty() || body.contains('*') {
        return Err(format!(
            "bypass_methods entry {p:?}: a * may only end a pattern, after a / (as in notifications/*)"
        ));
    }
    if let Some(decided) = DECIDED.iter().find(|m| pattern_matches(p, m)) {
        return Err(format!(
            "bypass_methods entry {p:?} would let {decided} through unchecked: it is what the policy decides; to open it to everyone write an allow rule, which is audited"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_names_and_slash_star_prefixes() {
        let set = MethodSet::default();
        for m in [
            "initialize",
            "ping",
            "notifications/cancelled",
            "notifications/resources/updated",
        ] {
            assert!(set.matches(m), "{m}");
        }
        for m in ["tools/list", "notifications", "pings", "logging/setLevel"] {
            assert!(!set.matches(m), "{m}");
        }
        let health = MethodSet::parse(["health/*", "tools/list"]).unwrap();
        assert!(health.matches("health/check"));
        assert!(!health.matches("healthcheck"));
        assert!(!health.matches("ping"));
    }

    #[test]
    fn decided_methods_and_bad_patterns_are_refused() {
        for (p, says) in [
            ("tools/call", "tools/call through unchecked"),
            ("tools/*", "tools/call through unchecked"),
            ("resources/*", "resources/read through unchecked"),
            ("prompts/get", "prompts/get through unchecked"),
            ("*", "a * may only end a pattern"),
            ("tools/*/x", "a * may only end a pattern"),
            ("", "not a method name"),
            ("to ols/list", "not a method name"),
        ] {
            let e = MethodSet::parse([p]).unwrap_err();
            assert!(e.contains(says), "{p}: {e}");
        }
    }
}
