//! Every `when:` operator, on every kind of field, including type errors.

use portcullis::condition::{Condition, Truth};
use portcullis::{Request, Subject};
use serde_json::{Value, json};

fn request() -> Request {
    let mut subject = Subject::user("ann")
        .with_role("analyst")
        .with_role("oncall");
    subject.agent = Some("claude".into());
    subject
        .attributes
        .insert("department".into(), "support".into());
    subject.attributes.insert("level".into(), "7".into());
    Request::new(
        subject,
        "get_report",
        json!({
            "limit": 500,
            "limit_text": "10",
            "ratio": 0.5,
            "name": "Quarterly Report",
            "tags": ["finance", "q3"],
            "nested": {"deep": {"value": true}},
            "items": [{"id": 1}, {"id": 2}],
            "nothing": null,
            "obj": {"k": 1}
        }),
    )
}

fn eval(field: &str, op: &str, value: Option<Value>) -> Truth {
    Condition::compile(field, op, value.as_ref())
        .unwrap_or_else(|e| panic!("{field} {op}: {e}"))
        .eval(&request())
}

use Truth::{False as F, True as T, Unknown as U};

#[test]
fn operator_table() {
    let cases: Vec<(&str, &str, Option<Value>, Truth)> = vec![
        // equals / not_equals, numbers compare by value
        ("args.limit", "equals", Some(json!(500)), T),
        ("args.limit", "equals", Some(json!(500.0)), T),
        ("args.limit", "equals", Some(json!("500")), F),
        ("args.name", "equals", Some(json!("Quarterly Report")), T),
        ("args.name", "not_equals", Some(json!("Other")), T),
        (
            "args.name",
            "not_equals",
            Some(json!("Quarterly Report")),
            F,
        ),
        ("args.tags", "equals", Some(json!(["finance", "q3"])), T),
        (
            "args.nested",
            "equals",
            Some(json!({"deep": {"value": true}})),
            T,
        ),
        ("args.nothing", "equals", Some(Value::Null), T),
        // in / not_in
        ("args.name", "in", Some(json!(["a", "Quarterly Report"])), T),
        ("args.limit", "in", Some(json!([100, 500])), T),
        ("args.limit", "not_in", Some(json!([100, 200])), T),
        ("args.limit", "not_in", Some(json!([500])), F),
        // contains: substring, list membership, object key
        ("args.name", "contains", Some(json!("Report")), T),
        ("args.name", "contains", Some(json!("report")), F),
        ("args.tags", "contains", Some(json!("q3")), T),
        ("args.tags", "contains", Some(json!("q4")), F),
        ("args.obj", "contains", Some(json!("k")), T),
        ("args.limit", "contains", Some(json!("5")), U),
        // starts_with / ends_with
        ("args.name", "starts_with", Some(json!("Quarterly")), T),
        ("args.name", "ends_with", Some(json!("Report")), T),
        ("args.name", "ends_with", Some(json!("Quarterly")), F),
        ("args.limit", "starts_with", Some(json!("5")), U),
        // regex matches the whole value
        ("args.name", "regex", Some(json!("Quarterly.*")), T),
        ("args.name", "regex", Some(json!("Quarterly")), F),
        ("args.name", "regex", Some(json!("(?i)quarterly report")), T),
        ("args.tags", "regex", Some(json!(".*")), U),
        // numeric comparisons; numeric strings count as numbers
        ("args.limit", "gt", Some(json!(100)), T),
        ("args.limit", "gt", Some(json!(500)), F),
        ("args.limit", "gte", Some(json!(500)), T),
        ("args.limit", "lt", Some(json!(1000)), T),
        ("args.limit", "lte", Some(json!(499)), F),
        ("args.ratio", "lt", Some(json!(1)), T),
        ("args.limit_text", "gt", Some(json!(5)), T),
        ("args.name", "gt", Some(json!(5)), U),
        ("args.tags", "lt", Some(json!(5)), U),
        // exists
        ("args.limit", "exists", None, T),
        ("args.nested.deep.value", "exists", Some(json!(true)), T),
        ("args.missing", "exists", None, F),
        ("args.missing", "exists", Some(json!(false)), T),
        // array index in dotted args paths
        ("args.items.1.id", "equals", Some(json!(2)), T),
        ("args.items.5.id", "exists", None, F),
        // missing fields: nothing equals them, they are in no list
        ("args.missing", "equals", Some(json!(1)), F),
        ("args.missing", "not_equals", Some(json!(1)), T),
        ("args.missing", "in", Some(json!([1])), F),
        ("args.missing", "not_in", Some(json!([1])), T),
        ("args.missing", "gt", Some(json!(1)), F),
        ("args.missing", "regex", Some(json!(".*")), F),
        // user fields
        ("user.id", "equals", Some(json!("ann")), T),
        ("user.name", "starts_with", Some(json!("an")), T),
        ("user.roles", "contains", Some(json!("oncall")), T),
        ("user.roles", "in", Some(json!(["admin", "analyst"])), T),
        ("user.roles", "not_in", Some(json!(["admin"])), T),
        (
            "user.roles",
            "equals",
            Some(json!(["analyst", "oncall"])),
            T,
        ),
        ("user.roles", "gt", Some(json!(1)), U),
        ("user.agent", "equals", Some(json!("claude")), T),
        (
            "user.attributes.department",
            "equals",
            Some(json!("support")),
            T,
        ),
        ("user.attributes.level", "gte", Some(json!(7)), T),
        ("user.attributes.team", "exists", None, F),
        // tool fields
        ("tool.name", "regex", Some(json!("get_.*")), T),
        ("tool.args.limit", "lt", Some(json!(501)), T),
    ];
    for (field, op, value, want) in cases {
        assert_eq!(
            eval(field, op, value.clone()),
            want,
            "{field} {op} {value:?}"
        );
    }
}

#[test]
fn compile_errors_name_the_problem() {
    let cases: Vec<(&str, &str, Option<Value>, &str)> = vec![
        (
            "args.x",
            "gt",
            Some(json!("ten")),
            "operator gt needs a number, found string \"ten\"",
        ),
        (
            "args.x",
            "gte",
            Some(json!(true)),
            "operator gte needs a number, found boolean true",
        ),
        (
            "args.x",
            "lt",
            Some(Value::Null),
            "operator lt needs a number, found null",
        ),
        (
            "args.x",
            "lte",
            Some(json!({"a": 1})),
            "operator lte needs a number, found a mapping",
        ),
        ("args.x", "in", Some(json!("a")), "operator in needs a list"),
        (
            "args.x",
            "not_in",
            Some(json!(1)),
            "operator not_in needs a list",
        ),
        (
            "args.x",
            "starts_with",
            Some(json!(1)),
            "operator starts_with needs a string",
        ),
        (
            "args.x",
            "ends_with",
            Some(json!([])),
            "operator ends_with needs a string",
        ),
        (
            "args.x",
            "regex",
            Some(json!(1)),
            "operator regex needs a string",
        ),
        (
            "args.x",
            "regex",
            Some(json!("(")),
            "invalid regex \"(\": unclosed group",
        ),
        ("args.x", "equals", None, "operator equals needs a value"),
        (
            "args.x",
            "exists",
            Some(json!("yes")),
            "operator exists needs true or false",
        ),
        (
            "args.x",
            "gteq",
            Some(json!(1)),
            "unknown operator \"gteq\" (did you mean \"gte\"?)",
        ),
        (
            "args.x",
            "between",
            Some(json!(1)),
            "unknown operator \"between\": expected one of",
        ),
        (
            "request.x",
            "equals",
            Some(json!(1)),
            "unknown condition field \"request.x\"",
        ),
        (
            "args..x",
            "equals",
            Some(json!(1)),
            "unknown condition field \"args..x\"",
        ),
        (
            "user.password",
            "equals",
            Some(json!(1)),
            "unknown condition field",
        ),
        (
            "tool.version",
            "equals",
            Some(json!(1)),
            "unknown condition field",
        ),
    ];
    for (field, op, value, want) in cases {
        let err = Condition::compile(field, op, value.as_ref())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(want),
            "{field} {op}: got {err:?}, want {want:?}"
        );
        assert!(!err.contains('\n'), "errors are one line: {err:?}");
    }
}
