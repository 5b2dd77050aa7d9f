//! Per-evaluation latency of the shipped enforcers (fresh instance per call, pooling
//! allocator) as p50 / p99, and hot-reload latency (file written -> new snapshot live).
//! Needs the built enforcers (`bash enforcers/build.sh`).
//! Run: `cargo bench -p portcullis --bench enforcers`

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use portcullis::reload::Reloader;
use portcullis::wasm::Runtime;
use portcullis::{Engine, Request, Subject, ToolResult};
use serde_json::json;

mod harness;
use harness::{measure, percentiles};

#[path = "../tests/common/mod.rs"]
mod common;

fn main() {
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../enforcers/dist");
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wasm-cache");
    let runtime = Runtime::new(Some(cache)).expect("runtime");
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        format!(
            "config:\n  enforcers_dir: {}\n  limits: {{timeout_ms: 100, enforcers: {{pii_guard: {{timeout_ms: 2000, memory_mib: 64}}}}}}\npolicies:\n  - \"bf:q:sql_safety:allow:read_only:no_multi:dialect=postgres\"\n  - \"bf:d:business_hours:allow:0900-1700:mon-fri:tz=Europe/Berlin\"\n  - \"af:p:pii_guard:deny\"\n",
            dist.display()
        ),
    )
    .unwrap();
    let engine = Engine::new(
        portcullis::engine::load_snapshot(&policy, Some(&runtime)).expect("enforcers built?"),
    );

    // The floor: a trivial enforcer (a core module whose `enforce` returns allow at once),
    // through the same engine path: fresh instance, call, verdict check, decision.
    let (_floor_dir, floor) =
        common::load(&[common::healthy()], "  - \"bf:t:healthy:allow\"\n", 100)
            .expect("trivial enforcer");
    let trivial = Request::new(Subject::user("u"), "t", json!({"q": 1}));
    measure("trivial enforcer (WAT, allow at once)", 5000, || {
        std::hint::black_box(floor.before(&trivial));
    });

    let sql = Request::new(
        Subject::user("u"),
        "q",
        json!({"query": "SELECT u.name, count(*) FROM users u JOIN orders o ON o.user_id = u.id WHERE o.created_at > now() - interval '7 days' GROUP BY u.name ORDER BY 2 DESC LIMIT 10"}),
    );
    measure("sql_safety (Rust), 170-byte SELECT", 2000, || {
        std::hint::black_box(engine.before(&sql));
    });
    let short = Request::new(
        Subject::user("u"),
        "q",
        json!({"query": "SELECT name, email FROM users WHERE id = 42"}),
    );
    measure("sql_safety (Rust), 43-byte SELECT", 2000, || {
        std::hint::black_box(engine.before(&short));
    });
    let hours = Request::new(Subject::user("u"), "d", json!({})).at(1_795_000_000_000);
    measure("business_hours (Rust), Europe/Berlin", 2000, || {
        std::hint::black_box(engine.before(&hours));
    });
    let result = ToolResult::from_json_value(
        json!({"name": "Ann", "email": "ann@example.com", "phone": "+1-202-555-0147", "note": "call back tomorrow"}),
    );
    let pii = Request::new(Subject::user("u"), "p", json!({}));
    measure("pii_guard (JavaScript), 100-byte result", 300, || {
        std::hint::black_box(engine.after(&pii, result.clone()));
    });

    // Reload: rewrite an enforcer file (warm cache: the content alternates between two
    // builds already compiled) and time until the new snapshot is live.
    let enf = tempfile::tempdir().unwrap();
    let a = std::fs::read(dist.join("business_hours.wasm")).unwrap();
    let mut b = a.clone();
    b.extend_from_slice(&[0, 4, 0x03, b'p', b'a', b'd']); // a trailing custom section: new hash, same code
    let target = enf.path().join("business_hours.wasm");
    std::fs::write(&target, &a).unwrap();
    let policy2 = dir.path().join("reload.yaml");
    std::fs::write(
        &policy2,
        format!(
            "config:\n  enforcers_dir: {}\npolicies:\n  - \"bf:d:business_hours:allow\"\n",
            enf.path().display()
        ),
    )
    .unwrap();
    let engine2 = Arc::new(Engine::new(
        portcullis::engine::load_snapshot(&policy2, Some(&runtime)).unwrap(),
    ));
    let (tx, rx) = mpsc::channel();
    let _reloader = Reloader::start(engine2, policy2, Some(runtime.clone()), move |o| {
        let _ = tx.send(o.is_ok());
    })
    .unwrap();
    let mut samples = Vec::new();
    for i in 0..20 {
        let bytes = if i % 2 == 0 { &b } else { &a };
        let tmp = enf.path().join(".business_hours.wasm");
        std::fs::write(&tmp, bytes).unwrap();
        let t = Instant::now();
        std::fs::rename(&tmp, &target).unwrap();
        assert!(
            rx.recv_timeout(Duration::from_secs(5)).unwrap(),
            "reload failed"
        );
        samples.push(t.elapsed());
        while rx.try_recv().is_ok() {}
    }
    let (p50, p99) = percentiles(samples.split_off(2));
    println!(
        "{:<48} p50 {:>9.1} ms   p99 {:>9.1} ms   (n=18, includes the 50 ms debounce)",
        "reload business_hours (warm cache)",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
}
