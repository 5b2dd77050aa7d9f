//! Between rmcp's result types and the engine's [`ToolResult`]. Everything the engine does not
//! look at (`_meta`, `resultType`, non-text content, resource metadata) is carried over as is.

use rmcp::model::{CallToolResult, ContentBlock, ReadResourceResult, ResourceContents};
use serde_json::Value;

use crate::result::{Content, ToolResult};

/// The engine's view of a tool result. Text items are copied as text; only other kinds (rare,
/// and never redacted by `field_access`) go through JSON.
pub fn to_tool_result(result: &CallToolResult) -> ToolResult {
    let content = result
        .content
        .iter()
        .map(|c| match c {
            ContentBlock::Text(t) => Content::Text(t.text.clone()),
            other => Content::Other(serde_json::to_value(other).unwrap_or(Value::Null)),
        })
        .collect();
    ToolResult {
        content,
        structured: result.structured_content.clone(),
        is_error: result.is_error.unwrap_or(false),
    }
}

/// The rmcp result for the engine's (possibly redacted) `out`, keeping `original`'s metadata
/// and the annotations of its text items.
pub fn from_tool_result(out: ToolResult, original: &CallToolResult) -> CallToolResult {
    let same_shape = out.content.len() == original.content.len();
    let content = out
        .content
        .into_iter()
        .enumerate()
        .map(|(i, c)| match c {
            Content::Text(text) => match original.content.get(i).filter(|_| same_shape) {
                Some(orig) => with_text(orig, text),
                None => ContentBlock::text(text),
            },
            Content::Other(v) => serde_json::from_value(v)
                .unwrap_or_else(|_| ContentBlock::text("[content withheld]")),
        })
        .collect();
    let mut result = CallToolResult::success(content);
    result.is_error = if out.is_error {
        Some(true)
    } else {
        original.is_error
    };
    result.structured_content = out.structured;
    result.meta = original.meta.clone();
    result.result_type = original.result_type.clone();
    result
}

/// A text block like `orig` (annotations, `_meta`) with new text.
fn with_text(orig: &ContentBlock, text: String) -> ContentBlock {
    match orig {
        ContentBlock::Text(t) => {
            let mut t = t.clone();
            t.text = text;
            ContentBlock::Text(t)
        }
        _ => ContentBlock::text(text),
    }
}

/// The engine's view of a resource read: each text content as a text item.
pub fn resource_to_tool_result(result: &ReadResourceResult) -> ToolResult {
    ToolResult {
        content: result
            .contents
            .iter()
            .map(|c| match c {
                ResourceContents::TextResourceContents { text, .. } => Content::Text(text.clone()),
                other => Content::Other(serde_json::to_value(other).unwrap_or(Value::Null)),
            })
            .collect(),
        structured: None,
        is_error: false,
    }
}

/// Writes redacted texts back into the resource contents, in order.
pub fn resource_from_tool_result(
    out: ToolResult,
    mut result: ReadResourceResult,
) -> ReadResourceResult {
    for (c, o) in result.contents.iter_mut().zip(out.content) {
        if let (ResourceContents::TextResourceContents { text, .. }, Content::Text(new)) = (c, o) {
            *text = new;
        }
    }
    result
}
