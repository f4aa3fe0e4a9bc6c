//! Memory after connection floods. An app-port connection costs 10 to 12 KB of actix buffers
//! (8,000 idle connections on 2 workers: +81 MB). When they close, glibc keeps the freed memory
//! in its per-thread arenas, so RSS stayed at the flood's peak for good; `MALLOC_ARENA_MAX=2`
//! alone won back 13 of those 81 MB. So a background thread (never an event loop) watches the
//! number of open connections and, once a flood has drained, calls `malloc_trim(0)`, which
//! hands the free pages of every arena back to the kernel. During a flood, `--max-connections`
//! bounds what it can take.
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// App-port connections open now, and the most open since the trimmer last looked.
static OPEN: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// A drop of this many connections from the peak (about 10 MB of buffers) is worth a trim.
const TRIM_AFTER_CLOSED: usize = 1_000;
/// How often the trimmer looks: a flood's memory is back at most this long after it ends.
const LOOK_EVERY: Duration = Duration::from_secs(2);

/// Held by each app-port connection for its life.
pub(crate) struct OpenConnection(());

impl OpenConnection {
    pub(crate) fn new() -> Self {
        let open = OPEN.fetch_add(1, Ordering::Relaxed) + 1;
        PEAK.fetch_max(open, Ordering::Relaxed);
        Self(())
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Starts the trimmer thread, once per process.
pub(crate) fn start_trimmer() {
    static STARTED: Once = Once::new();
    STARTED.call_once(|| {
        let spawned = std::thread::Builder::new()
            .name("loopscope-trim".into())
            .spawn(|| {
                loop {
                    // Our own thread, not an event loop: sleeping here blocks nobody.
                    #[allow(clippy::disallowed_methods)]
                    std::thread::sleep(LOOK_EVERY);
                    let open = OPEN.load(Ordering::Relaxed);
                    let peak = PEAK.swap(open, Ordering::Relaxed);
                    if peak.saturating_sub(open) >= TRIM_AFTER_CLOSED {
                        trim(peak, open);
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "no memory trimmer thread: RSS stays high after floods");
        }
    });
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim(peak: usize, open: usize) {
    let before = rss_bytes();
    crate::sys::malloc_trim();
    let after = rss_bytes();
    tracing::info!(
        connections_peak = peak,
        connections_open = open,
        rss_before_mb = before / (1 << 20),
        rss_after_mb = after / (1 << 20),
        "connection flood drained: freed memory handed back to the kernel"
    );
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim(_peak: usize, _open: usize) {}

/// Resident set size from /proc/self/status (on the trimmer's thread: a blocking read is fine).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kib| kib * 1024)
}
