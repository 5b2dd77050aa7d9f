//! Engine decisions: the precedence table, default effect, expiry, attempts, subjects and
//! redaction across both result views.

use portcullis::decision::{Effect, Phase};
use portcullis::{Content, Engine, Request, Subject, ToolResult};
use serde_json::{Value, json};

fn engine(policies: &str) -> Engine {
    engine_with("", policies)
}

fn engine_with(config: &str, policies: &str) -> Engine {
    let text = format!("config:\n{config}  default_effect: deny\npolicies:\n{policies}");
    Engine::from_str(&text, "t.yaml").unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn call(tool: &str) -> Request {
    Request::new(Subject::user("ann"), tool, json!({}))
}

/// The documented precedence table: deny beats elicit beats allow, in either form, whatever
/// the order in the file; rules that do not apply change nothing; no rule -> default_effect.
#[test]
fn precedence_table() {
    let allow_c = "  - \"bf:t:tool_access:allow\"\n";
    let deny_c = "  - \"bf:t:tool_access:deny\"\n";
    let elicit_c = "  - \"bf:t:tool_access:elicit\"\n";
    let allow_s = "  - {name: allow-s, tools: [t], action: allow}\n";
    let deny_s = "  - {name: deny-s, tools: [\"t*\"], action: deny}\n";
    let elicit_s = "  - {name: elicit-s, tools: [\"?\"], action: elicit}\n";
    let other = "  - \"bf:other:tool_access:allow\"\n";
    let rows: Vec<(Vec<&str>, Effect)> = vec![
        (vec![], Effect::Deny), // default_effect
        (vec![other], Effect::Deny),
        (vec![allow_c], Effect::Allow),
        (vec![allow_s], Effect::Allow),
        (vec![deny_c], Effect::Deny),
        (vec![elicit_c], Effect::Elicit),
        (vec![allow_c, deny_c], Effect::Deny),
        (vec![deny_c, allow_c], Effect::Deny),
        (vec![allow_s, deny_c], Effect::Deny),
        (vec![allow_c, deny_s], Effect::Deny),
        (vec![allow_c, elicit_c], Effect::Elicit),
        (vec![elicit_s, allow_c], Effect::Elicit),
        (vec![elicit_c, deny_s], Effect::Deny),
        (vec![deny_c, elicit_s, allow_s], Effect::Deny),
        (vec![allow_c, allow_s], Effect::Allow),
    ];
    for (rules, want) in rows {
        let e = engine(&rules.concat());
        let d = e.before(&call("t"));
        assert_eq!(d.effect, want, "rules {rules:?}: {}", d.reason);
        assert_eq!(d.by_default, rules.iter().all(|r| *r == other), "{rules:?}");
    }
}

#[test]
fn default_effect_allow_applies_only_when_no_rule_applies() {
    let text = "config:\n  default_effect: allow\npolicies:\n  - \"bf:admin:tool_access:deny\"\n";
    let e = Engine::from_str(text, "t.yaml").unwrap();
    let d = e.before(&call("anything"));
    assert_eq!(d.effect, Effect::Allow);
    assert!(d.by_default);
    assert!(d.reason.contains("default_effect is allow"), "{}", d.reason);
    assert_eq!(e.before(&call("admin")).effect, Effect::Deny);
}

#[test]
fn trace_orders_by_effect_then_priority_and_names_the_deciding_rule() {
    let e = engine(concat!(
        "  - {name: low, tools: [t], action: allow, priority: 1}\n",
        "  - {name: high, tools: [t], action: allow, priority: 50}\n",
        "  - {name: ask, tools: [t], action: elicit}\n",
        "  - {name: no-a, tools: [t], action: deny, priority: -5}\n",
        "  - {name: no-b, tools: [t], action: deny, priority: 5}\n",
    ));
    let d = e.before(&call("t"));
    let ids: Vec<&str> = d.matched.iter().map(|m| &*m.id).collect();
    assert_eq!(ids, ["no-b", "no-a", "ask", "high", "low"]);
    assert_eq!(d.effect, Effect::Deny);
    assert!(d.reason.contains("no-b"), "{}", d.reason);
}

#[test]
fn expired_rules_no_longer_apply() {
    let e = engine(concat!(
        "  - \"bf:t:tool_access:allow:time<20300101T000000Z\"\n",
        "  - {name: s, tools: [u], action: allow, expires: \"2030-01-01T00:00:00Z\"}\n",
    ));
    let before = 1_893_455_999_000; // 2029-12-31T23:59:59Z
    let after = 1_893_456_000_000; // 2030-01-01T00:00:00Z
    for tool in ["t", "u"] {
        assert_eq!(
            e.before(&call(tool).at(before)).effect,
            Effect::Allow,
            "{tool}"
        );
        let d = e.before(&call(tool).at(after));
        assert_eq!(d.effect, Effect::Deny, "{tool}");
        assert!(d.by_default);
    }
}

#[test]
fn allow_attempts_counts_per_subject_and_tool_and_denies_after_n() {
    let e = engine("  - \"bf:export*:allow_attempts:allow:2\"\n");
    let ann = |tool: &str| Request::new(Subject::user("ann"), tool, json!({}));
    assert_eq!(e.before(&ann("export")).effect, Effect::Allow);
    assert_eq!(e.before(&ann("export")).effect, Effect::Allow);
    let d = e.before(&ann("export"));
    assert_eq!(d.effect, Effect::Deny);
    assert!(
        d.reason.contains("has used all 2 allowed call(s)"),
        "{}",
        d.reason
    );
    assert_eq!(
        e.before(&ann("export")).effect,
        Effect::Deny,
        "stays denied"
    );
    // Another subject, and another tool under the same glob, have their own budgets.
    let bob = Request::new(Subject::user("bob"), "export", json!({}));
    assert_eq!(e.before(&bob).effect, Effect::Allow);
    assert_eq!(e.before(&ann("export_all")).effect, Effect::Allow);
    assert_eq!(e.attempts().used("t.yaml:4", "ann", "export"), 2);
}

#[test]
fn denied_calls_do_not_spend_attempts() {
    let e = engine(concat!(
        "  - \"bf:t:allow_attempts:allow:1\"\n",
        "  - {name: no-big, tools: [t], when: [{field: args.n, op: gt, value: 10}], action: deny}\n",
    ));
    let big = Request::new(Subject::user("ann"), "t", json!({"n": 100}));
    let small = Request::new(Subject::user("ann"), "t", json!({"n": 1}));
    assert_eq!(e.before(&big).effect, Effect::Deny);
    assert_eq!(e.before(&big).effect, Effect::Deny);
    assert_eq!(
        e.before(&small).effect,
        Effect::Allow,
        "denials spent no attempt"
    );
    assert_eq!(e.before(&small).effect, Effect::Deny);
}

#[test]
fn attempts_survive_a_snapshot_swap() {
    let text = "policies:\n  - {name: budget, tools: [t], policy: allow_attempts, action: allow, params: [\"1\"]}\n";
    let e = Engine::from_str(text, "a.yaml").unwrap();
    assert_eq!(e.before(&call("t")).effect, Effect::Allow);
    let again = portcullis::policy::load_str(text, "a.yaml").unwrap();
    e.swap(portcullis::Snapshot::new(again).unwrap());
    assert_eq!(e.before(&call("t")).effect, Effect::Deny);
}

#[test]
fn subjects_filter_rules() {
    let e = engine(concat!(
        "  - {name: by-user, tools: [u], subjects: {users: [ann]}, action: allow}\n",
        "  - {name: by-role, tools: [r], subjects: {roles: [admin, ops]}, action: allow}\n",
        "  - {name: by-agent, tools: [a], subjects: {agents: [claude]}, action: allow}\n",
        "  - {name: all-of, tools: [x], subjects: {users: [ann], roles: [ops]}, action: allow}\n",
    ));
    let who = |user: &str, roles: &[&str], agent: Option<&str>, tool: &str| {
        let mut s = Subject::user(user);
        s.roles = roles.iter().map(|r| r.to_string()).collect();
        s.agent = agent.map(str::to_string);
        e.before(&Request::new(s, tool, json!({}))).effect
    };
    assert_eq!(who("ann", &[], None, "u"), Effect::Allow);
    assert_eq!(who("bob", &[], None, "u"), Effect::Deny);
    assert_eq!(who("bob", &["dev", "ops"], None, "r"), Effect::Allow);
    assert_eq!(who("bob", &["dev"], None, "r"), Effect::Deny);
    assert_eq!(who("bob", &[], Some("claude"), "a"), Effect::Allow);
    assert_eq!(who("bob", &[], Some("other"), "a"), Effect::Deny);
    assert_eq!(who("bob", &[], None, "a"), Effect::Deny);
    assert_eq!(who("ann", &["ops"], None, "x"), Effect::Allow);
    assert_eq!(who("ann", &["dev"], None, "x"), Effect::Deny);
}

#[test]
fn unevaluable_conditions_fail_closed() {
    let e = engine(concat!(
        "  - {name: ok, tools: [t], action: allow}\n",
        "  - {name: cap, tools: [t], when: [{field: args.n, op: gt, value: 10}], action: deny}\n",
        "  - {name: only-small, tools: [u], when: [{field: args.n, op: lt, value: 10}], action: allow}\n",
    ));
    // A deny rule whose condition cannot be judged still applies...
    let d = e.before(&Request::new(
        Subject::user("a"),
        "t",
        json!({"n": {"x": 1}}),
    ));
    assert_eq!(d.effect, Effect::Deny);
    assert!(
        d.notes[0].contains("could not be evaluated"),
        "{:?}",
        d.notes
    );
    // ...and an allow rule does not.
    let d = e.before(&Request::new(Subject::user("a"), "u", json!({"n": "lots"})));
    assert_eq!(d.effect, Effect::Deny);
    assert!(d.by_default);
    assert!(
        d.notes[0].contains("the allow rule does not apply"),
        "{:?}",
        d.notes
    );
}

#[test]
fn index_finds_exact_and_glob_rules_but_not_others() {
    let mut rules = String::new();
    for i in 0..500 {
        rules += &format!("  - \"bf:tool_{i}:tool_access:allow\"\n");
    }
    rules += "  - \"bf:tool_4*:tool_access:elicit\"\n  - \"bf:{a,b}_x:tool_access:deny\"\n";
    let e = engine(&rules);
    let d = e.before(&call("tool_7"));
    assert_eq!((d.effect, d.matched.len()), (Effect::Allow, 1));
    let d = e.before(&call("tool_42"));
    assert_eq!((d.effect, d.matched.len()), (Effect::Elicit, 2));
    assert_eq!(e.before(&call("b_x")).effect, Effect::Deny);
    assert!(e.before(&call("c_x")).by_default);
    assert!(e.before(&call("tool_")).by_default);
}

fn profile() -> Value {
    json!({
        "name": "Ann",
        "user_pii": {"social_security_number": "123-45-6789", "phone": "555"},
        "items": [{"email": "a@x", "id": 1}, {"email": "b@x", "id": 2}]
    })
}

#[test]
fn redaction_agrees_across_structured_and_text_views() {
    let e = engine(concat!(
        "  - \"af:p:field_access:deny:user_pii.social_security_number:items[*].email\"\n",
        "  - \"af:p:field_access:deny:/user_pii/phone\"\n",
    ));
    let mut result = ToolResult::from_json_value(profile());
    result.content.push(Content::Text(
        serde_json::to_string_pretty(&profile()).unwrap(),
    ));
    result
        .content
        .push(Content::Text("plain text mentioning nothing".into()));
    result
        .content
        .push(Content::Other(json!({"type": "image", "data": "AAAA"})));
    let (d, out) = e.after(&call("p"), result);
    assert_eq!(d.phase, Phase::After);
    assert_eq!(d.effect, Effect::Allow);
    let want = json!({
        "name": "Ann",
        "user_pii": {"social_security_number": "[REDACTED]", "phone": "[REDACTED]"},
        "items": [{"email": "[REDACTED]", "id": 1}, {"email": "[REDACTED]", "id": 2}]
    });
    assert_eq!(out.structured.as_ref(), Some(&want));
    let Content::Text(compact) = &out.content[0] else {
        panic!()
    };
    assert_eq!(serde_json::from_str::<Value>(compact).unwrap(), want);
    assert!(!compact.contains('\n'), "compact text stays compact");
    let Content::Text(pretty) = &out.content[1] else {
        panic!()
    };
    assert_eq!(serde_json::from_str::<Value>(pretty).unwrap(), want);
    assert!(pretty.contains('\n'), "pretty text stays pretty");
    assert_eq!(
        out.content[2],
        Content::Text("plain text mentioning nothing".into())
    );
    assert_eq!(
        out.content[3],
        Content::Other(json!({"type": "image", "data": "AAAA"}))
    );
    assert_eq!(
        d.notes,
        ["content[2] is not JSON text; field_access left it unchanged"]
    );
    let paths: Vec<&str> = d.redactions.iter().map(|r| &*r.path).collect();
    assert_eq!(
        paths,
        [
            "user_pii.social_security_number",
            "items[*].email",
            "/user_pii/phone"
        ]
    );
}

#[test]
fn remove_mode_removes_keys_in_both_views() {
    let e = engine_with(
        "  redaction: remove\n",
        "  - \"af:p:field_access:deny:user_pii.social_security_number\"\n",
    );
    let (_, out) = e.after(&call("p"), ToolResult::from_json_value(profile()));
    let s = out.structured.unwrap();
    assert!(s["user_pii"].get("social_security_number").is_none());
    let Content::Text(t) = &out.content[0] else {
        panic!()
    };
    assert!(
        !t.contains("social_security_number") && !t.contains("123-45"),
        "{t}"
    );
}

#[test]
fn missing_paths_change_nothing_and_are_not_reported() {
    let e = engine("  - \"af:p:field_access:deny:nope.deeper:items[9].email\"\n");
    let original = ToolResult::from_json_value(profile());
    let (d, out) = e.after(&call("p"), original.clone());
    assert_eq!(out, original);
    assert!(d.redactions.is_empty());
    assert_eq!(d.effect, Effect::Allow);
    assert_eq!(d.reason, "result returned unchanged");
}

#[test]
fn elicit_fields_are_withheld_and_need_approval() {
    let e = engine(concat!(
        "  - \"af:read_emails:field_access:elicit:attachments\"\n",
        "  - \"af:read_emails:field_access:deny:body\"\n",
    ));
    let emails = json!([
        {"subject": "hi", "body": "secret body", "attachments": ["a.pdf"]},
        {"subject": "yo", "body": "other body", "attachments": []}
    ]);
    let (d, out) = e.after(&call("read_emails"), ToolResult::from_json_value(emails));
    assert_eq!(d.effect, Effect::Elicit);
    let pending: Vec<&str> = d.pending_fields().map(|r| &*r.path).collect();
    assert_eq!(pending, ["attachments"]);
    assert!(
        d.reason.contains("until the user approves: attachments"),
        "{}",
        d.reason
    );
    // Seed compatibility: a top-level key applies to every record of a list result.
    let s = out.structured.unwrap();
    assert_eq!(s[0]["attachments"], "[REDACTED]");
    assert_eq!(s[1]["body"], "[REDACTED]");
    assert_eq!(s[0]["subject"], "hi");
}

#[test]
fn after_rules_respect_subjects_and_conditions() {
    let e = engine(
        "  - {name: hide, phase: after, tools: [p], policy: field_access, action: deny, params: [name], subjects: {roles: [guest]}}\n",
    );
    let guest = Request::new(Subject::user("g").with_role("guest"), "p", json!({}));
    let (_, out) = e.after(&guest, ToolResult::from_json_value(profile()));
    assert_eq!(out.structured.unwrap()["name"], "[REDACTED]");
    let (_, out) = e.after(&call("p"), ToolResult::from_json_value(profile()));
    assert_eq!(out.structured.unwrap()["name"], "Ann");
}

#[test]
fn before_phase_ignores_after_rules_and_vice_versa() {
    let e = engine(concat!(
        "  - \"bf:p:tool_access:allow\"\n",
        "  - \"af:p:field_access:deny:name\"\n",
    ));
    let d = e.before(&call("p"));
    assert_eq!(d.matched.len(), 1);
    assert_eq!(&*d.matched[0].policy, "tool_access");
    let (d, _) = e.after(&call("p"), ToolResult::from_json_value(profile()));
    assert_eq!(d.matched.len(), 1);
    assert_eq!(&*d.matched[0].policy, "field_access");
}
