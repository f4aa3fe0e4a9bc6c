//! Progress while a run lasts: a bar on a terminal, one line a second otherwise (CI logs,
//! pipes), nothing with `--quiet` or inside an experiment.
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::summary::Live;
use super::{Plan, Stop};

/// How a run shows its progress, on stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Progress {
    /// Nothing.
    #[default]
    Hidden,
    /// An indicatif bar (for a terminal).
    Bar,
    /// A plain line every second (for logs).
    Lines,
}

impl Progress {
    /// Hidden when `quiet`, a bar when stderr is a terminal, lines otherwise.
    pub fn auto(quiet: bool) -> Self {
        if quiet {
            Self::Hidden
        } else if std::io::stderr().is_terminal() {
            Self::Bar
        } else {
            Self::Lines
        }
    }
}

/// The running display; [`Reporter::finish`] stops it.
pub(crate) struct Reporter {
    task: Option<JoinHandle<()>>,
    bar: Option<ProgressBar>,
}

impl Reporter {
    pub(crate) fn start(progress: Progress, plan: &Plan, live: Arc<Live>, start: Instant) -> Self {
        match progress {
            Progress::Hidden => Self {
                task: None,
                bar: None,
            },
            Progress::Lines => Self {
                task: Some(tokio::spawn(lines(live, start))),
                bar: None,
            },
            Progress::Bar => {
                let bar = make_bar(plan.stop);
                let task = tokio::spawn(drive_bar(bar.clone(), plan.stop, live, start));
                Self {
                    task: Some(task),
                    bar: Some(bar),
                }
            }
        }
    }

    pub(crate) fn finish(self) {
        if let Some(task) = self.task {
            task.abort();
        }
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

fn make_bar(stop: Stop) -> ProgressBar {
    let (len, template) = match stop {
        Stop::Count(n) => (n, "{elapsed:>4} [{bar:30}] {pos}/{len} {msg}"),
        // Position in milliseconds of the duration.
        Stop::After(d) => (
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
            "{elapsed:>4} [{bar:30}] {msg}",
        ),
    };
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// One snapshot of the counts, as the display shows it.
struct Snapshot {
    sent: u64,
    ok: u64,
    errors: u64,
    done: u64,
    p99_ms: f64,
}

fn snapshot(live: &Live) -> Snapshot {
    let t = live.lock();
    Snapshot {
        sent: t.sent,
        ok: t.ok,
        errors: t.errors,
        done: t.done(),
        p99_ms: t.percentile_ms(0.99),
    }
}

async fn drive_bar(bar: ProgressBar, stop: Stop, live: Arc<Live>, start: Instant) {
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut last = (start, 0u64);
    loop {
        tick.tick().await;
        let s = snapshot(&live);
        let now = Instant::now();
        let rate = per_second(s.ok, last, now);
        if now.duration_since(last.0) >= Duration::from_secs(1) {
            last = (now, s.ok);
        }
        bar.set_message(format!(
            "ok {} · errors {} · in flight {} · {rate:.0} ok/s · p99 {:.1} ms",
            s.ok,
            s.errors,
            s.sent - s.done,
            s.p99_ms
        ));
        bar.set_position(match stop {
            Stop::Count(_) => s.done,
            Stop::After(_) => u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
        });
    }
}

async fn lines(live: Arc<Live>, start: Instant) {
    let mut tick = tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut last = (start, 0u64);
    loop {
        tick.tick().await;
        let s = snapshot(&live);
        let now = Instant::now();
        eprintln!(
            "{}",
            line(now.duration_since(start), &s, per_second(s.ok, last, now))
        );
        last = (now, s.ok);
    }
}

fn line(elapsed: Duration, s: &Snapshot, rate: f64) -> String {
    format!(
        "loadgen: {:>5.1}s  sent {}  ok {}  errors {}  in flight {}  {rate:.1} ok/s  p99 {:.1} ms",
        elapsed.as_secs_f64(),
        s.sent,
        s.ok,
        s.errors,
        s.sent - s.done,
        s.p99_ms
    )
}

/// 2xx answers per second since `last` (when `last.1` had been counted).
fn per_second(ok: u64, last: (Instant, u64), now: Instant) -> f64 {
    let secs = now.duration_since(last.0).as_secs_f64();
    if secs > 0.0 {
        ok.saturating_sub(last.1) as f64 / secs
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_progress_line_says_everything_on_one_line() {
        let s = Snapshot {
            sent: 120,
            ok: 100,
            errors: 5,
            done: 105,
            p99_ms: 21.04,
        };
        let l = line(Duration::from_millis(3000), &s, 49.96);
        assert_eq!(
            l,
            "loadgen:   3.0s  sent 120  ok 100  errors 5  in flight 15  50.0 ok/s  p99 21.0 ms"
        );
        assert_eq!(Progress::auto(true), Progress::Hidden);
    }
}
