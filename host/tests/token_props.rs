//! Property: whatever caveat a holder appends to a token, the decision never gets more
//! permissive. Before the call the effect never drops in severity (a deny or elicit never
//! becomes allow); after the call every field that was withheld stays withheld.

#[path = "support/tokens.rs"]
mod support;

use std::collections::BTreeSet;

use portcullis::token::VerifiedToken;
use portcullis::{Effect, Engine, ToolResult};
use proptest::prelude::*;
use serde_json::json;
use support::*;

const POLICY: &str = r#"
config:
  default_effect: deny
policies:
  - "bf:read_*:tool_access:allow"
  - "bf:list_*:tool_access:allow"
  - "bf:admin_tool:tool_access:deny"
  - "bf:send_email:tool_access:elicit"
  - "bf:export:allow_attempts:allow:1"
  - "af:read_emails:field_access:elicit:attachments"
  - "af:read_emails:field_access:deny:body"
"#;

const TOOLS: &[&str] = &[
    "read_emails",
    "send_email",
    "admin_tool",
    "list_contacts",
    "export",
    "unknown_tool",
];

fn arb_tool_pattern() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(TOOLS).prop_map(str::to_string),
        Just("*".to_string()),
        Just("read_*".to_string()),
        Just("{send,admin}_*".to_string()),
        Just("l?st_*".to_string()),
    ]
}

fn arb_policy_caveat() -> impl Strategy<Value = String> {
    let action = prop::sample::select(vec!["allow", "deny", "elicit"]);
    let time = prop::sample::select(vec!["", ":time<20200101T000000Z", ":time<20300101T000000Z"]);
    let field = prop::sample::select(vec!["body", "attachments", "subject", "x.y"]);
    prop_oneof![
        (arb_tool_pattern(), action.clone(), time.clone())
            .prop_map(|(t, a, e)| format!("bf:{t}:tool_access:{a}{e}")),
        (arb_tool_pattern(), action, field, time.clone())
            .prop_map(|(t, a, f, e)| format!("af:{t}:field_access:{a}:{f}{e}")),
        (arb_tool_pattern(), 1u8..3, time)
            .prop_map(|(t, n, e)| format!("bf:{t}:allow_attempts:allow:{n}{e}")),
    ]
}

/// Any caveat text a holder might append: valid ones of every kind, near misses, forged
/// grants and garbage.
fn arb_caveat() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => arb_policy_caveat(),
        2 => arb_tool_pattern().prop_map(|t| format!("tool = {t}")),
        1 => prop::sample::select(vec!["2020-01-01T00:00:00Z", "2030-01-01T00:00:00Z"])
            .prop_map(|t| format!("expires < {t}")),
        1 => prop::sample::select(vec!["ann", "bob"]).prop_map(|u| format!("user = {u}")),
        1 => prop::sample::select(vec!["analyst", "admin"]).prop_map(|r| format!("role = {r}")),
        1 => (prop::sample::select(TOOLS), any::<[u8; 8]>()).prop_map(|(t, mac)| format!(
            r#"grant {{"v":1,"d":"accept","kid":"k1","ph":"bf","tool":"{t}","policy":"tool_access","params":[],"exp":4102444800,"mac":"{}"}}"#,
            mac.iter().map(|b| format!("{b:02x}")).collect::<String>().repeat(2)
        )),
        1 => "[a-z =<:*]{0,24}",
    ]
}

/// Verifies (a refused token is treated as a refused call: `None`).
fn verified(engine: &Engine, token: &str) -> Option<VerifiedToken> {
    verify(engine, &keys(), token).ok()
}

fn before(token: &str, tool: &str) -> Effect {
    let engine = Engine::from_str(POLICY, "p.yaml").unwrap();
    match verified(&engine, token) {
        None => Effect::Deny,
        Some(v) => {
            let req = v.request(tool, json!({})).at(NOW);
            engine.before_with(&req, Some(&v)).effect
        }
    }
}

/// The after-phase effect and the paths that were withheld (None: whole result withheld).
fn after(token: &str, tool: &str) -> (Effect, Option<BTreeSet<String>>) {
    let engine = Engine::from_str(POLICY, "p.yaml").unwrap();
    let Some(v) = verified(&engine, token) else {
        return (Effect::Deny, None);
    };
    let req = v.request(tool, json!({})).at(NOW);
    let result = ToolResult::from_json_value(
        json!({"subject": "s", "body": "b", "attachments": ["a"], "x": {"y": 1}}),
    );
    let (d, out) = engine.after_with(&req, result, Some(&v));
    match out.structured {
        None => (d.effect, None),
        Some(s) => {
            let withheld = ["subject", "body", "attachments"]
                .iter()
                .filter(|k| s[**k] == "[REDACTED]")
                .map(|k| k.to_string())
                .chain((s["x"]["y"] == "[REDACTED]").then(|| "x.y".to_string()))
                .collect();
            (d.effect, Some(withheld))
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn appending_a_caveat_never_loosens_a_decision(
        base in prop::collection::vec(arb_policy_caveat(), 0..3),
        extra in arb_caveat(),
        tool in prop::sample::select(TOOLS),
    ) {
        let base_refs: Vec<&str> = base.iter().map(String::as_str).collect();
        let token = mint_with(&keys(), "ann", &["analyst"], &base_refs);
        let appended = append_raw(&token, &[&extra]);

        let (e0, e1) = (before(&token, tool), before(&appended, tool));
        prop_assert!(e1 >= e0, "before {tool}: {e0} -> {e1} after appending {extra:?} to {base:?}");
        if e0 != Effect::Allow {
            prop_assert_ne!(e1, Effect::Allow);
        }

        let ((a0, w0), (a1, w1)) = (after(&token, tool), after(&appended, tool));
        if a0 == Effect::Deny {
            prop_assert_eq!(a1, Effect::Deny, "after {}: appending {:?}", tool, extra);
        }
        match (w0, w1) {
            (_, None) => {} // everything withheld: as strict as it gets
            (None, Some(_)) => prop_assert!(false, "after {tool}: a withheld result came back after appending {extra:?}"),
            (Some(w0), Some(w1)) => prop_assert!(
                w1.is_superset(&w0),
                "after {tool}: withheld {w0:?} -> {w1:?} after appending {extra:?} to {base:?}"
            ),
        }
    }
}
