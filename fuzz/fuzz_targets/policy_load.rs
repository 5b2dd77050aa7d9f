//! The policy loader on arbitrary text: it returns a policy or a list of errors, never panics,
//! stays fast, and what it accepts the engine can index and evaluate.
//!
//! Oracles:
//! - `load_str` returns `Ok` or a non-empty `LoadErrors` whose entries point inside the text
//!   (line within the file as YAML counts lines, the quoted entry being that line, the
//!   file named as given) and whose rendering is bounded by the
//!   input's size (no error message that grows faster than the text, as an alias bomb would);
//! - one load takes under 2 s (a sanity bound far above the microseconds a policy takes:
//!   libFuzzer's own `-timeout` catches hangs, this catches super-linear blowups early);
//! - a policy that loads always indexes (`Snapshot::new`), and evaluating a call against it
//!   (before and after phase, a tool each rule names) never panics.

#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use portcullis::policy::{self, LoadErrors, PolicySet};
use portcullis::{Engine, Request, Snapshot, Subject, ToolResult};
use serde_json::json;

const SOURCE: &str = "fuzz.yaml";
const MAX_LOAD: Duration = Duration::from_secs(2);

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let started = Instant::now();
    let loaded = policy::load_str(&text, SOURCE);
    let took = started.elapsed();
    assert!(
        took < MAX_LOAD,
        "loading {} bytes took {took:?}",
        text.len()
    );
    match loaded {
        Ok(policy) => evaluate(policy),
        Err(errors) => check_errors(&text, &errors),
    }
});

fn check_errors(text: &str, errors: &LoadErrors) {
    assert!(!errors.0.is_empty(), "an error result without errors");
    // Lines as YAML counts them (a line ends at `\n`, `\r\n` or a lone `\r`), written
    // independently of the loader; an error may also sit just past the last line.
    let lines: Vec<&str> = text
        .split("\r\n")
        .flat_map(|l| l.split(['\r', '\n']))
        .collect();
    for e in &errors.0 {
        assert_eq!(e.file, SOURCE);
        assert!(
            e.line <= lines.len() as u64,
            "error at line {} of a {}-line text: {e}",
            e.line,
            lines.len()
        );
        if let Some(entry) = &e.entry {
            // The quote is the line the error names, cut at 160 characters (plus an ellipsis).
            assert!(
                entry.chars().count() <= 161,
                "quoted line too long: {entry:?}"
            );
            let line = usize::try_from(e.line)
                .expect("fits")
                .checked_sub(1)
                .map(|i| lines[i]);
            let cut = entry
                .strip_suffix('…')
                .filter(|_| entry.chars().count() == 161);
            assert!(
                line.is_some_and(|l| l == entry || cut.is_some_and(|c| l.starts_with(c))),
                "error at line {} quotes {entry:?}, not that line {line:?}",
                e.line
            );
        }
    }
    let rendered = errors.to_string();
    let bound = 64 * 1024 + 64 * text.len();
    assert!(
        rendered.len() <= bound,
        "{} bytes of errors for {} bytes of policy",
        rendered.len(),
        text.len()
    );
}

fn evaluate(policy: PolicySet) {
    let mut tools: Vec<String> = policy
        .rules
        .iter()
        .flat_map(|r| r.tools.iter().map(|t| t.as_str().to_string()))
        .take(4)
        .collect();
    tools.push("some_tool".into());
    let snapshot = match Snapshot::new(policy) {
        Ok(s) => s,
        Err(e) => panic!("a policy that loaded cannot be indexed: {e}"),
    };
    let engine = Engine::new(snapshot);
    let subject = Subject::user("ann").with_role("analyst");
    for tool in tools {
        let req = Request::new(subject.clone(), tool, json!({"limit": 5, "q": "x"}))
            .at(1_800_000_000_000);
        let _ = engine.before(&req);
        let result = ToolResult::from_json_value(json!({
            "a": {"b": [1, {"c": "secret"}]},
            "user_pii": {"ssn": "123"},
            "items": [{"email": "e"}]
        }));
        let _ = engine.after(&req, result);
    }
}
