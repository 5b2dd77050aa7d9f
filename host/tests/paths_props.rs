//! Property tests for `portcullis::paths`: a planted secret never survives
//! redaction, paths that select nothing never change the document, and the
//! parser never panics.

use portcullis::paths::{FieldPath, RedactMode, Segment, redact, selects_any};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

// ---- generators ---------------------------------------------------------

/// Keys from a small alphabet (so random paths sometimes hit random
/// documents) plus characters that need quoting or escaping. Lowercase only,
/// so no key can contain the upper-case secret marker.
fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-c]{1,2}",
        2 => "[0-2]",
        1 => Just("01".to_owned()),
        2 => "[a-c0-9._~/*\\[\\]\"' \\\\-]{0,5}",
    ]
}

/// Arbitrary JSON with bounded depth and size; strings are lowercase.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1.0e6f64..1.0e6).prop_map(|f| json!(f)),
        "[a-z ]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((arb_key(), inner), 0..5)
                .prop_map(|kvs| Value::Object(kvs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// One step of a dotted path, before rendering to text.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    /// Bare canonical digits, `a.3`.
    Digits(usize),
    Index(usize),
    AnyIndex,
    AnyKey,
}

#[derive(Debug, Clone)]
enum PathSpec {
    Dotted(Vec<Step>),
    Pointer(Vec<String>),
}

fn arb_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => arb_key().prop_map(Step::Key),
        1 => (0usize..4).prop_map(Step::Digits),
        2 => (0usize..4).prop_map(Step::Index),
        2 => Just(Step::AnyIndex),
        2 => Just(Step::AnyKey),
    ]
}

fn arb_spec() -> impl Strategy<Value = PathSpec> {
    prop_oneof![
        3 => prop::collection::vec(arb_step(), 1..5).prop_map(PathSpec::Dotted),
        1 => prop::collection::vec(
            prop_oneof![arb_key(), (0usize..4).prop_map(|n| n.to_string())],
            1..5,
        )
        .prop_map(PathSpec::Pointer),
    ]
}

fn is_canonical_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s.len() == 1 || !s.starts_with('0'))
}

fn quote(k: &str) -> String {
    let mut out = String::from("[\"");
    for c in k.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push_str("\"]");
    out
}

/// Renders a spec to path text and the segments the parser must produce.
fn render(spec: &PathSpec) -> (String, Vec<Segment>) {
    match spec {
        PathSpec::Pointer(tokens) => {
            let mut text = String::new();
            let mut segs = Vec::new();
            for t in tokens {
                text.push('/');
                text.push_str(&t.replace('~', "~0").replace('/', "~1"));
                segs.push(match t.parse::<usize>() {
                    Ok(n) if is_canonical_digits(t) => Segment::KeyOrIndex(t.clone(), n),
                    _ => Segment::Key(t.clone()),
                });
            }
            (text, segs)
        }
        PathSpec::Dotted(steps) => {
            let mut text = String::new();
            let mut segs = Vec::new();
            for (i, step) in steps.iter().enumerate() {
                let dot = if i == 0 { "" } else { "." };
                match step {
                    Step::Key(k) => {
                        let needs_quotes = k.is_empty()
                            || k.chars().any(|c| matches!(c, '.' | '[' | ']' | '*'))
                            || is_canonical_digits(k)
                            || (i == 0 && k.starts_with('/'));
                        if !needs_quotes {
                            text.push_str(dot);
                            text.push_str(k);
                        } else {
                            text.push_str(&quote(k));
                        }
                        segs.push(Segment::Key(k.clone()));
                    }
                    Step::Digits(n) => {
                        text.push_str(&format!("{dot}{n}"));
                        segs.push(Segment::KeyOrIndex(n.to_string(), *n));
                    }
                    Step::Index(n) => {
                        text.push_str(&format!("[{n}]"));
                        segs.push(Segment::Index(*n));
                    }
                    Step::AnyIndex => {
                        text.push_str("[*]");
                        segs.push(Segment::AnyIndex);
                    }
                    Step::AnyKey => {
                        text.push_str(dot);
                        text.push('*');
                        segs.push(Segment::AnyKey);
                    }
                }
            }
            (text, segs)
        }
    }
}

// ---- planting -----------------------------------------------------------

/// Tiny deterministic PRNG so planting choices are reproducible from a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }
}

fn as_object(v: &mut Value) -> &mut Map<String, Value> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    match v {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

fn as_array(v: &mut Value, min_len: usize) -> &mut Vec<Value> {
    if !v.is_array() {
        *v = Value::Array(Vec::new());
    }
    match v {
        Value::Array(a) => {
            while a.len() < min_len {
                a.push(Value::Null);
            }
            a
        }
        _ => unreachable!(),
    }
}

/// Reshapes `v` as needed so that `segs` selects at least one value holding
/// `marker`, planting it at some (random) selected locations.
fn plant(v: &mut Value, segs: &[Segment], marker: &str, rng: &mut Rng) {
    let Some((seg, rest)) = segs.split_first() else {
        *v = match rng.below(3) {
            0 => json!(marker),
            1 => json!({"deep": [1, {"x": marker}]}),
            _ => json!([marker, marker]),
        };
        return;
    };
    match seg {
        Segment::Key(k) => plant_key(v, k, rest, marker, rng),
        Segment::KeyOrIndex(k, i) => {
            if rng.coin() {
                plant_key(v, k, rest, marker, rng)
            } else {
                plant_index(v, *i, rest, marker, rng)
            }
        }
        Segment::Index(i) => plant_index(v, *i, rest, marker, rng),
        Segment::AnyIndex => plant_all(as_array(v, 1).iter_mut(), rest, marker, rng),
        Segment::AnyKey => {
            let as_arr = match v {
                Value::Array(a) => !a.is_empty(),
                Value::Object(m) => m.is_empty() && rng.coin(),
                _ => rng.coin(),
            };
            if as_arr {
                plant_all(as_array(v, 1).iter_mut(), rest, marker, rng);
            } else {
                let m = as_object(v);
                if m.is_empty() {
                    m.insert("k".to_owned(), Value::Null);
                }
                plant_all(m.values_mut(), rest, marker, rng);
            }
        }
    }
}

fn plant_key(v: &mut Value, k: &str, rest: &[Segment], marker: &str, rng: &mut Rng) {
    let child = as_object(v).entry(k.to_owned()).or_insert(Value::Null);
    plant(child, rest, marker, rng);
}

fn plant_index(v: &mut Value, i: usize, rest: &[Segment], marker: &str, rng: &mut Rng) {
    let arr = as_array(v, i + 1);
    plant(&mut arr[i], rest, marker, rng);
}

/// Plants into a random non-empty subset of the children.
fn plant_all<'a>(
    children: impl Iterator<Item = &'a mut Value>,
    rest: &[Segment],
    marker: &str,
    rng: &mut Rng,
) {
    let mut planted = false;
    let mut last = None;
    for child in children {
        if rng.coin() {
            plant(child, rest, marker, rng);
            planted = true;
        } else {
            last = Some(child);
        }
    }
    if !planted && let Some(child) = last {
        plant(child, rest, marker, rng);
    }
}

fn last_is_index_like(segs: &[Segment]) -> bool {
    matches!(
        segs.last(),
        Some(Segment::Index(_) | Segment::KeyOrIndex(..))
    )
}

// ---- properties ---------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The renderer and the parser agree, and Display keeps the text.
    #[test]
    fn rendered_paths_parse_to_their_segments(spec in arb_spec()) {
        let (text, expected) = render(&spec);
        let path = FieldPath::parse(&text)
            .map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
        prop_assert_eq!(path.segments(), expected.as_slice());
        prop_assert_eq!(path.to_string(), text);
    }

    /// A secret planted where the path points never survives redaction.
    #[test]
    fn planted_secret_is_always_redacted(
        base in arb_json(),
        others in prop::collection::vec(arb_json(), 0..3),
        spec in arb_spec(),
        secret in 100_000u32..,
        seed in 1u64..,
        wrap_root in any::<bool>(),
    ) {
        let marker = format!("SECRET-{secret}");
        let (text, _) = render(&spec);
        let path = FieldPath::parse(&text)
            .map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
        let segs = path.segments();
        let mut rng = Rng(seed);

        let mut doc = base;
        plant(&mut doc, segs, &marker, &mut rng);
        // Seed compatibility: a key-first path also applies to each record
        // of a root array.
        if wrap_root && matches!(segs.first(), Some(Segment::Key(_))) {
            let mut records = vec![doc];
            for mut other in others {
                if rng.coin() {
                    plant(&mut other, segs, &marker, &mut rng);
                }
                records.push(other);
            }
            doc = Value::Array(records);
        }

        let planted = serde_json::to_string(&doc).unwrap();
        prop_assert!(planted.contains(&marker), "planting failed: {}", planted);
        prop_assert!(selects_any(&doc, &path));

        // Replace: marker gone, keys kept, idempotent.
        let mut replaced = doc.clone();
        let n = redact(&mut replaced, &path, RedactMode::Replace);
        prop_assert!(n > 0);
        let out = serde_json::to_string(&replaced).unwrap();
        prop_assert!(!out.contains(&marker), "{} left {}", text, out);
        prop_assert!(selects_any(&replaced, &path));
        let mut again = replaced.clone();
        prop_assert_eq!(redact(&mut again, &path, RedactMode::Replace), n);
        prop_assert_eq!(&again, &replaced);

        // Remove: marker gone and, unless removal shifted array elements
        // into the selected index, nothing is selected any more.
        let mut removed = doc.clone();
        let n = redact(&mut removed, &path, RedactMode::Remove);
        prop_assert!(n > 0);
        let out = serde_json::to_string(&removed).unwrap();
        prop_assert!(!out.contains(&marker), "{} left {}", text, out);
        if !last_is_index_like(segs) {
            prop_assert!(!selects_any(&removed, &path), "{} still selects in {}", text, out);
        }
    }

    /// A path that selects nothing leaves the document byte-identical;
    /// otherwise `redact` reports a non-zero count.
    #[test]
    fn non_selecting_path_is_a_no_op(doc in arb_json(), spec in arb_spec()) {
        let (text, _) = render(&spec);
        let path = FieldPath::parse(&text)
            .map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
        let before = serde_json::to_string(&doc).unwrap();
        let selected = selects_any(&doc, &path);
        for mode in [RedactMode::Replace, RedactMode::Remove] {
            let mut out = doc.clone();
            let n = redact(&mut out, &path, mode);
            prop_assert_eq!(n > 0, selected);
            if !selected {
                prop_assert_eq!(serde_json::to_string(&out).unwrap(), before.clone());
            }
        }
    }

    /// Parsing never panics, and accepted paths keep their text.
    #[test]
    fn parse_never_panics(text in any::<String>()) {
        if let Ok(path) = FieldPath::parse(&text) {
            prop_assert_eq!(path.as_str(), text.as_str());
            prop_assert!(!path.segments().is_empty());
        }
    }

    /// Same, with the characters that matter to the grammar.
    #[test]
    fn parse_never_panics_on_syntax_soup(text in "[a0-9./\\[\\]*\"'~\\\\ -]{0,16}") {
        match FieldPath::parse(&text) {
            Ok(path) => {
                prop_assert_eq!(path.to_string(), text);
                prop_assert!(!path.segments().is_empty());
            }
            Err(e) => {
                prop_assert!(e.offset() <= text.chars().count());
                let prefix = format!("invalid field path {text:?} at offset {}: expected", e.offset());
                prop_assert!(e.to_string().starts_with(&prefix), "{}", e);
            }
        }
    }
}
