//! The check the host applies to every verdict an enforcer returns, on arbitrary verdicts.
//!
//! Input: one byte picks the variant (bits 0-1: allow, deny, elicit, replace) and the phase
//! (bit 2: before, after); the rest is the payload (allow: caveats, one per line).
//!
//! Oracles, exact in both directions:
//! - allow passes iff it has at most 16 caveats and every one is a caveat the host can then
//!   append to the caller's token (what `VerifiedToken::with_caveats` accepts), so a verdict
//!   that passes never fails later, when the token is refreshed;
//! - deny and elicit pass iff the message is not blank and at most 4 KiB, unchanged;
//! - replace passes iff the phase is after, the text is at most 4 MiB and is a JSON object with
//!   a `content` array, and then the engine can read it as a tool result.

#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::Phase;
use portcullis::result::ToolResult;
use portcullis::token::{Caveat, UncheckedEnforcers, caveat};
use portcullis::wasm::{Verdict, check_verdict, guest};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Some((&tag, rest)) = data.split_first() else {
        return;
    };
    let phase = if tag & 4 == 0 {
        Phase::Before
    } else {
        Phase::After
    };
    let text = String::from_utf8_lossy(rest).into_owned();
    match tag & 3 {
        0 => {
            let caveats: Vec<String> = if text.is_empty() {
                Vec::new()
            } else {
                text.split('\n').map(str::to_string).collect()
            };
            let applicable = caveats.len() <= 16
                && caveats.iter().all(|c| {
                    matches!(caveat::parse(c, &UncheckedEnforcers), Ok(Caveat::Policy(_)))
                });
            match check_verdict(guest::Verdict::Allow(caveats.clone()), phase) {
                Ok(Verdict::Allow(kept)) => {
                    assert_eq!(kept, caveats);
                    assert!(
                        applicable,
                        "allow passed with caveats the host cannot apply: {caveats:?}"
                    );
                }
                Ok(other) => panic!("allow became {other:?}"),
                Err(e) => assert!(
                    !applicable,
                    "allow refused ({e}) with applicable caveats {caveats:?}"
                ),
            }
        }
        1 | 2 => {
            let valid = !text.trim().is_empty() && text.len() <= 4096;
            let (v, deny) = if tag & 3 == 1 {
                (guest::Verdict::Deny(text.clone()), true)
            } else {
                (guest::Verdict::Elicit(text.clone()), false)
            };
            match check_verdict(v, phase) {
                Ok(Verdict::Deny(m)) if deny => {
                    assert_eq!(m, text);
                    assert!(valid, "deny passed with {text:?}");
                }
                Ok(Verdict::Elicit(m)) if !deny => {
                    assert_eq!(m, text);
                    assert!(valid, "elicit passed with {text:?}");
                }
                Ok(other) => panic!("verdict changed kind: {other:?}"),
                Err(e) => assert!(!valid, "refused ({e}) a valid message {text:?}"),
            }
        }
        _ => {
            let value = serde_json::from_str::<Value>(&text).ok();
            let valid = phase == Phase::After
                && text.len() <= 4 << 20
                && value
                    .as_ref()
                    .is_some_and(|v| v.get("content").is_some_and(Value::is_array));
            match check_verdict(guest::Verdict::Replace(text.clone()), phase) {
                Ok(Verdict::Replace(v)) => {
                    assert!(valid, "replace passed with {text:?} in {phase:?}");
                    assert_eq!(Some(&v), value.as_ref());
                    assert!(
                        ToolResult::from_mcp_json(&v).is_some(),
                        "a replacement that passed is not a tool result: {v}"
                    );
                }
                Ok(other) => panic!("replace became {other:?}"),
                Err(e) => assert!(!valid, "refused ({e}) a valid replacement {text:?}"),
            }
        }
    }
});
