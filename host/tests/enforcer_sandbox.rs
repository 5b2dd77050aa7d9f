//! Malicious and broken enforcers, written in WAT: each must fail closed (deny) quickly, with a
//! reason naming the enforcer and the cause, and leave the engine serving.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Body, call, enforcer_module, evil, foreign_module, healthy, runtime};
use portcullis::wasm::{MemoryReset, Runtime};
use portcullis::{Effect, Engine, ToolResult};
use serde_json::json;

const TIMEOUT_MS: u64 = 100;

fn load(files: &[(&str, Vec<u8>)], rules: &str) -> Result<(tempfile::TempDir, Engine), String> {
    common::load(files, rules, TIMEOUT_MS)
}

#[test]
fn replace_in_the_before_phase_is_a_malformed_verdict() {
    let body = Body::Verdict(3, "{\"content\":[]}".into());
    let (_dir, engine) = load(
        &[("r.wasm", enforcer_module("replacer", body))],
        "  - \"bf:t:replacer:allow\"\n",
    )
    .unwrap();
    let d = engine.before(&call("t"));
    assert_eq!(d.effect, Effect::Deny);
    assert!(
        d.reason
            .contains("malformed verdict: replace is only allowed in the after phase"),
        "{}",
        d.reason
    );
}

#[test]
fn after_phase_replace_rewrites_and_deny_withholds() {
    let replacement =
        r#"{"content":[{"type":"text","text":"masked"}],"structuredContent":{"v":"masked"}}"#;
    let files = [
        (
            "a.wasm",
            enforcer_module("rewriter", Body::Verdict(3, replacement.into())),
        ),
        (
            "b.wasm",
            enforcer_module("blocker", Body::Verdict(1, "contains secrets".into())),
        ),
    ];
    let (_dir, engine) = load(
        &files,
        "  - \"af:t:rewriter:allow\"\n  - \"af:u:blocker:deny\"\n",
    )
    .unwrap();
    let original = ToolResult::from_json_value(json!({"v": "secret"}));
    let (d, out) = engine.after(&call("t"), original.clone());
    assert_eq!(d.effect, Effect::Allow, "{}", d.reason);
    assert_eq!(out.structured, Some(json!({"v": "masked"})));
    assert!(
        d.notes
            .iter()
            .any(|n| n.contains("enforcer rewriter rewrote the result")),
        "{:?}",
        d.notes
    );
    let (d, out) = engine.after(&call("u"), original);
    assert_eq!(d.effect, Effect::Deny);
    assert!(d.reason.contains("contains secrets"), "{}", d.reason);
    assert!(out.is_error);
    assert!(
        !format!("{out:?}").contains("secret\""),
        "withheld result leaks: {out:?}"
    );
}

#[test]
fn guard_rules_restrict_and_allow_rules_grant() {
    let files = [
        healthy(),
        (
            "no.wasm",
            enforcer_module("naysayer", Body::Verdict(1, "not now".into())),
        ),
        (
            "ask.wasm",
            enforcer_module("asker", Body::Verdict(2, "really?".into())),
        ),
    ];
    let rules = concat!(
        "  - \"bf:granted:healthy:allow\"\n", // allow rule + allow verdict: grants
        "  - \"bf:guarded:healthy:deny\"\n",  // guard + no objection: grants nothing
        "  - \"bf:both:healthy:deny\"\n",
        "  - \"bf:both:tool_access:allow\"\n", // guard passes, tool_access grants
        "  - \"bf:blocked:tool_access:allow\"\n",
        "  - \"bf:blocked:naysayer:deny\"\n", // guard objects: deny beats allow
        "  - \"bf:asked:tool_access:allow\"\n",
        "  - \"bf:asked:asker:elicit\"\n",
    );
    let (_dir, engine) = load(&files, rules).unwrap();
    assert_eq!(engine.before(&call("granted")).effect, Effect::Allow);
    let d = engine.before(&call("guarded"));
    assert_eq!(d.effect, Effect::Deny);
    assert!(d.by_default, "a guard's no-objection is not a grant");
    assert_eq!(d.matched.len(), 1, "the guard still shows in the trace");
    assert_eq!(engine.before(&call("both")).effect, Effect::Allow);
    let d = engine.before(&call("blocked"));
    assert_eq!(d.effect, Effect::Deny);
    assert!(
        d.reason.starts_with("not now (naysayer rule "),
        "{}",
        d.reason
    );
    let d = engine.before(&call("asked"));
    assert_eq!(d.effect, Effect::Elicit);
    assert!(d.reason.starts_with("really?"), "{}", d.reason);
}

#[test]
fn a_builtin_deny_skips_enforcers() {
    let (_dir, engine) = load(
        &[(
            "l.wasm",
            enforcer_module("looper", Body::Raw(evil::infinite_loop())),
        )],
        "  - \"bf:t:tool_access:deny\"\n  - \"bf:t:looper:allow\"\n",
    )
    .unwrap();
    let start = Instant::now();
    let d = engine.before(&call("t"));
    assert!(
        start.elapsed() < Duration::from_millis(TIMEOUT_MS / 2),
        "the looping enforcer was run"
    );
    assert_eq!(d.effect, Effect::Deny);
    assert!(
        d.notes[0].contains("not run: a built-in rule already denies"),
        "{:?}",
        d.notes
    );
}

#[test]
fn every_evaluation_gets_a_fresh_instance() {
    // Denies when a global counter it increments was already non-zero: state from an
    // earlier call would show.
    let body = "(global.set $count (i32.add (global.get $count) (i32.const 1)))
        (if (result i32) (i32.gt_u (global.get $count) (i32.const 1))
          (then (i32.store8 (i32.const 2048) (i32.const 1)) (i32.store (i32.const 2056) (i32.const 0)) (i32.const 2048))
          (else (i32.const 1024)))";
    let (_dir, engine) = load(
        &[(
            "s.wasm",
            enforcer_module("stateful", Body::Raw(body.into())),
        )],
        "  - \"bf:t:stateful:allow\"\n",
    )
    .unwrap();
    for _ in 0..5 {
        assert_eq!(engine.before(&call("t")).effect, Effect::Allow);
    }
}

#[test]
fn linear_memory_is_pristine_on_every_call_with_either_reset() {
    // Denies when a byte it sets in its data area, or in the page its allocator grew, is
    // already set: memory from an earlier call would show.
    let last_byte = "(i32.sub (i32.mul (memory.size) (i32.const 65536)) (i32.const 1))";
    let body = format!(
        "(if (result i32) (i32.or (i32.load8_u (i32.const 8192)) (i32.load8_u {last_byte}))
          (then (i32.store8 (i32.const 2048) (i32.const 1)) (i32.store (i32.const 2056) (i32.const 0)) (i32.const 2048))
          (else (i32.store8 (i32.const 8192) (i32.const 1)) (i32.store8 {last_byte} (i32.const 1)) (i32.const 1024)))"
    );
    let files = [("m.wasm", enforcer_module("marker", Body::Raw(body)))];
    for reset in [MemoryReset::Pagemap, MemoryReset::Madvise] {
        let runtime = match Runtime::with_memory_reset(None, reset) {
            Ok(r) => r,
            // PAGEMAP_SCAN needs Linux 6.7; Runtime::new falls back to madvise without it.
            Err(e) if reset == MemoryReset::Pagemap => {
                eprintln!("skipping {reset:?}: {e}");
                continue;
            }
            Err(e) => panic!("{reset:?}: {e}"),
        };
        assert_eq!(runtime.memory_reset(), reset);
        let (_dir, engine) =
            common::load_in(&runtime, &files, "  - \"bf:t:marker:allow\"\n", 100).unwrap();
        for i in 0..5 {
            let d = engine.before(&call("t"));
            assert_eq!(d.effect, Effect::Allow, "{reset:?}, call {i}: {}", d.reason);
        }
    }
}

fn load_error(files: &[(&str, Vec<u8>)], rules: &str) -> String {
    match load(files, rules) {
        Ok(_) => panic!("expected a load error"),
        Err(e) => e,
    }
}

#[test]
fn a_component_of_another_world_is_rejected_naming_the_file() {
    let wit = "package evil:other;\nworld other {\n  export run: func() -> u32;\n}\n";
    let wat = r#"(module (memory (export "memory") 1) (func (export "run") (result i32) i32.const 7)
      (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 0))"#;
    let err = load_error(&[("wrong.wasm", foreign_module(wit, "other", wat))], "");
    assert!(
        err.contains(
            "wrong.wasm: does not implement the world portcullis:policy/policy-enforcer@0.1.0"
        ),
        "{err}"
    );
}

#[test]
fn a_component_needing_wasi_is_rejected_with_a_clear_message() {
    let wit = "package wasi:cli@0.2.0;\ninterface environment {\n  get-arguments: func() -> list<string>;\n}\nworld needs-wasi {\n  import environment;\n  export run: func() -> u32;\n}\n";
    let wat = r#"(module (import "wasi:cli/environment@0.2.0" "get-arguments" (func (param i32)))
      (memory (export "memory") 1) (func (export "run") (result i32) i32.const 7)
      (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 0))"#;
    let err = load_error(&[("wasi.wasm", foreign_module(wit, "needs-wasi", wat))], "");
    assert!(
        err.contains("wasi.wasm: this enforcer needs WASI (wasi:cli/environment@0.2.0)"),
        "{err}"
    );
}

#[test]
fn load_errors_name_files_and_rules() {
    let err = load_error(&[("junk.wasm", b"not wasm at all".to_vec())], "");
    assert!(err.contains("junk.wasm: not a WebAssembly file"), "{err}");

    let dup = load_error(
        &[
            (
                "a.wasm",
                enforcer_module("same", Body::Verdict(0, String::new())),
            ),
            (
                "b.wasm",
                enforcer_module("same", Body::Verdict(0, String::new())),
            ),
        ],
        "",
    );
    assert!(
        dup.contains("b.wasm: enforcer name \"same\" is already used by"),
        "{dup}"
    );
    assert!(dup.contains("a.wasm"), "{dup}");

    let missing = load_error(&[healthy()], "  - \"bf:t:helthy:allow\"\n");
    assert!(
        missing.contains("unknown policy \"helthy\" (did you mean \"healthy\"?)"),
        "{missing}"
    );
    assert!(
        missing.contains("or a loaded enforcer (healthy)"),
        "{missing}"
    );

    let bad_name = load_error(
        &[(
            "x.wasm",
            enforcer_module("Bad-Name", Body::Verdict(0, String::new())),
        )],
        "",
    );
    assert!(
        bad_name.contains("x.wasm: metadata name \"Bad-Name\" is invalid"),
        "{bad_name}"
    );

    let builtin = load_error(
        &[(
            "x.wasm",
            enforcer_module("tool_access", Body::Verdict(0, String::new())),
        )],
        "",
    );
    assert!(builtin.contains("is a built-in policy"), "{builtin}");

    let limits = {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("enf")).unwrap();
        std::fs::write(dir.path().join("enf/h.wasm"), healthy().1).unwrap();
        std::fs::write(
            dir.path().join("p.yaml"),
            "config:\n  enforcers_dir: enf\n  limits: {enforcers: {helthy: {timeout_ms: 5}}}\n",
        )
        .unwrap();
        portcullis::engine::load_snapshot(&dir.path().join("p.yaml"), Some(runtime()))
            .unwrap_err()
            .to_string()
    };
    assert!(
        limits.contains("config.limits.enforcers names \"helthy\" (did you mean \"healthy\"?)"),
        "{limits}"
    );

    let no_dir = {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("p.yaml"),
            "config:\n  enforcers_dir: nowhere\n",
        )
        .unwrap();
        portcullis::engine::load_snapshot(&dir.path().join("p.yaml"), Some(runtime()))
            .unwrap_err()
            .to_string()
    };
    assert!(
        no_dir.contains("nowhere: cannot read the enforcers folder"),
        "{no_dir}"
    );
}

#[test]
fn per_enforcer_limits_override_the_default() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("enf")).unwrap();
    std::fs::write(
        dir.path().join("enf/l.wasm"),
        enforcer_module("looper", Body::Raw(evil::infinite_loop())),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("p.yaml"),
        "config:\n  enforcers_dir: enf\n  limits: {timeout_ms: 500, enforcers: {looper: {timeout_ms: 20, memory_mib: 32}}}\npolicies:\n  - \"bf:t:looper:allow\"\n",
    )
    .unwrap();
    let engine = Engine::new(
        portcullis::engine::load_snapshot(&dir.path().join("p.yaml"), Some(runtime())).unwrap(),
    );
    let snapshot = engine.snapshot();
    let info = &snapshot.enforcers().get("looper").unwrap().info;
    assert_eq!((info.limits.timeout_ms, info.limits.memory_mib), (20, 32));
    let start = Instant::now();
    let d = engine.before(&call("t"));
    assert!(d.reason.contains("timed out after 20 ms"), "{}", d.reason);
    assert!(start.elapsed() < Duration::from_millis(200));
}

#[test]
fn compiled_artifacts_are_cached_on_disk_and_corrupt_entries_rebuilt() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("enf")).unwrap();
    std::fs::write(dir.path().join("enf/h.wasm"), healthy().1).unwrap();
    std::fs::write(
        dir.path().join("p.yaml"),
        "config:\n  enforcers_dir: enf\npolicies:\n  - \"bf:t:healthy:allow\"\n",
    )
    .unwrap();
    let path = dir.path().join("p.yaml");
    let hit = |rt: &Arc<Runtime>| {
        let s = portcullis::engine::load_snapshot(&path, Some(rt)).unwrap();
        s.enforcers().get("healthy").unwrap().info.cache_hit
    };
    // A fresh process (runtime) compiles and stores; the next one finds it on disk.
    assert!(!hit(
        &Runtime::new(Some(cache.path().to_path_buf())).unwrap()
    ));
    assert!(hit(&Runtime::new(Some(cache.path().to_path_buf())).unwrap()));
    // The same runtime reloading an unchanged file uses its memory cache.
    let rt = Runtime::new(Some(cache.path().to_path_buf())).unwrap();
    assert!(hit(&rt) && hit(&rt));
    // Corrupt every entry: it is discarded, recompiled and stored again, never trusted.
    corrupt_all(cache.path());
    let rt = Runtime::new(Some(cache.path().to_path_buf())).unwrap();
    assert!(!hit(&rt), "a corrupt entry must not count as a hit");
    let engine = Engine::new(portcullis::engine::load_snapshot(&path, Some(&rt)).unwrap());
    assert_eq!(engine.before(&call("t")).effect, Effect::Allow);
    assert!(
        hit(&Runtime::new(Some(cache.path().to_path_buf())).unwrap()),
        "rebuilt entry is valid"
    );
}

fn corrupt_all(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let mut bytes = std::fs::read(&p).unwrap();
        let n = bytes.len();
        bytes[n / 2] ^= 0xff;
        std::fs::write(&p, bytes).unwrap();
    }
}
