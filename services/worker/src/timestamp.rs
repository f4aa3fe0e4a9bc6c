//! RFC 3339 UTC timestamps with milliseconds (`2026-11-30T14:05:01.123Z`, as chrono's
//! `to_rfc3339_opts(Millis, true)` writes them), formatted into a stack buffer: two per work
//! response, where chrono's formatter and its String showed in the profile. The date and
//! time of day are formatted once per second per thread.
use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy)]
pub(crate) struct Timestamp([u8; 24]);

const TEMPLATE: [u8; 24] = *b"0000-00-00T00:00:00.000Z";

thread_local! {
    /// The last second formatted on this thread, and its timestamp: requests in the same
    /// second only write their milliseconds.
    static LAST: Cell<(u64, [u8; 24])> = const { Cell::new((u64::MAX, TEMPLATE)) };
}

impl Timestamp {
    pub(crate) fn now() -> Self {
        Self::at(SystemTime::now())
    }

    pub(crate) fn at(t: SystemTime) -> Self {
        let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs();
        let mut b = match LAST.get() {
            (last, b) if last == secs => b,
            _ => {
                let b = Self::second(secs);
                LAST.set((secs, b));
                b
            }
        };
        digits(&mut b[20..23], u64::from(since.subsec_millis()));
        Self(b)
    }

    /// Everything but the milliseconds.
    fn second(secs: u64) -> [u8; 24] {
        let (year, month, day) = civil_from_days(secs / 86_400);
        let of_day = secs % 86_400;
        let mut b = TEMPLATE;
        digits(&mut b[0..4], year % 10_000);
        digits(&mut b[5..7], month);
        digits(&mut b[8..10], day);
        digits(&mut b[11..13], of_day / 3600);
        digits(&mut b[14..16], of_day / 60 % 60);
        digits(&mut b[17..19], of_day % 60);
        b
    }

    pub(crate) fn as_str(&self) -> &str {
        // Only ASCII digits are written over an ASCII template.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// `value` in decimal, zero-padded to the width of `out`.
fn digits(out: &mut [u8], mut value: u64) {
    for byte in out.iter_mut().rev() {
        *byte = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// (year, month, day) of a day count since 1970-01-01, in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::{DateTime, SecondsFormat, Utc};

    use super::*;

    #[test]
    fn matches_chrono_across_leap_days_and_centuries() {
        let mut secs = 0u64;
        // Every ~3.7 days from 1970 to past 2100 (not a leap year), at odd times of day.
        while secs < 4_200_000_000 {
            let t = UNIX_EPOCH + Duration::from_millis(secs * 1000 + secs % 1000);
            let chrono = DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::Millis, true);
            assert_eq!(Timestamp::at(t).as_str(), chrono);
            secs += 321_987;
        }
        let leap = UNIX_EPOCH + Duration::from_millis(951_782_400_007); // 2000-02-29
        assert_eq!(Timestamp::at(leap).as_str(), "2000-02-29T00:00:00.007Z");
    }

    #[test]
    fn the_same_second_again_changes_only_the_milliseconds() {
        let t = |ms| Timestamp::at(UNIX_EPOCH + Duration::from_millis(ms));
        assert_eq!(t(1_764_511_501_123).as_str(), "2025-11-30T14:05:01.123Z");
        assert_eq!(t(1_764_511_501_999).as_str(), "2025-11-30T14:05:01.999Z");
        assert_eq!(t(1_764_511_502_000).as_str(), "2025-11-30T14:05:02.000Z");
        assert_eq!(t(1_764_511_501_001).as_str(), "2025-11-30T14:05:01.001Z");
    }
}
