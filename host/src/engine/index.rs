//! Per-phase rule index: exact tool names in a hash map, `prefix*` globs as prefixes, other
//! globs in one `GlobSet`, so the cost of a call does not grow with rules about other tools.
//!
//! The map uses foldhash rather than SipHash: its keys are fixed at load time by the policy
//! author, so attacker-chosen tool names can only look up, never cause collision chains.

use std::cell::RefCell;
use std::collections::HashMap;

use foldhash::fast::RandomState;

use globset::{GlobSet, GlobSetBuilder};

use super::Candidates;
use crate::decision::Phase;
use crate::policy::{Rule, ToolPattern};

#[derive(Debug)]
pub(super) struct PhaseIndex {
    exact: HashMap<String, Vec<u32>, RandomState>,
    /// Globs of the form `literal*` (the common `get_*`), matched with `starts_with`.
    prefixes: Vec<(String, u32)>,
    globs: GlobSet,
    /// For each glob in `globs`, the rule it belongs to.
    glob_rules: Vec<u32>,
}

thread_local! {
    /// Reused buffer for glob matches, so matching allocates nothing per call.
    static GLOB_HITS: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

impl PhaseIndex {
    /// Fails only if the glob set as a whole exceeds the matcher's size limits (thousands of
    /// complex globs); the load must then fail rather than silently drop rules.
    pub(super) fn build(rules: &[Rule], phase: Phase) -> Result<Self, globset::Error> {
        let mut exact: HashMap<String, Vec<u32>, RandomState> = HashMap::default();
        let mut prefixes = Vec::new();
        let mut builder = GlobSetBuilder::new();
        let mut glob_rules = Vec::new();
        for (i, rule) in rules.iter().enumerate().filter(|(_, r)| r.phase == phase) {
            let i = i as u32;
            for tool in &rule.tools {
                match tool {
                    ToolPattern::Exact(name) => exact.entry(name.clone()).or_default().push(i),
                    ToolPattern::Glob(m) => match literal_prefix(m.glob().glob()) {
                        Some(prefix) => prefixes.push((prefix.to_string(), i)),
                        None => {
                            builder.add(m.glob().clone());
                            glob_rules.push(i);
                        }
                    },
                }
            }
        }
        let globs = builder.build()?;
        Ok(PhaseIndex {
            exact,
            prefixes,
            globs,
            glob_rules,
        })
    }

    /// Positions of rules whose tool patterns cover `tool`, in file order, without duplicates.
    pub(super) fn candidates(&self, tool: &str, out: &mut Candidates) {
        if let Some(rules) = self.exact.get(tool) {
            out.extend_from_slice(rules);
        }
        out.extend(
            self.prefixes
                .iter()
                .filter(|(p, _)| tool.starts_with(p.as_str()))
                .map(|&(_, i)| i),
        );
        if !self.glob_rules.is_empty() {
            GLOB_HITS.with_borrow_mut(|hits| {
                self.globs.matches_into(tool, hits);
                out.extend(hits.iter().map(|&g| self.glob_rules[g]));
            });
        }
        if out.len() > 1 {
            out.sort_unstable();
            out.dedup();
        }
    }
}

/// `Some("get_")` for the glob `get_*`: a literal followed by one trailing `*`.
fn literal_prefix(glob: &str) -> Option<&str> {
    let prefix = glob.strip_suffix('*')?;
    (!prefix.contains(['*', '?', '[', ']', '{', '}', '\\'])).then_some(prefix)
}

#[cfg(test)]
mod tests {
    use super::literal_prefix;

    #[test]
    fn only_plain_trailing_star_globs_are_prefixes() {
        assert_eq!(literal_prefix("get_*"), Some("get_"));
        assert_eq!(literal_prefix("*"), Some(""));
        assert_eq!(literal_prefix("get_**"), None);
        assert_eq!(literal_prefix("g?t_*"), None);
        assert_eq!(literal_prefix("[gs]et_*"), None);
        assert_eq!(literal_prefix("a\\*"), None);
        assert_eq!(literal_prefix("get_x"), None);
    }
}
