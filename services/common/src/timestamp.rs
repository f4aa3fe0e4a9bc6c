//! RFC 3339 UTC timestamps formatted into stack buffers: with milliseconds
//! (`2026-11-30T14:05:01.123Z`, as chrono's `to_rfc3339_opts(Millis, true)` writes them) for
//! the work report, two per response, and with microseconds (`…01.123456Z`, as
//! tracing-subscriber writes them) for the access log, one per request. chrono's formatter
//! and its String showed in the profile; here the date and time of day are formatted once
//! per second per thread and each call only writes its fraction.
use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

/// `YYYY-MM-DDTHH:MM:SS`, the part shared by every timestamp of one second.
type Second = [u8; 19];

thread_local! {
    /// The last second formatted on this thread.
    static LAST: Cell<(u64, Second)> = const { Cell::new((u64::MAX, [b'0'; 19])) };
}

/// Milliseconds: `2026-11-30T14:05:01.123Z`.
#[derive(Clone, Copy)]
pub struct Timestamp([u8; 24]);

/// Microseconds: `2026-11-30T14:05:01.123456Z`.
#[derive(Clone, Copy)]
pub struct MicrosTimestamp([u8; 27]);

impl Timestamp {
    pub fn now() -> Self {
        Self::at(SystemTime::now())
    }

    pub fn at(t: SystemTime) -> Self {
        Self(with_fraction(t, 3, |d| u64::from(d.subsec_millis())))
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits and punctuation are written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The same ASCII, without checking it is UTF-8 (for writers of bytes).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl MicrosTimestamp {
    pub fn now() -> Self {
        Self::at(SystemTime::now())
    }

    pub fn at(t: SystemTime) -> Self {
        Self(with_fraction(t, 6, |d| u64::from(d.subsec_micros())))
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The same ASCII, without checking it is UTF-8 (for writers of bytes).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// The second's prefix (cached per thread), `.`, `digits` of fraction, `Z`; `N` = 21 + digits.
fn with_fraction<const N: usize>(
    t: SystemTime,
    digits_of_fraction: usize,
    fraction: impl Fn(std::time::Duration) -> u64,
) -> [u8; N] {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let prefix = match LAST.get() {
        (last, prefix) if last == secs => prefix,
        _ => {
            let prefix = second(secs);
            LAST.set((secs, prefix));
            prefix
        }
    };
    let mut b = [0u8; N];
    b[..19].copy_from_slice(&prefix);
    b[19] = b'.';
    digits(&mut b[20..20 + digits_of_fraction], fraction(since));
    b[N - 1] = b'Z';
    b
}

/// Everything up to the fraction.
fn second(secs: u64) -> Second {
    let (year, month, day) = civil_from_days(secs / 86_400);
    let of_day = secs % 86_400;
    let mut b = *b"0000-00-00T00:00:00";
    digits(&mut b[0..4], year % 10_000);
    digits(&mut b[5..7], month);
    digits(&mut b[8..10], day);
    digits(&mut b[11..13], of_day / 3600);
    digits(&mut b[14..16], of_day / 60 % 60);
    digits(&mut b[17..19], of_day % 60);
    b
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
    fn micros_match_chrono_and_share_the_cached_second_with_millis() {
        let mut micros = 0u64;
        while micros < 4_200_000_000_000_000 {
            let t = UNIX_EPOCH + Duration::from_micros(micros);
            let chrono = DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::Micros, true);
            assert_eq!(MicrosTimestamp::at(t).as_str(), chrono);
            assert_eq!(Timestamp::at(t).as_str(), format!("{}Z", &chrono[..23]));
            micros += 321_987_654_321;
        }
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
