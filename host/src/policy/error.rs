//! Load errors that point at the exact place in the policy file.

use std::fmt;

use thiserror::Error;

/// One problem in a policy file: where it is, what the entry says, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub struct LoadError {
    /// The file as named by the caller (or `<string>` for in-memory policies).
    pub file: String,
    /// 1-based line and column; 0 when the problem concerns the whole file.
    pub line: u64,
    pub column: u64,
    /// The offending source line, quoted so the reader need not open the file.
    pub entry: Option<String>,
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )?;
        } else {
            write!(f, "{}: {}", self.file, self.message)?;
        }
        if let Some(entry) = &self.entry {
            write!(f, "\n    | {}", entry.trim_end())?;
        }
        Ok(())
    }
}

/// Every problem found in one file; a file loads only when this would be empty.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub struct LoadErrors(pub Vec<LoadError>);

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "error: {e}")?;
        }
        Ok(())
    }
}

impl LoadErrors {
    /// A single error about the file as a whole (unreadable, too large, not YAML, ...).
    pub fn whole_file(file: &str, message: impl Into<String>) -> Self {
        LoadErrors(vec![LoadError {
            file: file.to_string(),
            line: 0,
            column: 0,
            entry: None,
            message: message.into(),
        }])
    }
}

/// The text's lines as YAML counts them, and so as the parser numbers them: a line ends at
/// `\n`, `\r\n` or a lone `\r`. (`str::lines` does not end a line at a lone `\r`, so with
/// old Mac line endings, or a stray `\r`, errors quoted the wrong line or none.)
pub(super) fn yaml_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let Some(i) = rest.find(['\r', '\n']) else {
            lines.push(rest);
            break;
        };
        lines.push(&rest[..i]);
        let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
        rest = &rest[i + skip..];
    }
    lines
}

/// A source line fit for quoting in an error: at most 160 characters.
pub(super) fn quote_line(line: &str) -> String {
    const MAX: usize = 160;
    match line.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_string(),
    }
}
