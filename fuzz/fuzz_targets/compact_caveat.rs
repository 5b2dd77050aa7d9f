//! The compact caveat grammar `PHASE:TOOL:POLICY:ACTION[:PARAM...][:time<YYYYMMDDTHHMMSSZ]`
//! on arbitrary text, and the two compilers built on it (policy rules, token caveats).
//!
//! Oracles:
//! - `compact::parse` never panics; what it accepts has a non-empty tool and policy, no `:`
//!   inside any part, no empty parameter, and no parameter that looks like an expiry;
//! - printing an accepted caveat back in the grammar and parsing it again gives the same
//!   caveat (the expiry printed from its Unix time), so nothing is lost or misread;
//! - `Rule::from_compact` and `token::caveat::parse` never panic, accept only what
//!   `compact::parse` accepts, and keep the caveat's parts (phase, action, params, expiry);
//! - `parse_compact_time` agrees with printing: a time it accepts prints back to a stamp
//!   that parses to the same instant.

#![no_main]

use std::sync::Arc;

use chrono::DateTime;
use libfuzzer_sys::fuzz_target;
use portcullis::Origin;
use portcullis::decision::{Effect, Phase};
use portcullis::policy::compact::{self, CompactCaveat};
use portcullis::policy::{NoEnforcers, Rule};
use portcullis::token::{Caveat, UncheckedEnforcers, caveat};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let parsed = compact::parse(&text);

    if let Ok(c) = &parsed {
        check_parts(c);
        let printed = print(c);
        let again = compact::parse(&printed)
            .unwrap_or_else(|e| panic!("{printed:?} (printed from {text:?}) fails: {e}"));
        assert_eq!(&again, c, "{text:?} printed as {printed:?}");
    }

    // The policy-file compiler.
    let rule = Rule::from_compact(&text, Arc::from("r"), Origin::Server);
    if let Ok(r) = &rule {
        let c = parsed
            .as_ref()
            .expect("a rule compiled from a caveat that does not parse");
        assert_eq!(r.phase, c.phase);
        assert_eq!(r.action, c.action);
        assert_eq!(r.params, c.params);
        assert_eq!(r.expires_unix_ms, c.expires_unix_ms);
        assert_eq!(&*r.text, &*text);
        assert_eq!(r.tools.len(), 1);
        assert_eq!(r.tools[0].as_str(), c.tool);
    }

    // The token compiler: with the enforcers a client cannot know (any name that is not a
    // typo of a built-in), and with none.
    for catalog in [
        &UncheckedEnforcers as &dyn portcullis::policy::EnforcerCatalog,
        &NoEnforcers,
    ] {
        if let Ok(Caveat::Policy(r)) = caveat::parse(&text, catalog) {
            let c = parsed
                .as_ref()
                .expect("a policy caveat that does not parse");
            assert_eq!(r.phase, c.phase);
            assert_eq!(r.action, c.action);
            assert_eq!(r.params, c.params);
            assert_eq!(r.origin, Origin::Token);
        }
    }
    if rule.is_ok() {
        // A rule valid in a policy file is valid in a token too.
        assert!(
            matches!(caveat::parse(&text, &NoEnforcers), Ok(Caveat::Policy(_))),
            "{text:?} compiles as a policy rule but not as a token caveat"
        );
    }

    // The expiry stamp alone.
    let stamp = text.strip_prefix("time<").unwrap_or(&text);
    if let Some(ms) = compact::parse_compact_time(stamp) {
        let printed = print_time(ms);
        assert_eq!(
            compact::parse_compact_time(&printed),
            Some(ms),
            "{stamp:?} -> {ms} -> {printed:?}"
        );
    }
});

fn check_parts(c: &CompactCaveat) {
    assert!(!c.tool.is_empty() && !c.policy.is_empty());
    for part in [&c.tool, &c.policy].into_iter().chain(&c.params) {
        assert!(!part.contains(':'), "part {part:?} holds a ':'");
    }
    for p in &c.params {
        assert!(!p.is_empty(), "empty parameter");
        assert!(!p.starts_with("time<"), "expiry {p:?} kept as a parameter");
    }
}

fn print(c: &CompactCaveat) -> String {
    let phase = match c.phase {
        Phase::Before => "bf",
        Phase::After => "af",
    };
    let action = match c.action {
        Effect::Allow => "allow",
        Effect::Deny => "deny",
        Effect::Elicit => "elicit",
    };
    let mut out = format!("{phase}:{}:{}:{action}", c.tool, c.policy);
    for p in &c.params {
        out.push(':');
        out.push_str(p);
    }
    if let Some(ms) = c.expires_unix_ms {
        out.push_str(":time<");
        out.push_str(&print_time(ms));
    }
    out
}

fn print_time(ms: u64) -> String {
    let t = DateTime::from_timestamp_millis(i64::try_from(ms).expect("expiry fits i64"))
        .expect("expiry in chrono's range");
    t.format("%Y%m%dT%H%M%SZ").to_string()
}
