//! Per-decision cost of the native rules. Run: `cargo bench -p portcullis --bench decisions`.
//!
//! The request and result are built outside the timed section; redaction benches clone the
//! input per iteration in criterion's setup, which is not timed.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use portcullis::{Content, Engine, Request, Subject, ToolResult};
use serde_json::{Value, json};

/// `n` rules in the seed's compact style: exact tool names, plus a few globs as real policies
/// have (an admin deny, a read elicit), so both index paths are exercised.
fn compact_policy(n: usize) -> String {
    let mut s = String::from("config:\n  default_effect: deny\npolicies:\n");
    s += "  - \"bf:admin_*:tool_access:deny\"\n  - \"bf:delete_*:tool_access:elicit\"\n";
    for i in 0..n.saturating_sub(2) {
        let action = if i % 3 == 0 { "deny" } else { "allow" };
        s += &format!("  - \"bf:tool_{i}:tool_access:{action}\"\n");
    }
    s
}

/// `n` structured rules with roles and a numeric condition, the mcp-auth-guard style.
fn structured_policy(n: usize) -> String {
    let mut s = String::from("config:\n  default_effect: deny\npolicies:\n");
    for i in 0..n {
        s += &format!(
            "  - {{name: r{i}, tools: [tool_{i}], subjects: {{roles: [analyst, admin]}}, when: [{{field: args.limit, op: lte, value: 1000}}], action: allow}}\n"
        );
    }
    s
}

fn bench_tool_access(c: &mut Criterion) {
    let mut g = c.benchmark_group("tool_access");
    for n in [10usize, 1000] {
        let engine = Engine::from_str(&compact_policy(n), "bench.yaml").unwrap();
        let tool = format!("tool_{}", n / 2 + 2); // i % 3 != 0: an allow rule
        let req = Request::new(Subject::user("ann"), tool, json!({"limit": 10}));
        assert_eq!(engine.before(&req).effect, portcullis::Effect::Allow);
        g.bench_function(format!("compact_{n}_rules_allow"), |b| {
            b.iter(|| black_box(engine.before(black_box(&req))))
        });
        let unknown = Request::new(Subject::user("ann"), "not_in_policy", json!({}));
        g.bench_function(format!("compact_{n}_rules_default_deny"), |b| {
            b.iter(|| black_box(engine.before(black_box(&unknown))))
        });

        let engine = Engine::from_str(&structured_policy(n), "bench.yaml").unwrap();
        let req = Request::new(
            Subject::user("ann").with_role("analyst"),
            format!("tool_{}", n / 2),
            json!({"limit": 10}),
        );
        assert_eq!(engine.before(&req).effect, portcullis::Effect::Allow);
        g.bench_function(format!("structured_{n}_rules_role_condition"), |b| {
            b.iter(|| black_box(engine.before(black_box(&req))))
        });
    }
    g.finish();
}

/// A user-profile-like record of about `bytes` bytes: nested PII plus a list of items.
fn result_of_size(bytes: usize) -> Value {
    let item = |i: usize| json!({"id": i, "email": format!("user{i}@example.com"), "note": "lorem ipsum dolor"});
    let mut doc = json!({
        "user": {"name": "Ann Example", "pii": {"ssn": "123-45-6789", "dob": "1980-01-01"}},
        "items": [],
    });
    let per_item = item(1000).to_string().len() + 1;
    let n = bytes.saturating_sub(doc.to_string().len()) / per_item + 1;
    doc["items"] = (0..n).map(item).collect();
    doc
}

fn bench_field_access(c: &mut Criterion) {
    let policy = "policies:\n  - \"af:get_profile:field_access:deny:user.pii.ssn:items[*].email:/user/pii/dob\"\n";
    let engine = Engine::from_str(policy, "bench.yaml").unwrap();
    let req = Request::new(Subject::user("ann"), "get_profile", json!({}));
    let mut g = c.benchmark_group("field_access");
    for (label, size) in [("1KB", 1024usize), ("100KB", 100 * 1024)] {
        let doc = result_of_size(size);
        let actual = doc.to_string().len();
        assert!(
            actual * 10 >= size * 9 && actual * 10 <= size * 11,
            "{label}: {actual} bytes"
        );
        let structured = ToolResult {
            content: Vec::new(),
            structured: Some(doc.clone()),
            is_error: false,
        };
        let (d, _) = engine.after(&req, structured.clone());
        assert_eq!(d.redactions.len(), 3);
        g.bench_function(format!("redact_3_paths_{label}_structured"), |b| {
            b.iter_batched(
                || structured.clone(),
                |r| black_box(engine.after(black_box(&req), r)),
                BatchSize::SmallInput,
            )
        });
        // The same result as JSON text too (what FastMCP and most servers send): the text
        // item is parsed, redacted and re-serialized so both views agree.
        let both = ToolResult {
            content: vec![Content::Text(doc.to_string())],
            structured: Some(doc),
            is_error: false,
        };
        g.bench_function(format!("redact_3_paths_{label}_structured_and_text"), |b| {
            b.iter_batched(
                || both.clone(),
                |r| black_box(engine.after(black_box(&req), r)),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench_tool_access, bench_field_access);
criterion_main!(benches);
