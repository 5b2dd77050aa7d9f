//! `field_access`: redaction applied identically to structured content and JSON text items.

use std::sync::Arc;

use serde_json::Value;
use smallvec::SmallVec;

use crate::decision::{Effect, Redaction};
use crate::paths::{self, FieldPath, RedactMode};
use crate::result::{Content, ToolResult};

/// One path to withhold, with the rule that asked for it.
pub struct FieldRule<'a> {
    pub path: &'a FieldPath,
    pub rule: &'a Arc<str>,
    /// `Deny` (always redacted) or `Elicit` (redacted until approved).
    pub effect: Effect,
}

/// Redacts every path in `fields` from `result`. Structured content and every content item
/// whose text parses as JSON get the same treatment, so the two views never disagree. Returns
/// the paths that matched something (a missing path changes nothing and is not reported) and
/// notes for text items that are not JSON and were therefore left alone.
pub fn redact_result(
    result: &mut ToolResult,
    fields: &[FieldRule<'_>],
    mode: RedactMode,
    notes: &mut Vec<String>,
) -> Vec<Redaction> {
    let mut hits: SmallVec<[bool; 16]> = smallvec::smallvec![false; fields.len()];
    if let Some(doc) = result.structured.as_mut() {
        apply(doc, fields, mode, &mut hits);
    }
    for (i, item) in result.content.iter_mut().enumerate() {
        let Content::Text(text) = item else { continue };
        match serde_json::from_str::<Value>(text) {
            Ok(mut doc) => {
                if apply(&mut doc, fields, mode, &mut hits) {
                    let pretty = text.contains('\n');
                    let rewritten = if pretty {
                        serde_json::to_string_pretty(&doc)
                    } else {
                        serde_json::to_string(&doc)
                    };
                    // Serializing a Value cannot fail; if it ever did, withhold the item
                    // rather than leak the unredacted text.
                    *text = rewritten.unwrap_or_else(|_| paths::REDACTED.to_string());
                }
            }
            // JSON nested deeper than the parser reads (128 levels) is still JSON: a client
            // reads it, so it cannot be passed through unredacted. Withhold the whole item.
            // (Found by fuzzing: such text kept every value the paths select.)
            Err(e) if is_too_deep(&e) => {
                *text = paths::REDACTED.to_string();
                notes.push(format!(
                    "content[{i}] is JSON nested too deeply to redact by path; field_access withheld it"
                ));
            }
            Err(_) => notes.push(format!(
                "content[{i}] is not JSON text; field_access left it unchanged"
            )),
        }
    }
    fields
        .iter()
        .zip(hits)
        .filter(|(_, hit)| *hit)
        .map(|(f, _)| Redaction {
            path: f.path.shared_text().clone(),
            rule: f.rule.clone(),
            effect: f.effect,
        })
        .collect()
}

/// Whether serde_json gave up because of its recursion limit (the text may be valid JSON).
fn is_too_deep(e: &serde_json::Error) -> bool {
    e.is_syntax() && e.to_string().starts_with("recursion limit exceeded")
}

fn apply(doc: &mut Value, fields: &[FieldRule<'_>], mode: RedactMode, hits: &mut [bool]) -> bool {
    let mut changed = false;
    for (f, hit) in fields.iter().zip(hits.iter_mut()) {
        if paths::redact(doc, f.path, mode) > 0 {
            *hit = true;
            changed = true;
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `{"a":{"a":...{"password":"hunter2"}...}}`, `depth` objects deep.
    fn nested(depth: usize) -> String {
        let mut s = "{\"a\":".repeat(depth - 1);
        s.push_str("{\"password\":\"hunter2\"}");
        s.push_str(&"}".repeat(depth - 1));
        s
    }

    #[test]
    fn json_text_too_deep_to_parse_is_withheld() {
        let path = FieldPath::parse("*.password").unwrap();
        let rule: Arc<str> = Arc::from("r");
        let fields = [FieldRule {
            path: &path,
            rule: &rule,
            effect: Effect::Deny,
        }];
        for depth in [100, 200] {
            let text = nested(depth);
            let mut result = ToolResult {
                content: vec![Content::Text(text.clone())],
                structured: None,
                is_error: false,
            };
            let mut notes = Vec::new();
            redact_result(&mut result, &fields, RedactMode::Replace, &mut notes);
            let Content::Text(out) = &result.content[0] else {
                panic!("a text item stays text")
            };
            // `*.password` selects nothing at depth 100 (the password is deeper than two
            // levels), so that text is unchanged; at 200 the parser gives up and the item must
            // be withheld, not passed through.
            if depth == 100 {
                assert_eq!(out, &text);
                assert!(notes.is_empty(), "{notes:?}");
            } else {
                assert!(!out.contains("hunter2"), "deep JSON text passed through");
                assert_eq!(out, paths::REDACTED);
                assert!(notes[0].contains("nested too deeply"), "{notes:?}");
            }
        }
    }

    #[test]
    fn text_that_is_not_json_is_left_alone() {
        let path = FieldPath::parse("password").unwrap();
        let rule: Arc<str> = Arc::from("r");
        let fields = [FieldRule {
            path: &path,
            rule: &rule,
            effect: Effect::Deny,
        }];
        for text in [
            "password: hunter2",
            "{\"password\": \"hunter2\"",
            "[[[[",
            "",
        ] {
            let mut result = ToolResult {
                content: vec![Content::Text(text.to_string())],
                structured: None,
                is_error: false,
            };
            let mut notes = Vec::new();
            redact_result(&mut result, &fields, RedactMode::Replace, &mut notes);
            assert_eq!(result.content, vec![Content::Text(text.to_string())]);
            assert!(notes[0].contains("is not JSON text"), "{notes:?}");
        }
    }
}
