//! The p50 / p99 harness the non-criterion benches share (criterion reports no p99).
//! A name given on the command line (`cargo bench --bench enforcers -- sql`) runs only the
//! measurements whose label contains it.

#![allow(dead_code)] // each bench uses a different part

use std::time::{Duration, Instant};

/// The median and the 99th percentile of `samples`.
pub fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    (at(0.50), at(0.99))
}

/// Runs `f` n/10 times to warm up, then n timed times, and prints p50 and p99 in µs.
pub fn measure(label: &str, n: usize, mut f: impl FnMut()) {
    if let Some(filter) = std::env::args().skip(1).find(|a| !a.starts_with('-'))
        && !label.contains(&filter)
    {
        return;
    }
    for _ in 0..n / 10 {
        f();
    }
    let samples: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    let (p50, p99) = percentiles(samples);
    println!(
        "{label:<58} p50 {:>9.2} µs   p99 {:>9.2} µs   (n={n})",
        p50.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6
    );
}
