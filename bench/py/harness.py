"""Medians of many timed calls, the same way the Rust side takes them (bench/peers/src/harness.rs):
warm up, then time samples until a time budget is spent (at least MIN_SAMPLES); a sample is a
batch of calls sized to last about 20 µs, or one call when each needs fresh input from
`setup` (not timed). The result is the median of the per-call times, in µs."""

import statistics
import time

MIN_SAMPLES = 200
MAX_SAMPLES = 200_000
BUDGET_S = float(__import__("os").environ.get("PEERS_BUDGET_S", "1.5"))


def run_sync(coro):
    """Runs a coroutine that never suspends (the seeds' engines are `async def` but do no I/O
    on the measured paths) without an event loop, so no loop overhead is timed."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError("the coroutine suspended: it needs an event loop")


def median_us(fn, setup=None, budget_s=BUDGET_S):
    clock = time.perf_counter_ns
    if setup is None:
        # Calibrate the batch size, and warm up.
        start = clock()
        calls = 0
        while clock() - start < 20_000_000 or calls < 10:
            fn()
            calls += 1
        per_call = (clock() - start) / calls
        batch = max(1, min(1000, int(20_000 / max(per_call, 1))))
    else:
        for _ in range(10):
            fn(setup())
        batch = 1
    samples = []
    end = clock() + int(budget_s * 1e9)
    while len(samples) < MIN_SAMPLES or (clock() < end and len(samples) < MAX_SAMPLES):
        if setup is None:
            t = clock()
            for _ in range(batch):
                fn()
            samples.append((clock() - t) / batch)
        else:
            arg = setup()
            t = clock()
            fn(arg)
            samples.append(clock() - t)
    return {"median_us": statistics.median(samples) / 1000, "samples": len(samples), "batch": batch}
