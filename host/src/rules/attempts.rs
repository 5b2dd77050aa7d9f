//! Per-process call budgets for `allow_attempts`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Counts allowed calls per (rule, subject, tool). Lives in the engine, not the snapshot, so
/// budgets survive a policy reload: an edited file must not hand out fresh attempts.
#[derive(Debug, Default)]
pub struct Attempts {
    used: Mutex<UsedByRule>,
}

/// rule id -> user -> tool -> calls used. Nested so lookups borrow `&str` and allocate only
/// the first time a (rule, user, tool) is seen.
type UsedByRule = HashMap<Arc<str>, HashMap<String, HashMap<String, u64>>>;

/// One budget to check and charge: rule id, limit.
pub struct Budget<'a> {
    pub rule: &'a Arc<str>,
    pub limit: u64,
}

impl Attempts {
    /// Charges one call against every budget, all or nothing. Returns the first exhausted
    /// budget (rule id, limit) without charging any, so a denied call costs no attempts.
    pub fn charge(
        &self,
        user: &str,
        tool: &str,
        budgets: &[Budget<'_>],
    ) -> Result<(), (Arc<str>, u64)> {
        let mut used = self.lock();
        for b in budgets {
            let count = used
                .get(b.rule)
                .and_then(|u| u.get(user))
                .and_then(|t| t.get(tool))
                .copied()
                .unwrap_or(0);
            if count >= b.limit {
                return Err((b.rule.clone(), b.limit));
            }
        }
        for b in budgets {
            let per_user = used.entry(b.rule.clone()).or_default();
            let per_tool = match per_user.get_mut(user) {
                Some(t) => t,
                None => per_user.entry(user.to_string()).or_default(),
            };
            match per_tool.get_mut(tool) {
                Some(n) => *n += 1,
                None => {
                    per_tool.insert(tool.to_string(), 1);
                }
            }
        }
        Ok(())
    }

    /// Calls used so far, for traces and tests.
    pub fn used(&self, rule: &str, user: &str, tool: &str) -> u64 {
        self.lock()
            .get(rule)
            .and_then(|u| u.get(user))
            .and_then(|t| t.get(tool))
            .copied()
            .unwrap_or(0)
    }

    fn lock(&self) -> MutexGuard<'_, UsedByRule> {
        // Counters stay consistent even if a holder panicked: every update is a single add.
        self.used.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
