//! Medians of many timed calls, taken the way bench/py/harness.py takes them: warm up, then
//! time samples until a time budget is spent (at least `MIN_SAMPLES`); a sample is a batch of
//! calls sized to last about 20 µs, or one call when each needs fresh input from `setup` (not
//! timed). The result is the median per-call time in µs.

use std::time::{Duration, Instant};

use serde::Serialize;

const MIN_SAMPLES: usize = 200;
const MAX_SAMPLES: usize = 200_000;

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Measured {
    pub median_us: f64,
    pub samples: usize,
    pub batch: usize,
}

/// The time budget per measurement: `PEERS_BUDGET_S` seconds (default 1.5), so a smoke run
/// can be quick.
fn budget() -> Duration {
    let secs = std::env::var("PEERS_BUDGET_S")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(1.5);
    Duration::from_secs_f64(secs)
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    let n = samples.len();
    if n % 2 == 1 {
        samples[n / 2]
    } else {
        (samples[n / 2 - 1] + samples[n / 2]) / 2.0
    }
}

pub fn median_us(mut f: impl FnMut()) -> Measured {
    // Calibrate the batch size, and warm up.
    let start = Instant::now();
    let mut calls = 0u32;
    while start.elapsed() < Duration::from_millis(20) || calls < 10 {
        f();
        calls += 1;
    }
    let per_call_ns = start.elapsed().as_nanos() as f64 / f64::from(calls);
    let batch = ((20_000.0 / per_call_ns.max(1.0)) as usize).clamp(1, 1000);
    let mut samples = Vec::new();
    let end = Instant::now() + budget();
    while samples.len() < MIN_SAMPLES || (Instant::now() < end && samples.len() < MAX_SAMPLES) {
        let t = Instant::now();
        for _ in 0..batch {
            f();
        }
        samples.push(t.elapsed().as_nanos() as f64 / batch as f64);
    }
    Measured {
        median_us: median(samples.clone()) / 1000.0,
        samples: samples.len(),
        batch,
    }
}

pub fn median_us_with_setup<T, R>(
    mut setup: impl FnMut() -> T,
    mut f: impl FnMut(T) -> R,
) -> Measured {
    for _ in 0..10 {
        std::hint::black_box(f(setup()));
    }
    let mut samples = Vec::new();
    let end = Instant::now() + budget();
    while samples.len() < MIN_SAMPLES || (Instant::now() < end && samples.len() < MAX_SAMPLES) {
        let input = setup();
        let t = Instant::now();
        let out = f(input);
        samples.push(t.elapsed().as_nanos() as f64);
        drop(std::hint::black_box(out));
    }
    Measured {
        median_us: median(samples.clone()) / 1000.0,
        samples: samples.len(),
        batch: 1,
    }
}

/// One timed case, as written to the JSON the report reads (and echoed to stderr).
#[derive(Debug, Serialize)]
pub struct Row {
    engine: String,
    form: String,
    case: String,
    n: Option<usize>,
    #[serde(flatten)]
    measured: Measured,
}

impl Row {
    pub fn new(
        engine: &str,
        form: &str,
        case: &str,
        n: impl Into<Option<usize>>,
        m: Measured,
    ) -> Self {
        let row = Row {
            engine: engine.into(),
            form: form.into(),
            case: case.into(),
            n: n.into(),
            measured: m,
        };
        eprintln!(
            "  {:<36} {:<40} {:<22} {:>5} {:>10.3} µs",
            row.engine,
            row.form,
            row.case,
            row.n.map_or("-".into(), |n| n.to_string()),
            m.median_us
        );
        row
    }
}
