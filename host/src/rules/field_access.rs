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
