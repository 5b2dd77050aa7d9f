//! What the SQL check itself costs, natively, without a sandbox: the floor under the
//! enforcer's per-call latency in `host/benches/enforcers.rs` (same statements).
//! Run from `enforcers/`: `cargo run --release -p sql_safety --example native_cost`

use sql_safety::check::{self, Action};

fn main() {
    let params: Vec<String> = ["read_only", "no_multi", "dialect=postgres"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let cases = [
        (
            "170-byte SELECT",
            r#"{"query": "SELECT u.name, count(*) FROM users u JOIN orders o ON o.user_id = u.id WHERE o.created_at > now() - interval '7 days' GROUP BY u.name ORDER BY 2 DESC LIMIT 10"}"#,
        ),
        (
            "43-byte SELECT",
            r#"{"query": "SELECT name, email FROM users WHERE id = 42"}"#,
        ),
    ];
    for (label, args) in cases {
        let run = || std::hint::black_box(check::decide(Action::Allow, "q", args, &params));
        assert!(matches!(run(), check::Verdict::Allow), "{label} must pass");
        for _ in 0..1000 {
            run();
        }
        let mut samples: Vec<_> = (0..5000)
            .map(|_| {
                let t = std::time::Instant::now();
                run();
                t.elapsed()
            })
            .collect();
        samples.sort();
        println!(
            "native check, {label:<16} p50 {:>6.1} µs   p99 {:>6.1} µs",
            samples[2500].as_secs_f64() * 1e6,
            samples[4950].as_secs_f64() * 1e6
        );
    }
}
