//! Field paths and redaction: parse an arbitrary path, apply it to an arbitrary JSON document,
//! and check the result against an independent model of what the path selects.
//!
//! Input: one flag byte, the path text up to the first `\n`, then the document: JSON text if
//! the rest parses as JSON, else a document built from the bytes (which can nest deeper than
//! JSON text that serde_json reads, and whose keys come from the path so paths hit).
//!
//! Oracles:
//! - parsing never panics; an accepted path keeps its text, has segments, survives serde, and
//!   printed back from its segments parses to the same segments; an error's offset is inside
//!   the text;
//! - `redact` returns exactly the number of values the model selects, changes exactly those
//!   (replaced by the marker, or removed), and `selects_any` agrees with it;
//! - secrets planted at every selected value never survive: not in the redacted document, not
//!   in a second redaction, and not in any view of a tool result (`structuredContent` and the
//!   JSON text item, compact or pretty) after `field_access` redaction.

#![no_main]

use std::collections::BTreeMap;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use portcullis::Effect;
use portcullis::paths::{FieldPath, REDACTED, RedactMode, Segment, redact, selects_any};
use portcullis::result::{Content, ToolResult};
use portcullis::rules::{FieldRule, redact_result};
use serde_json::{Map, Value};

/// Deep enough to pass serde_json's default recursion limit (128) for JSON text.
const MAX_DEPTH: usize = 160;
const SECRET: &str = "\u{1F512}SECRET-";

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (path_bytes, doc_bytes) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let text = String::from_utf8_lossy(path_bytes);
    let path = match FieldPath::parse(&text) {
        Ok(p) => p,
        Err(e) => {
            assert!(e.offset() <= text.chars().count(), "{e}");
            assert_eq!(e.path(), &*text);
            let _ = e.to_string();
            return;
        }
    };
    check_parsed(&text, &path);

    let mode = if flags & 1 == 0 {
        RedactMode::Replace
    } else {
        RedactMode::Remove
    };
    let pretty = flags & 2 != 0;
    let doc = match serde_json::from_slice::<Value>(doc_bytes) {
        Ok(v) => v,
        Err(_) => {
            let vocab = vocabulary(&path);
            let mut bytes = Bytes(doc_bytes);
            build(&mut bytes, &vocab, 0)
        }
    };

    // The model's selection, and the document redacted as the model says.
    let mut selected = Vec::new();
    select(&doc, path.segments(), &mut Vec::new(), &mut selected, true);
    let expected = apply_model(&doc, &selected, mode);

    let mut actual = doc.clone();
    let count = redact(&mut actual, &path, mode);
    assert_eq!(count, selected.len(), "count for {text:?} on {doc}");
    assert_eq!(
        selects_any(&doc, &path),
        count > 0,
        "selects_any for {text:?}"
    );
    assert!(
        actual == expected,
        "{text:?} {mode:?} on {doc}:\n got {actual}\nwant {expected}"
    );

    // Planted secrets: only when the input has none of its own.
    if contains_secret(&doc) {
        return;
    }
    let planted = plant(&doc, &selected);
    let mut out = planted.clone();
    redact(&mut out, &path, mode);
    assert!(
        !contains_secret(&out),
        "a secret survived {text:?} {mode:?}: {out}"
    );
    let again = out.clone();
    redact(&mut out, &path, mode);
    if mode == RedactMode::Replace {
        assert_eq!(out, again, "replacing twice is not idempotent for {text:?}");
    }

    // The after phase: both views of a tool result.
    let serialized = if pretty {
        serde_json::to_string_pretty(&planted)
    } else {
        serde_json::to_string(&planted)
    }
    .expect("a Value serializes");
    let mut result = ToolResult {
        content: vec![Content::Text(serialized)],
        structured: Some(planted),
        is_error: false,
    };
    let rule: Arc<str> = Arc::from("fuzz:1");
    let fields = [FieldRule {
        path: &path,
        rule: &rule,
        effect: Effect::Deny,
    }];
    let mut notes = Vec::new();
    let redactions = redact_result(&mut result, &fields, mode, &mut notes);
    assert_eq!(
        redactions.is_empty(),
        selected.is_empty(),
        "{text:?}: {notes:?}"
    );
    if let Some(s) = &result.structured {
        assert!(
            !contains_secret(s),
            "structuredContent kept a secret for {text:?}"
        );
    }
    for item in &result.content {
        if let Content::Text(t) = item {
            assert!(
                !t.contains(SECRET),
                "a text item kept a secret for {text:?} (notes: {notes:?})"
            );
        }
    }
});

fn check_parsed(text: &str, path: &FieldPath) {
    assert_eq!(path.as_str(), text);
    assert_eq!(path.to_string(), text);
    assert!(!path.segments().is_empty());
    let via_serde: FieldPath =
        serde_json::from_value(Value::String(text.to_string())).expect("serde agrees with parse");
    assert_eq!(&via_serde, path);
    let printed = print(path.segments());
    let reparsed = FieldPath::parse(&printed)
        .unwrap_or_else(|e| panic!("{text:?} printed as {printed:?} does not parse: {e}"));
    assert_eq!(
        reparsed.segments(),
        path.segments(),
        "{text:?} printed as {printed:?}"
    );
}

/// Prints segments in the dotted form, quoting every key.
fn print(segments: &[Segment]) -> String {
    let mut out = String::new();
    for (i, s) in segments.iter().enumerate() {
        match s {
            Segment::Key(k) => {
                out.push_str("[\"");
                for c in k.chars() {
                    if c == '"' || c == '\\' {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out.push_str("\"]");
            }
            Segment::Index(n) => out.push_str(&format!("[{n}]")),
            Segment::AnyIndex => out.push_str("[*]"),
            Segment::AnyKey => out.push_str(if i == 0 { "*" } else { ".*" }),
            Segment::KeyOrIndex(k, _) => {
                if i > 0 {
                    out.push('.');
                }
                out.push_str(k);
            }
        }
    }
    out
}

// ---- the model ----------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Key(String),
    Index(usize),
}

/// Collects the locations `segments` selects under `value` (at `at`), following the module
/// documentation of `portcullis::paths`, written independently of it.
fn select(
    value: &Value,
    segments: &[Segment],
    at: &mut Vec<Step>,
    out: &mut Vec<Vec<Step>>,
    root: bool,
) {
    if root && let Value::Array(items) = value {
        let fans_out = match segments.first() {
            Some(Segment::Key(_)) => true,
            Some(Segment::KeyOrIndex(_, i)) => *i >= items.len(),
            _ => false,
        };
        if fans_out {
            for (i, item) in items.iter().enumerate() {
                at.push(Step::Index(i));
                select(item, segments, at, out, false);
                at.pop();
            }
            return;
        }
    }
    let Some((first, rest)) = segments.split_first() else {
        out.push(at.clone());
        return;
    };
    let mut visit = |step: Step, child: &Value| {
        at.push(step);
        select(child, rest, at, out, false);
        at.pop();
    };
    match value {
        Value::Object(map) => match first {
            Segment::Key(k) | Segment::KeyOrIndex(k, _) => {
                if let Some(child) = map.get(k) {
                    visit(Step::Key(k.clone()), child);
                }
            }
            Segment::AnyKey => {
                for (k, child) in map {
                    visit(Step::Key(k.clone()), child);
                }
            }
            Segment::Index(_) | Segment::AnyIndex => {}
        },
        Value::Array(items) => match first {
            Segment::Index(i) | Segment::KeyOrIndex(_, i) => {
                if let Some(child) = items.get(*i) {
                    visit(Step::Index(*i), child);
                }
            }
            Segment::AnyIndex | Segment::AnyKey => {
                for (i, child) in items.iter().enumerate() {
                    visit(Step::Index(i), child);
                }
            }
            Segment::Key(_) => {}
        },
        _ => {}
    }
}

fn get_mut<'a>(mut v: &'a mut Value, at: &[Step]) -> &'a mut Value {
    for step in at {
        v = match (v, step) {
            (Value::Object(m), Step::Key(k)) => m.get_mut(k).expect("model path exists"),
            (Value::Array(a), Step::Index(i)) => &mut a[*i],
            _ => unreachable!("model path exists"),
        };
    }
    v
}

/// The document as the model says `redact` leaves it. Every selected location has the same
/// depth, so none is inside another and removals only shift their own siblings.
fn apply_model(doc: &Value, selected: &[Vec<Step>], mode: RedactMode) -> Value {
    let mut out = doc.clone();
    match mode {
        RedactMode::Replace => {
            for at in selected {
                *get_mut(&mut out, at) = Value::String(REDACTED.to_string());
            }
        }
        RedactMode::Remove => {
            let mut by_parent: BTreeMap<&[Step], Vec<&Step>> = BTreeMap::new();
            for at in selected {
                let (last, parent) = at
                    .split_last()
                    .expect("a selected location is not the root");
                by_parent.entry(parent).or_default().push(last);
            }
            for (parent, children) in by_parent {
                match get_mut(&mut out, parent) {
                    Value::Object(m) => m.retain(|k, _| !children.contains(&&Step::Key(k.clone()))),
                    Value::Array(a) => {
                        let mut i = 0;
                        a.retain(|_| {
                            let keep = !children.contains(&&Step::Index(i));
                            i += 1;
                            keep
                        });
                    }
                    _ => unreachable!("a parent is a container"),
                }
            }
        }
    }
    out
}

fn plant(doc: &Value, selected: &[Vec<Step>]) -> Value {
    let mut out = doc.clone();
    for (n, at) in selected.iter().enumerate() {
        *get_mut(&mut out, at) = Value::String(format!("{SECRET}{n}"));
    }
    out
}

fn contains_secret(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains(SECRET),
        Value::Array(a) => a.iter().any(contains_secret),
        Value::Object(m) => m
            .iter()
            .any(|(k, v)| k.contains(SECRET) || contains_secret(v)),
        _ => false,
    }
}

// ---- documents from bytes -------------------------------------------------

struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn next(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
}

/// Keys the path names, plus a few others.
fn vocabulary(path: &FieldPath) -> Vec<String> {
    let mut keys: Vec<String> = path
        .segments()
        .iter()
        .filter_map(|s| match s {
            Segment::Key(k) | Segment::KeyOrIndex(k, _) => Some(k.clone()),
            _ => None,
        })
        .collect();
    keys.extend(["a", "b", "0", "1", "", "*"].map(String::from));
    keys
}

fn build(bytes: &mut Bytes<'_>, vocab: &[String], depth: usize) -> Value {
    let Some(tag) = bytes.next() else {
        return Value::Null;
    };
    let container = depth < MAX_DEPTH;
    match tag % 8 {
        0 | 1 if container => {
            let n =
                usize::from(bytes.next().unwrap_or(1) % 4) + usize::from(tag % 8 == 1 && depth > 0);
            let mut m = Map::new();
            for _ in 0..n.max(1) {
                let k = vocab[usize::from(bytes.next().unwrap_or(0)) % vocab.len()].clone();
                let child = build(bytes, vocab, depth + 1);
                m.insert(k, child);
            }
            Value::Object(m)
        }
        2 | 3 if container => {
            let n = bytes.next().unwrap_or(1) % 4;
            Value::Array(
                (0..n.max(1))
                    .map(|_| build(bytes, vocab, depth + 1))
                    .collect(),
            )
        }
        4 => Value::String(format!("v{}", bytes.next().unwrap_or(0))),
        5 => Value::from(i64::from(bytes.next().unwrap_or(0)) - 128),
        6 => Value::Bool(tag & 8 != 0),
        _ => Value::Null,
    }
}
