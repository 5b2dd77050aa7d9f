//! `portcullis check`: validate a policy file and summarize what it does.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::decision::{Effect, Phase};
use crate::engine::Snapshot;
use crate::policy::ToolPattern;
use crate::rules::PolicyKind;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The policy file.
    #[arg(long, short)]
    config: PathBuf,
}

pub fn run(args: &Args) -> u8 {
    let snapshot = match crate::engine::load_snapshot(&args.config, None) {
        Ok(s) => s,
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!(
                "{}: {} error(s); the policy was not loaded",
                args.config.display(),
                errors.0.len()
            );
            return super::EXIT_BAD_INPUT;
        }
    };
    print!("{}", summary(&snapshot));
    0
}

/// The human summary printed by `check`; also shows warnings about likely mistakes.
pub fn summary(s: &Snapshot) -> String {
    let config = s.config();
    let mut out = format!("{}: OK\n", s.source());
    out += &format!("  default_effect: {}\n", config.default_effect);
    out += &format!("  elicit_expiry: {}s\n", config.elicit_expiry_secs);
    out += &format!(
        "  redaction: {}\n",
        match config.redaction {
            crate::paths::RedactMode::Replace => "replace",
            crate::paths::RedactMode::Remove => "remove",
        }
    );
    let count = |p: Phase| s.rules().iter().filter(|r| r.phase == p).count();
    out += &format!(
        "  rules: {} (before {}, after {})\n",
        s.rules().len(),
        count(Phase::Before),
        count(Phase::After)
    );
    let mut by: BTreeMap<(&str, &str, &str), usize> = BTreeMap::new();
    for r in s.rules() {
        *by.entry((r.phase.as_str(), &r.policy, r.action.as_str()))
            .or_default() += 1;
    }
    for ((phase, policy, action), n) in by {
        out += &format!("    {phase:<7} {policy:<15} {action:<7} {n}\n");
    }
    for r in s.rules() {
        if let PolicyKind::Pdp(spec) = &r.kind {
            let cache = if spec.cache_ttl.is_zero() {
                "no cache".to_string()
            } else {
                format!("answers cached {} ms", spec.cache_ttl.as_millis())
            };
            out += &format!(
                "  pdp: rule {} asks {} ({}, timeout {} ms, {cache}; a refusal does {}, an error denies)\n",
                r.id,
                spec.url,
                spec.mode.as_str(),
                spec.timeout.as_millis(),
                r.action
            );
        }
    }
    for w in warnings(s) {
        out += &format!("  warning: {w}\n");
    }
    out
}

/// Tools that have after-phase rules but can never be called under a default deny: a common
/// surprise for files migrated from the seed, which allowed unmentioned tools.
fn warnings(s: &Snapshot) -> Vec<String> {
    if s.config().default_effect != Effect::Deny {
        return Vec::new();
    }
    let after_tools: BTreeSet<&str> = s
        .rules()
        .iter()
        .filter(|r| r.phase == Phase::After)
        .flat_map(|r| r.tools.iter())
        .filter_map(|t| match t {
            ToolPattern::Exact(name) => Some(name.as_str()),
            ToolPattern::Glob(_) => None,
        })
        .collect();
    let before_rules: Vec<_> = s
        .rules()
        .iter()
        .filter(|r| {
            r.phase == Phase::Before
                && (r.action != Effect::Deny || matches!(r.kind, PolicyKind::Pdp(_)))
                && !r.is_expired(crate::request::now_unix_ms())
        })
        .collect();
    after_tools
        .into_iter()
        .filter(|tool| {
            !before_rules.iter().any(|r| {
                r.tools.iter().any(|t| t.matches(tool))
                    && matches!(
                        r.kind,
                        PolicyKind::ToolAccess | PolicyKind::AllowAttempts(_) | PolicyKind::Pdp(_)
                    )
            })
        })
        .map(|tool| {
            format!(
                "tool {tool:?} has after-phase rules but no before-phase rule allows or elicits it; with default_effect deny it can never be called"
            )
        })
        .collect()
}
