//! First-party caveats Portcullis understands. Anything else fails verification.
//!
//! | caveat | meaning |
//! |---|---|
//! | `user = U` | the token is for user U (must match the identifier) |
//! | `role = R` | the token's subject has role R (must be one the identifier carries) |
//! | `expires < 2026-12-31T23:59:59Z` | the token stops working at that RFC 3339 time |
//! | `tool = GLOB` | only tools matching GLOB may be called |
//! | `PHASE:TOOL:POLICY:ACTION[:PARAM...][:time<...]` | a policy rule applied on top of the server's |
//! | `grant {...}` | a sealed answer to an elicit (see [`super::grant`]) |

use std::sync::Arc;

use chrono::DateTime;

use super::error::TokenError;
use super::grant::{self, Grant};
use crate::decision::Origin;
use crate::policy::{EnforcerCatalog, Rule, ToolPattern};

/// One parsed first-party caveat. Parsing is a pure function of the text (and the enforcers
/// loaded), so results are cached; checks that depend on the token or the clock happen later.
#[derive(Debug, Clone)]
pub enum Caveat {
    User(String),
    Role(String),
    /// Expiry in Unix milliseconds.
    Expires(u64),
    Tool(ToolPattern),
    /// A compiled policy rule with origin [`Origin::Token`]; its id is the caveat text.
    Policy(Arc<Rule>),
    Grant(Grant),
}

/// What the holder may write, for error messages.
pub const EXPECTED: &str = "expected `user = U`, `role = R`, `expires < RFC3339`, `tool = GLOB`, a policy caveat PHASE:TOOL:POLICY:ACTION[:PARAM...][:time<YYYYMMDDTHHMMSSZ], or a grant";

/// Parses one caveat. Policy caveats may name built-in policies and the enforcers in
/// `catalog`.
pub fn parse(text: &str, catalog: &dyn EnforcerCatalog) -> Result<Caveat, TokenError> {
    let unknown = |why: String| TokenError::UnknownCaveat {
        caveat: text.to_string(),
        why,
    };
    if let Some(json) = text.strip_prefix(grant::PREFIX) {
        return Grant::parse(json).map(Caveat::Grant).map_err(unknown);
    }
    if let Some((key, op, value)) = split_predicate(text) {
        return match (key, op) {
            ("user", "=") => Ok(Caveat::User(value.to_string())),
            ("role", "=") => Ok(Caveat::Role(value.to_string())),
            ("tool", "=") => ToolPattern::parse(value)
                .map(Caveat::Tool)
                .map_err(|e| unknown(format!("tool caveat: {e}"))),
            ("expires", "<") => DateTime::parse_from_rfc3339(value)
                .ok()
                .and_then(|t| u64::try_from(t.timestamp_millis()).ok())
                .map(Caveat::Expires)
                .ok_or_else(|| {
                    unknown(format!(
                        "bad time {value:?}: expected an RFC 3339 time such as 2026-12-31T23:59:59Z"
                    ))
                }),
            _ => Err(unknown(format!("unknown key {key:?} {op}: {EXPECTED}"))),
        };
    }
    if text.starts_with("bf:") || text.starts_with("af:") {
        let id: Arc<str> = Arc::from(text);
        return Rule::from_compact_with(text, id, Origin::Token, catalog)
            .map(|r| Caveat::Policy(Arc::new(r)))
            .map_err(|e| unknown(format!("policy caveat: {e}")));
    }
    Err(unknown(EXPECTED.to_string()))
}

/// Splits `key = value` / `key < value`: a word, one space, an operator, one space, a value
/// with no surrounding whitespace.
fn split_predicate(text: &str) -> Option<(&str, &str, &str)> {
    let (key, rest) = text.split_once(' ')?;
    let (op, value) = rest.split_once(' ')?;
    let word = !key.is_empty() && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    let valid = word
        && matches!(op, "=" | "<")
        && !value.is_empty()
        && value.trim() == value
        && !value.chars().any(char::is_control);
    valid.then_some((key, op, value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::{Effect, Phase};
    use crate::policy::NoEnforcers;

    fn ok(text: &str) -> Caveat {
        parse(text, &NoEnforcers).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn parses_every_kind() {
        assert!(matches!(ok("user = ann"), Caveat::User(u) if u == "ann"));
        assert!(matches!(ok("user = Ann Smith"), Caveat::User(u) if u == "Ann Smith"));
        assert!(matches!(ok("role = analyst"), Caveat::Role(r) if r == "analyst"));
        assert!(
            matches!(ok("expires < 2026-12-31T23:59:59Z"), Caveat::Expires(ms) if ms == 1_798_761_599_000)
        );
        assert!(matches!(ok("tool = read_*"), Caveat::Tool(p) if p.matches("read_mail")));
        match ok("af:read_emails:field_access:deny:attachments") {
            Caveat::Policy(r) => {
                assert_eq!(r.origin, Origin::Token);
                assert_eq!(r.phase, Phase::After);
                assert_eq!(r.action, Effect::Deny);
                assert_eq!(&*r.id, "af:read_emails:field_access:deny:attachments");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_caveats_say_what_was_expected() {
        for (text, want) in [
            ("account = 1234", "unknown key \"account\""),
            ("user=ann", "expected `user = U`"),
            ("user =  ann", "expected `user = U`"),
            ("user = ", "expected `user = U`"),
            ("time < 2026", "unknown key \"time\""),
            ("expires < tomorrow", "bad time \"tomorrow\""),
            ("tool = [a", "tool caveat: bad tool glob"),
            ("bf:x:tool_acess:deny", "did you mean \"tool_access\""),
            ("bf:x:tool_access:deny:time<2026", "bad expiry"),
            ("grant {}", "missing field"),
            ("", "expected `user = U`"),
        ] {
            match parse(text, &NoEnforcers) {
                Err(TokenError::UnknownCaveat { caveat, why }) => {
                    assert_eq!(caveat, text);
                    assert!(why.contains(want), "{text:?}: {why}");
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }
}
