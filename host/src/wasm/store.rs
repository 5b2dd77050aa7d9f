//! Per-evaluation store state: memory cap, log budget, and the enforcer's name for logs.

use std::sync::Arc;

use wasmtime::ResourceLimiter;

use super::bindings::host::{self, Level};

/// Longest message an enforcer may log; longer ones are cut, so a guest cannot flood logs.
pub const MAX_LOG_MESSAGE: usize = 4096;
/// Log calls allowed per evaluation.
const MAX_LOG_CALLS: u32 = 64;

/// Data every store carries: created fresh for each evaluation and dropped after it.
pub struct StoreState {
    pub name: Arc<str>,
    memory_limit: usize,
    table_limit: usize,
    /// Set when the guest asked for more memory than its cap, so a trap can be reported as
    /// "out of memory" rather than as a generic trap.
    pub hit_memory_limit: bool,
    logs_left: u32,
}

impl StoreState {
    pub fn new(name: Arc<str>, memory_limit: usize) -> Self {
        StoreState {
            name,
            memory_limit,
            table_limit: 1 << 20,
            hit_memory_limit: false,
            logs_left: MAX_LOG_CALLS,
        }
    }
}

impl ResourceLimiter for StoreState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            self.hit_memory_limit = true;
            // An error traps at the grow instruction: a clear failure instead of a guest
            // that limps on after memory.grow returned -1.
            return Err(wasmtime::format_err!(
                "memory limit of {} MiB exceeded (asked for {} MiB)",
                self.memory_limit >> 20,
                desired.div_ceil(1 << 20)
            ));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.table_limit)
    }
}

impl host::Host for StoreState {
    fn log(&mut self, level: Level, message: String) {
        if self.logs_left == 0 {
            return;
        }
        self.logs_left -= 1;
        let mut end = message.len().min(MAX_LOG_MESSAGE);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let message = &message[..end];
        let name = &*self.name;
        match level {
            Level::Debug => {
                tracing::debug!(target: "portcullis::enforcer", enforcer = name, "{message}")
            }
            Level::Info => {
                tracing::info!(target: "portcullis::enforcer", enforcer = name, "{message}")
            }
            Level::Warn => {
                tracing::warn!(target: "portcullis::enforcer", enforcer = name, "{message}")
            }
            Level::Error => {
                tracing::error!(target: "portcullis::enforcer", enforcer = name, "{message}")
            }
        }
    }
}
