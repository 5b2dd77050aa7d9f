//! The CPU time of the calling thread, which is what an enforcer's `timeout_ms` budgets.
//!
//! Epoch ticks count wall time: on a busy machine the thread running an enforcer can wait
//! for a CPU longer than the whole budget while the ticker thread keeps ticking, and a
//! 10 µs enforcer would time out (seen under `bench/load.sh`: 200 sessions and their 200
//! upstream processes on 2 cores). So when the epoch deadline passes, the store's callback
//! asks how much CPU the thread has used since the call began: the call traps only once that
//! reaches the budget; otherwise the deadline moves on by what is left. An enforcer cannot
//! block (it has no WASI, only the host's `log`), so its CPU time is its work.

use std::time::Duration;

/// CPU time the calling thread has used, or `None` where it cannot be read (then the
/// deadline falls back to wall time).
#[cfg(target_os = "linux")]
pub fn thread_time() -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call, and
    // CLOCK_THREAD_CPUTIME_ID needs nothing else.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return None;
    }
    Some(Duration::new(
        u64::try_from(ts.tv_sec).ok()?,
        u32::try_from(ts.tv_nsec).ok()?,
    ))
}

#[cfg(not(target_os = "linux"))]
pub fn thread_time() -> Option<Duration> {
    None
}

/// What the epoch callback decides once the wall-clock deadline has passed: `None` when the
/// budget is spent (trap), or the epoch ticks to wait before looking again (at least 1).
pub fn remaining_ticks(
    started: Option<Duration>,
    now: Option<Duration>,
    budget: Duration,
) -> Option<u64> {
    let used = now?.checked_sub(started?)?;
    let left = budget.checked_sub(used).filter(|d| !d.is_zero())?;
    // The budget is whole milliseconds, one tick each; round what is left up.
    Some(left.as_micros().div_ceil(1000).max(1) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_thread_clock_counts_work_and_not_sleep() {
        let Some(a) = thread_time() else {
            // Other systems may lack the clock (the deadline is wall time there).
            #[cfg(target_os = "linux")]
            panic!("no thread CPU clock on Linux");
            #[cfg(not(target_os = "linux"))]
            return;
        };
        std::thread::sleep(Duration::from_millis(30));
        let b = thread_time().unwrap();
        assert!(
            b - a < Duration::from_millis(10),
            "sleeping used {:?}",
            b - a
        );
        let spin = std::time::Instant::now();
        while spin.elapsed() < Duration::from_millis(20) {
            std::hint::black_box(0u64);
        }
        let c = thread_time().unwrap();
        assert!(
            c - b >= Duration::from_millis(5),
            "spinning used {:?}",
            c - b
        );
    }

    #[test]
    fn the_budget_is_spent_by_cpu_time_only() {
        let ms = Duration::from_millis;
        let budget = ms(10);
        assert_eq!(
            remaining_ticks(Some(ms(100)), Some(ms(101)), budget),
            Some(9)
        );
        assert_eq!(
            remaining_ticks(
                Some(ms(100)),
                Some(ms(109) + Duration::from_micros(1)),
                budget
            ),
            Some(1)
        );
        assert_eq!(remaining_ticks(Some(ms(100)), Some(ms(110)), budget), None);
        assert_eq!(remaining_ticks(Some(ms(100)), Some(ms(250)), budget), None);
        // No clock: the wall-clock deadline decides, as before.
        assert_eq!(remaining_ticks(None, Some(ms(1)), budget), None);
        assert_eq!(remaining_ticks(Some(ms(1)), None, budget), None);
    }
}
