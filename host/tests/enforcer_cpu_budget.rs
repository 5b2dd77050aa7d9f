//! `limits.timeout_ms` is a CPU budget: an enforcer that needs little CPU but waits a long
//! time for one (a busy machine: under `bench/load.sh` 200 sessions and their upstream
//! processes share 2 cores) is not timed out. The enforcer's thread is pinned to one CPU with
//! a busy thread and given the lowest priority, so its ~10 ms of work take many times the
//! budget in wall time. Alone in its own test binary: it keeps a CPU busy.

#![cfg(target_os = "linux")]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Body, call, enforcer_module};
use portcullis::Effect;

const BUDGET_MS: u64 = 100;

/// Counts down from `n`, then allows (the verdict record at 2048 is zeroed: `allow([])`).
fn busy(n: u32) -> String {
    format!(
        "(local.set 0 (i32.const {n}))
         (loop $more
           (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
           (br_if $more (local.get 0)))
         i32.const 2048"
    )
}

/// CPU time used by the calling thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime: {}", std::io::Error::last_os_error());
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Pins the calling thread to `cpu`.
fn pin(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; the calls only read and write it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        let rc = libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        assert_eq!(
            rc,
            0,
            "sched_setaffinity: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// The first CPU this thread may run on.
fn some_cpu() -> usize {
    // SAFETY: as in `pin`.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        let rc = libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set);
        assert_eq!(
            rc,
            0,
            "sched_getaffinity: {}",
            std::io::Error::last_os_error()
        );
        (0..libc::CPU_SETSIZE as usize)
            .find(|&c| libc::CPU_ISSET(c, &set))
            .expect("no CPU in this thread's affinity mask")
    }
}

#[test]
fn an_enforcer_waiting_for_a_cpu_is_not_timed_out() {
    // Built, and the runtime's epoch ticker started, on this thread, which stays unpinned.
    let files = [(
        "worker.wasm",
        enforcer_module("worker", Body::Raw(busy(12_000_000))),
    )];
    let (_dir, engine) = common::load(&files, "  - \"bf:work:worker:allow\"\n", BUDGET_MS).unwrap();
    let engine = Arc::new(engine);

    // Alone, the work fits the budget with room to spare.
    let start = thread_cpu();
    let alone = engine.before(&call("work"));
    let alone_took = thread_cpu() - start;
    assert_eq!(alone.effect, Effect::Allow, "{}", alone.reason);
    assert!(
        alone_took < Duration::from_millis(BUDGET_MS / 2),
        "the work takes {alone_took:?} of CPU: too much for this test's {BUDGET_MS} ms budget"
    );

    // Starved: a busy thread on the same CPU, and this call at the lowest priority.
    let cpu = some_cpu();
    let stop = Arc::new(AtomicBool::new(false));
    let spinner = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            pin(cpu);
            while !stop.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        })
    };
    // Let the spinner take the CPU first.
    std::thread::sleep(Duration::from_millis(20));
    let starved = {
        let engine = engine.clone();
        std::thread::spawn(move || {
            pin(cpu);
            // SAFETY: setpriority on this thread's id (Linux nice values are per thread).
            let rc =
                unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 19) };
            assert_eq!(rc, 0, "setpriority: {}", std::io::Error::last_os_error());
            let start = Instant::now();
            let d = engine.before(&call("work"));
            (d, start.elapsed())
        })
        .join()
        .unwrap()
    };
    stop.store(true, Ordering::Relaxed);
    spinner.join().unwrap();
    let (d, took) = starved;
    assert!(
        took > Duration::from_millis(2 * BUDGET_MS),
        "the call was not starved (it took {took:?}), so this test shows nothing"
    );
    assert_eq!(
        d.effect,
        Effect::Allow,
        "starved for {took:?} of wall time, using about {alone_took:?} of CPU, it was denied: {}",
        d.reason
    );

    // A call that does use its whole budget is still stopped.
    let files = [(
        "looper.wasm",
        enforcer_module("looper", Body::Raw(common::evil::infinite_loop())),
    )];
    let (_dir, engine) = common::load(&files, "  - \"bf:loop:looper:allow\"\n", BUDGET_MS).unwrap();
    let d = engine.before(&call("loop"));
    assert_eq!(d.effect, Effect::Deny);
    assert!(
        d.reason.contains("enforcer looper timed out after 100 ms"),
        "{}",
        d.reason
    );
}
