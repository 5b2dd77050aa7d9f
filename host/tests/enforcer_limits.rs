//! Misbehaving enforcers, written in WAT, must be stopped within twice their timeout and the
//! engine must keep serving. Alone in its own test binary so that no other test competes for
//! the CPU while deadlines are measured.

mod common;

use std::time::{Duration, Instant};

use common::{Body, call, enforcer_module, evil, healthy};
use portcullis::{Effect, Engine};

const TIMEOUT_MS: u64 = 100;

fn load(files: &[(&str, Vec<u8>)], rules: &str) -> Result<(tempfile::TempDir, Engine), String> {
    common::load(files, rules, TIMEOUT_MS)
}

#[test]
fn misbehaving_enforcers_deny_fast_and_the_next_call_succeeds() {
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "looper",
            evil::infinite_loop(),
            "enforcer looper timed out after 100 ms",
        ),
        (
            "bomber",
            evil::memory_bomb(),
            "enforcer bomber ran out of memory: limit is 16 MiB",
        ),
        (
            "recurser",
            evil::deep_recursion(),
            "enforcer recurser overflowed its stack",
        ),
        ("trapper", evil::trap(), "enforcer trapper failed: "),
        (
            "shouter",
            evil::ten_mb_output(),
            "enforcer shouter returned a malformed verdict: deny reason is 10000000 bytes",
        ),
    ];
    let mut files = vec![healthy()];
    let mut rules = String::from("  - \"bf:ok:healthy:allow\"\n");
    for (name, body, _) in &cases {
        files.push((
            Box::leak(format!("{name}.wasm").into_boxed_str()),
            enforcer_module(name, Body::Raw(body.clone())),
        ));
        rules += &format!("  - \"bf:{name}_tool:{name}:allow\"\n");
    }
    let (_dir, engine) = load(&files, &rules).unwrap();
    for (name, _, want) in &cases {
        for round in 0..2 {
            let start = Instant::now();
            let d = engine.before(&call(&format!("{name}_tool")));
            let took = start.elapsed();
            assert_eq!(d.effect, Effect::Deny, "{name}: {}", d.reason);
            assert!(
                d.reason.contains(want),
                "{name}: got {:?}, want {want:?}",
                d.reason
            );
            assert!(
                took < Duration::from_millis(2 * TIMEOUT_MS),
                "{name} round {round}: denied after {took:?}, more than twice the {TIMEOUT_MS} ms timeout"
            );
            let ok = engine.before(&call("ok"));
            assert_eq!(
                ok.effect,
                Effect::Allow,
                "healthy call after {name}: {}",
                ok.reason
            );
        }
    }
}
