//! Portcullis on the spec's rule sets: native rules (the seed's compact lines, and structured
//! role + tool rules), one Rust WebAssembly enforcer, a capability token verified and applied,
//! and field redaction. Every measured call is checked first: its effect and the rule that
//! decided it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use portcullis::token::{self, Keyring, MintSpec, RootKey, UncheckedEnforcers, VerifyOptions};
use portcullis::{Content, Decision, Effect, Engine, Request, Subject, ToolResult};
use serde_json::{Value, json};

use crate::harness::{Row, median_us, median_us_with_setup};
use crate::spec::{Case, Redaction, RuleSet};

const COMPACT_SOURCE: &str = "peers-compact.yaml";
const ROOT_KEY: &[u8] = b"peer-bench-root-key-0123456789abcdef";

fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quoted(s)).collect();
    format!("[{}]", quoted.join(", "))
}

/// The seed's lines verbatim, with the seed's default (an unmatched tool is allowed).
pub fn compact_policy(lines: &[String], default_effect: &str) -> String {
    let mut p = format!("config:\n  default_effect: {default_effect}\npolicies:\n");
    for line in lines {
        p += &format!("  - {}\n", quoted(line));
    }
    p
}

/// Line of the `i`th rule of `compact_policy` (the compact rule id is `file:line`).
fn compact_line(i: usize) -> usize {
    4 + i
}

/// The rule set as structured rules: one per spec rule, named as in the spec.
pub fn structured_policy(set: &RuleSet, config_extra: &str, extra_rules: &str) -> String {
    let mut p = format!(
        "config:\n  default_effect: {}\n{config_extra}policies:\n",
        set.default_effect
    );
    for r in &set.rules {
        let subjects = if r.roles.is_empty() {
            String::new()
        } else {
            format!(", subjects: {{roles: {}}}", list(&r.roles))
        };
        p += &format!(
            "  - {{name: {}, tools: [{}]{subjects}, action: {}}}\n",
            quoted(&r.name),
            quoted(&r.tool),
            r.effect
        );
    }
    p + extra_rules
}

fn effect(name: &str) -> Effect {
    match name {
        "allow" => Effect::Allow,
        "deny" => Effect::Deny,
        other => panic!("unexpected effect {other}"),
    }
}

fn subject(case: &Case) -> Subject {
    case.roles
        .iter()
        .fold(Subject::user(&case.user), |s, r| s.with_role(r))
}

fn request(case: &Case) -> Request {
    Request::new(subject(case), &case.tool, json!({}))
}

/// The decision's effect and deciding rule are the expected ones.
fn check(d: &Decision, expect: &str, rule: Option<&str>, what: &str) {
    assert_eq!(d.effect, effect(expect), "{what}: {d:?}");
    match rule {
        Some(id) => assert_eq!(d.matched.first().map(|m| &*m.id), Some(id), "{what}: {d:?}"),
        None => assert!(d.by_default, "{what}: expected a default decision: {d:?}"),
    }
}

pub fn native(set: &RuleSet, rows: &mut Vec<Row>) {
    // The seed's compact lines: allow and deny (the seed has no roles, no default deny).
    let engine = Engine::from_str(
        &compact_policy(&set.compact, &set.compact_default_effect),
        COMPACT_SOURCE,
    )
    .expect("compact rule set loads");
    for case in set
        .cases
        .iter()
        .filter(|c| set.compact_cases.contains(&c.case))
    {
        let req = request(case);
        let index = set
            .rules
            .iter()
            .position(|r| Some(&r.name) == case.rule.as_ref())
            .expect("compact cases are decided by a rule");
        let id = format!("{COMPACT_SOURCE}:{}", compact_line(index));
        check(&engine.before(&req), &case.expect, Some(&id), "compact");
        let m = median_us(|| {
            std::hint::black_box(engine.before(std::hint::black_box(&req)));
        });
        rows.push(Row::new(
            "Portcullis native",
            "compact (seed's lines)",
            &case.case,
            set.n,
            m,
        ));
    }

    // Structured role + tool rules: every case.
    let engine = Engine::from_str(&structured_policy(set, "", ""), "peers.yaml")
        .expect("structured rule set loads");
    for case in &set.cases {
        let req = request(case);
        check(
            &engine.before(&req),
            &case.expect,
            case.rule.as_deref(),
            "structured",
        );
        let m = median_us(|| {
            std::hint::black_box(engine.before(std::hint::black_box(&req)));
        });
        rows.push(Row::new(
            "Portcullis native",
            "role + tool",
            &case.case,
            set.n,
            m,
        ));
    }
}

/// The structured rule set plus one rule for the Rust `business_hours` WebAssembly enforcer on
/// the last tool: a fresh sandboxed instance per call.
pub fn wasm(set: &RuleSet, workdir: &Path, enforcers: &Path, rows: &mut Vec<Row>) {
    let h = &set.hours;
    let extra = format!(
        "  - {{name: hours, tools: [{}], policy: business_hours, action: allow, params: {}}}\n",
        quoted(&h.tool),
        list(&h.params)
    );
    let config = format!(
        "  enforcers_dir: {}\n",
        quoted(&enforcers.display().to_string())
    );
    let path = workdir.join(format!("peers-wasm-{}.yaml", set.n));
    std::fs::write(&path, structured_policy(set, &config, &extra)).unwrap();
    let runtime = portcullis::wasm::Runtime::new(Some(workdir.join("wasm-cache"))).unwrap();
    let engine = Engine::new(
        portcullis::engine::load_snapshot(&path, Some(&runtime)).expect("enforcer policy loads"),
    );
    let case = &set.cases[0];
    assert_eq!(case.case, "allow");
    assert_eq!(case.tool, h.tool);
    let inside = request(case).at(h.inside_ms);
    let d = engine.before(&inside);
    assert_eq!(d.effect, Effect::Allow, "{d:?}");
    let ids: Vec<&str> = d.matched.iter().map(|m| &*m.id).collect();
    assert!(
        ids.contains(&"hours") && ids.contains(&case.rule.as_deref().unwrap()),
        "{d:?}"
    );
    let outside = request(case).at(h.outside_ms);
    assert_eq!(engine.before(&outside).effect, Effect::Deny);
    let m = median_us(|| {
        std::hint::black_box(engine.before(std::hint::black_box(&inside)));
    });
    rows.push(Row::new(
        "Portcullis + WASM enforcer",
        "role + tool + Rust business_hours",
        "allow",
        set.n,
        m,
    ));
}

/// A capability token (user ann, role analyst, expiry, a tool glob: 4 caveats) verified and
/// applied on every call, over the structured rule set: cached (the host has seen the token
/// before, what the MCP layer does per call) and uncached (the whole HMAC chain).
pub fn token(set: &RuleSet, rows: &mut Vec<Row>) {
    let engine = Engine::from_str(&structured_policy(set, "", ""), "peers.yaml").unwrap();
    let keys = Keyring::new(RootKey::from_secret("k1", ROOT_KEY).unwrap(), vec![]).unwrap();
    let case = &set.cases[0];
    let now = set.hours.inside_ms;
    let spec = MintSpec {
        user: case.user.clone(),
        roles: case.roles.clone(),
        ttl: Some(Duration::from_secs(3600)),
        caveats: vec!["tool = tool_*".into()],
    };
    let text = token::encode(
        &token::mint(&keys, &spec, now, &UncheckedEnforcers).unwrap(),
        false,
    )
    .unwrap();
    let opts = VerifyOptions {
        now_unix_ms: now,
        user: None,
    };
    let verified: Arc<_> = engine
        .verify_token_shared(&keys, &text, &[], &opts)
        .unwrap();
    assert_eq!(verified.macaroon().caveats().len(), 4);
    let req = verified.request(&case.tool, json!({})).at(now);
    check(
        &engine.before_with(&req, Some(&verified)),
        &case.expect,
        case.rule.as_deref(),
        "token",
    );
    let admin = verified.request("admin_tool", json!({})).at(now);
    assert_eq!(
        engine.before_with(&admin, Some(&verified)).effect,
        Effect::Deny
    );

    let m = median_us(|| {
        let v = engine
            .verify_token_shared(&keys, std::hint::black_box(&text), &[], &opts)
            .unwrap();
        std::hint::black_box(engine.before_with(std::hint::black_box(&req), Some(&v)));
    });
    rows.push(Row::new(
        "Portcullis token verify + evaluate",
        "role + tool, 4-caveat token, cached",
        "allow",
        set.n,
        m,
    ));
    let snapshot = engine.snapshot();
    let caveats = token::CaveatCache::default();
    let m = median_us(|| {
        let v = token::verify(
            &keys,
            std::hint::black_box(&text),
            &[],
            &opts,
            &caveats,
            snapshot.enforcers(),
        )
        .unwrap();
        std::hint::black_box(engine.before_with(std::hint::black_box(&req), Some(&v)));
    });
    rows.push(Row::new(
        "Portcullis token verify + evaluate",
        "role + tool, 4-caveat token, uncached",
        "allow",
        set.n,
        m,
    ));
}

/// The seed's redaction, as the seed does it: three top-level fields of the JSON text item.
pub fn redaction(red: &Redaction, rows: &mut Vec<Row>) {
    let engine = Engine::from_str(&compact_policy(&red.compact, "deny"), "peers-redact.yaml")
        .expect("redaction policy loads");
    let req = Request::new(Subject::user("ann"), &red.tool, json!({}));
    assert_eq!(engine.before(&req).effect, Effect::Allow);
    for (label, text) in &red.documents {
        let input = ToolResult {
            content: vec![Content::Text(text.clone())],
            structured: None,
            is_error: false,
        };
        let (d, out) = engine.after(&req, input.clone());
        assert_eq!(d.redactions.len(), red.fields.len(), "{d:?}");
        let Content::Text(redacted) = &out.content[0] else {
            panic!("text item expected")
        };
        let doc: Value = serde_json::from_str(redacted).unwrap();
        let original: Value = serde_json::from_str(text).unwrap();
        for field in &red.fields {
            assert_eq!(doc[field], "[REDACTED]", "{label}: {field}");
        }
        assert_eq!(doc["items"], original["items"]);
        let m = median_us_with_setup(
            || input.clone(),
            |r| engine.after(std::hint::black_box(&req), r),
        );
        rows.push(Row::new(
            "Portcullis native",
            "JSON text item",
            &format!("redact 3 fields, {label}"),
            None,
            m,
        ));
    }
}
