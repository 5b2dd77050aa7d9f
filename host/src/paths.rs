//! Field paths: parsing and applying the paths that `field_access` rules use
//! to redact fields from a tool's JSON result.
//!
//! Paths are parsed once, when the policy is loaded, so that a typo is
//! reported to the policy author with a precise position instead of silently
//! redacting nothing. Applying a parsed path is done per tool call, in place,
//! without cloning the document.
//!
//! # Syntax
//!
//! *Dotted form* (anything not starting with `/`):
//!
//! | text                  | meaning                                                     |
//! |-----------------------|-------------------------------------------------------------|
//! | `a.b.c`               | object keys                                                  |
//! | `items[0]`            | array element 0 ([`Segment::Index`])                         |
//! | `items[*].email`      | every array element ([`Segment::AnyIndex`], arrays only)     |
//! | `users.*.ssn`         | every value of an object *or* every element of an array ([`Segment::AnyKey`]) |
//! | `headers["x.api-key"]`, `a['b.c']` | a key containing `.`, `[`, `]`, `*`, or an empty key; `\` escapes the next character |
//! | `a.0`                 | bare digits: array index 0 *or* object key `"0"` ([`Segment::KeyOrIndex`]) |
//!
//! A bare segment is taken literally (spaces included); `*` inside a bare
//! segment (`a*b`) is rejected rather than matched literally, because a
//! policy author writing it almost certainly expected a glob.
//!
//! *JSON Pointer form* (RFC 6901, text starting with `/`): `/a/0/b`, with
//! `~0` for `~` and `~1` for `/`. A token of canonical digits (`0`, `12`, not
//! `01`) selects an array index *or* an object key with that text; `*` is a
//! literal key in a pointer. `/` alone selects the key `""` of the root
//! object. The empty pointer `""` (the whole document) is rejected: the whole
//! result cannot be redacted by a field rule.
//!
//! # Root arrays (compatibility with mcp-macaroon-middleware)
//!
//! The Python seed treated a list result as a list of records (and a dict as
//! a one-record list). To keep existing policies working, when the document
//! root is an array and the path's first segment is a key ([`Segment::Key`],
//! or a [`Segment::KeyOrIndex`] whose index is out of range for the root
//! array), the whole path is applied to every element of the root array. This
//! happens at the root only.

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

/// The string a redacted value is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// One step of a [`FieldPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// An object key (`a`, `["a.b"]`, or a non-numeric pointer token).
    Key(String),
    /// An array index (`[3]`); matches nothing on objects.
    Index(usize),
    /// `[*]`: every element of an array; matches nothing on objects.
    AnyIndex,
    /// `*`: every value of an object, or every element of an array.
    AnyKey,
    /// Canonical digits (pointer token or bare dotted segment): the array
    /// index on arrays, the literal key on objects. The string is the text,
    /// the number its value.
    KeyOrIndex(String, usize),
}

/// A parsed, validated field path.
///
/// Keeps the author's original text so that logs and reports show the path
/// exactly as written in the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    /// Shared so that every redaction report can name the path without copying it.
    raw: std::sync::Arc<str>,
    segments: Vec<Segment>,
}

/// How [`redact`] hides a selected value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RedactMode {
    /// Replace the value with the string [`REDACTED`]; the key/element stays,
    /// so clients still see that a field existed.
    #[default]
    Replace,
    /// Remove the object key or array element entirely.
    Remove,
}

/// Why a field path failed to parse; see [`PathError`] for the position.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathErrorKind {
    /// The path is the empty string.
    Empty,
    /// A dotted segment is empty (`a..b`, `a.`, `.a`, `a.[0]`).
    EmptySegment,
    /// A `[` is not closed by `]` where expected; `open` is the `[` offset.
    UnclosedBracket {
        /// Char offset of the opening `[`.
        open: usize,
    },
    /// The text inside `[...]` is not an index, `*` or a quoted key.
    BadIndex,
    /// An index inside `[...]` has a leading zero (`[01]`).
    LeadingZero,
    /// An index inside `[...]` does not fit in `usize`.
    IndexTooLarge,
    /// A `~` in a JSON Pointer is not followed by `0` or `1`.
    BadEscape,
    /// A quoted key is not closed.
    UnterminatedQuote {
        /// The quote character (`"` or `'`).
        quote: char,
        /// Char offset of the opening quote.
        open: usize,
    },
    /// Something other than `.`, `[` or the end follows a segment (`a]`, `a[0]b`).
    ExpectedSeparator,
    /// `*` appears inside a bare segment (`a*b`).
    StarInKey,
}

impl fmt::Display for PathErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str(
                "expected a non-empty path (the empty JSON Pointer would select the whole result, which cannot be redacted)",
            ),
            Self::EmptySegment => f.write_str("expected a key name, found an empty segment"),
            Self::UnclosedBracket { open } => {
                write!(f, "expected \"]\" to close the \"[\" at offset {open}")
            }
            Self::BadIndex => {
                f.write_str("expected an array index, \"*\" or a quoted key inside [...]")
            }
            Self::LeadingZero => f.write_str("expected an array index without leading zeros"),
            Self::IndexTooLarge => write!(
                f,
                "expected an array index no larger than {}",
                usize::MAX
            ),
            Self::BadEscape => {
                f.write_str("expected \"~0\" or \"~1\" after \"~\" in a JSON Pointer")
            }
            Self::UnterminatedQuote { quote, open } => write!(
                f,
                "expected a closing quote ({quote}) for the key quoted at offset {open}"
            ),
            Self::ExpectedSeparator => f.write_str("expected \".\", \"[\" or the end of the path"),
            Self::StarInKey => f.write_str(
                "expected \"*\" to be a whole segment (quote the key, e.g. [\"a*b\"], to match \"*\" literally)",
            ),
        }
    }
}

/// A field path that failed to parse.
///
/// Carries the path text and the 0-based *character* offset at which parsing
/// failed, so the policy loader can point the author at the exact spot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid field path {path:?} at offset {offset}: {kind}")]
pub struct PathError {
    path: String,
    offset: usize,
    kind: PathErrorKind,
}

impl PathError {
    /// The path text that failed to parse.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// 0-based character (not byte) offset where parsing failed.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// What was wrong.
    pub fn kind(&self) -> &PathErrorKind {
        &self.kind
    }
}

impl FieldPath {
    /// Parses and validates `text` (dotted form, or JSON Pointer if it starts
    /// with `/`). Never panics.
    pub fn parse(text: &str) -> Result<FieldPath, PathError> {
        let chars: Vec<char> = text.chars().collect();
        let parser = Parser {
            text,
            chars: &chars,
        };
        let segments = match chars.first() {
            None => return Err(parser.err(0, PathErrorKind::Empty)),
            Some('/') => parser.pointer()?,
            Some(_) => parser.dotted()?,
        };
        Ok(FieldPath {
            raw: std::sync::Arc::from(text),
            segments,
        })
    }

    /// The original text, as written by the policy author.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The original text, shared: cloning it is a reference-count increment.
    pub fn shared_text(&self) -> &std::sync::Arc<str> {
        &self.raw
    }

    /// The parsed segments; never empty.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl FromStr for FieldPath {
    type Err = PathError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FieldPath::parse(s)
    }
}

/// Lets policy structs hold `FieldPath` directly, so bad paths fail at load.
impl<'de> serde::Deserialize<'de> for FieldPath {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        FieldPath::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Serializes as the original text.
impl serde::Serialize for FieldPath {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.raw)
    }
}

/// Load-time parser over the path's characters (indices are char offsets).
struct Parser<'a> {
    text: &'a str,
    chars: &'a [char],
}

impl Parser<'_> {
    fn err(&self, offset: usize, kind: PathErrorKind) -> PathError {
        PathError {
            path: self.text.to_owned(),
            offset,
            kind,
        }
    }

    fn at(&self, i: usize) -> Option<char> {
        self.chars.get(i).copied()
    }

    /// RFC 6901 pointer; the caller checked that the first char is `/`.
    fn pointer(&self) -> Result<Vec<Segment>, PathError> {
        let mut segments = Vec::new();
        let mut token = String::new();
        let mut i = 1;
        while let Some(c) = self.at(i) {
            match c {
                '/' => segments.push(numeric_or_key(std::mem::take(&mut token))),
                '~' => {
                    match self.at(i + 1) {
                        Some('0') => token.push('~'),
                        Some('1') => token.push('/'),
                        _ => return Err(self.err(i, PathErrorKind::BadEscape)),
                    }
                    i += 1;
                }
                c => token.push(c),
            }
            i += 1;
        }
        segments.push(numeric_or_key(token));
        Ok(segments)
    }

    fn dotted(&self) -> Result<Vec<Segment>, PathError> {
        let mut segments = Vec::new();
        let mut i = 0;
        if self.at(0) != Some('[') {
            i = self.bare(i, &mut segments)?;
        }
        while let Some(c) = self.at(i) {
            i = match c {
                '.' => self.bare(i + 1, &mut segments)?,
                '[' => self.bracket(i, &mut segments)?,
                _ => return Err(self.err(i, PathErrorKind::ExpectedSeparator)),
            };
        }
        Ok(segments)
    }

    /// A bare dotted segment starting at `start`; returns the offset after it.
    fn bare(&self, start: usize, segments: &mut Vec<Segment>) -> Result<usize, PathError> {
        let mut end = start;
        while let Some(c) = self.at(end) {
            if matches!(c, '.' | '[' | ']') {
                break;
            }
            end += 1;
        }
        let text = &self.chars[start..end];
        if text.is_empty() {
            return Err(self.err(start, PathErrorKind::EmptySegment));
        }
        if text == ['*'] {
            segments.push(Segment::AnyKey);
        } else if let Some(star) = text.iter().position(|&c| c == '*') {
            return Err(self.err(start + star, PathErrorKind::StarInKey));
        } else {
            segments.push(numeric_or_key(text.iter().collect()));
        }
        Ok(end)
    }

    /// A `[...]` group whose `[` is at `open`; returns the offset after `]`.
    fn bracket(&self, open: usize, segments: &mut Vec<Segment>) -> Result<usize, PathError> {
        let start = open + 1;
        let (segment, end) = match self.at(start) {
            None => return Err(self.err(start, PathErrorKind::UnclosedBracket { open })),
            Some('*') => (Segment::AnyIndex, start + 1),
            Some(q @ ('"' | '\'')) => self.quoted(start, q)?,
            Some(c) if c.is_ascii_digit() => {
                let mut end = start;
                while self.at(end).is_some_and(|c| c.is_ascii_digit()) {
                    end += 1;
                }
                if end - start > 1 && c == '0' {
                    return Err(self.err(start, PathErrorKind::LeadingZero));
                }
                let digits: String = self.chars[start..end].iter().collect();
                match digits.parse::<usize>() {
                    Ok(n) => (Segment::Index(n), end),
                    Err(_) => return Err(self.err(start, PathErrorKind::IndexTooLarge)),
                }
            }
            Some(_) => return Err(self.err(start, PathErrorKind::BadIndex)),
        };
        if self.at(end) != Some(']') {
            return Err(self.err(end, PathErrorKind::UnclosedBracket { open }));
        }
        segments.push(segment);
        Ok(end + 1)
    }

    /// A quoted key whose opening quote `q` is at `open`; returns the key and
    /// the offset after the closing quote. `\` escapes the next character.
    fn quoted(&self, open: usize, q: char) -> Result<(Segment, usize), PathError> {
        let mut key = String::new();
        let mut i = open + 1;
        loop {
            match self.at(i) {
                None => break,
                Some('\\') => match self.at(i + 1) {
                    Some(c) => {
                        key.push(c);
                        i += 2;
                    }
                    None => break,
                },
                Some(c) if c == q => return Ok((Segment::Key(key), i + 1)),
                Some(c) => {
                    key.push(c);
                    i += 1;
                }
            }
        }
        Err(self.err(
            self.chars.len(),
            PathErrorKind::UnterminatedQuote { quote: q, open },
        ))
    }
}

/// Canonical digits (no leading zero, fits `usize`) become `KeyOrIndex`;
/// anything else is a plain key.
fn numeric_or_key(token: String) -> Segment {
    let canonical = !token.is_empty()
        && token.bytes().all(|b| b.is_ascii_digit())
        && (token.len() == 1 || !token.starts_with('0'));
    if canonical && let Ok(n) = token.parse::<usize>() {
        return Segment::KeyOrIndex(token, n);
    }
    Segment::Key(token)
}

/// Whether the root-array compatibility rule applies (see the module docs).
fn root_fans_out(root_len: usize, segments: &[Segment]) -> bool {
    match segments.first() {
        Some(Segment::Key(_)) => true,
        Some(Segment::KeyOrIndex(_, i)) => *i >= root_len,
        _ => false,
    }
}

/// Redacts every value `path` selects; returns how many values were redacted
/// (0 = path absent, document unchanged).
///
/// Missing keys, out-of-range indices and type mismatches select nothing;
/// this never panics. Replaced values are not descended into again, so each
/// call is independent: redacting `a.b` after `a` was replaced finds a string
/// and does nothing. In [`RedactMode::Remove`] a removed array element shifts
/// the later ones down. A root array is treated as a list of records when the
/// path starts with a key (see the module docs).
pub fn redact(doc: &mut Value, path: &FieldPath, mode: RedactMode) -> usize {
    let segments = path.segments();
    if let Value::Array(items) = &mut *doc
        && root_fans_out(items.len(), segments)
    {
        return items
            .iter_mut()
            .map(|item| redact_in(item, segments, mode))
            .sum();
    }
    redact_in(doc, segments, mode)
}

/// True if `path` selects at least one value in `doc` (used to report which
/// paths applied). Agrees with [`redact`]: true exactly when it would return
/// a non-zero count.
pub fn selects_any(doc: &Value, path: &FieldPath) -> bool {
    let segments = path.segments();
    if let Value::Array(items) = doc
        && root_fans_out(items.len(), segments)
    {
        return items.iter().any(|item| selects_in(item, segments));
    }
    selects_in(doc, segments)
}

fn marker() -> Value {
    Value::String(REDACTED.to_owned())
}

fn redact_in(value: &mut Value, segments: &[Segment], mode: RedactMode) -> usize {
    let Some((segment, rest)) = segments.split_first() else {
        return 0;
    };
    if rest.is_empty() {
        return redact_last(value, segment, mode);
    }
    match (value, segment) {
        (Value::Object(map), Segment::Key(key) | Segment::KeyOrIndex(key, _)) => map
            .get_mut(key.as_str())
            .map_or(0, |child| redact_in(child, rest, mode)),
        (Value::Object(map), Segment::AnyKey) => map
            .values_mut()
            .map(|child| redact_in(child, rest, mode))
            .sum(),
        (Value::Array(items), Segment::Index(i) | Segment::KeyOrIndex(_, i)) => items
            .get_mut(*i)
            .map_or(0, |child| redact_in(child, rest, mode)),
        (Value::Array(items), Segment::AnyIndex | Segment::AnyKey) => items
            .iter_mut()
            .map(|child| redact_in(child, rest, mode))
            .sum(),
        _ => 0,
    }
}

/// Applies the last segment: acts on the container so that Remove can work.
fn redact_last(value: &mut Value, segment: &Segment, mode: RedactMode) -> usize {
    match (value, segment) {
        (Value::Object(map), Segment::Key(key) | Segment::KeyOrIndex(key, _)) => match mode {
            RedactMode::Replace => map.get_mut(key.as_str()).map_or(0, |child| {
                *child = marker();
                1
            }),
            RedactMode::Remove => {
                if !map.contains_key(key.as_str()) {
                    return 0;
                }
                // `retain` keeps the key order even with serde_json's
                // `preserve_order` feature, where `remove` would swap keys.
                map.retain(|k, _| k != key);
                1
            }
        },
        (Value::Object(map), Segment::AnyKey) => {
            let count = map.len();
            match mode {
                RedactMode::Replace => map.values_mut().for_each(|child| *child = marker()),
                RedactMode::Remove => map.clear(),
            }
            count
        }
        (Value::Array(items), Segment::Index(i) | Segment::KeyOrIndex(_, i)) => {
            if *i >= items.len() {
                return 0;
            }
            match mode {
                RedactMode::Replace => {
                    if let Some(child) = items.get_mut(*i) {
                        *child = marker();
                    }
                }
                RedactMode::Remove => {
                    items.remove(*i);
                }
            }
            1
        }
        (Value::Array(items), Segment::AnyIndex | Segment::AnyKey) => {
            let count = items.len();
            match mode {
                RedactMode::Replace => items.iter_mut().for_each(|child| *child = marker()),
                RedactMode::Remove => items.clear(),
            }
            count
        }
        _ => 0,
    }
}

fn selects_in(value: &Value, segments: &[Segment]) -> bool {
    let Some((segment, rest)) = segments.split_first() else {
        // Every segment matched: this value is selected.
        return true;
    };
    match (value, segment) {
        (Value::Object(map), Segment::Key(key) | Segment::KeyOrIndex(key, _)) => map
            .get(key.as_str())
            .is_some_and(|child| selects_in(child, rest)),
        (Value::Object(map), Segment::AnyKey) => map.values().any(|child| selects_in(child, rest)),
        (Value::Array(items), Segment::Index(i) | Segment::KeyOrIndex(_, i)) => {
            items.get(*i).is_some_and(|child| selects_in(child, rest))
        }
        (Value::Array(items), Segment::AnyIndex | Segment::AnyKey) => {
            items.iter().any(|child| selects_in(child, rest))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(text: &str) -> FieldPath {
        FieldPath::parse(text).unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
    }

    fn segs(text: &str) -> Vec<Segment> {
        p(text).segments().to_vec()
    }

    fn key(k: &str) -> Segment {
        Segment::Key(k.to_owned())
    }

    fn koi(k: &str) -> Segment {
        Segment::KeyOrIndex(k.to_owned(), k.parse().unwrap())
    }

    fn err(text: &str) -> PathError {
        match FieldPath::parse(text) {
            Ok(path) => panic!("{text:?} should fail, got {path:?}"),
            Err(e) => e,
        }
    }

    /// Runs `redact` on a copy; returns (count, result).
    fn run(doc: &Value, path: &str, mode: RedactMode) -> (usize, Value) {
        let mut out = doc.clone();
        let n = redact(&mut out, &p(path), mode);
        assert_eq!(
            n > 0,
            selects_any(doc, &p(path)),
            "selects_any disagrees for {path}"
        );
        (n, out)
    }

    // ---- parsing -------------------------------------------------------

    #[test]
    fn parses_dotted_keys() {
        assert_eq!(segs("a"), vec![key("a")]);
        assert_eq!(segs("a.b.c"), vec![key("a"), key("b"), key("c")]);
        assert_eq!(segs("with space.x-y"), vec![key("with space"), key("x-y")]);
        assert_eq!(segs("a/b"), vec![key("a/b")]);
        assert_eq!(segs("ünï.cödé"), vec![key("ünï"), key("cödé")]);
    }

    #[test]
    fn parses_indexes_and_wildcards() {
        assert_eq!(segs("items[0]"), vec![key("items"), Segment::Index(0)]);
        assert_eq!(
            segs("a.items[12].x"),
            vec![key("a"), key("items"), Segment::Index(12), key("x")]
        );
        assert_eq!(
            segs("items[*].email"),
            vec![key("items"), Segment::AnyIndex, key("email")]
        );
        assert_eq!(
            segs("m[1][2]"),
            vec![key("m"), Segment::Index(1), Segment::Index(2)]
        );
        assert_eq!(segs("[0].a"), vec![Segment::Index(0), key("a")]);
        assert_eq!(segs("[*]"), vec![Segment::AnyIndex]);
        assert_eq!(
            segs("users.*.ssn"),
            vec![key("users"), Segment::AnyKey, key("ssn")]
        );
        assert_eq!(segs("*.password"), vec![Segment::AnyKey, key("password")]);
        assert_eq!(segs("*"), vec![Segment::AnyKey]);
    }

    #[test]
    fn bare_digits_are_key_or_index() {
        assert_eq!(segs("a.0"), vec![key("a"), koi("0")]);
        assert_eq!(segs("12.x"), vec![koi("12"), key("x")]);
        // Not canonical: plain keys.
        assert_eq!(segs("a.01"), vec![key("a"), key("01")]);
        let huge = "99999999999999999999999999";
        assert_eq!(segs(&format!("a.{huge}")), vec![key("a"), key(huge)]);
    }

    #[test]
    fn parses_quoted_keys() {
        assert_eq!(
            segs(r#"headers["x.api-key"]"#),
            vec![key("headers"), key("x.api-key")]
        );
        assert_eq!(segs("a['b.c']"), vec![key("a"), key("b.c")]);
        assert_eq!(segs(r#"["a.b"].c"#), vec![key("a.b"), key("c")]);
        assert_eq!(segs(r#"a["[*]"]"#), vec![key("a"), key("[*]")]);
        assert_eq!(segs(r#"a["*"]"#), vec![key("a"), key("*")]);
        assert_eq!(segs(r#"a["0"]"#), vec![key("a"), key("0")]);
        assert_eq!(segs(r#"a[""]"#), vec![key("a"), key("")]);
        assert_eq!(segs(r#"a["q\"uo\\te"]"#), vec![key("a"), key(r#"q"uo\te"#)]);
        assert_eq!(segs(r#"a['it\'s']"#), vec![key("a"), key("it's")]);
        assert_eq!(segs(r#"a["it's"]"#), vec![key("a"), key("it's")]);
        assert_eq!(segs(r#"a['say "hi"']"#), vec![key("a"), key(r#"say "hi""#)]);
    }

    #[test]
    fn parses_pointers() {
        assert_eq!(segs("/a/0/b"), vec![key("a"), koi("0"), key("b")]);
        assert_eq!(segs("/a~1b/c~0d"), vec![key("a/b"), key("c~d")]);
        assert_eq!(segs("/~01"), vec![key("~1")]);
        assert_eq!(segs("/"), vec![key("")]);
        assert_eq!(segs("//"), vec![key(""), key("")]);
        assert_eq!(segs("/a/"), vec![key("a"), key("")]);
        assert_eq!(segs("/01"), vec![key("01")]);
        assert_eq!(segs("/10"), vec![koi("10")]);
        assert_eq!(segs("/-"), vec![key("-")]);
        assert_eq!(segs("/*"), vec![key("*")]);
        assert_eq!(segs("/a.b[0]"), vec![key("a.b[0]")]);
    }

    #[test]
    fn display_and_from_str_keep_the_original_text() {
        for text in ["a.b", "items[*].email", "/a~1b/0", r#"h["x.y"]"#] {
            let path: FieldPath = text.parse().unwrap();
            assert_eq!(path.as_str(), text);
            assert_eq!(path.to_string(), text);
        }
    }

    #[test]
    fn serde_round_trip() {
        let path: FieldPath = serde_json::from_str(r#""a[0].b""#).unwrap();
        assert_eq!(path, p("a[0].b"));
        assert_eq!(serde_json::to_string(&path).unwrap(), r#""a[0].b""#);
        let e = serde_json::from_str::<FieldPath>(r#""a..b""#).unwrap_err();
        assert!(e.to_string().contains("at offset 2"), "{e}");
    }

    // ---- errors --------------------------------------------------------

    #[test]
    fn error_messages() {
        let cases: &[(&str, usize, &str)] = &[
            ("", 0, "expected a non-empty path"),
            ("a..b", 2, "expected a key name, found an empty segment"),
            ("a.", 2, "expected a key name, found an empty segment"),
            (".a", 0, "expected a key name, found an empty segment"),
            ("a.[0]", 2, "expected a key name, found an empty segment"),
            ("items[", 6, r#"expected "]" to close the "[" at offset 5"#),
            ("items[0", 7, r#"expected "]" to close the "[" at offset 5"#),
            (
                "items[1x]",
                7,
                r#"expected "]" to close the "[" at offset 5"#,
            ),
            (
                "items[*x]",
                7,
                r#"expected "]" to close the "[" at offset 5"#,
            ),
            (
                "items[x]",
                6,
                r#"expected an array index, "*" or a quoted key inside [...]"#,
            ),
            (
                "items[-1]",
                6,
                r#"expected an array index, "*" or a quoted key inside [...]"#,
            ),
            (
                "items[]",
                6,
                r#"expected an array index, "*" or a quoted key inside [...]"#,
            ),
            (
                "items[01]",
                6,
                "expected an array index without leading zeros",
            ),
            (
                "items[99999999999999999999999]",
                6,
                "expected an array index no larger than",
            ),
            (
                "/a~2",
                2,
                r#"expected "~0" or "~1" after "~" in a JSON Pointer"#,
            ),
            (
                "/a~",
                2,
                r#"expected "~0" or "~1" after "~" in a JSON Pointer"#,
            ),
            (
                r#"a["b"#,
                4,
                r#"expected a closing quote (") for the key quoted at offset 2"#,
            ),
            (
                "a['b",
                4,
                "expected a closing quote (') for the key quoted at offset 2",
            ),
            (
                r#"a["b\"]"#,
                7,
                r#"expected a closing quote (") for the key quoted at offset 2"#,
            ),
            ("a]", 1, r#"expected ".", "[" or the end of the path"#),
            ("a[0]b", 4, r#"expected ".", "[" or the end of the path"#),
            ("a*b", 1, r#"expected "*" to be a whole segment"#),
            ("x.**", 2, r#"expected "*" to be a whole segment"#),
        ];
        for &(text, offset, expected) in cases {
            let e = err(text);
            let msg = e.to_string();
            assert_eq!(e.offset(), offset, "offset for {text:?}: {msg}");
            assert_eq!(e.path(), text);
            let prefix = format!("invalid field path {text:?} at offset {offset}: ");
            assert!(
                msg.starts_with(&prefix),
                "{msg:?} should start with {prefix:?}"
            );
            assert!(
                msg.contains(expected),
                "{msg:?} should contain {expected:?}"
            );
        }
    }

    #[test]
    fn error_message_exact_shape() {
        assert_eq!(
            err("items[x]").to_string(),
            r#"invalid field path "items[x]" at offset 6: expected an array index, "*" or a quoted key inside [...]"#
        );
        assert_eq!(
            err("items[").kind(),
            &PathErrorKind::UnclosedBracket { open: 5 }
        );
        assert_eq!(err("/~2").kind(), &PathErrorKind::BadEscape);
    }

    #[test]
    fn error_offsets_count_chars_not_bytes() {
        let e = err("ü..b");
        assert_eq!(e.offset(), 2);
        assert!(e.to_string().contains("at offset 2"));
    }

    // ---- redaction -----------------------------------------------------

    #[test]
    fn replaces_nested_object_fields() {
        let doc = json!({"a": {"b": {"c": 1, "d": 2}}, "e": 3});
        let (n, out) = run(&doc, "a.b.c", RedactMode::Replace);
        assert_eq!(n, 1);
        assert_eq!(out, json!({"a": {"b": {"c": REDACTED, "d": 2}}, "e": 3}));
        // Whole subtrees are replaced too.
        let (n, out) = run(&doc, "a.b", RedactMode::Replace);
        assert_eq!(n, 1);
        assert_eq!(out, json!({"a": {"b": REDACTED}, "e": 3}));
    }

    #[test]
    fn removes_object_keys_keeping_siblings() {
        let doc = json!({"a": {"b": 1, "c": 2}});
        let (n, out) = run(&doc, "a.b", RedactMode::Remove);
        assert_eq!(n, 1);
        assert_eq!(out, json!({"a": {"c": 2}}));
    }

    #[test]
    fn array_index_and_wildcard() {
        let doc = json!({"items": [{"email": "x", "id": 1}, {"email": "y", "id": 2}, 7]});
        let (n, out) = run(&doc, "items[1].email", RedactMode::Replace);
        assert_eq!(n, 1);
        assert_eq!(out["items"][1]["email"], REDACTED);
        assert_eq!(out["items"][0]["email"], "x");

        let (n, out) = run(&doc, "items[*].email", RedactMode::Replace);
        assert_eq!(n, 2);
        assert_eq!(
            out,
            json!({"items": [{"email": REDACTED, "id": 1}, {"email": REDACTED, "id": 2}, 7]})
        );

        let (n, out) = run(&doc, "items[*].email", RedactMode::Remove);
        assert_eq!(n, 2);
        assert_eq!(out, json!({"items": [{"id": 1}, {"id": 2}, 7]}));

        let (n, out) = run(&doc, "items[*]", RedactMode::Replace);
        assert_eq!(n, 3);
        assert_eq!(out, json!({"items": [REDACTED, REDACTED, REDACTED]}));
    }

    #[test]
    fn remove_array_elements() {
        let doc = json!({"items": [10, 11, 12]});
        let (n, out) = run(&doc, "items[1]", RedactMode::Remove);
        assert_eq!(n, 1);
        assert_eq!(out, json!({"items": [10, 12]}));
        let (n, out) = run(&doc, "items[*]", RedactMode::Remove);
        assert_eq!(n, 3);
        assert_eq!(out, json!({"items": []}));
        let (n, out) = run(&doc, "/items/2", RedactMode::Remove);
        assert_eq!(n, 1);
        assert_eq!(out, json!({"items": [10, 11]}));
        let (n, out) = run(&doc, "items.*", RedactMode::Remove);
        assert_eq!(n, 3);
        assert_eq!(out, json!({"items": []}));
    }

    #[test]
    fn any_key_on_objects_and_arrays() {
        let doc = json!({"users": {"al": {"ssn": 1, "n": "a"}, "bo": {"ssn": 2}, "cy": 5}});
        let (n, out) = run(&doc, "users.*.ssn", RedactMode::Replace);
        assert_eq!(n, 2);
        assert_eq!(
            out,
            json!({"users": {"al": {"ssn": REDACTED, "n": "a"}, "bo": {"ssn": REDACTED}, "cy": 5}})
        );
        // `*` on an array matches every element.
        let doc = json!({"users": [{"ssn": 1}, {"ssn": 2}, {"x": 3}]});
        let (n, out) = run(&doc, "users.*.ssn", RedactMode::Remove);
        assert_eq!(n, 2);
        assert_eq!(out, json!({"users": [{}, {}, {"x": 3}]}));
        // `*` as the last segment replaces every value.
        let (n, out) = run(&json!({"a": 1, "b": [2]}), "*", RedactMode::Replace);
        assert_eq!(n, 2);
        assert_eq!(out, json!({"a": REDACTED, "b": REDACTED}));
        let (n, out) = run(&json!({"a": 1, "b": [2]}), "*", RedactMode::Remove);
        assert_eq!(n, 2);
        assert_eq!(out, json!({}));
        let (n, out) = run(
            &json!({"a": {"password": 1}, "b": {"password": 2}}),
            "*.password",
            RedactMode::Replace,
        );
        assert_eq!(n, 2);
        assert_eq!(
            out,
            json!({"a": {"password": REDACTED}, "b": {"password": REDACTED}})
        );
    }

    #[test]
    fn any_index_does_not_match_objects() {
        let doc = json!({"items": {"a": {"email": 1}}});
        let (n, out) = run(&doc, "items[*].email", RedactMode::Replace);
        assert_eq!(n, 0);
        assert_eq!(out, doc);
    }

    #[test]
    fn pointers_with_escapes_and_digit_tokens() {
        let doc = json!({"a/b": {"c~d": 1}, "arr": [{"b": 1}, {"b": 2}], "obj": {"0": {"b": 3}}});
        let (n, out) = run(&doc, "/a~1b/c~0d", RedactMode::Replace);
        assert_eq!(n, 1);
        assert_eq!(out["a/b"]["c~d"], REDACTED);
        // Digit token on an array: index.
        let (n, out) = run(&doc, "/arr/1/b", RedactMode::Replace);
        assert_eq!(n, 1);
        assert_eq!(out["arr"], json!([{"b": 1}, {"b": REDACTED}]));
        // Digit token on an object: literal key.
        let (n, out) = run(&doc, "/obj/0/b", RedactMode::Remove);
        assert_eq!(n, 1);
        assert_eq!(out["obj"], json!({"0": {}}));
        // Out of range on an array: nothing.
        let (n, out) = run(&doc, "/arr/2/b", RedactMode::Replace);
        assert_eq!((n, &out), (0, &doc));
        // Non-canonical digits never index an array.
        let (n, _) = run(&doc, "/arr/01/b", RedactMode::Replace);
        assert_eq!(n, 0);
        // `/` is the key "" at the top level.
        let (n, out) = run(&json!({"": 1, "x": 2}), "/", RedactMode::Replace);
        assert_eq!(n, 1);
        assert_eq!(out, json!({"": REDACTED, "x": 2}));
        // Dotted bare digits behave like pointer digit tokens.
        let (n, out) = run(&doc, "arr.0.b", RedactMode::Replace);
        assert_eq!(n, 1);
        assert_eq!(out["arr"][0]["b"], REDACTED);
        let (n, _) = run(&doc, "obj.0.b", RedactMode::Replace);
        assert_eq!(n, 1);
    }

    #[test]
    fn quoted_keys_select_literal_keys() {
        let doc =
            json!({"headers": {"x.api-key": "k", "x": {"api-key": "no"}}, "a": {"*": 1, "b": 2}});
        let (n, out) = run(&doc, r#"headers["x.api-key"]"#, RedactMode::Replace);
        assert_eq!(n, 1);
        assert_eq!(
            out["headers"],
            json!({"x.api-key": REDACTED, "x": {"api-key": "no"}})
        );
        let (n, out) = run(&doc, "a['*']", RedactMode::Remove);
        assert_eq!(n, 1);
        assert_eq!(out["a"], json!({"b": 2}));
        // Bracketed index does not match an object key "0".
        let (n, _) = run(&json!({"a": {"0": 1}}), "a[0]", RedactMode::Replace);
        assert_eq!(n, 0);
        // Quoted "0" does not index an array.
        let (n, _) = run(&json!({"a": [1]}), r#"a["0"]"#, RedactMode::Replace);
        assert_eq!(n, 0);
    }

    #[test]
    fn missing_paths_and_type_mismatches_change_nothing() {
        let doc = json!({"a": {"b": "str", "n": 3, "arr": [1, 2], "nul": null}, "s": "text"});
        for path in [
            "zzz",
            "a.zzz",
            "a.b.c",
            "a.b[0]",
            "a.b.*",
            "a.n.x",
            "a.nul.x",
            "a.arr[2]",
            "a.arr[5].x",
            "a.arr.x",
            "a[0]",
            "a[*]",
            "s[0]",
            "[0]",
            "[*]",
            "/a/arr/9",
            "/a/b/0",
            "a.arr[0].x",
            "a.arr.*.x",
        ] {
            for mode in [RedactMode::Replace, RedactMode::Remove] {
                let (n, out) = run(&doc, path, mode);
                assert_eq!(n, 0, "{path} {mode:?}");
                assert_eq!(out, doc, "{path} {mode:?}");
            }
        }
        // Scalar roots.
        for root in [json!(null), json!(1), json!("a"), json!(true)] {
            let (n, out) = run(&root, "a", RedactMode::Remove);
            assert_eq!((n, out), (0, root.clone()));
            let (n, out) = run(&root, "*", RedactMode::Replace);
            assert_eq!((n, out), (0, root));
        }
    }

    #[test]
    fn root_array_is_a_list_of_records() {
        let doc = json!([{"ssn": 1, "n": "a"}, {"ssn": 2}, {"n": "c"}, 5, [{"ssn": 9}]]);
        let (n, out) = run(&doc, "ssn", RedactMode::Replace);
        assert_eq!(n, 2);
        assert_eq!(
            out,
            json!([{"ssn": REDACTED, "n": "a"}, {"ssn": REDACTED}, {"n": "c"}, 5, [{"ssn": 9}]])
        );
        let (n, out) = run(&doc, "/ssn", RedactMode::Remove);
        assert_eq!(n, 2);
        assert_eq!(out, json!([{"n": "a"}, {}, {"n": "c"}, 5, [{"ssn": 9}]]));
        // Index-first paths address the root array itself.
        let (n, out) = run(&doc, "[0].ssn", RedactMode::Replace);
        assert_eq!(n, 1);
        assert_eq!(out[0]["ssn"], REDACTED);
        assert_eq!(out[1]["ssn"], 2);
        // A digit token in range is an index ...
        let (n, out) = run(&doc, "/1/ssn", RedactMode::Replace);
        assert_eq!(n, 1);
        assert_eq!(out[1]["ssn"], REDACTED);
        // ... and out of range it is a key applied to every record.
        let doc = json!([{"7": 1}, {"7": 2}]);
        let (n, out) = run(&doc, "/7", RedactMode::Replace);
        assert_eq!(n, 2);
        assert_eq!(out, json!([{"7": REDACTED}, {"7": REDACTED}]));
        // Only at the root: a nested array is not fanned out.
        let doc = json!({"list": [{"ssn": 1}]});
        let (n, _) = run(&doc, "list.ssn", RedactMode::Replace);
        assert_eq!(n, 0);
        // `*` already covers both shapes.
        let (n, out) = run(&json!([{"p": 1}, {"p": 2}]), "*.p", RedactMode::Replace);
        assert_eq!(n, 2);
        assert_eq!(out, json!([{"p": REDACTED}, {"p": REDACTED}]));
    }

    #[test]
    fn overlapping_paths_are_independent() {
        let mut doc = json!({"a": {"b": 1, "c": 2}});
        assert_eq!(redact(&mut doc, &p("a"), RedactMode::Replace), 1);
        assert_eq!(redact(&mut doc, &p("a.b"), RedactMode::Replace), 0);
        assert_eq!(redact(&mut doc, &p("a.*"), RedactMode::Replace), 0);
        assert_eq!(doc, json!({"a": REDACTED}));

        let mut doc = json!({"a": {"b": 1, "c": 2}});
        assert_eq!(redact(&mut doc, &p("a.b"), RedactMode::Replace), 1);
        assert_eq!(redact(&mut doc, &p("a"), RedactMode::Replace), 1);
        assert_eq!(doc, json!({"a": REDACTED}));

        let mut doc = json!({"a": {"b": 1, "c": 2}});
        assert_eq!(redact(&mut doc, &p("a.*"), RedactMode::Replace), 2);
        // The markers are strings now: nothing to descend into.
        assert_eq!(redact(&mut doc, &p("a.*.x"), RedactMode::Replace), 0);
        // Replacing again is idempotent and still counted.
        assert_eq!(redact(&mut doc, &p("a.*"), RedactMode::Replace), 2);
        assert_eq!(doc, json!({"a": {"b": REDACTED, "c": REDACTED}}));

        let mut doc = json!({"a": {"b": 1}});
        assert_eq!(redact(&mut doc, &p("a"), RedactMode::Remove), 1);
        assert_eq!(redact(&mut doc, &p("a.b"), RedactMode::Remove), 0);
        assert_eq!(doc, json!({}));
    }

    #[test]
    fn remove_preserves_key_order() {
        let mut doc: Value = serde_json::from_str(r#"{"z": 1, "y": 2, "x": 3, "w": 4}"#).unwrap();
        let before: Vec<String> = doc.as_object().unwrap().keys().cloned().collect();
        redact(&mut doc, &p("z"), RedactMode::Remove);
        let after: Vec<String> = doc.as_object().unwrap().keys().cloned().collect();
        let expected: Vec<String> = before.into_iter().filter(|k| k != "z").collect();
        assert_eq!(after, expected);
    }
}
