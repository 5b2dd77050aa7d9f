//! Tool names and globs in rules.

use globset::{Glob, GlobBuilder, GlobMatcher};

/// A tool name or a glob over tool names (`*`, `?`, `[...]`, `{a,b}`).
#[derive(Debug, Clone)]
pub enum ToolPattern {
    Exact(String),
    Glob(GlobMatcher),
}

impl ToolPattern {
    /// Parses a tool name; text with glob metacharacters becomes a glob.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("empty tool name: expected a tool name or glob".into());
        }
        if !text.contains(['*', '?', '[', ']', '{', '}', '\\']) {
            return Ok(ToolPattern::Exact(text.to_string()));
        }
        GlobBuilder::new(text)
            .literal_separator(false)
            .backslash_escape(true)
            .build()
            .map(|g: Glob| ToolPattern::Glob(g.compile_matcher()))
            .map_err(|e| format!("bad tool glob {text:?}: {}", e.kind()))
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        match self {
            ToolPattern::Exact(s) => s,
            ToolPattern::Glob(g) => g.glob().glob(),
        }
    }

    /// True when the pattern covers `tool`.
    pub fn matches(&self, tool: &str) -> bool {
        match self {
            ToolPattern::Exact(s) => s == tool,
            ToolPattern::Glob(g) => g.is_match(tool),
        }
    }
}
