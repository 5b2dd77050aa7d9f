//! `when:` conditions of structured rules: compiled once at load, evaluated per call.
//!
//! Fields are dotted paths into `args.*` (the call's arguments), `user.*` (the subject) and
//! `tool.*`. Unlike mcp-auth-guard, numeric operators compare numbers (a numeric string such as
//! `"10"` counts as 10), a regex must match the whole value, and anything that cannot be
//! evaluated is reported as [`Truth::Unknown`] instead of silently counting as false, so the
//! engine can fail closed.

use std::fmt;

use regex::Regex;
use serde_json::Value;
use thiserror::Error;

use crate::request::Request;

/// Why a condition could not be compiled; the loader adds file, line and entry.
#[derive(Debug, Error, PartialEq)]
pub enum ConditionError {
    #[error(
        "unknown condition field {0:?}: expected args.NAME, user.id, user.roles, user.agent, user.attributes.NAME, tool.name or tool.args.NAME"
    )]
    Field(String),
    #[error("unknown operator {op:?}{hint}: expected one of {}", OPERATORS.join(", "))]
    Operator { op: String, hint: String },
    #[error("operator {op} needs a value")]
    MissingValue { op: &'static str },
    #[error("operator {op} needs {expected}, found {found}")]
    ValueType {
        op: &'static str,
        expected: &'static str,
        found: String,
    },
    #[error("invalid regex {pattern:?}: {message}")]
    Regex { pattern: String, message: String },
}

/// Every operator name, in the order the docs list them.
pub const OPERATORS: &[&str] = &[
    "equals",
    "not_equals",
    "in",
    "not_in",
    "contains",
    "starts_with",
    "ends_with",
    "regex",
    "gt",
    "gte",
    "lt",
    "lte",
    "exists",
];

/// The outcome of testing one condition against one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truth {
    True,
    False,
    /// The field exists but has a type the operator cannot judge (e.g. `gt` on an object).
    Unknown,
}

#[derive(Debug, Clone)]
enum Field {
    Args(Vec<String>),
    UserId,
    UserRoles,
    UserAgent,
    UserAttribute(String),
    ToolName,
}

#[derive(Debug, Clone)]
enum Op {
    Equals(Value),
    NotEquals(Value),
    In(Vec<Value>),
    NotIn(Vec<Value>),
    Contains(Value),
    StartsWith(String),
    EndsWith(String),
    Regex(Regex),
    Cmp(CmpOp, f64),
    Exists(bool),
}

#[derive(Debug, Clone, Copy)]
enum CmpOp {
    Gt,
    Gte,
    Lt,
    Lte,
}

/// A compiled `{field, op, value}` condition.
#[derive(Debug, Clone)]
pub struct Condition {
    field_text: String,
    field: Field,
    op: Op,
}

/// A field's value as resolved from the request, borrowed to avoid copying arguments.
enum Resolved<'a> {
    Json(&'a Value),
    Str(&'a str),
    List(&'a [String]),
    Missing,
}

impl Condition {
    /// Compiles a condition; every type problem in the policy is caught here, not per call.
    pub fn compile(field: &str, op: &str, value: Option<&Value>) -> Result<Self, ConditionError> {
        let field_parsed = parse_field(field)?;
        let op = compile_op(op, value)?;
        Ok(Condition {
            field_text: field.to_string(),
            field: field_parsed,
            op,
        })
    }

    /// The field path as written, for traces.
    pub fn field(&self) -> &str {
        &self.field_text
    }

    /// Tests the condition against a request. A missing field is not equal to anything and
    /// in no list: `not_equals`, `not_in` and `exists: false` hold, every other operator does
    /// not. (So `deny when department not_equals support` also denies a caller with no
    /// department; the seed treated that case as false and let it through.)
    pub fn eval(&self, req: &Request) -> Truth {
        let resolved = self.resolve(req);
        match (&self.op, resolved) {
            (Op::Exists(want), r) => bool_truth(!matches!(r, Resolved::Missing) == *want),
            (Op::NotEquals(_) | Op::NotIn(_), Resolved::Missing) => Truth::True,
            (_, Resolved::Missing) => Truth::False,
            (op, Resolved::Json(v)) => eval_json(op, v),
            (op, Resolved::Str(s)) => eval_str(op, s),
            (op, Resolved::List(items)) => eval_list(op, items),
        }
    }

    fn resolve<'a>(&self, req: &'a Request) -> Resolved<'a> {
        match &self.field {
            Field::Args(path) => {
                let mut cur = &req.arguments;
                for seg in path {
                    let next = match cur {
                        Value::Object(map) => map.get(seg.as_str()),
                        Value::Array(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
                        _ => None,
                    };
                    match next {
                        Some(v) => cur = v,
                        None => return Resolved::Missing,
                    }
                }
                if path.is_empty() && cur.is_null() {
                    return Resolved::Missing;
                }
                Resolved::Json(cur)
            }
            Field::UserId => Resolved::Str(&req.subject.user),
            Field::UserRoles => Resolved::List(&req.subject.roles),
            Field::UserAgent => match &req.subject.agent {
                Some(a) => Resolved::Str(a),
                None => Resolved::Missing,
            },
            Field::UserAttribute(k) => match req.subject.attributes.get(k) {
                Some(v) => Resolved::Str(v),
                None => Resolved::Missing,
            },
            Field::ToolName => Resolved::Str(&req.tool),
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.field_text, op_name(&self.op))
    }
}

fn op_name(op: &Op) -> &'static str {
    match op {
        Op::Equals(_) => "equals",
        Op::NotEquals(_) => "not_equals",
        Op::In(_) => "in",
        Op::NotIn(_) => "not_in",
        Op::Contains(_) => "contains",
        Op::StartsWith(_) => "starts_with",
        Op::EndsWith(_) => "ends_with",
        Op::Regex(_) => "regex",
        Op::Cmp(CmpOp::Gt, _) => "gt",
        Op::Cmp(CmpOp::Gte, _) => "gte",
        Op::Cmp(CmpOp::Lt, _) => "lt",
        Op::Cmp(CmpOp::Lte, _) => "lte",
        Op::Exists(_) => "exists",
    }
}

fn parse_field(field: &str) -> Result<Field, ConditionError> {
    let bad = || ConditionError::Field(field.to_string());
    let mut parts = field.split('.');
    let head = parts.next().unwrap_or_default();
    let rest: Vec<&str> = parts.collect();
    if rest.iter().any(|s| s.is_empty()) {
        return Err(bad());
    }
    let args = |segs: &[&str]| Field::Args(segs.iter().map(|s| s.to_string()).collect());
    match (head, rest.as_slice()) {
        ("args", segs) => Ok(args(segs)),
        ("tool", ["name"]) => Ok(Field::ToolName),
        ("tool", ["args", segs @ ..]) => Ok(args(segs)),
        ("user", ["id" | "name"]) => Ok(Field::UserId),
        ("user", ["roles"]) => Ok(Field::UserRoles),
        ("user", ["agent"]) => Ok(Field::UserAgent),
        ("user", ["attributes", key]) => Ok(Field::UserAttribute(key.to_string())),
        _ => Err(bad()),
    }
}

fn compile_op(op: &str, value: Option<&Value>) -> Result<Op, ConditionError> {
    let name: &'static str = OPERATORS
        .iter()
        .copied()
        .find(|o| *o == op)
        .ok_or_else(|| {
            let hint = crate::policy::did_you_mean(op, OPERATORS.iter().copied())
                .map(|s| format!(" (did you mean {s:?}?)"))
                .unwrap_or_default();
            ConditionError::Operator {
                op: op.to_string(),
                hint,
            }
        })?;
    if name == "exists" {
        return match value {
            None => Ok(Op::Exists(true)),
            Some(Value::Bool(b)) => Ok(Op::Exists(*b)),
            Some(other) => Err(type_err(name, "true or false", other)),
        };
    }
    let value = value.ok_or(ConditionError::MissingValue { op: name })?;
    let string = |v: &Value| match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(type_err(name, "a string", other)),
    };
    let list = |v: &Value| match v {
        Value::Array(items) => Ok(items.clone()),
        other => Err(type_err(name, "a list", other)),
    };
    let number = |v: &Value| match v.as_f64() {
        Some(n) if v.is_number() => Ok(n),
        _ => Err(type_err(name, "a number", v)),
    };
    Ok(match name {
        "equals" => Op::Equals(value.clone()),
        "not_equals" => Op::NotEquals(value.clone()),
        "in" => Op::In(list(value)?),
        "not_in" => Op::NotIn(list(value)?),
        "contains" => Op::Contains(value.clone()),
        "starts_with" => Op::StartsWith(string(value)?),
        "ends_with" => Op::EndsWith(string(value)?),
        "regex" => {
            let pattern = string(value)?;
            // Check the pattern as written first, so errors quote the author's text rather
            // than the anchored wrapper.
            let regex_err = |e: regex::Error| ConditionError::Regex {
                pattern: pattern.clone(),
                message: regex_message(&e),
            };
            Regex::new(&pattern).map_err(regex_err)?;
            Op::Regex(Regex::new(&format!("^(?:{pattern})$")).map_err(regex_err)?)
        }
        "gt" => Op::Cmp(CmpOp::Gt, number(value)?),
        "gte" => Op::Cmp(CmpOp::Gte, number(value)?),
        "lt" => Op::Cmp(CmpOp::Lt, number(value)?),
        _ => Op::Cmp(CmpOp::Lte, number(value)?),
    })
}

/// The regex crate's error as one line: its last line names the problem.
fn regex_message(e: &regex::Error) -> String {
    let text = e.to_string();
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(&text);
    last.trim().trim_start_matches("error: ").to_string()
}

fn type_err(op: &'static str, expected: &'static str, found: &Value) -> ConditionError {
    ConditionError::ValueType {
        op,
        expected,
        found: describe(found),
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

fn bool_truth(b: bool) -> Truth {
    if b { Truth::True } else { Truth::False }
}

fn not(t: Truth) -> Truth {
    match t {
        Truth::True => Truth::False,
        Truth::False => Truth::True,
        Truth::Unknown => Truth::Unknown,
    }
}

/// JSON equality where numbers compare by value (`1 == 1.0`), as a policy author expects.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => parse_number(s),
        _ => None,
    }
}

fn parse_number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

fn compare(op: CmpOp, x: f64, y: f64) -> bool {
    match op {
        CmpOp::Gt => x > y,
        CmpOp::Gte => x >= y,
        CmpOp::Lt => x < y,
        CmpOp::Lte => x <= y,
    }
}

fn eval_json(op: &Op, v: &Value) -> Truth {
    match op {
        Op::Equals(want) => bool_truth(json_eq(v, want)),
        Op::NotEquals(want) => bool_truth(!json_eq(v, want)),
        Op::In(items) => bool_truth(items.iter().any(|i| json_eq(v, i))),
        Op::NotIn(items) => bool_truth(!items.iter().any(|i| json_eq(v, i))),
        Op::Contains(needle) => match (v, needle) {
            (Value::String(s), Value::String(n)) => bool_truth(s.contains(n.as_str())),
            (Value::Array(items), n) => bool_truth(items.iter().any(|i| json_eq(i, n))),
            (Value::Object(map), Value::String(k)) => bool_truth(map.contains_key(k)),
            _ => Truth::Unknown,
        },
        Op::StartsWith(_) | Op::EndsWith(_) | Op::Regex(_) => match v {
            Value::String(s) => eval_str(op, s),
            _ => Truth::Unknown,
        },
        Op::Cmp(c, n) => match as_number(v) {
            Some(x) => bool_truth(compare(*c, x, *n)),
            None => Truth::Unknown,
        },
        Op::Exists(_) => Truth::True,
    }
}

fn eval_str(op: &Op, s: &str) -> Truth {
    let str_eq = |v: &Value| v.as_str() == Some(s);
    match op {
        Op::Equals(want) => bool_truth(str_eq(want)),
        Op::NotEquals(want) => bool_truth(!str_eq(want)),
        Op::In(items) => bool_truth(items.iter().any(str_eq)),
        Op::NotIn(items) => bool_truth(!items.iter().any(str_eq)),
        Op::Contains(Value::String(n)) => bool_truth(s.contains(n.as_str())),
        Op::Contains(_) => Truth::Unknown,
        Op::StartsWith(p) => bool_truth(s.starts_with(p.as_str())),
        Op::EndsWith(p) => bool_truth(s.ends_with(p.as_str())),
        Op::Regex(re) => bool_truth(re.is_match(s)),
        Op::Cmp(c, n) => match parse_number(s) {
            Some(x) => bool_truth(compare(*c, x, *n)),
            None => Truth::Unknown,
        },
        Op::Exists(_) => Truth::True,
    }
}

fn eval_list(op: &Op, items: &[String]) -> Truth {
    let has = |v: &Value| v.as_str().is_some_and(|s| items.iter().any(|i| i == s));
    match op {
        Op::Contains(v) => bool_truth(has(v)),
        // A list field is "in" a set when any of its items is (roles overlap).
        Op::In(set) => bool_truth(set.iter().any(has)),
        Op::NotIn(set) => bool_truth(!set.iter().any(has)),
        Op::Equals(Value::Array(want)) => bool_truth(
            want.len() == items.len() && want.iter().zip(items).all(|(w, i)| w.as_str() == Some(i)),
        ),
        Op::NotEquals(Value::Array(want)) => not(bool_truth(
            want.len() == items.len() && want.iter().zip(items).all(|(w, i)| w.as_str() == Some(i)),
        )),
        _ => Truth::Unknown,
    }
}
