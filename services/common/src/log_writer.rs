//! The log lines' way to stdout: a bounded buffer that event loops append to and one thread
//! of its own drains every [`DRAIN_EVERY`], so a line costs an event loop one uncontended lock
//! and a copy, and under load never a wake-up.
//!
//! Idle, the thread sleeps until a line comes: after [`QUIET_DRAINS`] drains in a row found
//! nothing (100 ms without a line), it marks itself asleep and the next line wakes it (one
//! futex call on an event loop, after a quiet spell only: a trickle of lines, down to 10 a
//! second, never wakes it). It used to look every 10 ms regardless: 100 wake-ups a second of
//! every idle service.
//!
//! tracing-appender's non-blocking writer, used before, hands every line through a channel
//! and wakes its thread for it: a futex call on the event loop, then a context switch, a
//! `write` and a few `sched_yield`s of that thread, on the same core under load. In the bench
//! (one core) that was most of the access log's cost. A line here waits at most
//! `DRAIN_EVERY` to reach stdout, which a log reader does not notice.
//!
//! Bounded: when stdout is not drained (a full pipe, a stuck log shipper) the buffer fills to
//! [`PENDING_BYTES`] and further lines are dropped and counted
//! (`loopscope_log_lines_dropped_total`) instead of the event loop waiting for stdout, which
//! is the bug loopscope exists to show. At most twice that is held: the lines waiting and the
//! batch being written. Both buffers are reserved whole at start (the kernel backs pages only
//! as they are written), so an append never reallocates under the lock.
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::{self, JoinHandle, Thread};
use std::time::Duration;

/// How often the log thread looks for lines, while lines come.
const DRAIN_EVERY: Duration = Duration::from_millis(10);

/// Empty drains in a row after which the log thread sleeps until a line wakes it.
const QUIET_DRAINS: u32 = 10;

/// Bytes of lines waiting for the log thread before lines are dropped: ~15 k access-log
/// lines, a second or two of stdout not keeping up at 10 k requests/s.
const PENDING_BYTES: usize = 4 << 20;

/// The most one `write` carries: PIPE_BUF, so a write to a pipe shared with other processes
/// stays atomic and lines never interleave. Cut at line ends.
const WRITE_BYTES: usize = 4096;

struct Shared {
    pending: Mutex<Pending>,
    dropped: AtomicU64,
    stop: AtomicBool,
    /// The log thread, to wake when it sleeps; set by the thread itself before its first
    /// drain (a line appended before that is found by the first drain).
    thread: OnceLock<Thread>,
}

struct Pending {
    lines: Vec<u8>,
    /// The log thread has written its last batch: a line now would never be written, so it
    /// is counted as dropped (a pool thread or the watchdog logging during the exit).
    closed: bool,
    /// The log thread found nothing to write and sleeps until a line wakes it.
    asleep: bool,
}

impl Shared {
    fn pending(&self) -> MutexGuard<'_, Pending> {
        // A panic while holding it leaves whole lines behind: keep using them.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn count_dropped(&self, lines: u64) {
        self.dropped.fetch_add(lines, Ordering::Relaxed);
    }
}

/// A handle to append lines with; clones share the buffer. Each `write` is one whole line
/// (tracing's fmt layer and the access log both write a formatted line at once).
#[derive(Clone)]
pub(crate) struct LineWriter(Arc<Shared>);

impl LineWriter {
    /// Lines dropped because the buffer was full.
    pub(crate) fn dropped_lines(&self) -> u64 {
        self.0.dropped.load(Ordering::Relaxed)
    }

    /// Appends `line`, or drops and counts it when the buffer is full. Never blocks on the
    /// sink: the lock is held for a copy, by the log thread for a swap.
    pub(crate) fn append(&self, line: &[u8]) {
        let mut pending = self.0.pending();
        if pending.closed || pending.lines.len() + line.len() > PENDING_BYTES {
            drop(pending);
            self.0.count_dropped(1);
            return;
        }
        pending.lines.extend_from_slice(line);
        let wake = std::mem::take(&mut pending.asleep);
        drop(pending);
        if wake && let Some(thread) = self.0.thread.get() {
            thread.unpark();
        }
    }
}

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.append(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LineWriter {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Owns the log thread. Dropping it writes what is left, waiting at most the time given to
/// [`spawn`]: a process whose stdout nobody reads must still exit on SIGTERM.
pub(crate) struct Drainer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    finished: std::sync::mpsc::Receiver<()>,
    flush_within: Duration,
}

/// Starts the log thread, writing to `sink`.
pub(crate) fn spawn(
    sink: impl Write + Send + 'static,
    flush_within: Duration,
) -> std::io::Result<(LineWriter, Drainer)> {
    let shared = Arc::new(Shared {
        pending: Mutex::new(Pending {
            lines: Vec::with_capacity(PENDING_BYTES),
            closed: false,
            asleep: false,
        }),
        dropped: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        thread: OnceLock::new(),
    });
    let (done, finished) = std::sync::mpsc::channel();
    let drained = Arc::clone(&shared);
    let thread = thread::Builder::new()
        .name("loopscope-log".into())
        .spawn(move || {
            drain(&drained, sink);
            let _ = done.send(());
        })?;
    let drainer = Drainer {
        shared: Arc::clone(&shared),
        thread: Some(thread),
        finished,
        flush_within,
    };
    Ok((LineWriter(shared), drainer))
}

/// The log thread: every `DRAIN_EVERY`, takes what is pending (a swap under the lock) and
/// writes it, until told to stop; then writes what is left once more. With nothing pending it
/// sleeps until the next line (or the stop) wakes it.
fn drain(shared: &Shared, mut sink: impl Write) {
    let _ = shared.thread.set(thread::current());
    let mut batch = Vec::with_capacity(PENDING_BYTES);
    let mut empty_drains = 0;
    loop {
        let stopping = shared.stop.load(Ordering::Acquire);
        let asleep = {
            let mut pending = shared.pending();
            std::mem::swap(&mut pending.lines, &mut batch);
            empty_drains = if batch.is_empty() {
                empty_drains + 1
            } else {
                0
            };
            // Under the same lock as the swap: no line slips in between and is lost uncounted,
            // and none is appended unseen after the thread decided to sleep.
            pending.closed = stopping;
            pending.asleep = empty_drains >= QUIET_DRAINS;
            pending.asleep
        };
        // Nothing runs between deciding to sleep and `park` (a sink's `flush` that parked
        // would take the wake-up meant for us).
        if !batch.is_empty() {
            let unwritten = write_lines(&mut sink, &batch);
            shared.count_dropped(unwritten);
            batch.clear();
        }
        if stopping {
            let _ = sink.flush();
            return;
        }
        // An unpark that came first (a line, the stop) makes either return at once.
        if asleep {
            thread::park();
        } else {
            thread::park_timeout(DRAIN_EVERY);
        }
    }
}

/// Writes `lines` in writes of at most `WRITE_BYTES`, each ending at a line end (a longer
/// line goes alone). A failing sink (stdout closed) loses the rest of the batch, not the
/// process: returns how many lines were not written.
fn write_lines(sink: &mut impl Write, mut lines: &[u8]) -> u64 {
    while !lines.is_empty() {
        let window = &lines[..lines.len().min(WRITE_BYTES)];
        let cut = match window.iter().rposition(|&b| b == b'\n') {
            Some(end) => end + 1,
            // One line longer than a write: all of it, up to its end.
            None => lines
                .iter()
                .position(|&b| b == b'\n')
                .map_or(lines.len(), |end| end + 1),
        };
        if sink.write_all(&lines[..cut]).is_err() {
            return lines.iter().filter(|&&b| b == b'\n').count() as u64;
        }
        lines = &lines[cut..];
    }
    let _ = sink.flush();
    0
}

impl Drop for Drainer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        let Some(thread) = self.thread.take() else {
            return;
        };
        thread.thread().unpark();
        // Joined only when it finished: a thread stuck in a `write` to a stdout nobody reads
        // is left behind, and the process exits without it.
        if self.finished.recv_timeout(self.flush_within).is_ok() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Instant;

    use super::*;

    /// A sink that records each write, to check order and write sizes.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<Vec<u8>>>>);

    impl Write for Recorder {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("the recorder").push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A sink whose first write never returns: stdout that nobody reads.
    struct Stuck(mpsc::Receiver<()>);

    impl Write for Stuck {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            let _ = self.0.recv();
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_arrives_in_order_in_whole_lines_of_at_most_pipe_buf() {
        let sink = Recorder::default();
        let (mut writer, drainer) =
            spawn(sink.clone(), Duration::from_secs(5)).expect("the log thread");
        for i in 0..2_000 {
            // One write per line, as tracing's layer and the access log write them
            // (`writeln!` would write each formatted piece on its own).
            let line = format!("line {i} {}\n", "x".repeat(i % 300));
            writer.write_all(line.as_bytes()).expect("a write");
        }
        drop(drainer);
        let writes = sink.0.lock().expect("the recorder").clone();
        assert!(
            writes
                .iter()
                .all(|w| w.len() <= WRITE_BYTES && w.ends_with(b"\n"))
        );
        assert!(writes.len() < 2_000, "lines are written together");
        let text = String::from_utf8(writes.concat()).expect("a write");
        let numbers: Vec<usize> = text
            .lines()
            .map(|l| {
                l.split(' ')
                    .nth(1)
                    .and_then(|n| n.parse().ok())
                    .expect("a numbered line")
            })
            .collect();
        assert_eq!(numbers, (0..2_000).collect::<Vec<_>>());
        assert_eq!(writer.dropped_lines(), 0);
    }

    #[test]
    fn a_line_longer_than_a_write_goes_whole_and_alone() {
        let sink = Recorder::default();
        let (mut writer, drainer) =
            spawn(sink.clone(), Duration::from_secs(5)).expect("the log thread");
        let long = format!("{}\n", "y".repeat(3 * WRITE_BYTES));
        writer.write_all(b"short\n").expect("a write");
        writer.write_all(long.as_bytes()).expect("a write");
        writer.write_all(b"after\n").expect("a write");
        drop(drainer);
        let writes = sink.0.lock().expect("the recorder").clone();
        assert!(
            writes.contains(&long.clone().into_bytes()),
            "{} writes",
            writes.len()
        );
        assert_eq!(
            writes.concat(),
            [b"short\n", long.as_bytes(), b"after\n"].concat()
        );
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // a plain test thread, no event loop
    fn lines_reach_the_sink_while_the_process_runs() {
        let sink = Recorder::default();
        let (mut writer, _drainer) =
            spawn(sink.clone(), Duration::from_secs(5)).expect("the log thread");
        writer.write_all(b"hello\n").expect("a write");
        let deadline = Instant::now() + Duration::from_secs(5);
        while sink.0.lock().expect("the recorder").is_empty() {
            assert!(Instant::now() < deadline, "the line never reached the sink");
            thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // a plain test thread, no event loop
    fn a_line_after_a_quiet_spell_wakes_the_sleeping_thread() {
        let sink = Recorder::default();
        let (mut writer, _drainer) =
            spawn(sink.clone(), Duration::from_secs(5)).expect("the log thread");
        let arrived = |n: usize| {
            let deadline = Instant::now() + Duration::from_secs(2);
            while sink.0.lock().expect("the recorder").concat().len() < n {
                assert!(Instant::now() < deadline, "line {n} never reached the sink");
                thread::sleep(Duration::from_millis(2));
            }
        };
        writer.write_all(b"first\n").expect("a write");
        arrived(6);
        // The thread falls asleep after a quiet spell (on a busy machine, later).
        let deadline = Instant::now() + Duration::from_secs(5);
        while !writer.0.pending().asleep {
            assert!(Instant::now() < deadline, "the thread never fell asleep");
            thread::sleep(DRAIN_EVERY);
        }
        writer.write_all(b"second\n").expect("a write");
        arrived(13);
    }

    /// A sink that refuses every write: stdout closed.
    struct Closed;

    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_a_closed_sink_refuses_and_lines_after_the_exit_are_counted() {
        let (mut writer, drainer) = spawn(Closed, Duration::from_secs(5)).expect("the log thread");
        for i in 0..100 {
            writer
                .write_all(format!("line {i}\n").as_bytes())
                .expect("a write");
        }
        drop(drainer);
        assert_eq!(writer.dropped_lines(), 100, "every refused line is counted");
        writer.write_all(b"after the exit\n").expect("a write");
        assert_eq!(
            writer.dropped_lines(),
            101,
            "a line after the last drain too"
        );
    }

    #[test]
    fn a_stuck_sink_drops_and_counts_lines_without_blocking_and_exit_does_not_wait_for_it() {
        let (_release, held) = mpsc::channel();
        let (mut writer, drainer) =
            spawn(Stuck(held), Duration::from_millis(200)).expect("the log thread");
        let line = format!("{}\n", "z".repeat(1023));
        // The first drain takes a batch and hangs in its write; everything after piles up.
        let started = Instant::now();
        let lines = 3 * PENDING_BYTES / line.len();
        for _ in 0..lines {
            writer.write_all(line.as_bytes()).expect("a write");
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "appending {lines} lines took {:?}",
            started.elapsed()
        );
        let dropped = writer.dropped_lines();
        // At most the buffer plus the batch in the stuck write were kept.
        assert!(
            dropped as usize >= lines - 2 * PENDING_BYTES / line.len(),
            "{dropped}"
        );
        let exiting = Instant::now();
        drop(drainer);
        assert!(
            exiting.elapsed() < Duration::from_secs(2),
            "{:?}",
            exiting.elapsed()
        );
    }
}
