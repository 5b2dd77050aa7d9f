//! End to end through the engine: a value at a denied path never appears anywhere in what the
//! caller receives, in either view (structured content or JSON text) or redaction mode.

use portcullis::{Content, Engine, Request, Subject, ToolResult};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const MARKER: &str = "SECRET-4711";

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        "[a-z ]{0,6}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-d]{1,2}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Places the marker where each denied path below selects, on top of random content.
fn plant(mut doc: Map<String, Value>, n_items: usize) -> Value {
    doc.insert("user".into(), json!({"ssn": MARKER, "name": "ann"}));
    let items: Vec<Value> = (0..n_items)
        .map(|i| json!({"id": i, "card": {"number": MARKER}}))
        .collect();
    doc.insert("items".into(), Value::Array(items));
    doc.insert("tokens".into(), json!([MARKER, "public"]));
    doc.insert("keys".into(), json!({"a": MARKER, "b": MARKER}));
    Value::Object(doc)
}

const POLICY: &str = "policies:\n  - \"bf:t:tool_access:allow\"\n  - \"af:t:field_access:deny:user.ssn:items[*].card.number:/tokens/0:keys.*\"\n";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn denied_values_never_reach_the_caller(
        extra in prop::collection::btree_map("[e-h]{1,2}", arb_json(), 0..4),
        n_items in 0usize..4,
        remove in any::<bool>(),
        pretty in any::<bool>(),
    ) {
        let mode = if remove { "remove" } else { "replace" };
        let engine = Engine::from_str(&format!("config:\n  redaction: {mode}\n{POLICY}"), "p.yaml").unwrap();
        let doc = plant(extra.into_iter().collect(), n_items);
        let text = if pretty { serde_json::to_string_pretty(&doc).unwrap() } else { doc.to_string() };
        let result = ToolResult {
            content: vec![Content::Text(text), Content::Text(doc.to_string())],
            structured: Some(doc),
            is_error: false,
        };
        let req = Request::new(Subject::user("u"), "t", json!({}));
        let (_, out) = engine.after(&req, result);
        let shown = out.to_mcp_json().to_string();
        prop_assert!(!shown.contains(MARKER), "leaked: {}", shown);
        let s = out.structured.unwrap();
        prop_assert_eq!(&s["user"]["name"], "ann");
        prop_assert_eq!(s["items"].as_array().map(Vec::len), Some(n_items));
    }
}
