//! A tool result in the shape MCP gives it: content items plus optional structured content.

use serde_json::{Map, Value};

/// One content item. Only text can carry JSON worth redacting; other kinds pass through.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    Text(String),
    /// Images, audio, resource links, ...: kept exactly as received.
    Other(Value),
}

/// What a tool returned, as the after phase sees it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ToolResult {
    pub content: Vec<Content>,
    /// MCP `structuredContent`, validated by clients against the tool's `outputSchema`.
    pub structured: Option<Value>,
    pub is_error: bool,
}

impl ToolResult {
    /// The result a typical JSON-returning tool produces: the value as structured content and
    /// its serialization as the single text item, so both views exist as they would over MCP.
    pub fn from_json_value(value: Value) -> Self {
        let text = value.to_string();
        ToolResult {
            content: vec![Content::Text(text)],
            structured: Some(value),
            is_error: false,
        }
    }

    /// An error result carrying only a message: what a caller gets in place of a withheld
    /// result.
    pub fn error(message: impl Into<String>) -> Self {
        ToolResult {
            content: vec![Content::Text(message.into())],
            structured: None,
            is_error: true,
        }
    }

    /// Reads an MCP `CallToolResult` JSON object (`content`, `structuredContent`, `isError`).
    /// Returns `None` when `value` does not have that shape.
    pub fn from_mcp_json(value: &Value) -> Option<Self> {
        let obj = value.as_object()?;
        let items = obj.get("content")?.as_array()?;
        let content = items
            .iter()
            .map(|item| match (item.get("type"), item.get("text")) {
                (Some(Value::String(t)), Some(Value::String(text))) if t == "text" => {
                    Content::Text(text.clone())
                }
                _ => Content::Other(item.clone()),
            })
            .collect();
        Some(ToolResult {
            content,
            structured: obj.get("structuredContent").cloned(),
            is_error: obj.get("isError").and_then(Value::as_bool).unwrap_or(false),
        })
    }

    /// Writes the result back as an MCP `CallToolResult` JSON object.
    pub fn to_mcp_json(&self) -> Value {
        let content = self
            .content
            .iter()
            .map(|c| match c {
                Content::Text(t) => {
                    let mut m = Map::new();
                    m.insert("type".into(), Value::String("text".into()));
                    m.insert("text".into(), Value::String(t.clone()));
                    Value::Object(m)
                }
                Content::Other(v) => v.clone(),
            })
            .collect();
        let mut obj = Map::new();
        obj.insert("content".into(), Value::Array(content));
        if let Some(s) = &self.structured {
            obj.insert("structuredContent".into(), s.clone());
        }
        if self.is_error {
            obj.insert("isError".into(), Value::Bool(true));
        }
        Value::Object(obj)
    }
}
