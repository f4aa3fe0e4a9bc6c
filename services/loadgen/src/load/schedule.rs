//! The open model's clock: when request `i` is meant to leave, whether it leaves at all, and
//! what its latency is. Pure functions, so the arithmetic is tested without a network.
use std::time::Duration;

use super::Stop;

/// When request `i` (0-based) is meant to leave, counted from the start: `i / rate`.
///
/// Computed from `i` each time, never by adding intervals, so rounding does not accumulate
/// over a long run.
pub fn intended_offset(i: u64, rate: f64) -> Duration {
    Duration::from_secs_f64(i as f64 / rate)
}

/// Whether the open model sends request `i`, meant to leave `offset` after the start.
pub(crate) fn open_admits(stop: Stop, i: u64, offset: Duration) -> bool {
    match stop {
        Stop::Count(n) => i < n,
        Stop::After(d) => offset < d,
    }
}

/// How many requests an open run of `stop` sends at `rate`.
#[cfg(test)]
pub(crate) fn open_total(stop: Stop, rate: f64) -> u64 {
    match stop {
        Stop::Count(n) => n,
        Stop::After(_) => (0..)
            .take_while(|&i| open_admits(stop, i, intended_offset(i, rate)))
            .count() as u64,
    }
}

/// The latency of a request meant to leave at `intended`, answered at `answered` (both as
/// offsets from the start): the wait for a late send counts, or a stalled server would hide
/// its queue. Never negative: an answer cannot come before its own schedule.
pub fn latency(intended: Duration, answered: Duration) -> Duration {
    answered.saturating_sub(intended)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn intended_times_follow_the_rate_without_drift() {
        assert_eq!(intended_offset(0, 50.0), Duration::ZERO);
        assert_eq!(intended_offset(1, 50.0), MS(20));
        assert_eq!(intended_offset(50, 50.0), Duration::from_secs(1));
        assert_eq!(intended_offset(3, 0.5), Duration::from_secs(6));
        // A million intervals of 1/3 ms land on 333.333 s, not a drifted sum.
        let far = intended_offset(1_000_000, 3000.0).as_secs_f64();
        assert!((far - 333.333_333).abs() < 1e-5, "{far}");
    }

    #[test]
    fn a_duration_stop_sends_rate_times_duration() {
        assert_eq!(open_total(Stop::After(Duration::from_secs(2)), 50.0), 100);
        assert_eq!(open_total(Stop::After(MS(1)), 50.0), 1);
        assert_eq!(open_total(Stop::After(MS(1500)), 2.0), 3);
        assert_eq!(open_total(Stop::Count(7), 1.0), 7);
    }

    #[test]
    fn latency_counts_from_the_intended_send_time() {
        // The server stalls for 1 s from t=0: request i, meant for i*20 ms, is sent late
        // (whenever the client gets to it) and answered at 1000 ms + 1 ms. Its latency is
        // measured from i*20 ms, not from the late send.
        let answered = |_: u64| MS(1001);
        let latencies: Vec<Duration> = (0..50)
            .map(|i| latency(intended_offset(i, 50.0), answered(i)))
            .collect();
        assert_eq!(latencies[0], MS(1001));
        assert_eq!(latencies[25], MS(501));
        assert_eq!(latencies[49], MS(21));
        // A closed client would have measured 1001 ms once and then 1 ms, again and again.
        assert_eq!(latency(MS(30), MS(10)), Duration::ZERO);
    }
}
