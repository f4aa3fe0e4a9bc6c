//! Why a thread is stuck, from what Linux says about it in `/proc/self/task/<tid>`: its
//! scheduler state (`stat`), the system call it is blocked in (`syscall`) and how its time
//! split between running and waiting for a CPU (`schedstat`). Plain file reads, done by the
//! watchdog before it signals the thread (the signal interrupts the syscall).
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Classification {
    /// Running on a CPU: a busy loop, hashing, parsing, a long synchronous computation.
    Cpu,
    /// Runnable but mostly (over 80%) waiting for a CPU: the machine is overloaded, not the code.
    Starved,
    /// In nanosleep / clock_nanosleep: `std::thread::sleep` on the event loop.
    Sleep,
    /// In futex: waiting for a `Mutex`, a `Condvar`, a channel or a thread join.
    Lock,
    /// In a blocking read, write, connect, poll...: synchronous I/O on the event loop.
    Io,
    Unknown,
}

impl Classification {
    pub(crate) const ALL: [Self; 6] = [
        Self::Cpu,
        Self::Starved,
        Self::Sleep,
        Self::Lock,
        Self::Io,
        Self::Unknown,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Starved => "starved",
            Self::Sleep => "sleep",
            Self::Lock => "lock",
            Self::Io => "io",
            Self::Unknown => "unknown",
        }
    }
}

/// Nanoseconds on a CPU and waiting on a run queue, since the thread started.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SchedStat {
    pub(crate) on_cpu_ns: u64,
    pub(crate) waiting_ns: u64,
}

fn task_file(tid: i32, name: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/{name}")).ok()
}

pub(crate) fn schedstat(tid: i32) -> Option<SchedStat> {
    let text = task_file(tid, "schedstat")?;
    let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().ok());
    Some(SchedStat {
        on_cpu_ns: fields.next()??,
        waiting_ns: fields.next()??,
    })
}

/// What the thread is doing now, and what it did since `before` (taken earlier in the same
/// poll, if the watchdog had the chance).
pub(crate) fn classify(tid: i32, before: Option<SchedStat>) -> Classification {
    let state = task_file(tid, "stat").and_then(|s| parse_state(&s));
    let syscall = task_file(tid, "syscall").and_then(|s| parse_syscall(&s));
    let delta = before.zip(schedstat(tid)).map(|(a, b)| SchedStat {
        on_cpu_ns: b.on_cpu_ns.saturating_sub(a.on_cpu_ns),
        waiting_ns: b.waiting_ns.saturating_sub(a.waiting_ns),
    });
    decide(state, syscall, delta)
}

fn decide(state: Option<char>, syscall: Option<i64>, delta: Option<SchedStat>) -> Classification {
    match state {
        Some('R') => match delta {
            // Under a fifth of the time on a CPU: the machine is the problem, not the code.
            Some(d) if d.waiting_ns > 4 * d.on_cpu_ns => Classification::Starved,
            _ => Classification::Cpu,
        },
        Some('S' | 'D') => syscall.map_or(Classification::Unknown, by_syscall),
        _ => Classification::Unknown,
    }
}

/// The state letter after the command name in parentheses (which may contain spaces).
fn parse_state(stat: &str) -> Option<char> {
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// The syscall number; `None` for "running" or when not in a syscall (-1).
fn parse_syscall(text: &str) -> Option<i64> {
    text.split_whitespace()
        .next()?
        .parse()
        .ok()
        .filter(|n| *n >= 0)
}

fn by_syscall(nr: i64) -> Classification {
    use libc::*;
    const SLEEP: &[c_long] = &[SYS_nanosleep, SYS_clock_nanosleep];
    const LOCK: &[c_long] = &[SYS_futex];
    #[cfg(target_arch = "x86_64")]
    const IO_EXTRA: &[c_long] = &[SYS_read, SYS_write, SYS_poll, SYS_select, SYS_epoll_wait];
    #[cfg(not(target_arch = "x86_64"))]
    const IO_EXTRA: &[c_long] = &[SYS_read, SYS_write];
    const IO: &[c_long] = &[
        SYS_pread64,
        SYS_pwrite64,
        SYS_readv,
        SYS_writev,
        SYS_recvfrom,
        SYS_recvmsg,
        SYS_sendto,
        SYS_sendmsg,
        SYS_connect,
        SYS_accept,
        SYS_accept4,
        SYS_ppoll,
        SYS_pselect6,
        SYS_epoll_pwait,
        SYS_openat,
        SYS_fsync,
        SYS_fdatasync,
        SYS_flock,
        SYS_wait4,
        SYS_waitid,
    ];
    let nr = nr as c_long;
    if SLEEP.contains(&nr) {
        Classification::Sleep
    } else if LOCK.contains(&nr) {
        Classification::Lock
    } else if IO.contains(&nr) || IO_EXTRA.contains(&nr) {
        Classification::Io
    } else {
        Classification::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_state_and_syscall() {
        assert_eq!(parse_state("123 (tokio (rt) x) S 1 2 3"), Some('S'));
        assert_eq!(
            parse_syscall("230 0x1 0x0 0x7ff 0x0 0x0 0x0 0x7ff 0x7ff"),
            Some(230)
        );
        assert_eq!(parse_syscall("running"), None);
        assert_eq!(parse_syscall("-1 0x7ff 0x7ff"), None);
    }

    #[test]
    fn decides_from_state_syscall_and_run_queue_time() {
        let sleep: i64 = libc::SYS_clock_nanosleep;
        let futex: i64 = libc::SYS_futex;
        assert_eq!(decide(Some('S'), Some(sleep), None), Classification::Sleep);
        assert_eq!(decide(Some('S'), Some(futex), None), Classification::Lock);
        assert_eq!(decide(Some('R'), None, None), Classification::Cpu);
        let starved = SchedStat {
            on_cpu_ns: 10,
            waiting_ns: 90,
        };
        assert_eq!(
            decide(Some('R'), None, Some(starved)),
            Classification::Starved
        );
        assert_eq!(decide(Some('Z'), None, None), Classification::Unknown);
    }

    #[test]
    fn classifies_this_thread_as_running() {
        assert_eq!(
            classify(crate::stall::signal::gettid(), None),
            Classification::Cpu
        );
    }
}
