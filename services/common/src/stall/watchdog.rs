//! The watchdog: one plain thread that looks at every worker's slot every 10 ms and captures
//! a poll that has been running longer than the capture threshold, while it still runs.
//!
//! When no poll is running it looks less often, every quarter of the threshold (25 ms by
//! default): a poll that starts meanwhile is seen before it is a quarter of the threshold old,
//! when the first look at its CPU time is due anyway, and is then watched every 10 ms as
//! before, so no capture comes later. An idle service's watchdog wakes 40 times a second
//! instead of 100.
use std::collections::HashMap;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use super::classify::{SchedStat, classify, schedstat};
use super::report::{Capture, CaptureOutcome, Message};
use super::signal::{self, CaptureError};
use super::slot::{self, WorkerSlot, now_ns};
use super::unwind::{MAX_FRAMES, StackUnwinder};

const TICK: Duration = Duration::from_millis(10);

/// How long to sleep before the next look: [`TICK`] while a poll runs, else until a poll that
/// starts now would be a quarter of the threshold old.
fn next_look(threshold: Duration, any_running: bool) -> Duration {
    if any_running {
        TICK
    } else {
        TICK.max(threshold / 4)
    }
}
/// How long the watchdog waits for a signalled thread to park.
const PARK_WAIT: Duration = Duration::from_millis(100);
/// At most one stack per route per this long: a route that blocks on every request does not
/// get every request interrupted (each is still counted and reported).
const CAPTURE_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Watched {
    started_ns: u64,
    before: Option<SchedStat>,
    done: bool,
}

pub(crate) fn spawn(threshold: Duration, tx: Sender<Message>) -> std::io::Result<()> {
    let installed = signal::install();
    if let Err(e) = &installed {
        tracing::warn!(error = %e, "stall capture unavailable: stalls are counted and reported without a stack");
    }
    std::thread::Builder::new()
        .name("loopscope-stall-watchdog".into())
        .spawn(move || {
            let mut unwinder = installed.is_ok().then(StackUnwinder::new);
            let mut watched: HashMap<i32, Watched> = HashMap::new();
            let mut last_capture: HashMap<std::sync::Arc<str>, Instant> = HashMap::new();
            let threshold_ns = threshold.as_nanos() as u64;
            let mut any_running = false;
            loop {
                // The watchdog's own thread ticking, not an event loop.
                #[allow(clippy::disallowed_methods)]
                std::thread::sleep(next_look(threshold, any_running));
                let now = now_ns();
                any_running = false;
                for slot in slot::all() {
                    let Some((started_ns, _)) = slot.running() else {
                        watched.remove(&slot.tid);
                        continue;
                    };
                    any_running = true;
                    let w = watched.entry(slot.tid).or_default();
                    if w.started_ns != started_ns {
                        *w = Watched {
                            started_ns,
                            ..Default::default()
                        };
                    }
                    let age = now.saturating_sub(started_ns);
                    if w.done || slot.is_panicking() {
                        continue;
                    }
                    if w.before.is_none() && age >= threshold_ns / 4 {
                        // A first look at its CPU time, to tell running from starved later.
                        w.before = schedstat(slot.tid);
                    }
                    if age >= threshold_ns {
                        w.done = true;
                        let capture = capture(
                            slot,
                            started_ns,
                            w.before,
                            unwinder.as_mut(),
                            &mut last_capture,
                        );
                        if tx.send(Message::Captured(capture)).is_err() {
                            return;
                        }
                    }
                }
            }
        })?;
    Ok(())
}

fn capture(
    slot: &WorkerSlot,
    started_ns: u64,
    before: Option<SchedStat>,
    unwinder: Option<&mut StackUnwinder>,
    last_capture: &mut HashMap<std::sync::Arc<str>, Instant>,
) -> Capture {
    // Before the signal: the signal interrupts the very syscall we want to see.
    let classification = classify(slot.tid, before);
    let mut capture = Capture {
        worker: slot.worker.clone(),
        tid: slot.tid,
        started_ns,
        captured_ns: now_ns(),
        request: None,
        trace: None,
        addresses: Vec::new(),
        classification,
        outcome: CaptureOutcome::Unsupported,
        error: None,
    };
    let Some(unwinder) = unwinder else {
        capture.error = Some("the signal handler could not be installed".into());
        return capture;
    };
    let mut buf = [0u64; MAX_FRAMES];
    let now = Instant::now();
    // Held section: the thread is parked and may hold any lock, the allocator's included.
    // Nothing below allocates: a reference count, a map lookup, the unwind into `buf`.
    let held = signal::with_parked_thread(slot, PARK_WAIT, |parked| {
        let request = parked.request(started_ns);
        let limited = request.as_ref().is_some_and(|r| {
            last_capture
                .get(&*r.route)
                .is_some_and(|at| now.duration_since(*at) < CAPTURE_INTERVAL)
        });
        let n = if limited {
            0
        } else {
            unwinder.unwind(parked, &mut buf)
        };
        (request, limited, n)
    });
    match held {
        Ok((request, limited, n)) => {
            capture.outcome = if limited {
                CaptureOutcome::RateLimited
            } else if request.is_none() {
                // The poll ended between our look and the signal: this stack is not its.
                capture.error = Some("the poll ended before the thread stopped".into());
                CaptureOutcome::Failed
            } else {
                capture.addresses = buf[..n].to_vec();
                CaptureOutcome::Captured
            };
            if let Some(r) = &request
                && !limited
            {
                last_capture.insert(r.route.clone(), now);
            }
            // Released now; the trace ids were copied when the request started.
            capture.trace = request.as_ref().and_then(|r| r.trace());
            capture.request = request;
        }
        Err(e) => {
            capture.outcome = match e {
                CaptureError::Unsupported(_) => CaptureOutcome::Unsupported,
                _ => CaptureOutcome::Failed,
            };
            capture.error = Some(e.to_string());
        }
    }
    capture
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_watchdog_looks_before_a_new_poll_is_a_quarter_of_the_threshold_old() {
        let threshold = Duration::from_millis(100);
        assert_eq!(next_look(threshold, true), TICK);
        assert_eq!(next_look(threshold, false), Duration::from_millis(25));
        // A short threshold never slows the ticks.
        assert_eq!(next_look(Duration::from_millis(20), false), TICK);
        assert_eq!(next_look(Duration::from_millis(1), true), TICK);
    }
}
