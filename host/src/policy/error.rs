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

/// A source line fit for quoting in an error: at most 160 characters.
pub(super) fn quote_line(line: &str) -> String {
    const MAX: usize = 160;
    match line.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_string(),
    }
}
