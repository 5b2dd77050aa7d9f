//! Hot reload under load: 4 threads evaluate continuously while enforcer files are replaced,
//! added, removed and corrupted and the policy file is rewritten. Rules that did not change
//! never fail, every new version is live within a second, and no decision ever comes from a
//! half-built snapshot.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Body, enforcer_module};
use portcullis::reload::Reloader;
use portcullis::wasm::Runtime;
use portcullis::{Effect, Engine, Request, Subject};
use serde_json::json;

fn allow(name: &str) -> Vec<u8> {
    enforcer_module(name, Body::Verdict(0, String::new()))
}

fn deny(name: &str, why: &str) -> Vec<u8> {
    enforcer_module(name, Body::Verdict(1, why.into()))
}

/// Writes a file the way careful writers do: a hidden temp file, then a rename.
fn put(path: &Path, bytes: &[u8]) {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

const BASE: &str = "config:\n  default_effect: deny\n  enforcers_dir: enf\n  limits: {timeout_ms: 200}\npolicies:\n  - \"bf:stable:tool_access:allow\"\n  - \"bf:stable_enf:keeper:allow\"\n  - \"bf:alpha_tool:alpha:allow\"\n";

fn call(tool: &str) -> Request {
    Request::new(Subject::user("u"), tool, json!({}))
}

/// Polls until `check` holds, for at most a second; returns how long it took.
fn within_a_second(what: &str, check: impl Fn() -> bool) -> Duration {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(1) {
        if check() {
            return start.elapsed();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("{what}: not visible within 1 s");
}

#[test]
fn reload_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let enf = dir.path().join("enf");
    std::fs::create_dir(&enf).unwrap();
    put(&enf.join("keeper.wasm"), &allow("keeper"));
    put(&enf.join("alpha.wasm"), &allow("alpha"));
    let policy = dir.path().join("policy.yaml");
    put(&policy, BASE.as_bytes());

    let runtime = Runtime::new(None).unwrap();
    let engine = Arc::new(Engine::new(
        portcullis::engine::load_snapshot(&policy, Some(&runtime)).unwrap(),
    ));
    let reloader = Reloader::start(engine.clone(), policy.clone(), Some(runtime), |_| {}).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let evaluations = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (engine, stop, evaluations, failures) = (
                engine.clone(),
                stop.clone(),
                evaluations.clone(),
                failures.clone(),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    for tool in ["stable", "stable_enf"] {
                        let d = engine.before(&call(tool));
                        if d.effect != Effect::Allow {
                            failures
                                .lock()
                                .unwrap()
                                .push(format!("{tool}: {:?} {}", d.effect, d.reason));
                        }
                    }
                    // A snapshot whose rules name an enforcer it does not have would be
                    // half-built; the loader must never produce one.
                    for tool in ["alpha_tool", "beta_tool"] {
                        let d = engine.before(&call(tool));
                        if d.reason.contains("is not loaded") {
                            failures
                                .lock()
                                .unwrap()
                                .push(format!("half-built snapshot: {}", d.reason));
                        }
                    }
                    evaluations.fetch_add(4, Ordering::Relaxed);
                }
            })
        })
        .collect();

    let effect = |tool: &str| engine.before(&call(tool)).effect;
    let reloads = || reloader.stats().reloads.load(Ordering::Relaxed);
    let failed = || reloader.stats().failures.load(Ordering::Relaxed);
    let mut latencies = Vec::new();

    // Replace an enforcer.
    assert_eq!(effect("alpha_tool"), Effect::Allow);
    put(&enf.join("alpha.wasm"), &deny("alpha", "alpha v2 says no"));
    latencies.push(within_a_second("replaced alpha", || {
        effect("alpha_tool") == Effect::Deny
    }));

    // Add an enforcer and a rule using it (enforcer first, then the policy).
    put(&enf.join("beta.wasm"), &allow("beta"));
    put(
        &policy,
        format!("{BASE}  - \"bf:beta_tool:beta:allow\"\n").as_bytes(),
    );
    latencies.push(within_a_second("added beta", || {
        effect("beta_tool") == Effect::Allow
    }));

    // Corrupt a file: the reload fails, the last good snapshot keeps serving.
    let before_failures = failed();
    std::fs::write(enf.join("alpha.wasm"), b"\0asm\x01\0\0\0garbage").unwrap();
    within_a_second("corrupt file reported", || failed() > before_failures);
    let last = reloader.stats().last_error.lock().unwrap().clone().unwrap();
    assert!(last.contains("alpha.wasm"), "{last}");
    assert_eq!(
        effect("alpha_tool"),
        Effect::Deny,
        "the last good alpha (v2) still serves"
    );
    assert_eq!(effect("beta_tool"), Effect::Allow);

    // Fix it.
    put(&enf.join("alpha.wasm"), &allow("alpha"));
    latencies.push(within_a_second("fixed alpha", || {
        effect("alpha_tool") == Effect::Allow
    }));

    // Remove an enforcer a rule still uses: rejected, old snapshot stays; then drop the rule.
    let before_failures = failed();
    std::fs::remove_file(enf.join("beta.wasm")).unwrap();
    within_a_second("removal of a used enforcer reported", || {
        failed() > before_failures
    });
    let last = reloader.stats().last_error.lock().unwrap().clone().unwrap();
    assert!(last.contains("unknown policy \"beta\""), "{last}");
    assert_eq!(
        effect("beta_tool"),
        Effect::Allow,
        "the old snapshot (with beta) still serves"
    );
    put(&policy, BASE.as_bytes());
    latencies.push(within_a_second("beta rule removed", || {
        effect("beta_tool") == Effect::Deny
    }));

    // A broken policy file is rejected too.
    let before_failures = failed();
    std::fs::write(&policy, "config: [unclosed\n").unwrap();
    within_a_second("broken policy reported", || failed() > before_failures);
    assert_eq!(effect("alpha_tool"), Effect::Allow);
    put(
        &policy,
        format!("{BASE}  - \"bf:alpha_tool:tool_access:deny\"\n").as_bytes(),
    );
    latencies.push(within_a_second("policy rewritten", || {
        effect("alpha_tool") == Effect::Deny
    }));

    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} failed evaluations, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(
        evaluations.load(Ordering::Relaxed) > 1000,
        "the workers kept evaluating"
    );
    assert!(reloads() >= 5, "reloads counted: {}", reloads());
    eprintln!("reload latencies (file written -> decision visible): {latencies:?}");
}

/// Reading the policy (as every reload does, and as `cat` or a backup tool would) is not a
/// change: it must not start a reload, let alone a loop of them.
#[test]
fn reading_the_files_does_not_reload() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    put(&policy, b"policies:\n  - \"bf:t:tool_access:allow\"\n");
    let engine = Arc::new(Engine::from_file(&policy).unwrap());
    let reloader = Reloader::start(engine, policy.clone(), None, |_| {}).unwrap();
    let reloads = || reloader.stats().reloads.load(Ordering::Relaxed);
    reloader.reload_now().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let settled = reloads();
    for _ in 0..5 {
        let _ = std::fs::read(&policy).unwrap();
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(reloads(), settled, "reads started reloads");
    // A real change still reloads.
    put(&policy, b"policies:\n  - \"bf:t:tool_access:deny\"\n");
    within_a_second("the change reloads", || reloads() > settled);
}

/// Deleting the enforcers folder while serving keeps the last good snapshot (its enforcers are
/// compiled in memory, and a policy whose guards silently vanished would fail open); the
/// failure is reported. When the folder comes back, with new content, the watcher sees it: the
/// folder's own watch died with it, so it is watched again.
#[test]
fn a_deleted_enforcers_folder_keeps_the_last_snapshot_and_is_watched_again_when_back() {
    let dir = tempfile::tempdir().unwrap();
    let enf = dir.path().join("enf");
    std::fs::create_dir(&enf).unwrap();
    put(&enf.join("keeper.wasm"), &allow("keeper"));
    put(&enf.join("alpha.wasm"), &allow("alpha"));
    let policy = dir.path().join("policy.yaml");
    put(&policy, BASE.as_bytes());
    let runtime = Runtime::new(None).unwrap();
    let engine = Arc::new(Engine::new(
        portcullis::engine::load_snapshot(&policy, Some(&runtime)).unwrap(),
    ));
    let reloader = Reloader::start(engine.clone(), policy.clone(), Some(runtime), |_| {}).unwrap();
    let effect = |tool: &str| engine.before(&call(tool)).effect;
    let failed = || reloader.stats().failures.load(Ordering::Relaxed);
    assert_eq!(effect("alpha_tool"), Effect::Allow);

    std::fs::remove_dir_all(&enf).unwrap();
    within_a_second("the deletion reported", || failed() > 0);
    let last = reloader.stats().last_error.lock().unwrap().clone().unwrap();
    assert!(last.contains("cannot read the enforcers folder"), "{last}");
    assert_eq!(
        effect("alpha_tool"),
        Effect::Allow,
        "the last good snapshot"
    );
    assert_eq!(
        effect("stable_enf"),
        Effect::Allow,
        "its enforcers still run"
    );

    // Back, with alpha now denying: staged next to it, then renamed into place.
    let staged = dir.path().join(".enf.new");
    std::fs::create_dir(&staged).unwrap();
    put(&staged.join("keeper.wasm"), &allow("keeper"));
    put(
        &staged.join("alpha.wasm"),
        &deny("alpha", "alpha v2 says no"),
    );
    std::fs::rename(&staged, &enf).unwrap();
    within_a_second("the folder's return", || {
        effect("alpha_tool") == Effect::Deny
    });

    // Changes inside the new folder are seen too.
    put(&enf.join("alpha.wasm"), &allow("alpha"));
    within_a_second("a change in the new folder", || {
        effect("alpha_tool") == Effect::Allow
    });
}
