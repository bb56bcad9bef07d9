//! Fixed windows: a counter belongs to the window its request arrived in, named by an id
//! (minutes, days or months since the Unix epoch, UTC). A window resets all at once at its
//! end, so a client may send up to twice a per-minute limit across one boundary; in return
//! every decision is one atomic read-compare-increment, the same in memory and in Redis.
//! The Redis script computes the same ids from the Redis server's clock (see `redis.rs`).

/// How long a counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Window {
    Minute,
    /// A UTC day.
    Day,
    /// A UTC calendar month.
    Month,
    /// Never resets.
    Total,
}

impl Window {
    /// The one-letter code the Redis script reads.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Self::Minute => "m",
            Self::Day => "d",
            Self::Month => "M",
            Self::Total => "t",
        }
    }

    /// The id of the window holding `now` (seconds since the epoch).
    pub fn id(self, now: i64) -> i64 {
        match self {
            Self::Minute => now.div_euclid(60),
            Self::Day => now.div_euclid(86_400),
            Self::Month => {
                let (y, m, _) = civil_from_days(now.div_euclid(86_400));
                y * 12 + (m - 1)
            }
            Self::Total => 0,
        }
    }

    /// Seconds from `now` until the window holding it ends (at least 1); `None` for `Total`.
    pub fn retry_after(self, now: i64) -> Option<u64> {
        let end = match self {
            Self::Minute => (now.div_euclid(60) + 1) * 60,
            Self::Day => (now.div_euclid(86_400) + 1) * 86_400,
            Self::Month => {
                let (y, m, _) = civil_from_days(now.div_euclid(86_400));
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                days_from_civil(ny, nm, 1) * 86_400
            }
            Self::Total => return None,
        };
        Some(u64::try_from((end - now).max(1)).unwrap_or(1))
    }

    /// How long a Redis counter of this window is kept: past the window's end, so a late
    /// settlement still finds it, and never forever except for `Total`.
    pub(crate) fn ttl_secs(self) -> i64 {
        match self {
            Self::Minute => 120,
            Self::Day => 2 * 86_400,
            Self::Month => 32 * 86_400,
            Self::Total => 0,
        }
    }
}

/// (year, month 1..=12, day 1..=31) of a day count since 1970-01-01 (H. Hinnant's algorithm).
pub(crate) fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Days since 1970-01-01 of a civil date (the inverse of [`civil_from_days`]).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Seconds since the Unix epoch on this machine's clock.
pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip() {
        // 2025-11-27 is day 20,419; 2024-02-29 a leap day.
        assert_eq!(civil_from_days(20_419), (2025, 11, 27));
        assert_eq!(days_from_civil(2025, 11, 27), 20_419);
        for z in [-1, 0, 19_782, 20_419, 60_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
    }

    #[test]
    fn windows_end_where_expected() {
        let now = days_from_civil(2026, 12, 31) * 86_400 + 86_399; // 23:59:59 on Dec 31
        assert_eq!(Window::Minute.retry_after(now), Some(1));
        assert_eq!(Window::Day.retry_after(now), Some(1));
        assert_eq!(Window::Month.retry_after(now), Some(1));
        assert_eq!(Window::Total.retry_after(now), None);
        assert_eq!(Window::Month.id(now), 2026 * 12 + 11);
        assert_eq!(Window::Month.id(now + 1), 2027 * 12);
        assert_eq!(Window::Minute.retry_after(120), Some(60));
        assert_eq!(Window::Day.id(86_400 * 3 + 5), 3);
    }
}
