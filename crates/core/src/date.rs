//! `Date:` header values (RFC 9110 §5.6.7 IMF-fixdate) and the clock that makes them.
//!
//! Origin servers send a `Date` header; tests need it fixed so responses can be
//! compared byte for byte (wsgiref's own tests had to use a regex instead).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where the gateway gets the time for `Date:` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Clock {
    /// The system clock.
    #[default]
    System,
    /// Always this instant: for byte-exact tests.
    Fixed(SystemTime),
}

impl Clock {
    /// A clock stopped at `secs` seconds after the Unix epoch.
    #[must_use]
    pub fn fixed_unix(secs: u64) -> Clock {
        Clock::Fixed(UNIX_EPOCH + Duration::from_secs(secs))
    }

    /// The current time by this clock.
    #[must_use]
    pub fn now(&self) -> SystemTime {
        match self {
            Clock::System => SystemTime::now(),
            Clock::Fixed(t) => *t,
        }
    }
}

/// Formats a time as an IMF-fixdate, e.g. `Mon, 05 Jun 2006 18:49:54 GMT`
/// (`wsgiref.handlers.format_date_time`). Times before 1970 print as the epoch.
#[must_use]
pub fn format_date_time(t: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let weekday = DAYS.get((days % 7) as usize).copied().unwrap_or("Thu");
    let month_name = MONTHS
        .get(month.saturating_sub(1) as usize)
        .copied()
        .unwrap_or("Jan");
    format!(
        "{weekday}, {day:02} {month_name} {year:04} {:02}:{:02}:{:02} GMT",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month 1..=12, day 1..=31), proleptic Gregorian.
/// The classic era-based algorithm (400-year cycles of 146,097 days).
pub(crate) fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
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
    use super::*;

    #[test]
    fn formats_known_dates() {
        let at = |s| format_date_time(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        // The date in test_wsgiref's hello_app.
        assert_eq!(at(1_149_533_394), "Mon, 05 Jun 2006 18:49:54 GMT");
        assert_eq!(at(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(at(4_102_444_799), "Thu, 31 Dec 2099 23:59:59 GMT");
    }
}
