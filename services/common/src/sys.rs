//! The few libc calls std has no safe wrapper for, each behind a safe function. With the stall
//! capture's signal module (stall/signal.rs), the only `unsafe` in loopscope.
use std::time::Duration;

/// CPU time this thread has used: the worker's `cpu` work burns exactly what it is asked
/// for, however busy the machine is.
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The OS thread id, as `top -H` and /proc show it.
pub fn gettid() -> i64 {
    // SAFETY: gettid has no preconditions and cannot fail.
    i64::from(unsafe { libc::gettid() })
}

/// Hands memory glibc keeps in its arenas after a burst of allocations back to the kernel.
/// It walks every arena under its lock: call it from a background thread, never an event loop.
pub(crate) fn malloc_trim() {
    // SAFETY: malloc_trim only walks glibc's own arenas under their locks; any thread may call
    // it at any time.
    unsafe { libc::malloc_trim(0) };
}
