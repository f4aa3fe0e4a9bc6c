//! CPU-bound work: burns a given amount of this thread's CPU time. Measured in CPU time, not
//! wall time, so on a busy machine the work is the same and only the wait grows.
use std::hint::black_box;
use std::time::Duration;

use common::sys::thread_cpu_time;

pub(crate) fn burn(cpu: Duration) {
    // No work reads no clock: the thread's CPU clock has no vDSO fast path, so each read is a
    // system call, and `ms=0` (the cheapest route, the one the bench compares with bare
    // actix-web) would pay two of them for nothing.
    if cpu.is_zero() {
        return;
    }
    let start = thread_cpu_time();
    let mut x = 0x9E37_79B9_7F4A_7C15_u64;
    while thread_cpu_time().saturating_sub(start) < cpu {
        for _ in 0..2_000 {
            x = black_box(
                x.wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407),
            );
        }
    }
}

/// The OS thread id, as `top -H` and /proc show it: the seed experiments print thread ids.
pub(crate) fn thread_id() -> i64 {
    common::sys::gettid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burns_at_least_the_requested_cpu_time() {
        let before = thread_cpu_time();
        burn(Duration::from_millis(20));
        assert!(thread_cpu_time() - before >= Duration::from_millis(20));
    }
}
