//! Every `unsafe` of stall capture, in one place: the real-time signal that parks a blocked
//! worker thread, reads of its parked stack, the loaded modules' unwind tables, and the
//! request context of the parked poll.
//!
//! The protocol, one capture at a time (only the watchdog thread captures):
//! 1. the watchdog writes the target (sequence number, tid), sets REQUESTED and `tgkill`s;
//! 2. the handler, on the target thread, checks the target is itself, copies pc/sp/fp/lr from
//!    the ucontext into atomics, sets PARKED and spins (only atomics, `gettid` and
//!    `clock_gettime`: async-signal-safe; no allocation, lock or logging);
//! 3. the watchdog turns PARKED into HELD, unwinds the parked stack, takes a reference to the
//!    request context, and sets RELEASED; the handler sets IDLE and returns, and the
//!    interrupted sleep or syscall resumes (std's `sleep` loops on EINTR; SA_RESTART does
//!    the rest).
//!
//! If the watchdog is late, the handler gives up after [`PARK_LIMIT`] (PARKED → IDLE) and the
//! capture fails; once HELD, the handler waits for RELEASED: the watchdog's held section is
//! allocation-free and bounded, and a drop guard releases even if it panics.
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::context::RequestContext;
use super::slot::WorkerSlot;

const IDLE: u64 = 0;
const REQUESTED: u64 = 1;
const PARKED: u64 = 2;
const HELD: u64 = 3;
const RELEASED: u64 = 4;

/// Low byte: the phase above; the rest: the capture's sequence number.
static STATE: AtomicU64 = AtomicU64::new(IDLE);
/// `seq << 32 | tid` of the thread asked to park.
static TARGET: AtomicU64 = AtomicU64::new(0);
static SEQ: AtomicU64 = AtomicU64::new(0);
static INSTALLED: AtomicBool = AtomicBool::new(false);
/// pc, sp, fp, lr (lr is 0 on x86_64) of the parked thread.
static REGS: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];

/// How long the handler waits for the watchdog before resuming the thread uncaptured.
const PARK_LIMIT: Duration = Duration::from_millis(250);

fn tag(seq: u64, phase: u64) -> u64 {
    (seq << 8) | phase
}

pub(crate) fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::gettid() }
}

/// The highest address of the calling thread's stack (it grows down from there).
pub(crate) fn stack_top() -> Option<u64> {
    // SAFETY: `attr` is initialised by pthread_getattr_np before use and destroyed after;
    // `addr`/`size` are plain out-parameters.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return None;
        }
        let mut addr: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let rc = libc::pthread_attr_getstack(&attr, &mut addr, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        (rc == 0).then(|| addr as u64 + size as u64)
    }
}

/// The signal: a real-time one above glibc's reserved ones, unused by actix, tokio or sentry.
fn signal_number() -> libc::c_int {
    libc::SIGRTMIN() + 5
}

/// Whether this build can read registers from a signal context.
pub(crate) const SUPPORTED: bool = cfg!(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
));

/// Installs the handler once; later calls report the first result.
pub(crate) fn install() -> Result<(), String> {
    if !SUPPORTED {
        return Err("stall capture supports Linux on x86_64 and aarch64 only".into());
    }
    if INSTALLED.load(Ordering::Acquire) {
        return Ok(());
    }
    // SAFETY: the sigaction struct is zeroed then filled; `on_signal` has the SA_SIGINFO
    // signature and only does async-signal-safe work (see the module comment).
    let rc = unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(signal_number(), &action, std::ptr::null_mut())
    };
    if rc != 0 {
        return Err(format!(
            "sigaction failed: {}",
            std::io::Error::last_os_error()
        ));
    }
    INSTALLED.store(true, Ordering::Release);
    Ok(())
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn registers(context: &libc::ucontext_t) -> [u64; 4] {
    let g = &context.uc_mcontext.gregs;
    [
        g[libc::REG_RIP as usize] as u64,
        g[libc::REG_RSP as usize] as u64,
        g[libc::REG_RBP as usize] as u64,
        0,
    ]
}

#[cfg(all(target_os = "linux", target_arch = "aarch64"))]
fn registers(context: &libc::ucontext_t) -> [u64; 4] {
    let m = &context.uc_mcontext;
    [m.pc, m.sp, m.regs[29], m.regs[30]]
}

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
fn registers(_: &libc::ucontext_t) -> [u64; 4] {
    [0; 4]
}

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime is async-signal-safe and `ts` is a valid out-parameter.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

extern "C" fn on_signal(_: libc::c_int, _: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: errno is thread-local; we restore what the interrupted code saw.
    let errno = unsafe { *libc::__errno_location() };
    let state = STATE.load(Ordering::Acquire);
    let seq = state >> 8;
    let me = gettid() as u32 as u64;
    if state & 0xff == REQUESTED
        && TARGET.load(Ordering::Acquire) == (seq << 32) | me
        && !context.is_null()
    {
        // SAFETY: with SA_SIGINFO the kernel passes a valid ucontext_t as the third argument.
        let regs = registers(unsafe { &*context.cast::<libc::ucontext_t>() });
        for (slot, value) in REGS.iter().zip(regs) {
            slot.store(value, Ordering::Relaxed);
        }
        if STATE
            .compare_exchange(state, tag(seq, PARKED), Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            wait_for_release(seq);
        }
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Spins on the target thread until the watchdog releases it (or gives up on it).
fn wait_for_release(seq: u64) {
    let deadline = monotonic_ns() + PARK_LIMIT.as_nanos() as u64;
    loop {
        let now = STATE.load(Ordering::Acquire);
        if now == tag(seq, PARKED) {
            if monotonic_ns() > deadline
                && STATE
                    .compare_exchange(now, tag(seq, IDLE), Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            {
                return;
            }
        } else if now == tag(seq, RELEASED) {
            STATE.store(tag(seq, IDLE), Ordering::Release);
            return;
        } else if now != tag(seq, HELD) {
            return;
        }
        std::hint::spin_loop();
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum CaptureError {
    #[error("stall capture is not supported here: {0}")]
    Unsupported(String),
    #[error("the signal could not be sent: {0}")]
    Signal(std::io::Error),
    #[error("the thread did not stop within {0:?} (uninterruptible, or signal blocked)")]
    Timeout(Duration),
    #[error("a previous capture has not finished")]
    Busy,
}

/// The registers of a parked thread and a way to read its stack, valid only inside
/// [`with_parked_thread`]'s callback (which is when the thread is parked).
pub(crate) struct Parked<'a> {
    pub(crate) pc: u64,
    pub(crate) sp: u64,
    pub(crate) fp: u64,
    #[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
    pub(crate) lr: u64,
    top: u64,
    slot: &'a WorkerSlot,
}

impl Parked<'_> {
    /// One aligned word of the parked thread's stack, between its sp and the stack's top.
    pub(crate) fn read_stack(&self, addr: u64) -> Result<u64, ()> {
        if !addr.is_multiple_of(8)
            || addr < self.sp
            || addr.checked_add(8).is_none_or(|end| end > self.top)
        {
            return Err(());
        }
        // SAFETY: [sp, top) is the in-use part of the parked thread's stack, mapped for as
        // long as the thread lives (it cannot exit: it is spinning in our handler), and not
        // written while parked. A volatile read of a u64 there cannot fault.
        Ok(unsafe { std::ptr::read_volatile(addr as *const u64) })
    }

    /// The request of the poll the thread is parked in, if it is still the poll that started
    /// at `started_ns`.
    pub(crate) fn request(&self, started_ns: u64) -> Option<Arc<RequestContext>> {
        let (started, ptr) = self.slot.running()?;
        if started != started_ns || ptr.is_null() {
            return None;
        }
        // SAFETY: the slot still shows the poll that started at `started_ns`, so the thread
        // was interrupted inside that poll: `PollTimed::poll` stores the pointer, then the
        // start, and its guard clears the start before the poll returns or unwinds. The
        // `PollTimed` owning the `Arc` behind `ptr` lives at least until that poll returns,
        // and the thread cannot return while parked here. So `ptr` points at a live
        // `RequestContext` with a strong count >= 1; adding one and taking it as ours is
        // sound, and keeps it alive after the release.
        unsafe {
            Arc::increment_strong_count(ptr);
            Some(Arc::from_raw(ptr))
        }
    }
}

/// Sets RELEASED when the held section ends, including by a panic.
struct Release(u64);

impl Drop for Release {
    fn drop(&mut self) {
        STATE.store(tag(self.0, RELEASED), Ordering::Release);
    }
}

/// Interrupts `slot`'s thread, waits up to `wait` for it to park, runs `held` while it is
/// parked, then lets it go. `held` must not allocate or lock: the parked thread may hold
/// the allocator's or any other lock.
pub(crate) fn with_parked_thread<R>(
    slot: &WorkerSlot,
    wait: Duration,
    held: impl FnOnce(&Parked<'_>) -> R,
) -> Result<R, CaptureError> {
    if !INSTALLED.load(Ordering::Acquire) {
        return Err(CaptureError::Unsupported(
            "the signal handler is not installed".into(),
        ));
    }
    let Some(top) = slot.stack_top else {
        return Err(CaptureError::Unsupported(
            "the thread's stack bounds are unknown".into(),
        ));
    };
    let idle = STATE.load(Ordering::Acquire);
    if idle & 0xff != IDLE {
        return Err(CaptureError::Busy);
    }
    let seq = (SEQ.fetch_add(1, Ordering::Relaxed) + 1) & 0xffff_ffff;
    TARGET.store((seq << 32) | slot.tid as u32 as u64, Ordering::Release);
    if STATE
        .compare_exchange(
            idle,
            tag(seq, REQUESTED),
            Ordering::AcqRel,
            Ordering::Acquire,
        )
        .is_err()
    {
        return Err(CaptureError::Busy);
    }
    // SAFETY: tgkill with our own pid, a tid of ours and a signal whose handler is installed.
    let rc = unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), slot.tid, signal_number()) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        STATE.store(tag(seq, IDLE), Ordering::Release);
        return Err(CaptureError::Signal(err));
    }
    let deadline = Instant::now() + wait;
    loop {
        let now = STATE.load(Ordering::Acquire);
        if now == tag(seq, PARKED) {
            if STATE
                .compare_exchange(now, tag(seq, HELD), Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                break;
            }
            continue;
        }
        if now != tag(seq, REQUESTED) {
            // The handler gave up waiting for us.
            return Err(CaptureError::Timeout(wait));
        }
        if Instant::now() >= deadline {
            if STATE
                .compare_exchange(now, tag(seq, IDLE), Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return Err(CaptureError::Timeout(wait));
            }
            continue;
        }
        // The watchdog thread waiting for the parked thread, never an event loop.
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(Duration::from_micros(20));
    }
    let out = {
        let _release = Release(seq);
        let [pc, sp, fp, lr] = [0, 1, 2, 3].map(|i| REGS[i].load(Ordering::Relaxed));
        held(&Parked {
            pc,
            sp,
            fp,
            lr,
            top,
            slot,
        })
    };
    // Let the handler return (RELEASED -> IDLE) before the next capture may start.
    let deadline = Instant::now() + wait;
    while STATE.load(Ordering::Acquire) == tag(seq, RELEASED) && Instant::now() < deadline {
        // As above: the watchdog thread.
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(Duration::from_micros(20));
    }
    Ok(out)
}

/// A loaded ELF object's unwind data, copied out of its mapped segments.
pub(crate) struct LoadedModule {
    pub(crate) name: String,
    /// Load bias: runtime address minus the address stated in the file.
    pub(crate) base: u64,
    /// Runtime addresses the object's loadable segments span.
    pub(crate) avma: Range<u64>,
    pub(crate) text_svma: Option<Range<u64>>,
    pub(crate) eh_frame_hdr: Option<(Range<u64>, Vec<u8>)>,
    pub(crate) eh_frame: Option<(Range<u64>, Vec<u8>)>,
}

/// Every object loaded now (the executable, libc, the vDSO...), via `dl_iterate_phdr`.
pub(crate) fn loaded_modules() -> Vec<LoadedModule> {
    let mut modules: Vec<LoadedModule> = Vec::new();
    // SAFETY: the callback receives valid dl_phdr_info pointers for the duration of each
    // call and `data` is the `&mut Vec` passed here, used only during this call.
    unsafe {
        libc::dl_iterate_phdr(
            Some(collect_module),
            (&raw mut modules).cast::<libc::c_void>(),
        );
    }
    modules
}

unsafe extern "C" fn collect_module(
    info: *mut libc::dl_phdr_info,
    _size: libc::size_t,
    data: *mut libc::c_void,
) -> libc::c_int {
    // SAFETY: see `loaded_modules`: both pointers are valid for this call.
    let (info, modules) = unsafe { (&*info, &mut *data.cast::<Vec<LoadedModule>>()) };
    if info.dlpi_phdr.is_null() {
        return 0;
    }
    // SAFETY: dlpi_phdr points at dlpi_phnum program headers.
    let headers = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum.into()) };
    let base = info.dlpi_addr;
    let name = if info.dlpi_name.is_null() {
        String::new()
    } else {
        // SAFETY: a non-null dlpi_name is a NUL-terminated string.
        unsafe { std::ffi::CStr::from_ptr(info.dlpi_name) }
            .to_string_lossy()
            .into_owned()
    };
    let loads: Vec<&libc::Elf64_Phdr> = headers
        .iter()
        .filter(|h| h.p_type == libc::PT_LOAD)
        .collect();
    let (Some(lo), Some(hi)) = (
        loads.iter().map(|h| h.p_vaddr).min(),
        loads.iter().map(|h| h.p_vaddr + h.p_memsz).max(),
    ) else {
        return 0;
    };
    let text_svma = loads
        .iter()
        .find(|h| h.p_flags & libc::PF_X != 0)
        .map(|h| h.p_vaddr..h.p_vaddr + h.p_memsz);
    // Bytes of a loaded segment, from `svma` to the end of the file-backed part of its segment.
    let segment_tail = |svma: u64, limit: Option<u64>| -> Option<(Range<u64>, Vec<u8>)> {
        let seg = loads
            .iter()
            .find(|h| (h.p_vaddr..h.p_vaddr + h.p_filesz).contains(&svma))?;
        let mut end = seg.p_vaddr + seg.p_filesz;
        if let Some(limit) = limit {
            end = end.min(svma + limit);
        }
        let len = usize::try_from(end - svma).ok()?;
        // SAFETY: [svma, end) lies inside the file-backed part of a PT_LOAD segment of an
        // object that is loaded now, so base + svma is mapped and readable for `len` bytes.
        let bytes = unsafe { std::slice::from_raw_parts((base + svma) as *const u8, len) };
        Some((svma..end, bytes.to_vec()))
    };
    let eh_frame_hdr = headers
        .iter()
        .find(|h| h.p_type == libc::PT_GNU_EH_FRAME)
        .and_then(|h| segment_tail(h.p_vaddr, Some(h.p_memsz)));
    let eh_frame = eh_frame_hdr
        .as_ref()
        .and_then(|(range, bytes)| eh_frame_svma(range.start, bytes))
        .and_then(|svma| segment_tail(svma, None));
    modules.push(LoadedModule {
        name,
        base,
        avma: base + lo..base + hi,
        text_svma,
        eh_frame_hdr,
        eh_frame,
    });
    0
}

/// Where `.eh_frame` starts, from the `.eh_frame_hdr` header (version 1, pointer encoded
/// pc-relative signed 4 bytes, as every Linux linker writes it).
fn eh_frame_svma(hdr_svma: u64, hdr: &[u8]) -> Option<u64> {
    const PCREL_SDATA4: u8 = 0x1b;
    if hdr.len() < 8 || hdr[0] != 1 || hdr[1] != PCREL_SDATA4 {
        return None;
    }
    let offset = i32::from_le_bytes(hdr[4..8].try_into().ok()?);
    (hdr_svma + 4).checked_add_signed(offset.into())
}

/// How long ago the kernel last received data on this TCP socket (`tcpi_last_data_recv`,
/// millisecond resolution): for a request read just now, how long its bytes waited.
pub(crate) fn tcp_last_data_received(fd: std::os::fd::RawFd) -> Option<Duration> {
    // SAFETY: `info` is a plain C struct the kernel fills (zeroed first); `len` says its size.
    // A closed or reused fd only makes getsockopt fail or describe another socket: no UB.
    let (rc, info) = unsafe {
        let mut info: libc::tcp_info = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        let rc = libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&raw mut info).cast::<libc::c_void>(),
            &mut len,
        );
        (rc, info)
    };
    (rc == 0).then(|| Duration::from_millis(info.tcpi_last_data_recv.into()))
}

/// Lowers the calling thread's scheduling priority (nice 10): symbolizing a stack is
/// diagnostics, and must not take a CPU from the requests on a busy machine.
pub(crate) fn lower_this_thread_priority() {
    // SAFETY: setpriority on our own thread id; raising the nice value needs no privilege.
    // Failure leaves the priority as it was, which is harmless.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, gettid() as libc::id_t, 10);
    }
}
