//! Loading policy files: both forms, config, and every load error with its location.

use std::time::{Duration, Instant};

use portcullis::decision::{Effect, Phase};
use portcullis::paths::RedactMode;
use portcullis::policy::{self, LoadErrors, ToolPattern};
use portcullis::rules::PolicyKind;

fn load(text: &str) -> Result<policy::PolicySet, LoadErrors> {
    policy::load_str(text, "test.yaml")
}

fn errors(text: &str) -> Vec<String> {
    match load(text) {
        Ok(_) => panic!("expected load errors for:\n{text}"),
        Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
    }
}

fn one_error(text: &str) -> String {
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "expected one error, got {errs:#?}");
    errs.into_iter().next().unwrap()
}

#[test]
fn defaults_when_config_is_absent() {
    let p = load("policies: []\n").unwrap();
    assert_eq!(p.config.default_effect, Effect::Deny);
    assert_eq!(p.config.elicit_expiry_secs, 3600);
    assert_eq!(p.config.secret_key_env, "PORTCULLIS_ROOT_KEY");
    assert_eq!(p.config.redaction, RedactMode::Replace);
    assert_eq!(p.config.limits.timeout_ms, 10);
    assert_eq!(p.config.limits.memory_mib, 16);
    assert!(p.config.enforcers_dir.is_none());
    assert!(p.rules.is_empty());
}

#[test]
fn every_config_field() {
    let p = load(
        "config:\n  default_effect: allow\n  elicit_expiry: 60\n  secret_key_env: MY_KEY\n  enforcers_dir: enf\n  limits: { timeout_ms: 25, memory_mib: 32 }\n  redaction: remove\n",
    )
    .unwrap();
    assert_eq!(p.config.default_effect, Effect::Allow);
    assert_eq!(p.config.elicit_expiry_secs, 60);
    assert_eq!(p.config.secret_key_env, "MY_KEY");
    assert_eq!(
        p.config.enforcers_dir.as_deref(),
        Some(std::path::Path::new("enf"))
    );
    assert_eq!(p.config.limits.timeout_ms, 25);
    assert_eq!(p.config.limits.memory_mib, 32);
    assert_eq!(p.config.redaction, RedactMode::Remove);
}

#[test]
fn compact_rules_compile_with_file_line_ids() {
    let p = load(
        "policies:\n  - \"bf:admin_tool:tool_access:deny\"\n  - \"af:get_user_profile:field_access:deny:user_pii.ssn:items[*].email\"\n  - \"bf:export:allow_attempts:allow:3\"\n  - \"bf:read_*:tool_access:elicit:time<20301231T235959Z\"\n",
    )
    .unwrap();
    let ids: Vec<&str> = p.rules.iter().map(|r| &*r.id).collect();
    assert_eq!(
        ids,
        ["test.yaml:2", "test.yaml:3", "test.yaml:4", "test.yaml:5"]
    );
    assert!(matches!(p.rules[0].kind, PolicyKind::ToolAccess));
    assert_eq!(p.rules[0].action, Effect::Deny);
    match &p.rules[1].kind {
        PolicyKind::FieldAccess(paths) => {
            let texts: Vec<&str> = paths.iter().map(|p| p.as_str()).collect();
            assert_eq!(texts, ["user_pii.ssn", "items[*].email"]);
        }
        other => panic!("expected field_access, got {other:?}"),
    }
    assert_eq!(p.rules[1].phase, Phase::After);
    assert!(matches!(p.rules[2].kind, PolicyKind::AllowAttempts(3)));
    assert!(matches!(p.rules[3].tools[0], ToolPattern::Glob(_)));
    assert_eq!(p.rules[3].expires_unix_ms, Some(1_924_991_999_000));
}

#[test]
fn structured_rules_compile_with_defaults() {
    let p = load(
        "policies:\n  - name: a\n    tools: [x, \"y_*\"]\n    action: allow\n  - tools: [z]\n    policy: field_access\n    action: deny\n    params: [secret]\n  - name: c\n    tools: [w]\n    policy: allow_attempts\n    action: allow\n    params: [5]\n    priority: 7\n    subjects: { users: [ann], roles: [r], agents: [claude] }\n    expires: 2030-01-01T00:00:00Z\n",
    )
    .unwrap();
    assert_eq!(&*p.rules[0].id, "a");
    assert_eq!(p.rules[0].phase, Phase::Before);
    assert_eq!(p.rules[0].tools.len(), 2);
    assert_eq!(
        &*p.rules[1].id, "test.yaml:5",
        "unnamed rules get file:line ids"
    );
    assert_eq!(
        p.rules[1].phase,
        Phase::After,
        "field_access defaults to the after phase"
    );
    assert!(matches!(p.rules[2].kind, PolicyKind::AllowAttempts(5)));
    assert_eq!(p.rules[2].priority, 7);
    assert_eq!(p.rules[2].subjects.users, ["ann"]);
    assert_eq!(p.rules[2].subjects.agents, ["claude"]);
    assert_eq!(p.rules[2].expires_unix_ms, Some(1_893_456_000_000));
}

#[test]
fn error_names_file_line_column_and_quotes_the_entry() {
    let err = one_error(
        "config:\n  default_effect: deny\npolicies:\n  - \"bf:admin_tool:tool_access:alow\"\n",
    );
    assert!(
        err.starts_with("test.yaml:4:5: unknown action \"alow\": expected allow, deny or elicit"),
        "{err}"
    );
    assert!(
        err.contains("| \n") || err.contains("|   - \"bf:admin_tool:tool_access:alow\""),
        "{err}"
    );
}

/// Found by fuzzing: YAML ends a line at a lone `\r` (old Mac line endings), so the parser's
/// line numbers count it; the quoted entry must be that same line, not a line counted by
/// `\n` only (which quoted the wrong line, or none).
#[test]
fn lone_carriage_returns_end_lines_for_numbers_and_quotes_alike() {
    // A compile error (unknown action) and a YAML syntax error (unclosed flow sequence).
    for text in [
        "config:\r  default_effect: deny\rpolicies:\r  - \"bf:admin_tool:tool_access:alow\"\r",
        "policies:\r\n  - \"bf:a:tool_access:allow\"\r  - [\"bf:b:tool_access:deny\"\r\r",
    ] {
        let errs = load(text).unwrap_err();
        let yaml_lines: Vec<&str> = text.split("\r\n").flat_map(|l| l.split('\r')).collect();
        for e in &errs.0 {
            assert!(e.line >= 1, "{e}");
            let want = yaml_lines[usize::try_from(e.line).unwrap() - 1];
            assert_eq!(e.entry.as_deref(), Some(want), "{text:?}: {e}");
        }
    }
    let errs = load("config:\r  default_effect: deny\rpolicies:\r  - \"bf:t:tool_access:alow\"\r")
        .unwrap_err();
    assert_eq!(errs.0[0].line, 4, "{errs}");
    assert_eq!(
        errs.0[0].entry.as_deref(),
        Some("  - \"bf:t:tool_access:alow\"")
    );
}

#[test]
fn every_compact_error_is_reported_at_its_entry() {
    let cases: &[(&str, &str)] = &[
        (
            "bf:admin_tool:tool_access",
            "expected PHASE:TOOL:POLICY:ACTION",
        ),
        (
            "before:t:tool_access:deny",
            "unknown phase \"before\": expected bf",
        ),
        ("bf::tool_access:deny", "empty tool name"),
        ("bf:t::deny", "empty policy name"),
        ("bf:t:tool_access:alow", "unknown action \"alow\""),
        (
            "bf:t:tool_acess:deny",
            "unknown policy \"tool_acess\" (did you mean \"tool_access\"?)",
        ),
        (
            "bf:t:frobnicate:deny",
            "unknown policy \"frobnicate\": expected one of tool_access",
        ),
        ("bf:[abc:tool_access:deny", "bad tool glob \"[abc\""),
        (
            "bf:t:tool_access:deny:time<2026-01-01",
            "bad expiry \"time<2026-01-01\"",
        ),
        (
            "bf:t:tool_access:deny:time<20261231T235959Z:x",
            "must be the last part",
        ),
        (
            "bf:t:tool_access:deny:extra",
            "tool_access takes no parameters",
        ),
        (
            "af:t:tool_access:deny",
            "tool_access runs in the before phase (bf), not after",
        ),
        (
            "bf:t:field_access:deny:a",
            "field_access runs in the after phase (af), not before",
        ),
        (
            "af:t:field_access:deny",
            "field_access needs at least one field path",
        ),
        (
            "af:t:field_access:deny:items[x]",
            "invalid field path \"items[x]\"",
        ),
        ("af:t:field_access:deny:a..b", "invalid field path \"a..b\""),
        (
            "bf:t:allow_attempts:deny:3",
            "allow_attempts only takes the action allow",
        ),
        ("bf:t:allow_attempts:allow", "needs exactly one parameter"),
        (
            "bf:t:allow_attempts:allow:0",
            "count \"0\" is not a positive integer",
        ),
        (
            "bf:t:allow_attempts:allow:three",
            "count \"three\" is not a positive integer",
        ),
        (
            "af:t:allow_attempts:allow:3",
            "allow_attempts runs in the before phase",
        ),
    ];
    for (caveat, want) in cases {
        let err = one_error(&format!("policies:\n  - \"{caveat}\"\n"));
        assert!(err.starts_with("test.yaml:2:5: "), "{caveat}: {err}");
        assert!(err.contains(want), "{caveat}: got {err:?}, want {want:?}");
    }
}

#[test]
fn every_structured_error_is_reported() {
    let rule = |body: &str| format!("policies:\n  - name: r\n{body}");
    let cases: &[(&str, &str)] = &[
        (
            "    tools: [t]\n    action: alow\n",
            "unknown action \"alow\": expected allow, deny or elicit",
        ),
        (
            "    tools: [t]\n    phase: during\n    action: allow\n",
            "unknown phase \"during\": expected before or after",
        ),
        ("    tools: []\n    action: allow\n", "tools is empty"),
        ("    tools: [\"a[\"]\n    action: allow\n", "bad tool glob"),
        (
            "    tools: [t]\n    action: allow\n    policy: field_acess\n",
            "did you mean \"field_access\"",
        ),
        (
            "    tools: [t]\n    action: allow\n    subjects: {}\n",
            "subjects is empty",
        ),
        (
            "    tools: [t]\n    action: allow\n    expires: tomorrow\n",
            "bad expires \"tomorrow\": expected an RFC 3339 time",
        ),
        (
            "    tools: [t]\n    action: allow\n    when: [{field: args.n, op: gt, value: ten}]\n",
            "when[0]: operator gt needs a number, found string \"ten\"",
        ),
        (
            "    tools: [t]\n    action: allow\n    when: [{field: args.n, op: lte, value: [1]}]\n",
            "operator lte needs a number, found a list",
        ),
        (
            "    tools: [t]\n    action: allow\n    when: [{field: args.s, op: regex, value: \"(\"}]\n",
            "invalid regex \"(\"",
        ),
        (
            "    tools: [t]\n    action: allow\n    when: [{field: args.s, op: matches, value: x}]\n",
            "unknown operator \"matches\"",
        ),
        (
            "    tools: [t]\n    action: allow\n    when: [{field: args.s, op: equal, value: x}]\n",
            "did you mean \"equals\"?",
        ),
        (
            "    tools: [t]\n    action: allow\n    when: [{field: body.s, op: equals, value: x}]\n",
            "unknown condition field \"body.s\"",
        ),
        (
            "    tools: [t]\n    action: allow\n    when: [{field: user.email, op: equals, value: x}]\n",
            "unknown condition field \"user.email\"",
        ),
        (
            "    tools: [t]\n    action: allow\n    when: [{field: args.s, op: in, value: x}]\n",
            "operator in needs a list",
        ),
        (
            "    tools: [t]\n    action: allow\n    when: [{field: args.s, op: starts_with, value: 3}]\n",
            "operator starts_with needs a string",
        ),
        (
            "    tools: [t]\n    action: allow\n    when: [{field: args.s, op: equals}]\n",
            "operator equals needs a value",
        ),
        (
            "    tools: [t]\n    action: allow\n    when: [{field: args.s, op: exists, value: maybe}]\n",
            "operator exists needs true or false",
        ),
    ];
    for (body, want) in cases {
        let errs = errors(&rule(body));
        assert!(
            errs.iter()
                .any(|e| e.starts_with("test.yaml:2:5: ") && e.contains(want)),
            "{body}: got {errs:#?}, want {want:?}"
        );
    }
}

#[test]
fn all_errors_in_a_file_are_reported_not_just_the_first() {
    let errs = errors(
        "policies:\n  - \"bf:a:tool_access:alow\"\n  - \"bf:b:tool_access:deny\"\n  - \"bf:c:nope:deny\"\n  - name: d\n    tools: [d]\n    action: allow\n    when: [{field: args.x, op: gt, value: x}, {field: args.y, op: regex, value: \"[\"}]\n",
    );
    assert_eq!(errs.len(), 4, "{errs:#?}");
    assert!(errs[0].starts_with("test.yaml:2:"));
    assert!(errs[1].starts_with("test.yaml:4:"));
    assert!(errs[2].starts_with("test.yaml:5:") && errs[2].contains("when[0]"));
    assert!(errs[3].starts_with("test.yaml:5:") && errs[3].contains("when[1]"));
}

#[test]
fn duplicate_rule_names_are_rejected() {
    let err = one_error(
        "policies:\n  - {name: a, tools: [x], action: allow}\n  - {name: a, tools: [y], action: deny}\n",
    );
    assert!(
        err.starts_with("test.yaml:3:5: duplicate rule name \"a\""),
        "{err}"
    );
}

#[test]
fn config_errors() {
    let cases: &[(&str, &str)] = &[
        (
            "config:\n  default_effect: elicit\n",
            "test.yaml:2:19: unknown default_effect \"elicit\": expected allow or deny",
        ),
        (
            "config:\n  redaction: blank\n",
            "unknown redaction \"blank\": expected replace",
        ),
        (
            "config:\n  elicit_expiry: 0\n",
            "elicit_expiry must be at least 1 second",
        ),
        (
            "config:\n  limits: {timeout_ms: 0}\n",
            "limits.timeout_ms 0 is out of range",
        ),
        (
            "config:\n  limits: {memory_mib: 100000}\n",
            "limits.memory_mib 100000 is out of range",
        ),
        (
            "config:\n  secret_key: hunter2\n",
            "config.secret_key is not accepted",
        ),
        ("config:\n  elicit_expiry: soon\n", "test.yaml:2:"),
        (
            "config:\n  default_efect: deny\n",
            "unknown field `default_efect`",
        ),
        ("config:\n  limits: {cpu: 3}\n", "unknown field `cpu`"),
        (
            "polices: []\n",
            "unknown field `polices`, expected one of config, policies",
        ),
        (
            "policies:\n  - name: r\n    tools: [t]\n    actoin: allow\n",
            "test.yaml:4:5: unknown field `actoin`",
        ),
        ("policies:\n  - 42\n", "expected a compact policy string"),
        (
            "policies:\n  - [a, b]\n",
            "expected a compact policy string",
        ),
        (
            "policies:\n  - {name: r, tools: [t]}\n",
            "missing field `action`",
        ),
    ];
    for (text, want) in cases {
        let errs = errors(text);
        assert!(
            errs.iter().any(|e| e.contains(want)),
            "{text}: got {errs:#?}, want {want:?}"
        );
    }
}

#[test]
fn duplicate_keys_are_rejected() {
    let err = one_error("config:\n  default_effect: allow\n  default_effect: deny\n");
    assert!(err.starts_with("test.yaml:3:"), "{err}");
    assert!(err.contains("duplicate mapping key"), "{err}");
}

/// Anchors that expand exponentially (the "billion laughs") inside a field that accepts any
/// value, so the parser would have to expand them: rejected by the alias budget, fast.
#[test]
fn billion_laughs_is_rejected_fast() {
    let mut doc = String::from(
        "policies:\n  - name: r\n    tools: [t]\n    action: allow\n    when:\n      - field: args.x\n        op: equals\n        value:\n          x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        doc.push_str(&format!("          x{i}: &a{i} [{refs}]\n"));
    }
    let start = Instant::now();
    let errs = errors(&doc);
    let took = start.elapsed();
    assert!(took < Duration::from_millis(50), "took {took:?}");
    assert!(
        errs.iter().any(|e| e.contains("budget breached")),
        "{errs:#?}"
    );
}

#[test]
fn deep_nesting_is_rejected_fast() {
    let doc = format!("policies: {}{}\n", "[".repeat(10_000), "]".repeat(10_000));
    let start = Instant::now();
    let errs = errors(&doc);
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(
        errs[0].contains("recursion limit") || errs[0].contains("depth"),
        "{errs:#?}"
    );
    assert!(
        errs[0].len() < 1000,
        "the quoted line is capped: {} bytes",
        errs[0].len()
    );
}

#[test]
fn oversized_policy_is_rejected_before_parsing() {
    let doc = format!("policies: []\n#{}\n", "x".repeat(1024 * 1024));
    let err = one_error(&doc);
    assert!(err.contains("the limit is 1048576 bytes (1 MiB)"), "{err}");
}

#[test]
fn load_file_errors_and_relative_enforcers_dir() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.yaml");
    let err = policy::load_file(&missing).unwrap_err().to_string();
    assert!(err.contains("nope.yaml: cannot read policy file"), "{err}");

    let big = dir.path().join("big.yaml");
    std::fs::write(&big, vec![b'#'; 1024 * 1024 + 1]).unwrap();
    let err = policy::load_file(&big).unwrap_err().to_string();
    assert!(err.contains("1 MiB"), "{err}");

    let bin = dir.path().join("bin.yaml");
    std::fs::write(&bin, [0xff, 0xfe, 0x00]).unwrap();
    let err = policy::load_file(&bin).unwrap_err().to_string();
    assert!(err.contains("not UTF-8"), "{err}");

    let ok = dir.path().join("ok.yaml");
    std::fs::write(&ok, "config:\n  enforcers_dir: enf\n").unwrap();
    let p = policy::load_file(&ok).unwrap();
    assert_eq!(p.config.enforcers_dir, Some(dir.path().join("enf")));
}

#[test]
fn example_policies_load() {
    for name in ["email-compact.yaml", "structured.yaml"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../policies")
            .join(name);
        let p = policy::load_file(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(p.rules.len() >= 5, "{name} has {} rules", p.rules.len());
    }
}
